package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/mcpclient/mcptest"
	"github.com/kelpie-ai/kelpie/mcpservers"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// mcpServer starts the API with the MCP routes over an in-memory store.
func mcpServer(t *testing.T, allowStdio bool) (*httptest.Server, *mcpservers.Registry) {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, llmtest.Echo())
	if err != nil {
		t.Fatal(err)
	}
	pool := mcpclient.NewPool(mcpclient.Options{AllowStdio: allowStdio})
	servers := mcpservers.New(r, store, r.Rand("mcp"), mcpservers.Options{AllowStdio: allowStdio})
	srv := httptest.NewServer(api.New(svc, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithMCP(servers, pool)))
	t.Cleanup(func() {
		srv.Close()
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return srv, servers
}

// conformEach checks each element of a JSON array against the schema
// its "type" or "mcp_server_type" selects.
func conformEach(t *testing.T, body []byte, schemas map[string]string) {
	t.Helper()
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("not an array: %s", body)
	}
	for _, it := range items {
		var typ struct{ Type, MCPServerType string }
		var raw map[string]any
		if err := json.Unmarshal(it, &raw); err != nil {
			t.Fatal(err)
		}
		typ.Type, _ = raw["type"].(string)
		typ.MCPServerType, _ = raw["mcp_server_type"].(string)
		ref := schemas[typ.Type+typ.MCPServerType]
		if ref == "" {
			t.Fatalf("item of unknown type: %s", it)
		}
		conform(t, it, ref, false)
	}
}

const secretToken = "tok-0123456789abcdef-SECRET"

func TestMCPServersAPI(t *testing.T) {
	everything := mcptest.StartHTTP(t, mcptest.StreamableHTTP)
	srv, servers := mcpServer(t, false)

	body := ok(t, srv, "POST", "/v1/mcp-servers", map[string]any{"server_name": "everything", "config": map[string]any{
		"mcp_server_type": "streamable_http", "server_url": everything.URL(), "auth_header": "X-Api-Key", "auth_token": secretToken,
		"custom_headers": map[string]string{"X-Other": "another-long-secret-value"},
	}})
	conform(t, body, "StreamableHTTPMCPServer", false)
	if strings.Contains(string(body), "SECRET") || strings.Contains(string(body), "another-long") {
		t.Fatalf("create answered a secret in clear: %s", body)
	}
	created := decodeAs[struct {
		ID        string `json:"id"`
		AuthToken string `json:"auth_token"`
	}](t, body)
	if !strings.HasPrefix(created.ID, "mcp_server-") || created.AuthToken != "****CRET" {
		t.Fatalf("created %s", body)
	}
	base := "/v1/mcp-servers/" + created.ID

	list := ok(t, srv, "GET", "/v1/mcp-servers", nil)
	conform(t, list, "StreamableHTTPMCPServer", true)
	got := ok(t, srv, "GET", base, nil)
	conform(t, got, "StreamableHTTPMCPServer", false)
	if strings.Contains(string(list)+string(got), "SECRET") {
		t.Fatalf("a GET answered the token in clear: %s %s", list, got)
	}
	fails(t, srv, "GET", "/v1/mcp-servers/mcp_server-00000000-0000-4000-8000-000000000000", nil, http.StatusNotFound, "MCP server")
	fails(t, srv, "GET", "/v1/mcp-servers/agent-1", nil, http.StatusUnprocessableEntity, "mcp_server_id")
	fails(t, srv, "POST", "/v1/mcp-servers", map[string]any{"server_name": "everything", "config": map[string]any{"mcp_server_type": "sse", "server_url": everything.URL()}},
		http.StatusConflict, "exists already")

	// Sending the masked token back keeps the stored one.
	upd := ok(t, srv, "PATCH", base, map[string]any{"config": map[string]any{"mcp_server_type": "streamable_http", "server_url": everything.URL(), "auth_token": "****CRET"}})
	conform(t, upd, "StreamableHTTPMCPServer", false)
	if s, err := servers.Get(context.Background(), created.ID); err != nil || s.Config.AuthToken != secretToken || s.Config.CustomHeaders["X-Other"] != "another-long-secret-value" {
		t.Fatalf("after the update the record is %+v, %v; want the token and headers kept", s, err)
	}

	// Creation recorded the server's tools.
	tools := ok(t, srv, "GET", base+"/tools", nil)
	conform(t, tools, "Tool", true)
	recorded := decodeAs[[]struct {
		ID, Name string
		ToolType string `json:"tool_type"`
	}](t, tools)
	i := slices.IndexFunc(recorded, func(tl struct {
		ID, Name string
		ToolType string `json:"tool_type"`
	}) bool {
		return tl.Name == "echo"
	})
	if i < 0 || recorded[i].ToolType != "external_mcp" {
		t.Fatalf("server tools %s", tools)
	}
	echoID := recorded[i].ID
	conform(t, ok(t, srv, "GET", base+"/tools/"+echoID, nil), "Tool", false)
	conform(t, ok(t, srv, "GET", "/v1/tools/"+echoID, nil), "Tool", false)

	run := ok(t, srv, "POST", base+"/tools/"+echoID+"/run", map[string]any{"args": map[string]any{"message": "over the API"}})
	conform(t, run, "ToolExecutionResult", false)
	if r := decodeAs[struct {
		Status     string `json:"status"`
		FuncReturn string `json:"func_return"`
	}](t, run); r.Status != "success" || r.FuncReturn != "Echo: over the API" {
		t.Fatalf("run = %s", run)
	}
	refreshed := ok(t, srv, "PATCH", base+"/refresh", nil)
	if !strings.Contains(string(refreshed), `"echo"`) {
		t.Fatalf("refresh = %s", refreshed)
	}

	// Deleting the server deletes its tools.
	if status, out := call(t, srv, "DELETE", base, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", status, out)
	}
	fails(t, srv, "GET", "/v1/tools/"+echoID, nil, http.StatusNotFound, echoID)
	fails(t, srv, "GET", base, nil, http.StatusNotFound, "MCP server")

	// stdio servers are refused on this server.
	node, index := mcptest.Everything(t)
	fails(t, srv, "POST", "/v1/mcp-servers", map[string]any{"server_name": "local", "config": map[string]any{"mcp_server_type": "stdio", "command": node, "args": []string{index, "stdio"}}},
		http.StatusForbidden, "stdio MCP servers are disabled")
}

