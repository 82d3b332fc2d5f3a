package server

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkPipelinedPublish measures the server's cost per command: one
// client pipelines PUBLISH to a channel nobody holds, depth commands per
// write, and reads the replies. Most of it is the loopback round trip;
// the server's share shows in the CPU profile.
func BenchmarkPipelinedPublish(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run("depth="+strconv.Itoa(depth), func(b *testing.B) {
			addr := start(b, &Server{})
			nc, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			defer nc.Close()
			cmd := []byte("*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$64\r\n" + string(make([]byte, 64)) + "\r\n")
			var batch []byte
			for range depth {
				batch = append(batch, cmd...)
			}
			reply := make([]byte, len(":0\r\n")*depth)
			br := bufio.NewReader(nc)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += depth {
				if _, err := nc.Write(batch); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(br, reply); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
		})
	}
}
