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

// A standalone block attached to two agents is one block: a change through
// /v1/blocks or through either agent's core memory is what both see, and
// deleting it detaches it from both.
func TestSharedBlocksAcrossAgents(t *testing.T) {
	srv := server(t, llmtest.Echo())
	b := decodeAs[struct{ ID string }](t, ok(t, srv, "POST", "/v1/blocks", map[string]any{"label": "team", "value": "Ada", "limit": 50}))
	var paths []string
	for _, name := range []string{"one", "two"} {
		a := createAgent(t, srv, name)
		paths = append(paths, "/v1/agents/"+a.ID)
		conform(t, ok(t, srv, "PATCH", paths[len(paths)-1]+"/core-memory/blocks/attach/"+b.ID, nil), "AgentState", false)
	}
	value := func(path string) string {
		t.Helper()
		body := ok(t, srv, "GET", path+"/core-memory/blocks/team", nil)
		conform(t, body, "BlockResponse", false)
		return decodeAs[struct{ Value string }](t, body).Value
	}
	conform(t, ok(t, srv, "PATCH", "/v1/blocks/"+b.ID, map[string]any{"value": "Ada, Grace"}), "BlockResponse", false)
	for _, p := range paths {
		if got := value(p); got != "Ada, Grace" {
			t.Fatalf("%s sees %q after PATCH /v1/blocks", p, got)
		}
	}
	conform(t, ok(t, srv, "PATCH", paths[0]+"/core-memory/blocks/team", map[string]any{"value": "Ada, Grace, Linus"}), "BlockResponse", false)
	body := ok(t, srv, "GET", "/v1/blocks/"+b.ID, nil)
	conform(t, body, "BlockResponse", false)
	if got := decodeAs[struct{ Value string }](t, body).Value; got != "Ada, Grace, Linus" || value(paths[1]) != got {
		t.Fatalf("after an edit through one agent: block %q, other agent %q", got, value(paths[1]))
	}
	fails(t, srv, "PATCH", paths[1]+"/core-memory/blocks/team", map[string]any{"value": strings.Repeat("x", 51)}, 422, "limit of 50")
	body = ok(t, srv, "GET", paths[1], nil)
	conform(t, body, "AgentState", false)
	ok(t, srv, "DELETE", "/v1/blocks/"+b.ID, nil)
	for _, p := range paths {
		fails(t, srv, "GET", p+"/core-memory/blocks/team", nil, 404, "team")
		body := ok(t, srv, "GET", p+"?include=agent.blocks", nil)
		conform(t, body, "AgentState", false)
		if strings.Contains(string(body), "Linus") {
			t.Fatalf("%s still shows the deleted block: %s", p, body)
		}
	}
}

// TestCreateAgentBlockIDs: block_ids at create attach standalone blocks;
// an unknown one answers 404 naming it, and creates nothing.
func TestCreateAgentBlockIDs(t *testing.T) {
	srv := server(t, llmtest.Echo())
	b := decodeAs[struct{ ID string }](t, ok(t, srv, "POST", "/v1/blocks", map[string]any{"label": "project", "value": "Kelpie", "limit": 50}))
	a := decodeAs[agentJSON](t, ok(t, srv, "POST", "/v1/agents/", map[string]any{"name": "shared", "block_ids": []string{b.ID}}))
	if len(a.Blocks) != 1 || a.Blocks[0].ID != b.ID || a.Blocks[0].Value != "Kelpie" {
		t.Fatalf("blocks = %+v", a.Blocks)
	}
	unknown := "block-00000000-0000-4000-8000-000000000000"
	fails(t, srv, "POST", "/v1/agents/", map[string]any{"name": "dangling", "block_ids": []string{b.ID, unknown}}, 404, unknown)
	if got := decodeAs[[]agentJSON](t, ok(t, srv, "GET", "/v1/agents/", nil)); len(got) != 1 {
		t.Fatalf("a failed create left %d agents", len(got))
	}
}
