package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// sentMessage is a Letta message as a send returns it.
type sentMessage struct {
	ID          string  `json:"id"`
	MessageType string  `json:"message_type"`
	Content     *string `json:"content"`
}

// sendTurn sends text to path (an agent's or a conversation's messages)
// and returns the messages the turn produced.
func sendTurn(t *testing.T, srv *httptest.Server, path, text string) []sentMessage {
	t.Helper()
	body := ok(t, srv, "POST", path, map[string]any{"streaming": false, "messages": []map[string]any{{"role": "user", "content": text}}})
	var resp struct {
		Messages []sentMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Messages) == 0 {
		t.Fatalf("send %q to %s: %v %s", text, path, err, body)
	}
	return resp.Messages
}

// createTalker creates an agent that answers with send_message.
func createTalker(t *testing.T, srv *httptest.Server, name string) agentJSON {
	t.Helper()
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": name, "agent_type": "memgpt_v2_agent", "model": "openai/gpt-4o-mini"})
	conform(t, body, "AgentState", false)
	return decodeAs[agentJSON](t, body)
}

// A logged message is found by its ID alone, in the default conversation
// and in others, until its agent, conversation or log goes.
func TestGetMessage(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createTalker(t, srv, "lookup")
	sent := sendTurn(t, srv, "/v1/agents/"+a.ID+"/messages", "remember the lighthouse")
	byType := map[string]sentMessage{}
	for _, m := range sent {
		byType[m.MessageType] = m
	}
	for _, typ := range []string{"user_message", "assistant_message"} {
		m, found := byType[typ]
		if !found {
			t.Fatalf("the turn produced no %s: %+v", typ, sent)
		}
		body := ok(t, srv, "GET", "/v1/messages/"+m.ID, nil)
		conform(t, body, "LettaMessageUnion", true)
		got := decodeAs[[]sentMessage](t, body)
		if len(got) != 1 || got[0].ID != m.ID || got[0].MessageType != typ || got[0].Content == nil || *got[0].Content != *m.Content {
			t.Fatalf("GET /v1/messages/%s = %s; want the %s %q", m.ID, body, typ, *m.Content)
		}
	}

	// A conversation's message.
	conv := decodeAs[conversationJSON](t, ok(t, srv, "POST", "/v1/conversations?agent_id="+a.ID, nil))
	inConv := sendTurn(t, srv, "/v1/conversations/"+conv.ID+"/messages", "in the side conversation")
	body := ok(t, srv, "GET", "/v1/messages/"+inConv[0].ID+"/", nil)
	conform(t, body, "LettaMessageUnion", true)
	if !strings.Contains(string(body), "in the side conversation") {
		t.Fatalf("conversation message = %s", body)
	}

	fails(t, srv, "GET", "/v1/messages/message-1", nil, http.StatusUnprocessableEntity, "not a valid message ID")
	fails(t, srv, "GET", "/v1/messages/message-00000000-0000-4000-8000-000000000000", nil, http.StatusNotFound, "message-00000000-0000-4000-8000-000000000000")

	// Deleting the conversation, resetting the log or deleting the agent
	// leaves the index entries behind; the lookup then answers 404.
	ok(t, srv, "DELETE", "/v1/conversations/"+conv.ID, nil)
	fails(t, srv, "GET", "/v1/messages/"+inConv[0].ID, nil, http.StatusNotFound, "deleted")
	ok(t, srv, "PATCH", "/v1/agents/"+a.ID+"/reset-messages", map[string]any{})
	fails(t, srv, "GET", "/v1/messages/"+byType["user_message"].ID, nil, http.StatusNotFound, "reset")
	b := createTalker(t, srv, "doomed")
	gone := sendTurn(t, srv, "/v1/agents/"+b.ID+"/messages", "soon gone")
	ok(t, srv, "GET", "/v1/messages/"+gone[0].ID, nil)
	ok(t, srv, "DELETE", "/v1/agents/"+b.ID, nil)
	fails(t, srv, "GET", "/v1/messages/"+gone[0].ID, nil, http.StatusNotFound, "deleted")
}

