package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"
)

// Version identifies the commit that last wrote a key. Versions grow
// strictly across commits of one store; 0 means "absent".
type Version uint64

// VersionedKV is a pair with the version of the commit that wrote it.
type VersionedKV struct {
	Key     []byte
	Value   []byte
	Version Version
}

// Reader is the read half of a backend: point reads and range scans, each
// returning the version that wrote the data.
type Reader interface {
	// Get returns the value and version of key, or found=false.
	Get(ctx context.Context, key []byte) (value []byte, version Version, found bool, err error)
	// Scan returns at most opts.Limit pairs in [opts.Start, opts.End).
	Scan(ctx context.Context, opts ScanOptions) ([]VersionedKV, error)
}

// Backend is what a storage engine implements. The OCC transaction logic is
// shared (see Txn); a backend supplies versioned reads and an atomic
// validate-and-apply.
type Backend interface {
	Reader
	// Commit applies req atomically and durably: it calls req.Validate
	// with a Reader that sees the state the writes would apply to, and
	// applies the writes (range deletes first, then sets and deletes) under
	// one new version only if validation passes. It returns the error from
	// Validate (ErrConflict, ErrFenced) unchanged.
	Commit(ctx context.Context, req *CommitRequest) error
	// Close releases the backend.
	Close() error
}

// CommitRequest is everything a transaction needs checked and written.
type CommitRequest struct {
	// Reads are the point reads the transaction made (version 0: absent).
	Reads []ReadRecord
	// Scans are the range scans the transaction made, with what they saw.
	Scans []ScanRecord
	// Fences must each still hold their epoch.
	Fences []Fence
	// RangeDeletes are applied before Writes.
	RangeDeletes []KeyRange
	// Writes are sets (Value non-nil) and deletes (Delete true), in key order.
	Writes []Write
}

// ReadRecord is one point read.
type ReadRecord struct {
	Key     []byte
	Version Version
}

// ScanRecord is one range scan and the keys and versions it returned.
type ScanRecord struct {
	Options ScanOptions
	Seen    []ReadRecord
}

// Fence asks that the value at Key be the 8-byte big-endian Epoch.
type Fence struct {
	Key   []byte
	Epoch uint64
}

// KeyRange is [Start, End); a nil End means "to the end of the keyspace".
type KeyRange struct {
	Start, End []byte
}

// Write is one buffered set or delete.
type Write struct {
	Key    []byte
	Value  []byte
	Delete bool
	// Text, on a set, is the key's full-text document (Txn.SetWithText);
	// nil drops any document the key had. See text.go.
	Text *string
	// TextScope, with Text, is the length of the document's scope, the
	// prefix Key[:TextScope] (Txn.SetWithTextScoped); 0 means no scope.
	// 0 <= TextScope <= len(Key). See text.go.
	TextScope int
}

// HasWrites reports whether applying req would change anything.
func (req *CommitRequest) HasWrites() bool {
	return len(req.Writes) > 0 || len(req.RangeDeletes) > 0
}

// Validate checks req against the current state seen through r: every
// read and scan must see what it saw before (else ErrConflict) and every
// fence must hold (else ErrFenced). Backends call it inside their atomic
// section.
func (req *CommitRequest) Validate(ctx context.Context, r Reader) error {
	for _, f := range req.Fences {
		v, _, found, err := r.Get(ctx, f.Key)
		if err != nil {
			return err
		}
		if !found || len(v) != 8 || binary.BigEndian.Uint64(v) != f.Epoch {
			got := "absent"
			if found && len(v) == 8 {
				got = fmt.Sprint(binary.BigEndian.Uint64(v))
			}
			return fmt.Errorf("%w: fence %q expects epoch %d, holds %s", ErrFenced, f.Key, f.Epoch, got)
		}
	}
	for _, rd := range req.Reads {
		_, ver, _, err := r.Get(ctx, rd.Key)
		if err != nil {
			return err
		}
		if ver != rd.Version {
			return fmt.Errorf("%w: key %q changed since read", ErrConflict, rd.Key)
		}
	}
	for _, sc := range req.Scans {
		now, err := r.Scan(ctx, sc.Options)
		if err != nil {
			return err
		}
		if len(now) != len(sc.Seen) {
			return fmt.Errorf("%w: range [%q, %q) changed since scan", ErrConflict, sc.Options.Start, sc.Options.End)
		}
		for i := range now {
			if now[i].Version != sc.Seen[i].Version || !bytes.Equal(now[i].Key, sc.Seen[i].Key) {
				return fmt.Errorf("%w: range [%q, %q) changed since scan", ErrConflict, sc.Options.Start, sc.Options.End)
			}
		}
	}
	return nil
}

// EncodeEpoch returns the 8-byte value a Fence compares against.
func EncodeEpoch(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, epoch)
}

// DecodeEpoch parses a value written by EncodeEpoch.
func DecodeEpoch(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: epoch value of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// CommitObserver receives a backend's commit measurements, for metrics
// and traces. The SQLite and PostgreSQL backends report to one given to
// their SetCommitObserver; the in-memory one reports nothing.
type CommitObserver interface {
	// Commit reports that a commit request is submitted; done is called
	// once with its outcome. The context done is given carries what ctx
	// carried (a trace span).
	Commit(ctx context.Context, backend string) (done func(err error))
	// Batch reports one durable write: requests commit requests made
	// durable together by one transaction and one sync to disk (SQLite's
	// group commit; PostgreSQL commits one request at a time), in d.
	Batch(backend string, requests int, d time.Duration)
}
