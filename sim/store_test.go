package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/storagetest"
)

func TestStoreConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Backend{
		New: func(t *testing.T) storagetest.Opener {
			return func(t *testing.T) storage.Store { return NewStore(rt.NewSystem(), nil, nil) }
		},
		Durable: false,
	})
}

// storeEnv is one simulation with a Store on node n1.
type storeEnv struct {
	t       *testing.T
	sim     *Sim
	root    rt.Runtime // the root task's runtime (node "main")
	node    *Node
	nr      rt.Runtime // n1's runtime, which the store runs on
	inj     *Injector
	st      *Store
	crashes int // CrashBeforeWrite callback calls
}

// runStore runs body as the root task of a simulation of seed. The crash
// callback only counts, unless crash is given. body reports with t.Errorf
// (never t.Fatal: it runs on a simulated task) and returns.
func runStore(t *testing.T, seed uint64, crash func(e *storeEnv), body func(e *storeEnv)) {
	t.Helper()
	s := New(seed)
	err := s.Run(func(root rt.Runtime) {
		e := &storeEnv{t: t, sim: s, root: root, node: s.NewNode("n1"), inj: NewInjector(s)}
		e.nr = e.node.Runtime()
		cb := func() { e.crashes++ }
		if crash != nil {
			cb = func() { e.crashes++; crash(e) }
		}
		e.st = NewStore(e.nr, e.inj, cb)
		body(e)
	})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
}

func put(ctx context.Context, st *Store, kvs ...string) error {
	tx, err := st.Begin(ctx)
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(kvs); i += 2 {
		if err := tx.Set([]byte(kvs[i]), []byte(kvs[i+1])); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func read(ctx context.Context, st *Store, key string) (string, bool, error) {
	tx, err := st.Begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer tx.Rollback()
	v, err := tx.Get(ctx, []byte(key))
	if errors.Is(err, storage.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(v), true, nil
}

func scanAll(ctx context.Context, st *Store) ([]storage.KV, error) {
	tx, err := st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return tx.Scan(ctx, storage.ScanOptions{Limit: 100})
}

// expect checks key's value through a fresh transaction and in Durable.
func (e *storeEnv) expect(ctx context.Context, key, want string, present bool) {
	e.t.Helper()
	v, ok, err := read(ctx, e.st, key)
	if err != nil || ok != present || v != want {
		e.t.Errorf("read %q = %q, %v, %v; want %q, %v, nil", key, v, ok, err, want, present)
	}
	d, ok := e.st.Durable()[key]
	if ok != present || string(d) != want {
		e.t.Errorf("durable %q = %q, %v; want %q, %v", key, d, ok, want, present)
	}
}

func (e *storeEnv) fired(f Fault, want uint64) {
	e.t.Helper()
	if got := e.inj.Stats()[f].Fired; got != want {
		e.t.Errorf("%s fired %d times, want %d", f, got, want)
	}
}

func (st *Store) volatileLen() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.volatile)
}

func TestStoreReadFail(t *testing.T) {
	runStore(t, 1, nil, func(e *storeEnv) {
		ctx := context.Background()
		if err := put(ctx, e.st, "a", "1"); err != nil {
			t.Errorf("put: %v", err)
			return
		}
		e.inj.MustAdd(Rule{Fault: StorageReadFail, Probability: 1, MaxFires: 2})
		for _, key := range []string{"a", "absent"} {
			_, _, err := read(ctx, e.st, key)
			if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrCorrupt) {
				t.Errorf("read %q under StorageReadFail: %v; want an I/O error", key, err)
			}
		}
		e.inj.MustAdd(Rule{Fault: StorageReadFail, Probability: 1, MaxFires: 1, Ops: []Op{OpStorageScan}})
		if _, err := scanAll(ctx, e.st); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("scan under StorageReadFail: %v; want an I/O error", err)
		}
		e.fired(StorageReadFail, 3)
		e.expect(ctx, "a", "1", true)
	})
}