// searchResultJSON is a MessageSearchResult.
type searchResultJSON struct {
	EmbeddedText string `json:"embedded_text"`
	Message      struct {
		ID             string  `json:"id"`
		AgentID        string  `json:"agent_id"`
		Role           string  `json:"role"`
		ConversationID *string `json:"conversation_id"`
		CreatedAt      string  `json:"created_at"`
	} `json:"message"`
	FTSRank  *int    `json:"fts_rank"`
	RRFScore float64 `json:"rrf_score"`
}

// searchAgents runs POST /v1/agents/messages/search and checks the
// answer's shape.
func searchAgents(t *testing.T, srv *httptest.Server, body map[string]any) []searchResultJSON {
	t.Helper()
	out := ok(t, srv, "POST", "/v1/agents/messages/search", body)
	conform(t, out, "MessageSearchResult", true)
	return decodeAs[[]searchResultJSON](t, out)
}

func TestSearchMessages(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a, b := createTalker(t, srv, "searcher-a"), createTalker(t, srv, "searcher-b")
	sendTurn(t, srv, "/v1/agents/"+a.ID+"/messages", "the quick brown fox")
	sendTurn(t, srv, "/v1/agents/"+a.ID+"/messages", "lazy dogs sleep")
	sendTurn(t, srv, "/v1/agents/"+b.ID+"/messages", "Quick cats")
	conv := decodeAs[conversationJSON](t, ok(t, srv, "POST", "/v1/conversations?agent_id="+b.ID, nil))
	sendTurn(t, srv, "/v1/conversations/"+conv.ID+"/messages", "a fox in the conversation")

	// Across agents: both words beat one word; ties go newest first.
	res := searchAgents(t, srv, map[string]any{"query": "QUICK fox"})
	if len(res) < 4 {
		t.Fatalf("quick fox: %d results %+v", len(res), res)
	}
	if !strings.Contains(res[0].EmbeddedText, "quick brown fox") || !strings.Contains(res[1].EmbeddedText, "quick brown fox") ||
		res[0].Message.Role != "assistant" || res[1].Message.Role != "user" || res[0].Message.AgentID != a.ID {
		t.Fatalf("best matches are not agent A's fox messages, newest first: %+v", res[:2])
	}
	for i, r := range res {
		if r.FTSRank == nil || *r.FTSRank != i+1 || r.RRFScore != 1/float64(60+i+1) {
			t.Fatalf("result %d ranks %v, score %v", i, r.FTSRank, r.RRFScore)
		}
		if strings.Contains(r.EmbeddedText, "lazy") {
			t.Fatalf("a message without the query's words was found: %+v", r)
		}
	}
	agents := map[string]bool{}
	for _, r := range res {
		agents[r.Message.AgentID] = true
	}
	if !agents[a.ID] || !agents[b.ID] {
		t.Fatalf("a search across agents found only %v", agents)
	}

	// One agent; one conversation; the default one.
	for _, r := range searchAgents(t, srv, map[string]any{"query": "fox quick", "agent_id": b.ID}) {
		if r.Message.AgentID != b.ID {
			t.Fatalf("agent B's search found %+v", r)
		}
	}
	inConv := searchAgents(t, srv, map[string]any{"query": "fox", "conversation_id": conv.ID})
	if len(inConv) != 2 || inConv[0].Message.ConversationID == nil || *inConv[0].Message.ConversationID != conv.ID {
		t.Fatalf("conversation search = %+v", inConv)
	}
	if got := searchAgents(t, srv, map[string]any{"query": "fox", "agent_id": b.ID, "conversation_id": "default"}); len(got) != 0 {
		t.Fatalf("B's default conversation has no fox, found %+v", got)
	}

	// Roles, limit and dates filter.
	users := searchAgents(t, srv, map[string]any{"query": "quick fox", "roles": []string{"user"}, "search_mode": "vector"})
	for _, r := range users {
		if r.Message.Role != "user" {
			t.Fatalf("roles [user] found %+v", r)
		}
	}
	if len(users) != 3 {
		t.Fatalf("user messages with quick or fox: %d, want 3", len(users))
	}
	if got := searchAgents(t, srv, map[string]any{"query": "fox", "limit": 1}); len(got) != 1 {
		t.Fatalf("limit 1: %d results", len(got))
	}
	// "Quick cats" was logged after agent A's fox and before the
	// conversation's.
	var pivot, later searchResultJSON
	for _, r := range users {
		switch r.EmbeddedText {
		case "Quick cats":
			pivot = r
		case "a fox in the conversation":
			later = r
		}
	}
	after := searchAgents(t, srv, map[string]any{"query": "quick fox", "roles": []string{"user"}, "start_date": pivot.Message.CreatedAt})
	until := searchAgents(t, srv, map[string]any{"query": "quick fox", "roles": []string{"user"}, "end_date": pivot.Message.CreatedAt})
	if len(after) != 1 || after[0].Message.ID != later.Message.ID || len(until) != 2 || until[1].Message.ID != pivot.Message.ID {
		t.Fatalf("start_date is exclusive and end_date inclusive: after %+v, until %+v", after, until)
	}

	// No searchable word: the newest messages, unranked.
	newest := searchAgents(t, srv, map[string]any{"limit": 2})
	if len(newest) != 2 || newest[0].FTSRank != nil || !strings.Contains(newest[1].EmbeddedText, "fox in the conversation") {
		t.Fatalf("an empty query lists the newest messages: %+v", newest)
	}
	if got := searchAgents(t, srv, map[string]any{"query": "zebra"}); len(got) != 0 {
		t.Fatalf("zebra: %+v", got)
	}

	for _, tc := range []struct {
		body   map[string]any
		status int
		want   string
	}{
		{map[string]any{"query": "x", "limit": 0}, 422, "between 1 and 100"},
		{map[string]any{"query": "x", "limit": 101}, 422, "between 1 and 100"},
		{map[string]any{"query": "x", "roles": []string{"robot"}}, 422, "'assistant'"},
		{map[string]any{"query": "x", "search_mode": "semantic"}, 422, "'hybrid'"},
		{map[string]any{"query": "x", "agent_id": "agent-7"}, 422, "not a valid agent ID"},
		{map[string]any{"query": "x", "conversation_id": "conv-7"}, 422, "not a valid conversation ID"},
		{map[string]any{"query": "x", "conversation_id": "default"}, 422, "agent_id"},
		{map[string]any{"query": "x", "start_date": "yesterday"}, 422, ""},
		{map[string]any{"query": "x", "agent_id": "agent-00000000-0000-4000-8000-000000000000"}, 404, "agent-00000000-0000-4000-8000-000000000000"},
		{map[string]any{"query": "x", "conversation_id": "conv-00000000-0000-4000-8000-000000000000"}, 404, "conv-00000000-0000-4000-8000-000000000000"},
		{map[string]any{"query": "x", "agent_id": a.ID, "conversation_id": conv.ID}, 404, "does not belong to agent"},
	} {
		fails(t, srv, "POST", "/v1/agents/messages/search", tc.body, tc.status, tc.want)
	}
}

