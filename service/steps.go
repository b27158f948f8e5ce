package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// StepQuery selects a page of steps (Letta's list_steps).
type StepQuery struct {
	// AgentID, if set, lists that agent's steps only.
	AgentID string
	// After and Before are step IDs: the page starts after the first, in
	// list order, and ends before the second (both exclusive). A page
	// with Before alone is the one nearest that step.
	After, Before string
	// Start and End, if not zero, keep steps created strictly after Start
	// and strictly before End.
	Start, End time.Time
	// Model keeps steps of that model, named as Letta's Step.model (the
	// model's name, "gpt-4o-mini") or by the handle the agent names it
	// with ("openai/gpt-4o-mini").
	Model string
	// Feedback keeps steps with that feedback ("positive" or "negative").
	Feedback string
	// HasFeedback, if set, keeps steps with (true) or without (false)
	// feedback.
	HasFeedback *bool
	// Tags keeps steps with at least one of these tags.
	Tags []string
	// Descending lists the newest first.
	Descending bool
	// Limit bounds the page, 1..ListLimitMax.
	Limit int
}

// StepsExaminedMax bounds the steps one ListSteps reads to fill its page.
// Past it the page is returned as filled so far (Partial): only a filter
// that rejects nearly every step can reach it.
const StepsExaminedMax = 100_000

// StepPage is a page of ListSteps.
type StepPage struct {
	Steps []agent.Step
	// Partial reports that StepsExaminedMax steps were read before the
	// page was full, so older (or newer) matches may exist.
	Partial bool
}

// ListSteps returns a page of steps in creation order, read from committed
// storage without activating any agent: across agents from the
// steps-by-creation index, for one agent from its own ordering. Each step
// is as its last commit left it; the page is not a snapshot across steps
// (a step whose feedback changes during the list shows the value read).
func (s *Service) ListSteps(ctx context.Context, q StepQuery) (*StepPage, error) {
	if q.Limit <= 0 || q.Limit > ListLimitMax {
		return nil, fmt.Errorf("%w: limit %d outside 1..%d", agent.ErrInvalid, q.Limit, ListLimitMax)
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := agent.StepsIndexPrefix()
	if q.AgentID != "" {
		k, err := agentKey(q.AgentID, agent.AgentStepsPrefix())
		if err != nil {
			return &StepPage{Steps: []agent.Step{}}, nil // no such agent: no steps
		}
		prefix = k
	}
	lo, hi := []byte(prefix), []byte(prefix.End())
	if !q.Start.IsZero() {
		lo = maxKey(lo, orderBound(prefix, q.Start, 1))
	}
	if !q.End.IsZero() {
		hi = minKey(hi, orderBound(prefix, q.End, 0))
	}
	lo, hi, reverse, flip, err := cursorBounds(prefix, lo, hi, q.After, q.Before, q.Descending, func(id string) (time.Time, error) {
		st, err := s.stepByID(ctx, tx, id)
		if err != nil {
			return time.Time{}, err
		}
		return st.CreatedAt, nil
	})
	if err != nil {
		return nil, err
	}
	page := &StepPage{Steps: []agent.Step{}}
	examined := 0
	for bytes.Compare(lo, hi) < 0 && len(page.Steps) < q.Limit {
		if examined >= StepsExaminedMax {
			page.Partial = true
			break
		}
		n := min(storage.ScanLimitMax, StepsExaminedMax-examined)
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: lo, End: hi, Reverse: reverse, Limit: n})
		if err != nil {
			return nil, err
		}
		examined += len(kvs)
		for _, kv := range kvs {
			if len(page.Steps) == q.Limit {
				break
			}
			elems, err := tuple.Unpack(kv.Key[len(prefix):])
			if err != nil || len(elems) != 2 {
				return nil, fmt.Errorf("%w: step order key %q", storage.ErrCorrupt, kv.Key)
			}
			stepID, _ := elems[1].(string)
			owner := q.AgentID
			if owner == "" {
				owner = string(kv.Value)
			}
			st, err := storedStep(ctx, tx, owner, stepID)
			if errors.Is(err, agent.ErrNotFound) {
				continue // its agent was deleted
			}
			if err != nil {
				return nil, err
			}
			if q.keep(st) {
				page.Steps = append(page.Steps, *st)
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
		slices.Reverse(page.Steps)
	}
	return page, nil
}

// keep reports whether st passes the query's filters (other than the
// time range and cursors, which bound the scan).
func (q *StepQuery) keep(st *agent.Step) bool {
	if q.Model != "" && st.Model != q.Model && ModelName(st.Model) != q.Model {
		return false
	}
	if q.Feedback != "" && st.Feedback != q.Feedback {
		return false
	}
	if q.HasFeedback != nil && (st.Feedback != "") != *q.HasFeedback {
		return false
	}
	if len(q.Tags) > 0 && !slices.ContainsFunc(q.Tags, func(t string) bool { return slices.Contains(st.Tags, t) }) {
		return false
	}
	return true
}

// ModelName is the model's name in a handle: "gpt-4o-mini" for
// "openai/gpt-4o-mini"; a name without a provider is returned as is.
func ModelName(handle string) string {
	if _, name, ok := strings.Cut(handle, "/"); ok {
		return name
	}
	return handle
}

// latestNanos is the latest time whose UnixNano is defined (in 2262).
var latestNanos = time.Unix(0, math.MaxInt64)

// orderBound returns the first key of the (nanos, id) ordering under
// prefix at or after t's nanosecond plus skip. Times before 1970 and after
// latestNanos (which no step has) bound the ordering at its ends.
func orderBound(prefix tuple.Key, t time.Time, skip uint64) []byte {
	var n uint64
	switch {
	case t.Before(time.Unix(0, 0)):
	case t.After(latestNanos):
		return prefix.End()
	default:
		n = uint64(t.UnixNano())
	}
	return prefix.AppendUint(n + skip)
}

func maxKey(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}

func minKey(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// stepByID reads a step from committed storage through its step → agent
// index entry.
func (s *Service) stepByID(ctx context.Context, tx *storage.Txn, stepID string) (*agent.Step, error) {
	owner, err := stepAgent(ctx, tx, stepID)
	if err != nil {
		return nil, err
	}
	return storedStep(ctx, tx, owner, stepID)
}

// SetStepFeedback records a client's feedback on a step, durably, through
// its agent (Letta's semantics: see agent.StepFeedbackRequest), and
// returns the step as that invocation committed it.
func (s *Service) SetStepFeedback(ctx context.Context, req agent.StepFeedbackRequest) (*agent.Step, error) {
	if err := agent.CheckStepFeedback(&req); err != nil {
		return nil, err
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	owner, err := stepAgent(ctx, tx, req.StepID)
	tx.Rollback()
	if err != nil {
		return nil, err
	}
	return call(ctx, s, owner, agent.OpStepFeedback, req)
}
