//go:build linux

// Command floor is the least a Redis Pub/Sub server in Go can do, for
// the tables of docs/performance.md to show what is Go's and what is
// pubsubd's: one goroutine runs an epoll loop over
// non-blocking sockets, as Redis's ae loop, reading 16 KB per client per
// turn, and answers SUBSCRIBE and PUBLISH only (anything else gets +OK).
// A publish appends the message, encoded once, to each subscriber's
// output; every client with output is written before the loop waits
// again, the last touched first, and what a socket does not take waits
// for EPOLLOUT. There is no broker, no limit, no pattern, no error
// handling worth the name: it is a floor, not a server.
//
// Usage:
//
//	floor -port 7103
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
)

type client struct {
	fd      int
	in      []byte
	out     []byte
	touched bool
	waiting bool // watched for EPOLLOUT
	subs    []string
}

type server struct {
	epfd     int
	clients  map[int]*client
	channels map[string][]*client
	touched  []*client
}

func main() {
	port := flag.Int("port", 7103, "TCP port on 127.0.0.1")
	flag.Parse()
	// Two Ps on one CPU, as pubsubd has (see atLeastTwoProcs there): with
	// one, every wait in epoll_wait costs the runtime a handoff of the P.
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	if err := run(*port); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(port int) error {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	_ = syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	if err := syscall.Listen(lfd, 511); err != nil {
		return err
	}
	epfd, err := syscall.EpollCreate1(0)
	if err != nil {
		return err
	}
	s := &server{epfd: epfd, clients: map[int]*client{}, channels: map[string][]*client{}}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)}); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 1024)
	buf := make([]byte, 16<<10)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				s.accept(lfd)
				continue
			}
			c := s.clients[fd]
			if c == nil {
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				s.touch(c)
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				s.read(c, buf)
			}
		}
		for i := len(s.touched) - 1; i >= 0; i-- {
			s.write(s.touched[i])
		}
		s.touched = s.touched[:0]
	}
}

func (s *server) accept(lfd int) {
	for range 1000 {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
		if err != nil {
			return
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		s.clients[fd] = &client{fd: fd}
		_ = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
	}
}

func (s *server) touch(c *client) {
	if !c.touched {
		c.touched = true
		s.touched = append(s.touched, c)
	}
}

func (s *server) close(c *client) {
	for _, ch := range c.subs {
		list := s.channels[ch]
		for i, o := range list {
			if o == c {
				list[i] = list[len(list)-1]
				s.channels[ch] = list[:len(list)-1]
				break
			}
		}
	}
	delete(s.clients, c.fd)
	syscall.Close(c.fd)
	c.fd = -1
}

func (s *server) read(c *client, buf []byte) {
	n, err := syscall.Read(c.fd, buf)
	if err == syscall.EAGAIN {
		return
	}
	if n <= 0 {
		s.close(c)
		return
	}
	c.in = append(c.in, buf[:n]...)
	rest := c.in
	for {
		args, used := parse(rest)
		if used == 0 {
			break
		}
		rest = rest[used:]
		s.run(c, args)
	}
	c.in = append(c.in[:0], rest...)
}

// parse reads one RESP array of bulk strings, returning the bytes used
// (0: not whole yet).
func parse(b []byte) ([][]byte, int) {
	if len(b) == 0 || b[0] != '*' {
		return nil, 0
	}
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0
	}
	count, _ := strconv.Atoi(string(b[1 : i-1]))
	pos := i + 1
	args := make([][]byte, 0, count)
	for range count {
		j := bytes.IndexByte(b[pos:], '\n')
		if j < 0 {
			return nil, 0
		}
		size, _ := strconv.Atoi(string(b[pos+1 : pos+j-1]))
		start := pos + j + 1
		if start+size+2 > len(b) {
			return nil, 0
		}
		args = append(args, b[start:start+size])
		pos = start + size + 2
	}
	return args, pos
}

func appendBulk(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}

func (s *server) run(c *client, args [][]byte) {
	s.touch(c)
	switch {
	case len(args) == 2 && bytes.EqualFold(args[0], []byte("subscribe")):
		ch := string(args[1])
		s.channels[ch] = append(s.channels[ch], c)
		c.subs = append(c.subs, ch)
		c.out = append(c.out, "*3\r\n$9\r\nsubscribe\r\n"...)
		c.out = appendBulk(c.out, args[1])
		c.out = append(c.out, ':')
		c.out = strconv.AppendInt(c.out, int64(len(c.subs)), 10)
		c.out = append(c.out, "\r\n"...)
	case len(args) == 3 && bytes.EqualFold(args[0], []byte("publish")):
		list := s.channels[string(args[1])]
		if len(list) > 0 {
			msg := append([]byte("*3\r\n$7\r\nmessage\r\n"), appendBulk(nil, args[1])...)
			msg = appendBulk(msg, args[2])
			for _, o := range list {
				o.out = append(o.out, msg...)
				s.touch(o)
			}
		}
		c.out = append(c.out, ':')
		c.out = strconv.AppendInt(c.out, int64(len(list)), 10)
		c.out = append(c.out, "\r\n"...)
	default:
		c.out = append(c.out, "+OK\r\n"...)
	}
}

func (s *server) write(c *client) {
	c.touched = false
	if c.fd < 0 || len(c.out) == 0 {
		return
	}
	n, err := syscall.Write(c.fd, c.out)
	if err != nil && err != syscall.EAGAIN {
		s.close(c)
		return
	}
	if n > 0 {
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	switch wait := len(c.out) > 0; {
	case wait && !c.waiting:
		c.waiting = true
		_ = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT, Fd: int32(c.fd)})
	case !wait && c.waiting:
		c.waiting = false
		_ = syscall.EpollCtl(s.epfd, syscall.EPOLL_CTL_MOD, c.fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)})
	}
}
