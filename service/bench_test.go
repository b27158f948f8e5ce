package service_test

import (
	"path/filepath"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

func sqliteEnv(b *testing.B) *env {
	b.Helper()
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return newEnv(b, store, llmtest.Echo())
}

// BenchmarkCreateAgent creates agents with two memory blocks on SQLite,
// one caller at a time (each create is one durable commit).
func BenchmarkCreateAgent(b *testing.B) {
	e := sqliteEnv(b)
	req := agent.CreateRequest{Name: "bench", Blocks: []agent.BlockCreate{human("likes tea"), {Label: "persona", Value: "helpful"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.CreateAgent(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateAgentParallel creates agents from many callers at once.
func BenchmarkCreateAgentParallel(b *testing.B) {
	e := sqliteEnv(b)
	req := agent.CreateRequest{Name: "bench"}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.CreateAgent(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSendMessage runs one turn (user message, a scripted
// send_message call, its return) on an active agent on SQLite.
func BenchmarkSendMessage(b *testing.B) {
	e := sqliteEnv(b)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPTV2})
	if err != nil {
		b.Fatal(err)
	}
	req := agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hello there"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.SendMessage(ctx, ag.ID, req); err != nil {
			b.Fatal(err)
		}
	}
}
