package api

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
)

// Messages by ID, and message search across agents.
//
// GET /v1/messages/{message_id} finds a message through the global
// message index, which Kelpie writes with every message it logs. Messages
// logged by earlier versions of Kelpie have no entry there and answer 404
// (they are still listed by GET /v1/agents/{agent_id}/messages).
//
// The two searches read committed storage without activating any agent
// (agent.SearchStoredMessages). search_mode is accepted but Kelpie ranks
// by text only — it keeps no embeddings of messages — so "vector",
// "fts" and "hybrid" all rank by the number of query terms a message
// contains, newest first on ties. A search across agents is bounded (see
// agent.MessageSearchAgentsMax and the limits after it); a response that
// a bound cut short carries the header X-Kelpie-Partial: true.

// partialHeader flags a response that a bound cut short.
const partialHeader = "X-Kelpie-Partial"

// searchModes are the values of search_mode.
var searchModes = []string{"vector", "fts", "hybrid"}

// rrfK is the constant of reciprocal rank fusion: a result at rank r of
// Kelpie's one ranking scores 1/(rrfK+r).
const rrfK = 60

func (h *handler) messageRoutes() {
	h.route("GET /v1/messages/{message_id}", h.getMessage)
	h.route("POST /v1/messages/search", h.searchAllMessages)
	h.route("POST /v1/agents/messages/search", h.searchMessages)
}

// getMessage answers GET /v1/messages/{message_id}: the log entry as the
// Letta messages it shows as (a send_message call's return shows as
// none, as in the agent's message list).
func (h *handler) getMessage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "message_id", "message")
	if !ok {
		return
	}
	m, err := h.svc.GetMessage(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLettaMessages([]agent.Message{m.Message}))
}

// messageSearchBody holds the fields SearchAllMessagesRequest and
// MessageSearchRequest share, as sent (nil: absent or null).
type messageSearchBody struct {
	Query          *string   `json:"query"`
	SearchMode     *string   `json:"search_mode"`
	AgentID        *string   `json:"agent_id"`
	ConversationID *string   `json:"conversation_id"`
	Limit          *int      `json:"limit"`
	StartDate      *string   `json:"start_date"`
	EndDate        *string   `json:"end_date"`
	Roles          *[]string `json:"roles"`
	// ProjectID and TemplateID are accepted and ignored: Kelpie has no
	// projects or templates.
	ProjectID  *string `json:"project_id"`
	TemplateID *string `json:"template_id"`
}

// toSearch validates body into a search request, answering 422 (located
// at the field) and returning false when it cannot.
func (b *messageSearchBody) toSearch(w http.ResponseWriter) (agent.MessageSearchRequest, bool) {
	var req agent.MessageSearchRequest
	if b.Query != nil {
		req.Query = *b.Query
	}
	if b.SearchMode != nil && !slices.Contains(searchModes, *b.SearchMode) {
		writeFieldError(w, []any{"body", "search_mode"}, literalMsg(searchModes), "literal_error")
		return req, false
	}
	if b.AgentID != nil {
		if !validID(*b.AgentID, "agent") {
			writeFieldError(w, []any{"body", "agent_id"}, fmt.Sprintf("agent_id %q is not a valid agent ID (expected agent-<uuid4>)", *b.AgentID), "value_error")
			return req, false
		}
		req.AgentID = *b.AgentID
	}
	if b.ConversationID != nil {
		c := *b.ConversationID
		if c != agent.ConversationDefault && !validID(c, "conv") {
			writeFieldError(w, []any{"body", "conversation_id"}, fmt.Sprintf("conversation_id %q is not a valid conversation ID (expected conv-<uuid4> or \"default\")", c), "value_error")
			return req, false
		}
		if c == agent.ConversationDefault && req.AgentID == "" {
			writeFieldError(w, []any{"body", "conversation_id"}, `conversation_id "default" names an agent's default conversation: give its agent_id too`, "value_error")
			return req, false
		}
		req.ConversationID = c
	}
	req.Limit = agent.DefaultMessageSearchLimit
	if b.Limit != nil {
		if *b.Limit < 1 || *b.Limit > agent.MessageSearchLimitMax {
			writeFieldError(w, []any{"body", "limit"}, fmt.Sprintf("Input should be between 1 and %d", agent.MessageSearchLimitMax), "value_error")
			return req, false
		}
		req.Limit = *b.Limit
	}
	for _, d := range []struct {
		name string
		raw  *string
		dst  **time.Time
	}{{"start_date", b.StartDate, &req.After}, {"end_date", b.EndDate, &req.Until}} {
		if d.raw == nil {
			continue
		}
		t, err := agent.ParseDatetime(*d.raw)
		if err != nil {
			writeFieldError(w, []any{"body", d.name}, err.Error(), "datetime_parsing")
			return req, false
		}
		*d.dst = &t
	}
	if b.Roles != nil {
		for i, role := range *b.Roles {
			if !slices.Contains(agent.MessageRoles, role) {
				writeFieldError(w, []any{"body", "roles", i}, literalMsg(agent.MessageRoles), "enum")
				return req, false
			}
		}
		req.Roles = *b.Roles
	}
	return req, true
}

