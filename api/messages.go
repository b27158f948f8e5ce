package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kelpie-ai/kelpie/agent"
)

// messagesPageDefault is the page size of GET …/messages (Letta's).
const messagesPageDefault = 100

// listMessages answers GET /v1/agents/{agent_id}/messages: the log as
// Letta messages, newest first by default, paged with before/after
// message-ID cursors.
func (h *handler) listMessages(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	limit, ok := listLimit(w, r, messagesPageDefault, agent.MessagesPageMax)
	if !ok {
		return
	}
	desc, ok := descending(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := agent.ListMessagesRequest{AfterID: q.Get("after"), BeforeID: q.Get("before"), Descending: desc, Limit: limit}
	if desc {
		// In newest-first order "after" a message means older than it.
		req.AfterID, req.BeforeID = req.BeforeID, req.AfterID
	}
	msgs, err := h.svc.ListMessages(r.Context(), id, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLettaMessages(msgs))
}

// messageCreate is Letta's MessageCreate: content is a string or a list of
// content parts, of which Kelpie reads the text parts.
type messageCreate struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	OTID    string          `json:"otid"`
}

func (m *messageCreate) text() (string, error) {
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or a list of content parts")
	}
	var texts []string
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part type %q is not supported (only text)", p.Type)
		}
		texts = append(texts, p.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// lettaRequest is Letta's LettaRequest (the fields Kelpie uses).
type lettaRequest struct {
	Messages []messageCreate `json:"messages"`
	Input    *string         `json:"input"`
	MaxSteps int             `json:"max_steps"`
}

// sendRequest reads a send's agent ID and LettaRequest body.
func (h *handler) sendRequest(w http.ResponseWriter, r *http.Request) (string, agent.SendRequest, bool) {
	var send agent.SendRequest
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return "", send, false
	}
	var req lettaRequest
	if !decodeBody(w, r, &req) {
		return "", send, false
	}
	send.MaxSteps = req.MaxSteps
	if req.Input != nil {
		send.Messages = append(send.Messages, agent.InputMessage{Role: "user", Content: *req.Input})
	}
	for i, m := range req.Messages {
		text, err := m.text()
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("messages[%d]: %v", i, err))
			return "", send, false
		}
		send.Messages = append(send.Messages, agent.InputMessage{Role: m.Role, Content: text, OTID: m.OTID})
	}
	return id, send, true
}

func (h *handler) sendMessage(w http.ResponseWriter, r *http.Request) {
	id, send, ok := h.sendRequest(w, r)
	if !ok {
		return
	}
	resp, err := h.svc.SendMessage(r.Context(), id, send)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLettaResponse(resp))
}
