package actor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/kelpie-ai/kelpie/invariant"
	"github.com/kelpie-ai/kelpie/storage"
)

// kind is a registered actor type with its state type erased.
type kind interface {
	newInstance(s *System, id ID) instance
}

// instance is one activation's typed half.
type instance interface {
	activate(ctx context.Context) error
	run(ctx context.Context, op string, payload []byte) outcome
	deactivate(ctx context.Context) error
}

// outcome is the result of one invocation.
type outcome struct {
	reply      []byte
	err        error
	deactivate bool // the actor asked to be deactivated
	stale      bool // memory no longer matches storage: end the activation
	// after comes from the invocation's AfterCommit calls; it runs only
	// after a successful commit.
	after []func()
}

type kindOf[S any] struct {
	actor Actor[S]
}

func (k *kindOf[S]) newInstance(s *System, id ID) instance {
	zero, err := json.Marshal(new(S))
	if err != nil {
		panic(fmt.Sprintf("actor: state type %T is not JSON-serializable: %v", *new(S), err))
	}
	return &instanceOf[S]{sys: s, id: id, actor: k.actor, zero: zero}
}

// instanceOf holds an activation's state. Only the activation's task
// touches it.
type instanceOf[S any] struct {
	sys       *System
	id        ID
	actor     Actor[S]
	state     S
	committed []byte // serialized state as last committed; nil if none stored
	zero      []byte // serialized zero state
	pending   []byte // serialized state after the current invocation
	staged    bool   // pending is written by the current invocation
	epoch     uint64
}

// activate claims a new epoch, loads the state and runs OnActivate.
func (i *instanceOf[S]) activate(ctx context.Context) error {
	if err := i.claimEpoch(ctx); err != nil {
		return err
	}
	tx, err := i.sys.store.Begin(ctx)
	if err != nil {
		return err
	}
	v, err := tx.Get(ctx, i.id.StateKey())
	tx.Rollback()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		i.committed = nil
	case err != nil:
		return fmt.Errorf("load state: %w", err)
	default:
		i.committed = v
	}
	if err := i.restore(); err != nil {
		return err
	}
	if a, ok := i.actor.(Activator[S]); ok {
		out := i.transact(ctx, func(c *Context[S]) ([]byte, error) { return nil, a.OnActivate(ctx, c) })
		if out.err != nil {
			return fmt.Errorf("OnActivate: %w", out.err)
		}
		i.sys.committed(i.id, out)
	}
	return nil
}

