package server

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ListenAndServe and the listeners it owns: where redis-server's
// configuration says to listen (port, tls-port, bind), and CONFIG SET of
// them moving the listeners, as Redis does.

// ListenAndServe listens where the Server's parameters say (its Config,
// then CONFIG SET), as redis-server does, and serves until Close or
// Shutdown, then returns ErrServerClosed: port (6379 if Config gives
// none) at every bind address, in Redis's notation ("-" before an
// address this host may not have, "*" for every IPv4 address, "::*" for
// every IPv6 one; 127.0.0.1 if Config gives none, not Redis's "* -::*":
// loopback unless told otherwise), and tls-port, if not 0, with the TLS
// configuration of the tls-* parameters, as ServeTLS(ln, nil). Port 0
// beside a tls-port turns the plain port off, as in Redis; alone it
// takes a free port. Each listener's address is logged. CONFIG SET port,
// tls-port and bind then move the listeners as Redis does: a new port is
// opened before the old one is closed; new bind addresses replace the
// old ones (which are opened again if the new ones cannot be); a change
// that cannot listen changes nothing, with Redis's error.
func (s *Server) ListenAndServe() error {
	if err := s.CheckConfig(); err != nil {
		return err
	}
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	if s.owned != nil {
		s.mu.Unlock()
		return errors.New("server: ListenAndServe called twice")
	}
	o := &ownedListeners{srv: s}
	s.owned = o
	s.mu.Unlock()
	get := s.configValue
	plain, tlsLns, err := o.open(get("bind"), get("port"), get("tls-port"))
	if err != nil {
		_ = s.Close()
		return err
	}
	// Held until the loop has stopped: while CONFIG SET bind moves the
	// listeners, none may serve for a moment.
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		<-s.loop.done
	}()
	o.serve(plain, tlsLns)
	o.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	return ErrServerClosed
}

// ownedListeners are the listeners ListenAndServe opened and serves.
type ownedListeners struct {
	srv *Server
	wg  sync.WaitGroup // the Serve calls running

	// The Server's mu guards the fields below.
	plain, tls []net.Listener
	moved      map[net.Listener]bool // closed by a CONFIG SET: its Serve's end is no failure
	err        error                 // the first listener that failed, ending the Server
}

// open listens on the ports at the bind addresses, or closes what it
// opened and says why. Port 0 beside a TLS port is no plain port.
func (o *ownedListeners) open(bind, port, tlsPort string) (plain, tlsLns []net.Listener, err error) {
	hosts := bindHosts(bind)
	p, tp := atoiOr(port, 6379), atoiOr(tlsPort, 0)
	if p != 0 || tp == 0 {
		if plain, err = listenAll(hosts, p); err != nil {
			return nil, nil, err
		}
	}
	if tp != 0 {
		if tlsLns, err = listenAll(hosts, tp); err != nil {
			closeAll(plain)
			return nil, nil, err
		}
	}
	if len(plain)+len(tlsLns) == 0 {
		return nil, nil, fmt.Errorf("server: no address to listen on: bind %s", strings.Join(hosts, " "))
	}
	return plain, tlsLns, nil
}

func bindHosts(bind string) []string {
	if hosts := strings.Fields(bind); len(hosts) > 0 {
		return hosts
	}
	return []string{"127.0.0.1"}
}

