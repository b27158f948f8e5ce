package api_test

import (
	"net/http"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

func TestPassagesSearchAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a, b := createAgent(t, srv, "a"), createAgent(t, srv, "b")
	teal := insertPassage(t, srv, a.ID, map[string]any{"text": "The user's favourite colour is teal; teal everywhere.", "tags": []string{"prefs"}})
	insertPassage(t, srv, a.ID, map[string]any{"text": "Quarterly planning happens in April."})
	bTeal := insertPassage(t, srv, b.ID, map[string]any{"text": "Teal is a colour between blue and green, Bob says", "tags": []string{"facts"}})

	type resultJSON struct {
		Passage  passageJSON    `json:"passage"`
		Score    float64        `json:"score"`
		Metadata map[string]any `json:"metadata"`
	}
	search := func(body map[string]any) []resultJSON {
		t.Helper()
		out := ok(t, srv, "POST", "/v1/passages/search", body)
		conform(t, out, "PassageSearchResult", true)
		return decodeAs[[]resultJSON](t, out)
	}

	got := search(map[string]any{"query": "teal colour"})
	if len(got) != 2 || got[0].Passage.ID != teal.ID || got[1].Passage.ID != bTeal.ID {
		t.Fatalf("search across agents: %+v", got)
	}
	if got[0].Metadata["agent_id"] != a.ID || got[1].Metadata["agent_id"] != b.ID || got[0].Metadata["ranking"] != "bm25" {
		t.Fatalf("metadata: %+v", got)
	}
	if got := search(map[string]any{"query": "teal", "agent_id": b.ID}); len(got) != 1 || got[0].Passage.ID != bTeal.ID {
		t.Fatalf("agent filter: %+v", got)
	}
	if got := search(map[string]any{"query": "teal", "tags": []string{"prefs", "facts"}, "tag_match_mode": "all"}); len(got) != 0 {
		t.Fatalf("tag_match_mode all: %+v", got)
	}
	if got := search(map[string]any{"query": "teal", "limit": 1, "start_date": nil}); len(got) != 1 {
		t.Fatalf("limit 1: %+v", got)
	}
	if got := search(map[string]any{"query": "teal", "end_date": "2000-01-01T00:00:00Z"}); len(got) != 0 {
		t.Fatalf("end_date in the past: %+v", got)
	}
	if got := search(map[string]any{"query": nil, "limit": 3}); len(got) != 3 || got[0].Metadata["ranking"] != "recency" {
		t.Fatalf("null query: %+v", got)
	}

	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "limit": 0}, http.StatusUnprocessableEntity, "limit")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "limit": 101}, http.StatusUnprocessableEntity, "limit")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "tag_match_mode": "some"}, http.StatusUnprocessableEntity, "tag_match_mode")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "start_date": "yesterday"}, http.StatusUnprocessableEntity, "start_date")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "agent_id": "bogus"}, http.StatusUnprocessableEntity, "agent_id")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "agent_id": "agent-00000000-0000-4000-8000-000000000000"}, http.StatusNotFound, "agent")
	fails(t, srv, "POST", "/v1/passages/search", map[string]any{"query": "x", "archive_id": "archive-00000000-0000-4000-8000-000000000000"}, http.StatusNotFound, "archive")
	fails(t, srv, "POST", "/v1/passages/search", `{"query": 5}`, http.StatusUnprocessableEntity, "")
}
