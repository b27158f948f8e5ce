package agent

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/tooldef"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// External tools run outside the actor: the run driver executes a step's
// calls to them after the model call and before OpApply (prepare → model
// → execute → apply), so a slow tool never holds the agent, and passes
// their results in ApplyRequest.ToolResults; OpApply logs them with the
// step. Prepared.External lists the step's external tools. A call that
// needs approval is not executed: the run pauses, and when the client
// approves it the service executes it before the send that answers it
// (SendRequest.ToolResults).
//
// Execution is at least once: a crash between a tool's execution and the
// commit of its step executes it again when the run resumes. The tool
// call's ID stays the same, so a tool can deduplicate.

// Built-in tools that run outside the actor.
const (
	ToolFetchWebpage = tooldef.FetchWebpage
	ToolWebSearch    = tooldef.WebSearch
	ToolRunCode      = tooldef.RunCode
)

// Kinds of external tools (ExternalTool.Kind).
const (
	ExternalWeb     = tooldef.ExternalWeb
	ExternalSandbox = tooldef.ExternalSandbox
	ExternalMCP     = tooldef.ExternalMCP
)

// ToolTypeMCP is the tool_type of a custom tool an MCP server provides.
const ToolTypeMCP = tooldef.TypeMCP

// ExternalTool tells the run driver how to execute calls to one tool.
type ExternalTool struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// ToolID is the tool's record, for custom tools.
	ToolID string `json:"tool_id,omitempty"`
	// Source is the program of a tool defined by source code.
	Source *toolexec.Source `json:"source,omitempty"`
	// MCPServerID is the MCP server record of an ExternalMCP tool.
	MCPServerID string `json:"mcp_server_id,omitempty"`
	// RequiresApproval marks a tool whose calls wait for the client's
	// approval: the driver does not execute them.
	RequiresApproval bool `json:"requires_approval,omitempty"`
	// Env is the environment the tool runs with: the agent's secrets
	// (tool_exec_environment_variables). Never logged.
	Env map[string]string `json:"env,omitempty"`
}

// ToolResult is the result of one external tool call.
type ToolResult struct {
	CallID string `json:"call_id"`
	Status string `json:"status"`
	Return string `json:"return"`
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// toolResultsMax bounds the results one request carries (the calls of
// one model answer).
const toolResultsMax = 256

// IsExternal reports whether the built-in tool name runs outside the actor.
func IsExternal(name string) bool { return tooldef.IsExternal(name) }

// ExternalTools lists the tools of ag that run outside the actor: its
// built-in ones that do, and its custom tools (custom: their current
// definitions), which run in the sandbox, or on their MCP server for
// tools an MCP server provides.
func ExternalTools(ag *Agent, custom []CustomTool) []ExternalTool {
	var env map[string]string
	if len(ag.Secrets) > 0 {
		env = make(map[string]string, len(ag.Secrets))
		for _, s := range ag.Secrets {
			env[s.Key] = s.Value
		}
	}
	var out []ExternalTool
	for _, name := range ag.Tools {
		if b, ok := builtins[name]; ok && b.External != "" {
			out = append(out, ExternalTool{Name: name, Kind: b.External, RequiresApproval: slices.Contains(ag.ApprovalRequired, name), Env: env})
		}
	}
	for i := range custom {
		ct := &custom[i]
		if ct.ToolType == ToolTypeMCP {
			out = append(out, ExternalTool{Name: ct.Name, Kind: ExternalMCP, ToolID: ct.ID, MCPServerID: ct.MCPServerID(), RequiresApproval: requiresApproval(ct, ag)})
			continue
		}
		out = append(out, ExternalTool{Name: ct.Name, Kind: ExternalSandbox, ToolID: ct.ID, RequiresApproval: requiresApproval(ct, ag), Env: env,
			Source: &toolexec.Source{Language: ct.SourceType, Code: ct.SourceCode, Requirements: ct.PipRequirements}})
	}
	return out
}

// requiresApproval reports whether a call to the custom tool waits for the
// client's approval: the tool's default_requires_approval, or the agent's
// approval setting for its name.
func requiresApproval(ct *CustomTool, ag *Agent) bool {
	return (ct.DefaultRequiresApproval != nil && *ct.DefaultRequiresApproval) || slices.Contains(ag.ApprovalRequired, ct.Name)
}

// externalTools lists the agent's tools that run outside the actor, as
// this invocation reads them.
func (t *turn) externalTools(ctx context.Context) ([]ExternalTool, error) {
	custom, err := t.customTools(ctx)
	if err != nil {
		return nil, err
	}
	return ExternalTools(t.ag, custom), nil
}

func checkToolResults(results []ToolResult) error {
	if len(results) > toolResultsMax {
		return invalidf("%d tool results, over the limit of %d", len(results), toolResultsMax)
	}
	for _, r := range results {
		if r.Status != ToolSuccess && r.Status != ToolError {
			return invalidf("tool result status %q", r.Status)
		}
		for _, s := range []string{r.Return, r.Stdout, r.Stderr} {
			if err := checkText("tool result", s, MessageBytesMax); err != nil {
				return err
			}
		}
	}
	return nil
}

// externalResult is the result the driver passed for call tc of an
// external tool.
func (t *turn) externalResult(tc ToolCall) (string, string) {
	i := slices.IndexFunc(t.results, func(r ToolResult) bool { return r.CallID == tc.ID })
	if i < 0 {
		return fmt.Sprintf("Error: %s was not executed: this server has no executor for it", tc.Name), ToolError
	}
	r := t.results[i]
	out := r.Return
	if r.Status == ToolError && out == "" {
		out = "Error: " + tc.Name + " failed"
	}
	return out, r.Status
}

// customResult is the result the driver (or, for an approved call, the
// service) passed for a call to custom tool ct, cut to its
// return_char_limit, saying so.
func (t *turn) customResult(ct *CustomTool, tc ToolCall) (string, string) {
	out, status := t.externalResult(tc)
	if status == ToolSuccess && ct.ReturnCharLimit > 0 {
		out = CutReturn(out, ct.ReturnCharLimit)
	}
	return out, status
}

// CutReturn cuts a tool's return to limit characters, saying so.
func CutReturn(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return truncateChars(s, limit) + fmt.Sprintf("\n[cut to the tool's return_char_limit of %d characters]", limit)
}
