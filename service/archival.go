package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
)

// Archival memory. Each method is one invocation of the agent's actor, so
// an insert or delete commits the passage, its creation-order index entry
// and the agent's passage count together, and a list or search reads one
// consistent snapshot of the agent's passages.

// InsertPassage adds a passage to the agent's archival memory and returns
// it as committed. If the agent has an embedding model, the passage is
// embedded with it first (outside the actor); if that fails, nothing is
// stored and the error wraps the embedder's *llm.APIError. A vector the
// caller put in req is kept only if the agent has no embedding model.
func (s *Service) InsertPassage(ctx context.Context, agentID string, req agent.InsertPassageRequest) (*agent.Passage, error) {
	var out *agent.Passage
	given := req.Embedding
	err := s.withEmbedding(ctx, agentID,
		func(model string, embed func(string) ([]float32, error)) error {
			req.EmbeddingModel, req.Embedding = model, nil
			if model == "" {
				req.Embedding = given
				return nil
			}
			if !agent.PassageEmbeddable(req.Text) {
				return nil // the actor refuses the text anyway
			}
			vec, err := embed(req.Text)
			req.Embedding = vec
			return err
		},
		func() (err error) { out, err = call(ctx, s, agentID, agent.OpArchivalInsert, req); return err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListPassages returns a page of the agent's passages in creation order.
func (s *Service) ListPassages(ctx context.Context, agentID string, req agent.ListPassagesRequest) ([]agent.Passage, error) {
	out, err := call(ctx, s, agentID, agent.OpArchivalList, req)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []agent.Passage{}
	}
	return out, nil
}

// SearchPassages ranks the agent's passages against req: by cosine
// similarity if the agent has an embedding model (the query is embedded
// with it first, outside the actor; a failure wraps the embedder's
// *llm.APIError) and passages embedded by it pass the filters, otherwise
// by full-text ranking; see agent.SearchRequest. A QueryEmbedding the
// caller put in req is kept only if the agent has no embedding model.
func (s *Service) SearchPassages(ctx context.Context, agentID string, req agent.SearchRequest) (*agent.SearchResponse, error) {
	var out *agent.SearchResponse
	given := req.QueryEmbedding
	err := s.withEmbedding(ctx, agentID,
		func(model string, embed func(string) ([]float32, error)) error {
			req.EmbeddingModel, req.QueryEmbedding = model, nil
			if model == "" {
				req.QueryEmbedding = given
				return nil
			}
			if !agent.QueryEmbeddable(req.Query) {
				return nil // ranked without a vector
			}
			vec, err := embed(req.Query)
			req.QueryEmbedding = vec
			return err
		},
		func() (err error) { out, err = call(ctx, s, agentID, agent.OpArchivalSearch, req); return err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeletePassage removes one passage; agent.ErrNotFound if the agent or the
// passage does not exist.
func (s *Service) DeletePassage(ctx context.Context, agentID, passageID string) error {
	_, err := call(ctx, s, agentID, agent.OpArchivalDelete, agent.DeletePassageRequest{ID: passageID})
	return err
}
