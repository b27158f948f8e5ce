package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Committed reads: records of an agent's KV space read straight from
// storage, without invoking (or activating) the agent. Each read returns
// the value its key had in the last transaction that wrote it, which is
// what the agent's own invocation would answer too: an activation's state
// equals its last commit between invocations. Reads of several keys are
// not one snapshot unless their transaction is committed to validate them.

// agentKey returns the absolute key of key in the agent's KV space.
func agentKey(agentID string, key []byte) ([]byte, error) {
	aid := agent.ActorID(agentID)
	if err := aid.Validate(); err != nil {
		return nil, fmt.Errorf("%w: agent %q", agent.ErrNotFound, agentID)
	}
	return append(aid.KVPrefix(), key...), nil
}

// storedJSON reads the record at key in the agent's KV space into v.
func storedJSON(ctx context.Context, tx *storage.Txn, agentID string, key []byte, what string, v any) error {
	k, err := agentKey(agentID, key)
	if err != nil {
		return err
	}
	b, err := tx.Get(ctx, k)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %s", agent.ErrNotFound, what)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", storage.ErrCorrupt, what, err)
	}
	return nil
}

// storedRun reads a run's committed record. The record of a run in
// progress is rewritten by every invocation that advances it, in the same
// transaction as the agent's state, so it never lags the agent's view.
func storedRun(ctx context.Context, tx *storage.Txn, agentID, runID string) (*agent.Run, error) {
	var run agent.Run
	if err := storedJSON(ctx, tx, agentID, agent.RunKey(runID), "run "+runID, &run); err != nil {
		return nil, err
	}
	return &run, nil
}

// storedStep reads a step's committed record.
func storedStep(ctx context.Context, tx *storage.Txn, agentID, stepID string) (*agent.Step, error) {
	var st agent.Step
	if err := storedJSON(ctx, tx, agentID, agent.StepKey(stepID), "step "+stepID, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// owner reads an index entry that maps an object (what) to its agent's ID,
// from committed storage.
func (s *Service) owner(ctx context.Context, key []byte, what string) (string, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	v, err := tx.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("%w: %s", agent.ErrNotFound, what)
	}
	return string(v), err
}

// stepAgent returns the ID of the agent a step belongs to.
func stepAgent(ctx context.Context, tx *storage.Txn, stepID string) (string, error) {
	v, err := tx.Get(ctx, agent.StepAgentKey(stepID))
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("%w: step %s", agent.ErrNotFound, stepID)
	}
	return string(v), err
}

// pendingCallsScanMax bounds the log entries read back from the end of a
// run to find the message that made its pending calls (it is followed by
// at most the returns of the same step's other calls).
const pendingCallsScanMax = 256

// PendingApproval returns the logged assistant message whose tool calls
// wait for the client's approval (ag.PendingApproval), read from committed
// storage; nil if none waits, or if the message is no longer in the log.
func (s *Service) PendingApproval(ctx context.Context, ag *agent.Agent) (*agent.Message, error) {
	p := ag.PendingApproval
	if p == nil || len(p.Calls) == 0 {
		return nil, nil
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	run, err := storedRun(ctx, tx, ag.ID, p.RunID)
	if errors.Is(err, agent.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if run.EndSeq <= run.FirstSeq {
		return nil, nil
	}
	start, err := agentKey(ag.ID, agent.MessageKey(run.FirstSeq))
	if err != nil {
		return nil, err
	}
	end, err := agentKey(ag.ID, agent.MessageKey(run.EndSeq))
	if err != nil {
		return nil, err
	}
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: true, Limit: int(min(run.EndSeq-run.FirstSeq, pendingCallsScanMax))})
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		var m agent.Message
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kv.Key, err)
		}
		for _, tc := range m.ToolCalls {
			if tc.ID == p.Calls[0].ID {
				return &m, nil
			}
		}
	}
	return nil, nil
}

// orderKey returns the key at (nanos, id) under prefix.
func orderKey(prefix tuple.Key, nanos uint64, id string) []byte {
	return prefix.AppendUint(nanos).AppendString(id)
}

// cursorBounds narrows [lo, hi) of an ordering index under prefix (keys
// orderKey(prefix, createdNanos, id)) to the entries after the entry with
// ID after and before the one with ID before, in list order (descending:
// newest first); created gives an entry's creation time by ID. reverse is
// the direction to scan; flip says the page has only a before cursor and
// is the one nearest it: scanned away from the cursor, it must be put
// back in list order.
func cursorBounds(prefix tuple.Key, lo, hi []byte, after, before string, descending bool, created func(id string) (time.Time, error)) (newLo, newHi []byte, reverse, flip bool, err error) {
	for _, cur := range []struct {
		id    string
		after bool
	}{{after, true}, {before, false}} {
		if cur.id == "" {
			continue
		}
		at, err := created(cur.id)
		if err != nil {
			return nil, nil, false, false, fmt.Errorf("cursor: %w", err)
		}
		key := orderKey(prefix, uint64(at.UnixNano()), cur.id)
		// "after" follows the list order; the key range is ascending.
		if cur.after != descending {
			lo = maxKey(lo, append(bytes.Clone(key), 0))
		} else {
			hi = minKey(hi, key)
		}
	}
	flip = before != "" && after == ""
	return lo, hi, descending != flip, flip, nil
}
