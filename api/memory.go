package api

import (
	"encoding/json"
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
	writeJSON(w, http.StatusOK, toAgentWire(ag).Memory)
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

// estimateTokens estimates the tokens of s as one per four bytes, rounded
// up: the usual rule of thumb for English text with OpenAI's tokenizers.
// Kelpie calls models through several providers and ships no tokenizer,
// so every count on the context window is this estimate.
func estimateTokens(s string) int { return (len(s) + 3) / 4 }

// getContextWindow answers GET /v1/agents/{agent_id}/context (Letta's
// retrieve_agent_context_window): what the agent's next model request
// carries — the system prompt, the compiled memory blocks, the tool
// definitions and the messages in context (the first being the system
// message they make up) — with token counts estimated by estimateTokens
// (the functions' count over their JSON). Kelpie compiles no external
// memory summary and keeps no summary memory, so those are empty.
// context_window_size_max is the window the agent's llm_config reports. conversation_id may be absent or "default" (Kelpie serves
// one conversation per agent).
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
		ContextWindowSizeMax: contextWindow(cw.Limit), NumArchivalMemory: cw.ArchivalCount, NumRecallMemory: cw.RecallCount,
		SystemPrompt: cw.System, NumTokensSystem: estimateTokens(cw.System),
		CoreMemory: cw.CoreMemory, NumTokensCoreMemory: estimateTokens(cw.CoreMemory),
		FunctionsDefinitions: make([]functionTool, 0, len(cw.Tools)),
	}
	for _, t := range cw.Tools {
		out.FunctionsDefinitions = append(out.FunctionsDefinitions, functionTool{Type: "function", Function: t})
	}
	if len(out.FunctionsDefinitions) > 0 {
		b, err := json.Marshal(out.FunctionsDefinitions)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out.NumTokensFunctionsDefinitions = estimateTokens(string(b))
	}
	out.Messages = append(make([]contextMessage, 0, len(cw.Messages)+1), contextMessage{
		AgentID: id, Role: llm.RoleSystem, Content: []textContent{{Type: "text", Text: cw.System + cw.CoreMemory}},
	})
	for _, m := range cw.Messages {
		out.Messages = append(out.Messages, toContextMessage(id, &m))
		out.NumTokensMessages += messageTokens(&m)
	}
	out.NumMessages = len(out.Messages)
	out.ContextWindowSizeCurrent = out.NumTokensSystem + out.NumTokensCoreMemory + out.NumTokensExternalMemorySummary +
		out.NumTokensSummaryMemory + out.NumTokensFunctionsDefinitions + out.NumTokensMessages
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

// messageTokens estimates a message's tokens: its text and its tool
// calls' names and arguments.
func messageTokens(m *agent.Message) int {
	n := estimateTokens(m.Content)
	for _, tc := range m.ToolCalls {
		n += estimateTokens(tc.Name) + estimateTokens(tc.Arguments)
	}
	return n
}
