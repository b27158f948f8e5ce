package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
	"github.com/kelpie-ai/kelpie/storage/storagetest"
)

// rawSchema returns the file's user_version and its schema objects.
func rawSchema(t *testing.T, path string) (int, []string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var objects []string
	for rows.Next() {
		var typ, name, tbl, text string
		if err := rows.Scan(&typ, &name, &tbl, &text); err != nil {
			t.Fatal(err)
		}
		objects = append(objects, fmt.Sprintf("%s %s on %s: %s", typ, name, tbl, text))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return version, objects
}

func searchKeys(t *testing.T, s *sqlite.Store, terms ...string) []string {
	t.Helper()
	hits, err := s.SearchText(context.Background(), storage.TextSearchOptions{Terms: terms, Limit: 100})
	if err != nil {
		t.Fatalf("search %q: %v", terms, err)
	}
	keys := make([]string, len(hits))
	for i, h := range hits {
		keys[i] = string(h.Key)
	}
	return keys
}

// TestMigrateFromV1 opens a file written with schema version 1 (before the
// full-text index): its pairs and versions survive, it gains the index,
// and its schema ends up identical to a new file's.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := filepath.Join(dir, "v1.db")
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range append(slices.Clone(sqlite.SchemaV1),
		`INSERT INTO kv (key, value, version) VALUES (x'6b31', x'7631', 7)`,
		`UPDATE meta SET value = 7 WHERE name = 'last_version'`,
	) {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	db.Close()
	if v, _ := rawSchema(t, old); v != 1 {
		t.Fatalf("hand-made file at version %d, want 1", v)
	}

	s := open(t, old)
	if v, ver, found, err := s.Get(ctx, []byte("k1")); err != nil || !found || string(v) != "v1" || ver != 7 {
		t.Fatalf("get k1 after migration = %q, %d, %v, %v", v, ver, found, err)
	}
	set(t, s, "k2", "plain")
	tx, _ := s.Begin(ctx)
	if err := tx.SetWithText([]byte("k3"), []byte("v3"), "a zebra after the migration"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ver, _, _ := s.Get(ctx, []byte("k3")); ver <= 7 {
		t.Fatalf("version after migration %d, not above 7", ver)
	}
	if got := searchKeys(t, s, "zebra"); !slices.Equal(got, []string{"k3"}) {
		t.Fatalf("search after migration = %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fresh := filepath.Join(dir, "fresh.db")
	if err := open(t, fresh).Close(); err != nil {
		t.Fatal(err)
	}
	oldVersion, oldSchema := rawSchema(t, old)
	freshVersion, freshSchema := rawSchema(t, fresh)
	if oldVersion != sqlite.SchemaVersion || freshVersion != sqlite.SchemaVersion {
		t.Fatalf("user_version: migrated %d, fresh %d; want %d", oldVersion, freshVersion, sqlite.SchemaVersion)
	}
	if !slices.Equal(oldSchema, freshSchema) {
		t.Fatalf("migrated schema differs from a fresh one:\nmigrated: %q\nfresh:    %q", oldSchema, freshSchema)
	}

	// Reopening a migrated file migrates nothing and keeps the index.
	s = open(t, old)
	defer s.Close()
	if got := searchKeys(t, s, "zebra"); !slices.Equal(got, []string{"k3"}) {
		t.Fatalf("search after reopen = %q", got)
	}
}

// TestTextConflictsWithinBatch commits many transactions that read the
// same key and then write it, each with a document; group commit puts them
// in the same batch, where the savepoints must index only the winner's.
func TestTextConflictsWithinBatch(t *testing.T) {
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
		if err := tx.SetWithText([]byte(fmt.Sprintf("doc/%02d", i)), nil, fmt.Sprintf("zebra writer%02d", i)); err != nil {
			t.Fatal(err)
		}
		txs[i] = tx
	}
	var wins atomic.Int32
	winner := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch err := tx.Commit(ctx); {
			case err == nil:
				wins.Add(1)
				winner <- i
			case errors.Is(err, storage.ErrConflict):
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d transactions won, want 1", wins.Load())
	}
	w := <-winner
	if got, want := searchKeys(t, s, "zebra"), []string{fmt.Sprintf("doc/%02d", w)}; !slices.Equal(got, want) {
		t.Fatalf("indexed %q, want only the winner's %q", got, want)
	}
	t.Logf("%d batches", sqlite.Batches(s))
}

// BenchmarkTextSearch: 10k documents of 50 words, two-term searches with
// limit 10 (see storagetest.BenchmarkTextSearch).
func BenchmarkTextSearch(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kelpie.db"))
	defer s.Close()
	storagetest.BenchmarkTextSearch(b, s)
}

// BenchmarkCommitText compares a one-key commit with and without a
// 50-word document (see storagetest.BenchmarkCommitText).
func BenchmarkCommitText(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "kelpie.db"))
	defer s.Close()
	storagetest.BenchmarkCommitText(b, s)
}
