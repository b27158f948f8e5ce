package actor_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

func sqliteStore(b *testing.B) storage.Store {
	b.Helper()
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func newBenchFixture(b *testing.B, store storage.Store) *fixture {
	return newFixture(b, actor.Config{Store: store})
}

// BenchmarkInvokeNoop measures routing and running one read-only
// invocation on an already active actor (memory storage, no commit).
func BenchmarkInvokeNoop(b *testing.B) {
	f := newBenchFixture(b, memory.New())
	ctx := context.Background()
	if _, err := f.sys.Invoke(ctx, id("x"), "get", nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.sys.Invoke(ctx, id("x"), "get", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeCommitSQLite measures an invocation that changes state and
// commits durably to SQLite, from one caller (one fsync per invocation).
func BenchmarkInvokeCommitSQLite(b *testing.B) {
	f := newBenchFixture(b, sqliteStore(b))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.sys.Invoke(ctx, id("x"), "add", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeCommitSQLiteParallel runs durable invocations from many
// callers on different actors; group commit lets them share fsyncs.
func BenchmarkInvokeCommitSQLiteParallel(b *testing.B) {
	f := newBenchFixture(b, sqliteStore(b))
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		who := id(fmt.Sprint("p", next.Add(1)))
		for pb.Next() {
			if _, err := f.sys.Invoke(ctx, who, "add", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkColdActivation measures activating an actor whose state is in
// storage (claim a new epoch durably, load and decode the state), running
// one read, and deactivating it.
func BenchmarkColdActivation(b *testing.B) {
	for _, backend := range []string{"memory", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			store := storage.Store(memory.New())
			if backend == "sqlite" {
				store = sqliteStore(b)
			}
			f := newBenchFixture(b, store)
			ctx := context.Background()
			if _, err := f.sys.Invoke(ctx, id("cold"), "add", nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := f.sys.Deactivate(ctx, id("cold")); err != nil {
					b.Fatal(err)
				}
				if _, err := f.sys.Invoke(ctx, id("cold"), "get", nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
