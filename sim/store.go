package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"time"

	"github.com/google/btree"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// Errors the simulated disk reports. None wraps storage.ErrConflict or
// storage.ErrFenced: to the actor runtime every one of them means "outcome
// unknown".
var (
	// errIO is the simulated disk's generic I/O failure.
	errIO = errors.New("sim: I/O error")
	// errDiskFull is the simulated disk running out of space.
	errDiskFull = errors.New("sim: no space left on device (disk full)")
)

// castagnoli is the CRC32 table every stored record is checksummed with.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum returns the CRC32-C of key followed by value.
func checksum(key, value []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, value)
}

// record is one stored pair, as it sits on the simulated disk.
type record struct {
	key     []byte
	value   []byte
	version storage.Version
	crc     uint32
}

func recordLess(a, b record) bool { return bytes.Compare(a.key, b.key) < 0 }

// verify checks the record's checksum: a mismatch is ErrCorrupt.
func (rec record) verify() error {
	if checksum(rec.key, rec.value) != rec.crc {
		return fmt.Errorf("%w: checksum mismatch for key %q (version %d)", storage.ErrCorrupt, rec.key, rec.version)
	}
	return nil
}

// write is one set or delete in a volatile batch.
type write struct {
	key    []byte
	value  []byte
	crc    uint32
	delete bool
}

// batch is one committed transaction's writes: applied (visible) at once,
// durable only once fsynced.
type batch struct {
	version      storage.Version
	rangeDeletes []storage.KeyRange
	writes       []write // sorted by key, one per key
	// lost: the batch vanished in a crash before it was fsynced.
	lost bool
}

// find returns the batch's write to key, if any.
func (b *batch) find(key []byte) (write, bool) {
	i, ok := slices.BinarySearchFunc(b.writes, key, func(w write, k []byte) int { return bytes.Compare(w.key, k) })
	if !ok {
		return write{}, false
	}
	return b.writes[i], true
}

// rangeDeleted reports whether one of the batch's range deletes covers key.
func (b *batch) rangeDeleted(key []byte) bool {
	for _, r := range b.rangeDeletes {
		if bytes.Compare(key, r.Start) >= 0 && (r.End == nil || bytes.Compare(key, r.End) < 0) {
			return true
		}
	}
	return false
}

// Store is the simulated storage backend, the node's "disk". It has two
// layers: durable records (what survives a power cut) and an ordered list
// of volatile batches, committed and visible but not yet fsynced. Reads
// see the durable layer overlaid with the volatile batches in commit
// order. Every record carries a CRC32-C of its key and value, verified on
// every read. Faults from an Injector make reads and commits fail, slow
// down, corrupt bytes in flight, crash the node, or lose unsynced writes
// at a crash.
//
// A Store outlives node crashes: the harness keeps one for the whole run,
// calls Crash when the owning node crashes, and after a restart rebinds it
// with SetRuntime and rebuilds the node's software on top of it.
type Store struct {
	inj   *Injector
	crash func()

	mu       sync.Mutex
	r        rt.Runtime
	durable  *btree.BTreeG[record]
	volatile []*batch // committed, not yet fsynced, in version order
	version  storage.Version
	closed   bool
}

var _ storage.Backend = (*Store)(nil)
var _ storage.Store = (*Store)(nil)

// NewStore returns an empty simulated store. r is the runtime its
// operations yield and sleep on (a sim Node's Runtime in simulations;
// rt.NewSystem() works too, for the conformance suite); inj may be nil (no
// faults); crash is called to crash the calling node (CrashBeforeWrite) and
// must not return when called from a task of that node (sim.Node.Crash
// behaves so); it may be nil when inj is nil. The callback is the whole
// node crash: a harness usually has it call the store's Crash and then
// Node.Crash.
func NewStore(r rt.Runtime, inj *Injector, crash func()) *Store {
	return &Store{r: r, inj: inj, crash: crash, durable: btree.NewG(16, recordLess)}
}

