package agent

import "testing"

func TestExternalToolsMCP(t *testing.T) {
	ag := &Agent{ApprovalRequired: []string{"get-sum"}, Secrets: []Secret{{Key: "K", Value: "v"}}}
	custom := []CustomTool{
		{ID: "tool-1", Name: "echo", ToolType: ToolTypeMCP, Metadata: map[string]any{"mcp": map[string]any{"server_name": "ev", "server_id": "mcp_server-1"}}},
		{ID: "tool-2", Name: "get-sum", ToolType: ToolTypeMCP, Metadata: map[string]any{"mcp": map[string]any{"server_id": "mcp_server-1"}}},
		{ID: "tool-3", Name: "py", SourceCode: "def py(): pass", SourceType: "python", Metadata: map[string]any{"mcp": map[string]any{"server_id": "mcp_server-1"}}},
	}
	got := ExternalTools(ag, custom)
	if len(got) != 3 {
		t.Fatalf("ExternalTools = %+v", got)
	}
	echo, sum, py := got[0], got[1], got[2]
	if echo.Kind != ExternalMCP || echo.MCPServerID != "mcp_server-1" || echo.Source != nil || echo.Env != nil || echo.RequiresApproval {
		t.Fatalf("echo = %+v, want an MCP tool of mcp_server-1 without source or secrets", echo)
	}
	if sum.Kind != ExternalMCP || !sum.RequiresApproval {
		t.Fatalf("get-sum = %+v, want an MCP tool that waits for approval", sum)
	}
	// Metadata alone does not make a tool an MCP tool: its type does.
	if py.Kind != ExternalSandbox || py.MCPServerID != "" || py.Source == nil {
		t.Fatalf("py = %+v, want a sandbox tool", py)
	}
}
