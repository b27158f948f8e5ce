package actor

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Context is an invocation's view of its actor: the mutable state and a
// transaction over the actor's KV space and the secondary indexes. Writes
// are buffered and visible to the invocation's own reads; they commit with
// the state in one transaction when the invocation succeeds.
type Context[S any] struct {
	// ID is the actor's identity.
	ID ID
	// State is the actor's state; changes commit when the invocation
	// succeeds and are rolled back otherwise.
	State *S
	// Epoch is the activation's fencing token.
	Epoch uint64

	runtime    rt.Runtime
	ctx        context.Context // the invocation's, for Values
	tx         *storage.Txn
	kvPrefix   tuple.Key
	cleared    bool
	deactivate bool
	after      []func()
}

// Runtime returns the seam, for time, randomness and IDs.
func (c *Context[S]) Runtime() rt.Runtime { return c.runtime }

// Values returns a context with the values of the invocation's context
// (a trace span, say) that is never cancelled and has no deadline: for
// work the invocation hands on past its own end.
func (c *Context[S]) Values() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return context.WithoutCancel(c.ctx)
}

// Now returns the runtime's current time.
func (c *Context[S]) Now() time.Time { return c.runtime.Now() }

// Get reads key from the actor's KV space, or storage.ErrNotFound.
func (c *Context[S]) Get(ctx context.Context, key []byte) ([]byte, error) {
	return c.tx.Get(ctx, c.kvKey(key))
}

// Set buffers key=value in the actor's KV space.
func (c *Context[S]) Set(key, value []byte) error { return c.tx.Set(c.kvKey(key), value) }

// SetWithText buffers key=value in the actor's KV space and indexes text
// as the key's full-text document (see storage.Txn.SetWithText), in the
// scope of the actor's KV space (its KV prefix; see
// storage.Txn.SetWithTextScoped), so SearchText finds it through the
// index of that scope. A later Set, Delete, DeleteRange or Clear of the
// key drops the document. A store without a full-text engine keeps the
// value and ignores the text.
func (c *Context[S]) SetWithText(key, value []byte, text string) error {
	return c.tx.SetWithTextScoped(c.kvKey(key), value, len(c.kvPrefix), text)
}

// SearchText runs a full-text query over the documents in the actor's KV
// space and returns the matching keys, best first, with the store's
// ranking name (see storage.Txn.SearchText). The search is scoped to the
// space (opts.Scope is set to the actor's KV prefix, whatever the caller
// gave), so it finds the documents written with SetWithText, and costs
// what the actor's own documents cost rather than the whole store's; a
// document indexed in the space without that scope (e.g. before scopes
// existed) is not found. opts.Start and opts.End are relative to the
// space, nil meaning its start or end, and so are the returned keys. The
// search sees committed data only: not this invocation's own writes, and
// not as a read the commit validates. A store without a full-text engine
// returns errors.ErrUnsupported.
func (c *Context[S]) SearchText(ctx context.Context, opts storage.TextSearchOptions) ([]storage.TextHit, string, error) {
	opts.Scope = c.kvPrefix
	opts.Start, opts.End = c.bounds(opts.Start, opts.End)
	hits, ranking, err := c.tx.SearchText(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	for i := range hits {
		hits[i].Key = hits[i].Key[len(c.kvPrefix):]
	}
	return hits, ranking, nil
}

// Delete buffers the removal of key from the actor's KV space.
func (c *Context[S]) Delete(key []byte) error { return c.tx.Delete(c.kvKey(key)) }

// DeleteRange buffers the removal of keys in [start, end) of the actor's
// KV space; nil bounds mean the start or end of the space.
func (c *Context[S]) DeleteRange(start, end []byte) error {
	s, e := c.bounds(start, end)
	return c.tx.DeleteRange(s, e)
}

// Scan reads a range of the actor's KV space. Bounds and returned keys are
// relative to the space; nil bounds mean its start or end.
func (c *Context[S]) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.KV, error) {
	opts.Start, opts.End = c.bounds(opts.Start, opts.End)
	kvs, err := c.tx.Scan(ctx, opts)
	if err != nil {
		return nil, err
	}
	for i := range kvs {
		kvs[i].Key = kvs[i].Key[len(c.kvPrefix):]
	}
	return kvs, nil
}

// SetIndex buffers an entry in a secondary index; key must come from
// IndexKey. It commits in the same transaction as the state it indexes.
func (c *Context[S]) SetIndex(key, value []byte) error {
	if err := checkIndexKey(key); err != nil {
		return err
	}
	return c.tx.Set(key, value)
}

// DeleteIndex buffers the removal of a secondary-index entry.
func (c *Context[S]) DeleteIndex(key []byte) error {
	if err := checkIndexKey(key); err != nil {
		return err
	}
	return c.tx.Delete(key)
}

// GetShared reads a shared entity's key (from SharedKey), or
// storage.ErrNotFound. The read belongs to the invocation's transaction:
// if another transaction changes the key before this invocation commits,
// the commit fails with storage.ErrConflict and nothing the invocation
// wrote lands (the in-memory state rolls back too). A read-only
// invocation does not commit, so its reads are not validated: they see
// the value as it was when read. The invocation's own SetShared writes
// are visible.
func (c *Context[S]) GetShared(ctx context.Context, key []byte) ([]byte, error) {
	if err := checkSharedKey(key); err != nil {
		return nil, err
	}
	return c.tx.Get(ctx, key)
}

// SetShared buffers key=value for a shared entity's key (from
// SharedKey); it commits with the state, in the same transaction.
// Read the key with GetShared first to make the write conditional on it:
// a read-modify-write then never overwrites a concurrent change.
func (c *Context[S]) SetShared(key, value []byte) error {
	if err := checkSharedKey(key); err != nil {
		return err
	}
	return c.tx.Set(key, value)
}

// Clear removes the actor's state and its whole KV space. After the
// invocation commits, the state is the zero value, as for an actor never
// written. Index entries are the caller's to delete.
func (c *Context[S]) Clear() error {
	if err := c.tx.DeleteRange(c.kvPrefix, c.kvPrefix.End()); err != nil {
		return err
	}
	var zero S
	*c.State = zero
	c.cleared = true
	return nil
}

// DeactivateAfter asks the runtime to deactivate the actor once this
// invocation has committed and replied.
func (c *Context[S]) DeactivateAfter() { c.deactivate = true }

// AfterCommit runs fn once this invocation's changes are durable (never if
// they roll back), before the invocation's reply is delivered, on the
// actor's task: fn must not block. Use it to tell the world about
// committed effects.
func (c *Context[S]) AfterCommit(fn func()) { c.after = append(c.after, fn) }

func (c *Context[S]) kvKey(key []byte) []byte {
	return append(bytes.Clone(c.kvPrefix), key...)
}

func (c *Context[S]) bounds(start, end []byte) ([]byte, []byte) {
	s := c.kvKey(start)
	if end == nil {
		return s, c.kvPrefix.End()
	}
	return s, c.kvKey(end)
}

func checkIndexKey(key []byte) error {
	if !bytes.HasPrefix(key, IndexPrefix()) {
		return fmt.Errorf("%w: index key %q is outside the index space", storage.ErrInvalid, key)
	}
	return nil
}

func checkSharedKey(key []byte) error {
	p := SharedPrefix()
	if !bytes.HasPrefix(key, p) || len(key) == len(p) {
		return fmt.Errorf("%w: key %q is outside the shared space", storage.ErrInvalid, key)
	}
	return nil
}
