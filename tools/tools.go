// Package tools is the tools registry: the custom (user-defined) tools of
// the server, global objects shared by every agent, and a read-only view
// of the built-in tools beside them.
//
// A custom tool has an ID "tool-<uuid4>", a unique name, source code
// (run in the tool sandbox when the model calls it) and the JSON schema of its
// function, given by the creator or derived from a Python signature and
// docstring (see ParsePython). Built-in tools keep their stable IDs
// (BuiltinID) and cannot be modified or deleted.
//
// Storage layout (keys are storage/tuple tuples):
//
//	("s", "tool", id)                            the tool, JSON (tooldef.CustomTool), in the shared key space
//	("tools", "count")                           the number of custom tools (8 bytes, big-endian)
//	("i", "tools_by_name", name)                 id
//	("i", "tools_by_created", createdNanos, id)  name
//
// Every change writes the tool, its index entries and the count in one
// storage transaction, retried on conflict, so names stay unique and the
// lists never disagree with the gets.
//
// Agents hold references: attaching a custom tool records its ID in the
// agent's state (agent.Agent.CustomToolIDs), and the agent reads the
// tool's record whenever it uses its tools, in its invocation's
// transaction (agent.ResolveTools). The record is the single source of
// truth: an edit (Update, Upsert) reaches every agent that has the tool
// at its next step, and deleting the tool detaches it from all of them.
// Agents never write tool records.
package tools

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/errkind"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// Limits. Over a limit a request fails with errkind.ErrInvalid and nothing
// changes.
const (
	// ToolsMax bounds the number of custom tools. It equals
	// storage.ScanLimitMax, so a list reads the whole by-creation index in
	// one scan.
	ToolsMax = 10000
	// SourceCodeBytesMax bounds a tool's source code.
	SourceCodeBytesMax = 64 << 10
	// SchemaBytesMax bounds json_schema and args_json_schema, each.
	SchemaBytesMax = 64 << 10
	// DescriptionBytesMax bounds a tool's description.
	DescriptionBytesMax = 16 << 10
	// ReturnCharLimitMax bounds return_char_limit (Letta's bound).
	ReturnCharLimitMax = 1000000
	// DefaultReturnCharLimit is return_char_limit when none is given.
	DefaultReturnCharLimit = 50000
	// ListLimitMax bounds one page of List.
	ListLimitMax = 1000
	// tagsMax and tagBytesMax bound a tool's tags.
	tagsMax     = 64
	tagBytesMax = 256
	// sourceTypeBytesMax bounds source_type.
	sourceTypeBytesMax = 32
	// requirementsMax bounds a tool's pip requirements.
	requirementsMax = 64
)

