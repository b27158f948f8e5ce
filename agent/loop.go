package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/invariant"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Stop reasons (Letta's).
const (
	StopEndTurn     = "end_turn"
	StopMaxSteps    = "max_steps"
	StopLLMAPIError = "llm_api_error"
	StopCancelled   = "cancelled"
	StopError       = "error"
	StopApproval    = "requires_approval"
	// StopContextOverflowSystem: the system prompt and tools alone do not
	// fit the model's context window.
	StopContextOverflowSystem = "context_window_overflow_in_system_prompt"
)

// SendRequest starts one turn: a run.
type SendRequest struct {
	// RunID names the run; the service draws it (a "run-<uuid4>").
	RunID string `json:"run_id"`
	// ConversationID names the conversation ("" for the agent's default one).
	ConversationID string         `json:"conversation_id,omitempty"`
	Messages       []InputMessage `json:"messages"`
	// MaxSteps bounds model calls in this turn (0: DefaultMaxSteps).
	MaxSteps int `json:"max_steps,omitempty"`
	// Background marks a run started with messages/async, or in the
	// background of a stream.
	Background bool `json:"background,omitempty"`
	// OverrideModel, if set, is the model handle the run uses instead of
	// the agent's (or its conversation's).
	OverrideModel string `json:"override_model,omitempty"`
	// Approvals answer the calls a previous run left pending.
	Approvals []Approval `json:"approvals,omitempty"`
	// ClientTools are tools the client runs itself: the model may call
	// them, and the run then pauses for the client's result.
	ClientTools []llm.Tool `json:"client_tools,omitempty"`
	// ClientSkills are skills the client's environment offers (letta-code
	// sends its own): listed in the system prompt of the run's steps.
	ClientSkills []ClientSkill `json:"client_skills,omitempty"`
	// Embeddings are the vectors of the approved archival tool calls
	// among the pending ones Approvals answer (see ToolEmbeddings).
	Embeddings *ToolEmbeddings `json:"embeddings,omitempty"`
	// ToolResults are the results of the approved calls to external
	// tools among the pending ones, executed by the service.
	ToolResults []ToolResult `json:"tool_results,omitempty"`
}

// InputMessage is a message a client sends.
type InputMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	OTID    string `json:"otid,omitempty"`
}

// SendResponse is what one turn produced: only this turn's messages.
type SendResponse struct {
	RunID      string    `json:"run_id"`
	Messages   []Message `json:"messages"`
	StopReason string    `json:"stop_reason"`
	Usage      Usage     `json:"usage"`
}

