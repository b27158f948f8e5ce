package mcpclient

import (
	"context"
	"encoding/json"
	"testing"
)

// BenchmarkCallTool measures a call on a pooled connection (the
// connection is made before the timer starts).
func BenchmarkCallTool(b *testing.B) {
	b.Run("stdio", func(b *testing.B) {
		p := NewPool(Options{AllowStdio: true})
		defer p.Close()
		benchmarkCalls(b, p, stdioTestServer(b, "bench-stdio", "stdio", nil))
	})
	b.Run("streamable_http", func(b *testing.B) {
		_, s := httpTestServer(b, TypeStreamableHTTP, nil)
		p := NewPool(Options{})
		defer p.Close()
		benchmarkCalls(b, p, s)
	})
}

func benchmarkCalls(b *testing.B, p *Pool, s Server) {
	ctx := context.Background()
	args := json.RawMessage(`{"message":"hi"}`)
	if _, err := p.CallTool(ctx, s, "echo", args); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.CallTool(ctx, s, "echo", args); err != nil {
			b.Fatal(err)
		}
	}
}