// search decodes the body, runs the search and flags a partial answer.
// It returns the request as run, and its response.
func (h *handler) search(w http.ResponseWriter, r *http.Request, needQuery, textOnly bool) (agent.MessageSearchRequest, *agent.MessageSearchResponse, bool) {
	var body messageSearchBody
	if !decodeBody(w, r, &body) {
		return agent.MessageSearchRequest{}, nil, false
	}
	if needQuery && body.Query == nil {
		writeFieldError(w, []any{"body", "query"}, "Field required", "missing")
		return agent.MessageSearchRequest{}, nil, false
	}
	req, ok := body.toSearch(w)
	if !ok {
		return req, nil, false
	}
	req.TextOnly = textOnly
	resp, err := h.svc.SearchMessages(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return req, nil, false
	}
	if resp.Partial {
		w.Header().Set(partialHeader, "true")
	}
	return req, resp, true
}

// messageListResultWire is Letta's SystemMessageListResult,
// UserMessageListResult, ReasoningMessageListResult or
// AssistantMessageListResult, by message_type.
type messageListResultWire struct {
	MessageType    string  `json:"message_type"`
	Content        *string `json:"content,omitempty"`
	Reasoning      *string `json:"reasoning,omitempty"`
	MessageID      string  `json:"message_id"`
	AgentID        *string `json:"agent_id"`
	ConversationID *string `json:"conversation_id"`
	CreatedAt      string  `json:"created_at"`
}

// searchAllMessages answers POST /v1/messages/search
// (SearchAllMessagesRequest): the messages found, as the text messages
// Letta's list results show — user, system, reasoning and assistant
// messages (tool calls and returns are not searched). A log entry may show
// as several (an assistant's reasoning and its send_message); the answer
// holds at most limit of them.
func (h *handler) searchAllMessages(w http.ResponseWriter, r *http.Request) {
	req, resp, ok := h.search(w, r, true, true)
	if !ok {
		return
	}
	out := make([]messageListResultWire, 0, len(resp.Results))
	for _, res := range resp.Results {
		for _, lm := range toLettaMessages([]agent.Message{res.Message}) {
			item := messageListResultWire{MessageType: lm.MessageType, MessageID: res.Message.ID,
				AgentID: optional(res.AgentID), ConversationID: optional(res.Message.ConversationID), CreatedAt: lm.Date}
			switch lm.MessageType {
			case "user_message", "system_message", "assistant_message":
				item.Content = lm.Content
			case "reasoning_message":
				item.Reasoning = lm.Reasoning
			default:
				continue // a tool call beside the text searched
			}
			if len(out) < req.Limit {
				out = append(out, item)
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// messageSearchResultWire is Letta's MessageSearchResult.
type messageSearchResultWire struct {
	EmbeddedText string         `json:"embedded_text"`
	Message      contextMessage `json:"message"`
	FTSRank      *int           `json:"fts_rank"`
	VectorRank   *int           `json:"vector_rank"`
	RRFScore     float64        `json:"rrf_score"`
}

// searchMessages answers POST /v1/agents/messages/search
// (MessageSearchRequest): the log entries found, best first, each as
// Letta's Message with its searchable text. fts_rank is the entry's
// 1-based rank when the query had searchable terms (null when it listed
// the newest messages); vector_rank is always null; rrf_score is the
// reciprocal-rank-fusion score of Kelpie's one ranking, 1/(60+rank).
func (h *handler) searchMessages(w http.ResponseWriter, r *http.Request) {
	_, resp, ok := h.search(w, r, false, false)
	if !ok {
		return
	}
	out := make([]messageSearchResultWire, 0, len(resp.Results))
	for i := range resp.Results {
		res := &resp.Results[i]
		rank := i + 1
		item := messageSearchResultWire{EmbeddedText: res.Text, Message: toContextMessage(res.AgentID, &res.Message),
			RRFScore: 1 / float64(rrfK+rank)}
		if resp.Ranked {
			item.FTSRank = &rank
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}