// requirementPattern is a pip requirement Kelpie accepts: a package name
// and an optional version constraint, never a URL, path or pip option.
var requirementPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(\[[A-Za-z0-9,._-]{1,128}\])?((==|>=|<=|~=|!=|>|<)[A-Za-z0-9.*+!_-]{1,64})?$`)

// Tool types (Letta's).
const (
	TypeCustom     = "custom"
	TypeCore       = "letta_core"
	TypeMemoryCore = "letta_memory_core"
	// TypeBuiltin marks the built-in tools that run outside the agent
	// (web_search, fetch_webpage, run_code).
	TypeBuiltin = "letta_builtin"
	// TypeSleeptimeCore marks memory_rethink and memory_finish_edits, as
	// Letta types them.
	TypeSleeptimeCore = "letta_sleeptime_core"
	// TypeMCP marks custom tools an MCP server provides.
	TypeMCP = tooldef.TypeMCP
)

// ErrReadOnly: a request to modify or delete a built-in tool.
var ErrReadOnly = errors.New("tools: built-in tools cannot be modified or deleted")

// namePattern is a tool (function) name.
var namePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Tool is a tool as the registry describes it: a custom tool, or a
// built-in one (ToolType TypeCore or TypeMemoryCore, zero CreatedAt).
type Tool struct {
	tooldef.CustomTool
	ToolType string `json:"tool_type"`
}

// Builtin reports whether t is a built-in tool.
func (t *Tool) Builtin() bool { _, ok := BuiltinName(t.ID); return ok }

// BuiltinID is the stable ID of a built-in tool: "tool-" and a UUID
// derived from its name, the same on every server.
func BuiltinID(name string) string {
	h := sha256.Sum256([]byte("kelpie builtin tool " + name))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("tool-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// builtinIDs maps built-in tool IDs to names.
var builtinIDs = func() map[string]string {
	m := map[string]string{}
	for _, n := range tooldef.Names() {
		m[BuiltinID(n)] = n
	}
	return m
}()

// BuiltinName maps a built-in tool ID to the tool's name.
func BuiltinName(id string) (string, bool) {
	n, ok := builtinIDs[id]
	return n, ok
}

// IsBuiltinName reports whether name is a built-in tool's.
func IsBuiltinName(name string) bool { return slices.Contains(tooldef.Names(), name) }

// Builtin describes a built-in tool as the registry lists it.
func Builtin(t llm.Tool) Tool {
	var params map[string]any
	json.Unmarshal(t.Parameters, &params)
	toolType := TypeCore
	switch {
	case tooldef.IsExternal(t.Name):
		toolType = TypeBuiltin
	case t.Name == tooldef.MemoryRethink || t.Name == tooldef.MemoryFinishEdits:
		toolType = TypeSleeptimeCore
	case strings.Contains(t.Name, "memory") && !strings.HasPrefix(t.Name, "archival_"):
		toolType = TypeMemoryCore
	}
	return Tool{ToolType: toolType, CustomTool: tooldef.CustomTool{
		ID: BuiltinID(t.Name), Name: t.Name, Description: t.Description, Tags: []string{toolType},
		SourceType: "python", ReturnCharLimit: DefaultReturnCharLimit,
		JSONSchema: map[string]any{"name": t.Name, "description": t.Description, "parameters": params},
	}}
}

// Builtins returns every built-in tool, sorted by name.
func Builtins() []Tool {
	var out []Tool
	for _, t := range tooldef.Schemas(tooldef.Names()) {
		out = append(out, Builtin(t))
	}
	return out
}

// Spec is a tool to create (Letta's ToolCreate) or to upsert by name.
type Spec struct {
	// Name is optional: by default it is json_schema's "name", else the
	// name of the function source_code defines.
	Name string
	// Description, if empty, is json_schema's (for a derived schema: the
	// docstring's summary).
	Description string
	Tags        []string
	SourceCode  string
	// SourceType defaults to "python"; a schema is derived only from
	// Python.
	SourceType string
	// JSONSchema, if nil, is derived from SourceCode (ParsePython).
	JSONSchema     map[string]any
	ArgsJSONSchema map[string]any
	// ReturnCharLimit, if nil, is DefaultReturnCharLimit; a client's result
	// longer than this is cut to it.
	ReturnCharLimit         *int
	DefaultRequiresApproval *bool
	Metadata                map[string]any
	// PipRequirements are the Python packages the tool needs, as pip
	// requirement specifiers ("requests", "requests==2.32.3").
	PipRequirements []string

	// toolType is the stored type of the tool an update changes: an MCP
	// tool keeps the names MCP allows.
	toolType string
}

// Patch changes the fields that are non-nil (Letta's ToolUpdate). A new
// source code without a new json_schema derives the schema — and so the
// name and, unless given, the description — again.
type Patch struct {
	Description             *string
	Tags                    *[]string
	SourceCode              *string
	SourceType              *string
	JSONSchema              map[string]any
	ArgsJSONSchema          map[string]any
	ReturnCharLimit         *int
	DefaultRequiresApproval *bool
	Metadata                map[string]any
	PipRequirements         *[]string
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errkind.ErrInvalid, fmt.Sprintf(format, args...))
}

func checkText(field, s string, bytesMax int) error {
	if len(s) > bytesMax {
		return invalidf("%s is %d bytes, over the limit of %d", field, len(s), bytesMax)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

// cloneJSON deep-copies a JSON object through its encoding, bounded by
// bytesMax; nil stays nil.
func cloneJSON(field string, m map[string]any, bytesMax int) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, invalidf("%s: %v", field, err)
	}
	if len(b) > bytesMax {
		return nil, invalidf("%s is %d bytes, over the limit of %d", field, len(b), bytesMax)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, invalidf("%s: %v", field, err)
	}
	return out, nil
}

// build validates spec and returns the tool it describes (without ID and
// times).
func build(spec Spec) (*tooldef.CustomTool, error) {
	if err := checkText("source_code", spec.SourceCode, SourceCodeBytesMax); err != nil {
		return nil, err
	}
	sourceType := spec.SourceType
	if sourceType == "" {
		sourceType = "python"
	}
	if len(sourceType) > sourceTypeBytesMax || strings.TrimFunc(sourceType, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' }) != "" {
		return nil, invalidf("source_type %q: want a short lowercase word such as \"python\"", sourceType)
	}
	schema, err := cloneJSON("json_schema", spec.JSONSchema, SchemaBytesMax)
	if err != nil {
		return nil, err
	}
	if schema == nil {
		if sourceType != "python" {
			return nil, invalidf("json_schema is required: it can be derived only from Python source code, not %s", sourceType)
		}
		if schema, err = ParsePython(spec.SourceCode); err != nil {
			return nil, invalidf("could not derive json_schema from source_code (%v); fix the code or pass json_schema", err)
		}
	}
	name, _ := schema["name"].(string)
	if v, ok := schema["name"]; ok && name == "" {
		return nil, invalidf("json_schema name must be a non-empty string, not %v", v)
	}
	switch {
	case spec.Name != "" && name != "" && spec.Name != name:
		return nil, invalidf("name %q differs from json_schema name %q", spec.Name, name)
	case spec.Name != "":
		name = spec.Name
	case name == "" && sourceType == "python":
		name, _ = lastDef(spec.SourceCode)
	}
	if name == "" {
		return nil, invalidf("the tool has no name: give json_schema a \"name\"")
	}
	if spec.toolType == tooldef.TypeMCP {
		if !mcpNamePattern.MatchString(name) {
			return nil, invalidf("MCP tool name %q: want 1 to 64 letters, digits, underscores or hyphens", name)
		}
	} else if !namePattern.MatchString(name) {
		return nil, invalidf("tool name %q: want a letter or underscore, then up to 63 letters, digits or underscores", name)
	}
	schema["name"] = name
	switch p := schema["parameters"].(type) {
	case nil:
		schema["parameters"] = map[string]any{"type": "object", "properties": map[string]any{}, "required": []any{}}
	case map[string]any:
		if t, ok := p["type"]; ok && t != "object" {
			return nil, invalidf("json_schema parameters must be an object schema (type \"object\"), not type %v", t)
		}
	default:
		return nil, invalidf("json_schema parameters must be a JSON object")
	}
	desc := spec.Description
	if desc == "" {
		desc, _ = schema["description"].(string)
	} else if _, ok := schema["description"]; !ok {
		schema["description"] = desc
	}
	if err := checkText("description", desc, DescriptionBytesMax); err != nil {
		return nil, err
	}
	args, err := cloneJSON("args_json_schema", spec.ArgsJSONSchema, SchemaBytesMax)
	if err != nil {
		return nil, err
	}
	limit := DefaultReturnCharLimit
	if spec.ReturnCharLimit != nil {
		limit = *spec.ReturnCharLimit
	}
	if limit < 1 || limit > ReturnCharLimitMax {
		return nil, invalidf("return_char_limit %d outside 1..%d", limit, ReturnCharLimitMax)
	}
	if len(spec.Tags) > tagsMax {
		return nil, invalidf("%d tags, over the limit of %d", len(spec.Tags), tagsMax)
	}
	for _, t := range spec.Tags {
		if t == "" {
			return nil, invalidf("empty tag")
		}
		if err := checkText("tag", t, tagBytesMax); err != nil {
			return nil, err
		}
	}
	metadata, err := cloneJSON("metadata_", spec.Metadata, tooldef.MetadataBytesMax)
	if err != nil {
		return nil, err
	}
	if len(spec.PipRequirements) > requirementsMax {
		return nil, invalidf("%d pip requirements, over the limit of %d", len(spec.PipRequirements), requirementsMax)
	}
	for _, r := range spec.PipRequirements {
		if !requirementPattern.MatchString(r) {
			return nil, invalidf("pip requirement %q: want a package name, optionally with a version (name==1.2.3)", r)
		}
	}
	return &tooldef.CustomTool{PipRequirements: slices.Clone(spec.PipRequirements),
		Name: name, Description: desc, Tags: slices.Clone(spec.Tags), SourceCode: spec.SourceCode, SourceType: sourceType,
		JSONSchema: schema, ArgsJSONSchema: args, ReturnCharLimit: limit,
		DefaultRequiresApproval: spec.DefaultRequiresApproval, Metadata: metadata,
	}, nil
}

// Check validates spec as Create would, without writing anything, and
// returns the tool's name.
func Check(spec Spec) (string, error) {
	ct, err := build(spec)
	if err != nil {
		return "", err
	}
	return ct.Name, nil
}

// apply returns the spec of t changed by p.
func apply(t *tooldef.CustomTool, p Patch) Spec {
	limit := t.ReturnCharLimit
	spec := Spec{
		Name: "", Description: t.Description, Tags: t.Tags, SourceCode: t.SourceCode, SourceType: t.SourceType,
		JSONSchema: t.JSONSchema, ArgsJSONSchema: t.ArgsJSONSchema, ReturnCharLimit: &limit,
		DefaultRequiresApproval: t.DefaultRequiresApproval, Metadata: t.Metadata, PipRequirements: t.PipRequirements,
		toolType: t.ToolType,
	}
	if p.PipRequirements != nil {
		spec.PipRequirements = *p.PipRequirements
	}
	rederive := (p.SourceCode != nil && *p.SourceCode != t.SourceCode) || (p.SourceType != nil && *p.SourceType != t.SourceType)
	if rederive && p.JSONSchema == nil {
		spec.JSONSchema, spec.Description = nil, ""
	}
	if p.Description != nil {
		spec.Description = *p.Description
		if s, err := cloneJSON("json_schema", spec.JSONSchema, 4*SchemaBytesMax); err == nil && s != nil {
			// Keep the schema's description, which the model reads, in step.
			s["description"] = *p.Description
			spec.JSONSchema = s
		}
	}
	if p.Tags != nil {
		spec.Tags = *p.Tags
	}
	if p.SourceCode != nil {
		spec.SourceCode = *p.SourceCode
	}
	if p.SourceType != nil {
		spec.SourceType = *p.SourceType
	}
	if p.JSONSchema != nil {
		spec.JSONSchema = p.JSONSchema
		if _, ok := p.JSONSchema["description"]; ok && p.Description == nil {
			spec.Description = "" // the new schema's description
		}
	}
	if p.ArgsJSONSchema != nil {
		spec.ArgsJSONSchema = p.ArgsJSONSchema
	}
	if p.ReturnCharLimit != nil {
		spec.ReturnCharLimit = p.ReturnCharLimit
	}
	if p.DefaultRequiresApproval != nil {
		spec.DefaultRequiresApproval = p.DefaultRequiresApproval
	}
	if p.Metadata != nil {
		spec.Metadata = p.Metadata
	}
	return spec
}
