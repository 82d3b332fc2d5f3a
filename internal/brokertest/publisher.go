package brokertest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// publisher sends commands on a connection of its own, dialling again
// after an error, and follows a cluster's MOVED replies.
type publisher struct {
	mu   sync.Mutex
	addr string
	nc   net.Conn
	r    *resp.Reader
}

func newPublisher(addr string) *publisher { return &publisher{addr: addr} }

// do sends one command and returns its integer reply.
func (p *publisher) do(ctx context.Context, args ...string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for redirects := 0; ; redirects++ {
		v, err := p.roundTrip(ctx, args)
		if err != nil {
			return 0, err
		}
		if v.Type == '-' && strings.HasPrefix(v.Str, "MOVED ") && redirects < 5 {
			if f := strings.Fields(v.Str); len(f) == 3 {
				p.closeLocked()
				p.addr = f[2]
				continue
			}
		}
		if v.Type != ':' {
			return 0, fmt.Errorf("%v: %v", args, v)
		}
		return v.Int, nil
	}
}

func (p *publisher) roundTrip(ctx context.Context, args []string) (resp.Value, error) {
	if p.nc == nil {
		nc, err := net.DialTimeout("tcp", p.addr, 100*time.Millisecond)
		if err != nil {
			return resp.Value{}, err
		}
		p.nc, p.r = nc, resp.NewReader(nc)
	}
	deadline := time.Now().Add(2 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = p.nc.SetDeadline(deadline)
	_, err := p.nc.Write(resp.AppendCommand(nil, args...))
	var v resp.Value
	if err == nil {
		v, err = p.r.ReadValue()
	}
	if err != nil {
		p.closeLocked()
	}
	return v, err
}

func (p *publisher) closeLocked() {
	if p.nc != nil {
		_ = p.nc.Close()
		p.nc, p.r = nil, nil
	}
}

func (p *publisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}
