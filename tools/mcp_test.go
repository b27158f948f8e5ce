package tools_test

import (
	"context"
	"errors"
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
