package server

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) made without telling the
// Go scheduler, for the loop's sockets: they are non-blocking, so the
// call never waits, and the scheduler's bookkeeping for a call that
// might (with the runtime's monitor waking to take the loop's processor
// while it runs) costs more than the call itself.
func sysRead(fd int, p []byte) (int, error) {
	var buf unsafe.Pointer
	if len(p) > 0 {
		buf = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(buf), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	var buf unsafe.Pointer
	if len(p) > 0 {
		buf = unsafe.Pointer(&p[0])
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(buf), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
