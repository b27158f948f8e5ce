// Package storagetest is the conformance suite every storage backend
// passes: ordering, range scans in both directions with limits, errors over
// limits, read-your-writes, isolation, optimistic-concurrency conflicts
// under concurrent transactions, fencing, (for durable backends) data
// that survives a reopen, and either the full-text index (for backends
// implementing storage.TextSearcher; see RunText) or its absence.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/kelpie-ai/kelpie/storage"
)

// Opener opens a store. Within one test, calling it again after Close must
// open the same data when the backend is durable.
type Opener func(t *testing.T) storage.Store

// Backend describes a backend under test.
type Backend struct {
	// New returns an Opener for a fresh, empty store private to t.
	New func(t *testing.T) Opener
	// Durable backends keep committed data across Close and reopen.
	Durable bool
	// Text backends implement storage.TextSearcher, and Run runs the
	// full-text suite (RunText), which fails if they do not. Without Text,
	// Run checks that the backend ignores documents and that searches fail
	// with errors.ErrUnsupported.
	Text bool
}

// Run runs the whole suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"Ordering", testOrdering},
		{"ScanBoundsAndLimits", testScanBoundsAndLimits},
		{"Limits", testLimits},
		{"ReadYourWrites", testReadYourWrites},
		{"DeleteRange", testDeleteRange},
		{"Isolation", testIsolation},
		{"ConflictOnRead", testConflictOnRead},
		{"ConflictOnScan", testConflictOnScan},
		{"BlindWritesDoNotConflict", testBlindWrites},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"Fencing", testFencing},
		{"FinishedTxn", testFinishedTxn},
	}
	if b.Durable {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, open Opener)
		}{"ReopenKeepsData", testReopen})
	}
	if !b.Text {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, open Opener)
		}{"TextUnsupported", testTextUnsupported})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b.New(t)) })
	}
	if b.Text {
		t.Run("Text", func(t *testing.T) { RunText(t, b) })
	}
}

func openStore(t *testing.T, open Opener) storage.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

// commit runs fn in a transaction and commits it, failing the test on error.
func commit(t *testing.T, s storage.Store, fn func(tx *storage.Txn)) {
	t.Helper()
	tx := begin(t, s)
	fn(tx)
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func begin(t *testing.T, s storage.Store) *storage.Txn {
	t.Helper()
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	return tx
}

func mustSet(t *testing.T, tx *storage.Txn, k, v string) {
	t.Helper()
	if err := tx.Set([]byte(k), []byte(v)); err != nil {
		t.Fatalf("set %q: %v", k, err)
	}
}

func get(t *testing.T, s storage.Store, k string) (string, bool) {
	t.Helper()
	tx := begin(t, s)
	defer tx.Rollback()
	v, err := tx.Get(context.Background(), []byte(k))
	if errors.Is(err, storage.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("get %q: %v", k, err)
	}
	return string(v), true
}

func scanKeys(t *testing.T, s storage.Store, opts storage.ScanOptions) []string {
	t.Helper()
	tx := begin(t, s)
	defer tx.Rollback()
	return keysOf(t, tx, opts)
}

func keysOf(t *testing.T, tx *storage.Txn, opts storage.ScanOptions) []string {
	t.Helper()
	kvs, err := tx.Scan(context.Background(), opts)
	if err != nil {
		t.Fatalf("scan %+v: %v", opts, err)
	}
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = string(kv.Key)
	}
	return out
}

func testGetSetDelete(t *testing.T, open Opener) {
	s := openStore(t, open)
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("empty store returned a value")
	}
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "a", "1"); mustSet(t, tx, "b", "") })
	if v, ok := get(t, s, "a"); !ok || v != "1" {
		t.Fatalf("get a = %q, %v; want 1", v, ok)
	}
	if v, ok := get(t, s, "b"); !ok || v != "" {
		t.Fatalf("get b = %q, %v; want empty value present", v, ok)
	}
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "a", "2") })
	if v, _ := get(t, s, "a"); v != "2" {
		t.Fatalf("overwrite: get a = %q, want 2", v)
	}
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.Delete([]byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Delete([]byte("never-existed")); err != nil {
			t.Fatalf("delete of absent key: %v", err)
		}
	})
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("deleted key still readable")
	}
}

