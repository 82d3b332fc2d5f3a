package redistest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopherpubsub/pubsub/internal/resp"
)

// Cluster is a Redis Cluster run by a test on loopback.
type Cluster struct {
	Nodes []*Server
	Addrs []string
}

// StartCluster runs n redis-server processes in cluster mode and joins
// them with redis-cli --cluster create, which spreads the 16384 slots
// evenly over n masters. It returns once every node reports
// cluster_state:ok and is linked to every other. It skips (fails under CI)
// as Start does when redis-server or redis-cli is missing.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, 0)
}

// StartClusterWithReplicas is StartCluster with each of the masters
// given replicas replicas. It returns once, besides, every node's CLUSTER
// SLOTS lists every replica and every replica's link to its master is up.
func StartClusterWithReplicas(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	return startCluster(t, masters, replicas)
}

func startCluster(t testing.TB, masters, replicas int) *Cluster {
	t.Helper()
	server := need(t, "redis-server")
	cli := need(t, "redis-cli")
	n := masters * (1 + replicas)
	c := &Cluster{}
	for len(c.Nodes) < n {
		port := clusterPort()
		dir := t.TempDir()
		s, err := startAt(t, server, port, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", dir + "/nodes.conf",
			"--cluster-node-timeout", "2000",
		})
		if err != nil {
			continue
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range c.Addrs {
		for !clusterOK(addr, n, masters, replicas) {
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok at %s after 30s", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// clusterPort returns a port p such that p and its cluster bus port
// p+10000 are both free.
func clusterPort() int {
	for {
		p := 20000 + rand.IntN(20000)
		if free(p) && free(p+10000) {
			return p
		}
	}
}

func free(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func clusterOK(addr string, n, masters, replicas int) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(resp.AppendCommand(nil, "CLUSTER", "INFO")); err != nil {
		return false
	}
	v, err := resp.NewReader(c).ReadValue()
	if err != nil {
		return false
	}
	info := v.Str
	return strings.Contains(info, "cluster_state:ok") &&
		strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) &&
		strings.Contains(info, "cluster_slots_ok:16384") &&
		meshed(c, n) &&
		(replicas == 0 || replicated(c, masters, replicas))
}

// replicated reports whether the node on c lists replicas replicas for
// each of the masters in CLUSTER SLOTS (clients learn of the replicas
// there), and, if it is a replica, whether its link to its master is up:
// a shard channel's messages reach a replica's subscribers through it.
func replicated(c net.Conn, masters, replicas int) bool {
	r := resp.NewReader(c)
	if _, err := c.Write(resp.AppendCommand(nil, "CLUSTER", "SLOTS")); err != nil {
		return false
	}
	v, err := r.ReadValue()
	if err != nil || len(v.Elems) < masters {
		return false
	}
	for _, slots := range v.Elems {
		if len(slots.Elems) != 3+replicas { // start, end, master, replicas...
			return false
		}
	}
	if _, err := c.Write(resp.AppendCommand(nil, "INFO", "replication")); err != nil {
		return false
	}
	info, err := r.ReadValue()
	return err == nil && (strings.Contains(info.Str, "role:master") || strings.Contains(info.Str, "master_link_status:up"))
}

// Replicas returns the addresses of the nodes that are replicas.
func (c *Cluster) Replicas(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, addr := range c.Addrs {
		conn := Dial(t, addr)
		conn.Send("INFO", "replication")
		if strings.Contains(conn.Read().Str, "role:slave") {
			out = append(out, addr)
		}
		conn.Close()
	}
	return out
}

// meshed reports whether the node on c has a cluster-bus link to and from
// each of the n-1 others. cluster_state:ok comes before that: a node
// forwards a PUBLISH over its links to the others, and one published
// while a link is still missing is lost for that node's subscribers, as
// Redis delivers at most once. A freshly created cluster completes its
// links within a second or so.
func meshed(c net.Conn, n int) bool {
	if _, err := c.Write(resp.AppendCommand(nil, "CLUSTER", "LINKS")); err != nil {
		return false
	}
	v, err := resp.NewReader(c).ReadValue()
	if err != nil {
		return false
	}
	peers := map[string]map[string]bool{} // direction -> node ids
	for _, link := range v.Elems {
		var direction, node string
		for i := 0; i+1 < len(link.Elems); i += 2 {
			switch link.Elems[i].Str {
			case "direction":
				direction = link.Elems[i+1].Str
			case "node":
				node = link.Elems[i+1].Str
			}
		}
		if peers[direction] == nil {
			peers[direction] = map[string]bool{}
		}
		peers[direction][node] = true
	}
	return len(peers["to"]) == n-1 && len(peers["from"]) == n-1
}
