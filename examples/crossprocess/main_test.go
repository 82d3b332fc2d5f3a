package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub"
	"github.com/gopherpubsub/pubsub/internal/redistest"
)

const wantWarehouse = `warehouse: listening on orders:*
warehouse: packing order-1 (orders:placed)
warehouse: packing order-2 (orders:placed)
warehouse: packing order-3 (orders:placed)
`

func TestInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := pubsub.New()
	defer e.Close()
	var out bytes.Buffer
	if err := run(ctx, e, "both", 3, &out); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(wantWarehouse), "\n") {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

// Two OS processes, the same code, through a real redis-server.
func TestTwoProcessesThroughRedis(t *testing.T) {
	addr := redistest.Start(t)
	bin := filepath.Join(t.TempDir(), "crossprocess")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var warehouseOut bytes.Buffer
	warehouse := exec.Command(bin, "-redis", addr, "-role", "warehouse", "-orders", "3")
	warehouse.Stdout, warehouse.Stderr = &warehouseOut, os.Stderr
	if err := warehouse.Start(); err != nil {
		t.Fatal(err)
	}
	shop, err := exec.Command(bin, "-redis", addr, "-role", "shop", "-orders", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("shop: %v\n%s", err, shop)
	}
	if err := warehouse.Wait(); err != nil {
		t.Fatalf("warehouse: %v\n%s", err, warehouseOut.String())
	}
	if got := warehouseOut.String(); got != wantWarehouse {
		t.Errorf("warehouse printed:\n%s\nwant:\n%s", got, wantWarehouse)
	}
	wantShop := "shop: placed order-1, 1 receiver(s)\nshop: placed order-2, 1 receiver(s)\nshop: placed order-3, 1 receiver(s)\n"
	if string(shop) != wantShop {
		t.Errorf("shop printed:\n%s\nwant:\n%s", shop, wantShop)
	}
}