func TestStoreCorruption(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		runStore(t, seed, nil, func(e *storeEnv) {
			ctx := context.Background()
			if err := put(ctx, e.st, "a", "hello", "e", "", "z", "zz"); err != nil {
				t.Errorf("put: %v", err)
				return
			}
			// Get: a non-empty value, then an empty one (the stored checksum is hit).
			for _, key := range []string{"a", "e"} {
				e.inj.MustAdd(Rule{Fault: StorageCorruption, Probability: 1, MaxFires: 1})
				v, _, err := read(ctx, e.st, key)
				if !errors.Is(err, storage.ErrCorrupt) || v != "" {
					t.Errorf("seed %d: corrupted read of %q = %q, %v; want ErrCorrupt and no data", seed, key, v, err)
				}
			}
			e.expect(ctx, "a", "hello", true)
			e.expect(ctx, "e", "", true)
			// The raw backend read path too.
			e.inj.MustAdd(Rule{Fault: StorageCorruption, Probability: 1, MaxFires: 1})
			if v, _, _, err := e.st.Get(ctx, []byte("z")); !errors.Is(err, storage.ErrCorrupt) || v != nil {
				t.Errorf("seed %d: Store.Get corrupted = %q, %v", seed, v, err)
			}
			// Scan: one entry is corrupted, the scan fails.
			e.inj.MustAdd(Rule{Fault: StorageCorruption, Probability: 1, MaxFires: 1})
			if kvs, err := scanAll(ctx, e.st); !errors.Is(err, storage.ErrCorrupt) || kvs != nil {
				t.Errorf("seed %d: corrupted scan = %v, %v; want ErrCorrupt", seed, kvs, err)
			}
			kvs, err := scanAll(ctx, e.st)
			if err != nil || len(kvs) != 3 || string(kvs[0].Value) != "hello" || string(kvs[2].Value) != "zz" {
				t.Errorf("seed %d: scan after corruption = %v, %v", seed, kvs, err)
			}
			// Nothing to corrupt: an absent key reads as absent.
			e.inj.MustAdd(Rule{Fault: StorageCorruption, Probability: 1, MaxFires: 1})
			if _, ok, err := read(ctx, e.st, "absent"); ok || err != nil {
				t.Errorf("seed %d: corrupted read of an absent key = %v, %v; want not found", seed, ok, err)
			}
			e.fired(StorageCorruption, 5)
		})
	}
}

// A record rotten on the disk itself is caught by every read path,
// including the reads Validate makes inside Commit.
func TestStoreCorruptDiskCaught(t *testing.T) {
	runStore(t, 1, nil, func(e *storeEnv) {
		ctx := context.Background()
		if err := put(ctx, e.st, "a", "1"); err != nil {
			t.Errorf("put: %v", err)
			return
		}
		tx, _ := e.st.Begin(ctx)
		if _, err := tx.Get(ctx, []byte("a")); err != nil {
			t.Errorf("get: %v", err)
		}
		tx.Set([]byte("b"), []byte("2"))
		e.st.mu.Lock()
		rec, _ := e.st.durable.Get(record{key: []byte("a")})
		rec.value = []byte("7")
		e.st.durable.ReplaceOrInsert(rec)
		e.st.mu.Unlock()

		err := tx.Commit(ctx)
		if !errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrConflict) {
			t.Errorf("commit validating a rotten record: %v; want ErrCorrupt, not ErrConflict", err)
		}
		if _, _, err := read(ctx, e.st, "a"); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("get of a rotten record: %v; want ErrCorrupt", err)
		}
		if _, err := scanAll(ctx, e.st); !errors.Is(err, storage.ErrCorrupt) {
			t.Errorf("scan over a rotten record: %v; want ErrCorrupt", err)
		}
		if _, ok := e.st.Durable()["b"]; ok {
			t.Error("a commit that failed validation wrote b")
		}
	})
}

func TestStoreCommitFaultsApplyNothing(t *testing.T) {
	for _, f := range []Fault{StorageWriteFail, DiskFull, CrashDuringTransaction, StorageFsyncFail} {
		t.Run(string(f), func(t *testing.T) {
			runStore(t, 1, nil, func(e *storeEnv) {
				ctx := context.Background()
				if err := put(ctx, e.st, "a", "1"); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				e.inj.MustAdd(Rule{Fault: f, Probability: 1, MaxFires: 1})
				tx, _ := e.st.Begin(ctx)
				tx.Set([]byte("a"), []byte("2"))
				tx.Set([]byte("k"), []byte("v"))
				tx.DeleteRange([]byte("0"), []byte("1"))
				err := tx.Commit(ctx)
				if err == nil || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrFenced) {
					t.Errorf("commit under %s: %v; want a non-conflict error", f, err)
				}
				if f == DiskFull && (err == nil || !strings.Contains(err.Error(), "disk full")) {
					t.Errorf("DiskFull error %v does not say disk full", err)
				}
				e.fired(f, 1)
				if n := e.st.volatileLen(); n != 0 {
					t.Errorf("%d volatile batches left", n)
				}
				e.expect(ctx, "a", "1", true)
				e.expect(ctx, "k", "", false)
				if e.crashes != 0 {
					t.Errorf("crash callback called %d times", e.crashes)
				}
				// The store carries on.
				if err := put(ctx, e.st, "k", "w"); err != nil {
					t.Errorf("commit after the fault: %v", err)
				}
				e.expect(ctx, "k", "w", true)
			})
		})
	}
}

