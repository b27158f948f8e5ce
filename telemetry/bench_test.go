package telemetry

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

// BenchmarkSendMessageTelemetry is service's BenchmarkSendMessage (one
// turn on SQLite, two model calls) with no observer, with the metrics
// (the no-op tracer, as without OTEL_EXPORTER_OTLP_ENDPOINT), and with
// metrics and an SDK tracer recording every span: the hooks' cost.
func BenchmarkSendMessageTelemetry(b *testing.B) {
	for _, c := range []struct {
		name string
		tel  func() *Telemetry
	}{
		{"off", func() *Telemetry { return nil }},
		{"metrics", func() *Telemetry { return New(Options{}) }},
		{"metrics+traces", func() *Telemetry {
			exp := tracetest.NewInMemoryExporter()
			b.Cleanup(func() { exp.Reset() })
			return New(Options{TracerProvider: NewTracerProvider(sdktrace.WithBatcher(exp))})
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			store, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { store.Close() })
			tel := c.tel()
			r := rt.NewSystem()
			acfg := actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)}
			var opts []service.Option
			if tel != nil {
				acfg.Observer = tel.Actors()
				opts = append(opts, service.WithObserver(tel.Service()))
				store.SetCommitObserver(tel.Storage())
			}
			sys := actor.NewSystem(acfg)
			b.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				sys.Shutdown(ctx)
			})
			svc, err := service.New(r, store, sys, llmtest.Echo(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			ag, err := svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPTV2})
			if err != nil {
				b.Fatal(err)
			}
			req := agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hello there"}}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.SendMessage(ctx, ag.ID, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