func TestLegacyMCPServersAPI(t *testing.T) {
	everything := mcptest.StartHTTP(t, mcptest.SSE)
	srv, _ := mcpServer(t, false)
	legacy := map[string]string{"sse": "SSEServerConfig", "stdio": "StdioServerConfig", "streamable_http": "StreamableHTTPServerConfig"}

	added := ok(t, srv, "PUT", "/v1/tools/mcp/servers", map[string]any{"server_name": "ev", "type": "sse", "server_url": everything.URL(), "auth_token": secretToken})
	conformEach(t, added, legacy)
	if strings.Contains(string(added), "SECRET") {
		t.Fatalf("add answered the token in clear: %s", added)
	}
	all := decodeAs[map[string]json.RawMessage](t, ok(t, srv, "GET", "/v1/tools/mcp/servers", nil))
	if len(all) != 1 || all["ev"] == nil {
		t.Fatalf("servers = %v", all)
	}
	conform(t, all["ev"], "SSEServerConfig", false)

	live := ok(t, srv, "GET", "/v1/tools/mcp/servers/ev/tools", nil)
	conform(t, live, "MCPTool", true)
	if !strings.Contains(string(live), `"name":"echo"`) {
		t.Fatalf("tools = %s", live)
	}
	tl := ok(t, srv, "POST", "/v1/tools/mcp/servers/ev/echo", nil)
	conform(t, tl, "Tool", false)
	rec := decodeAs[struct {
		Name     string         `json:"name"`
		ToolType string         `json:"tool_type"`
		Tags     []string       `json:"tags"`
		Metadata map[string]any `json:"metadata_"`
	}](t, tl)
	if mcp, _ := rec.Metadata["mcp"].(map[string]any); rec.ToolType != "external_mcp" || !slices.Contains(rec.Tags, "mcp:ev") || mcp["server_name"] != "ev" {
		t.Fatalf("added tool %s", tl)
	}
	fails(t, srv, "POST", "/v1/tools/mcp/servers/ev/no-such-tool", nil, http.StatusNotFound, "no-such-tool")
	fails(t, srv, "GET", "/v1/tools/mcp/servers/nobody/tools", nil, http.StatusNotFound, "nobody")

	exec := ok(t, srv, "POST", "/v1/tools/mcp/servers/ev/tools/echo/execute", map[string]any{"args": map[string]any{"message": "legacy"}})
	conform(t, exec, "ToolExecutionResult", false)
	if !strings.Contains(string(exec), "Echo: legacy") {
		t.Fatalf("execute = %s", exec)
	}
	if res := ok(t, srv, "POST", "/v1/tools/mcp/servers/ev/resync", nil); !strings.Contains(string(res), `"echo"`) {
		t.Fatalf("resync = %s", res)
	}
	tested := ok(t, srv, "POST", "/v1/tools/mcp/servers/test", map[string]any{"server_name": "probe", "type": "sse", "server_url": everything.URL()})
	conform(t, tested, "MCPTool", true)

	upd := ok(t, srv, "PATCH", "/v1/tools/mcp/servers/ev", map[string]any{"server_name": "ev2"})
	conform(t, upd, "SSEServerConfig", false)
	if !strings.Contains(string(upd), `"server_name":"ev2"`) {
		t.Fatalf("update = %s", upd)
	}
	left := ok(t, srv, "DELETE", "/v1/tools/mcp/servers/ev2", nil)
	if string(left) != "[]" {
		t.Fatalf("after delete: %s", left)
	}

	// A server that is not listening: adding it records it without
	// tools; listing its tools is a gateway error, promptly.
	everything.Kill()
	ok(t, srv, "PUT", "/v1/tools/mcp/servers", map[string]any{"server_name": "down", "type": "sse", "server_url": everything.URL()})
	fails(t, srv, "GET", "/v1/tools/mcp/servers/down/tools", nil, http.StatusBadGateway, "down")
}