func testOrdering(t *testing.T, open Opener) {
	s := openStore(t, open)
	r := rand.New(rand.NewPCG(1, 2))
	want := map[string]bool{}
	commit(t, s, func(tx *storage.Txn) {
		for len(want) < 300 {
			k := make([]byte, 1+r.IntN(6))
			for i := range k {
				k[i] = byte(r.IntN(256)) // includes 0x00 and 0xff
			}
			want[string(k)] = true
			if err := tx.Set(k, k); err != nil {
				t.Fatal(err)
			}
		}
	})
	sorted := make([]string, 0, len(want))
	for k := range want {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted) // byte-wise, as Go compares strings
	got := scanKeys(t, s, storage.ScanOptions{Limit: storage.ScanLimitMax})
	if !slices.Equal(got, sorted) {
		t.Fatalf("forward scan out of byte order: got %d keys, first mismatch at %d", len(got), firstDiff(got, sorted))
	}
	rev := slices.Clone(sorted)
	slices.Reverse(rev)
	got = scanKeys(t, s, storage.ScanOptions{Reverse: true, Limit: storage.ScanLimitMax})
	if !slices.Equal(got, rev) {
		t.Fatalf("reverse scan out of order, first mismatch at %d", firstDiff(got, rev))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testScanBoundsAndLimits(t *testing.T, open Opener) {
	s := openStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		for i := range 10 {
			mustSet(t, tx, fmt.Sprintf("k%d", i), fmt.Sprint(i))
		}
		mustSet(t, tx, "j", "before")
		mustSet(t, tx, "l", "after")
	})
	cases := []struct {
		opts storage.ScanOptions
		want []string
	}{
		{storage.ScanOptions{Start: []byte("k"), End: []byte("l"), Limit: 100}, []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"}},
		{storage.ScanOptions{Start: []byte("k3"), End: []byte("k6"), Limit: 100}, []string{"k3", "k4", "k5"}},
		{storage.ScanOptions{Start: []byte("k3"), End: []byte("k6"), Limit: 2}, []string{"k3", "k4"}},
		{storage.ScanOptions{Start: []byte("k3"), End: []byte("k6"), Reverse: true, Limit: 100}, []string{"k5", "k4", "k3"}},
		{storage.ScanOptions{Start: []byte("k3"), End: []byte("k6"), Reverse: true, Limit: 2}, []string{"k5", "k4"}},
		{storage.ScanOptions{Start: []byte("k"), End: storage.PrefixEnd([]byte("k")), Reverse: true, Limit: 1}, []string{"k9"}},
		{storage.ScanOptions{End: []byte("k1"), Limit: 100}, []string{"j", "k0"}},
		{storage.ScanOptions{Start: []byte("k9"), Limit: 100}, []string{"k9", "l"}},
		{storage.ScanOptions{Start: []byte("k9"), Reverse: true, Limit: 100}, []string{"l", "k9"}},
		{storage.ScanOptions{Start: []byte("m"), Limit: 100}, []string{}},
		{storage.ScanOptions{Start: []byte("k3"), End: []byte("k3"), Limit: 100}, []string{}},
	}
	for _, c := range cases {
		if got := scanKeys(t, s, c.opts); !slices.Equal(got, c.want) {
			t.Errorf("scan [%s,%s) rev=%v limit=%d = %v, want %v", c.opts.Start, c.opts.End, c.opts.Reverse, c.opts.Limit, got, c.want)
		}
	}
	tx := begin(t, s)
	defer tx.Rollback()
	ctx := context.Background()
	if _, err := tx.Scan(ctx, storage.ScanOptions{Limit: 0}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("limit 0: err = %v, want ErrInvalid", err)
	}
	if _, err := tx.Scan(ctx, storage.ScanOptions{Limit: storage.ScanLimitMax + 1}); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("limit over max: err = %v, want ErrTooLarge", err)
	}
	if _, err := tx.Scan(ctx, storage.ScanOptions{Start: []byte("b"), End: []byte("a"), Limit: 1}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("inverted range: err = %v, want ErrInvalid", err)
	}
}

func testLimits(t *testing.T, open Opener) {
	s := openStore(t, open)
	tx := begin(t, s)
	defer tx.Rollback()
	if err := tx.Set(nil, []byte("x")); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("empty key: err = %v, want ErrInvalid", err)
	}
	if err := tx.Set(bytes.Repeat([]byte("k"), storage.KeyBytesMax+1), nil); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("long key: err = %v, want ErrTooLarge", err)
	}
	if err := tx.Set([]byte("v"), make([]byte, storage.ValueBytesMax+1)); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("large value: err = %v, want ErrTooLarge", err)
	}
	if _, err := tx.Get(context.Background(), bytes.Repeat([]byte("k"), storage.KeyBytesMax+1)); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("get long key: err = %v, want ErrTooLarge", err)
	}
	// The largest allowed key and value round-trip intact.
	bigKey := bytes.Repeat([]byte{0xfe}, storage.KeyBytesMax)
	bigVal := bytes.Repeat([]byte{0x00, 0xff}, storage.ValueBytesMax/2)
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.Set(bigKey, bigVal); err != nil {
			t.Fatalf("max-size key and value: %v", err)
		}
	})
	if v, ok := get(t, s, string(bigKey)); !ok || !bytes.Equal([]byte(v), bigVal) {
		t.Fatal("max-size value did not round-trip")
	}
	// Too many writes in one transaction.
	tx2 := begin(t, s)
	defer tx2.Rollback()
	var err error
	for i := 0; i <= storage.TxnWritesMax && err == nil; i++ {
		err = tx2.Set([]byte(fmt.Sprintf("w%06d", i)), nil)
	}
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("%d writes: err = %v, want ErrTooLarge", storage.TxnWritesMax+1, err)
	}
}

