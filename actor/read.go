package actor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
)

// ErrReadOnly: a committed read (ReadCommitted) tried to write.
var ErrReadOnly = errors.New("actor: write in a committed read")

// ReadCommitted runs fn over the actor's last committed state and KV
// space, read straight from store: no activation, no mailbox, so it
// never waits behind the actor's invocations nor fails with ErrBusy. Its
// transaction is committed without writes, which validates every read as
// one snapshot (ErrConflict if a commit changed what fn read; retry).
// What it returns is what an invocation would have answered between two
// commits: an activation's state equals its last commit between
// invocations. fn must only read: a write fails the read with ErrReadOnly
// and is discarded; AfterCommit callbacks are dropped.
func ReadCommitted[S any](ctx context.Context, store storage.Store, r rt.Runtime, id ID, fn func(c *Context[S]) ([]byte, error)) ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	tx, err := store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var state S
	v, err := tx.Get(ctx, id.StateKey())
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("load state: %w", err)
	default:
		if err := json.Unmarshal(v, &state); err != nil {
			return nil, fmt.Errorf("%w: state of %s: %v", storage.ErrCorrupt, id, err)
		}
	}
	c := &Context[S]{ID: id, State: &state, runtime: r, tx: tx, kvPrefix: id.KVPrefix()}
	reply, err := readSafely(fn, c)
	if err != nil {
		return nil, err
	}
	if tx.HasWrites() || c.cleared {
		return nil, fmt.Errorf("%w: %s", ErrReadOnly, id)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return reply, nil
}

// readSafely runs fn, turning a panic into ErrPanic (a committed read has
// no System to report it to; the caller sees it).
func readSafely[S any](fn func(c *Context[S]) ([]byte, error), c *Context[S]) (reply []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s: %v", ErrPanic, c.ID, p)
		}
	}()
	return fn(c)
}
