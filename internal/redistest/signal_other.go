//go:build !unix

package redistest

// Freeze needs SIGSTOP, which only unix has; the tests that freeze a
// server run where redis-server does.
func (s *Server) Freeze() { panic("redistest: Freeze needs unix signals") }

// Thaw needs SIGCONT (see Freeze).
func (s *Server) Thaw() { panic("redistest: Thaw needs unix signals") }
