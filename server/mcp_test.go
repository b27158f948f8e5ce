package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/mcpclient/mcptest"
)

// toolModel calls tool with args when a user message arrives, and ends
// its turn once the tool has answered.
func toolModel(tool string, args map[string]any) *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("done"), nil
		}
		return llmtest.Call(tool, args), nil
	}}
}

// startMCPNode starts a node on a memory store whose model calls the MCP
// tool echo with {"message": "hi"}.
func startMCPNode(t *testing.T, allowStdio bool) string {
	t.Helper()
	return startMCPNodeWith(t, Config{Model: toolModel("echo", map[string]any{"message": "hi"}), MCPAllowStdio: allowStdio})
}

// startMCPNodeWith starts a node on a memory store configured by cfg.
func startMCPNodeWith(t *testing.T, cfg Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cfg.Storage, cfg.ToolSandbox, cfg.DataDir = "memory", SandboxNone, t.TempDir()
	s, err := Start(ctx, quietConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + s.Addr()
}

// apiCall sends a JSON request and returns the status and body.
func apiCall(t *testing.T, base, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

// apiOK requires a 200 and decodes the body into a value of type T.
func apiOK[T any](t *testing.T, base, method, path string, body any) T {
	t.Helper()
	status, out := apiCall(t, base, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, path, status, out)
	}
	var v T
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s %s: decoding %s: %v", method, path, out, err)
	}
	return v
}

type toolJSON struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	ToolType string         `json:"tool_type"`
	Tags     []string       `json:"tags"`
	Metadata map[string]any `json:"metadata_"`
	Schema   struct {
		Parameters struct {
			Properties map[string]any `json:"properties"`
			Required   []string       `json:"required"`
		} `json:"parameters"`
	} `json:"json_schema"`
}

type messageJSON struct {
	MessageType string `json:"message_type"`
	ToolReturn  string `json:"tool_return"`
	Status      string `json:"status"`
}

// echoRun registers the server config under name, attaches its echo tool
// to a new agent, and sends a message, whose run calls echo; it returns
// the tool return message of the run.
func echoRun(t *testing.T, base, name string, config map[string]any) messageJSON {
	t.Helper()
	srv := apiOK[map[string]any](t, base, "POST", "/v1/mcp-servers", map[string]any{"server_name": name, "config": config})
	id, _ := srv["id"].(string)
	if !strings.HasPrefix(id, "mcp_server-") || srv["server_name"] != name {
		t.Fatalf("created server %v", srv)
	}
	tools := apiOK[[]toolJSON](t, base, "GET", "/v1/mcp-servers/"+id+"/tools", nil)
	i := slices.IndexFunc(tools, func(tl toolJSON) bool { return tl.Name == "echo" })
	if i < 0 {
		t.Fatalf("no echo among the server's %d tools", len(tools))
	}
	echo := tools[i]
	mcp, _ := echo.Metadata["mcp"].(map[string]any)
	if echo.ToolType != "external_mcp" || !slices.Contains(echo.Tags, "mcp:"+name) || mcp["server_id"] != id || mcp["server_name"] != name {
		t.Fatalf("echo tool = %+v", echo)
	}
	if _, ok := echo.Schema.Parameters.Properties["message"]; !ok || !slices.Contains(echo.Schema.Parameters.Required, "message") {
		t.Fatalf("echo schema = %+v, want the server's input schema", echo.Schema)
	}
	ag := apiOK[struct{ ID string }](t, base, "POST", "/v1/agents", map[string]any{"name": "mcp-" + name, "model": "openai/gpt-4o-mini"})
	apiOK[map[string]any](t, base, "PATCH", "/v1/agents/"+ag.ID+"/tools/attach/"+echo.ID, nil)
	return toolReturnOf(t, base, ag.ID)
}

// toolReturnOf sends the agent a message and returns its run's tool
// return message.
func toolReturnOf(t *testing.T, base, agentID string) messageJSON {
	t.Helper()
	res := apiOK[struct {
		Messages []messageJSON `json:"messages"`
	}](t, base, "POST", "/v1/agents/"+agentID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "say hi"}}})
	i := slices.IndexFunc(res.Messages, func(m messageJSON) bool { return m.MessageType == "tool_return_message" })
	if i < 0 {
		t.Fatalf("no tool return in the run's messages %+v", res.Messages)
	}
	return res.Messages[i]
}