func TestStoreCrashAfterWrite(t *testing.T) {
	runStore(t, 1, nil, func(e *storeEnv) {
		ctx := context.Background()
		e.inj.MustAdd(Rule{Fault: CrashAfterWrite, Probability: 1, MaxFires: 1})
		err := put(ctx, e.st, "k", "v")
		if err == nil || errors.Is(err, storage.ErrConflict) {
			t.Errorf("commit under CrashAfterWrite: %v; want a non-conflict error", err)
		}
		e.fired(CrashAfterWrite, 1)
		if n := e.st.volatileLen(); n != 0 {
			t.Errorf("%d volatile batches left; the write should be durable", n)
		}
		e.expect(ctx, "k", "v", true)
	})
}

func TestStoreCrashBeforeWrite(t *testing.T) {
	t.Run("CallbackReturns", func(t *testing.T) {
		runStore(t, 1, nil, func(e *storeEnv) {
			ctx := context.Background()
			e.inj.MustAdd(Rule{Fault: CrashBeforeWrite, Probability: 1, MaxFires: 1})
			err := put(ctx, e.st, "k", "v")
			if err == nil || errors.Is(err, storage.ErrConflict) {
				t.Errorf("commit under CrashBeforeWrite: %v; want a non-conflict error", err)
			}
			if e.crashes != 1 {
				t.Errorf("crash callback called %d times, want 1", e.crashes)
			}
			e.fired(CrashBeforeWrite, 1)
			e.expect(ctx, "k", "", false)
		})
	})
	t.Run("NodeCrashes", func(t *testing.T) {
		crash := func(e *storeEnv) { e.st.Crash(); e.node.Crash() }
		runStore(t, 1, crash, func(e *storeEnv) {
			ctx := context.Background()
			if err := put(ctx, e.st, "a", "1"); err != nil {
				t.Errorf("put: %v", err)
				return
			}
			e.inj.MustAdd(Rule{Fault: CrashBeforeWrite, Probability: 1, MaxFires: 1})
			returned := false
			e.nr.Go("committer", func() {
				put(ctx, e.st, "k", "v")
				returned = true
			})
			e.root.Sleep(ctx, time.Second)
			if !e.node.Crashed() || returned || e.crashes != 1 {
				t.Errorf("crashed=%v returned=%v crashes=%d; want the node down and Commit never returning", e.node.Crashed(), returned, e.crashes)
			}
			e.node.Restart()
			e.st.SetRuntime(e.node.Runtime())
			e.expect(ctx, "a", "1", true)
			e.expect(ctx, "k", "", false)
		})
	})
}

func TestStoreLatency(t *testing.T) {
	runStore(t, 3, nil, func(e *storeEnv) {
		ctx := context.Background()
		if err := put(ctx, e.st, "a", "1"); err != nil {
			t.Errorf("put: %v", err)
			return
		}
		e.inj.MustAdd(Rule{Fault: StorageLatency, Probability: 1})
		check := func(what string, op func() error) {
			t0 := e.root.Now()
			if err := op(); err != nil {
				t.Errorf("%s under StorageLatency: %v", what, err)
			}
			if d := e.root.Now().Sub(t0); d < time.Millisecond || d > 50*time.Millisecond {
				t.Errorf("%s took %v of virtual time, want 1ms..50ms", what, d)
			}
		}
		check("get", func() error { _, _, _, err := e.st.Get(ctx, []byte("a")); return err })
		check("scan", func() error { _, err := e.st.Scan(ctx, storage.ScanOptions{Limit: 10}); return err })
		check("commit", func() error {
			return e.st.Commit(ctx, &storage.CommitRequest{Writes: []storage.Write{{Key: []byte("b"), Value: []byte("2")}}})
		})
		e.fired(StorageLatency, 3)
		e.inj.Enable(StorageLatency, false)
		e.expect(ctx, "b", "2", true)
	})
}