// claimEpoch increments the actor's epoch in storage; commits fenced by an
// older epoch fail from then on.
func (i *instanceOf[S]) claimEpoch(ctx context.Context) error {
	key := i.id.EpochKey()
	var err error
	for attempt := 0; attempt < activateAttemptsMax; attempt++ {
		var tx *storage.Txn
		if tx, err = i.sys.store.Begin(ctx); err != nil {
			return err
		}
		var epoch uint64
		v, gerr := tx.Get(ctx, key)
		switch {
		case errors.Is(gerr, storage.ErrNotFound):
		case gerr != nil:
			tx.Rollback()
			return fmt.Errorf("read epoch: %w", gerr)
		default:
			if epoch, err = storage.DecodeEpoch(v); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err = tx.Set(key, storage.EncodeEpoch(epoch+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err = tx.Commit(ctx); err == nil {
			i.epoch = epoch + 1
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("claim epoch: %w", err)
		}
	}
	return fmt.Errorf("claim epoch: %d attempts: %w", activateAttemptsMax, err)
}

func (i *instanceOf[S]) run(ctx context.Context, op string, payload []byte) outcome {
	return i.transact(ctx, func(c *Context[S]) ([]byte, error) {
		return i.actor.Invoke(ctx, c, op, payload)
	})
}

func (i *instanceOf[S]) deactivate(ctx context.Context) error {
	d, ok := i.actor.(Deactivator[S])
	if !ok {
		return nil
	}
	out := i.transact(ctx, func(c *Context[S]) ([]byte, error) { return nil, d.OnDeactivate(ctx, c) })
	i.sys.committed(i.id, out)
	return out.err
}

// transact runs fn against the state and a fresh transaction and commits
// both atomically, fenced by the epoch. On any failure the in-memory state
// returns to its last committed value.
func (i *instanceOf[S]) transact(ctx context.Context, fn func(c *Context[S]) ([]byte, error)) outcome {
	tx, err := i.sys.store.Begin(ctx)
	if err != nil {
		return outcome{err: err}
	}
	c := &Context[S]{ID: i.id, State: &i.state, Epoch: i.epoch, runtime: i.sys.rt, ctx: ctx, tx: tx, kvPrefix: i.id.KVPrefix()}
	reply, err := i.callSafely(fn, c)
	switch {
	case err == nil && ctx.Err() != nil:
		err = timeoutErr(ctx)
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, ErrTimeout):
		err = fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	if err == nil {
		err = i.stageState(c)
	}
	if err != nil {
		tx.Rollback()
		return i.fail(outcome{err: err})
	}
	if !tx.HasWrites() {
		tx.Rollback() // read-only: nothing to make durable
		return outcome{reply: reply, deactivate: c.deactivate, after: c.after}
	}
	tx.Fence(i.id.EpochKey(), i.epoch)
	if err := tx.Commit(ctx); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", timeoutErr(ctx), err)
		}
		// Nothing was written on a conflict; anything else leaves storage
		// either fenced by a newer activation or in an unknown state.
		return i.fail(outcome{err: err, stale: !errors.Is(err, storage.ErrConflict)})
	}
	switch {
	case c.cleared && bytes.Equal(i.pending, i.zero):
		i.committed = nil
	case i.staged:
		i.committed = i.pending
	}
	return outcome{reply: reply, deactivate: c.deactivate, after: c.after}
}

// stageState buffers the state write if the invocation changed the state.
func (i *instanceOf[S]) stageState(c *Context[S]) error {
	b, err := json.Marshal(&i.state)
	if err != nil {
		return fmt.Errorf("serialize state: %w", err)
	}
	i.pending, i.staged = b, false
	was := i.committed
	if was == nil {
		was = i.zero
	}
	switch {
	case c.cleared && bytes.Equal(b, i.zero):
		return c.tx.Delete(i.id.StateKey())
	case c.cleared || !bytes.Equal(b, was):
		i.staged = true
		if i.sys.cfg.CheckState {
			if err := i.guard(func() error { i.checkRoundTrip(b); return nil }); err != nil {
				return err
			}
		}
		return c.tx.Set(i.id.StateKey(), b)
	}
	return nil
}

// checkRoundTrip asserts that the encoded state b decodes to a state
// that encodes to b again: what is committed is what the next activation
// will see.
func (i *instanceOf[S]) checkRoundTrip(b []byte) {
	var back S
	err := json.Unmarshal(b, &back)
	invariant.Check(err == nil, "state of %s does not decode: %v", i.id, err)
	again, err := json.Marshal(&back)
	invariant.Check(err == nil && bytes.Equal(again, b), "state of %s changes in a round trip through its encoding:\n%s\n%s", i.id, b, again)
}

func (i *instanceOf[S]) fail(out outcome) outcome {
	if err := i.restore(); err != nil {
		out.stale = true
		out.err = errors.Join(out.err, err)
	}
	return out
}

// restore resets the in-memory state to the last committed value.
func (i *instanceOf[S]) restore() error {
	var s S
	if i.committed != nil {
		if err := json.Unmarshal(i.committed, &s); err != nil {
			return fmt.Errorf("%w: state of %s: %v", storage.ErrCorrupt, i.id, err)
		}
	}
	i.state = s
	return nil
}

// callSafely runs fn, turning a panic into ErrPanic and telling
// Config.OnPanic.
func (i *instanceOf[S]) callSafely(fn func(c *Context[S]) ([]byte, error), c *Context[S]) (reply []byte, err error) {
	err = i.guard(func() error {
		// Every transaction is fenced by the activation's epoch.
		invariant.Check(i.epoch > 0, "actor %s runs an invocation with epoch 0: it was never activated", i.id)
		var err error
		reply, err = fn(c)
		return err
	})
	return reply, err
}

// guard runs fn, turning a panic into ErrPanic and telling
// Config.OnPanic.
func (i *instanceOf[S]) guard(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			i.sys.cfg.OnPanic(i.id, p, debug.Stack())
			err = fmt.Errorf("%w: %s: %v", ErrPanic, i.id, p)
		}
	}()
	return fn()
}

func timeoutErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}
