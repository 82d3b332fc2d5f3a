package server

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gopherpubsub/pubsub/internal/redistest"
	"github.com/gopherpubsub/pubsub/internal/resp"
)

// TestACLCatAndWhoamiAsRedis compares ACL CAT, ACL CAT of every category
// (as sets: redis-server lists a category's commands in its command
// table's hash order, which changes every time it starts) and ACL WHOAMI
// with redis-server's, with their errors, in RESP2 and RESP3.
func TestACLCatAndWhoamiAsRedis(t *testing.T) {
	theirAddr := redistest.Start(t)
	ourAddr := start(t, &Server{})
	sorted := func(v resp.Value) resp.Value {
		slices.SortFunc(v.Elems, func(a, b resp.Value) int {
			switch {
			case a.Str < b.Str:
				return -1
			case a.Str > b.Str:
				return 1
			}
			return 0
		})
		return v
	}
	for _, proto := range []string{"2", "3"} {
		theirs, ours := redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)
		theirs.Do("HELLO", proto)
		ours.Do("HELLO", proto)
		cats := theirs.Do("ACL", "CAT")
		assert.Equal(t, cats, ours.Do("ACL", "CAT"), "RESP%s ACL CAT", proto)
		assert.Len(t, cats.Elems, 21)
		for _, cat := range cats.Elems {
			assert.Equal(t, sorted(theirs.Do("ACL", "CAT", cat.Str)), sorted(ours.Do("ACL", "CAT", cat.Str)), "RESP%s ACL CAT %s", proto, cat.Str)
		}
		for _, args := range [][]string{
			{"ACL", "CAT", "PubSub"}, {"ACL", "CAT", "nosuch"}, {"ACL", "CAT", "a", "b"}, {"acl", "Cat", "x", "y"},
			{"ACL", "WHOAMI"}, {"ACL", "WHOAMI", "x"}, {"ACL"},
			{"ACL", "USERS"}, {"ACL", "USERS", "x"}, {"ACL", "LIST"}, {"ACL", "GETUSER", "default"},
			{"ACL", "GETUSER", "Default"}, {"ACL", "GETUSER", "nobody"}, {"ACL", "GETUSER"},
			{"CONFIG", "SET", "requirepass", "s3cret"}, {"AUTH", "s3cret"}, {"ACL", "LIST"},
			{"ACL", "GETUSER", "default"}, {"ACL", "WHOAMI"}, {"CONFIG", "SET", "requirepass", ""},
		} {
			want, got := theirs.Do(args...), ours.Do(args...)
			if args[len(args)-1] == "PubSub" {
				want, got = sorted(want), sorted(got)
			}
			assert.Equal(t, want, got, "RESP%s %q", proto, args)
		}
	}
}

// ACL GENPASS gives as many hex digits as redis-server's for any number
// of bits (the digits are random).
func TestACLGenpassAsRedis(t *testing.T) {
	theirs, ours := redistest.Dial(t, redistest.Start(t)), redistest.Dial(t, start(t, &Server{}))
	for _, bits := range []string{"", "1", "4", "5", "8", "63", "256", "4095", "4096"} {
		args := []string{"ACL", "GENPASS"}
		if bits != "" {
			args = append(args, bits)
		}
		want, got := theirs.Do(args...), ours.Do(args...)
		assert.Len(t, got.Str, len(want.Str), "%q", args)
		assert.Regexp(t, "^[0-9a-f]+$", got.Str, "%q", args)
		if len(got.Str) >= 16 { // 64 bits and more: two draws that agree would be a broken source
			assert.NotEqual(t, got.Str, ours.Do(args...).Str, "%q: random each time", args)
		}
	}
}