// TestStoreUnflushedLoss crashes the node while a commit is between its
// apply and its fsync: with StorageUnflushedLoss the batch, which other
// tasks could already read, is gone; without it, it survives.
func TestStoreUnflushedLoss(t *testing.T) {
	for _, tc := range []struct {
		name      string
		p         float64
		nodeCrash bool
	}{
		{"Lost", 1, true},
		{"Survives", 0, true},
		{"LostCommitterSeesError", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := 0
			for seed := uint64(1); seed <= 40 && hits < 3; seed++ {
				runStore(t, seed, nil, func(e *storeEnv) {
					ctx := context.Background()
					if err := put(ctx, e.st, "base", "0"); err != nil {
						t.Errorf("put: %v", err)
						return
					}
					e.inj.MustAdd(Rule{Fault: StorageUnflushedLoss, Probability: tc.p})
					done := rt.NewEvent(e.root)
					var commitErr error
					e.nr.Go("committer", func() {
						commitErr = put(ctx, e.st, "k", "v")
						done.Set()
					})
					for e.st.volatileLen() == 0 && !done.IsSet() {
						e.root.Sleep(ctx, 0)
					}
					if done.IsSet() {
						return // the commit synced before we caught it: try another seed
					}
					hits++
					// The batch is visible before it is durable. (Read it
					// without Get's yield, which would let the committer sync.)
					e.st.mu.Lock()
					v, _, ok, err := locked{e.st}.Get(ctx, []byte("k"))
					e.st.mu.Unlock()
					if err != nil || !ok || string(v) != "v" {
						t.Errorf("volatile batch not readable: %q, %v, %v", v, ok, err)
					}
					if _, ok := e.st.Durable()["k"]; ok {
						t.Error("batch durable before its fsync")
					}
					e.st.Crash()
					if tc.nodeCrash {
						e.node.Crash()
					}
					st := e.inj.Stats()[StorageUnflushedLoss]
					if st.Checked != 1 || st.Fired != uint64(tc.p) {
						t.Errorf("StorageUnflushedLoss checked %d fired %d; want 1, %v", st.Checked, st.Fired, tc.p)
					}
					if tc.nodeCrash {
						e.root.Sleep(ctx, time.Second)
						if done.IsSet() {
							t.Error("the committer returned although its node crashed")
						}
						e.node.Restart()
						e.st.SetRuntime(e.node.Runtime())
					} else {
						done.Wait(ctx)
						if commitErr == nil || errors.Is(commitErr, storage.ErrConflict) {
							t.Errorf("commit whose batch was lost returned %v; want a non-conflict error", commitErr)
						}
					}
					e.expect(ctx, "base", "0", true)
					if tc.p == 1 {
						e.expect(ctx, "k", "", false)
					} else {
						e.expect(ctx, "k", "v", true)
					}
				})
			}
			if hits == 0 {
				t.Fatal("no seed crashed the node while the batch was volatile")
			}
		})
	}
}

// applyDirect validates and applies req to the volatile layer without
// syncing it, as Commit does before its fsync yield.
func applyDirect(st *Store, req *storage.CommitRequest) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := req.Validate(context.Background(), locked{st}); err != nil {
		return err
	}
	if req.HasWrites() {
		st.applyLocked(req)
	}
	return nil
}

func setReq(kvs ...string) *storage.CommitRequest {
	req := &storage.CommitRequest{}
	for i := 0; i+1 < len(kvs); i += 2 {
		req.Writes = append(req.Writes, storage.Write{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	return req
}

// A lost batch takes every later unsynced batch with it.
func TestStoreLossDropsLaterBatches(t *testing.T) {
	runStore(t, 1, nil, func(e *storeEnv) {
		for i, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"c", "3"}} {
			if err := applyDirect(e.st, setReq(kv[0], kv[1])); err != nil {
				t.Errorf("batch %d: %v", i, err)
			}
		}
		// Skip the first batch's check; fire at the second.
		e.inj.MustAdd(Rule{Fault: StorageUnflushedLoss, Probability: 1, After: 1})
		e.st.Crash()
		if got, want := e.st.Durable(), map[string][]byte{"a": []byte("1")}; !maps.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("durable after losing batch 2 of 3 = %q; want %q", got, want)
		}
		st := e.inj.Stats()[StorageUnflushedLoss]
		if st.Checked != 2 || st.Fired != 1 {
			t.Errorf("StorageUnflushedLoss checked %d fired %d; want 2, 1", st.Checked, st.Fired)
		}
		if n := e.st.volatileLen(); n != 0 {
			t.Errorf("%d volatile batches after Crash", n)
		}
		if v, ok, _ := read(context.Background(), e.st, "b"); ok {
			t.Errorf("lost batch still readable: %q", v)
		}
	})
}

