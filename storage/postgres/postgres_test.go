package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/storagetest"
)

// envURL names the variable holding the test server's URL. The role it
// names must be allowed to CREATE SCHEMA in its database: every test gets
// a fresh schema, selected with search_path, and drops it afterwards.
const envURL = "KELPIE_TEST_POSTGRES_URL"

var (
	serverOnce sync.Once
	serverErr  error
)

// serverURL returns the test server's URL, or skips (fails when CI is
// true) if there is none or it is unreachable.
func serverURL(tb testing.TB) string {
	tb.Helper()
	raw := os.Getenv(envURL)
	serverOnce.Do(func() {
		if raw == "" {
			serverErr = fmt.Errorf("%s is not set", envURL)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, raw)
		if err != nil {
			serverErr = fmt.Errorf("%s is unreachable: %w", envURL, err)
			return
		}
		conn.Close(ctx)
	})
	if serverErr != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			tb.Fatalf("PostgreSQL tests cannot run under CI: %v (scripts/test.sh starts a local server and sets it)", serverErr)
		}
		tb.Skipf("skipping PostgreSQL tests: %v; run scripts/test.sh, which starts a local server, or set %s=postgres://user:pass@host:5432/db", serverErr, envURL)
	}
	return raw
}

// freshSchema creates an empty schema for tb, drops it when tb ends, and
// returns a URL whose connections use it.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	base := serverURL(tb)
	var b [6]byte
	rand.Read(b[:])
	schema := "kelpie_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(tb, base, schema)
}

func withSearchPath(tb testing.TB, raw, schema string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL: %q", envURL, raw)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(tb testing.TB, url string) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, url)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	serverURL(t)
	storagetest.Run(t, storagetest.Backend{
		Durable: true,
		Text:    true,
		New: func(t *testing.T) storagetest.Opener {
			u := freshSchema(t)
			return func(t *testing.T) storage.Store { return open(t, u) }
		},
	})
}

// TestOpenConcurrently opens one fresh database from many goroutines at
// once: schema creation must be idempotent and serialized.
func TestOpenConcurrently(t *testing.T) {
	u := freshSchema(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), u)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent open: %v", err)
	}
	// Opening again finds the schema and its version row.
	s := open(t, u)
	defer s.Close()
	var v int64
	if err := s.pool.QueryRow(context.Background(), "SELECT value FROM kelpie_meta WHERE name = 'schema_version'").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema_version = %d, %v; want %d", v, err, SchemaVersion)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer binary is not
// opened by this one.
func TestNewerSchemaRefused(t *testing.T) {
	u := freshSchema(t)
	s := open(t, u)
	if _, err := s.pool.Exec(context.Background(), "UPDATE kelpie_meta SET value = $1 WHERE name = 'schema_version'", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(context.Background(), u); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema version")
	}
}

