package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/llm/openai"
)

type sseEvent struct {
	event string
	data  string
}

// postSSE sends a streaming request and parses the event stream.
func postSSE(t *testing.T, srv *httptest.Server, path string, body any) (int, http.Header, []sseEvent) {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := srv.Client().Post(srv.URL+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	return resp.StatusCode, resp.Header, events
}

// checkStream validates a successful Letta stream: messages, then
// stop_reason, usage_statistics and [DONE].
func checkStream(t *testing.T, events []sseEvent) []map[string]any {
	t.Helper()
	if len(events) < 4 || events[len(events)-1].data != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %+v", events)
	}
	var msgs []map[string]any
	for i, ev := range events[:len(events)-1] {
		if ev.event != "" {
			t.Fatalf("event %d has a name %q: %s", i, ev.event, ev.data)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil {
			t.Fatalf("event %d is not JSON: %s", i, ev.data)
		}
		switch m["message_type"] {
		case "stop_reason":
			conform(t, []byte(ev.data), "LettaStopReason", false)
		case "usage_statistics":
			conform(t, []byte(ev.data), "LettaUsageStatistics", false)
		default:
			conform(t, []byte(ev.data), "LettaMessageUnion", false)
			msgs = append(msgs, m)
		}
	}
	n := len(events)
	var stop, usage map[string]any
	json.Unmarshal([]byte(events[n-3].data), &stop)
	json.Unmarshal([]byte(events[n-2].data), &usage)
	if stop["message_type"] != "stop_reason" || usage["message_type"] != "usage_statistics" {
		t.Fatalf("stream tail: %s / %s", events[n-3].data, events[n-2].data)
	}
	return msgs
}

func TestStreamSteps(t *testing.T) {
	srv := server(t, llmtest.Echo())
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "s", "agent_type": "memgpt_v2_agent"})
	id := decodeAs[agentJSON](t, body).ID
	for _, path := range []string{"/v1/agents/" + id + "/messages/stream", "/v1/agents/" + id + "/messages"} {
		status, hdr, events := postSSE(t, srv, path, map[string]any{"streaming": true, "messages": []map[string]any{{"role": "user", "content": "ping"}}})
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("%s: status %d, content type %q", path, status, hdr.Get("Content-Type"))
		}
		msgs := checkStream(t, events)
		if msgs[0]["message_type"] != "user_message" || msgs[len(msgs)-1]["message_type"] != "assistant_message" || msgs[len(msgs)-1]["content"] != "echo: ping" {
			t.Fatalf("%s: streamed %v", path, msgs)
		}
	}
	// Failing before anything was streamed is an ordinary JSON error.
	fails(t, srv, "POST", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages/stream", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}}, 404, "not found")
}

