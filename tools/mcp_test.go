package tools_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/tools"
)

func TestUpsertMCP(t *testing.T) {
	ctx := context.Background()
	reg, store := registry()
	defer store.Close()
	spec := tools.MCPToolSpec{ServerID: "mcp_server-1", ServerName: "ev", Name: "get-sum", Description: "adds",
		InputSchema: map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "number"}}}}
	first, err := reg.UpsertMCP(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if first.ToolType != tools.TypeMCP || first.Builtin() || first.MCPServerID() != "mcp_server-1" || first.Tags[0] != "mcp:ev" {
		t.Fatalf("recorded %+v", first)
	}
	if p, _ := first.JSONSchema["parameters"].(map[string]any); p["properties"] == nil {
		t.Fatalf("json_schema = %v, want the input schema as parameters", first.JSONSchema)
	}
	// Again: the same record, a new definition.
	spec.Description = "adds two numbers"
	again, err := reg.UpsertMCP(ctx, spec)
	if err != nil || again.ID != first.ID || again.Description != "adds two numbers" {
		t.Fatalf("second upsert = %+v, %v; want the same ID, the new description", again, err)
	}
	got, err := reg.Get(ctx, first.ID)
	if err != nil || got.ToolType != tools.TypeMCP {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// Another server's tool of the same name is refused.
	other := spec
	other.ServerID, other.ServerName = "mcp_server-2", "other"
	if _, err := reg.UpsertMCP(ctx, other); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("another server's get-sum: %v, want ErrAlreadyExists", err)
	}
	if list, err := reg.MCPTools(ctx, "mcp_server-1"); err != nil || len(list) != 1 || list[0].ID != first.ID {
		t.Fatalf("MCPTools = %+v, %v", list, err)
	}
	// An update keeps the type, and the name MCP allows.
	desc := "adds, updated"
	upd, err := reg.Update(ctx, first.ID, tools.Patch{Description: &desc})
	if err != nil || upd.ToolType != tools.TypeMCP || upd.Name != "get-sum" || upd.MCPServerID() != "mcp_server-1" {
		t.Fatalf("Update = %+v, %v", upd, err)
	}
	bad := spec
	bad.Name = "has space"
	if _, err := reg.UpsertMCP(ctx, bad); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("name with a space: %v, want ErrInvalid", err)
	}
}

// Lists filtered by tool type tell MCP tools from other custom tools.
func TestListByTypeFindsMCPTools(t *testing.T) {
	ctx := context.Background()
	reg, store := registry()
	defer store.Close()
	mcp, err := reg.UpsertMCP(ctx, tools.MCPToolSpec{ServerID: "mcp_server-1", ServerName: "ev", Name: "echo",
		InputSchema: map[string]any{"type": "object"}})
	if err != nil {
		t.Fatal(err)
	}
	own, err := reg.Create(ctx, tools.Spec{SourceCode: "def mine(q: str) -> str:\n    \"\"\"Mine.\"\"\"\n    return q\n"})
	if err != nil {
		t.Fatal(err)
	}
	names := func(q tools.Query) []string {
		t.Helper()
		ts, err := reg.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tl := range ts {
			out = append(out, tl.Name)
		}
		return out
	}
	if got := names(tools.Query{Types: []string{tools.TypeMCP}}); len(got) != 1 || got[0] != mcp.Name {
		t.Fatalf("external_mcp tools: %v", got)
	}
	if got := names(tools.Query{Types: []string{tools.TypeCustom}}); len(got) != 1 || got[0] != own.Name {
		t.Fatalf("custom tools: %v", got)
	}
	if got := names(tools.Query{ExcludeTypes: []string{tools.TypeMCP, tools.TypeCustom}}); len(got) == 0 || slices.Contains(got, mcp.Name) || slices.Contains(got, own.Name) {
		t.Fatalf("excluding both: %v", got)
	}
	if n, err := reg.Count(ctx, tools.Query{Types: []string{tools.TypeMCP}}); err != nil || n != 1 {
		t.Fatalf("count of external_mcp tools = %d, %v", n, err)
	}
}
