package tools

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/kelpie-ai/kelpie/errkind"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// MCP tools. A tool an MCP server provides is a custom tool record with
// tool_type external_mcp, the tag "mcp:<server name>" and metadata_
// {"mcp": {"server_name", "server_id"}}; its json_schema's parameters are
// the server's input schema. It has no source code: the run driver calls
// it on its server (tooldef.ExternalMCP). Agents attach it like any custom
// tool.

// mcpNamePattern is the name of an MCP tool: what function-calling APIs
// accept, which unlike namePattern includes hyphens.
var mcpNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// MCPToolSpec is a tool of an MCP server to record.
type MCPToolSpec struct {
	// ServerID and ServerName name the server's record.
	ServerID, ServerName string
	// Name is the server's name for the tool, which the model calls.
	Name        string
	Description string
	// InputSchema is the JSON Schema of the tool's arguments.
	InputSchema map[string]any
}

// MCPTag is the tag of the tools of the MCP server named server.
func MCPTag(server string) string { return "mcp:" + server }

// buildMCP validates spec and returns its tool record (without ID and
// times).
func buildMCP(spec MCPToolSpec) (*tooldef.CustomTool, error) {
	if !mcpNamePattern.MatchString(spec.Name) {
		return nil, invalidf("MCP tool name %q: want 1 to 64 letters, digits, underscores or hyphens", spec.Name)
	}
	if IsBuiltinName(spec.Name) {
		return nil, fmt.Errorf("%w: the MCP tool %q has the name of a built-in tool", errkind.ErrAlreadyExists, spec.Name)
	}
	if spec.ServerID == "" || spec.ServerName == "" {
		return nil, invalidf("an MCP tool needs its server's ID and name")
	}
	if err := checkText("description", spec.Description, DescriptionBytesMax); err != nil {
		return nil, err
	}
	params, err := cloneJSON("input schema", spec.InputSchema, SchemaBytesMax)
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = map[string]any{"type": "object", "properties": map[string]any{}}
	}
	if t, ok := params["type"]; ok && t != "object" {
		return nil, invalidf("the input schema of MCP tool %q has type %v, not object", spec.Name, t)
	}
	return &tooldef.CustomTool{
		Name: spec.Name, Description: spec.Description, Tags: []string{MCPTag(spec.ServerName)},
		JSONSchema:      map[string]any{"name": spec.Name, "description": spec.Description, "parameters": params},
		ReturnCharLimit: DefaultReturnCharLimit, ToolType: tooldef.TypeMCP,
		Metadata: map[string]any{"mcp": map[string]any{"server_name": spec.ServerName, "server_id": spec.ServerID}},
	}, nil
}

// UpsertMCP records a tool of an MCP server: a new record, or a new
// definition for the record of the same name if that is a tool of the
// same server (which keeps its ID, and so its agents). A name taken by
// any other tool is errkind.ErrAlreadyExists.
func (r *Registry) UpsertMCP(ctx context.Context, spec MCPToolSpec) (*Tool, error) {
	t, err := buildMCP(spec)
	if err != nil {
		return nil, err
	}
	newID, now := rt.NewID(r.ids, "tool"), r.rt.Now().UTC()
	err = r.txn(ctx, func(tx *storage.Txn) error {
		t.UpdatedAt = now
		id, err := tx.Get(ctx, ByNameKey(t.Name))
		if errors.Is(err, storage.ErrNotFound) {
			t.ID, t.CreatedAt = newID, now
			return insert(ctx, tx, t)
		}
		if err != nil {
			return err
		}
		old, err := load(ctx, tx, string(id))
		if err != nil {
			return err
		}
		if old.MCPServerID() != spec.ServerID {
			return fmt.Errorf("%w: a tool named %q exists already (%s) and is not a tool of MCP server %s", errkind.ErrAlreadyExists, t.Name, old.ID, spec.ServerName)
		}
		t.ID, t.CreatedAt = old.ID, old.CreatedAt
		if old.DefaultRequiresApproval != nil {
			t.DefaultRequiresApproval = old.DefaultRequiresApproval
		}
		return save(tx, t)
	})
	if err != nil {
		return nil, err
	}
	return custom(t), nil
}

// MCPTools returns the recorded tools of the MCP server with the given
// ID, oldest first.
func (r *Registry) MCPTools(ctx context.Context, serverID string) ([]Tool, error) {
	all, err := r.List(ctx, Query{})
	if err != nil {
		return nil, err
	}
	var out []Tool
	for _, t := range all {
		if t.MCPServerID() == serverID {
			out = append(out, t)
		}
	}
	return out, nil
}
