//go:build !linux

package server

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// poller is Linux's epoll (poll_linux.go). Elsewhere there is none, and
// every connection is read by a goroutine of its own that hands its input
// to the loop (fallback.go).
type poller struct{}

var errNoPoller = errors.New("server: no poller on this platform")

const (
	pollIn     = 1
	pollHangUp = 2
	pollOut    = 4
)

type readyEvent struct {
	token  int32
	events uint32
}

const pollFresh = pollIn

func readable(uint32) bool { return false }
func hungUp(uint32) bool   { return false }
func writable(uint32) bool { return false }

func newPoller() (*poller, error)                           { return nil, errNoPoller }
func (*poller) add(syscall.RawConn, int32, uint32) error    { return errNoPoller }
func (*poller) modify(syscall.RawConn, int32, uint32) error { return errNoPoller }
func (*poller) remove(syscall.RawConn) error                { return errNoPoller }
func (*poller) wait(time.Duration) []readyEvent             { return nil }
func (*poller) wake()                                       {}
func (*poller) close()                                      {}

var errNoPending = errors.New("server: no connection waiting")

func acceptOne(syscall.RawConn) (*loopSocket, error) { return nil, errNoPoller }

// loopSocket is never made without a poller.
type loopSocket struct{ net.Conn }

func (*loopSocket) setUpTCP(int) {}
func (*loopSocket) release()     {}
