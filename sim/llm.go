package sim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
)

// ErrLLM marks every failure of the simulated model. The model call comes
// before any commit, so an invocation that fails with it changed nothing.
var ErrLLM = errors.New("sim: model failure")

// LLM is a deterministic simulated model. It answers a user message
// either with a tool call (with probability ToolProbability: a memory
// tool, an append to the shared block (memory_insert at the end, or
// core_memory_append), the request's client-side tool, the workload's
// custom tool by the name the request offers, conversation_search) or by sending a message, and answers a tool
// result by ending the turn. Its latency and faults (LlmTimeout,
// LlmFailure, LlmRateLimited) come from the simulation.
type LLM struct {
	r   rt.Runtime
	inj *Injector
	// ToolProbability is the chance that a turn starts with a tool call.
	ToolProbability float64
	// Issued, if set, is told of every append to the shared block the
	// model answers with: its token and the agent (from the user message).
	Issued func(token, agentID string)
	// Prompted, if set, is shown the system prompt of every step that
	// answers a workload's user message, with the message's agent and
	// when it was sent.
	Prompted func(agentID string, sent int64, system string)
	// CustomCalled, if set, is told of every call to the workload's
	// custom tool the model answers with.
	CustomCalled func(agentID, callID, name string)
	// Summaries, if set, counts the summarizer requests answered, and
	// SummaryFaults the faults injected into summarizer requests.
	Summaries, SummaryFaults *int
	calls                    uint64
}

// The workload's shared block and client-side tool.
const (
	// SharedLabel labels the standalone block attached to the agents.
	SharedLabel = "team"
	// ClientToolName is the client-side tool some sends offer.
	ClientToolName = "client_lookup"
	// agentMarker precedes the agent's ID in the workload's user messages,
	// sentMarker when it was sent (virtual ns since Epoch), before that.
	agentMarker = " @agent="
	sentMarker  = " @sent="
)

// NewLLM returns a simulated model running on r.
func NewLLM(r rt.Runtime, inj *Injector) *LLM {
	return &LLM{r: r, inj: inj, ToolProbability: 0.6}
}

