package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

// Stats counts the commits with writes and the SQLite transactions that
// carried them, as the internal counters do.
func TestStats(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "kelpie.db"))
	defer s.Close()
	before := s.Stats()
	for i := range 3 {
		tx, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tx.Set(fmt.Appendf(nil, "k%d", i), []byte("v"))
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Stats()
	if d := got.Commits - before.Commits; d != 3 {
		t.Fatalf("%d commits counted, want 3", d)
	}
	if d := got.Syncs - before.Syncs; d < 1 || d > 3 {
		t.Fatalf("%d syncs for 3 serial commits, want 1..3", d)
	}
	if got.Commits != sqlite.Applied(s) || got.Syncs != sqlite.Batches(s) {
		t.Fatalf("stats %+v, counters %d %d", got, sqlite.Applied(s), sqlite.Batches(s))
	}
}