// TestStoreOverlayMatchesModel checks the two-layer read path against
// the memory backend: random batches (sets, deletes, range deletes), some
// synced and some left volatile, then every Get and random Scans agree,
// versions included.
func TestStoreOverlayMatchesModel(t *testing.T) {
	ctx := context.Background()
	sys := rt.NewSystem()
	rnd := sys.Rand("overlay")
	key := func() []byte { return []byte{byte('a' + rt.Intn(rnd, 12))} }
	for round := range 30 {
		st := NewStore(sys, nil, nil)
		model := memory.New()
		for range 25 {
			req := &storage.CommitRequest{}
			if rt.Intn(rnd, 4) == 0 {
				a, b := key(), key()
				if bytes.Compare(a, b) > 0 {
					a, b = b, a
				}
				end := append(b, 0)
				if rt.Intn(rnd, 5) == 0 {
					end = nil
				}
				req.RangeDeletes = append(req.RangeDeletes, storage.KeyRange{Start: a, End: end})
			}
			seen := map[string]bool{}
			for range rt.Intn(rnd, 4) {
				k := key()
				if seen[string(k)] {
					continue
				}
				seen[string(k)] = true
				if rt.Intn(rnd, 3) == 0 {
					req.Writes = append(req.Writes, storage.Write{Key: k, Delete: true})
				} else {
					req.Writes = append(req.Writes, storage.Write{Key: k, Value: []byte(fmt.Sprint(rt.Intn(rnd, 100)))})
				}
			}
			slices.SortFunc(req.Writes, func(a, b storage.Write) int { return bytes.Compare(a.Key, b.Key) })
			if !req.HasWrites() {
				continue
			}
			if err := applyDirect(st, req); err != nil {
				t.Fatal(err)
			}
			if err := model.Commit(ctx, req); err != nil {
				t.Fatal(err)
			}
			switch rt.Intn(rnd, 6) {
			case 0: // sync a prefix
				st.mu.Lock()
				if n := len(st.volatile); n > 0 {
					st.flushLocked(st.volatile[rt.Intn(rnd, n)].version)
				}
				st.mu.Unlock()
			case 1:
				st.Crash() // no injector: everything survives
			}
		}
		for c := byte('a' - 1); c <= 'a'+12; c++ {
			k := []byte{c}
			v, ver, ok, err := st.Get(ctx, k)
			mv, mver, mok, _ := model.Get(ctx, k)
			if err != nil || ok != mok || ver != mver || !bytes.Equal(v, mv) {
				t.Fatalf("round %d: Get %q = %q@%d %v %v; model %q@%d %v", round, k, v, ver, ok, err, mv, mver, mok)
			}
		}
		for range 40 {
			opts := storage.ScanOptions{Reverse: rt.Intn(rnd, 2) == 0, Limit: 1 + rt.Intn(rnd, 14)}
			if rt.Intn(rnd, 3) > 0 {
				opts.Start = key()
			}
			if rt.Intn(rnd, 3) > 0 {
				opts.End = key()
			}
			if opts.Start != nil && opts.End != nil && bytes.Compare(opts.Start, opts.End) > 0 {
				opts.Start, opts.End = opts.End, opts.Start
			}
			got, err := st.Scan(ctx, opts)
			want, _ := model.Scan(ctx, opts)
			if err != nil || !slices.EqualFunc(got, want, func(a, b storage.VersionedKV) bool {
				return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Version == b.Version
			}) {
				t.Fatalf("round %d: Scan %+v (%d volatile) = %v, %v; model %v", round, opts, st.volatileLen(), got, err, want)
			}
		}
	}
}

func TestStoreClosed(t *testing.T) {
	ctx := context.Background()
	st := NewStore(rt.NewSystem(), nil, nil)
	tx, err := st.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx.Set([]byte("k"), []byte("v"))
	st.Close()
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("commit after Close: %v", err)
	}
	if _, err := st.Begin(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("begin after Close: %v", err)
	}
	if _, _, _, err := st.Get(ctx, []byte("k")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("get after Close: %v", err)
	}
	if _, err := st.Scan(ctx, storage.ScanOptions{Limit: 1}); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("scan after Close: %v", err)
	}
}

