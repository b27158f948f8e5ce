package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// The agent's own ordering of its runs by creation, for listing one
// agent's runs a page at a time from committed storage:
//
//	agent KV ("rc", createdNanos, runID) -> empty
//
// The transaction that records a run writes its entry; deleting the agent
// clears its KV space, entries included. An agent stored by an earlier
// Kelpie has runs without entries (Agent.RunsOrdered false): OpOrderRuns
// writes them from its run records, a batch per invocation.

// RunsOrderBatchMax bounds the run records one OpOrderRuns reads.
const RunsOrderBatchMax = 2000

// OrderRunsResult is OpOrderRuns's reply.
type OrderRunsResult struct {
	// Done reports that every run has its entry (Agent.RunsOrdered).
	Done bool `json:"done"`
}

// AgentRunKey orders a run among its agent's runs: a key in the agent's
// KV space, (createdNanos, runID) -> empty.
func AgentRunKey(r *Run) []byte { return tuple.Pack("rc", uint64(r.CreatedAt.UnixNano()), r.ID) }

// AgentRunsPrefix is the prefix of every AgentRunKey.
func AgentRunsPrefix() tuple.Key { return tuple.Pack("rc") }

// runRecordsPrefix is the prefix of every RunKey.
func runRecordsPrefix() tuple.Key { return tuple.Pack("r") }

// orderRuns writes the entries of up to RunsOrderBatchMax runs after
// Agent.RunsOrderCursor, and marks the agent RunsOrdered after the last.
func orderRuns(ctx context.Context, c *actor.Context[State]) (*OrderRunsResult, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if ag.RunsOrdered {
		return &OrderRunsResult{Done: true}, nil
	}
	prefix := runRecordsPrefix()
	start := []byte(prefix)
	if ag.RunsOrderCursor != "" {
		start = append(bytes.Clone(RunKey(ag.RunsOrderCursor)), 0)
	}
	kvs, err := c.Scan(ctx, storage.ScanOptions{Start: start, End: prefix.End(), Limit: RunsOrderBatchMax})
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		var run Run
		if err := json.Unmarshal(kv.Value, &run); err != nil {
			return nil, fmt.Errorf("%w: run record %q: %v", storage.ErrCorrupt, kv.Key, err)
		}
		if err := c.Set(AgentRunKey(&run), nil); err != nil {
			return nil, err
		}
		ag.RunsOrderCursor = run.ID
	}
	if len(kvs) < RunsOrderBatchMax {
		ag.RunsOrdered, ag.RunsOrderCursor = true, ""
	}
	return &OrderRunsResult{Done: ag.RunsOrdered}, nil
}
