package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
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
	conv := r.URL.Query().Get("conversation_id")
	if conv == agent.ConversationDefault {
		conv = ""
	}
	if conv != "" {
		if !validID(conv, "conv") {
			writeQueryError(w, "conversation_id", fmt.Sprintf("conversation_id %q is not a valid conversation ID (expected conv-<uuid4> or \"default\")", conv))
			return
		}
		owner, err := h.svc.ConversationAgent(r.Context(), conv)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if owner != id {
			writeError(w, http.StatusNotFound, fmt.Sprintf("conversation %s does not belong to agent %s", conv, id))
			return
		}
	}
	h.listMessagesOf(w, r, id, conv)
}

// listMessagesOf answers a list of one conversation's messages ("" for
// the agent's default one).
func (h *handler) listMessagesOf(w http.ResponseWriter, r *http.Request, id, conversationID string) {
	limit, ok := listLimit(w, r, messagesPageDefault, agent.MessagesPageMax)
	if !ok {
		return
	}
	desc, ok := descending(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	// include_return_message_types keeps only the Letta message types it
	// names.
	types := q["include_return_message_types"]
	req := agent.ListMessagesRequest{ConversationID: conversationID, AfterID: q.Get("after"), BeforeID: q.Get("before"), Descending: desc, Limit: limit}
	if desc {
		// In newest-first order "after" a message means older than it.
		req.AfterID, req.BeforeID = req.BeforeID, req.AfterID
	}
	// limit counts the Letta messages shown, not log entries: an entry can
	// show as several messages (reasoning and a tool call) or as none (a
	// send_message return), so read entries until the page is full. An
	// entry is never split across pages (its ID is the cursor), so a page
	// can exceed limit by the rest of one entry.
	out := []lettaMessage{}
	for {
		msgs, err := h.svc.ListMessages(r.Context(), id, req)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, m := range msgs {
			shown := toLettaMessages([]agent.Message{m})
			if len(types) > 0 {
				shown = slices.DeleteFunc(shown, func(lm lettaMessage) bool { return !slices.Contains(types, lm.MessageType) })
			}
			if len(out) > 0 && len(out)+len(shown) > limit {
				writeJSON(w, http.StatusOK, out)
				return
			}
			out = append(out, shown...)
			if desc {
				req.BeforeID = m.ID
			} else {
				req.AfterID = m.ID
			}
		}
		if len(msgs) < req.Limit || len(out) >= limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// messageCreate is Letta's MessageCreate: content is a string or a list of
// content parts, of which Kelpie reads the text parts.
type messageCreate struct {
	// Type is "message" (default), "approval" (ApprovalCreate) or
	// "tool_return" (ToolReturnCreate).
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	OTID    string          `json:"otid"`
	// ApprovalCreate:
	Approvals         []approvalItem `json:"approvals"`
	Approve           *bool          `json:"approve"`
	ApprovalRequestID string         `json:"approval_request_id"`
	Reason            string         `json:"reason"`
	// ToolReturnCreate:
	ToolReturns []approvalItem `json:"tool_returns"`
}

// approvalItem is an ApprovalReturn (type "approval") or a ToolReturn
// (type "tool", or any item carrying tool_return).
type approvalItem struct {
	Type       string          `json:"type"`
	ToolCallID string          `json:"tool_call_id"`
	Approve    bool            `json:"approve"`
	Reason     string          `json:"reason"`
	ToolReturn json.RawMessage `json:"tool_return"`
	Status     string          `json:"status"`
}

func (a approvalItem) approval() (agent.Approval, error) {
	out := agent.Approval{ToolCallID: a.ToolCallID, Approve: a.Approve, Reason: a.Reason, Status: a.Status}
	if a.Type == "tool" || len(a.ToolReturn) > 0 {
		var text string
		if err := json.Unmarshal(a.ToolReturn, &text); err != nil {
			var parts []struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal(a.ToolReturn, &parts); err != nil {
				return out, fmt.Errorf("tool_return must be a string or a list of text parts")
			}
			for _, p := range parts {
				text += p.Text
			}
		}
		out.Return, out.Approve = &text, true
	}
	if a.ToolCallID == "" {
		return out, fmt.Errorf("tool_call_id is required")
	}
	return out, nil
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

// lettaRequest is Letta's LettaRequest and ConversationMessageRequest
// (the fields Kelpie uses).
type lettaRequest struct {
	ClientTools []llm.Tool `json:"client_tools"`
	// ClientSkills are listed in the run's system prompt.
	ClientSkills []agent.ClientSkill `json:"client_skills"`
	Messages     []messageCreate     `json:"messages"`
	Input        *string             `json:"input"`
	MaxSteps     int                 `json:"max_steps"`
	Streaming    *bool               `json:"streaming"`
	StreamTokens bool                `json:"stream_tokens"`
	// Background runs are listed as such; every run goes on after its
	// client disconnects, and can be resumed (runs/{id}/stream).
	Background bool `json:"background"`
	// IncludePings asks for keep-alive ping events on an idle stream
	// (Letta's default: true).
	IncludePings *bool `json:"include_pings"`
	// OverrideModel is a model handle for this request's run instead of
	// the agent's (or the conversation's).
	OverrideModel *string `json:"override_model"`
	// AgentID names the agent of the "default" conversation in a
	// conversation send.
	AgentID *string `json:"agent_id"`
	// IncludeCompactionMessages shows a compaction during the run as a
	// summary_message and an event_message; otherwise they are left out
	// of the response (message lists show them either way).
	IncludeCompactionMessages bool `json:"include_compaction_messages"`
}

// pings reports whether a stream sends keep-alive pings.
func (req *lettaRequest) pings() bool { return req.IncludePings == nil || *req.IncludePings }

// sendRequest reads a send's agent ID and LettaRequest body.
func (h *handler) sendRequest(w http.ResponseWriter, r *http.Request) (string, agent.SendRequest, bool) {
	id, send, _, ok := h.sendRequestFull(w, r)
	return id, send, ok
}

// sendRequestFull is sendRequest that also returns the raw request.
func (h *handler) sendRequestFull(w http.ResponseWriter, r *http.Request) (string, agent.SendRequest, lettaRequest, bool) {
	var send agent.SendRequest
	var req lettaRequest
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return "", send, req, false
	}
	if !decodeBody(w, r, &req) {
		return "", send, req, false
	}
	send, ok = toSendRequest(w, &req)
	return id, send, req, ok
}

// toSendRequest reads a LettaRequest into the agent's SendRequest,
// answering 422 for what it cannot read.
func toSendRequest(w http.ResponseWriter, req *lettaRequest) (agent.SendRequest, bool) {
	var send agent.SendRequest
	send.MaxSteps, send.ClientTools, send.Background, send.ClientSkills = req.MaxSteps, req.ClientTools, req.Background, req.ClientSkills
	if req.OverrideModel != nil {
		send.OverrideModel = *req.OverrideModel
	}
	if req.Input != nil {
		send.Messages = append(send.Messages, agent.InputMessage{Role: "user", Content: *req.Input})
	}
	for i, m := range req.Messages {
		switch m.Type {
		case "approval", "tool_return":
			items := append(m.Approvals, m.ToolReturns...)
			if len(items) == 0 && m.Approve != nil {
				// The deprecated form: one answer for every pending call.
				send.Approvals = append(send.Approvals, agent.Approval{Approve: *m.Approve, Reason: m.Reason})
			}
			for j, it := range items {
				a, err := it.approval()
				if err != nil {
					writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("messages[%d].approvals[%d]: %v", i, j, err))
					return send, false
				}
				send.Approvals = append(send.Approvals, a)
			}
			continue
		case "", "message":
		default:
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("messages[%d]: unknown type %q", i, m.Type))
			return send, false
		}
		text, err := m.text()
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("messages[%d]: %v", i, err))
			return send, false
		}
		send.Messages = append(send.Messages, agent.InputMessage{Role: m.Role, Content: text, OTID: m.OTID})
	}
	return send, true
}

