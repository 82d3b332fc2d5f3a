package server

import (
	"slices"
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
