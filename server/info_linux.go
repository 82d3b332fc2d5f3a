package server

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// osName is what Redis's INFO says of the system: uname's name, release
// and machine.
func osName() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "Linux"
	}
	return utsString(u.Sysname) + " " + utsString(u.Release) + " " + utsString(u.Machine)
}

// utsString is a uname field's text (its bytes are int8 or uint8, by
// architecture).
func utsString[T int8 | uint8](f [65]T) string {
	b := make([]byte, 0, len(f))
	for _, c := range f {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// multiplexingAPI is what the Go runtime's netpoller waits with.
func multiplexingAPI() string { return "epoll" }

// cpuTimes are the process's system and user CPU time, as Redis writes
// them.
func cpuTimes() (sys, user string) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "0.000000", "0.000000"
	}
	return fmt.Sprintf("%d.%06d", ru.Stime.Sec, ru.Stime.Usec), fmt.Sprintf("%d.%06d", ru.Utime.Sec, ru.Utime.Usec)
}

// processRSS is the process's resident memory, or 0 if unknown.
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// systemMemory is the machine's memory, or 0 if unknown.
func systemMemory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