func TestStreamTokens(t *testing.T) {
	fake := httptest.NewServer(fakellm.New(fakellm.Options{}))
	defer fake.Close()
	model, err := openai.New(openai.Config{BaseURL: fake.URL + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, model)
	id := createAgent(t, srv, "tokens").ID // letta_v1_agent: the fake answers in text
	_, _, events := postSSE(t, srv, "/v1/agents/"+id+"/messages/stream", map[string]any{"stream_tokens": true, "messages": []map[string]any{{"role": "user", "content": "one two three four"}}})
	msgs := checkStream(t, events)
	var text strings.Builder
	ids := map[any]bool{}
	chunks := 0
	for _, m := range msgs {
		if m["message_type"] == "assistant_message" {
			text.WriteString(m["content"].(string))
			ids[m["id"]] = true
			chunks++
		}
	}
	if chunks < 2 || len(ids) != 1 || text.String() != "Echo: one two three four" {
		t.Fatalf("%d assistant chunks with ids %v assembling %q", chunks, ids, text.String())
	}
	// The log holds the committed message once.
	log := ok(t, srv, "GET", "/v1/agents/"+id+"/messages?order=asc", nil)
	if strings.Count(string(log), "Echo: one two three four") != 1 {
		t.Fatalf("log: %s", log)
	}
}

func TestDefaultConversation(t *testing.T) {
	srv := server(t, llmtest.Echo())
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "conv", "agent_type": "memgpt_v2_agent"})
	id := decodeAs[agentJSON](t, body).ID
	// Streams by default.
	status, _, events := postSSE(t, srv, "/v1/conversations/default/messages", map[string]any{"agent_id": id, "messages": []map[string]any{{"role": "user", "content": "hi"}}})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	checkStream(t, events)
	body = ok(t, srv, "POST", "/v1/conversations/default/messages", map[string]any{"agent_id": id, "streaming": false, "messages": []map[string]any{{"role": "user", "content": "again"}}})
	conform(t, body, "LettaResponse", false)
	list := ok(t, srv, "GET", "/v1/conversations/default/messages?order=asc&agent_id="+id, nil)
	conform(t, list, "LettaMessageUnion", true)
	if !strings.Contains(string(list), `"hi"`) || !strings.Contains(string(list), `"again"`) {
		t.Fatalf("conversation log: %s", list)
	}
	fails(t, srv, "GET", "/v1/conversations/conv-1/messages?agent_id="+id, nil, 422, "conv-<uuid4>")
	fails(t, srv, "GET", "/v1/conversations/conv-00000000-0000-4000-8000-000000000000/messages", nil, 404, "conversation")
	fails(t, srv, "GET", "/v1/conversations/default/messages", nil, 422, "agent_id")

	// Resume the last run's stream from the start, then from a cursor.
	_, _, events = postSSE(t, srv, "/v1/conversations/default/stream", map[string]any{"agent_id": id})
	msgs := checkStream(t, events)
	if msgs[0]["content"] != "again" {
		t.Fatalf("resumed stream starts with %v", msgs[0])
	}
	after := int64(msgs[0]["seq_id"].(float64))
	_, _, events = postSSE(t, srv, "/v1/conversations/default/stream", map[string]any{"agent_id": id, "starting_after": after})
	if rest := checkStream(t, events); len(rest) != len(msgs)-1 {
		t.Fatalf("after seq %d: %d messages, want %d", after, len(rest), len(msgs)-1)
	}

	// Reset empties the log.
	conform(t, ok(t, srv, "PATCH", "/v1/agents/"+id+"/reset-messages", map[string]any{}), "AgentState", false)
	if got := ok(t, srv, "GET", "/v1/agents/"+id+"/messages", nil); string(got) != "[]" {
		t.Fatalf("log after reset: %s", got)
	}
}

// TestMessageListLimitCountsShownMessages: send_message returns are not
// shown, so limit must count what is shown, not log entries.
type shownMessage struct {
	ID          string `json:"id"`
	MessageType string `json:"message_type"`
}

func TestMessageListLimitCountsShownMessages(t *testing.T) {
	srv := server(t, llmtest.Echo())
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "pages", "agent_type": "memgpt_v2_agent"})
	id := decodeAs[agentJSON](t, body).ID
	for _, text := range []string{"one", "two"} {
		ok(t, srv, "POST", "/v1/agents/"+id+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}})
	}
	all := decodeAs[[]shownMessage](t, ok(t, srv, "GET", "/v1/agents/"+id+"/messages?order=asc", nil))
	if len(all) != 4 { // user, assistant (send_message) per turn; the returns are hidden
		t.Fatalf("log shows %d messages: %+v", len(all), all)
	}
	newest := decodeAs[[]shownMessage](t, ok(t, srv, "GET", "/v1/agents/"+id+"/messages?limit=1", nil))
	if len(newest) != 1 || newest[0].MessageType != "assistant_message" {
		t.Fatalf("newest = %+v", newest)
	}
	var paged []string
	for after := ""; ; {
		page := decodeAs[[]shownMessage](t, ok(t, srv, "GET", "/v1/agents/"+id+"/messages?order=asc&limit=1&after="+after, nil))
		if len(page) == 0 {
			break
		}
		paged = append(paged, page[0].MessageType)
		after = page[len(page)-1].ID
	}
	if len(paged) != 4 {
		t.Fatalf("paging one at a time saw %v", paged)
	}
}