// TestACLLogAsRedis compares ACL LOG after failed AUTH and HELLO AUTH,
// at the top level and in MULTI, with redis-server's: the entries, their
// grouping and order; age-seconds is checked to be a number and of
// client-info the command and the user, as the rest names the
// connection.
func TestACLLogAsRedis(t *testing.T) {
	theirAddr := redistest.Start(t)
	ourAddr := start(t, &Server{})
	normalize := func(v resp.Value) resp.Value {
		for i := range v.Elems {
			e := &v.Elems[i]
			for j := 0; j+1 < len(e.Elems); j += 2 {
				val := &e.Elems[j+1]
				switch e.Elems[j].Str {
				case "age-seconds":
					_, err := strconv.ParseFloat(val.Str, 64)
					assert.NoError(t, err, "age-seconds %q", val.Str)
					*val = resp.Value{Type: 'x'}
				case "client-info":
					var keep []string
					for _, f := range strings.Fields(val.Str) {
						if strings.HasPrefix(f, "cmd=") || strings.HasPrefix(f, "user=") || strings.HasPrefix(f, "resp=") {
							keep = append(keep, f)
						}
					}
					val.Str = strings.Join(keep, " ")
				}
			}
		}
		return v
	}
	for _, proto := range []string{"2", "3"} {
		theirs, ours := redistest.Dial(t, theirAddr), redistest.Dial(t, ourAddr)
		theirs.Do("HELLO", proto)
		ours.Do("HELLO", proto)
		for _, args := range [][]string{
			{"ACL", "LOG", "RESET"}, {"ACL", "LOG"},
			{"AUTH", "nouser", "x"}, {"AUTH", "nouser", "y"}, {"AUTH", "other", "x"},
			{"HELLO", proto, "AUTH", "nouser", "x"}, {"ACL", "LOG"}, {"ACL", "LOG", "1"},
			{"ACL", "LOG", "-1"}, {"ACL", "LOG", "x"}, {"ACL", "LOG", "1", "2"},
			{"MULTI"}, {"AUTH", "nouser", "x"}, {"EXEC"}, {"ACL", "LOG"},
			{"CONFIG", "SET", "requirepass", "s3cret"}, {"AUTH", "wrong"}, {"ACL", "LOG", "2"},
			{"CONFIG", "SET", "acllog-max-len", "2"}, {"AUTH", "a", "b"}, {"ACL", "LOG"},
			{"AUTH", "s3cret"}, {"CONFIG", "SET", "requirepass", ""}, {"CONFIG", "SET", "acllog-max-len", "128"},
			{"ACL", "LOG", "RESET"}, {"ACL", "LOG"},
			{"ACL", "GENPASS", "0"}, {"ACL", "GENPASS", "4097"}, {"ACL", "GENPASS", "x"}, {"ACL", "GENPASS", "1", "2"},
			{"ACL", "DRYRUN", "default", "publish", "a", "b"}, {"ACL", "DRYRUN", "default", "GET", "k"},
			{"ACL", "DRYRUN", "Default", "get", "k"}, {"ACL", "DRYRUN", "nobody", "get", "k"},
			{"ACL", "DRYRUN", "default", "nosuch"}, {"ACL", "DRYRUN", "default", "get"},
			{"ACL", "DRYRUN", "default"}, {"ACL", "DRYRUN", "default", "config", "get", "x"},
			{"ACL", "DRYRUN", "default", "CONFIG", "nosuch"}, {"ACL", "DRYRUN", "default", "config"},
			{"ACL", "DRYRUN", "default", "set", "k", "v", "EX", "10"}, {"ACL", "DRYRUN", "default", "acl", "dryrun", "default", "ping"},
			{"ACL", "DRYRUN", "default", "ping", "a", "b"}, {"ACL", "DRYRUN", "default", "client", "kill", "x"},
		} {
			want, got := theirs.Do(args...), ours.Do(args...)
			if len(args) >= 2 && args[0] == "ACL" && args[1] == "LOG" {
				want, got = normalize(want), normalize(got)
			}
			assert.Equal(t, want, got, "RESP%s %q", proto, args)
		}
	}
}
