package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/storage"
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

// scanOnly is a backend without a full-text engine: archival search over
// it ranks every passage itself (the memory store's and simulator's path).
type scanOnly struct{ b storage.Backend }

func (s scanOnly) Begin(context.Context) (*storage.Txn, error) { return storage.NewTxn(s), nil }
func (s scanOnly) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	return s.b.Get(ctx, key)
}
func (s scanOnly) Scan(ctx context.Context, o storage.ScanOptions) ([]storage.VersionedKV, error) {
	return s.b.Scan(ctx, o)
}
func (s scanOnly) Commit(ctx context.Context, req *storage.CommitRequest) error {
	return s.b.Commit(ctx, req)
}
func (s scanOnly) Close() error { return nil }

// BenchmarkArchivalSearch searches one agent's 5,000 passages (about 30
// words each) on SQLite for two words, top 10: through the FTS5 index, and
// by ranking every passage in Go (the path of stores without full text).
func BenchmarkArchivalSearch(b *testing.B) {
	const passages = 5000
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e := newEnv(b, store, llmtest.Echo())
	ag := e.create(b, "archivist")
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range passages {
		text := make([]string, 30)
		for j := range text {
			text[j] = words[rng.IntN(len(words))] + strconv.Itoa(rng.IntN(200))
		}
		if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: strings.Join(text, " ")}); err != nil {
			b.Fatalf("insert %d: %v", i, err)
		}
	}
	scan := newEnv(b, scanOnly{store}, llmtest.Echo())
	req := agent.SearchRequest{Query: "alpha7 zulu42", TopK: 10}
	for _, c := range []struct {
		name string
		e    *env
		want string
	}{{"fts5", e, "sqlite-fts5-bm25"}, {"scan", scan, agent.RankingBM25}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.e.svc.SearchPassages(ctx, ag.ID, req)
				if err != nil || res.Ranking != c.want || len(res.Results) == 0 {
					b.Fatalf("search: %v ranking %q, %d results", err, res.Ranking, len(res.Results))
				}
			}
		})
	}
}

// BenchmarkSendMessageLog runs BenchmarkSendMessage's turn on agents
// whose logs hold 10 and 100,000 messages, all but the newest ten
// compacted out of the context window (as a long-lived agent's are): a
// turn's cost must not grow with the log.
func BenchmarkSendMessageLog(b *testing.B) {
	for _, logged := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("logged=%d", logged), func(b *testing.B) {
			e := sqliteEnv(b)
			ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPTV2})
			if err != nil {
				b.Fatal(err)
			}
			seedLog(b, e, ag.ID, logged)
			req := agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hello there"}}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.SendMessage(ctx, ag.ID, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// seedLog writes n messages into an inactive agent's log directly in
// storage, with all but the newest ten compacted (a summary covers them).
func seedLog(b *testing.B, e *env, id string, n int) {
	b.Helper()
	aid := agent.ActorID(id)
	if err := e.sys.Deactivate(ctx, aid); err != nil {
		b.Fatal(err)
	}
	const batch = 5000
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for from := 0; from < n; from += batch {
		tx, err := e.store.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for seq := from; seq < min(from+batch, n); seq++ {
			m := agent.Message{ID: fmt.Sprintf("message-00000000-0000-4000-8000-%012d", seq), Seq: uint64(seq), Role: "user",
				Content: fmt.Sprintf("old message %d", seq), Tokens: 8, CreatedAt: created}
			if seq%2 == 1 {
				m.Role = "assistant"
			}
			v, _ := json.Marshal(&m)
			if err := tx.Set(append(slices.Clone(aid.KVPrefix()), agent.MessageKey(m.Seq)...), v); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	tx, err := e.store.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := tx.Get(ctx, aid.StateKey())
	if err != nil {
		b.Fatal(err)
	}
	var st struct {
		Agent *agent.Agent `json:"agent"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		b.Fatal(err)
	}
	st.Agent.NextSeq, st.Agent.MessageCount = uint64(n), uint64(n)
	if n > 10 {
		st.Agent.ContextStart = uint64(n - 10)
		st.Agent.Summary = &agent.Summary{Text: "Earlier: old messages.", Tokens: 12, Through: uint64(n - 10)}
	}
	v, _ := json.Marshal(&st)
	if err := tx.Set(aid.StateKey(), v); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
}
