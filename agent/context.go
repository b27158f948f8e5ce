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
	"github.com/kelpie-ai/kelpie/tokens"
)

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
	// Limit is the model's context window, in tokens.
	Limit int `json:"limit,omitempty"`
	// Summary is the summary of the messages out of view ("" for none),
	// as the model is shown it.
	Summary string `json:"summary,omitempty"`
	// Token counts of each part (package tokens), and Total their sum
	// scaled by the correction the provider's last reported usage gives.
	SystemTokens     int `json:"system_tokens"`
	CoreMemoryTokens int `json:"core_memory_tokens"`
	SummaryTokens    int `json:"summary_tokens"`
	MessagesTokens   int `json:"messages_tokens"`
	ToolsTokens      int `json:"tools_tokens"`
	Total            int `json:"total"`
}

// The context window. Each conversation's model context is its compiled
// system prompt, then its summary (Thread.Summary) if it has one, then
// the messages logged from Thread.ContextStart on. Compaction (package
// compaction, compact.go) moves ContextStart forward and replaces the
// summary; the log itself only grows, so the messages out of view stay
// searchable.
//
// The actor keeps each conversation's window decoded in memory (State's
// windows), so a step does not read and decode it from storage. The
// cache is not part of the committed state: a failed invocation restores
// the state without it, and the next one reads the window again.

// window is a conversation's in-context messages as the actor holds them.
type window struct {
	// start and next delimit the sequence numbers read: [start, next).
	start, next uint64
	// msgs are the messages in context (summaries and events excluded),
	// oldest first.
	msgs []Message
}

// windowsMax bounds the conversations whose windows one activation keeps.
const windowsMax = 16

// inContext returns the log entries the model sees: those from the
// conversation's ContextStart on (at most contextMessagesMax, the newest),
// oldest first, never starting with a tool return whose call is out of
// view, and without summaries and events.
func inContext(ctx context.Context, c *actor.Context[State], th *thread) ([]Message, error) {
	w, err := loadWindow(ctx, c, th)
	if err != nil {
		return nil, err
	}
	return w.msgs, nil
}

// loadWindow returns th's window, from memory if the actor holds it as of
// th's current log, else read from storage.
func loadWindow(ctx context.Context, c *actor.Context[State], th *thread) (*window, error) {
	if w := c.State.windows[th.id()]; w != nil && w.start == th.ContextStart && w.next == th.NextSeq {
		return w, nil
	}
	w := &window{start: th.ContextStart, next: th.NextSeq}
	if th.NextSeq > th.ContextStart {
		kvs, err := c.Scan(ctx, storage.ScanOptions{Start: th.messageKey(th.ContextStart), End: th.messagePrefix().End(),
			Reverse: true, Limit: contextMessagesMax})
		if err != nil {
			return nil, err
		}
		w.msgs = make([]Message, 0, len(kvs))
		for i := len(kvs) - 1; i >= 0; i-- {
			var m Message
			if err := json.Unmarshal(kvs[i].Value, &m); err != nil {
				return nil, fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kvs[i].Key, err)
			}
			if inWindow(m.Role) {
				w.msgs = append(w.msgs, m)
			}
		}
	}
	for len(w.msgs) > 0 && w.msgs[0].Role == llm.RoleTool {
		w.msgs = w.msgs[1:]
	}
	if c.State.windows == nil || len(c.State.windows) >= windowsMax {
		c.State.windows = make(map[string]*window)
	}
	c.State.windows[th.id()] = w
	return w, nil
}

// inWindow reports whether messages of the role are part of the model's
// context: summaries are shown apart, and events never.
func inWindow(role string) bool { return role != RoleSummary && role != RoleEvent }

// noteAppended keeps th's window in memory in step with a message just
// logged in the invocation (the cache goes with the state if the
// invocation fails).
func noteAppended(c *actor.Context[State], th *thread, m Message) {
	w := c.State.windows[th.id()]
	if w == nil {
		return
	}
	if w.start != th.ContextStart || w.next != m.Seq {
		delete(c.State.windows, th.id())
		return
	}
	if inWindow(m.Role) {
		w.msgs = append(w.msgs, m)
	}
	w.next = m.Seq + 1
}

// forgetWindows drops the windows the actor holds, after a change to the
// log that noteAppended does not follow (a reset, an import).
func forgetWindows(c *actor.Context[State]) { c.State.windows = nil }

// contextWindow builds the agent's ContextWindow.
func (a *Actor) contextWindow(ctx context.Context, c *actor.Context[State]) (*ContextWindow, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	th := defaultThread(ag)
	msgs, err := inContext(ctx, c, th)
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
	cw := &ContextWindow{
		System:     ag.System,
		CoreMemory: strings.TrimPrefix(CompileSystemPrompt(v), ag.System),
		Messages:   msgs, Tools: tools, RecallCount: recall, ArchivalCount: ag.PassageCount,
		Limit: a.contextLimit(ag, th, nil),
	}
	cw.SystemTokens = tokens.PerMessage + tokens.Count(cw.System)
	cw.CoreMemoryTokens = tokens.Count(cw.CoreMemory)
	if sm, ok := summaryPrompt(th); ok {
		cw.Summary, cw.SummaryTokens = sm.Content, th.Summary.Tokens
	}
	for _, it := range items(msgs) {
		cw.MessagesTokens += it.Tokens
	}
	cw.ToolsTokens = toolsTokens(tools)
	sum := cw.SystemTokens + cw.CoreMemoryTokens + cw.SummaryTokens + cw.MessagesTokens + cw.ToolsTokens
	cw.Total = int(float64(sum) * correction(th))
	return cw, nil
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