// Complete implements llm.Client.
func (m *LLM) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	rnd := m.r.Rand("llm")
	m.calls++
	if err := m.r.Sleep(ctx, time.Duration(50+rt.Intn(rnd, 950))*time.Millisecond); err != nil {
		return nil, err
	}
	summarizing := isSummaryRequest(req)
	if f, ok := m.inj.Check(OpLLMComplete); ok {
		if summarizing && m.SummaryFaults != nil {
			*m.SummaryFaults++
		}
		switch f {
		case LlmTimeout:
			m.r.Sleep(ctx, 365*24*time.Hour) // a model that never answers
			return nil, fmt.Errorf("%w: timed out: %w", ErrLLM, ctx.Err())
		case LlmFailure:
			return nil, fmt.Errorf("%w: provider returned 500", ErrLLM)
		case LlmRateLimited:
			return nil, fmt.Errorf("%w: provider returned 429 (rate limited)", ErrLLM)
		default:
			m.inj.Unhandled(OpLLMComplete, f)
			return nil, fmt.Errorf("%w: unhandled fault %s", ErrLLM, f)
		}
	}
	// The model counts its prompt at one token per four bytes, as the
	// agent's window is measured against.
	prompt := promptBytes(req) / 4
	usage := llm.Usage{PromptTokens: prompt, CompletionTokens: 20, TotalTokens: prompt + 20}
	if summarizing {
		if m.Summaries != nil {
			*m.Summaries++
		}
		return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant,
			Content: fmt.Sprintf("summary %d of %d bytes", m.calls, len(req.Messages[len(req.Messages)-1].Content))}, Usage: usage}, nil
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role == llm.RoleTool {
		return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: "done"}, Usage: usage}, nil
	}
	agentID := ""
	if i := strings.LastIndex(last.Content, agentMarker); i >= 0 {
		agentID = last.Content[i+len(agentMarker):]
		if j := strings.LastIndex(last.Content[:i], sentMarker); j >= 0 && m.Prompted != nil && len(req.Messages) > 0 && req.Messages[0].Role == llm.RoleSystem {
			if sent, err := strconv.ParseInt(last.Content[j+len(sentMarker):i], 10, 64); err == nil {
				m.Prompted(agentID, sent, req.Messages[0].Content)
			}
		}
	}
	call := func(name, args string) *llm.Response {
		return &llm.Response{Usage: usage, Message: llm.Message{Role: llm.RoleAssistant,
			ToolCalls: []llm.ToolCall{{ID: rt.NewID(rnd, "call"), Name: name, Arguments: args}}}}
	}
	has := func(tool string) bool {
		for _, t := range req.Tools {
			if t.Name == tool {
				return true
			}
		}
		return false
	}
	custom := "" // the workload's custom tool, as this step offers it
	for _, t := range req.Tools {
		if strings.HasPrefix(t.Name, CustomToolPrefix) {
			custom = t.Name
		}
	}
	if float64(rnd.Uint64()>>11)/(1<<53) < m.ToolProbability {
		switch n := rt.Intn(rnd, 6); {
		case n >= 4 && (has(agent.ToolMemoryInsert) || has(agent.ToolCoreMemoryAppend)) && sharedAttached(req):
			token := fmt.Sprintf("t/%s/%016x", agentID, rnd.Uint64())
			if m.Issued != nil {
				m.Issued(token, agentID)
			}
			if has(agent.ToolMemoryInsert) { // at the end: an append
				return call(agent.ToolMemoryInsert, fmt.Sprintf(`{"label":%q,"new_str":%q}`, SharedLabel, token)), nil
			}
			return call(agent.ToolCoreMemoryAppend, fmt.Sprintf(`{"label":%q,"content":%q}`, SharedLabel, token)), nil
		case n == 3 && has(ClientToolName):
			return call(ClientToolName, `{"q":"weather"}`), nil
		case n == 0 && has(agent.ToolMemoryInsert):
			return call(agent.ToolMemoryInsert, fmt.Sprintf(`{"label":"human","new_str":"fact %d"}`, m.calls)), nil
		case n == 0 && has(agent.ToolCoreMemoryAppend):
			return call(agent.ToolCoreMemoryAppend, fmt.Sprintf(`{"label":"human","content":"fact %d"}`, m.calls)), nil
		case (n == 2 || n == 3 && !has(ClientToolName)) && custom != "":
			resp := call(custom, `{"q":"roster"}`)
			if m.CustomCalled != nil {
				m.CustomCalled(agentID, resp.Message.ToolCalls[0].ID, custom)
			}
			return resp, nil
		case n == 1 && has(MCPToolName):
			return call(MCPToolName, fmt.Sprintf(`{"text":"ping %d"}`, m.calls)), nil
		case n == 1 && has(agent.ToolArchivalMemoryInsert):
			return call(agent.ToolArchivalMemoryInsert, fmt.Sprintf(`{"content":"note %d"}`, m.calls)), nil
		case has(agent.ToolConversationSearch):
			return call(agent.ToolConversationSearch, `{"query":"hello"}`), nil
		}
	}
	if has(agent.ToolSendMessage) {
		return call(agent.ToolSendMessage, fmt.Sprintf(`{"message":"reply %d"}`, m.calls)), nil
	}
	return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: fmt.Sprintf("reply %d", m.calls)}, Usage: usage}, nil
}

// sharedAttached reports whether the request's system prompt shows the
// shared block.
func sharedAttached(req llm.Request) bool {
	return len(req.Messages) > 0 && req.Messages[0].Role == llm.RoleSystem &&
		strings.Contains(req.Messages[0].Content, "\n<"+SharedLabel+">\n")
}

// isSummaryRequest reports whether req is a summarizer's: no tools, and
// a system prompt about summarising (compaction.DefaultPrompt).
func isSummaryRequest(req llm.Request) bool {
	return len(req.Tools) == 0 && len(req.Messages) > 1 && req.Messages[0].Role == llm.RoleSystem &&
		strings.Contains(req.Messages[0].Content, "summar")
}

// promptBytes is the size of req's messages and tool definitions.
func promptBytes(req llm.Request) int {
	n := 0
	for _, m := range req.Messages {
		n += len(m.Content) + 16
		for _, tc := range m.ToolCalls {
			n += len(tc.Name) + len(tc.Arguments)
		}
	}
	for _, t := range req.Tools {
		n += len(t.Name) + len(t.Description) + len(t.Parameters) + 64
	}
	return n
}
