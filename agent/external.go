package agent

import (
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/webtools"
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
	ToolFetchWebpage = webtools.NameFetchWebpage
	ToolWebSearch    = webtools.NameWebSearch
)

func init() {
	for _, tl := range webtools.Tools() {
		builtins[tl.Name] = builtin{description: tl.Description, params: string(tl.Parameters), external: ExternalWeb}
	}
}

// Kinds of external tools (ExternalTool.Kind).
const (
	// ExternalWeb: fetch_webpage and web_search.
	ExternalWeb = "web"
)

// ExternalTool tells the run driver how to execute calls to one tool.
type ExternalTool struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// ToolID is the tool's record, for custom tools.
	ToolID string `json:"tool_id,omitempty"`
	// Source is the program of a tool defined by source code.
	Source *toolexec.Source `json:"source,omitempty"`
	// RequiresApproval marks a tool whose calls wait for the client's
	// approval: the driver does not execute them.
	RequiresApproval bool `json:"requires_approval,omitempty"`
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
func IsExternal(name string) bool {
	b, ok := builtins[name]
	return ok && b.external != ""
}

// externalTools lists the agent's tools that run outside the actor.
func (t *turn) externalTools() []ExternalTool {
	var out []ExternalTool
	for _, name := range t.ag.Tools {
		if b, ok := builtins[name]; ok && b.external != "" {
			out = append(out, ExternalTool{Name: name, Kind: b.external, RequiresApproval: slices.Contains(t.ag.ApprovalRequired, name)})
		}
	}
	return out
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