// Begin starts a transaction on the store (storage.NewTxn).
func (s *Store) Begin(ctx context.Context) (*storage.Txn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("sim: store: %w", storage.ErrClosed)
	}
	return storage.NewTxn(s), nil
}

// Close closes the store: later operations fail with storage.ErrClosed.
// Its contents stay readable through Durable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// SetRuntime rebinds the runtime used for yields and sleeps (after a node
// restart the harness passes the new incarnation's runtime).
func (s *Store) SetRuntime(r rt.Runtime) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r = r
}

func (s *Store) runtime() rt.Runtime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r
}

// Durable returns a snapshot of the durable contents (key -> value), for
// checkers and tests. Volatile batches are not included.
func (s *Store) Durable() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, s.durable.Len())
	s.durable.Ascend(func(rec record) bool {
		out[string(rec.key)] = bytes.Clone(rec.value)
		return true
	})
	return out
}

// latency sleeps the StorageLatency fault's 1–50 ms.
func latency(ctx context.Context, r rt.Runtime) error {
	d := time.Duration(1+rt.Intn(r.Rand("storage-latency"), 50)) * time.Millisecond
	return r.Sleep(ctx, d)
}

// corrupt flips one byte of the record's raw stored bytes (the value, or
// the stored checksum when the value is empty). rec is a private copy.
// Any single changed byte is a burst of at most 8 bits, which CRC32-C
// always detects.
func corrupt(r rt.Runtime, rec *record) {
	rnd := r.Rand("storage-corruption")
	mask := byte(1 + rt.Intn(rnd, 255)) // never 0: the byte really changes
	if len(rec.value) == 0 {
		rec.crc ^= uint32(mask) << (8 * rt.Intn(rnd, 4))
		return
	}
	rec.value[rt.Intn(rnd, len(rec.value))] ^= mask
}

// readFault checks the read hook op and applies what fires: it returns an
// error to fail the read, or whether to corrupt what it reads.
func (s *Store) readFault(ctx context.Context, r rt.Runtime, op Op) (corruptIt bool, err error) {
	f, fired := s.inj.Check(op)
	if !fired {
		return false, nil
	}
	switch f {
	case StorageReadFail:
		return false, fmt.Errorf("sim: injected read failure: %w", errIO)
	case StorageCorruption:
		return true, nil
	case StorageLatency:
		return false, latency(ctx, r)
	default:
		s.inj.Unhandled(op, f)
		return false, fmt.Errorf("sim: unhandled fault %s at %s: %w", f, op, errIO)
	}
}

// Get implements storage.Reader. It yields first, so the scheduler may
// interleave other tasks, then applies any read fault and verifies the
// checksum of what it read.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	r := s.runtime()
	if err := r.Sleep(ctx, 0); err != nil {
		return nil, 0, false, err
	}
	corruptIt, err := s.readFault(ctx, r, OpStorageGet)
	if err != nil {
		return nil, 0, false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, false, fmt.Errorf("sim: store: %w", storage.ErrClosed)
	}
	rec, found := s.lookupLocked(key)
	s.mu.Unlock()
	if !found {
		return nil, 0, false, nil
	}
	if corruptIt {
		corrupt(r, &rec)
	}
	if err := rec.verify(); err != nil {
		return nil, 0, false, err
	}
	return rec.value, rec.version, true, nil
}

// Scan implements storage.Reader, with Get's yield, faults (corruption
// hits one returned pair) and checksum verification.
func (s *Store) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if err := checkScan(opts); err != nil {
		return nil, err
	}
	r := s.runtime()
	if err := r.Sleep(ctx, 0); err != nil {
		return nil, err
	}
	corruptIt, err := s.readFault(ctx, r, OpStorageScan)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("sim: store: %w", storage.ErrClosed)
	}
	recs := s.scanLocked(opts)
	s.mu.Unlock()
	if corruptIt && len(recs) > 0 {
		corrupt(r, &recs[rt.Intn(r.Rand("storage-corruption"), len(recs))])
	}
	return verified(recs)
}