func testReadYourWrites(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) {
		mustSet(t, tx, "a", "old")
		mustSet(t, tx, "c", "old")
		mustSet(t, tx, "e", "old")
	})
	tx := begin(t, s)
	defer tx.Rollback()
	mustSet(t, tx, "a", "new")
	mustSet(t, tx, "b", "new")
	if err := tx.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if v, err := tx.Get(ctx, []byte("a")); err != nil || string(v) != "new" {
		t.Fatalf("get own overwrite = %q, %v", v, err)
	}
	if _, err := tx.Get(ctx, []byte("c")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get own delete: err = %v, want ErrNotFound", err)
	}
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range kvs {
		got = append(got, string(kv.Key)+"="+string(kv.Value))
	}
	if want := []string{"a=new", "b=new", "e=old"}; !slices.Equal(got, want) {
		t.Fatalf("scan with own writes = %v, want %v", got, want)
	}
	if got := keysOf(t, tx, storage.ScanOptions{Reverse: true, Limit: 2}); !slices.Equal(got, []string{"e", "b"}) {
		t.Fatalf("reverse scan with own writes, limit 2 = %v", got)
	}
}

func testDeleteRange(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) {
		for _, k := range []string{"a", "p/1", "p/2", "p/3", "q"} {
			mustSet(t, tx, k, k)
		}
	})
	tx := begin(t, s)
	mustSet(t, tx, "p/0", "buffered, then range-deleted")
	if err := tx.DeleteRange([]byte("p/"), storage.PrefixEnd([]byte("p/"))); err != nil {
		t.Fatal(err)
	}
	mustSet(t, tx, "p/9", "after the range delete")
	if _, err := tx.Get(ctx, []byte("p/2")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("range-deleted key visible in own txn: %v", err)
	}
	if got := keysOf(t, tx, storage.ScanOptions{Limit: 10}); !slices.Equal(got, []string{"a", "p/9", "q"}) {
		t.Fatalf("scan after own range delete = %v", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := scanKeys(t, s, storage.ScanOptions{Limit: 10}); !slices.Equal(got, []string{"a", "p/9", "q"}) {
		t.Fatalf("after committed range delete = %v", got)
	}
	// A range delete to the end of the keyspace.
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("p"), nil); err != nil {
			t.Fatal(err)
		}
	})
	if got := scanKeys(t, s, storage.ScanOptions{Limit: 10}); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after open-ended range delete = %v", got)
	}
}

func testIsolation(t *testing.T, open Opener) {
	s := openStore(t, open)
	tx := begin(t, s)
	mustSet(t, tx, "a", "uncommitted")
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("uncommitted write visible to another transaction")
	}
	tx.Rollback()
	if _, ok := get(t, s, "a"); ok {
		t.Fatal("rolled-back write became visible")
	}
}

func testConflictOnRead(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "x", "0") })
	t1 := begin(t, s)
	if _, err := t1.Get(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := t1.Get(ctx, []byte("absent")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	mustSet(t, t1, "y", "from t1")
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "x", "1") })
	if err := t1.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after concurrent write to a read key: err = %v, want ErrConflict", err)
	}
	if _, ok := get(t, s, "y"); ok {
		t.Fatal("conflicting transaction's write was applied")
	}
	// Reading an absent key that another transaction then creates conflicts too.
	t2 := begin(t, s)
	if _, err := t2.Get(ctx, []byte("absent")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	mustSet(t, t2, "z", "from t2")
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "absent", "now present") })
	if err := t2.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after concurrent create of a read-absent key: err = %v, want ErrConflict", err)
	}
}

func testConflictOnScan(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "r/1", "") })
	t1 := begin(t, s)
	if got := keysOf(t, t1, storage.ScanOptions{Start: []byte("r/"), End: []byte("r0"), Limit: 10}); len(got) != 1 {
		t.Fatalf("scan = %v", got)
	}
	mustSet(t, t1, "out", "from t1")
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "r/2", "phantom") })
	if err := t1.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after a phantom insert into a scanned range: err = %v, want ErrConflict", err)
	}
	if _, ok := get(t, s, "out"); ok {
		t.Fatal("conflicting transaction's write was applied")
	}
}

