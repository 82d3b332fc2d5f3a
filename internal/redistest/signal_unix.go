//go:build unix

package redistest

import "syscall"

// Freeze stops the server with SIGSTOP, as a hung process or a broken
// network path looks to its clients: connections stay open, new ones are
// still accepted by the kernel, and nothing is answered. Thaw resumes it.
func (s *Server) Freeze() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Thaw resumes a server stopped by Freeze (SIGCONT).
func (s *Server) Thaw() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}
