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

func scopedKeys(t *testing.T, s *sqlite.Store, scope string, terms ...string) []string {
	t.Helper()
	hits, err := s.SearchText(context.Background(), storage.TextSearchOptions{Scope: []byte(scope), Terms: terms, Limit: 100})
	if err != nil {
		t.Fatalf("search %q in scope %q: %v", terms, scope, err)
	}
	keys := make([]string, len(hits))
	for i, h := range hits {
		keys[i] = string(h.Key)
	}
	return keys
}

func setScoped(t *testing.T, s *sqlite.Store, key string, scopeLen int, text string) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SetWithTextScoped([]byte(key), []byte("v"), scopeLen, text); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// rawExec runs statements on the file at path, outside any Store.
func rawExec(t *testing.T, path string, stmts ...string) {
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

// TestMigrateFromV2 opens a file written with schema version 2 (documents
// without scopes): its documents stay searchable, by unscoped searches
// only, until rewritten with a scope, and its schema ends up identical to
// a new file's.
func TestMigrateFromV2(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "v2.db")
	stmts := append(slices.Clone(sqlite.SchemaV1), sqlite.MigrationV1To2...)
	stmts = append(stmts,
		`PRAGMA user_version = 2`,
		// a/1, a/2, and a/9 with a rowid past 1<<32 (beyond any real
		// file's, but possible): in no real scope's range after the
		// migration either.
		`INSERT INTO kv (key, value, version) VALUES (x'612f31', x'76', 1), (x'612f32', x'76', 1), (x'612f39', x'76', 1)`,
		`INSERT INTO text_doc (id, key) VALUES (1, x'612f31'), (2, x'612f32'), ((1 << 32) + 7, x'612f39')`,
		`INSERT INTO text_fts (rowid, body) VALUES (1, 'zebra old one'), (2, 'zebra old two'), ((1 << 32) + 7, 'zebra old nine')`,
		`UPDATE meta SET value = 1 WHERE name = 'last_version'`,
	)
	rawExec(t, old, stmts...)

	s := open(t, old)
	if got := searchKeys(t, s, "zebra"); !slices.Equal(sorted(got), []string{"a/1", "a/2", "a/9"}) {
		t.Fatalf("unscoped search after migration = %q", got)
	}
	if got := scopedKeys(t, s, "a/", "zebra"); len(got) != 0 {
		t.Fatalf("scoped search finds version-2 documents: %q", got)
	}
	setScoped(t, s, "a/2", 2, "zebra new two")
	setScoped(t, s, "a/3", 2, "zebra new three")
	setScoped(t, s, "b/1", 0, "zebra unscoped")
	if got := scopedKeys(t, s, "a/", "zebra"); !slices.Equal(sorted(got), []string{"a/2", "a/3"}) {
		t.Fatalf("scoped search after rewriting = %q", got)
	}
	if got := searchKeys(t, s, "zebra"); !slices.Equal(sorted(got), []string{"a/1", "a/2", "a/3", "a/9", "b/1"}) {
		t.Fatalf("unscoped search after rewriting = %q", got)
	}
	if got := sorted(searchKeys(t, s, "old")); !slices.Equal(got, []string{"a/1", "a/9"}) {
		t.Fatalf("old text after rewriting = %q", got)
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
}

// TestScopeFull fills the last rowid of a scope's range by hand: new
// documents in the scope then take the rowids freed below it.
func TestScopeFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kelpie.db")
	s := open(t, path)
	setScoped(t, s, "a/1", 2, "zebra one")
	setScoped(t, s, "b/1", 2, "zebra other scope")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Scope a/ is numbered 1: its range ends at 1<<32 | (1<<32 - 1).
	rawExec(t, path, `INSERT INTO text_doc (id, key) VALUES ((1 << 32) | 4294967295, x'612f6c617374')`) // a/last
	s = open(t, path)
	defer s.Close()
	setScoped(t, s, "a/2", 2, "zebra two")   // a gap after a/1's rowid
	setScoped(t, s, "a/1", 0, "zebra moved") // frees the first rowid
	setScoped(t, s, "a/3", 2, "zebra three") // takes it
	setScoped(t, s, "a/4", 2, "zebra four")  // the next gap
	if got := scopedKeys(t, s, "a/", "zebra"); !slices.Equal(sorted(got), []string{"a/2", "a/3", "a/4"}) {
		t.Fatalf("scope a/ = %q", got)
	}
	if got := scopedKeys(t, s, "b/", "zebra"); !slices.Equal(got, []string{"b/1"}) {
		t.Fatalf("scope b/ = %q", got)
	}
	db, err := sql.Open("sqlite", path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT key, id >> 32, id & 4294967295 FROM text_doc ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var key []byte
		var scope, n int64
		if err := rows.Scan(&key, &scope, &n); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d:%d", key, scope, n))
	}
	want := []string{"a/1=0:1", "a/2=1:2", "a/3=1:1", "a/4=1:3", "a/last=1:4294967295", "b/1=2:1"}
	if !slices.Equal(got, want) {
		t.Fatalf("rowids %q, want %q", got, want)
	}
}

func sorted(keys []string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return keys
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

// BenchmarkTextSearch: 10k and then 50k documents of 50 words, two-term
// searches with limit 10 (see storagetest.BenchmarkTextSearch).
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
