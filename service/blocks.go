package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Standalone blocks are memory blocks created through /v1/blocks, kept in
// a global registry (not in any agent). Attaching one to an agent copies
// it into the agent's state, so the agent loop never reads across actors;
// later edits to the standalone block do not reach agents that attached it
// before (attach again to refresh), and edits an agent makes stay its own.

// StandaloneBlock is a registry block and when it was created.
type StandaloneBlock struct {
	agent.Block
	CreatedNanos uint64 `json:"created_nanos"`
}

func blockKey(id string) []byte { return tuple.Pack("blk", id) }

func blockIndexKey(b *StandaloneBlock) []byte {
	return actor.IndexKey("blocks_by_created", b.CreatedNanos, b.ID)
}

// CreateBlock adds a standalone block.
func (s *Service) CreateBlock(ctx context.Context, b agent.Block) (*StandaloneBlock, error) {
	if b.Label == "" {
		return nil, fmt.Errorf("%w: a block needs a label", agent.ErrInvalid)
	}
	if err := agent.CheckBlock(&b); err != nil {
		return nil, err
	}
	sb := &StandaloneBlock{Block: b, CreatedNanos: uint64(s.rt.Now().UnixNano())}
	sb.ID = rt.NewID(s.ids, "block")
	return sb, s.putBlock(ctx, sb, true)
}

func (s *Service) putBlock(ctx context.Context, b *StandaloneBlock, create bool) error {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if create {
		if err := tx.Set(blockIndexKey(b), nil); err != nil {
			return err
		}
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := tx.Set(blockKey(b.ID), v); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// GetBlock returns a standalone block.
func (s *Service) GetBlock(ctx context.Context, id string) (*StandaloneBlock, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return loadBlock(ctx, tx, id)
}

func loadBlock(ctx context.Context, tx *storage.Txn, id string) (*StandaloneBlock, error) {
	v, err := tx.Get(ctx, blockKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: block %s", agent.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var b StandaloneBlock
	if err := json.Unmarshal(v, &b); err != nil {
		return nil, fmt.Errorf("%w: block %s: %v", storage.ErrCorrupt, id, err)
	}
	return &b, nil
}

// UpdateBlock changes a standalone block.
func (s *Service) UpdateBlock(ctx context.Context, id string, up agent.BlockUpdate, label *string) (*StandaloneBlock, error) {
	b, err := s.GetBlock(ctx, id)
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
	return b, s.putBlock(ctx, b, false)
}

// DeleteBlock removes a standalone block (agents keep their copies).
func (s *Service) DeleteBlock(ctx context.Context, id string) error {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	b, err := loadBlock(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := tx.Delete(blockKey(id)); err != nil {
		return err
	}
	if err := tx.Delete(blockIndexKey(b)); err != nil {
		return err
	}
	return tx.Commit(ctx)
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
	prefix := actor.IndexKey("blocks_by_created")
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
		b, err := loadBlock(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if label == "" || b.Label == label {
			out = append(out, b)
		}
	}
	return out, nil
}

// AttachBlock copies a standalone block into the agent.
func (s *Service) AttachBlock(ctx context.Context, agentID, blockID string) (*agent.Agent, error) {
	b, err := s.GetBlock(ctx, blockID)
	if err != nil {
		return nil, err
	}
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{AttachBlocks: []agent.Block{b.Block}})
}

// DetachBlock removes a block from the agent.
func (s *Service) DetachBlock(ctx context.Context, agentID, blockID string) (*agent.Agent, error) {
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{DetachBlocks: []string{blockID}})
}
