package storage

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/kelpie-ai/kelpie/invariant"
)

// Txn is an optimistic transaction over a Backend. Reads go to the backend
// and are recorded; writes are buffered and visible to the transaction's own
// reads; Commit validates the reads and applies the writes in one atomic,
// durable step. A Txn is used by one task at a time.
type Txn struct {
	mu           sync.Mutex
	backend      Backend
	reads        map[string]Version
	readOrder    []string
	scans        []ScanRecord
	fences       []Fence
	writes       map[string]*Write
	rangeDeletes []KeyRange
	writeCount   int
	writeBytes   int
	done         bool
}

// NewTxn starts a transaction on b. Backends' Begin methods return it.
func NewTxn(b Backend) *Txn {
	return &Txn{backend: b, reads: make(map[string]Version), writes: make(map[string]*Write)}
}

// Get returns the value of key, or ErrNotFound.
func (t *Txn) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, ErrTxnDone
	}
	if w, ok := t.writes[string(key)]; ok {
		if w.Delete {
			return nil, ErrNotFound
		}
		return bytes.Clone(w.Value), nil
	}
	if t.rangeDeleted(key) {
		return nil, ErrNotFound
	}
	v, ver, found, err := t.backend.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if _, seen := t.reads[string(key)]; !seen {
		t.reads[string(key)] = ver
		t.readOrder = append(t.readOrder, string(key))
	}
	if !found {
		return nil, ErrNotFound
	}
	return v, nil
}

// Scan returns up to opts.Limit pairs in [opts.Start, opts.End), ascending
// or (Reverse) descending, including the transaction's own writes.
func (t *Txn) Scan(ctx context.Context, opts ScanOptions) ([]KV, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return nil, ErrTxnDone
	}
	// Buffered sets in range, in scan order.
	var buffered []KV
	for k, w := range t.writes {
		if !w.Delete && opts.contains([]byte(k)) {
			buffered = append(buffered, KV{Key: []byte(k), Value: w.Value})
		}
	}
	less := func(a, b []byte) bool {
		if opts.Reverse {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	slices.SortFunc(buffered, func(a, b KV) int {
		if less(a.Key, b.Key) {
			return -1
		}
		return 1
	})

	out := make([]KV, 0, min(opts.Limit, 64))
	page := opts
	var pending []VersionedKV
	exhausted := false
	for len(out) < opts.Limit {
		if len(pending) == 0 && !exhausted {
			got, err := t.backend.Scan(ctx, page)
			if err != nil {
				return nil, err
			}
			rec := ScanRecord{Options: page, Seen: make([]ReadRecord, len(got))}
			for i, kv := range got {
				rec.Seen[i] = ReadRecord{Key: kv.Key, Version: kv.Version}
			}
			t.scans = append(t.scans, rec)
			exhausted = len(got) < page.Limit
			if len(got) > 0 {
				last := got[len(got)-1].Key
				if opts.Reverse {
					page.End = last
				} else {
					page.Start = append(bytes.Clone(last), 0)
				}
			}
			for _, kv := range got {
				if _, overridden := t.writes[string(kv.Key)]; overridden || t.rangeDeleted(kv.Key) {
					continue
				}
				pending = append(pending, kv)
			}
			continue
		}
		switch {
		case len(pending) == 0 && len(buffered) == 0:
			return out, nil
		case len(pending) == 0 || (len(buffered) > 0 && less(buffered[0].Key, pending[0].Key)):
			out = append(out, KV{Key: bytes.Clone(buffered[0].Key), Value: bytes.Clone(buffered[0].Value)})
			buffered = buffered[1:]
		default:
			out = append(out, KV{Key: pending[0].Key, Value: pending[0].Value})
			pending = pending[1:]
		}
	}
	return out, nil
}

// Set buffers key=value.
func (t *Txn) Set(key, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > ValueBytesMax {
		return fmt.Errorf("%w: value of %d bytes for key %q exceeds %d", ErrTooLarge, len(value), key, ValueBytesMax)
	}
	if value == nil {
		value = []byte{}
	}
	return t.buffer(&Write{Key: bytes.Clone(key), Value: bytes.Clone(value)})
}

// Delete buffers the removal of key. Deleting an absent key is not an error.
func (t *Txn) Delete(key []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return t.buffer(&Write{Key: bytes.Clone(key), Delete: true})
}

func (t *Txn) buffer(w *Write) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrTxnDone
	}
	n := len(w.Key) + len(w.Value)
	if w.Text != nil {
		n += len(*w.Text)
	}
	if err := t.account(n); err != nil {
		return err
	}
	t.writes[string(w.Key)] = w
	return nil
}

