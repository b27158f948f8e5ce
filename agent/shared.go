package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/storage"
)

// Shared blocks. A standalone block (created through /v1/blocks) is a
// record in the shared key space, the single source of truth for its
// label, value, limit and description. An agent that attaches it keeps
// only a reference (Block with Shared set: its ID and the label it had)
// in its state; every read of the agent's memory — the system prompt a
// step compiles, the memory tools, the agent's blocks as the API returns
// them, the context window — reads the record's current value inside the
// invocation's transaction. A memory tool or a block update through the
// agent writes the record in the same transaction as the rest of the
// invocation; the transaction read the record first, so a concurrent
// change by another agent or through /v1/blocks makes the commit fail
// with storage.ErrConflict and nothing lands (the caller retries against
// the new value). A reference whose record is gone (the block was
// deleted) is treated as detached: reads leave it out, and the agent's
// next change to its blocks (attach, detach, block update) drops it from
// the state.

// SharedBlock is a standalone block's record.
type SharedBlock struct {
	Block
	// CreatedNanos is when the block was created (its place in the
	// blocks-by-creation index).
	CreatedNanos uint64 `json:"created_nanos"`
}

// SharedBlockKey is the key of a standalone block's record.
func SharedBlockKey(id string) []byte { return actor.SharedKey("block", id) }

// SharedBlockIndexKey is a standalone block's entry in the
// blocks-by-creation index.
func SharedBlockIndexKey(b *SharedBlock) []byte {
	return actor.IndexKey(SharedBlocksIndex, b.CreatedNanos, b.ID)
}

// SharedBlocksIndex is the name of the standalone-blocks-by-creation index.
const SharedBlocksIndex = "blocks_by_created"

// Getter reads a key in a transaction: storage.Txn.Get or
// actor.Context.GetShared.
type Getter func(ctx context.Context, key []byte) ([]byte, error)

// LoadSharedBlock reads a standalone block's record; ErrNotFound if there
// is none.
func LoadSharedBlock(ctx context.Context, get Getter, id string) (*SharedBlock, error) {
	b, err := loadShared[SharedBlock](ctx, get, SharedBlockKey(id), "block "+id)
	if err != nil {
		return nil, err
	}
	b.Shared = false // the record itself is not a reference
	return b, nil
}

// loadShared reads the JSON record at a shared key; ErrNotFound (naming
// what) if there is none.
func loadShared[T any](ctx context.Context, get Getter, key []byte, what string) (*T, error) {
	v, err := get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	if err != nil {
		return nil, err
	}
	var rec T
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", storage.ErrCorrupt, what, err)
	}
	return &rec, nil
}

// EncodeSharedBlock serializes a standalone block's record.
func EncodeSharedBlock(b *SharedBlock) ([]byte, error) {
	rec := *b
	rec.Shared = false
	return json.Marshal(&rec)
}

// ResolveBlocks returns a copy of ag whose blocks are current: each shared
// block reference is replaced by its record's current label, value, limit
// and description (Shared stays set), and references whose record is
// gone are left out and their IDs returned in missing. ag is not changed.
func ResolveBlocks(ctx context.Context, get Getter, ag *Agent) (view *Agent, missing []string, err error) {
	cp := *ag
	cp.Blocks = make([]Block, 0, len(ag.Blocks))
	for _, b := range ag.Blocks {
		if !b.Shared {
			cp.Blocks = append(cp.Blocks, b)
			continue
		}
		rec, err := LoadSharedBlock(ctx, get, b.ID)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, b.ID)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		cur := rec.Block
		cur.ID, cur.Shared = b.ID, true
		cp.Blocks = append(cp.Blocks, cur)
	}
	return &cp, missing, nil
}

// view returns a function that passes an operation's result through with
// the agent's shared blocks and custom tools resolved, as replies carry
// it (Resolve).
func view(ctx context.Context, c *actor.Context[State]) func(*Agent, error) (*Agent, error) {
	return func(ag *Agent, err error) (*Agent, error) {
		if err != nil || ag == nil {
			return ag, err
		}
		return Resolve(ctx, c.GetShared, ag)
	}
}

// saveSharedBlock writes a standalone block's record in the invocation's
// transaction.
func saveSharedBlock(c *actor.Context[State], rec *SharedBlock) error {
	v, err := EncodeSharedBlock(rec)
	if err != nil {
		return err
	}
	return c.SetShared(SharedBlockKey(rec.ID), v)
}

// blockByID returns the agent's block (or reference) with the given ID, or nil.
func (a *Agent) blockByID(id string) *Block {
	i := slices.IndexFunc(a.Blocks, func(b Block) bool { return b.ID == id })
	if i < 0 {
		return nil
	}
	return &a.Blocks[i]
}

// fatalError is a tool failure that is not the model's to handle (the
// store failed): it fails the invocation instead of going back to the
// model as a tool error, so nothing of the step commits.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }
