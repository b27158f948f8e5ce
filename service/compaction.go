package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
)

// Compaction outside the actor: the summarizer's model call, between the
// plan (OpPrepare or OpPlanCompaction) and its application (OpCompact).
// See agent/compact.go.

// Limits of compaction.
const (
	// summaryTimeout bounds one summarizer call.
	summaryTimeout = 2 * time.Minute
	// compactionsPerStepMax bounds the compactions before one step; past
	// it the step is sent as it is.
	compactionsPerStepMax = 3
	// overflowRetriesMax bounds the times one step is prepared again
	// after the provider refused it as too long.
	overflowRetriesMax = 3
	// modelsRefreshInterval is how often the model list that gives
	// models' context windows is fetched again.
	modelsRefreshInterval = 10 * time.Minute
	// modelsFetchTimeout bounds one fetch of it.
	modelsFetchTimeout = 30 * time.Second
)

// WithContextWindowDefault sets the context window, in tokens, of models
// whose provider does not say (agent.DefaultContextWindow if unset).
func WithContextWindowDefault(tokens int) Option {
	return func(s *Service) {
		if tokens > 0 {
			s.windows.fallback = tokens
		}
	}
}

// modelLister is what a model client that lists its models offers
// (llm.Router).
type modelLister interface {
	ModelsContext(ctx context.Context) []llm.ModelInfo
}

// windows answers agent.Actor.ContextWindow from the providers' model
// lists without blocking: the list is fetched in the background, and a
// model not (yet) in it gets the fallback.
type windows struct {
	rt       rt.Runtime
	lister   modelLister
	fallback int

	mu       sync.Mutex
	byHandle map[string]int
	fetched  time.Time
	fetching bool
}

// lookup returns model's context window, or the fallback.
func (w *windows) lookup(model string) int {
	w.mu.Lock()
	n := w.byHandle[model]
	if w.lister != nil && !w.fetching && (w.byHandle == nil || w.rt.Now().Sub(w.fetched) > modelsRefreshInterval) {
		w.fetching = true
		w.rt.Go("list models for their context windows", w.fetch)
	}
	w.mu.Unlock()
	if n > 0 {
		return n
	}
	return w.fallback
}

func (w *windows) fetch() {
	ctx, cancel := rt.WithTimeout(w.rt, context.Background(), modelsFetchTimeout)
	defer cancel()
	models := w.lister.ModelsContext(ctx)
	m := make(map[string]int, len(models))
	for _, mi := range models {
		if mi.ContextWindow > 0 && !mi.Embedding {
			m[mi.Handle] = mi.ContextWindow
		}
	}
	w.mu.Lock()
	w.byHandle, w.fetched, w.fetching = m, w.rt.Now(), false
	w.mu.Unlock()
}

// ModelContextWindow returns the context window the service assumes for a
// model handle: what its provider lists, or the configured default.
func (s *Service) ModelContextWindow(model string) int { return s.windows.lookup(model) }

// summarize asks the model for the summary a plan needs.
func (s *Service) summarize(ctx context.Context, p *agent.CompactionPlan) (string, error) {
	mctx, cancel := rt.WithTimeout(s.rt, ctx, summaryTimeout)
	defer cancel()
	mctx, end := s.observeModel(mctx, p.Request.Model)
	resp, err := s.model.Complete(mctx, p.Request)
	end(resp, err)
	if err != nil {
		return "", err
	}
	text := strings.TrimSpace(resp.Message.Content)
	if text == "" {
		return "", errors.New("the summarizer returned no text")
	}
	return text, nil
}

// compactRun carries out a compaction a run's step needs: the summary,
// then OpCompact. A failure leaves the window as it was.
func (s *Service) compactRun(ctx context.Context, agentID string, p *agent.CompactionPlan) error {
	summary, err := s.summarize(ctx, p)
	if err != nil {
		return fmt.Errorf("summarize: %w", err)
	}
	_, err = call(ctx, s, agentID, agent.OpCompact, agent.CompactRequest{Plan: *p, Summary: summary})
	return err
}

// ErrNothingToCompact is returned by Compact when a conversation's
// context holds too little to compact.
var ErrNothingToCompact = fmt.Errorf("%w: nothing to compact: the context window holds too few messages", agent.ErrInvalid)

// Compact summarises a conversation's context now (a client's
// summarize/compact): settings, if set, replace the agent's compaction
// settings for this once. The conversation must have no run in progress.
func (s *Service) Compact(ctx context.Context, agentID, conversationID string, settings map[string]any) (_ *agent.CompactResult, err error) {
	ctx, end := s.observeCompaction(ctx, CompactionRequest)
	defer func() { end(err) }()
	for attempt := 0; ; attempt++ {
		plan, err := call(ctx, s, agentID, agent.OpPlanCompaction, agent.PlanCompactionRequest{ConversationID: conversationID, Settings: settings})
		if err != nil {
			return nil, err
		}
		if plan.Empty {
			return nil, ErrNothingToCompact
		}
		summary, err := s.summarize(ctx, plan)
		if err != nil {
			return nil, fmt.Errorf("summarize the conversation: %w", err)
		}
		out, err := call(ctx, s, agentID, agent.OpCompact, agent.CompactRequest{Plan: *plan, Summary: summary})
		if err != nil {
			return nil, err
		}
		if !out.Stale {
			return out, nil
		}
		if attempt >= 2 {
			return nil, fmt.Errorf("%w: the conversation kept changing while it was being compacted; try again", storage.ErrConflict)
		}
	}
}
