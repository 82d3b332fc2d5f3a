//go:build unix && !linux

package server

import "syscall"

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket.
func sysRead(fd int, p []byte) (int, error)  { return syscall.Read(fd, p) }
func sysWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