func TestMCPStreamableHTTP(t *testing.T) {
	everything := mcptest.StartHTTP(t, mcptest.StreamableHTTP)
	base := startMCPNode(t, false)
	ret := echoRun(t, base, "everything", map[string]any{"mcp_server_type": "streamable_http", "server_url": everything.URL()})
	if ret.Status != "success" || ret.ToolReturn != "Echo: hi" {
		t.Fatalf("echo's return = %+v, want success \"Echo: hi\"", ret)
	}

	// The server dies: the next run's call is a tool error, and the run
	// ends.
	everything.Kill()
	ags := apiOK[[]struct{ ID string }](t, base, "GET", "/v1/agents", nil)
	if len(ags) != 1 {
		t.Fatalf("%d agents", len(ags))
	}
	ret = toolReturnOf(t, base, ags[0].ID)
	if ret.Status != "error" || !strings.Contains(ret.ToolReturn, "everything") {
		t.Fatalf("echo's return with its server dead = %+v, want an error naming the server", ret)
	}
	// It comes back: the pool connects again.
	everything.Start()
	if ret = toolReturnOf(t, base, ags[0].ID); ret.Status != "success" || ret.ToolReturn != "Echo: hi" {
		t.Fatalf("echo's return after the server restarted = %+v", ret)
	}
}

// Over SSE, the older HTTP transport, a run's call reaches the server too.
func TestMCPSSE(t *testing.T) {
	everything := mcptest.StartHTTP(t, mcptest.SSE)
	base := startMCPNode(t, false)
	ret := echoRun(t, base, "everything-sse", map[string]any{"mcp_server_type": "sse", "server_url": everything.URL()})
	if ret.Status != "success" || ret.ToolReturn != "Echo: hi" {
		t.Fatalf("echo's return over SSE = %+v, want success \"Echo: hi\"", ret)
	}
}

func TestMCPStdio(t *testing.T) {
	node, index := mcptest.Everything(t)
	config := map[string]any{"mcp_server_type": "stdio", "command": node, "args": []string{index, "stdio"}, "env": map[string]string{"GREETING": "a-secret-value-of-some-length"}}

	t.Run("disabled", func(t *testing.T) {
		base := startMCPNode(t, false)
		status, out := apiCall(t, base, "POST", "/v1/mcp-servers", map[string]any{"server_name": "local", "config": config})
		if status != http.StatusForbidden || !strings.Contains(string(out), "stdio MCP servers are disabled") {
			t.Fatalf("creating a stdio server with stdio disabled = %d %s", status, out)
		}
		if got := apiOK[[]any](t, base, "GET", "/v1/mcp-servers", nil); len(got) != 0 {
			t.Fatalf("servers after the refusal: %v", got)
		}
	})
	t.Run("enabled", func(t *testing.T) {
		base := startMCPNode(t, true)
		ret := echoRun(t, base, "local", config)
		if ret.Status != "success" || ret.ToolReturn != "Echo: hi" {
			t.Fatalf("echo's return = %+v, want success \"Echo: hi\"", ret)
		}
		// The env value is stored but shown masked.
		status, out := apiCall(t, base, "GET", "/v1/mcp-servers", nil)
		if status != http.StatusOK || strings.Contains(string(out), "a-secret-value") || !strings.Contains(string(out), "****ngth") {
			t.Fatalf("GET /v1/mcp-servers = %d %s, want the env value masked", status, out)
		}
	})
}

// A tool call the server does not answer in time is a tool error, and
// the run ends.
func TestMCPCallTimeout(t *testing.T) {
	everything := mcptest.StartHTTP(t, mcptest.StreamableHTTP)
	const slow = "trigger-long-running-operation"
	base := startMCPNodeWith(t, Config{Model: toolModel(slow, map[string]any{"duration": 60, "steps": 1}), MCPCallTimeout: time.Second})
	srv := apiOK[struct{ ID string }](t, base, "POST", "/v1/mcp-servers", map[string]any{"server_name": "everything",
		"config": map[string]any{"mcp_server_type": "streamable_http", "server_url": everything.URL()}})
	tools := apiOK[[]toolJSON](t, base, "GET", "/v1/mcp-servers/"+srv.ID+"/tools", nil)
	i := slices.IndexFunc(tools, func(tl toolJSON) bool { return tl.Name == slow })
	if i < 0 {
		t.Fatalf("no %s among the server's tools", slow)
	}
	ag := apiOK[struct{ ID string }](t, base, "POST", "/v1/agents", map[string]any{"name": "patient", "model": "openai/gpt-4o-mini"})
	apiOK[map[string]any](t, base, "PATCH", "/v1/agents/"+ag.ID+"/tools/attach/"+tools[i].ID, nil)
	ret := toolReturnOf(t, base, ag.ID)
	if ret.Status != "error" || !strings.Contains(ret.ToolReturn, "did not answer in time") {
		t.Fatalf("%s's return = %+v, want a timeout error", slow, ret)
	}
}