func (h *handler) sendMessage(w http.ResponseWriter, r *http.Request) {
	id, send, req, ok := h.sendRequestFull(w, r)
	if !ok {
		return
	}
	if req.Streaming != nil && *req.Streaming {
		h.stream(w, r, id, send, &req)
		return
	}
	h.sendJSON(w, r, id, send, &req)
}

// sendJSON runs a send and answers with the whole LettaResponse.
func (h *handler) sendJSON(w http.ResponseWriter, r *http.Request, id string, send agent.SendRequest, req *lettaRequest) {
	resp, err := h.svc.SendMessage(r.Context(), id, send)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp.Messages = compactionShown(resp.Messages, req.IncludeCompactionMessages)
	writeJSON(w, http.StatusOK, toLettaResponse(resp))
}

// compactionShown returns msgs without a compaction's summary and event
// messages, unless include.
func compactionShown(msgs []agent.Message, include bool) []agent.Message {
	if include {
		return msgs
	}
	return slices.DeleteFunc(slices.Clone(msgs), func(m agent.Message) bool {
		return m.Role == agent.RoleSummary || m.Role == agent.RoleEvent
	})
}

// streamMessage answers POST …/messages/stream.
func (h *handler) streamMessage(w http.ResponseWriter, r *http.Request) {
	id, send, req, ok := h.sendRequestFull(w, r)
	if !ok {
		return
	}
	h.stream(w, r, id, send, &req)
}

