package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
)

// ContextWindow returns what the agent's next model request would carry.
func (s *Service) ContextWindow(ctx context.Context, agentID string) (*agent.ContextWindow, error) {
	return read(ctx, s, agentID, agent.OpContextWindow, agent.None{})
}