func checkScan(opts storage.ScanOptions) error {
	if opts.Limit <= 0 {
		return fmt.Errorf("%w: scan limit %d must be positive", storage.ErrInvalid, opts.Limit)
	}
	if opts.Limit > storage.ScanLimitMax {
		return fmt.Errorf("%w: scan limit %d exceeds %d", storage.ErrTooLarge, opts.Limit, storage.ScanLimitMax)
	}
	if opts.Start != nil && opts.End != nil && bytes.Compare(opts.Start, opts.End) > 0 {
		return fmt.Errorf("%w: scan start after end", storage.ErrInvalid)
	}
	return nil
}

// verified checks every record's checksum and converts them.
func verified(recs []record) ([]storage.VersionedKV, error) {
	out := make([]storage.VersionedKV, len(recs))
	for i, rec := range recs {
		if err := rec.verify(); err != nil {
			return nil, err
		}
		out[i] = storage.VersionedKV{Key: rec.key, Value: rec.value, Version: rec.version}
	}
	return out, nil
}

// lookupLocked resolves key through the volatile batches, newest first,
// then the durable layer. It returns a private copy. Callers hold s.mu.
func (s *Store) lookupLocked(key []byte) (record, bool) {
	for i := len(s.volatile) - 1; i >= 0; i-- {
		b := s.volatile[i]
		if w, ok := b.find(key); ok { // a batch's writes apply after its range deletes
			if w.delete {
				return record{}, false
			}
			return record{key: bytes.Clone(w.key), value: bytes.Clone(w.value), version: b.version, crc: w.crc}, true
		}
		if b.rangeDeleted(key) {
			return record{}, false
		}
	}
	rec, ok := s.durable.Get(record{key: key})
	if !ok {
		return record{}, false
	}
	return record{key: bytes.Clone(rec.key), value: bytes.Clone(rec.value), version: rec.version, crc: rec.crc}, true
}

