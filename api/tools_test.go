package api_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

const lookupTool = `def lookup(city: str, year: int = 2024) -> str:
    """Look up a city's population.

    Args:
        city: The city.
        year: The census year.
    """
    raise NotImplementedError
`

type toolJSON struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	ToolType        string         `json:"tool_type"`
	Description     string         `json:"description"`
	SourceCode      string         `json:"source_code"`
	Tags            []string       `json:"tags"`
	ReturnCharLimit int            `json:"return_char_limit"`
	JSONSchema      map[string]any `json:"json_schema"`
	PipRequirements []struct {
		Name    string  `json:"name"`
		Version *string `json:"version"`
	} `json:"pip_requirements"`
}

// tool requires a 200 Tool answer and decodes it.
func tool(t *testing.T, srv *httptest.Server, method, path string, body any) toolJSON {
	t.Helper()
	out := ok(t, srv, method, path, body)
	conform(t, out, "Tool", false)
	return decodeAs[toolJSON](t, out)
}

// toolNames lists tools and returns their names, in order.
func toolNames(t *testing.T, srv *httptest.Server, path string) []string {
	t.Helper()
	out := ok(t, srv, "GET", path, nil)
	conform(t, out, "Tool", true)
	var names []string
	for _, tl := range decodeAs[[]toolJSON](t, out) {
		names = append(names, tl.Name)
	}
	return names
}

func count(t *testing.T, srv *httptest.Server, query string) int {
	t.Helper()
	return decodeAs[int](t, ok(t, srv, "GET", "/v1/tools/count"+query, nil))
}

func TestToolsCRUD(t *testing.T) {
	srv := server(t, llmtest.Echo())
	builtins := toolNames(t, srv, "/v1/tools?order=asc")
	if len(builtins) < 5 || count(t, srv, "") != len(builtins) {
		t.Fatalf("built-ins listed: %v", builtins)
	}
	created := tool(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool, "tags": []string{"geo"}})
	props, _ := created.JSONSchema["parameters"].(map[string]any)["properties"].(map[string]any)
	if !strings.HasPrefix(created.ID, "tool-") || created.Name != "lookup" || created.ToolType != "custom" ||
		created.Description != "Look up a city's population." || created.SourceCode != lookupTool || props["city"] == nil || created.ReturnCharLimit != 50000 {
		t.Fatalf("created %+v", created)
	}
	path := "/v1/tools/" + created.ID
	if got := tool(t, srv, "GET", path, nil); got.ID != created.ID || got.Name != "lookup" {
		t.Fatalf("GET = %+v", got)
	}
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool}, 409, `named "lookup" exists already`)

	got := tool(t, srv, "PATCH", path, map[string]any{"description": "Population.", "return_char_limit": 100, "tags": nil})
	if got.Description != "Population." || got.ReturnCharLimit != 100 || got.JSONSchema["description"] != "Population." || len(got.Tags) != 1 {
		t.Fatalf("PATCH = %+v", got)
	}
	// PUT replaces the tool of the same name, keeping its ID, or creates one.
	v2 := strings.Replace(lookupTool, "year: int = 2024", "year: int = 2025, exact: bool = False", 1)
	got = tool(t, srv, "PUT", "/v1/tools", map[string]any{"source_code": v2})
	if props, _ := got.JSONSchema["parameters"].(map[string]any)["properties"].(map[string]any); got.ID != created.ID || props["exact"] == nil {
		t.Fatalf("PUT over lookup = %+v", got)
	}
	other := tool(t, srv, "PUT", "/v1/tools", map[string]any{"source_code": "", "json_schema": map[string]any{
		"name": "ping", "description": "Ping a host.", "parameters": map[string]any{"type": "object", "properties": map[string]any{"host": map[string]any{"type": "string"}}}}})
	if other.ID == created.ID || other.Name != "ping" || other.Description != "Ping a host." {
		t.Fatalf("PUT new = %+v", other)
	}

	// Filters, counts and pages.
	eq := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	eq(toolNames(t, srv, "/v1/tools?exclude_letta_tools=true"), "ping", "lookup") // newest first
	eq(toolNames(t, srv, "/v1/tools?name=lookup"), "lookup")
	eq(toolNames(t, srv, "/v1/tools?search=OOK"), "lookup")
	eq(toolNames(t, srv, "/v1/tools?tool_types=custom&order=asc"), "lookup", "ping")
	eq(toolNames(t, srv, "/v1/tools?order=asc&limit=2"), builtins[:2]...)
	eq(toolNames(t, srv, "/v1/tools?limit=1&after="+other.ID), "lookup")
	eq(toolNames(t, srv, "/v1/tools?order=asc&before="+other.ID+"&limit=2"), builtins[len(builtins)-1], "lookup")
	eq(toolNames(t, srv, fmt.Sprintf("/v1/tools?tool_ids=%s,%s", created.ID, other.ID)), "ping", "lookup")
	if n := count(t, srv, ""); n != len(builtins)+2 {
		t.Fatalf("count = %d", n)
	}
	if n := count(t, srv, "?exclude_letta_tools=true"); n != 2 {
		t.Fatalf("custom count = %d", n)
	}
	if n := count(t, srv, "?return_only_letta_tools=true&search=memory"); n == 0 || n >= len(builtins) {
		t.Fatalf("memory built-ins = %d", n)
	}

	if body := ok(t, srv, "DELETE", path, nil); string(body) != "null" {
		t.Fatalf("DELETE = %s", body)
	}
	fails(t, srv, "GET", path, nil, 404, "not found")
	fails(t, srv, "DELETE", path, nil, 404, "not found")
	fails(t, srv, "PATCH", path, map[string]any{"description": "x"}, 404, "not found")
	eq(toolNames(t, srv, "/v1/tools?exclude_letta_tools=true"), "ping")
}

