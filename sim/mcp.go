package sim

import (
	"context"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
	"github.com/kelpie-ai/kelpie/tools"
)

// The workload's MCP tool: one tool of a simulated MCP server (an
// external_mcp tool record, as registering a server makes), attached to a
// new agent with probability 1/mcpToolOneIn, which the simulated model
// calls now and then. Its calls go to the simulated server in Tools, with
// its faults (MCPTimeout, MCPConnectionDropped); each must get exactly one
// return in the log (ToolCallsAnswered).
const (
	// MCPToolName is the workload's MCP tool.
	MCPToolName = "sim_mcp_echo"
	// mcpServerID names the simulated MCP server.
	mcpServerID  = "mcp_server-00000000-0000-4000-8000-000000000001"
	mcpToolOneIn = 2
)

// createMCPTool records the MCP server's tool; on success its ID is
// w.mcpToolID.
func (w *customToolWork) createMCPTool(r rt.Runtime) {
	for range createToolAttempts {
		var t *tools.Tool
		op, _ := w.invoke(r, -1, func(ctx context.Context, svc *service.Service) error {
			var err error
			t, err = svc.Tools().UpsertMCP(ctx, tools.MCPToolSpec{ServerID: mcpServerID, ServerName: "sim", Name: MCPToolName,
				Description: "Echoes through the simulated MCP server.",
				InputSchema: map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}})
			return err
		})
		if op.Outcome == check.OK && op.Found {
			w.mcpToolID = t.ID
			return
		}
		r.Sleep(context.Background(), 100*time.Millisecond)
	}
}