// listenAll listens on port at every host, or closes what it opened.
func listenAll(hosts []string, port int) ([]net.Listener, error) {
	var lns []net.Listener
	for _, h := range hosts {
		ln, err := listenAt(h, port)
		if errors.Is(err, errOptionalAddr) {
			continue
		}
		if err != nil {
			closeAll(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// serve starts serving listeners just opened, and takes them as the ones
// in force.
func (o *ownedListeners) serve(plain, tlsLns []net.Listener) {
	o.srv.mu.Lock()
	o.plain, o.tls = append(o.plain, plain...), append(o.tls, tlsLns...)
	o.srv.mu.Unlock()
	s := o.srv
	for i, lns := range [][]net.Listener{plain, tlsLns} {
		for _, ln := range lns {
			o.wg.Add(1)
			kind := "ready to accept connections"
			if i == 1 {
				kind = "ready to accept TLS connections"
			}
			s.logger().Info(kind, "addr", ln.Addr().String())
			go func() {
				defer o.wg.Done()
				var err error
				if i == 0 {
					err = s.Serve(ln)
				} else {
					err = s.ServeTLS(ln, nil)
				}
				o.ended(ln, err)
			}()
		}
	}
}

// ended takes the end of one listener's Serve: a listener a CONFIG SET
// moved, or the Server closing, is no failure; any other ends the Server.
func (o *ownedListeners) ended(ln net.Listener, err error) {
	o.srv.mu.Lock()
	moved := o.moved[ln]
	delete(o.moved, ln)
	failed := !moved && !errors.Is(err, ErrServerClosed) && o.err == nil
	if failed {
		o.err = err
	}
	o.srv.mu.Unlock()
	if failed {
		_ = o.srv.Close()
	}
}

// retire takes listeners out of service: their Serve's end is no failure.
func (o *ownedListeners) retire(lns []net.Listener) {
	o.srv.mu.Lock()
	if o.moved == nil {
		o.moved = map[net.Listener]bool{}
	}
	for _, ln := range lns {
		o.moved[ln] = true
		o.plain = slices.DeleteFunc(o.plain, func(l net.Listener) bool { return l == ln })
		o.tls = slices.DeleteFunc(o.tls, func(l net.Listener) bool { return l == ln })
	}
	o.srv.mu.Unlock()
	closeAll(lns)
}

// move is a change of the listeners CONFIG SET prepared: the ones
// opened, to serve, and the ones to close, once the new values are in
// force (a TLS listener's configuration is made of them).
type move struct {
	plain, tls, old []net.Listener
}

// movePort opens listeners on a new port at the bind addresses in force,
// as Redis's CONFIG SET port and tls-port: if it cannot listen, nothing
// changes. It runs in the loop.
func (o *ownedListeners) movePort(bind string, port int, tls bool) (move, error) {
	var lns []net.Listener
	if port != 0 {
		var err error
		if lns, err = listenAll(bindHosts(bind), port); err != nil {
			return move{}, err
		}
	}
	o.srv.mu.Lock()
	defer o.srv.mu.Unlock()
	if tls {
		return move{tls: lns, old: slices.Clone(o.tls)}, nil
	}
	return move{plain: lns, old: slices.Clone(o.plain)}, nil
}

// moveBind listens at new bind addresses, as Redis's CONFIG SET bind:
// the listeners in force are closed first (the ports stay), and opened
// again where they were if the new addresses cannot be listened on. It
// runs in the loop.
func (o *ownedListeners) moveBind(bind, oldBind, port, tlsPort string) (move, error) {
	o.srv.mu.Lock()
	old := append(slices.Clone(o.plain), o.tls...)
	o.srv.mu.Unlock()
	o.retire(old)
	plain, tlsLns, err := o.open(bind, port, tlsPort)
	if err != nil {
		if plain, tlsLns, rerr := o.open(oldBind, port, tlsPort); rerr == nil {
			o.serve(plain, tlsLns)
		}
		return move{}, err
	}
	return move{plain: plain, tls: tlsLns}, nil
}

// commit serves the listeners a move opened and closes the ones it
// replaces.
func (o *ownedListeners) commit(m move) {
	o.serve(m.plain, m.tls)
	o.retire(m.old)
}

// port is the port the plain (or TLS) listeners listen on now, 0 if none.
func (o *ownedListeners) port(tls bool) int {
	o.srv.mu.Lock()
	defer o.srv.mu.Unlock()
	lns := o.plain
	if tls {
		lns = o.tls
	}
	if len(lns) == 0 {
		return 0
	}
	return portOf(lns[0].Addr())
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

// errOptionalAddr is a bind address given with Redis's "-" (as in "-::1")
// that this host does not have: skipped, as Redis skips it.
var errOptionalAddr = errors.New("optional address unavailable")

// listenAt listens on port at a bind address in Redis's notation: an IPv6
// address alone (tcp6, so that "* ::*" can take both families on one
// port, as Redis's IPV6_V6ONLY sockets do), and an address given with
// "-" that is not available here skipped.
func listenAt(addr string, port int) (net.Listener, error) {
	host, network := bindHost(addr), "tcp"
	if ip := net.ParseIP(host); ip != nil {
		network = "tcp4"
		if ip.To4() == nil {
			network = "tcp6"
		}
	}
	ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil && strings.HasPrefix(addr, "-") && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)) {
		return nil, errOptionalAddr
	}
	return ln, err
}

// bindHost is a bind address in Redis's notation as net.Listen takes it.
func bindHost(addr string) string {
	addr = strings.TrimPrefix(addr, "-")
	switch addr {
	case "*":
		return "0.0.0.0"
	case "::*":
		return "::"
	}
	return addr
}
