package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
)

// SearchAllPassages ranks passages across agents (Letta's POST
// /v1/passages/search): with an agent ID it is that agent's archival
// search (SearchPassages, through its actor); without one it reads every
// agent's committed passages from storage without activating anyone (see
// agent.SearchStored). Results name their agent.
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
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return agent.SearchStored(ctx, tx, req)
}
