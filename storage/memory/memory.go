// Package memory is the in-memory storage backend: an ordered B-tree of
// versioned pairs behind one mutex. Tests and benchmarks use it; it keeps
// nothing across a restart.
package memory

import (
	"bytes"
	"context"
	"sync"

	"github.com/google/btree"

	"github.com/kelpie-ai/kelpie/storage"
)

type item struct {
	key     []byte
	value   []byte
	version storage.Version
}

func less(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

// Store is an in-memory storage.Store. The zero value is not usable; call New.
type Store struct {
	mu      sync.RWMutex
	tree    *btree.BTreeG[item]
	version storage.Version
	closed  bool
}

// New returns an empty store.
func New() *Store {
	return &Store{tree: btree.NewG(16, less)}
}

// Begin implements storage.Store.
func (s *Store) Begin(ctx context.Context) (*storage.Txn, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	return storage.NewTxn(s), nil
}

// Close implements storage.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Get implements storage.Reader.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, 0, false, storage.ErrClosed
	}
	return s.get(key)
}

func (s *Store) get(key []byte) ([]byte, storage.Version, bool, error) {
	it, ok := s.tree.Get(item{key: key})
	if !ok {
		return nil, 0, false, nil
	}
	return bytes.Clone(it.value), it.version, true, nil
}

// Scan implements storage.Reader.
func (s *Store) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	return s.scan(opts), nil
}

func (s *Store) scan(opts storage.ScanOptions) []storage.VersionedKV {
	var out []storage.VersionedKV
	Range(s.tree, func(k []byte) item { return item{key: k} }, func(it item) []byte { return it.key }, opts, func(it item) bool {
		out = append(out, storage.VersionedKV{Key: bytes.Clone(it.key), Value: bytes.Clone(it.value), Version: it.version})
		return len(out) < opts.Limit
	})
	return out
}

// Range visits the items of t whose keys lie in [opts.Start, opts.End)
// (opts.Limit aside), ascending or, with opts.Reverse, descending, until
// visit returns false. probe makes an item with a given key, to bound the
// walk; key returns an item's key. The simulator's disk walks its tree
// with it too.
func Range[T any](t *btree.BTreeG[T], probe func(key []byte) T, key func(T) []byte, opts storage.ScanOptions, visit func(T) bool) {
	switch {
	case !opts.Reverse && opts.End == nil:
		t.AscendGreaterOrEqual(probe(opts.Start), visit)
	case !opts.Reverse:
		t.AscendRange(probe(opts.Start), probe(opts.End), visit)
	default:
		descend := func(it T) bool {
			if opts.End != nil && bytes.Compare(key(it), opts.End) >= 0 {
				return true // End is exclusive
			}
			if opts.Start != nil && bytes.Compare(key(it), opts.Start) < 0 {
				return false
			}
			return visit(it)
		}
		if opts.End == nil {
			t.Descend(descend)
		} else {
			t.DescendLessOrEqual(probe(opts.End), descend)
		}
	}
}

// Commit implements storage.Backend.
func (s *Store) Commit(ctx context.Context, req *storage.CommitRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return storage.ErrClosed
	}
	if err := req.Validate(ctx, locked{s}); err != nil {
		return err
	}
	if !req.HasWrites() {
		return nil
	}
	s.version++
	for _, r := range req.RangeDeletes {
		var doomed []item
		collect := func(it item) bool { doomed = append(doomed, it); return true }
		if r.End == nil {
			s.tree.AscendGreaterOrEqual(item{key: r.Start}, collect)
		} else {
			s.tree.AscendRange(item{key: r.Start}, item{key: r.End}, collect)
		}
		for _, it := range doomed {
			s.tree.Delete(it)
		}
	}
	for _, w := range req.Writes {
		if w.Delete {
			s.tree.Delete(item{key: w.Key})
			continue
		}
		s.tree.ReplaceOrInsert(item{key: w.Key, value: w.Value, version: s.version})
	}
	return nil
}

// locked reads the store while Commit holds its lock.
type locked struct{ s *Store }

func (l locked) Get(_ context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	return l.s.get(key)
}

func (l locked) Scan(_ context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	return l.s.scan(opts), nil
}
