package api_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// TestQueryErrorsLocated: a bad query parameter answers 422 located at
// ["query", name] (FastAPI's location), a bad path ID at ["path", name],
// never ["body"].
func TestQueryErrorsLocated(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "q")
	for _, c := range []struct {
		path string
		loc  []any
	}{
		{"/v1/runs?limit=0", []any{"query", "limit"}},
		{"/v1/runs?order=sideways", []any{"query", "order"}},
		{"/v1/runs?active=maybe", []any{"query", "active"}},
		{"/v1/agents/?limit=abc", []any{"query", "limit"}},
		{"/v1/agents/" + a.ID + "/archival-memory?ascending=maybe", []any{"query", "ascending"}},
		{"/v1/agents/" + a.ID + "/archival-memory/search?query=x&top_k=0", []any{"query", "top_k"}},
		{"/v1/agents/" + a.ID + "/archival-memory/search", []any{"query", "query"}},
		{"/v1/steps?start_date=yesterday", []any{"query", "start_date"}},
		{"/v1/tools/?order_by=name", []any{"query", "order_by"}},
		{"/v1/agents/" + a.ID + "/messages?limit=100000", []any{"query", "limit"}},
		{"/v1/runs/bogus", []any{"path", "run_id"}},
	} {
		status, body := call(t, srv, "GET", c.path, nil)
		if status != http.StatusUnprocessableEntity {
			t.Errorf("GET %s = %d %s, want 422", c.path, status, body)
			continue
		}
		got := decodeAs[struct {
			Detail []struct {
				Loc []any  `json:"loc"`
				Msg string `json:"msg"`
			} `json:"detail"`
		}](t, body)
		if len(got.Detail) != 1 || !slices.Equal(got.Detail[0].Loc, c.loc) || got.Detail[0].Msg == "" {
			t.Errorf("GET %s: detail %s, want loc %v", c.path, body, c.loc)
		}
	}
}