func TestToolsErrors(t *testing.T) {
	srv := server(t, llmtest.Echo())
	fails(t, srv, "POST", "/v1/tools", map[string]any{"description": "no code"}, 422, "source_code is required")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": "def f(a):\n    pass\n"}, 422, "pass json_schema")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": "print(1)"}, 422, "no top-level function")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": "x", "source_type": "typescript"}, 422, "json_schema is required")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": strings.Repeat("#", 65<<10)}, 422, "over the limit")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": "", "json_schema": map[string]any{"name": "has-dash"}}, 422, "tool name")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool, "return_char_limit": 0}, 422, "return_char_limit")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool, "name": "other"}, 422, "differs")
	fails(t, srv, "GET", "/v1/tools/not-a-tool", nil, 422, "not a valid tool ID")
	fails(t, srv, "GET", "/v1/tools/tool-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
	fails(t, srv, "GET", "/v1/tools?limit=0", nil, 422, "limit")
	fails(t, srv, "GET", "/v1/tools?order_by=name", nil, 422, "order_by")
	fails(t, srv, "GET", "/v1/tools?after=tool-00000000-0000-4000-8000-000000000000", nil, 404, "cursor")
	fails(t, srv, "GET", "/v1/tools/count?exclude_letta_tools=maybe", nil, 422, "boolean")
}

