package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kelpie-ai/kelpie/agent"
)

// conversationRoutes registers the /v1/conversations API: an agent's
// conversations by ID ("conv-<uuid4>"), and its default conversation as
// conversation_id "default" with an agent_id (in the query or the body),
// as letta-code uses them; and stream resumption.
func (h *handler) conversationRoutes() {
	h.route("POST /v1/conversations", h.createConversation)
	h.route("GET /v1/conversations", h.listConversations)
	h.route("GET /v1/conversations/{conversation_id}", h.getConversation)
	h.route("PATCH /v1/conversations/{conversation_id}", h.updateConversation)
	h.route("DELETE /v1/conversations/{conversation_id}", h.deleteConversation)
	h.route("POST /v1/conversations/{conversation_id}/fork", h.forkConversation)
	h.route("GET /v1/conversations/{conversation_id}/messages", h.conversationMessages)
	h.route("POST /v1/conversations/{conversation_id}/messages", h.conversationSend)
	h.route("POST /v1/conversations/{conversation_id}/stream", h.conversationStream)
	h.route("POST /v1/conversations/{conversation_id}/cancel", h.conversationCancel)
	h.route("POST /v1/conversations/{conversation_id}/recompile", h.conversationRecompile)
	h.route("POST /v1/runs/{run_id}/stream", h.runStream)
	h.route("PATCH /v1/agents/{agent_id}/reset-messages", h.resetMessages)
}

// conversationWire is Letta's Conversation.
type conversationWire struct {
	ID                  string   `json:"id"`
	AgentID             string   `json:"agent_id"`
	Summary             *string  `json:"summary"`
	InContextMessageIDs []string `json:"in_context_message_ids"`
	IsolatedBlockIDs    []string `json:"isolated_block_ids"`
	Model               *string  `json:"model"`
	ModelSettings       any      `json:"model_settings"`
	CreatedAt           string   `json:"created_at"`
	UpdatedAt           string   `json:"updated_at"`
	LastMessageAt       *string  `json:"last_message_at"`
	CreatedByID         *string  `json:"created_by_id"`
	LastUpdatedByID     *string  `json:"last_updated_by_id"`
}

func toConversationWire(c *agent.Conversation) conversationWire {
	w := conversationWire{ID: c.ID, AgentID: c.AgentID, Summary: optional(c.Summary), Model: optional(c.Model),
		InContextMessageIDs: nonNilStrings(c.InContextMessageIDs), IsolatedBlockIDs: []string{},
		CreatedAt: timeString(c.CreatedAt), UpdatedAt: timeString(c.UpdatedAt)}
	for _, b := range c.IsolatedBlocks {
		w.IsolatedBlockIDs = append(w.IsolatedBlockIDs, b.ID)
	}
	if c.LastMessageAt != nil {
		w.LastMessageAt = ptr(timeString(*c.LastMessageAt))
	}
	return w
}

// conversationTarget is the conversation a request names: a
// conversation's ID, or "default" with the agent's ID.
type conversationTarget struct {
	AgentID        string
	ConversationID string // "" for the default conversation
}

// target reads the conversation_id path parameter. "default" needs
// agentID (an agent-<uuid4>); any other value must be a conv-<uuid4>,
// whose agent the service finds.
func (h *handler) target(w http.ResponseWriter, r *http.Request, agentID string) (conversationTarget, bool) {
	c := r.PathValue("conversation_id")
	if c == agent.ConversationDefault {
		if !validID(agentID, "agent") {
			writeError(w, http.StatusUnprocessableEntity, "agent_id (an agent-<uuid4>) is required with the default conversation")
			return conversationTarget{}, false
		}
		return conversationTarget{AgentID: agentID}, true
	}
	if !validID(c, "conv") {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("conversation_id %q is not a valid conversation ID (expected conv-<uuid4>, or \"default\" with agent_id)", c))
		return conversationTarget{}, false
	}
	owner, err := h.svc.ConversationAgent(r.Context(), c)
	if err != nil {
		h.fail(w, r, err)
		return conversationTarget{}, false
	}
	if agentID != "" && agentID != owner {
		writeError(w, http.StatusNotFound, fmt.Sprintf("conversation %s does not belong to agent %s", c, agentID))
		return conversationTarget{}, false
	}
	return conversationTarget{AgentID: owner, ConversationID: c}, true
}

