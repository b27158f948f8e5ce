package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
	"github.com/kelpie-ai/kelpie/storage/storagetest"
)

func open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Backend{
		New: func(t *testing.T) storagetest.Opener {
			// A directory that does not exist yet: Open creates it.
			path := filepath.Join(t.TempDir(), "data", "kelpie.db")
			return func(t *testing.T) storage.Store { return open(t, path) }
		},
		Durable: true,
		Text:    true,
	})
}

func set(t testing.TB, s storage.Store, key, value string) {
	t.Helper()
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte(key), []byte(value)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("commit %s=%s: %v", key, value, err)
	}
}

func TestDurabilityPragmas(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kelpie.db"))
	defer s.Close()
	mode, sync, err := sqlite.WriterPragmas(s)
	if err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 {
		t.Fatalf("journal_mode=%q synchronous=%d, want wal and 2 (FULL)", mode, sync)
	}
}

// TestVersionsGrowAcrossReopen checks the meta row: a write after a reopen
// gets a version above every version written before it.
func TestVersionsGrowAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kelpie.db")
	s := open(t, path)
	for i := range 5 {
		set(t, s, fmt.Sprintf("k%d", i), "v")
	}
	_, before, _, err := s.Get(ctx, []byte("k4"))
	if err != nil || before == 0 {
		t.Fatalf("get k4: version %d, %v", before, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	defer s.Close()
	set(t, s, "after", "v")
	_, after, _, err := s.Get(ctx, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("version after reopen %d, not above %d", after, before)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "kelpie.db"))
	set(t, s, "a", "1")
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("commit after close: %v, want ErrClosed", err)
	}
	if _, err := s.Begin(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("begin after close: %v, want ErrClosed", err)
	}
	if _, _, _, err := s.Get(ctx, []byte("a")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("get after close: %v, want ErrClosed", err)
	}
	if _, err := s.Scan(ctx, storage.ScanOptions{Limit: 1}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("scan after close: %v, want ErrClosed", err)
	}
}

// TestCloseDuringCommits closes the store under concurrent committers: each
// commit either succeeds (and is then durable) or fails with ErrClosed.
func TestCloseDuringCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kelpie.db")
	s := open(t, path)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				key := fmt.Sprintf("g%d/%d", g, i)
				tx, err := s.Begin(ctx)
				if err == nil {
					tx.Set([]byte(key), []byte(key))
					err = tx.Commit(ctx)
				}
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("commit %s: %v", key, err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = open(t, path)
	defer s.Close()
	for _, k := range acked {
		if _, _, found, err := s.Get(ctx, []byte(k)); err != nil || !found {
			t.Fatalf("acknowledged key %s missing after close: found=%v err=%v", k, found, err)
		}
	}
	t.Logf("%d commits acknowledged before close", len(acked))
}

func TestSchemaChecks(t *testing.T) {
	dir := t.TempDir()
	raw := func(path string, stmts ...string) {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, st := range stmts {
			if _, err := db.Exec(st); err != nil {
				t.Fatalf("%s: %v", st, err)
			}
		}
	}

	newer := filepath.Join(dir, "newer.db")
	s := open(t, newer)
	set(t, s, "a", "1")
	s.Close()
	raw(newer, "PRAGMA user_version = 99")
	if _, err := sqlite.Open(newer); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("open of a newer schema: err = %v, want a refusal", err)
	}

	foreign := filepath.Join(dir, "foreign.db")
	raw(foreign, "CREATE TABLE kv (k TEXT)")
	if _, err := sqlite.Open(foreign); !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("open of a foreign database: err = %v, want ErrCorrupt", err)
	}

	if _, err := sqlite.Open(dir); err == nil {
		t.Error("open of a directory succeeded")
	}
}

// TestAwkwardPath opens a file whose path holds the characters a SQLite
// URI treats specially.
func TestAwkwardPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d e", "kelpie?.db")
	s := open(t, path)
	set(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at its path: %v", err)
	}
	s = open(t, path)
	defer s.Close()
	if v, _, found, err := s.Get(context.Background(), []byte("k")); err != nil || !found || string(v) != "v" {
		t.Fatalf("get after reopen = %q, %v, %v", v, found, err)
	}
}

