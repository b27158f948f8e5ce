package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// RunQuery selects a page of runs (Letta's list_runs).
type RunQuery struct {
	// AgentIDs, if set, lists these agents' runs only: one agent's from
	// its own ordering (agent.AgentRunKey), several from the index of all
	// runs.
	AgentIDs []string
	// After and Before are run IDs: the page starts after the first, in
	// list order, and ends before the second (both exclusive). A page
	// with Before alone is the one nearest that run.
	After, Before string
	// Statuses keeps runs with one of these statuses.
	Statuses []string
	// Active keeps runs in progress only.
	Active bool
	// Background, if set, keeps runs started in the background (true) or
	// not (false).
	Background *bool
	// StopReason keeps runs that stopped for this reason.
	StopReason string
	// ConversationID, if set, keeps the runs of that conversation (""
	// for the agent's default one).
	ConversationID *string
	// Descending lists the newest first.
	Descending bool
	// Limit bounds the page, 1..ListLimitMax.
	Limit int
}

// RunsExaminedMax bounds the index entries one ListRuns reads to fill its
// page. Past it the page is returned as filled so far (Partial): only a
// filter that rejects nearly every run can reach it.
const RunsExaminedMax = 100_000

// RunPage is a page of ListRuns.
type RunPage struct {
	Runs []*agent.Run
	// Partial reports that RunsExaminedMax index entries were read before
	// the page was full, so further matches may exist.
	Partial bool
}

// ListRuns returns a page of runs in creation order, read from committed
// storage without activating agents: across agents from the
// runs-by-creation index, for one agent from its own ordering. The page
// reads index entries from the cursor on, never the whole index. Each run
// is as its last commit left it (which is what its agent would answer),
// but the page is not a snapshot across runs: a run that advances while
// the page is read shows the state read.
//
// An agent stored by an earlier Kelpie, whose runs lack their ordering
// entries, is invoked once (agent.OpOrderRuns, a batch at a time) to
// write them before its first list.
func (s *Service) ListRuns(ctx context.Context, q RunQuery) (*RunPage, error) {
	if q.Limit <= 0 || q.Limit > ListLimitMax {
		return nil, fmt.Errorf("%w: limit %d outside 1..%d", agent.ErrInvalid, q.Limit, ListLimitMax)
	}
	one := ""
	if len(q.AgentIDs) == 1 {
		one = q.AgentIDs[0]
		ordered, err := s.runsOrdered(ctx, one)
		if errors.Is(err, agent.ErrNotFound) {
			return &RunPage{Runs: []*agent.Run{}}, nil // no such agent: no runs
		}
		if err != nil {
			return nil, err
		}
		if !ordered {
			if err := s.orderRuns(ctx, one); err != nil {
				return nil, err
			}
		}
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := actor.IndexKey(agent.RunsIndex)
	if one != "" {
		k, err := agentKey(one, agent.AgentRunsPrefix())
		if err != nil {
			return &RunPage{Runs: []*agent.Run{}}, nil
		}
		prefix = k
	}
	lo, hi := []byte(prefix), []byte(prefix.End())
	lo, hi, reverse, flip, err := cursorBounds(prefix, lo, hi, q.After, q.Before, q.Descending, func(id string) (time.Time, error) {
		run, err := s.runByID(ctx, tx, id)
		if err != nil {
			return time.Time{}, err
		}
		return run.CreatedAt, nil
	})
	if err != nil {
		return nil, err
	}
	page := &RunPage{Runs: []*agent.Run{}}
	examined := 0
	for bytes.Compare(lo, hi) < 0 && len(page.Runs) < q.Limit {
		if examined >= RunsExaminedMax {
			page.Partial = true
			break
		}
		// Unfiltered, a page reads as many entries as it returns (a few
		// more for runs of deleted agents); filtered, whole batches.
		n := min(storage.ScanLimitMax, RunsExaminedMax-examined)
		if !q.filtered() {
			n = min(n, q.Limit-len(page.Runs)+runsSlack)
		}
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: lo, End: hi, Reverse: reverse, Limit: n})
		if err != nil {
			return nil, err
		}
		examined += len(kvs)
		for _, kv := range kvs {
			if len(page.Runs) == q.Limit {
				break
			}
			elems, err := tuple.Unpack(kv.Key[len(prefix):])
			if err != nil || len(elems) != 2 {
				return nil, fmt.Errorf("%w: run order key %q", storage.ErrCorrupt, kv.Key)
			}
			runID, _ := elems[1].(string)
			owner := one
			if owner == "" {
				owner = string(kv.Value)
				if len(q.AgentIDs) > 0 && !slices.Contains(q.AgentIDs, owner) {
					continue
				}
			}
			run, err := storedRun(ctx, tx, owner, runID)
			if errors.Is(err, agent.ErrNotFound) {
				continue // its agent was deleted
			}
			if err != nil {
				return nil, err
			}
			if q.keep(run) {
				page.Runs = append(page.Runs, run)
			}
		}
		if len(kvs) < n {
			break
		}
		last := kvs[len(kvs)-1].Key
		if reverse {
			hi = bytes.Clone(last)
		} else {
			lo = append(bytes.Clone(last), 0)
		}
	}
	if flip {
		slices.Reverse(page.Runs)
	}
	return page, nil
}

// runsSlack is how many index entries beyond the page an unfiltered
// ListRuns reads in one scan, for entries whose agent was deleted.
const runsSlack = 8

// filtered reports whether the query keeps only some of the runs it
// reads (beyond the one agent whose ordering it reads).
func (q *RunQuery) filtered() bool {
	return len(q.AgentIDs) > 1 || len(q.Statuses) > 0 || q.Active || q.Background != nil || q.StopReason != "" || q.ConversationID != nil
}

// keep reports whether run passes the query's filters (other than the
// agents and cursors, which bound the scan).
func (q *RunQuery) keep(run *agent.Run) bool {
	switch {
	case len(q.Statuses) > 0 && !slices.Contains(q.Statuses, run.Status):
	case q.Active && run.Done():
	case q.Background != nil && run.Background != *q.Background:
	case q.StopReason != "" && run.StopReason != q.StopReason:
	case q.ConversationID != nil && run.ConversationID != *q.ConversationID:
	default:
		return true
	}
	return false
}

// runByID reads a run from committed storage through its run → agent
// index entry.
func (s *Service) runByID(ctx context.Context, tx *storage.Txn, runID string) (*agent.Run, error) {
	owner, err := tx.Get(ctx, agent.RunAgentKey(runID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: run %s", agent.ErrNotFound, runID)
	}
	if err != nil {
		return nil, err
	}
	return storedRun(ctx, tx, string(owner), runID)
}

// runsOrdered reports whether the agent's stored state says every run of
// it has its ordering entry.
func (s *Service) runsOrdered(ctx context.Context, agentID string) (bool, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	ag, err := s.loadStored(ctx, tx, agentID)
	if err != nil {
		return false, err
	}
	return ag.RunsOrdered, nil
}

// orderRuns has the agent write the ordering entries of its runs stored
// before it had them, a batch per invocation. Each batch advances, so the
// loop ends.
func (s *Service) orderRuns(ctx context.Context, agentID string) error {
	for {
		res, err := call(ctx, s, agentID, agent.OpOrderRuns, agent.None{})
		if err != nil {
			return err
		}
		if res.Done {
			return nil
		}
	}
}
