package relay

import "testing"

// The slot of a key as the Redis Cluster specification computes it; the
// brokertest fault tests compare more names with CLUSTER KEYSLOT.
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            0x31c3,           // CRC16/XMODEM's check value
		"foo":                  12182,            // CLUSTER KEYSLOT foo
		"{user1000}.following": Slot("user1000"), // the hash tag
		"foo{{bar}}zap":        Slot("{bar"),
		"foo{bar}{zap}":        Slot("bar"),
		"":                     0,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}
