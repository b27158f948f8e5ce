// Package storage defines Kelpie's one transactional, ordered key-value
// interface and the optimistic-concurrency transaction shared by every
// backend.
//
// A Store hands out transactions. A transaction reads through to the
// backend, buffers its writes (reads see them: read-your-writes), and at
// Commit asks the backend to apply the writes atomically if, and only if,
// nothing it read has changed since (otherwise ErrConflict) and every
// fence it named still holds its epoch (otherwise ErrFenced). A backend
// supplies only the Backend interface: versioned reads and an atomic
// validate-and-apply. The backends live in storage/memory, storage/sqlite
// and storage/postgres; storage/storagetest is the conformance suite they
// all pass.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Limits. Every write, key and scan is bounded; over a limit the operation
// fails with ErrTooLarge and nothing is truncated.
const (
	// KeyBytesMax bounds the length of a key.
	KeyBytesMax = 2048
	// ValueBytesMax bounds the length of one value.
	ValueBytesMax = 8 << 20
	// TxnBytesMax bounds the keys and values one transaction writes.
	TxnBytesMax = 32 << 20
	// TxnWritesMax bounds the number of writes (sets, deletes and range
	// deletes) in one transaction.
	TxnWritesMax = 10000
	// ScanLimitMax bounds the number of pairs one Scan returns.
	ScanLimitMax = 10000
)

// Typed errors. Backends wrap them with detail; test with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a concurrent transaction changed something this one read;
	// nothing was written and the caller may retry.
	ErrConflict = errors.New("storage: conflict")
	// ErrFenced: a fence named in the transaction no longer holds the
	// expected epoch; the caller's activation is stale. Nothing was written.
	ErrFenced = errors.New("storage: fenced")
	// ErrTooLarge: a key, value, transaction or scan exceeds its limit.
	ErrTooLarge = errors.New("storage: too large")
	// ErrInvalid: an argument is malformed (empty key, bad range, bad limit).
	ErrInvalid = errors.New("storage: invalid argument")
	// ErrTxnDone: the transaction was already committed or rolled back.
	ErrTxnDone = errors.New("storage: transaction already finished")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("storage: closed")
	// ErrCorrupt: stored data failed an integrity check.
	ErrCorrupt = errors.New("storage: corrupt data")
)

// Store is an ordered, transactional key-value store.
type Store interface {
	// Begin starts a transaction.
	Begin(ctx context.Context) (*Txn, error)
	// Close releases the store. Transactions in flight fail with ErrClosed.
	Close() error
}

// KV is one key-value pair.
type KV struct {
	Key   []byte
	Value []byte
}

// ScanOptions selects a range of keys.
type ScanOptions struct {
	// Start is the inclusive lower bound (nil: the first key).
	Start []byte
	// End is the exclusive upper bound (nil: past the last key).
	End []byte
	// Reverse returns keys in descending order.
	Reverse bool
	// Limit is the most pairs to return, 1..ScanLimitMax.
	Limit int
}

func (o ScanOptions) validate() error {
	if o.Limit <= 0 {
		return fmt.Errorf("%w: scan limit %d must be positive", ErrInvalid, o.Limit)
	}
	if o.Limit > ScanLimitMax {
		return fmt.Errorf("%w: scan limit %d exceeds %d", ErrTooLarge, o.Limit, ScanLimitMax)
	}
	if o.Start != nil && o.End != nil && bytes.Compare(o.Start, o.End) > 0 {
		return fmt.Errorf("%w: scan start after end", ErrInvalid)
	}
	return nil
}

// contains reports whether key lies in [Start, End).
func (o ScanOptions) contains(key []byte) bool {
	return (o.Start == nil || bytes.Compare(key, o.Start) >= 0) &&
		(o.End == nil || bytes.Compare(key, o.End) < 0)
}

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, or nil if there is none (the prefix is all 0xff).
func PrefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if len(key) > KeyBytesMax {
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrTooLarge, len(key), KeyBytesMax)
	}
	return nil
}