func TestBuiltinToolsImmutable(t *testing.T) {
	srv := server(t, llmtest.Echo())
	out := ok(t, srv, "GET", "/v1/tools?name=memory_insert", nil)
	conform(t, out, "Tool", true)
	list := decodeAs[[]toolJSON](t, out)
	if len(list) != 1 || list[0].ToolType != "letta_memory_core" {
		t.Fatalf("memory_insert = %s", out)
	}
	path := "/v1/tools/" + list[0].ID
	if got := tool(t, srv, "GET", path, nil); got.Name != "memory_insert" {
		t.Fatalf("GET built-in = %+v", got)
	}
	fails(t, srv, "PATCH", path, map[string]any{"description": "mine now"}, 403, "built-in")
	fails(t, srv, "DELETE", path, nil, 403, "built-in")
	fails(t, srv, "PUT", "/v1/tools", map[string]any{"source_code": "def memory_insert(label: str):\n    pass\n"}, 403, "built-in")
	fails(t, srv, "POST", "/v1/tools", map[string]any{"source_code": "def send_message(message: str):\n    pass\n"}, 409, "built-in")
	if got := tool(t, srv, "GET", path, nil); got.Description == "mine now" {
		t.Fatal("a built-in changed")
	}
	// The agent's view of a built-in is the registry's.
	a := createAgent(t, srv, "b")
	for _, at := range a.Tools {
		if at.Name == "memory_insert" && at.ID != list[0].ID {
			t.Fatalf("agent lists memory_insert as %s, registry as %s", at.ID, list[0].ID)
		}
	}
}

func TestAttachDetachTools(t *testing.T) {
	srv := server(t, llmtest.Echo())
	custom := tool(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool})
	a := createAgent(t, srv, "toolbox")
	base := "/v1/agents/" + a.ID + "/tools"
	insertID := ""
	for _, at := range a.Tools {
		if at.Name == "memory_insert" {
			insertID = at.ID
		}
	}
	names := func(body []byte) string {
		t.Helper()
		conform(t, body, "AgentState", false)
		var out []string
		for _, at := range decodeAs[agentJSON](t, body).Tools {
			out = append(out, at.Name)
		}
		return strings.Join(out, ",")
	}
	body := ok(t, srv, "PATCH", base+"/attach/"+custom.ID, nil)
	if got := names(body); !strings.HasSuffix(got, ",lookup") || !strings.Contains(got, ",memory_replace,") {
		t.Fatalf("after attach: %s", got)
	}
	// Attaching again changes nothing.
	if got := names(ok(t, srv, "PATCH", base+"/attach/"+custom.ID, nil)); strings.Count(got, "lookup") != 1 {
		t.Fatalf("after attaching twice: %s", got)
	}
	list := toolNames(t, srv, base+"?limit=50&order=asc")
	if list[len(list)-1] != "lookup" || len(list) != len(a.Tools)+1 {
		t.Fatalf("agent tools: %v", list)
	}
	if got := toolNames(t, srv, base+"?exclude_letta_tools=true"); strings.Join(got, ",") != "lookup" {
		t.Fatalf("agent's custom tools: %v", got)
	}
	has := func(list, name string) bool { return strings.Contains(","+list+",", ","+name+",") }
	got := names(ok(t, srv, "PATCH", base+"/detach/"+insertID, nil))
	if has(got, "memory_insert") {
		t.Fatalf("after detaching memory_insert: %s", got)
	}
	if got = names(ok(t, srv, "PATCH", base+"/attach/"+insertID, nil)); !has(got, "memory_insert") {
		t.Fatalf("after re-attaching memory_insert: %s", got)
	}
	if got = names(ok(t, srv, "PATCH", base+"/detach/"+custom.ID, nil)); has(got, "lookup") {
		t.Fatalf("after detaching lookup: %s", got)
	}
	fails(t, srv, "PATCH", base+"/attach/tool-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
	fails(t, srv, "PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/tools/attach/"+custom.ID, nil, 404, "not found")
	fails(t, srv, "PATCH", base+"/attach/nope", nil, 422, "tool ID")
	fails(t, srv, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/tools", nil, 404, "not found")

	// Agents created or updated with custom tools by name or ID.
	body = ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "c", "tools": []string{"lookup"}, "include_base_tools": false})
	if got := names(body); got != "lookup" {
		t.Fatalf("created with tools [lookup]: %s", got)
	}
	body = ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "d", "tool_ids": []string{custom.ID}, "include_base_tools": false})
	if got := names(body); got != "lookup" {
		t.Fatalf("created with tool_ids: %s", got)
	}
	fails(t, srv, "POST", "/v1/agents", map[string]any{"tools": []string{"no_such_tool"}}, 422, "unknown tool")
	body = ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"tool_ids": []string{insertID, custom.ID}})
	if got := names(body); got != "memory_insert,lookup" {
		t.Fatalf("PATCH tool_ids: %s", got)
	}
	// Deleting the tool detaches it: the agent lists it no more, tool_ids
	// naming it (a client's stale view) drop it, detaching it is a no-op,
	// and a new agent cannot have it.
	ok(t, srv, "DELETE", "/v1/tools/"+custom.ID, nil)
	if got := names(ok(t, srv, "GET", "/v1/agents/"+a.ID, nil)); got != "memory_insert" {
		t.Fatalf("after deleting lookup: %s", got)
	}
	if got := names(ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"tool_ids": []string{insertID, custom.ID}})); got != "memory_insert" {
		t.Fatalf("PATCH tool_ids naming a deleted, attached tool: %s", got)
	}
	if got := names(ok(t, srv, "PATCH", base+"/detach/"+custom.ID, nil)); got != "memory_insert" {
		t.Fatalf("after detaching the deleted tool: %s", got)
	}
	fails(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"tool_ids": []string{custom.ID}}, 404, "not found")
	fails(t, srv, "POST", "/v1/agents", map[string]any{"name": "e", "tool_ids": []string{custom.ID}}, 404, "not found")
}