// storeWorkload runs a few clients doing random transactions on a Store
// under 30% storage faults, with periodic power cuts, and returns the
// trace hash, the durable contents and the fault stats. Every value read
// must be one the workload wrote for that key.
func storeWorkload(t *testing.T, seed uint64) (uint64, map[string][]byte, map[Fault]FaultStats) {
	t.Helper()
	var durable map[string][]byte
	var stats map[Fault]FaultStats
	s := New(seed)
	err := s.Run(func(root rt.Runtime) {
		node := s.NewNode("n1")
		nr := node.Runtime()
		inj := NewInjector(s)
		for _, f := range []Fault{StorageWriteFail, DiskFull, CrashBeforeWrite, CrashAfterWrite, CrashDuringTransaction, StorageFsyncFail, StorageLatency} {
			inj.MustAdd(Rule{Fault: f, Probability: 0.3 / 7, Ops: []Op{OpStorageCommit}})
		}
		for _, f := range []Fault{StorageReadFail, StorageCorruption, StorageLatency} {
			inj.MustAdd(Rule{Fault: f, Probability: 0.1, Ops: []Op{OpStorageGet, OpStorageScan}})
		}
		inj.MustAdd(Rule{Fault: StorageUnflushedLoss, Probability: 0.3})
		st := NewStore(nr, inj, func() {}) // CrashBeforeWrite: the commit just fails
		ctx := context.Background()
		check := func(k, v []byte) {
			if !bytes.HasPrefix(v, append(bytes.Clone(k), '@')) {
				t.Errorf("seed %d: read %q = %q, which was never written there", seed, k, v)
			}
		}
		const clients = 4
		done := rt.NewQueue[int](root, clients)
		for c := range clients {
			nr.Go(fmt.Sprint("client", c), func() {
				rnd := nr.Rand(fmt.Sprint("client", c))
				for i := range 40 {
					tx, err := st.Begin(ctx)
					if err != nil {
						t.Errorf("begin: %v", err)
						break
					}
					for range 1 + rt.Intn(rnd, 3) {
						k := []byte(fmt.Sprintf("k%02d", rt.Intn(rnd, 20)))
						switch rt.Intn(rnd, 5) {
						case 0:
							if v, err := tx.Get(ctx, k); err == nil {
								check(k, v)
							}
						case 1:
							if kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: k, Limit: 5, Reverse: rt.Intn(rnd, 2) == 0}); err == nil {
								for _, kv := range kvs {
									check(kv.Key, kv.Value)
								}
							}
						case 2:
							tx.Delete(k)
						case 3:
							if rt.Intn(rnd, 4) == 0 {
								tx.DeleteRange(k, append(bytes.Clone(k), 0xff))
							}
						default:
							tx.Set(k, []byte(fmt.Sprintf("%s@%d.%d", k, c, i)))
						}
					}
					tx.Commit(ctx)
					nr.Sleep(ctx, time.Duration(rt.Intn(rnd, 20))*time.Millisecond)
				}
				done.TryPush(c)
			})
		}
		root.Go("power", func() {
			for {
				root.Sleep(ctx, time.Duration(5+rt.Intn(root.Rand("power"), 50))*time.Millisecond)
				st.Crash()
			}
		})
		for range clients {
			done.Recv(ctx)
		}
		durable = st.Durable()
		for k, v := range durable {
			check([]byte(k), v)
		}
		stats = inj.Stats()
	})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return s.TraceHash(), durable, stats
}

func TestStoreDeterminism(t *testing.T) {
	total := map[Fault]uint64{}
	hashes := map[uint64]uint64{}
	for seed := uint64(1); seed <= 5; seed++ {
		h1, d1, st1 := storeWorkload(t, seed)
		h2, d2, _ := storeWorkload(t, seed)
		if h1 != h2 {
			t.Fatalf("seed %d: trace %x then %x", seed, h1, h2)
		}
		if !maps.EqualFunc(d1, d2, bytes.Equal) {
			t.Fatalf("seed %d: durable contents differ between runs", seed)
		}
		if other, dup := hashes[h1]; dup {
			t.Errorf("seeds %d and %d share trace %x", other, seed, h1)
		}
		hashes[h1] = seed
		for f, st := range st1 {
			total[f] += st.Fired
		}
	}
	for _, f := range []Fault{StorageWriteFail, DiskFull, CrashBeforeWrite, CrashAfterWrite, CrashDuringTransaction, StorageFsyncFail, StorageLatency, StorageReadFail, StorageCorruption, StorageUnflushedLoss} {
		if total[f] == 0 {
			t.Errorf("%s never fired in the workload", f)
		}
	}
	t.Logf("faults fired over 5 seeds: %v", total)
}
