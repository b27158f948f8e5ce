package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
)

// ContextWindow returns what the agent's next model request would carry.
func (s *Service) ContextWindow(ctx context.Context, agentID string) (*agent.ContextWindow, error) {
	var out agent.ContextWindow
	if err := s.read(ctx, agentID, agent.OpContextWindow, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
