//go:build !linux

package server

import "runtime"

func osName() string { return runtime.GOOS }

func multiplexingAPI() string {
	switch runtime.GOOS {
	case "darwin", "freebsd", "netbsd", "openbsd", "dragonfly":
		return "kqueue"
	}
	return runtime.GOOS
}

func cpuTimes() (sys, user string) { return "0.000000", "0.000000" }

func processRSS() uint64 { return 0 }

func systemMemory() uint64 { return 0 }