// TestCommitCancelledWhileQueued holds SQLite's write lock from another
// connection so the writer is stuck on a batch; a commit queued behind it
// honours its context and writes nothing, and the stuck commit completes
// once the lock is released.
func TestCommitCancelledWhileQueued(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kelpie.db")
	s := open(t, path)
	defer s.Close()

	lockDB, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lockDB.Close()
	lock, err := lockDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() {
		tx, _ := s.Begin(ctx)
		tx.Set([]byte("first"), []byte("1"))
		first <- tx.Commit(ctx)
	}()
	for sqlite.BatchesStarted(s) == 0 { // wait for the writer to take "first"
		time.Sleep(time.Millisecond)
	}

	// Reads use their own connections and do not wait for the writer.
	readCtx, cancelRead := context.WithTimeout(ctx, time.Second)
	defer cancelRead()
	if _, _, _, err := s.Get(readCtx, []byte("first")); err != nil {
		t.Fatalf("get while the writer is blocked: %v", err)
	}
	if _, err := s.Scan(readCtx, storage.ScanOptions{Limit: 10}); err != nil {
		t.Fatalf("scan while the writer is blocked: %v", err)
	}

	tx, _ := s.Begin(ctx)
	tx.Set([]byte("second"), []byte("2"))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := tx.Commit(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued commit with an expired context: err = %v, want DeadlineExceeded", err)
	}

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("commit stuck behind the lock: %v", err)
	}
	if _, _, found, _ := s.Get(ctx, []byte("second")); found {
		t.Fatal("abandoned commit was applied")
	}
	if _, _, found, _ := s.Get(ctx, []byte("first")); !found {
		t.Fatal("first commit missing")
	}
}

// TestGroupCommitBatches runs many concurrent committers and checks the
// writer folded them into fewer SQLite transactions (fsyncs) than commits.
func TestGroupCommitBatches(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "kelpie.db"))
	defer s.Close()
	const committers, each = 64, 8
	var wg sync.WaitGroup
	for g := range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tx, err := s.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				tx.Set([]byte(fmt.Sprintf("g%02d/%d", g, i)), []byte("v"))
				if err := tx.Commit(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	commits, batches := sqlite.Applied(s), sqlite.Batches(s)
	if commits != committers*each {
		t.Fatalf("%d commits applied, want %d", commits, committers*each)
	}
	if batches >= commits {
		t.Fatalf("%d batches for %d commits: group commit did not batch", batches, commits)
	}
	t.Logf("%d commits in %d batches (%.1f per fsync)", commits, batches, float64(commits)/float64(batches))
	kvs, err := s.Scan(ctx, storage.ScanOptions{Limit: storage.ScanLimitMax})
	if err != nil || len(kvs) != committers*each {
		t.Fatalf("scan: %d pairs, %v", len(kvs), err)
	}
}

// TestConflictsWithinBatch commits many transactions that all read the same
// key and then write it; group commit puts them in the same batch, where the
// savepoints must let exactly one through.
func TestConflictsWithinBatch(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "kelpie.db"))
	defer s.Close()
	set(t, s, "ctr", "0")
	const n = 32
	txs := make([]*storage.Txn, n)
	for i := range txs {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Get(ctx, []byte("ctr")); err != nil {
			t.Fatal(err)
		}
		tx.Set([]byte("ctr"), []byte(fmt.Sprint(i)))
		tx.Set([]byte(fmt.Sprintf("mark/%02d", i)), nil)
		txs[i] = tx
	}
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch err := tx.Commit(ctx); {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, storage.ErrConflict):
				conflicts.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != n-1 {
		t.Fatalf("%d won, %d conflicted; want 1 and %d", wins.Load(), conflicts.Load(), n-1)
	}
	marks, err := s.Scan(ctx, storage.ScanOptions{Start: []byte("mark/"), End: storage.PrefixEnd([]byte("mark/")), Limit: 100})
	if err != nil || len(marks) != 1 {
		t.Fatalf("%d marks written (%v), want only the winner's", len(marks), err)
	}
	t.Logf("%d batches", sqlite.Batches(s))
}

func BenchmarkCommitSerial(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "kelpie.db"))
	defer s.Close()
	value := []byte(strings.Repeat("v", 100))
	i := 0
	b.ResetTimer()
	for b.Loop() {
		tx, err := s.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tx.Set([]byte(fmt.Sprintf("key/%09d", i)), value)
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(sqlite.Batches(s))/float64(i), "fsyncs/op")
}

func BenchmarkCommitParallel(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "kelpie.db"))
	defer s.Close()
	value := []byte(strings.Repeat("v", 100))
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tx, err := s.Begin(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			tx.Set([]byte(fmt.Sprintf("key/%09d", next.Add(1))), value)
			if err := tx.Commit(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := next.Load(); n > 0 {
		b.ReportMetric(float64(sqlite.Batches(s))/float64(n), "fsyncs/op")
	}
}