// listResultSchemas are the schemas of POST /v1/messages/search's items.
var listResultSchemas = map[string]string{
	"user_message": "UserMessageListResult", "assistant_message": "AssistantMessageListResult",
	"system_message": "SystemMessageListResult", "reasoning_message": "ReasoningMessageListResult",
}

// lookupModel answers "lookup X" by calling conversation_search for X,
// then says "looked"; anything else it echoes with send_message.
func lookupModel() *llmtest.Script {
	return &llmtest.Script{Reply: func(ctx context.Context, req llm.Request) (*llm.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == llm.RoleTool {
			return llmtest.Text("looked"), nil
		}
		if q, found := strings.CutPrefix(last.Content, "lookup "); found {
			return llmtest.Call("conversation_search", map[string]any{"query": q}), nil
		}
		return llmtest.Call("send_message", map[string]any{"message": "echo: " + last.Content}), nil
	}}
}

// POST /v1/messages/search finds text messages as Letta's list results;
// tool calls and returns are not searched.
func TestSearchAllMessages(t *testing.T) {
	srv := server(t, lookupModel())
	a := createTalker(t, srv, "list-results")
	sendTurn(t, srv, "/v1/agents/"+a.ID+"/messages", "where is the lighthouse")
	sendTurn(t, srv, "/v1/agents/"+a.ID+"/messages", "lookup lighthouse")

	out := ok(t, srv, "POST", "/v1/messages/search", map[string]any{"query": "lighthouse", "agent_id": a.ID, "search_mode": "fts"})
	var items []map[string]any
	if err := json.Unmarshal(out, &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("lighthouse: %s; want the two user messages and the echo", out)
	}
	for i, item := range items {
		typ, _ := item["message_type"].(string)
		ref, known := listResultSchemas[typ]
		if !known {
			t.Fatalf("item %d has message_type %q: %s", i, typ, out)
		}
		b, _ := json.Marshal(item)
		conform(t, b, ref, false)
		if item["agent_id"] != a.ID || !strings.HasPrefix(fmt.Sprint(item["message_id"]), "message-") || item["conversation_id"] != nil {
			t.Fatalf("item %d = %v", i, item)
		}
	}
	if items[0]["content"] != "lookup lighthouse" || items[1]["message_type"] != "assistant_message" ||
		items[1]["content"] != "echo: where is the lighthouse" || items[2]["content"] != "where is the lighthouse" {
		t.Fatalf("results = %s", out)
	}
	if got := ok(t, srv, "POST", "/v1/messages/search", map[string]any{"query": "lighthouse", "limit": 1}); strings.Count(string(got), "message_id") != 1 {
		t.Fatalf("limit 1: %s", got)
	}

	// The agents' search does see the tool's return.
	tools := searchAgents(t, srv, map[string]any{"query": "lighthouse", "roles": []string{"tool"}})
	if len(tools) != 1 || tools[0].Message.Role != "tool" || !strings.Contains(tools[0].EmbeddedText, "user: where is the lighthouse") {
		t.Fatalf("tool returns with lighthouse: %+v", tools)
	}

	fails(t, srv, "POST", "/v1/messages/search", map[string]any{"agent_id": a.ID}, 422, "Field required")
	fails(t, srv, "POST", "/v1/messages/search", map[string]any{"query": "x", "limit": 500}, 422, "between 1 and 100")
}

// A search that a bound cut short says so in a header.
func TestSearchMessagesPartial(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createTalker(t, srv, "chatty")
	search := func() http.Header {
		t.Helper()
		res, body := postJSON(t, srv, "/v1/agents/messages/search", map[string]any{"query": "x", "agent_id": a.ID})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("search = %d %s", res.StatusCode, body)
		}
		return res.Header
	}
	if h := search(); h.Get("X-Kelpie-Partial") != "" {
		t.Fatalf("a complete search is flagged partial: %v", h)
	}
	// One conversation more than a search reads per agent.
	for range agent.MessageSearchConversationsMax + 1 {
		ok(t, srv, "POST", "/v1/conversations?agent_id="+a.ID, nil)
	}
	if h := search(); h.Get("X-Kelpie-Partial") != "true" {
		t.Fatalf("X-Kelpie-Partial = %q, want true", h.Get("X-Kelpie-Partial"))
	}
}

// postJSON posts body and returns the response and its body.
func postJSON(t *testing.T, srv *httptest.Server, path string, body any) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, out
}
