package server

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopherpubsub/pubsub/internal/redistest"
)

// TestACLFileAsRedis gives redis-server and this server the same ACL file
// and compares ACL LOAD (a good file, a file with every kind of bad line,
// a missing file), ACL LIST after it, who is disconnected by a load (the
// replaced users' clients, not the default user's), and what ACL SAVE
// writes.
func TestACLFileAsRedis(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.acl")
	write := func(text string) { require.NoError(t, os.WriteFile(path, []byte(text), 0o644)) }
	write("user default on nopass ~* &* +@all\nuser old on nopass +@all\n")
	theirAddr, ourAddr := redistest.Start(t, "--aclfile", path), start(t, &Server{ACLFile: path})
	theirs, ours := redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)
	both := func(args ...string) {
		t.Helper()
		want, got := canonACL(args, theirs.Do(args...)), canonACL(args, ours.Do(args...))
		require.Equal(t, want, got, "%q", args)
	}
	both("ACL", "LIST")
	both("CONFIG", "GET", "aclfile")

	// Every kind of bad line (but an unmatched parenthesis, on which
	// redis-server 7.0.15 crashes): nothing changes.
	write("user default on nopass ~* &* +@all\nUser bob\nuser a\tb on\nuser c bogus +nosuch\nuser c\n#comment\n  \nuser d \"x y\"\nuser  e on\nuser f %X~k ~* ~x\n")
	both("ACL", "LOAD")
	both("ACL", "LIST")
	require.NoError(t, os.Remove(path))
	both("ACL", "LOAD")

	// A good file: CRLF, blank lines, selectors, hashes; the clients of
	// the users replaced go, the default user's stay.
	type pair struct{ theirs, ours *redistest.Conn }
	oldUser := pair{redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)}
	defUser := pair{redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)}
	for _, c := range []*redistest.Conn{oldUser.theirs, oldUser.ours} {
		require.Equal(t, "OK", c.Do("AUTH", "old", "x").Str)
	}
	write("user default on >pw ~* &* +@all\r\n\r\nuser e on nopass\nuser f on >p1 #" + hashPassword("p2") + " &ch:* +@pubsub -subscribe (~x +get)\n")
	both("ACL", "LOAD")
	for _, c := range []*redistest.Conn{oldUser.theirs, oldUser.ours} {
		_, err := c.ReadErr()
		require.Error(t, err)
		require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the client of a replaced user is disconnected")
	}
	for _, c := range []*redistest.Conn{defUser.theirs, defUser.ours} {
		assert.Equal(t, "PONG", c.Do("PING").Str, "the default user's client stays")
	}
	both("AUTH", "pw")
	both("ACL", "LIST")
	both("AUTH", "f", "p2")
	both("ACL", "WHOAMI")
	both("AUTH", "default", "pw")

	// ACL SAVE writes what ACL LIST shows, one user a line.
	both("ACL", "SETUSER", "g", "on", "resetchannels", "&a", "-@all", "+@pubsub", "+client|id")
	both("ACL", "SAVE")
	theirFile, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.Remove(path))
	both("ACL", "SAVE")
	ourFile, err := os.ReadFile(path)
	require.NoError(t, err)
	canonFile := func(b []byte) string {
		lines := strings.Split(string(b), "\n")
		for i := range lines {
			lines[i] = canonRules(lines[i])
		}
		return strings.Join(lines, "\n")
	}
	assert.Equal(t, canonFile(theirFile), canonFile(ourFile))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")
	both("ACL", "LOAD")
	both("ACL", "LIST")
}

// An unmatched parenthesis in the ACL file is refused with the file's
// name and line (redis-server 7.0.15 crashes on it), and the users stay.
func TestACLFileUnmatchedParenthesis(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.acl")
	require.NoError(t, os.WriteFile(path, []byte("user a on nopass +@all\n"), 0o644))
	c := redistest.Dial(t, start(t, &Server{ACLFile: path}))
	require.Equal(t, "PONG", c.Do("PING").Str) // the file was read
	require.NoError(t, os.WriteFile(path, []byte("user a on nopass +@all\nuser b on (+ping ~x\n"), 0o644))
	assert.Equal(t, "ERR "+path+":2: Unmatched parenthesis in selector definition.WARNING: ACL errors detected, no change to the previously active ACL rules was performed", c.Do("ACL", "LOAD").Str)
	assert.Equal(t, "user a on nopass resetchannels +@all", c.Do("ACL", "LIST").Elems[0].Str)
}