func TestCustomToolRun(t *testing.T) {
	srv := server(t, callThenText("lookup", map[string]any{"city": "Oslo"}))
	// A tool that requires approval: the client may run it itself and give
	// the result (without approval the server runs it in its sandbox).
	custom := tool(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool, "default_requires_approval": true,
		"pip_requirements": []map[string]any{{"name": "requests", "version": "2.32.3"}}})
	if len(custom.PipRequirements) != 1 || custom.PipRequirements[0].Name != "requests" {
		t.Fatalf("pip_requirements %+v", custom.PipRequirements)
	}
	a := createAgent(t, srv, "runner")
	conform(t, ok(t, srv, "PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+custom.ID, nil), "AgentState", false)
	path := "/v1/agents/" + a.ID + "/messages"
	body := ok(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"role": "user", "content": "how many live in Oslo?"}}})
	conform(t, body, "LettaResponse", false)
	resp := decodeAs[lettaResp](t, body)
	last := resp.Messages[len(resp.Messages)-1]
	if resp.StopReason.StopReason != "requires_approval" || last.MessageType != "approval_request_message" || last.ToolCall.ToolCallID == "" {
		t.Fatalf("turn = %s", body)
	}
	body = ok(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"type": "tool_return",
		"tool_returns": []map[string]any{{"tool_call_id": last.ToolCall.ToolCallID, "tool_return": "709,000", "status": "success"}}}}})
	conform(t, body, "LettaResponse", false)
	resp = decodeAs[lettaResp](t, body)
	if resp.StopReason.StopReason != "end_turn" || resp.Messages[0].MessageType != "tool_return_message" || resp.Messages[0].ToolReturn != "709,000" || resp.Messages[0].Status != "success" {
		t.Fatalf("after the client's result: %s", body)
	}
	body = ok(t, srv, "GET", path+"?order=asc", nil)
	conform(t, body, "LettaMessageUnion", true)
	if !strings.Contains(string(body), `"tool_return":"709,000"`) {
		t.Fatalf("log = %s", body)
	}
}