// Usage sums a turn's model usage.
type Usage struct {
	CompletionTokens int `json:"completion_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
	StepCount        int `json:"step_count"`
}

// DefaultSystemPrompt is the system prompt of an agent created without one.
const DefaultSystemPrompt = "You are a helpful assistant with persistent memory. " +
	"Your core memory blocks are shown below and stay in your context; edit them with your memory tools " +
	"when you learn something worth keeping. Use archival memory for facts that do not fit in core memory."

// turn holds one invocation's working set of a run.
type turn struct {
	c  *actor.Context[State]
	ag *Agent
	// th is the conversation the run belongs to.
	th    *thread
	ids   rt.Rand
	runID string
	run   *Run
	added []Message
	// embeds are the vectors the service computed for this invocation's
	// tool calls, and callID the call being run (see turn.embedding).
	embeds *ToolEmbeddings
	callID string
	// results are the external tools' results the driver passed (see
	// external.go).
	results []ToolResult
	// fatal is a tool failure that fails the invocation (see fatalError).
	fatal error
	// custom holds the current definitions of the agent's custom tools
	// once read in this invocation (see turn.customTools).
	custom *[]CustomTool
}

// append logs m as the next message, with its entries in the agent's
// message-ID index and the global MessageAgentIndex.
func (t *turn) append(m Message) error {
	// Sequence numbers only grow: the log has no gaps and the window
	// starts inside it.
	invariant.Check(t.th.NextSeq >= t.th.MessageCount && t.th.ContextStart <= t.th.NextSeq,
		"conversation %s: next seq %d, message count %d, context start %d", t.th.id(), t.th.NextSeq, t.th.MessageCount, t.th.ContextStart)
	if n := len(t.added); n > 0 {
		invariant.Check(t.added[n-1].Seq+1 == t.th.NextSeq,
			"conversation %s: appending seq %d after seq %d", t.th.id(), t.th.NextSeq, t.added[n-1].Seq)
	}
	m.ID = rt.NewID(t.ids, "message")
	m.RunID = t.runID
	m.ConversationID = t.th.id()
	m.Seq = t.th.NextSeq
	m.CreatedAt = t.c.Now().UTC()
	if inWindow(m.Role) {
		m.Tokens = messageTokens(&m)
	}
	b, err := json.Marshal(&m)
	if err != nil {
		return err
	}
	if err := t.c.Set(t.th.messageKey(m.Seq), b); err != nil {
		return err
	}
	if err := t.c.Set(MessageIDKey(m.ID), t.th.messageIndexValue(m.Seq)); err != nil {
		return err
	}
	if err := t.c.SetIndex(MessageAgentKey(m.ID), MessageAgentValue(t.c.ID.ID, m.ConversationID, m.Seq)); err != nil {
		return err
	}
	noteAppended(t.c, t.th, m)
	t.th.NextSeq++
	t.added = append(t.added, m)
	return nil
}

// context returns what the model sees of t's conversation: the compiled
// system prompt (with the run's skills) and the messages in the window.
func (t *turn) context(ctx context.Context) (string, []Message, error) {
	msgs, err := inContext(ctx, t.c, t.th)
	if err != nil {
		return "", nil, err
	}
	v, _, err := ResolveBlocks(ctx, t.c.GetShared, t.ag)
	if err != nil {
		return "", nil, err
	}
	system := CompileSystemPrompt(t.th.blocks(v))
	if t.run != nil && len(t.run.ClientSkills) > 0 {
		system += skillsSection(t.run.ClientSkills)
	}
	return system, msgs, nil
}

// history renders the model's messages: the system prompt, the
// conversation's summary, then the window's messages, oldest first.
func (t *turn) history(system string, msgs []Message) []llm.Message {
	out := make([]llm.Message, 0, len(msgs)+2)
	out = append(out, llm.Message{Role: llm.RoleSystem, Content: system})
	if sm, ok := summaryPrompt(t.th); ok {
		out = append(out, sm)
	}
	for _, m := range msgs {
		lm := llm.Message{Role: m.Role, Content: m.Content, ToolCallID: m.ToolCallID, Name: m.ToolName}
		for _, tc := range m.ToolCalls {
			lm.ToolCalls = append(lm.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		out = append(out, lm)
	}
	return out
}

// CompileSystemPrompt renders the system prompt with the memory blocks,
// in Letta's layout. ag's shared blocks must be resolved (ResolveBlocks).
func CompileSystemPrompt(ag *Agent) string {
	var b strings.Builder
	b.WriteString(ag.System)
	b.WriteString("\n\n<memory_blocks>\nThe following memory blocks are currently engaged in your core memory unit:\n")
	for _, bl := range ag.Blocks {
		fmt.Fprintf(&b, "\n<%s>\n<description>\n%s\n</description>\n<metadata>\n- chars_current=%d\n- chars_limit=%d\n</metadata>\n<value>\n%s\n</value>\n</%s>\n",
			bl.Label, bl.Description, utf8.RuneCountInString(bl.Value), bl.Limit, bl.Value, bl.Label)
	}
	b.WriteString("\n</memory_blocks>")
	return b.String()
}

// ListMessagesRequest pages through the message log.
type ListMessagesRequest struct {
	// ConversationID names the conversation ("" for the default one).
	ConversationID string `json:"conversation_id,omitempty"`
	// Start is the first sequence number to consider.
	Start uint64 `json:"start,omitempty"`
	// AfterID and BeforeID, if set, bound the page to messages after or
	// before the message with that ID (exclusive).
	AfterID  string `json:"after_id,omitempty"`
	BeforeID string `json:"before_id,omitempty"`
	// End, if non-zero, is the sequence number to stop before.
	End uint64 `json:"end,omitempty"`
	// Descending returns the newest messages first.
	Descending bool `json:"descending,omitempty"`
	// Limit bounds the page, 1..MessagesPageMax.
	Limit int `json:"limit"`
}

// MessagesPageMax bounds one page of the message log.
const MessagesPageMax = 1000

func listMessages(ctx context.Context, c *actor.Context[State], req *ListMessagesRequest) ([]Message, error) {
	th, err := loadThread(ctx, c, req.ConversationID)
	if err != nil {
		return nil, err
	}
	start, end := th.messageKey(req.Start), th.messagePrefix().End()
	if req.End > 0 {
		end = th.messageKey(req.End)
	}
	for _, cur := range []struct {
		id    string
		after bool
	}{{req.AfterID, true}, {req.BeforeID, false}} {
		if cur.id == "" {
			continue
		}
		seq, conv, err := messageSeq(ctx, c, cur.id)
		if err != nil {
			return nil, err
		}
		if conv != th.id() {
			return nil, invalidf("message %s is not in conversation %q", cur.id, th.id())
		}
		if cur.after {
			start = th.messageKey(max(seq+1, req.Start))
		} else {
			end = th.messageKey(seq)
		}
	}
	if bytes.Compare(start, end) >= 0 {
		return []Message{}, nil
	}
	kvs, err := c.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: req.Descending, Limit: req.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(kvs))
	for _, kv := range kvs {
		var m Message
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kv.Key, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// messageSeq returns the sequence number of the message with the given
// ID, and its conversation ("" for the default one).
func messageSeq(ctx context.Context, c *actor.Context[State], id string) (seq uint64, conversationID string, err error) {
	v, err := c.Get(ctx, MessageIDKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, "", fmt.Errorf("%w: message %s", ErrNotFound, id)
	}
	if err != nil {
		return 0, "", err
	}
	elems, err := tuple.Unpack(v)
	if err != nil || len(elems) < 1 || len(elems) > 2 {
		return 0, "", fmt.Errorf("%w: message index of %s", storage.ErrCorrupt, id)
	}
	seq, _ = elems[0].(uint64)
	if len(elems) == 2 {
		conversationID, _ = elems[1].(string)
	}
	return seq, conversationID, nil
}
