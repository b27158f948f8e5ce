package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/kelpie-ai/kelpie/agent"
)

// conversationRoutes registers the agent-direct conversation endpoints
// (conversation_id "default" with an agent_id, as the letta-code CLI uses
// them) and stream resumption.
func (h *handler) conversationRoutes() {
	h.route("GET /v1/conversations/{conversation_id}/messages", h.conversationMessages)
	h.route("POST /v1/conversations/{conversation_id}/messages", h.conversationSend)
	h.route("POST /v1/conversations/{conversation_id}/stream", h.conversationStream)
	h.route("POST /v1/runs/{run_id}/stream", h.runStream)
	h.route("PATCH /v1/agents/{agent_id}/reset-messages", h.resetMessages)
}

// defaultConversation checks that conversation_id is "default" and returns
// the agent ID given with it; Kelpie has one conversation per agent.
func defaultConversation(w http.ResponseWriter, r *http.Request, agentID string) (string, bool) {
	if c := r.PathValue("conversation_id"); c != "default" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("conversation %q not found: Kelpie serves each agent's default conversation (conversation_id \"default\" with agent_id)", c))
		return "", false
	}
	if !idPattern.MatchString(agentID) {
		writeError(w, http.StatusUnprocessableEntity, "agent_id (an agent-<uuid4>) is required with the default conversation")
		return "", false
	}
	return agentID, true
}

func (h *handler) conversationMessages(w http.ResponseWriter, r *http.Request) {
	id, ok := defaultConversation(w, r, r.URL.Query().Get("agent_id"))
	if !ok {
		return
	}
	r.SetPathValue("agent_id", id)
	h.listMessages(w, r)
}

// conversationSend answers POST /v1/conversations/default/messages: a send
// that streams unless "streaming": false.
func (h *handler) conversationSend(w http.ResponseWriter, r *http.Request) {
	var peek struct {
		AgentID string `json:"agent_id"`
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if err := json.Unmarshal(body, &peek); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
		return
	}
	id, ok := defaultConversation(w, r, peek.AgentID)
	if !ok {
		return
	}
	r.SetPathValue("agent_id", id)
	restoreBody(r, body)
	_, send, req, ok := h.sendRequestFull(w, r)
	if !ok {
		return
	}
	if req.Streaming == nil || *req.Streaming {
		h.stream(w, r, id, send, req.StreamTokens)
		return
	}
	h.sendJSON(w, r, id, send)
}

// streamRequest is Letta's RetrieveStreamRequest.
type streamRequest struct {
	AgentID       string `json:"agent_id"`
	RunID         string `json:"run_id"`
	StartingAfter int64  `json:"starting_after"`
}

// conversationStream resumes the stream of the agent's active (or last)
// run.
func (h *handler) conversationStream(w http.ResponseWriter, r *http.Request) {
	var req streamRequest
	if !decodeBody(w, r, &req) {
		return
	}
	id, ok := defaultConversation(w, r, req.AgentID)
	if !ok {
		return
	}
	runID := req.RunID
	if runID == "" {
		runs, err := h.svc.ListRuns(r.Context(), id, 1)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if len(runs) == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("agent %s has no run to stream", id))
			return
		}
		runID = runs[0].ID
	}
	h.follow(w, r, id, runID, req.StartingAfter)
}

// runStream answers POST /v1/runs/{run_id}/stream: the run's messages
// after starting_after (a seq_id), then live progress until it finishes.
func (h *handler) runStream(w http.ResponseWriter, r *http.Request) {
	runID, ok := pathID(w, r, "run_id", "run")
	if !ok {
		return
	}
	var req streamRequest
	if !decodeBody(w, r, &req) {
		return
	}
	agentID, err := h.svc.RunAgent(r.Context(), runID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.follow(w, r, agentID, runID, req.StartingAfter)
}

// follow streams a run's messages after the seq_id after (0, the
// default, and below: from the start), then its progress live.
func (h *handler) follow(w http.ResponseWriter, r *http.Request, agentID, runID string, after int64) {
	if after <= 0 {
		after = -1 // from the start
	} else {
		after-- // seq_ids are log sequence numbers plus one (wireSeq)
	}
	h.streamWith(w, r, false, func(onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
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
	writeJSON(w, http.StatusOK, toAgentWire(ag))
}
