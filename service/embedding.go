package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
)

// Embeddings for archival memory. An agent that names an embedding model
// (agent.Agent.Embedding) gets a vector for every passage it stores and
// for every search query, computed here, outside its actor, and sent in
// the request; the actor checks that the vectors come from its model (see
// agent.EmbeddingModelError) and ranks by cosine similarity. An agent
// without one searches by full-text ranking. Which model an agent uses is
// decided when it is created: the one it names, else the service's
// default (WithDefaultEmbedding), else none.

// Embedding limits.
const (
	// embedTimeout bounds one embedding call (its retries included).
	embedTimeout = time.Minute
	// embeddingCacheMax bounds the agents whose embedding model the
	// service remembers; past it the memory is cleared and refilled.
	embeddingCacheMax = 10000
)

// Option configures a Service.
type Option func(*Service)

// WithEmbedder makes the service compute embeddings with e. Without this
// option the service uses its model client if that is an llm.Embedder (a
// Router is), and otherwise has no embedder: agents that name an
// embedding model then fail to insert and search passages.
func WithEmbedder(e llm.Embedder) Option {
	return func(s *Service) { s.embedder = e }
}

// WithDefaultEmbedding gives an agent created without an embedding model
// this one (a handle such as "openai/text-embedding-3-small"); "" (the
// default) leaves such agents without one, searching by full-text ranking.
func WithDefaultEmbedding(handle string) Option {
	return func(s *Service) { s.defaultEmbedding = handle }
}

// DefaultEmbedding returns the embedding model given to agents created
// without one; "" for none.
func (s *Service) DefaultEmbedding() string { return s.defaultEmbedding }

// CheckEmbedding returns nil if the service can embed with handle: its
// embedder routes the handle to a provider with an embeddings endpoint.
// The errors are the embedder's (an *llm.APIError of status 400, or
// llm.ErrNotConfigured).
func (s *Service) CheckEmbedding(ctx context.Context, handle string) error {
	return llm.CheckEmbeddingModel(ctx, s.embedder, handle)
}

// checkAgentEmbedding validates the embedding model an agent is created or
// updated with. A handle no configured provider can serve fails, with the
// embedder's 400; on a server with no model provider at all, any handle
// is accepted (as a chat model is): the agent exists, and its passage
// inserts and searches fail naming the variables to set.
func (s *Service) checkAgentEmbedding(ctx context.Context, handle string) error {
	if handle == "" {
		return nil
	}
	err := s.CheckEmbedding(ctx, handle)
	if err == nil || errors.Is(err, llm.ErrNotConfigured) {
		return nil
	}
	return fmt.Errorf("embedding %q: %w", handle, err)
}

// checkAgentModel validates the chat model an agent is created or updated
// with, as checkAgentEmbedding does the embedding model: a handle that
// names no configured provider (and that none lists) fails with the
// router's 400, so that it fails at create rather than at the first send;
// "" (the default model) and any handle on a server with no provider are
// accepted.
func (s *Service) checkAgentModel(ctx context.Context, handle string) error {
	if handle == "" {
		return nil
	}
	if err := llm.CheckModel(ctx, s.model, handle); err != nil && !errors.Is(err, llm.ErrNotConfigured) {
		return err
	}
	return nil
}

// knownEmbedding returns the embedding model the service last saw the
// agent use: a guess, which the actor confirms or corrects.
func (s *Service) knownEmbedding(agentID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.embeddings[agentID]
}

// noteEmbedding remembers the agent's embedding model.
func (s *Service) noteEmbedding(agentID, handle string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if handle == "" {
		delete(s.embeddings, agentID)
		return
	}
	if _, ok := s.embeddings[agentID]; !ok && len(s.embeddings) >= embeddingCacheMax {
		clear(s.embeddings)
	}
	s.embeddings[agentID] = handle
}

// embed computes the vectors of texts with model, within embedTimeout.
func (s *Service) embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	ctx, cancel := rt.WithTimeout(s.rt, ctx, embedTimeout)
	defer cancel()
	res, err := s.embedder.Embed(ctx, llm.EmbedRequest{Model: model, Inputs: texts})
	if err != nil {
		return nil, fmt.Errorf("embed with %q: %w", model, err)
	}
	return res.Vectors, nil
}

