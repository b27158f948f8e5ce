package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// summarizingModel echoes, reporting usage of one token per three bytes
// (about Kelpie's own count), and answers summarizer requests (no tools)
// with a fixed summary.
func summarizingModel() *llmtest.Script {
	echo := llmtest.Echo()
	return &llmtest.Script{Reply: func(ctx context.Context, req llm.Request) (*llm.Response, error) {
		n := 0
		for _, m := range req.Messages {
			n += len(m.Content) + 16
		}
		for _, tl := range req.Tools {
			n += len(tl.Description) + 200
		}
		var resp *llm.Response
		if len(req.Tools) == 0 {
			resp = llmtest.Text("The user introduced themselves as Ada.")
		} else {
			var err error
			if resp, err = echo.Complete(ctx, req); err != nil {
				return nil, err
			}
		}
		resp.Usage = llm.Usage{PromptTokens: n / 3, CompletionTokens: 5, TotalTokens: n/3 + 5}
		return resp, nil
	}}
}

func TestSummarizeAndCompactAPI(t *testing.T) {
	srv := server(t, summarizingModel())
	a := createAgent(t, srv, "sum")
	path := "/v1/agents/" + a.ID + "/summarize"
	fails(t, srv, "POST", path, nil, 400, "nothing to compact")
	fails(t, srv, "POST", path, map[string]any{"compaction_settings": map[string]any{"mode": "everything"}}, 422, "compaction_settings.mode")
	for _, text := range []string{"hi, I am Ada", "what is kelp?", "and sea otters?"} {
		ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}})
	}
	body := ok(t, srv, "POST", path, map[string]any{"compaction_settings": map[string]any{"mode": "all"}})
	conform(t, body, "CompactionResponse", false)
	res := decodeAs[struct {
		Summary string `json:"summary"`
		Before  int    `json:"num_messages_before"`
		After   int    `json:"num_messages_after"`
	}](t, body)
	if res.Summary != "The user introduced themselves as Ada." || res.Before != 12 || res.After >= res.Before {
		t.Fatalf("summarize: %s", body)
	}
	// The log shows the compaction: an event_message, then the
	// summary_message, each in Letta's shape.
	body = ok(t, srv, "GET", "/v1/agents/"+a.ID+"/messages?order=desc&limit=2", nil)
	msgs := decodeAs[[]map[string]any](t, body)
	if len(msgs) != 2 || msgs[0]["message_type"] != "summary_message" || msgs[1]["message_type"] != "event_message" {
		t.Fatalf("newest messages: %s", body)
	}
	conform(t, mustJSON(t, msgs[0]), "SummaryMessage", false)
	conform(t, mustJSON(t, msgs[1]), "EventMessage", false)
	if msgs[0]["summary"] != res.Summary || msgs[1]["event_type"] != "compaction" {
		t.Fatalf("compaction messages: %s", body)
	}
	// The context shows the summary first.
	cw := decodeAs[struct {
		Summary  *string `json:"summary_memory"`
		Tokens   int     `json:"num_tokens_summary_memory"`
		Messages []struct {
			Role    string `json:"role"`
			Content []struct{ Text string }
		} `json:"messages"`
	}](t, ok(t, srv, "GET", "/v1/agents/"+a.ID+"/context", nil))
	if cw.Summary == nil || !strings.Contains(*cw.Summary, res.Summary) || cw.Tokens == 0 || !strings.Contains(cw.Messages[1].Content[0].Text, res.Summary) {
		t.Fatalf("context after summarize: %+v", cw)
	}
	// The conversations route: "default" with agent_id, or the agent's ID.
	for _, text := range []string{"one", "two"} {
		ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}})
	}
	conform(t, ok(t, srv, "POST", "/v1/conversations/default/compact", map[string]any{"agent_id": a.ID}), "CompactionResponse", false)
	fails(t, srv, "POST", "/v1/conversations/default/compact", map[string]any{}, 422, "agent_id")
	// The deprecated form: the agent's ID. Little is left to compact.
	fails(t, srv, "POST", "/v1/conversations/"+a.ID+"/compact", nil, 400, "nothing to compact")
}

// A send whose run compacts shows the compaction only when it asks.
func TestIncludeCompactionMessages(t *testing.T) {
	srv := server(t, summarizingModel())
	a := createAgent(t, srv, "inc")
	ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"llm_config": map[string]any{"context_window": 2500}})
	long := strings.Repeat("kelp grows fast in cold water ", 40)
	var shown, hidden bool
	for i := 0; i < 40 && !(shown && hidden); i++ {
		include := !shown // until a compaction was shown, then hidden
		before := summaries(t, srv, a.ID)
		body := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"include_compaction_messages": include,
			"messages": []map[string]any{{"role": "user", "content": long}}})
		compacted := summaries(t, srv, a.ID) > before
		inBody := strings.Contains(string(body), `"summary_message"`) && strings.Contains(string(body), `"event_message"`)
		switch {
		case compacted && include != inBody:
			t.Fatalf("turn %d compacted; include_compaction_messages %v, shown %v: %.300s", i, include, inBody, body)
		case !compacted && inBody:
			t.Fatalf("turn %d did not compact but shows it: %.300s", i, body)
		case compacted && include:
			conform(t, body, "LettaResponse", false)
			shown = true
		case compacted:
			hidden = true
		}
	}
	if !shown || !hidden {
		t.Fatalf("40 long turns in a 2,500-token window: a compaction shown %v, hidden %v", shown, hidden)
	}
}

// summaries counts the summary messages in an agent's log.
func summaries(t *testing.T, srv *httptest.Server, id string) int {
	t.Helper()
	n := 0
	for _, m := range decodeAs[[]map[string]any](t, ok(t, srv, "GET", "/v1/agents/"+id+"/messages?limit=1000", nil)) {
		if m["message_type"] == "summary_message" {
			n++
		}
	}
	return n
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
