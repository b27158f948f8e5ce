package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
)

// SearchAllPassages ranks passages across agents (Letta's POST
// /v1/passages/search). With an agent ID it is that agent's archival
// search (SearchPassages, through its actor, with its embedding model).
// Without one it reads every agent's committed passages from storage
// without activating anyone (agent.SearchStored): by cosine similarity
// against the passages embedded by the service's default embedding model
// (WithDefaultEmbedding) when it has one, otherwise by full-text ranking.
// Results name their agent.
func (s *Service) SearchAllPassages(ctx context.Context, agentID string, req agent.SearchRequest) (*agent.SearchResponse, error) {
	if agentID != "" {
		resp, err := s.SearchPassages(ctx, agentID, req)
		if err != nil {
			return nil, err
		}
		for i := range resp.Results {
			resp.Results[i].AgentID = agentID
		}
		return resp, nil
	}
	req.QueryEmbedding, req.EmbeddingModel = nil, ""
	if model := s.defaultEmbedding; model != "" && agent.QueryEmbeddable(req.Query) {
		vecs, err := s.embed(ctx, model, []string{req.Query})
		if err != nil {
			return nil, err
		}
		req.QueryEmbedding, req.EmbeddingModel = vecs[0], model
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return agent.SearchStored(ctx, tx, req)
}
