package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Standalone blocks are memory blocks created through /v1/blocks. Each is
// a record in the shared key space (agent.SharedBlock at
// agent.SharedBlockKey), the single source of truth for the block: agents
// attach it by reference, read its current value at every step, and their
// memory tools write the record in the same transaction as the step (see
// agent/shared.go). Every change here is a read-modify-write in one
// transaction, so it and the agents' edits never overwrite each other:
// the later commit fails with storage.ErrConflict and is retried against
// the new value. Deleting a block detaches it from every agent (they
// treat a reference to a missing block as detached); deleting an agent
// leaves the blocks it attached.

// StandaloneBlock is a standalone block's record: the block and when it
// was created.
type StandaloneBlock = agent.SharedBlock

// Bounds of the retries of a block change that raced with another.
const (
	// conflictAttemptsMax bounds the attempts of one change.
	conflictAttemptsMax = 5
	// conflictRetryDelay is the wait before the second attempt; it
	// doubles for each further one.
	conflictRetryDelay = 5 * time.Millisecond
)

// retryConflicts runs fn until it succeeds, fails with an error other
// than storage.ErrConflict, or has failed conflictAttemptsMax times,
// backing off between attempts. fn must have no effect when it fails
// with a conflict (a transaction that did not commit).
func (s *Service) retryConflicts(ctx context.Context, fn func() error) error {
	delay := conflictRetryDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt == conflictAttemptsMax || !errors.Is(err, storage.ErrConflict) {
			return err
		}
		if serr := s.rt.Sleep(ctx, delay); serr != nil {
			return err
		}
		delay *= 2
	}
}

// CreateBlock adds a standalone block.
func (s *Service) CreateBlock(ctx context.Context, b agent.Block) (*StandaloneBlock, error) {
	if b.Label == "" {
		return nil, fmt.Errorf("%w: a block needs a label", agent.ErrInvalid)
	}
	b.Shared = false
	if err := agent.CheckBlock(&b); err != nil {
		return nil, err
	}
	sb := &StandaloneBlock{Block: b, CreatedNanos: uint64(s.rt.Now().UnixNano())}
	sb.ID = rt.NewID(s.ids, "block")
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := tx.Set(agent.SharedBlockIndexKey(sb), nil); err != nil {
		return nil, err
	}
	if err := putBlock(tx, sb); err != nil {
		return nil, err
	}
	return sb, tx.Commit(ctx)
}

func putBlock(tx *storage.Txn, b *StandaloneBlock) error {
	v, err := agent.EncodeSharedBlock(b)
	if err != nil {
		return err
	}
	return tx.Set(agent.SharedBlockKey(b.ID), v)
}

// GetBlock returns a standalone block's current record.
func (s *Service) GetBlock(ctx context.Context, id string) (*StandaloneBlock, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return agent.LoadSharedBlock(ctx, tx.Get, id)
}

// UpdateBlock changes a standalone block; every agent attached to it sees
// the change from its next step on. The read and the write are one
// transaction, retried if an agent's edit (or another update) lands in
// between, so neither overwrites the other.
func (s *Service) UpdateBlock(ctx context.Context, id string, up agent.BlockUpdate, label *string) (*StandaloneBlock, error) {
	var out *StandaloneBlock
	err := s.retryConflicts(ctx, func() error {
		var err error
		out, err = s.updateBlockOnce(ctx, id, up, label)
		return err
	})
	return out, err
}

func (s *Service) updateBlockOnce(ctx context.Context, id string, up agent.BlockUpdate, label *string) (*StandaloneBlock, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	b, err := agent.LoadSharedBlock(ctx, tx.Get, id)
	if err != nil {
		return nil, err
	}
	if label != nil {
		b.Label = *label
	}
	if up.Value != nil {
		b.Value = *up.Value
	}
	if up.Limit != nil {
		b.Limit = *up.Limit
	}
	if up.Description != nil {
		b.Description = *up.Description
	}
	if err := agent.CheckBlock(&b.Block); err != nil {
		return nil, err
	}
	if err := putBlock(tx, b); err != nil {
		return nil, err
	}
	return b, tx.Commit(ctx)
}

// DeleteBlock removes a standalone block, which detaches it from every
// agent attached to it.
func (s *Service) DeleteBlock(ctx context.Context, id string) error {
	return s.retryConflicts(ctx, func() error {
		tx, err := s.store.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		b, err := agent.LoadSharedBlock(ctx, tx.Get, id)
		if err != nil {
			return err
		}
		if err := tx.Delete(agent.SharedBlockKey(id)); err != nil {
			return err
		}
		if err := tx.Delete(agent.SharedBlockIndexKey(b)); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// ListBlocks returns standalone blocks, newest first, filtered by label
// (among the newest storage.ScanLimitMax).
func (s *Service) ListBlocks(ctx context.Context, label string, limit int) ([]*StandaloneBlock, error) {
	if limit <= 0 || limit > ListLimitMax {
		return nil, fmt.Errorf("%w: limit %d outside 1..%d", agent.ErrInvalid, limit, ListLimitMax)
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := actor.IndexKey(agent.SharedBlocksIndex)
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: prefix, End: prefix.End(), Reverse: true, Limit: storage.ScanLimitMax})
	if err != nil {
		return nil, err
	}
	out := []*StandaloneBlock{}
	for _, kv := range kvs {
		if len(out) == limit {
			break
		}
		elems, err := tuple.Unpack(kv.Key[len(prefix):])
		if err != nil || len(elems) != 2 {
			return nil, fmt.Errorf("%w: block index key %q", storage.ErrCorrupt, kv.Key)
		}
		id, _ := elems[1].(string)
		b, err := agent.LoadSharedBlock(ctx, tx.Get, id)
		if err != nil {
			return nil, err
		}
		if label == "" || b.Label == label {
			out = append(out, b)
		}
	}
	return out, nil
}

// AttachBlock attaches a standalone block to the agent by reference: the
// agent sees the block's current value at every step, and its memory
// tools edit the block itself.
func (s *Service) AttachBlock(ctx context.Context, agentID, blockID string) (*agent.Agent, error) {
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{AttachBlocks: []string{blockID}})
}

// DetachBlock removes a block from the agent; a standalone block itself
// stays as it is.
func (s *Service) DetachBlock(ctx context.Context, agentID, blockID string) (*agent.Agent, error) {
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{DetachBlocks: []string{blockID}})
}
