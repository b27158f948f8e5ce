package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Importing and exporting an agent whole, with its message history (the
// service maps them to and from Letta's agent files). An import creates
// the agent and logs its history in the creating transaction, so an
// import is all or nothing; an export reads the agent, its log and its
// context window in one invocation, so they agree.

// Limits of imports and exports.
const (
	// ImportMessagesMax bounds the messages one import logs: each is three
	// writes (the message, its ID's entry in the agent's space and in the
	// global message_agent index) of the one transaction, which
	// storage.TxnWritesMax bounds.
	ImportMessagesMax = 3000
	// ExportMessagesMax bounds the messages one export reads.
	ExportMessagesMax = 50000
	// ExportBytesMax bounds the encoded messages one export reads (so
	// that the agent file, about twice their size, stays within what an
	// import reads).
	ExportBytesMax = 16 << 20
	// toolCallsPerMessageMax bounds the tool calls of one imported message.
	toolCallsPerMessageMax = 64
	// toolCallIDBytesMax bounds a tool call ID.
	toolCallIDBytesMax = 256
	// approvalRequiredMax bounds the tools an import marks as needing
	// approval.
	approvalRequiredMax = 128
)

// ImportRequest creates an agent (as OpCreate does) and logs messages in
// the same transaction.
type ImportRequest struct {
	Agent CreateRequest `json:"agent"`
	// EmptySystem keeps the system prompt empty (OpCreate would give an
	// empty one the default).
	EmptySystem bool `json:"empty_system,omitempty"`
	// SharedBlockIDs are standalone blocks to attach by reference, after
	// the agent's own blocks.
	SharedBlockIDs []string `json:"shared_block_ids,omitempty"`
	// ApprovalRequired names the tools whose calls wait for approval (as
	// UpdateRequest.ApprovalRequired).
	ApprovalRequired []string `json:"approval_required,omitempty"`
	// Messages are logged in order, at most ImportMessagesMax. Only Role,
	// Content, ToolCalls, ToolCallID, ToolName, ToolStatus, OTID and
	// CreatedAt count: each message gets a new ID and the next sequence
	// number, belongs to no run, and keeps its CreatedAt unless that is
	// zero (then: now). The returns of an assistant message's tool calls
	// must follow it, one for each call, before any other message: the
	// history must be one a model accepts.
	Messages []Message `json:"messages,omitempty"`
}

// ExportRequest selects what an export reads.
type ExportRequest struct {
	// Messages asks for the message log and the context window.
	Messages bool `json:"messages,omitempty"`
}

// Export is an agent whole.
type Export struct {
	// Agent is as replies show it: shared blocks and custom tools
	// resolved.
	Agent *Agent `json:"agent"`
	// Messages is the message log, oldest first.
	Messages []Message `json:"messages,omitempty"`
	// InContext are the IDs of the messages in the context window, oldest
	// first.
	InContext []string `json:"in_context,omitempty"`
}

func importAgent(ctx context.Context, c *actor.Context[State], req *ImportRequest) (*Agent, error) {
	if err := checkImported(req.Messages); err != nil {
		return nil, err
	}
	if req.EmptySystem && req.Agent.System != "" {
		return nil, invalidf("empty_system with a system prompt")
	}
	if len(req.ApprovalRequired) > approvalRequiredMax {
		return nil, invalidf("%d tools requiring approval, over the limit of %d", len(req.ApprovalRequired), approvalRequiredMax)
	}
	for _, n := range req.ApprovalRequired {
		if err := checkText("tool name", n, BlockLabelBytesMax); err != nil || n == "" {
			return nil, invalidf("approval_required: tool name %q", n)
		}
	}
	ag, err := create(ctx, c, &req.Agent)
	if err != nil {
		return nil, err
	}
	if req.EmptySystem {
		ag.System = ""
	}
	ag.ApprovalRequired = slices.Clone(req.ApprovalRequired)
	if len(req.SharedBlockIDs) > 0 {
		blocks, _, err := updateBlocks(ctx, c, ag, &UpdateRequest{AttachBlocks: req.SharedBlockIDs})
		if err != nil {
			return nil, err
		}
		ag.Blocks = blocks
	}
	ids := c.Runtime().Rand("ids")
	now := c.Now().UTC()
	for _, in := range req.Messages {
		m := Message{
			ID: rt.NewID(ids, "message"), Seq: ag.NextSeq, Role: in.Role, Content: in.Content,
			ToolCallID: in.ToolCallID, ToolName: in.ToolName, ToolStatus: in.ToolStatus, OTID: in.OTID,
			CreatedAt: in.CreatedAt.UTC(),
		}
		for _, tc := range in.ToolCalls {
			m.ToolCalls = append(m.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		m.Tokens = messageTokens(&m)
		b, err := json.Marshal(&m)
		if err != nil {
			return nil, err
		}
		if err := c.Set(MessageKey(m.Seq), b); err != nil {
			return nil, err
		}
		if err := c.Set(MessageIDKey(m.ID), tuple.Pack(m.Seq)); err != nil {
			return nil, err
		}
		if err := c.SetIndex(MessageAgentKey(m.ID), MessageAgentValue(c.ID.ID, "", m.Seq)); err != nil {
			return nil, err
		}
		ag.NextSeq++
	}
	ag.MessageCount = ag.NextSeq
	return ag, nil
}

// checkImported validates a history to import (see ImportRequest): the
// returns of an assistant message's tool calls follow it, one for each
// call, before any other message.
func checkImported(msgs []Message) error {
	if len(msgs) > ImportMessagesMax {
		return invalidf("%d messages to import, over the limit of %d", len(msgs), ImportMessagesMax)
	}
	open := map[string]bool{} // calls of the last assistant message not yet answered
	for i, m := range msgs {
		if err := checkText(fmt.Sprintf("message %d content", i), m.Content, MessageBytesMax); err != nil {
			return err
		}
		if len(m.OTID) > otidBytesMax {
			return invalidf("message %d: otid of %d bytes, over the limit of %d", i, len(m.OTID), otidBytesMax)
		}
		if m.Role != llm.RoleTool && len(open) > 0 {
			return invalidf("message %d: %d tool calls of the assistant message before it are not answered", i, len(open))
		}
		switch m.Role {
		case llm.RoleUser, llm.RoleSystem:
		case llm.RoleAssistant:
			if len(m.ToolCalls) > toolCallsPerMessageMax {
				return invalidf("message %d: %d tool calls, over the limit of %d", i, len(m.ToolCalls), toolCallsPerMessageMax)
			}
			for _, tc := range m.ToolCalls {
				if tc.ID == "" || len(tc.ID) > toolCallIDBytesMax || tc.Name == "" {
					return invalidf("message %d: a tool call needs an id of 1..%d bytes and a name", i, toolCallIDBytesMax)
				}
				if open[tc.ID] {
					return invalidf("message %d: two tool calls with the id %q", i, tc.ID)
				}
				if err := checkText(fmt.Sprintf("message %d tool call arguments", i), tc.Arguments, MessageBytesMax); err != nil {
					return err
				}
				open[tc.ID] = true
			}
		case llm.RoleTool:
			if !open[m.ToolCallID] {
				return invalidf("message %d: tool return for call %q, which the assistant message before it did not make or which was answered already", i, m.ToolCallID)
			}
			delete(open, m.ToolCallID)
			if !slices.Contains([]string{ToolSuccess, ToolError}, m.ToolStatus) {
				return invalidf("message %d: tool status %q: want %q or %q", i, m.ToolStatus, ToolSuccess, ToolError)
			}
		default:
			return invalidf("message %d: role %q: want user, assistant, system or tool", i, m.Role)
		}
	}
	if len(open) > 0 {
		return invalidf("the last %d tool calls are not answered", len(open))
	}
	return nil
}

// exportAgent reads the agent, and with req.Messages its log (bounded by
// ExportMessagesMax and ExportBytesMax) and context window.
func exportAgent(ctx context.Context, c *actor.Context[State], req *ExportRequest) (*Export, error) {
	if c.State.Agent == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	v, err := Resolve(ctx, c.GetShared, c.State.Agent)
	if err != nil {
		return nil, err
	}
	out := &Export{Agent: v}
	if !req.Messages {
		return out, nil
	}
	start, size := MessagePrefix(), 0
	for {
		kvs, err := c.Scan(ctx, storage.ScanOptions{Start: start, End: MessagePrefix().End(), Limit: storage.ScanLimitMax})
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			size += len(kv.Value)
			if len(out.Messages) == ExportMessagesMax || size > ExportBytesMax {
				return nil, invalidf("agent %s has more than %d messages or %d bytes of them, over the export limits; export it without messages", c.ID.ID, ExportMessagesMax, ExportBytesMax)
			}
			var m Message
			if err := json.Unmarshal(kv.Value, &m); err != nil {
				return nil, fmt.Errorf("%w: message %q: %v", storage.ErrCorrupt, kv.Key, err)
			}
			out.Messages = append(out.Messages, m)
		}
		if len(kvs) < storage.ScanLimitMax {
			break
		}
		start = append(slices.Clone(kvs[len(kvs)-1].Key), 0)
	}
	window, err := inContext(ctx, c, defaultThread(c.State.Agent))
	if err != nil {
		return nil, err
	}
	for _, m := range window {
		out.InContext = append(out.InContext, m.ID)
	}
	return out, nil
}
