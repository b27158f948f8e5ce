package api

import (
	"net/http"
	"strings"

	"github.com/kelpie-ai/kelpie/agent"
)

// Compaction on a client's request: the conversation's in-context
// messages are summarised now, as when its window fills (see package
// compaction and agent/compact.go).

func (h *handler) compactionRoutes() {
	h.route("POST /v1/agents/{agent_id}/summarize", h.summarizeAgent)
	h.route("POST /v1/conversations/{conversation_id}/compact", h.compactConversation)
}

// compactionRequest is Letta's CompactionRequest (either router's).
type compactionRequest struct {
	AgentID            *string        `json:"agent_id"`
	CompactionSettings map[string]any `json:"compaction_settings"`
}

// compactionResponse is Letta's CompactionResponse.
type compactionResponse struct {
	Summary           string `json:"summary"`
	NumMessagesBefore int    `json:"num_messages_before"`
	NumMessagesAfter  int    `json:"num_messages_after"`
}

// summarizeAgent answers POST /v1/agents/{agent_id}/summarize: the
// default conversation is compacted.
func (h *handler) summarizeAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req compactionRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	h.compact(w, r, id, "", req.CompactionSettings)
}

// compactConversation answers POST /v1/conversations/{conversation_id}/compact:
// a conversation, or "default" with agent_id, or (deprecated) an agent ID
// for its default conversation.
func (h *handler) compactConversation(w http.ResponseWriter, r *http.Request) {
	var req compactionRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	if c := r.PathValue("conversation_id"); strings.HasPrefix(c, "agent-") {
		if !validID(c, "agent") {
			writeError(w, http.StatusUnprocessableEntity, "conversation_id "+c+" is not a valid agent or conversation ID")
			return
		}
		h.compact(w, r, c, "", req.CompactionSettings)
		return
	}
	agentID := ""
	if req.AgentID != nil {
		agentID = *req.AgentID
	}
	t, ok := h.target(w, r, agentID)
	if !ok {
		return
	}
	h.compact(w, r, t.AgentID, t.ConversationID, req.CompactionSettings)
}

func (h *handler) compact(w http.ResponseWriter, r *http.Request, agentID, conversationID string, settings map[string]any) {
	if err := agent.CheckCompactionSettings(settings); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.svc.Compact(r.Context(), agentID, conversationID, settings)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, compactionResponse{Summary: out.Summary, NumMessagesBefore: out.MessagesBefore, NumMessagesAfter: out.MessagesAfter})
}