func (t *Txn) account(n int) error {
	if t.writeCount+1 > TxnWritesMax {
		return fmt.Errorf("%w: transaction exceeds %d writes", ErrTooLarge, TxnWritesMax)
	}
	if t.writeBytes+n > TxnBytesMax {
		return fmt.Errorf("%w: transaction exceeds %d bytes", ErrTooLarge, TxnBytesMax)
	}
	t.writeCount++
	t.writeBytes += n
	return nil
}

// DeleteRange buffers the removal of every key in [start, end); a nil end
// means "every key from start on".
func (t *Txn) DeleteRange(start, end []byte) error {
	if err := checkKey(start); err != nil {
		return err
	}
	if end != nil && bytes.Compare(start, end) >= 0 {
		return fmt.Errorf("%w: empty or inverted range", ErrInvalid)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrTxnDone
	}
	if err := t.account(len(start) + len(end)); err != nil {
		return err
	}
	r := KeyRange{Start: bytes.Clone(start), End: bytes.Clone(end)}
	for k := range t.writes {
		if inRange(r, []byte(k)) {
			delete(t.writes, k)
		}
	}
	t.rangeDeletes = append(t.rangeDeletes, r)
	return nil
}

// Fence makes Commit fail with ErrFenced unless the value at key is epoch
// (as written by EncodeEpoch) when the commit applies.
func (t *Txn) Fence(key []byte, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fences = append(t.fences, Fence{Key: bytes.Clone(key), Epoch: epoch})
}

// Commit validates the transaction's reads and fences and applies its
// writes atomically and durably. On ErrConflict or ErrFenced nothing was
// written. A commit that returns another error may or may not have applied
// (the caller must treat it as indeterminate).
func (t *Txn) Commit(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return ErrTxnDone
	}
	t.done = true
	req := &CommitRequest{Scans: t.scans, Fences: t.fences, RangeDeletes: t.rangeDeletes}
	for _, k := range t.readOrder {
		req.Reads = append(req.Reads, ReadRecord{Key: []byte(k), Version: t.reads[k]})
	}
	for _, w := range t.writes {
		req.Writes = append(req.Writes, *w)
	}
	slices.SortFunc(req.Writes, func(a, b Write) int { return bytes.Compare(a.Key, b.Key) })
	req.check()
	return t.backend.Commit(ctx, req)
}

// check asserts the shape every backend relies on: writes in strictly
// increasing key order, each a set with a value or a delete with none,
// text only on a set and its scope inside its key, and fences naming an
// epoch (activations start at 1).
func (req *CommitRequest) check() {
	for i, w := range req.Writes {
		invariant.Check(i == 0 || bytes.Compare(req.Writes[i-1].Key, w.Key) < 0, "commit writes %q after %q", w.Key, req.Writes[max(i-1, 0)].Key)
		invariant.Check(w.Delete == (w.Value == nil), "write of %q: delete %v with a value of %d bytes", w.Key, w.Delete, len(w.Value))
		invariant.Check(w.Text == nil || !w.Delete, "delete of %q carries a text document", w.Key)
		invariant.Check(w.TextScope >= 0 && w.TextScope <= len(w.Key), "write of %q: text scope %d outside its key", w.Key, w.TextScope)
	}
	for _, f := range req.Fences {
		invariant.Check(f.Epoch > 0, "fence on %q at epoch 0", f.Key)
	}
}

// Rollback discards the transaction. It is safe to call after Commit.
func (t *Txn) Rollback() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
	t.writes = nil
}

// HasWrites reports whether the transaction has buffered any write.
func (t *Txn) HasWrites() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.writes) > 0 || len(t.rangeDeletes) > 0
}

func (t *Txn) rangeDeleted(key []byte) bool {
	for _, r := range t.rangeDeletes {
		if inRange(r, key) {
			return true
		}
	}
	return false
}

func inRange(r KeyRange, key []byte) bool {
	return bytes.Compare(key, r.Start) >= 0 && (r.End == nil || bytes.Compare(key, r.End) < 0)
}