// TestTwoNodes opens two Stores on one database, as two Kelpie nodes would:
// fencing, OCC conflicts and version order hold across them.
func TestTwoNodes(t *testing.T) {
	u := freshSchema(t)
	a, b := open(t, u), open(t, u)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	commit := func(s *Store, fn func(tx *storage.Txn)) error {
		tx, err := s.Begin(ctx)
		if err != nil {
			return err
		}
		fn(tx)
		return tx.Commit(ctx)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fence := []byte("epoch/agent-1")

	// Node b activates the agent at epoch 1 and commits under that fence.
	must(commit(b, func(tx *storage.Txn) { tx.Set(fence, storage.EncodeEpoch(1)) }))
	must(commit(b, func(tx *storage.Txn) { tx.Fence(fence, 1); tx.Set([]byte("state"), []byte("b@1")) }))

	// b starts another step; meanwhile node a takes over at epoch 2.
	stale, err := b.Begin(ctx)
	must(err)
	stale.Fence(fence, 1)
	stale.Set([]byte("state"), []byte("b@1 stale"))
	must(commit(a, func(tx *storage.Txn) { tx.Set(fence, storage.EncodeEpoch(2)) }))
	if err := stale.Commit(ctx); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("stale node's commit: err = %v, want ErrFenced", err)
	}
	must(commit(a, func(tx *storage.Txn) { tx.Fence(fence, 2); tx.Set([]byte("state"), []byte("a@2")) }))
	if v, _, _, err := b.Get(ctx, []byte("state")); err != nil || string(v) != "a@2" {
		t.Fatalf("state seen from b = %q, %v; want a@2", v, err)
	}

	// A read on one node conflicts with a write from the other.
	tx, err := a.Begin(ctx)
	must(err)
	if _, err := tx.Get(ctx, []byte("state")); err != nil {
		t.Fatal(err)
	}
	tx.Set([]byte("derived"), []byte("x"))
	must(commit(b, func(tx *storage.Txn) { tx.Set([]byte("state"), []byte("b again")) }))
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("cross-node read-write: err = %v, want ErrConflict", err)
	}

	// Versions from both nodes, committed one after the other, grow strictly.
	var last storage.Version
	for i := range 20 {
		s := []*Store{a, b}[i%2]
		must(commit(s, func(tx *storage.Txn) { tx.Set([]byte("v"), []byte(strconv.Itoa(i))) }))
		_, ver, ok, err := []*Store{b, a}[i%2].Get(ctx, []byte("v"))
		if err != nil || !ok {
			t.Fatalf("get v: %v, %v", ok, err)
		}
		if ver <= last {
			t.Fatalf("commit %d got version %d, not after %d", i, ver, last)
		}
		last = ver
	}

	// Concurrent read-modify-write from both nodes: every increment counts once.
	must(commit(a, func(tx *storage.Txn) { tx.Set([]byte("ctr"), []byte("0")) }))
	const workers, each = 6, 15
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*Store{a, b}[w%2]
			for done := 0; done < each; {
				tx, err := s.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				v, err := tx.Get(ctx, []byte("ctr"))
				if err != nil {
					errs <- err
					return
				}
				n, _ := strconv.Atoi(string(v))
				tx.Set([]byte("ctr"), []byte(strconv.Itoa(n+1)))
				switch err := tx.Commit(ctx); {
				case err == nil:
					done++
				case errors.Is(err, storage.ErrConflict):
					conflicts.Add(1)
				default:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if v, _, _, _ := a.Get(ctx, []byte("ctr")); string(v) != strconv.Itoa(workers*each) {
		t.Fatalf("ctr = %s after %d increments across two nodes", v, workers*each)
	}
	t.Logf("%d increments across two nodes, %d conflicts retried", workers*each, conflicts.Load())
}

// TestSerializationFailureIsConflict forces a PostgreSQL serialization
// failure inside Commit (write skew with a raw SERIALIZABLE transaction
// that commits between Commit's validation and its writes) and checks
// that it surfaces as storage.ErrConflict carrying the PostgreSQL error.
func TestSerializationFailureIsConflict(t *testing.T) {
	s := open(t, freshSchema(t))
	defer s.Close()
	ctx := context.Background()
	for _, k := range []string{"p", "q"} {
		if _, err := s.pool.Exec(ctx, "INSERT INTO kelpie_kv VALUES ($1, '', nextval('kelpie_version'))", []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	// other reads q and writes p; the store's commit reads p and writes q.
	other, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, "SELECT * FROM kelpie_kv WHERE key = 'q'"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, "UPDATE kelpie_kv SET value = 'o' WHERE key = 'p'"); err != nil {
		t.Fatal(err)
	}
	_, pver, _, err := s.Get(ctx, []byte("p"))
	if err != nil {
		t.Fatal(err)
	}
	s.afterValidate = func() {
		if err := other.Commit(ctx); err != nil {
			t.Errorf("other commit: %v", err)
		}
	}
	err = s.Commit(ctx, &storage.CommitRequest{
		Reads:  []storage.ReadRecord{{Key: []byte("p"), Version: pver}},
		Writes: []storage.Write{{Key: []byte("q"), Value: []byte("s")}},
	})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after write skew: err = %v, want ErrConflict", err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !isConflict(pgErr.Code) {
		t.Fatalf("conflict does not carry the PostgreSQL error: %v", err)
	}
	if v, _, _, _ := s.Get(ctx, []byte("q")); string(v) != "" {
		t.Fatalf("conflicting commit applied: q = %q", v)
	}
}

// TestConflictAfterValidation: a commit from another node that lands
// after this commit validated its reads, but before it wrote, still makes
// this commit fail with ErrConflict (PostgreSQL's serializable isolation,
// not Validate, catches these).
func TestConflictAfterValidation(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		initial bool                  // k exists before
		other   func(tx *storage.Txn) // the other node's commit, between validate and apply
		writes  []storage.Write       // this commit's writes (it read k)
	}{
		{"update", true, func(tx *storage.Txn) { tx.Set([]byte("k"), []byte("other")) }, []storage.Write{{Key: []byte("k"), Value: []byte("mine")}}},
		{"delete", true, func(tx *storage.Txn) { tx.Delete([]byte("k")) }, []storage.Write{{Key: []byte("k"), Value: []byte("mine")}}},
		{"create", false, func(tx *storage.Txn) { tx.Set([]byte("k"), []byte("other")) }, []storage.Write{{Key: []byte("k"), Value: []byte("mine")}}},
		{"range-delete", true, func(tx *storage.Txn) { tx.DeleteRange([]byte("a"), nil) }, []storage.Write{{Key: []byte("k"), Value: []byte("mine")}}},
		{"set-vs-delete", true, func(tx *storage.Txn) { tx.Set([]byte("k"), []byte("other")) }, []storage.Write{{Key: []byte("k"), Delete: true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := freshSchema(t)
			a, b := open(t, u), open(t, u)
			defer a.Close()
			defer b.Close()
			if c.initial {
				tx, _ := a.Begin(ctx)
				tx.Set([]byte("k"), []byte("initial"))
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			_, ver, _, err := a.Get(ctx, []byte("k"))
			if err != nil {
				t.Fatal(err)
			}
			a.afterValidate = func() {
				tx, _ := b.Begin(ctx)
				c.other(tx)
				if err := tx.Commit(ctx); err != nil {
					t.Errorf("other node's commit: %v", err)
				}
			}
			err = a.Commit(ctx, &storage.CommitRequest{
				Reads:  []storage.ReadRecord{{Key: []byte("k"), Version: ver}},
				Writes: c.writes,
			})
			a.afterValidate = nil
			if !errors.Is(err, storage.ErrConflict) {
				v, _, found, _ := a.Get(ctx, []byte("k"))
				t.Fatalf("err = %v, want ErrConflict (k now %q, found=%v)", err, v, found)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

func TestIsConflict(t *testing.T) {
	s := &Store{}
	for code, want := range map[string]bool{"40001": true, "40P01": true, "23505": false, "57014": false} {
		err := s.wrap("op", fmt.Errorf("x: %w", &pgconn.PgError{Code: code}))
		if got := errors.Is(err, storage.ErrConflict); got != want {
			t.Errorf("SQLSTATE %s: ErrConflict = %v, want %v", code, got, want)
		}
	}
}

// TestCancelledCommit: a cancelled context aborts the commit, which is not
// reported as a conflict and writes nothing.
func TestCancelledCommit(t *testing.T) {
	s := open(t, freshSchema(t))
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Set([]byte("k"), []byte("v"))
	cancel()
	err = tx.Commit(ctx)
	if err == nil || errors.Is(err, storage.ErrConflict) || !errors.Is(err, context.Canceled) {
		t.Fatalf("commit with cancelled ctx: err = %v, want context.Canceled", err)
	}
	if _, _, ok, err := s.Get(context.Background(), []byte("k")); ok || err != nil {
		t.Fatalf("cancelled commit applied: found=%v err=%v", ok, err)
	}

	// Cancellation while the commit waits on a lock held by another
	// transaction aborts it too.
	other, err := s.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(context.Background())
	if _, err := other.Exec(context.Background(), "INSERT INTO kelpie_kv VALUES ('k', 'other', nextval('kelpie_version'))"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	tx, _ = s.Begin(ctx)
	tx.Set([]byte("k"), []byte("blocked"))
	start := time.Now()
	err = tx.Commit(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("commit blocked on a lock, deadline passed: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("blocked commit took %v to abort", d)
	}
}

func TestClosed(t *testing.T) {
	s := open(t, freshSchema(t))
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Set([]byte("k"), []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("commit after close: err = %v, want ErrClosed", err)
	}
	if _, err := s.Begin(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("begin after close: err = %v, want ErrClosed", err)
	}
	if _, _, _, err := s.Get(ctx, []byte("k")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("get after close: err = %v, want ErrClosed", err)
	}
	if _, err := s.Scan(ctx, storage.ScanOptions{Limit: 1}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("scan after close: err = %v, want ErrClosed", err)
	}
}

// TestBackendScanArgs: Scan called directly (not through a Txn) rejects
// bad limits.
func TestBackendScanArgs(t *testing.T) {
	s := open(t, freshSchema(t))
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Scan(ctx, storage.ScanOptions{}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("limit 0: err = %v, want ErrInvalid", err)
	}
	if _, err := s.Scan(ctx, storage.ScanOptions{Limit: storage.ScanLimitMax + 1}); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("limit over max: err = %v, want ErrTooLarge", err)
	}
}

func BenchmarkCommit(b *testing.B) {
	s := open(b, freshSchema(b))
	defer s.Close()
	ctx := context.Background()
	val := make([]byte, 100)
	for i := 0; b.Loop(); i++ {
		tx, err := s.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tx.Set([]byte(fmt.Sprintf("bench/%08d", i)), val)
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommitParallel(b *testing.B) {
	s := open(b, freshSchema(b))
	defer s.Close()
	ctx := context.Background()
	val := make([]byte, 100)
	var next, conflicts atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for {
				tx, err := s.Begin(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				tx.Set([]byte(fmt.Sprintf("bench/%08d", next.Add(1))), val)
				err = tx.Commit(ctx)
				if errors.Is(err, storage.ErrConflict) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					b.Error(err)
					return
				}
				break
			}
		}
	})
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
}

// TestMigrateFromV1 opens a database created with schema version 1 (before
// the full-text table): its pairs survive, and it gains the full-text
// table and records the current version.
func TestMigrateFromV1(t *testing.T) {
	u := freshSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE kelpie_kv (key BYTEA PRIMARY KEY, value BYTEA NOT NULL, version BIGINT NOT NULL)`,
		`CREATE SEQUENCE kelpie_version AS BIGINT MINVALUE 1 START WITH 1`,
		`CREATE TABLE kelpie_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`INSERT INTO kelpie_meta (name, value) VALUES ('schema_version', 1)`,
		`INSERT INTO kelpie_kv VALUES ('k1', 'v1', nextval('kelpie_version'))`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)

	s := open(t, u)
	defer s.Close()
	if v, _, found, err := s.Get(ctx, []byte("k1")); err != nil || !found || string(v) != "v1" {
		t.Fatalf("get k1 after migration = %q, %v, %v", v, found, err)
	}
	var version int64
	if err := s.pool.QueryRow(ctx, "SELECT value FROM kelpie_meta WHERE name = 'schema_version'").Scan(&version); err != nil || version != SchemaVersion {
		t.Fatalf("schema_version after migration = %d, %v; want %d", version, err, SchemaVersion)
	}
	tx, _ := s.Begin(ctx)
	if err := tx.SetWithText([]byte("k2"), nil, "a zebra after the migration"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	hits, err := s.SearchText(ctx, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 10})
	if err != nil || len(hits) != 1 || string(hits[0].Key) != "k2" {
		t.Fatalf("search after migration = %v, %v", hits, err)
	}
	// Opening again finds the migrated schema.
	open(t, u).Close()
}

// TestMigrateFromV2 opens a database created with schema version 2
// (documents without scopes): its documents stay searchable, by unscoped
// searches only, until rewritten with a scope.
func TestMigrateFromV2(t *testing.T) {
	u := freshSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`CREATE TABLE kelpie_kv (key BYTEA PRIMARY KEY, value BYTEA NOT NULL, version BIGINT NOT NULL)`,
		`CREATE SEQUENCE kelpie_version AS BIGINT MINVALUE 1 START WITH 1`,
		`CREATE TABLE kelpie_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`INSERT INTO kelpie_meta (name, value) VALUES ('schema_version', 2)`,
	}
	stmts = append(stmts, migrations[0]...)
	stmts = append(stmts,
		`INSERT INTO kelpie_kv VALUES ('a/1', 'v', nextval('kelpie_version'), true), ('a/2', 'v', nextval('kelpie_version'), true)`,
		`INSERT INTO kelpie_text VALUES ('a/1', 0, to_tsvector('english', 'zebra old one')), ('a/2', 0, to_tsvector('english', 'zebra old two'))`,
	)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)

	s := open(t, u)
	defer s.Close()
	var version int64
	if err := s.pool.QueryRow(ctx, "SELECT value FROM kelpie_meta WHERE name = 'schema_version'").Scan(&version); err != nil || version != SchemaVersion {
		t.Fatalf("schema_version after migration = %d, %v; want %d", version, err, SchemaVersion)
	}
	keys := func(scope string) []string {
		t.Helper()
		hits, err := s.SearchText(ctx, storage.TextSearchOptions{Scope: []byte(scope), Terms: []string{"zebra"}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, string(h.Key))
		}
		slices.Sort(out)
		return out
	}
	if got := keys(""); !slices.Equal(got, []string{"a/1", "a/2"}) {
		t.Fatalf("unscoped search after migration = %q", got)
	}
	if got := keys("a/"); len(got) != 0 {
		t.Fatalf("scoped search finds version-2 documents: %q", got)
	}
	tx, _ := s.Begin(ctx)
	if err := tx.SetWithTextScoped([]byte("a/2"), nil, 2, "zebra new two"); err != nil {
		t.Fatal(err)
	}
	if err := tx.SetWithText([]byte("a/3"), nil, "zebra new three"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := keys("a/"); !slices.Equal(got, []string{"a/2"}) {
		t.Fatalf("scoped search after rewriting = %q", got)
	}
	if got := keys(""); !slices.Equal(got, []string{"a/1", "a/2", "a/3"}) {
		t.Fatalf("unscoped search after rewriting = %q", got)
	}
	// Documents without a scope hold NULL, outside the scope index.
	var nulls, scoped int
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE scope IS NULL), count(*) FILTER (WHERE scope = 'a/') FROM kelpie_text").Scan(&nulls, &scoped); err != nil || nulls != 2 || scoped != 1 {
		t.Fatalf("%d rows without a scope, %d in a/, %v; want 2 and 1", nulls, scoped, err)
	}
	open(t, u).Close()
}

// TestChunkText: long documents split into bounded pieces at whitespace or
// rune boundaries, losing nothing.
func TestChunkText(t *testing.T) {
	words := strings.Repeat("zebra ", storage.TextBytesMax/6)
	noSpace := strings.Repeat("é", storage.TextBytesMax/2)
	mixed := strings.Repeat("x", textChunkBytes/2+10) + " " + strings.Repeat("ü", textChunkBytes)
	for name, text := range map[string]string{"empty": "", "short": "a zebra", "exact": strings.Repeat("z", textChunkBytes),
		"words": words, "no spaces": noSpace, "mixed": mixed} {
		chunks := chunkText(text)
		if strings.Join(chunks, "") != text {
			t.Errorf("%s: chunks do not rejoin to the text", name)
		}
		for i, c := range chunks {
			if len(c) > textChunkBytes || !utf8.ValidString(c) {
				t.Errorf("%s: chunk %d: %d bytes, valid UTF-8 %v", name, i, len(c), utf8.ValidString(c))
			}
			if i < len(chunks)-1 && len(c) < textChunkBytes/2 {
				t.Errorf("%s: chunk %d of %d has only %d bytes", name, i, len(chunks), len(c))
			}
		}
		if most := 2*storage.TextBytesMax/textChunkBytes + 1; len(chunks) > most || len(chunks) > math.MaxInt16 {
			t.Errorf("%s: %d chunks, more than %d", name, len(chunks), most)
		}
	}
}

// BenchmarkTextSearch: 10k and then 50k documents of 50 words, two-term
// searches with limit 10 (see storagetest.BenchmarkTextSearch), after
// ANALYZE.
func BenchmarkTextSearch(b *testing.B) {
	s := open(b, freshSchema(b))
	defer s.Close()
	storagetest.BenchmarkTextSearch(b, analyzed{s})
}

// analyzed is a Store whose Settle runs ANALYZE on the full-text table:
// the planner's statistics a production database would have once
// autovacuum has seen a bulk load. Without them, the planner guesses the
// selectivity of a scope or key range and of the tsquery, and tends to
// AND a bitmap of every document matching the terms (found through the
// GIN index, across all scopes) with the scope's or range's.
type analyzed struct{ *Store }

func (a analyzed) Settle(ctx context.Context) error {
	_, err := a.pool.Exec(ctx, "ANALYZE "+textTable)
	return err
}

// BenchmarkCommitText compares a one-key commit with and without a
// 50-word document (see storagetest.BenchmarkCommitText).
func BenchmarkCommitText(b *testing.B) {
	s := open(b, freshSchema(b))
	defer s.Close()
	storagetest.BenchmarkCommitText(b, s)
}