// Serve refuses to start with users Redis would refuse, or with both
// Users and an ACL file, and CheckConfig says why beforehand.
func TestBadUsersStopServe(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.acl")
	require.NoError(t, os.WriteFile(path, []byte("user a on bogus\n"), 0o644))
	for _, tc := range []struct {
		srv  *Server
		want string
	}{
		{&Server{Users: []string{"alice on >pw bogus"}}, "Error loading ACL rule 'bogus' for the user named 'alice': Syntax error"},
		{&Server{Users: []string{"alice +nosuch"}}, "Error loading ACL rule '+nosuch' for the user named 'alice': Unknown command or category name in ACL"},
		{&Server{Users: []string{"alice", "alice on"}}, "user alice: Duplicate user found"},
		{&Server{Users: []string{"alice (+ping"}}, "Unmatched parenthesis"},
		{&Server{Users: []string{""}}, "user 1 is empty"},
		{&Server{Users: []string{"alice"}, ACLFile: path}, "please define either an ACL file or declare users"},
		{&Server{ACLFile: path}, "Aborting Redis startup because of ACL errors: " + path + ":1: Syntax error. WARNING"},
		{&Server{ACLFile: path + ".missing"}, "opening file '" + path + ".missing': No such file or directory"},
	} {
		err := tc.srv.CheckConfig()
		require.ErrorIs(t, err, ErrBadUsers)
		assert.Contains(t, err.Error(), tc.want)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		err = tc.srv.Serve(ln)
		require.ErrorIs(t, err, ErrBadUsers, "%+v", tc.srv)
		assert.Contains(t, err.Error(), tc.want)
		_, err = tc.srv.Pipe()
		assert.ErrorIs(t, err, ErrBadUsers)
	}
	assert.NoError(t, (&Server{Users: []string{"alice on >pw &orders:* +@pubsub", "default on nopass +@all"}}).CheckConfig())
}

// TestConfigUsersAsRedis starts both servers with users given as
// configuration directives and compares what the users may do.
func TestConfigUsersAsRedis(t *testing.T) {
	args := []string{"--user", "alice", "on", ">pw", "resetchannels", "&orders:*", "-@all", "+@pubsub",
		"--user", "default", "on", "nopass", "~*", "&*", "+@all", "-acl|deluser",
		"--acl-pubsub-default", "allchannels", "--user", "bob", "on", "nopass", "+publish"}
	cfg, err := ReadConfig("", args)
	require.NoError(t, err)
	theirs := redistest.Dial(t, redistest.Start(t, args...))
	ours := redistest.Dial(t, start(t, &Server{Config: cfg}))
	for _, cmd := range [][]string{
		{"PING"}, {"ACL", "LIST"}, {"ACL", "DELUSER", "bob"},
		{"AUTH", "alice", "pw"}, {"PUBLISH", "orders:1", "x"}, {"PUBLISH", "x", "x"},
		{"AUTH", "bob", "x"}, {"PUBLISH", "any", "x"}, {"PING"},
	} {
		want, got := canonACL(cmd, theirs.Do(cmd...)), canonACL(cmd, ours.Do(cmd...))
		require.Equal(t, want, got, "%q", cmd)
	}
	_, err = ReadConfig("", []string{"--user", "alice", "+nosuch"})
	require.ErrorIs(t, err, ErrBadUsers)
	assert.Contains(t, redisServerReport(t, "/dev/null", []string{"--user", "alice", "+nosuch"}),
		strings.TrimPrefix(err.Error(), ErrBadUsers.Error()+": "))
}
