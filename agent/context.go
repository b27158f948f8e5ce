package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// OpContextWindow reports what the model would see at the agent's next
// step: nothing -> ContextWindow.
const OpContextWindow = "context_window"

// ContextWindow is the content of an agent's context window as the next
// model request would carry it (before the request's client-side tools).
type ContextWindow struct {
	// System is the agent's system prompt, and CoreMemory the memory
	// blocks section compiled after it; together they are the request's
	// system message.
	System     string `json:"system"`
	CoreMemory string `json:"core_memory"`
	// Messages are the log entries in context, oldest first.
	Messages []Message `json:"messages"`
	// Tools are the tool definitions offered to the model.
	Tools []llm.Tool `json:"tools"`
	// RecallCount is the number of messages in the log, in context or
	// not; ArchivalCount the number of archival passages.
	RecallCount   uint64 `json:"recall_count"`
	ArchivalCount uint64 `json:"archival_count"`
	// Limit is the agent's ContextWindowLimit (0: none set).
	Limit int `json:"limit,omitempty"`
}

// inContext returns the log entries the model sees: the most recent
// contextMessagesMax, oldest first, never starting with a tool return
// whose call fell out of the window.
func inContext(ctx context.Context, c *actor.Context[State], th *thread) ([]Message, error) {
	kvs, err := c.Scan(ctx, storage.ScanOptions{Start: th.messagePrefix(), End: th.messagePrefix().End(), Reverse: true, Limit: contextMessagesMax})
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(kvs))
	for i := len(kvs) - 1; i >= 0; i-- {
		var m Message
		if err := json.Unmarshal(kvs[i].Value, &m); err != nil {
			return nil, fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kvs[i].Key, err)
		}
		msgs = append(msgs, m)
	}
	for len(msgs) > 0 && msgs[0].Role == llm.RoleTool {
		msgs = msgs[1:]
	}
	return msgs, nil
}

// contextWindow builds the agent's ContextWindow.
func contextWindow(ctx context.Context, c *actor.Context[State]) (*ContextWindow, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	msgs, err := inContext(ctx, c, defaultThread(ag))
	if err != nil {
		return nil, err
	}
	recall, err := logLength(ctx, c)
	if err != nil {
		return nil, err
	}
	v, _, err := ResolveBlocks(ctx, c.GetShared, ag)
	if err != nil {
		return nil, err
	}
	defs, _, err := loadCustomTools(ctx, c.GetShared, ag.CustomToolIDs)
	if err != nil {
		return nil, err
	}
	tools := agentTools(ag, defs)
	if tools == nil {
		tools = []llm.Tool{}
	}
	return &ContextWindow{
		System:     ag.System,
		CoreMemory: strings.TrimPrefix(CompileSystemPrompt(v), ag.System),
		Messages:   msgs, Tools: tools, RecallCount: recall, ArchivalCount: ag.PassageCount,
		Limit: ag.ContextWindowLimit,
	}, nil
}

// logLength counts the messages in the log in O(log n). The log is
// contiguous: entries are appended at NextSeq and only ever removed all
// at once (reset), so it holds exactly the sequence numbers from its
// first entry up to NextSeq.
func logLength(ctx context.Context, c *actor.Context[State]) (uint64, error) {
	kvs, err := c.Scan(ctx, storage.ScanOptions{Start: MessagePrefix(), End: MessagePrefix().End(), Limit: 1})
	if err != nil || len(kvs) == 0 {
		return 0, err
	}
	elems, err := tuple.Unpack(kvs[0].Key)
	if err != nil || len(elems) != 2 {
		return 0, fmt.Errorf("%w: message key %q", storage.ErrCorrupt, kvs[0].Key)
	}
	first, ok := elems[1].(uint64)
	if !ok || first > c.State.Agent.NextSeq {
		return 0, fmt.Errorf("%w: message key %q", storage.ErrCorrupt, kvs[0].Key)
	}
	return c.State.Agent.NextSeq - first, nil
}
