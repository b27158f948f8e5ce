package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Conversations: an agent's conversations besides its default one (see
// package agent). Each is addressed by its own ID; the agent that owns it
// is found through the conversation_agent index, read from committed
// storage.

// ConversationAgent returns the ID of the agent a conversation belongs to.
func (s *Service) ConversationAgent(ctx context.Context, conversationID string) (string, error) {
	return s.owner(ctx, agent.ConversationAgentKey(conversationID), "conversation "+conversationID)
}

// CreateConversation creates a conversation of the agent; the service
// draws its ID ("conv-<uuid4>").
func (s *Service) CreateConversation(ctx context.Context, agentID string, req agent.CreateConversationRequest) (*agent.Conversation, error) {
	req.ID = rt.NewID(s.ids, "conv")
	return call(ctx, s, agentID, agent.OpCreateConversation, req)
}

// conversationCall invokes a conversation operation on the agent that
// owns the conversation.
func conversationCall[Req, Rep any](ctx context.Context, s *Service, conversationID string, op agent.Op[Req, Rep], req Req) (Rep, error) {
	agentID, err := s.ConversationAgent(ctx, conversationID)
	if err != nil {
		var none Rep
		return none, err
	}
	return call(ctx, s, agentID, op, req)
}

// GetConversation returns a conversation.
func (s *Service) GetConversation(ctx context.Context, conversationID string) (*agent.Conversation, error) {
	return conversationCall(ctx, s, conversationID, agent.OpGetConversation, agent.ConversationRequest{ConversationID: conversationID})
}

// UpdateConversation changes a conversation's summary or model.
func (s *Service) UpdateConversation(ctx context.Context, req agent.UpdateConversationRequest) (*agent.Conversation, error) {
	return conversationCall(ctx, s, req.ConversationID, agent.OpUpdateConversation, req)
}

// DeleteConversation deletes a conversation and its messages; one with a
// run in progress is refused (agent.BusyError).
func (s *Service) DeleteConversation(ctx context.Context, conversationID string) error {
	_, err := conversationCall(ctx, s, conversationID, agent.OpDeleteConversation, agent.ConversationRequest{ConversationID: conversationID})
	return err
}

// ForkConversation copies a conversation of agentID into a new one.
// conversationID "" (or "default") names the agent's default
// conversation, and needs agentID; otherwise agentID may be "".
func (s *Service) ForkConversation(ctx context.Context, agentID, conversationID string) (*agent.Conversation, error) {
	if conversationID == agent.ConversationDefault {
		conversationID = ""
	}
	if conversationID != "" {
		owner, err := s.ConversationAgent(ctx, conversationID)
		if err != nil {
			return nil, err
		}
		if agentID != "" && agentID != owner {
			return nil, fmt.Errorf("%w: conversation %s of agent %s", agent.ErrNotFound, conversationID, agentID)
		}
		agentID = owner
	}
	req := agent.ForkConversationRequest{ConversationID: conversationID, ID: rt.NewID(s.ids, "conv")}
	return call(ctx, s, agentID, agent.OpForkConversation, req)
}

// CompileConversation returns the system prompt a conversation's next
// step would send ("" or "default" with agentID: the agent's default
// conversation).
func (s *Service) CompileConversation(ctx context.Context, agentID, conversationID string) (string, error) {
	if conversationID == agent.ConversationDefault {
		conversationID = ""
	}
	if conversationID != "" {
		owner, err := s.ConversationAgent(ctx, conversationID)
		if err != nil {
			return "", err
		}
		agentID = owner
	}
	out, err := call(ctx, s, agentID, agent.OpCompileConversation, agent.ConversationRequest{ConversationID: conversationID})
	if err != nil {
		return "", err
	}
	return out.System, nil
}

// ListConversations pages through conversations: one agent's (through the
// agent, with each conversation's in-context message IDs), or, with
// agentID "", every agent's, read from committed storage in creation order
// without activating any agent (their InContextMessageIDs left empty).
func (s *Service) ListConversations(ctx context.Context, agentID string, req agent.ListConversationsRequest) ([]agent.Conversation, error) {
	if req.Limit <= 0 || req.Limit > agent.ConversationsPageMax {
		return nil, fmt.Errorf("%w: limit %d outside 1..%d", agent.ErrInvalid, req.Limit, agent.ConversationsPageMax)
	}
	if agentID != "" {
		return call(ctx, s, agentID, agent.OpListConversations, req)
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := actor.IndexKey(agent.ConversationsIndex)
	start, end := []byte(prefix), []byte(prefix.End())
	if req.After != "" {
		owner, err := tx.Get(ctx, agent.ConversationAgentKey(req.After))
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: conversation %s", agent.ErrNotFound, req.After)
		}
		if err != nil {
			return nil, err
		}
		var cur agent.Conversation
		if err := storedJSON(ctx, tx, string(owner), agent.ConversationKey(req.After), "conversation "+req.After, &cur); err != nil {
			return nil, err
		}
		if req.Descending {
			end = agent.ConversationIndexKey(&cur)
		} else {
			start = tuple.Key(agent.ConversationIndexKey(&cur)).End()
		}
	}
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: req.Descending, Limit: storage.ScanLimitMax})
	if err != nil {
		return nil, err
	}
	out := []agent.Conversation{}
	for _, kv := range kvs {
		if len(out) == req.Limit {
			break
		}
		elems, err := tuple.Unpack(kv.Key[len(prefix):])
		if err != nil || len(elems) != 2 {
			return nil, fmt.Errorf("%w: conversation index key %q", storage.ErrCorrupt, kv.Key)
		}
		id, _ := elems[1].(string)
		var conv agent.Conversation
		err = storedJSON(ctx, tx, string(kv.Value), agent.ConversationKey(id), "conversation "+id, &conv)
		if errors.Is(err, agent.ErrNotFound) {
			continue // its agent was deleted
		}
		if err != nil {
			return nil, err
		}
		if req.SummarySearch != "" && !strings.Contains(strings.ToLower(conv.Summary), strings.ToLower(req.SummarySearch)) {
			continue
		}
		out = append(out, conv)
	}
	return out, nil
}

// LastRun returns the ID of a conversation's run in progress, or of its
// last run ("" conversationID: the agent's default conversation).
func (s *Service) LastRun(ctx context.Context, agentID, conversationID string) (string, error) {
	var th agent.Thread
	if conversationID == "" {
		ag, err := s.GetAgent(ctx, agentID)
		if err != nil {
			return "", err
		}
		th = ag.Thread
		if th.ActiveRun == nil && th.LastRunID == "" {
			// An agent stored before runs were recorded per conversation.
			page, err := s.ListRuns(ctx, RunQuery{AgentIDs: []string{agentID}, ConversationID: new(string), Descending: true, Limit: 1})
			if err != nil {
				return "", err
			}
			if len(page.Runs) == 1 {
				return page.Runs[0].ID, nil
			}
		}
	} else {
		conv, err := s.GetConversation(ctx, conversationID)
		if err != nil {
			return "", err
		}
		th = conv.Thread
	}
	switch {
	case th.ActiveRun != nil:
		return th.ActiveRun.ID, nil
	case th.LastRunID != "":
		return th.LastRunID, nil
	}
	what := "agent " + agentID
	if conversationID != "" {
		what = "conversation " + conversationID
	}
	return "", fmt.Errorf("%w: %s has no run to stream", agent.ErrNotFound, what)
}