// withEmbedding invokes an archival operation whose request must carry
// the agent's embedding model and, when the text needs one, its vector:
// prepare fills the request for a model ("" for none), embedding its text
// with embed. The model is first guessed from what the service last saw;
// if the actor answers that the agent's model is another, the request is
// prepared again for that one and sent once more.
func (s *Service) withEmbedding(ctx context.Context, agentID string, prepare func(model string, embed func(text string) ([]float32, error)) error, invoke func() error) error {
	model := s.knownEmbedding(agentID)
	embedOne := func(text string) ([]float32, error) {
		vecs, err := s.embed(ctx, model, []string{text})
		if err != nil {
			return nil, err
		}
		return vecs[0], nil
	}
	for attempt := 1; ; attempt++ {
		if err := prepare(model, embedOne); err != nil {
			return err
		}
		err := invoke()
		var mismatch *agent.EmbeddingModelError
		if !errors.As(err, &mismatch) || attempt == 2 {
			return err
		}
		model = mismatch.Want
		s.noteEmbedding(agentID, model)
	}
}

// toolEmbeddings computes the vectors of the calls that need one
// (agent.ToolEmbeddingText) with model: in one embedding call, or in as
// few as the llm.Embed* limits allow. A failure is recorded for each call
// it leaves without a vector, and the actor makes it that call's tool
// error. It returns nil if no call needs a vector.
func (s *Service) toolEmbeddings(ctx context.Context, model string, calls []llm.ToolCall) *agent.ToolEmbeddings {
	if model == "" {
		return nil
	}
	out := &agent.ToolEmbeddings{Model: model, Calls: map[string]agent.ToolEmbedding{}}
	seen := make(map[string]int, len(calls))
	for _, tc := range calls {
		seen[tc.ID]++
	}
	var ids, texts []string
	size := 0
	flush := func() {
		if len(texts) == 0 {
			return
		}
		vecs, err := s.embed(ctx, model, texts)
		for i, id := range ids {
			if err != nil {
				out.Calls[id] = agent.NewToolEmbeddingError(err)
			} else {
				out.Calls[id] = agent.ToolEmbedding{Vector: vecs[i]}
			}
		}
		ids, texts, size = ids[:0], texts[:0], 0
	}
	for _, tc := range calls {
		text, ok := agent.ToolEmbeddingText(tc.Name, tc.Arguments)
		if !ok {
			continue
		}
		if seen[tc.ID] > 1 {
			// The vector could not be told apart from another call's.
			out.Calls[tc.ID] = agent.NewToolEmbeddingError(fmt.Errorf("tool call ID %q is not unique in the answer", tc.ID))
			continue
		}
		if len(texts) == llm.EmbedInputsMax || size+len(text) > llm.EmbedRequestBytesMax {
			flush()
		}
		ids, texts, size = append(ids, tc.ID), append(texts, text), size+len(text)
	}
	flush()
	if len(out.Calls) == 0 {
		return nil
	}
	return out
}

// approvalEmbeddings computes the vectors of the pending archival tool
// calls that approvals approve, which the send then runs in the actor. It
// costs a read of the agent, made only when some call is approved and an
// embedder is configured; nil when nothing needs a vector (a failed read
// included: the send reports the problem, or the call its missing vector).
func (s *Service) approvalEmbeddings(ctx context.Context, agentID, conversationID string, approvals []agent.Approval) *agent.ToolEmbeddings {
	approved := func(callID string) bool {
		for _, a := range approvals {
			if (a.ToolCallID == callID || (len(approvals) == 1 && a.ToolCallID == "")) && a.Approve && a.Return == nil {
				return true
			}
		}
		return false
	}
	if !slices.ContainsFunc(approvals, func(a agent.Approval) bool { return a.Approve && a.Return == nil }) || !s.embedderConfigured() {
		return nil
	}
	ag, err := s.GetAgent(ctx, agentID)
	if err != nil || ag.Embedding == "" {
		return nil
	}
	pending := ag.PendingApproval
	if conversationID != "" {
		conv, err := s.GetConversation(ctx, conversationID)
		if err != nil {
			return nil
		}
		pending = conv.PendingApproval
	}
	if pending == nil {
		return nil
	}
	var calls []llm.ToolCall
	for _, c := range pending.Calls {
		if approved(c.ID) {
			calls = append(calls, llm.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
		}
	}
	return s.toolEmbeddings(ctx, ag.Embedding, calls)
}

// embedderConfigured reports whether the embedder can answer at all.
func (s *Service) embedderConfigured() bool {
	c, ok := s.embedder.(interface{ Configured() bool })
	return !ok || c.Configured()
}
