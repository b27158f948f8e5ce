package tooldef

import (
	"encoding/json"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
)

// CustomTool is a user-defined tool: a record of the tools registry
// (package tools), which agents attach by reference (agent.Agent.CustomToolIDs).
// A call to one runs outside the actor: in the tool sandbox for a tool
// with source code, on its server for an MCP tool; one that
// requires approval pauses the run first.
type CustomTool struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	SourceCode  string   `json:"source_code,omitempty"`
	SourceType  string   `json:"source_type,omitempty"`
	// JSONSchema is the function schema: {"name", "description",
	// "parameters"}; the model is offered its parameters.
	JSONSchema      map[string]any `json:"json_schema"`
	ArgsJSONSchema  map[string]any `json:"args_json_schema,omitempty"`
	ReturnCharLimit int            `json:"return_char_limit,omitempty"`
	// DefaultRequiresApproval is recorded; every custom tool call waits
	// for the client anyway.
	DefaultRequiresApproval *bool `json:"default_requires_approval,omitempty"`
	// PipRequirements are the Python packages the tool needs (pip
	// requirement specifiers), installed for it by the sandbox.
	PipRequirements []string       `json:"pip_requirements,omitempty"`
	Metadata        map[string]any `json:"metadata,omitempty"`
	// ToolType is "" for a tool defined by source code, TypeMCP for
	// one an MCP server provides.
	ToolType  string    `json:"tool_type,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// LLMTool describes the custom tool for the model.
func (ct *CustomTool) LLMTool() llm.Tool {
	desc := ct.Description
	if d, ok := ct.JSONSchema["description"].(string); ok && desc == "" {
		desc = d
	}
	params, err := json.Marshal(ct.JSONSchema["parameters"])
	if err != nil || ct.JSONSchema["parameters"] == nil {
		params = []byte(`{"type":"object","properties":{}}`)
	}
	return llm.Tool{Name: ct.Name, Description: desc, Parameters: params}
}

// MCPServerID is the ID of the MCP server that provides ct, from its
// metadata_ ({"mcp": {"server_id": ...}}); "" if ct is not an MCP tool.
func (ct *CustomTool) MCPServerID() string {
	if ct.ToolType != TypeMCP {
		return ""
	}
	m, _ := ct.Metadata["mcp"].(map[string]any)
	id, _ := m["server_id"].(string)
	return id
}
