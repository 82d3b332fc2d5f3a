package rueidisbroker_test

import (
	"os/exec"
	"testing"
)

// valkeybroker is this package with valkey-go's names, generated; a
// change here must be generated there too.
func TestValkeybrokerIsGeneratedFromHere(t *testing.T) {
	cmd := exec.Command("go", "run", "./internal/fork", "-check")
	cmd.Dir = "../valkeybroker"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
