package api

import (
	"fmt"
	"net/http"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
)

// memoryRoutes registers the (deprecated in Letta, still served) views of
// an agent's memory and context window.
func (h *handler) memoryRoutes() {
	h.route("GET /v1/agents/{agent_id}/core-memory", h.getCoreMemory)
	h.route("GET /v1/agents/{agent_id}/context", h.getContextWindow)
}

// getCoreMemory answers GET /v1/agents/{agent_id}/core-memory (Letta's
// retrieve_agent_memory): the agent's Memory, its blocks in order.
func (h *handler) getCoreMemory(w http.ResponseWriter, r *http.Request) {
	ag, ok := h.pathAgent(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag).Memory)
}

// contextWindowWire is Letta's ContextWindowOverview.
type contextWindowWire struct {
	ContextWindowSizeMax           int              `json:"context_window_size_max"`
	ContextWindowSizeCurrent       int              `json:"context_window_size_current"`
	NumMessages                    int              `json:"num_messages"`
	NumArchivalMemory              uint64           `json:"num_archival_memory"`
	NumRecallMemory                uint64           `json:"num_recall_memory"`
	NumTokensExternalMemorySummary int              `json:"num_tokens_external_memory_summary"`
	ExternalMemorySummary          string           `json:"external_memory_summary"`
	NumTokensSystem                int              `json:"num_tokens_system"`
	SystemPrompt                   string           `json:"system_prompt"`
	NumTokensCoreMemory            int              `json:"num_tokens_core_memory"`
	CoreMemory                     string           `json:"core_memory"`
	NumTokensSummaryMemory         int              `json:"num_tokens_summary_memory"`
	SummaryMemory                  *string          `json:"summary_memory"`
	NumTokensFunctionsDefinitions  int              `json:"num_tokens_functions_definitions"`
	FunctionsDefinitions           []functionTool   `json:"functions_definitions"`
	NumTokensMessages              int              `json:"num_tokens_messages"`
	Messages                       []contextMessage `json:"messages"`
}

// functionTool is Letta's FunctionTool: a tool definition as offered to
// the model.
type functionTool struct {
	Type     string   `json:"type"`
	Function llm.Tool `json:"function"`
}

// contextMessage is Letta's Message (its internal message schema, which
// ContextWindowOverview lists).
type contextMessage struct {
	ID         string            `json:"id,omitempty"`
	AgentID    string            `json:"agent_id"`
	Role       string            `json:"role"`
	Content    []textContent     `json:"content"`
	Name       *string           `json:"name"`
	ToolCalls  []contextToolCall `json:"tool_calls"`
	ToolCallID *string           `json:"tool_call_id"`
	RunID      *string           `json:"run_id"`
	OTID       *string           `json:"otid"`
	CreatedAt  string            `json:"created_at,omitempty"`
	// ConversationID names a conversation other than the agent's default
	// one.
	ConversationID *string `json:"conversation_id,omitempty"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type contextToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// getContextWindow answers GET /v1/agents/{agent_id}/context (Letta's
// retrieve_agent_context_window): what the agent's next model request
// carries — the system prompt, the compiled memory blocks, the summary of
// the messages out of view, the tool definitions and the messages in
// context (the first being the system message they make up) — with each
// part's tokens as Kelpie counts them (o200k_base, package tokens).
// context_window_size_current is their sum, corrected by the ratio the
// provider's usage for the last step gave; context_window_size_max is
// the model's window. Kelpie compiles no external memory summary, so that
// is empty. conversation_id may be absent or "default".
func (h *handler) getContextWindow(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	if c := r.URL.Query().Get("conversation_id"); c != "" && c != "default" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("conversation %q not found: Kelpie serves each agent's default conversation", c))
		return
	}
	cw, err := h.svc.ContextWindow(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := contextWindowWire{
		ContextWindowSizeMax: cw.Limit, NumArchivalMemory: cw.ArchivalCount, NumRecallMemory: cw.RecallCount,
		SystemPrompt: cw.System, NumTokensSystem: cw.SystemTokens,
		CoreMemory: cw.CoreMemory, NumTokensCoreMemory: cw.CoreMemoryTokens,
		NumTokensFunctionsDefinitions: cw.ToolsTokens, NumTokensMessages: cw.MessagesTokens,
		FunctionsDefinitions:     make([]functionTool, 0, len(cw.Tools)),
		ContextWindowSizeCurrent: cw.Total,
	}
	for _, t := range cw.Tools {
		out.FunctionsDefinitions = append(out.FunctionsDefinitions, functionTool{Type: "function", Function: t})
	}
	out.Messages = append(make([]contextMessage, 0, len(cw.Messages)+2), contextMessage{
		AgentID: id, Role: llm.RoleSystem, Content: []textContent{{Type: "text", Text: cw.System + cw.CoreMemory}},
	})
	if cw.Summary != "" {
		out.SummaryMemory, out.NumTokensSummaryMemory = &cw.Summary, cw.SummaryTokens
		out.Messages = append(out.Messages, contextMessage{AgentID: id, Role: llm.RoleUser, Content: []textContent{{Type: "text", Text: cw.Summary}}})
	}
	for _, m := range cw.Messages {
		out.Messages = append(out.Messages, toContextMessage(id, &m))
	}
	out.NumMessages = len(out.Messages)
	writeJSON(w, http.StatusOK, out)
}

// toContextMessage renders a log entry as Letta's Message.
func toContextMessage(agentID string, m *agent.Message) contextMessage {
	cm := contextMessage{ID: m.ID, AgentID: agentID, Role: m.Role, Content: []textContent{}, ToolCallID: optional(m.ToolCallID),
		Name: optional(m.ToolName), RunID: optional(m.RunID), OTID: optional(m.OTID), CreatedAt: timeString(m.CreatedAt),
		ConversationID: optional(m.ConversationID)}
	if m.Content != "" {
		cm.Content = append(cm.Content, textContent{Type: "text", Text: m.Content})
	}
	for _, tc := range m.ToolCalls {
		c := contextToolCall{ID: tc.ID, Type: "function"}
		c.Function.Name, c.Function.Arguments = tc.Name, tc.Arguments
		cm.ToolCalls = append(cm.ToolCalls, c)
	}
	return cm
}
