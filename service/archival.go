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
// it as committed.
func (s *Service) InsertPassage(ctx context.Context, agentID string, req agent.InsertPassageRequest) (*agent.Passage, error) {
	var out agent.Passage
	if err := s.call(ctx, agentID, agent.OpArchivalInsert, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPassages returns a page of the agent's passages in creation order.
func (s *Service) ListPassages(ctx context.Context, agentID string, req agent.ListPassagesRequest) ([]agent.Passage, error) {
	out := []agent.Passage{}
	if err := s.call(ctx, agentID, agent.OpArchivalList, req, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SearchPassages ranks the agent's passages against req (BM25, or cosine
// similarity when req carries a query embedding; see agent.SearchRequest).
func (s *Service) SearchPassages(ctx context.Context, agentID string, req agent.SearchRequest) (*agent.SearchResponse, error) {
	var out agent.SearchResponse
	if err := s.call(ctx, agentID, agent.OpArchivalSearch, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePassage removes one passage; agent.ErrNotFound if the agent or the
// passage does not exist.
func (s *Service) DeletePassage(ctx context.Context, agentID, passageID string) error {
	return s.call(ctx, agentID, agent.OpArchivalDelete, agent.DeletePassageRequest{ID: passageID}, nil)
}