func testBlindWrites(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	t1, t2 := begin(t, s), begin(t, s)
	mustSet(t, t1, "k", "1")
	mustSet(t, t2, "k", "2")
	if err := t1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := t2.Commit(ctx); err != nil {
		t.Fatalf("blind write conflicted: %v", err)
	}
	if v, _ := get(t, s, "k"); v != "2" {
		t.Fatalf("last blind write lost: k = %q", v)
	}
}

// testConcurrentIncrements runs read-modify-write transactions from many
// goroutines, retrying on conflict; OCC must make every increment count once.
func testConcurrentIncrements(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	const workers, each = 8, 25
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "ctr", "0") })
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				var n int
				fmt.Sscan(string(v), &n)
				if err := tx.Set([]byte("ctr"), []byte(fmt.Sprint(n+1))); err != nil {
					errs <- err
					return
				}
				switch err := tx.Commit(ctx); {
				case err == nil:
					done++
				case errors.Is(err, storage.ErrConflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
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
	if v, _ := get(t, s, "ctr"); v != fmt.Sprint(workers*each) {
		t.Fatalf("counter = %s after %d increments (%d conflicts retried)", v, workers*each, conflicts)
	}
	t.Logf("%d increments, %d conflicts retried", workers*each, conflicts)
}

func testFencing(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	fence := []byte("epoch/agent-1")
	// An absent fence key fences.
	tx := begin(t, s)
	tx.Fence(fence, 1)
	mustSet(t, tx, "state", "no epoch yet")
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("commit fenced on an absent key: err = %v, want ErrFenced", err)
	}
	commit(t, s, func(tx *storage.Txn) { tx.Set(fence, storage.EncodeEpoch(1)) })
	commit(t, s, func(tx *storage.Txn) { tx.Fence(fence, 1); mustSet(t, tx, "state", "from epoch 1") })

	stale := begin(t, s)
	stale.Fence(fence, 1)
	mustSet(t, stale, "state", "stale")
	commit(t, s, func(tx *storage.Txn) { tx.Set(fence, storage.EncodeEpoch(2)) }) // a new activation claims
	if err := stale.Commit(ctx); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("stale activation's commit: err = %v, want ErrFenced", err)
	}
	if v, _ := get(t, s, "state"); v != "from epoch 1" {
		t.Fatalf("fenced commit was applied: state = %q", v)
	}
	commit(t, s, func(tx *storage.Txn) { tx.Fence(fence, 2); mustSet(t, tx, "state", "from epoch 2") })
	if v, _ := get(t, s, "state"); v != "from epoch 2" {
		t.Fatalf("state = %q", v)
	}
}

func testFinishedTxn(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	tx := begin(t, s)
	mustSet(t, tx, "a", "1")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("b"), nil); !errors.Is(err, storage.ErrTxnDone) {
		t.Errorf("set after commit: err = %v, want ErrTxnDone", err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrTxnDone) {
		t.Errorf("second commit: err = %v, want ErrTxnDone", err)
	}
	tx = begin(t, s)
	tx.Rollback()
	if _, err := tx.Get(ctx, []byte("a")); !errors.Is(err, storage.ErrTxnDone) {
		t.Errorf("get after rollback: err = %v, want ErrTxnDone", err)
	}
}

func testReopen(t *testing.T, open Opener) {
	s := open(t)
	commit(t, s, func(tx *storage.Txn) {
		for i := range 100 {
			mustSet(t, tx, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
		}
		tx.Set([]byte("fence"), storage.EncodeEpoch(7))
	})
	commit(t, s, func(tx *storage.Txn) { tx.Delete([]byte("k050")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, open)
	got := scanKeys(t, s, storage.ScanOptions{Limit: 1000})
	if len(got) != 100 { // 99 k-keys + fence
		t.Fatalf("after reopen: %d keys, want 100", len(got))
	}
	if _, ok := get(t, s, "k050"); ok {
		t.Fatal("deleted key came back after reopen")
	}
	if v, _ := get(t, s, "k099"); v != "99" {
		t.Fatalf("k099 = %q after reopen", v)
	}
	// Versions keep growing across a reopen: a read before and a write after
	// still conflict, and the fence still holds.
	commit(t, s, func(tx *storage.Txn) { tx.Fence([]byte("fence"), 7); mustSet(t, tx, "k000", "x") })
	tx := begin(t, s)
	if _, err := tx.Get(context.Background(), []byte("k001")); err != nil {
		t.Fatal(err)
	}
	mustSet(t, tx, "k002", "y")
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "k001", "changed") })
	if err := tx.Commit(context.Background()); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("conflict after reopen: err = %v", err)
	}
}