// createConversation answers POST /v1/conversations?agent_id=….
func (h *handler) createConversation(w http.ResponseWriter, r *http.Request) {
	agentID := r.URL.Query().Get("agent_id")
	if !validID(agentID, "agent") {
		writeQueryError(w, "agent_id", fmt.Sprintf("agent_id %q is not a valid agent ID (expected agent-<uuid4>)", agentID))
		return
	}
	var req struct {
		Summary             *string  `json:"summary"`
		Model               *string  `json:"model"`
		IsolatedBlockLabels []string `json:"isolated_block_labels"`
	}
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	in := agent.CreateConversationRequest{IsolatedBlockLabels: req.IsolatedBlockLabels}
	if req.Summary != nil {
		in.Summary = *req.Summary
	}
	if req.Model != nil {
		in.Model = *req.Model
	}
	conv, err := h.svc.CreateConversation(r.Context(), agentID, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toConversationWire(conv))
}

// listConversations answers GET /v1/conversations (agent_id, after,
// limit, order, summary_search).
func (h *handler) listConversations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	agentID := q.Get("agent_id")
	if agentID != "" && !validID(agentID, "agent") {
		writeQueryError(w, "agent_id", fmt.Sprintf("agent_id %q is not a valid agent ID (expected agent-<uuid4>)", agentID))
		return
	}
	limit, ok := listLimit(w, r, 50, agent.ConversationsPageMax)
	if !ok {
		return
	}
	desc, ok := descending(w, r)
	if !ok {
		return
	}
	if a := q.Get("after"); a != "" && !validID(a, "conv") {
		writeQueryError(w, "after", fmt.Sprintf("after %q is not a valid conversation ID", a))
		return
	}
	convs, err := h.svc.ListConversations(r.Context(), agentID, agent.ListConversationsRequest{
		After: q.Get("after"), Descending: desc, Limit: limit, SummarySearch: q.Get("summary_search")})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]conversationWire, 0, len(convs))
	for i := range convs {
		out = append(out, toConversationWire(&convs[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// pathConversation reads a conversation named by ID in the path (not
// "default": the default conversation has no record).
func (h *handler) pathConversation(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("conversation_id")
	if id == agent.ConversationDefault {
		writeError(w, http.StatusNotFound, "the default conversation is the agent itself: use /v1/agents/{agent_id} (or a conversation created with POST /v1/conversations)")
		return "", false
	}
	return pathID(w, r, "conversation_id", "conv")
}

func (h *handler) getConversation(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathConversation(w, r)
	if !ok {
		return
	}
	conv, err := h.svc.GetConversation(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toConversationWire(conv))
}

func (h *handler) updateConversation(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathConversation(w, r)
	if !ok {
		return
	}
	var req struct {
		Summary *string `json:"summary"`
		Model   *string `json:"model"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	conv, err := h.svc.UpdateConversation(r.Context(), agent.UpdateConversationRequest{ConversationID: id, Summary: req.Summary, Model: req.Model})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toConversationWire(conv))
}

func (h *handler) deleteConversation(w http.ResponseWriter, r *http.Request) {
	id, ok := h.pathConversation(w, r)
	if !ok {
		return
	}
	if err := h.svc.DeleteConversation(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

// forkConversation answers POST /v1/conversations/{id}/fork: a new
// conversation with the source's summary, model, isolated blocks and
// in-context messages.
func (h *handler) forkConversation(w http.ResponseWriter, r *http.Request) {
	t, ok := h.target(w, r, r.URL.Query().Get("agent_id"))
	if !ok {
		return
	}
	conv, err := h.svc.ForkConversation(r.Context(), t.AgentID, t.ConversationID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toConversationWire(conv))
}

func (h *handler) conversationMessages(w http.ResponseWriter, r *http.Request) {
	t, ok := h.target(w, r, r.URL.Query().Get("agent_id"))
	if !ok {
		return
	}
	h.listMessagesOf(w, r, t.AgentID, t.ConversationID)
}

// conversationSend answers POST /v1/conversations/{id}/messages: a send
// that streams unless "streaming": false.
func (h *handler) conversationSend(w http.ResponseWriter, r *http.Request) {
	var req lettaRequest
	if !decodeBody(w, r, &req) {
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
	send, ok := toSendRequest(w, &req)
	if !ok {
		return
	}
	send.ConversationID = t.ConversationID
	if req.Streaming == nil || *req.Streaming {
		h.stream(w, r, t.AgentID, send, &req)
		return
	}
	h.sendJSON(w, r, t.AgentID, send, &req)
}

// streamRequest is Letta's RetrieveStreamRequest.
type streamRequest struct {
	AgentID       string `json:"agent_id"`
	RunID         string `json:"run_id"`
	OTID          string `json:"otid"`
	StartingAfter int64  `json:"starting_after"`
	IncludePings  *bool  `json:"include_pings"`
}

func (req *streamRequest) pings() bool { return req.IncludePings == nil || *req.IncludePings }

// conversationStream resumes the stream of the conversation's run in
// progress (or its last one).
func (h *handler) conversationStream(w http.ResponseWriter, r *http.Request) {
	var req streamRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	t, ok := h.target(w, r, req.AgentID)
	if !ok {
		return
	}
	runID := req.RunID
	if runID == "" {
		var err error
		if runID, err = h.svc.LastRun(r.Context(), t.AgentID, t.ConversationID); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.follow(w, r, t.AgentID, runID, req.StartingAfter, req.pings())
}

// conversationCancel answers POST /v1/conversations/{id}/cancel: the
// conversation's run in progress is cancelled. The reply maps the run's
// ID to "cancelled" (empty when nothing was running).
func (h *handler) conversationCancel(w http.ResponseWriter, r *http.Request) {
	t, ok := h.target(w, r, r.URL.Query().Get("agent_id"))
	if !ok {
		return
	}
	run, err := h.svc.CancelConversation(r.Context(), t.AgentID, t.ConversationID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := map[string]any{}
	if run != nil {
		out[run.ID] = "cancelled"
	}
	writeJSON(w, http.StatusOK, out)
}

// conversationRecompile answers POST /v1/conversations/{id}/recompile:
// the system prompt the conversation's next step sends. Kelpie compiles
// it from the current blocks at every step, so there is nothing to
// rebuild and dry_run changes nothing.
func (h *handler) conversationRecompile(w http.ResponseWriter, r *http.Request) {
	t, ok := h.target(w, r, r.URL.Query().Get("agent_id"))
	if !ok {
		return
	}
	system, err := h.svc.CompileConversation(r.Context(), t.AgentID, t.ConversationID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, system)
}

// runStream answers POST /v1/runs/{run_id}/stream: the run's messages
// after starting_after (a seq_id), then live progress until it finishes.
func (h *handler) runStream(w http.ResponseWriter, r *http.Request) {
	runID, ok := pathID(w, r, "run_id", "run")
	if !ok {
		return
	}
	var req streamRequest
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	agentID, err := h.svc.RunAgent(r.Context(), runID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.follow(w, r, agentID, runID, req.StartingAfter, req.pings())
}

// follow streams a run's messages after the seq_id after (0, the
// default, and below: from the start), then its progress live.
func (h *handler) follow(w http.ResponseWriter, r *http.Request, agentID, runID string, after int64, pings bool) {
	if after <= 0 {
		after = -1 // from the start
	} else {
		after-- // seq_ids are log sequence numbers plus one (wireSeq)
	}
	h.streamWith(w, r, streamOptions{pings: pings, compaction: true}, func(onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
		return h.svc.FollowRun(r.Context(), agentID, runID, after, onStep)
	})
}

// resetMessages answers PATCH /v1/agents/{agent_id}/reset-messages: the
// message log is emptied (refused while a run is active).
func (h *handler) resetMessages(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req struct {
		AddDefaultInitialMessages bool `json:"add_default_initial_messages"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	ag, err := h.svc.ResetMessages(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}

// decodeOptionalBody is decodeBody for requests whose body may be empty.
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if len(body) == 0 || string(body) == "null" {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
