package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/storage"
)

// Messages by ID and message search, read from committed storage without
// activating any agent.

// AgentMessage is a logged message and the agent whose log holds it.
type AgentMessage struct {
	agent.Message
	AgentID string
}

// errMessageNotFound explains why a message may not be found by ID.
func errMessageNotFound(id string) error {
	return fmt.Errorf("%w: message %s (messages logged before Kelpie indexed message IDs cannot be retrieved by ID alone; "+
		"list them with GET /v1/agents/{agent_id}/messages)", agent.ErrNotFound, id)
}

// GetMessage returns the message with the given ID, found through the
// global message index (agent.MessageAgentIndex). A message whose agent
// or conversation was deleted, or whose log was reset, is not found; so is
// one logged before the index existed (it has no entry).
func (s *Service) GetMessage(ctx context.Context, id string) (*AgentMessage, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	v, err := tx.Get(ctx, agent.MessageAgentKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errMessageNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	agentID, conversationID, seq, err := agent.ParseMessageAgent(v)
	if err != nil {
		return nil, err
	}
	var m agent.Message
	err = storedJSON(ctx, tx, agentID, agent.MessageLogKey(conversationID, seq), "message "+id, &m)
	if errors.Is(err, agent.ErrNotFound) || (err == nil && m.ID != id) {
		// The index entry outlived its message.
		return nil, fmt.Errorf("%w: message %s (its agent or conversation was deleted, or its log reset)", agent.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &AgentMessage{Message: m, AgentID: agentID}, nil
}

// SearchMessages searches logged messages by text (agent.SearchStoredMessages).
// A conversation other than the default one names its agent; if
// req.AgentID names another, the conversation is not found. A named agent
// must exist.
func (s *Service) SearchMessages(ctx context.Context, req agent.MessageSearchRequest) (*agent.MessageSearchResponse, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	switch req.ConversationID {
	case "":
	case agent.ConversationDefault:
		if req.AgentID == "" {
			return nil, fmt.Errorf("%w: conversation_id %q needs an agent_id", agent.ErrInvalid, agent.ConversationDefault)
		}
	default:
		owner, err := tx.Get(ctx, agent.ConversationAgentKey(req.ConversationID))
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: conversation %s", agent.ErrNotFound, req.ConversationID)
		}
		if err != nil {
			return nil, err
		}
		if req.AgentID != "" && req.AgentID != string(owner) {
			return nil, fmt.Errorf("%w: conversation %s does not belong to agent %s", agent.ErrNotFound, req.ConversationID, req.AgentID)
		}
		req.AgentID = string(owner)
	}
	if req.AgentID != "" {
		if _, err := s.loadStored(ctx, tx, req.AgentID); err != nil {
			return nil, err
		}
	}
	return agent.SearchStoredMessages(ctx, tx, req)
}