// Agents use a custom tool by reference: PATCH and PUT of the tool reach
// every agent that has it — its tools list, its tools relationship, its
// context window — and DELETE detaches it from all of them.
func TestToolEditsReachAgents(t *testing.T) {
	srv := server(t, llmtest.Echo())
	custom := tool(t, srv, "POST", "/v1/tools", map[string]any{"source_code": lookupTool})
	var agents []agentJSON
	for _, name := range []string{"first", "second"} {
		a := createAgent(t, srv, name)
		conform(t, ok(t, srv, "PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+custom.ID, nil), "AgentState", false)
		agents = append(agents, a)
	}
	// seen returns what agent a shows of its custom tool, from each of the
	// three places; all three must agree.
	seen := func(a agentJSON) (name, description string, params string) {
		t.Helper()
		out := ok(t, srv, "GET", "/v1/agents/"+a.ID+"/tools?exclude_letta_tools=true", nil)
		conform(t, out, "Tool", true)
		listed := decodeAs[[]toolJSON](t, out)
		out = ok(t, srv, "GET", "/v1/agents/"+a.ID, nil)
		conform(t, out, "AgentState", false)
		var rel []toolJSON
		for _, tl := range decodeAs[struct {
			Tools []toolJSON `json:"tools"`
		}](t, out).Tools {
			if tl.ToolType == "custom" {
				rel = append(rel, tl)
			}
		}
		out = ok(t, srv, "GET", "/v1/agents/"+a.ID+"/context", nil)
		conform(t, out, "ContextWindowOverview", false)
		var offered []map[string]any
		for _, fd := range decodeAs[struct {
			Defs []struct {
				Function map[string]any `json:"function"`
			} `json:"functions_definitions"`
		}](t, out).Defs {
			if n, _ := fd.Function["name"].(string); n != "" && !strings.Contains(n, "memory") && n != "conversation_search" && n != "send_message" {
				offered = append(offered, fd.Function)
			}
		}
		if len(listed) != len(rel) || len(listed) != len(offered) || len(listed) > 1 {
			t.Fatalf("agent %s shows %d listed, %d in its relationship, %d offered", a.ID, len(listed), len(rel), len(offered))
		}
		if len(listed) == 0 {
			return "", "", ""
		}
		p, _ := json.Marshal(offered[0]["parameters"])
		if listed[0].ID != custom.ID || rel[0].ID != custom.ID || listed[0].Name != rel[0].Name || listed[0].Name != offered[0]["name"] ||
			listed[0].Description != rel[0].Description || listed[0].Description != offered[0]["description"] {
			t.Fatalf("agent %s: listed %+v, relationship %+v, offered %v", a.ID, listed[0], rel[0], offered[0])
		}
		return listed[0].Name, listed[0].Description, string(p)
	}
	for _, a := range agents {
		if name, desc, _ := seen(a); name != "lookup" || desc != "Look up a city's population." {
			t.Fatalf("before edits: %s %q", name, desc)
		}
	}
	tool(t, srv, "PATCH", "/v1/tools/"+custom.ID, map[string]any{"description": "Population, newest census."})
	for _, a := range agents {
		if name, desc, _ := seen(a); name != "lookup" || desc != "Population, newest census." {
			t.Fatalf("after PATCH: %s %q", name, desc)
		}
	}
	// PUT by name: a new schema (and so a new name would be a new tool;
	// the same name replaces this one's definition).
	v2 := strings.Replace(lookupTool, "year: int = 2024", "year: int = 2025, exact: bool = False", 1)
	tool(t, srv, "PUT", "/v1/tools", map[string]any{"source_code": v2})
	for _, a := range agents {
		if _, _, params := seen(a); !strings.Contains(params, `"exact"`) {
			t.Fatalf("after PUT: parameters %s", params)
		}
	}
	// A new json_schema renames the tool for every agent.
	tool(t, srv, "PATCH", "/v1/tools/"+custom.ID, map[string]any{"json_schema": map[string]any{
		"name": "census", "description": "Census figures.", "parameters": map[string]any{"type": "object", "properties": map[string]any{}}}})
	for _, a := range agents {
		if name, desc, _ := seen(a); name != "census" || desc != "Census figures." {
			t.Fatalf("after the rename: %s %q", name, desc)
		}
	}
	ok(t, srv, "DELETE", "/v1/tools/"+custom.ID, nil)
	for _, a := range agents {
		if name, _, _ := seen(a); name != "" {
			t.Fatalf("after DELETE, agent %s still has %s", a.ID, name)
		}
	}
}