// stream runs a send and streams it as server-sent events: each step's
// messages as soon as they are committed; with tokens, the model's text as
// it arrives (as assistant_message chunks sharing one ID per step, the
// committed copy then not repeated); then the stop reason, the usage, and
// [DONE]. A failure before the first event is an ordinary JSON error; after
// it, an `event: error`.
func (h *handler) stream(w http.ResponseWriter, r *http.Request, id string, send agent.SendRequest, req *lettaRequest) {
	h.streamWith(w, r, streamOptions{tokens: req.StreamTokens, pings: req.pings(), compaction: req.IncludeCompactionMessages}, func(onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
		return h.svc.Stream(r.Context(), id, send, onStep)
	})
}

// streamOptions shape a stream: token chunks, keep-alive pings, and a
// compaction's messages.
type streamOptions struct {
	tokens     bool
	pings      bool
	compaction bool
}

// streamWith streams what run reports to onStep as server-sent events.
func (h *handler) streamWith(w http.ResponseWriter, r *http.Request, opts streamOptions, run func(onStep func(agent.RunEvent) error) (*agent.SendResponse, error)) {
	tokens := opts.tokens
	sse := newSSEWriter(w)
	if opts.pings {
		defer sse.keepAlive(pingInterval)()
	}
	streamed := map[int]string{} // step -> provisional ID of its streamed text
	resp, err := run(func(ev agent.RunEvent) error {
		if ev.Delta != nil {
			if !tokens || ev.Delta.Content == "" {
				return nil
			}
			mid, ok := streamed[ev.Run.Steps]
			if !ok {
				mid = streamChunkID(ev.Run.ID, ev.Run.Steps)
				streamed[ev.Run.Steps] = mid
			}
			return sse.data(lettaMessage{ID: mid, Date: timeString(time.Now()), MessageType: "assistant_message",
				RunID: optional(ev.Run.ID), Content: ptr(ev.Delta.Content)})
		}
		for _, m := range toLettaMessages(compactionShown(ev.Messages, opts.compaction)) {
			if tokens && m.MessageType == "assistant_message" && len(streamed) > 0 && m.ToolCall == nil && textStreamed(ev, m.ID) {
				continue // its text went out as chunks
			}
			if err := sse.data(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !sse.started {
			h.fail(w, r, err)
			return
		}
		status, detail := h.classify(r, err)
		sse.errorEvent(map[string]any{"message_type": "error_message", "error_type": "internal_error", "status": status, "detail": detail, "message": detail})
		sse.done()
		return
	}
	sse.data(stopReasonWire{MessageType: "stop_reason", StopReason: resp.StopReason})
	sse.data(toLettaResponse(resp).Usage)
	sse.done()
}

// textStreamed reports whether the committed assistant message id of this
// event carried text the model streamed (plain text, not a tool call).
func textStreamed(ev agent.RunEvent, id string) bool {
	for _, m := range ev.Messages {
		if m.ID == id {
			return m.Role == "assistant" && len(m.ToolCalls) == 0 && m.Content != ""
		}
	}
	return false
}