// before reports whether a comes before b in the scan's direction.
func before(a, b []byte, reverse bool) bool {
	if reverse {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

// scanLocked returns up to opts.Limit records of the overlaid view in
// [Start, End), in scan order, as private copies (unverified). Callers
// hold s.mu.
func (s *Store) scanLocked(opts storage.ScanOptions) []record {
	var out []record
	if len(s.volatile) == 0 {
		s.durableRange(opts, func(rec record) bool {
			out = append(out, record{key: bytes.Clone(rec.key), value: bytes.Clone(rec.value), version: rec.version, crc: rec.crc})
			return len(out) < opts.Limit
		})
		return out
	}
	// Keys the volatile batches set in range, deduplicated, in scan order;
	// merged with the durable keys in range. Each candidate is resolved
	// through the layers (which drops keys later deleted).
	seen := make(map[string]bool)
	var extra [][]byte
	for _, b := range s.volatile {
		for _, w := range b.writes {
			if !w.delete && inScan(opts, w.key) && !seen[string(w.key)] {
				seen[string(w.key)] = true
				extra = append(extra, w.key)
			}
		}
	}
	slices.SortFunc(extra, func(a, b []byte) int {
		if opts.Reverse {
			return bytes.Compare(b, a)
		}
		return bytes.Compare(a, b)
	})
	emit := func(key []byte) bool {
		if rec, ok := s.lookupLocked(key); ok {
			out = append(out, rec)
		}
		return len(out) < opts.Limit
	}
	more := true
	s.durableRange(opts, func(rec record) bool {
		for len(extra) > 0 && before(extra[0], rec.key, opts.Reverse) {
			k := extra[0]
			extra = extra[1:]
			if !emit(k) {
				more = false
				return false
			}
		}
		if len(extra) > 0 && bytes.Equal(extra[0], rec.key) {
			extra = extra[1:]
		}
		more = emit(rec.key)
		return more
	})
	for more && len(extra) > 0 {
		more = emit(extra[0])
		extra = extra[1:]
	}
	return out
}

func inScan(opts storage.ScanOptions, key []byte) bool {
	return (opts.Start == nil || bytes.Compare(key, opts.Start) >= 0) &&
		(opts.End == nil || bytes.Compare(key, opts.End) < 0)
}

// durableRange visits the durable records in [Start, End) in scan order
// until visit returns false. Callers hold s.mu.
func (s *Store) durableRange(opts storage.ScanOptions, visit func(record) bool) {
	memory.Range(s.durable, func(k []byte) record { return record{key: k} }, func(r record) []byte { return r.key }, opts, visit)
}

// locked is the Reader req.Validate sees inside Commit's atomic section:
// the overlaid view, checksums verified, no yields and no faults.
type locked struct{ s *Store }

func (l locked) Get(_ context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	rec, ok := l.s.lookupLocked(key)
	if !ok {
		return nil, 0, false, nil
	}
	if err := rec.verify(); err != nil {
		return nil, 0, false, err
	}
	return rec.value, rec.version, true, nil
}

func (l locked) Scan(_ context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if err := checkScan(opts); err != nil {
		return nil, err
	}
	return verified(l.s.scanLocked(opts))
}

// commitMode is how a commit ends, chosen by the fault that fired.
type commitMode int

const (
	commitNormal     commitMode = iota
	commitAfterWrite            // CrashAfterWrite: applied and durable, caller sees an error
	commitFsyncFail             // StorageFsyncFail: applied, fsync fails, rolled back
)

// Commit implements storage.Backend. It yields, checks the commit faults,
// validates req and applies it to the volatile layer under the next
// version atomically, yields again (other tasks may now read the batch),
// then "fsyncs": makes the batch, and every earlier one, durable. A node
// crash between the apply and the fsync may lose the batch (see Crash).
// Validation errors are returned unchanged with nothing applied.
// fsyncLatencyMax bounds the virtual time one fsync takes.
const fsyncLatencyMax = 2 * time.Millisecond

func (s *Store) Commit(ctx context.Context, req *storage.CommitRequest) error {
	r := s.runtime()
	if err := r.Sleep(ctx, 0); err != nil {
		return err
	}
	mode := commitNormal
	if f, fired := s.inj.Check(OpStorageCommit); fired {
		switch f {
		case StorageWriteFail:
			return fmt.Errorf("sim: injected write failure: %w", errIO)
		case DiskFull:
			return fmt.Errorf("sim: commit failed: %w", errDiskFull)
		case CrashBeforeWrite:
			if s.crash == nil {
				s.inj.Unhandled(OpStorageCommit, f)
				return fmt.Errorf("sim: unhandled fault %s (no crash callback): %w", f, errIO)
			}
			s.crash() // does not return to a task of the crashed node
			return fmt.Errorf("sim: node crashed before the commit was written: %w", errIO)
		case CrashDuringTransaction:
			return fmt.Errorf("sim: commit interrupted by a crash, nothing written: %w", errIO)
		case CrashAfterWrite:
			mode = commitAfterWrite
		case StorageFsyncFail:
			mode = commitFsyncFail
		case StorageLatency:
			if err := latency(ctx, r); err != nil {
				return err
			}
		default:
			s.inj.Unhandled(OpStorageCommit, f)
			return fmt.Errorf("sim: unhandled fault %s at %s: %w", f, OpStorageCommit, errIO)
		}
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("sim: store: %w", storage.ErrClosed)
	}
	if err := req.Validate(ctx, locked{s}); err != nil {
		s.mu.Unlock()
		return err
	}
	var b *batch
	if req.HasWrites() {
		b = s.applyLocked(req)
	}
	switch mode {
	case commitFsyncFail:
		// The sync failed before anyone could see the batch (no yield
		// since it was applied): roll it back, as SQLite does.
		if b != nil {
			s.volatile = slices.DeleteFunc(s.volatile, func(x *batch) bool { return x == b })
		}
		s.mu.Unlock()
		return fmt.Errorf("sim: injected fsync failure, commit rolled back: %w", errIO)
	case commitAfterWrite:
		if b != nil {
			s.flushLocked(b.version)
		}
		s.mu.Unlock()
		return fmt.Errorf("sim: node crashed after the commit was written: %w", errIO)
	}
	s.mu.Unlock()
	if b == nil {
		return nil // read-only: nothing to sync
	}

	// The batch is visible but not durable while the fsync runs (up to
	// fsyncLatencyMax). The caller's ctx must not abandon the fsync
	// half-way, so wait on a background context.
	r.Sleep(context.Background(), time.Duration(rt.Intn(r.Rand("storage-fsync"), int(fsyncLatencyMax/time.Microsecond)))*time.Microsecond)

	s.mu.Lock()
	defer s.mu.Unlock()
	if b.lost {
		return fmt.Errorf("sim: commit lost in a crash before it was synced: %w", errIO)
	}
	s.flushLocked(b.version)
	return nil
}

// applyLocked appends req's writes to the volatile layer as one batch
// under the next version. Callers hold s.mu and have validated req.
func (s *Store) applyLocked(req *storage.CommitRequest) *batch {
	s.version++
	b := &batch{version: s.version}
	for _, r := range req.RangeDeletes {
		b.rangeDeletes = append(b.rangeDeletes, storage.KeyRange{Start: bytes.Clone(r.Start), End: bytes.Clone(r.End)})
	}
	byKey := make(map[string]int, len(req.Writes))
	for _, w := range req.Writes {
		nw := write{key: bytes.Clone(w.Key), delete: w.Delete}
		if !w.Delete {
			nw.value = bytes.Clone(w.Value)
			if nw.value == nil {
				nw.value = []byte{}
			}
			nw.crc = checksum(nw.key, nw.value)
		}
		if i, dup := byKey[string(w.Key)]; dup {
			b.writes[i] = nw // the later write to a key wins
			continue
		}
		byKey[string(w.Key)] = len(b.writes)
		b.writes = append(b.writes, nw)
	}
	slices.SortFunc(b.writes, func(a, c write) int { return bytes.Compare(a.key, c.key) })
	s.volatile = append(s.volatile, b)
	return b
}

// flushLocked makes every volatile batch up to version v durable, in
// order: like a write-ahead log, syncing one commit syncs all before it.
// Callers hold s.mu.
func (s *Store) flushLocked(v storage.Version) {
	n := 0
	for n < len(s.volatile) && s.volatile[n].version <= v {
		s.persistLocked(s.volatile[n])
		n++
	}
	s.volatile = slices.Delete(s.volatile, 0, n)
}

// persistLocked applies b to the durable layer: range deletes, then writes.
func (s *Store) persistLocked(b *batch) {
	for _, r := range b.rangeDeletes {
		var doomed []record
		collect := func(rec record) bool { doomed = append(doomed, rec); return true }
		if r.End == nil {
			s.durable.AscendGreaterOrEqual(record{key: r.Start}, collect)
		} else {
			s.durable.AscendRange(record{key: r.Start}, record{key: r.End}, collect)
		}
		for _, rec := range doomed {
			s.durable.Delete(rec)
		}
	}
	for _, w := range b.writes {
		if w.delete {
			s.durable.Delete(record{key: w.key})
			continue
		}
		s.durable.ReplaceOrInsert(record{key: w.key, value: w.value, version: b.version, crc: w.crc})
	}
}

// Crash models the power going out on the node that owns the disk: every
// committed-but-unsynced batch is lost if the StorageUnflushedLoss fault
// fires for it (checked once per batch at OpStorageCrash), and otherwise
// survives (it reached the platter in time). A lost batch takes every
// later volatile batch with it, as a lost write-back cache does (a later
// batch may depend on it). Call it when the node crashes.
func (s *Store) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.volatile {
		f, fired := s.inj.Check(OpStorageCrash)
		if fired && f == StorageUnflushedLoss {
			for _, gone := range s.volatile[i:] {
				gone.lost = true
			}
			break
		}
		if fired {
			s.inj.Unhandled(OpStorageCrash, f)
		}
		s.persistLocked(b)
	}
	s.volatile = nil
}
