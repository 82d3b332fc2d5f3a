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

func newPoller() (*poller, error)                        { return nil, errNoPoller }
func (*poller) add(syscall.RawConn, int32) error         { return errNoPoller }
func (*poller) watchInput(syscall.RawConn, int32) error  { return errNoPoller }
func (*poller) watchHangUp(syscall.RawConn, int32) error { return errNoPoller }
func (*poller) remove(syscall.RawConn) error             { return errNoPoller }
func (*poller) wait(time.Duration) []int32               { return nil }
func (*poller) wake()                                    {}
func (*poller) close()                                   {}

var errNoPending = errors.New("server: no connection waiting")

func acceptOne(syscall.RawConn) (net.Conn, error) { return nil, errNoPoller }
