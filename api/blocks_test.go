package api_test

import (
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

func TestStandaloneBlocks(t *testing.T) {
	srv := server(t, llmtest.Echo())
	body := ok(t, srv, "POST", "/v1/blocks", map[string]any{"label": "project", "value": "Kelpie", "limit": 50})
	conform(t, body, "BlockResponse", false)
	b := decodeAs[struct{ ID, Value string }](t, body)
	conform(t, ok(t, srv, "GET", "/v1/blocks/"+b.ID, nil), "BlockResponse", false)
	conform(t, ok(t, srv, "GET", "/v1/blocks?label=project", nil), "BlockResponse", true)
	body = ok(t, srv, "PATCH", "/v1/blocks/"+b.ID, map[string]any{"value": "Kelpie in Go"})
	conform(t, body, "BlockResponse", false)
	fails(t, srv, "PATCH", "/v1/blocks/"+b.ID, map[string]any{"value": strings.Repeat("x", 51)}, 422, "limit of 50")
	fails(t, srv, "POST", "/v1/blocks", map[string]any{"value": "no label"}, 422, "label")

	a := createAgent(t, srv, "holder")
	path := "/v1/agents/" + a.ID + "/core-memory/blocks"
	body = ok(t, srv, "PATCH", path+"/attach/"+b.ID, nil)
	conform(t, body, "AgentState", false)
	if !strings.Contains(string(body), "Kelpie in Go") {
		t.Fatalf("attached agent: %s", body)
	}
	if got := decodeAs[struct{ Value string }](t, ok(t, srv, "GET", path+"/project", nil)); got.Value != "Kelpie in Go" {
		t.Fatalf("attached block = %q", got.Value)
	}
	conform(t, ok(t, srv, "PATCH", path+"/detach/"+b.ID, nil), "AgentState", false)
	fails(t, srv, "GET", path+"/project", nil, 404, "project")
	fails(t, srv, "PATCH", path+"/detach/"+b.ID, nil, 404, "not attached")
	ok(t, srv, "DELETE", "/v1/blocks/"+b.ID, nil)
	fails(t, srv, "GET", "/v1/blocks/"+b.ID, nil, 404, "not found")
	fails(t, srv, "PATCH", path+"/attach/"+b.ID, nil, 404, "not found")
}
