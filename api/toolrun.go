package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/toolexec"
	toolreg "github.com/kelpie-ai/kelpie/tools"
)

// Running a tool on its own: POST /v1/tools/run runs source code in the
// tool sandbox (a tool that is not saved), and POST
// /v1/agents/{agent_id}/tools/{tool_name}/run runs one of an agent's
// tools that run outside it. Neither logs anything. A return longer than
// toolreg.DefaultReturnCharLimit characters is cut, saying so.

func (h *handler) toolRunRoutes() {
	h.route("POST /v1/tools/run", h.runToolFromSource)
	h.route("POST /v1/agents/{agent_id}/tools/{tool_name}/run", h.runAgentTool)
}

// toolRunRequest is Letta's ToolRunFromSource.
type toolRunRequest struct {
	SourceCode      *string           `json:"source_code"`
	Args            map[string]any    `json:"args"`
	EnvVars         map[string]string `json:"env_vars"`
	Name            string            `json:"name"`
	SourceType      string            `json:"source_type"`
	JSONSchema      map[string]any    `json:"json_schema"`
	PipRequirements []pipRequirement  `json:"pip_requirements"`
}

// toolReturnWire is Letta's ToolReturnMessage.
type toolReturnWire struct {
	ID          string   `json:"id"`
	Date        string   `json:"date"`
	MessageType string   `json:"message_type"`
	ToolReturn  string   `json:"tool_return"`
	Status      string   `json:"status"`
	ToolCallID  string   `json:"tool_call_id"`
	Stdout      []string `json:"stdout"`
	Stderr      []string `json:"stderr"`
}

func (h *handler) runToolFromSource(w http.ResponseWriter, r *http.Request) {
	var req toolRunRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.SourceCode == nil {
		writeError(w, http.StatusUnprocessableEntity, "source_code is required")
		return
	}
	if req.Args == nil {
		req.Args = map[string]any{}
	}
	spec := toolreg.Spec{Name: req.Name, SourceCode: *req.SourceCode, SourceType: req.SourceType, JSONSchema: req.JSONSchema,
		PipRequirements: specifiers(req.PipRequirements)}
	name, err := toolreg.Check(spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	args, err := json.Marshal(req.Args)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "args: "+err.Error())
		return
	}
	sourceType := req.SourceType
	if sourceType == "" {
		sourceType = "python"
	}
	res := h.svc.RunTool(r.Context(), toolexec.Call{Name: name, Arguments: args, Env: req.EnvVars,
		Source: &toolexec.Source{Language: sourceType, Code: *req.SourceCode, Requirements: spec.PipRequirements}})
	writeJSON(w, http.StatusOK, toolReturnWire{ID: streamChunkID(res.CallID, 0), Date: timeString(time.Now()), MessageType: "tool_return_message",
		ToolReturn: agent.CutReturn(res.Return, toolreg.DefaultReturnCharLimit), Status: res.Status, ToolCallID: res.CallID,
		Stdout: lines(res.Stdout), Stderr: lines(res.Stderr)})
}

func (h *handler) runAgentTool(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req struct {
		Args map[string]any `json:"args"`
	}
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	if req.Args == nil {
		req.Args = map[string]any{}
	}
	args, err := json.Marshal(req.Args)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "args: "+err.Error())
		return
	}
	res, err := h.svc.RunAgentTool(r.Context(), id, r.PathValue("tool_name"), args)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var ret any = agent.CutReturn(res.Return, toolreg.DefaultReturnCharLimit)
	writeJSON(w, http.StatusOK, map[string]any{"status": res.Status, "func_return": ret, "stdout": lines(res.Stdout), "stderr": lines(res.Stderr)})
}

// lines renders captured output as Letta's list of strings: none for
// nothing printed.
func lines(s string) []string {
	if s == "" {
		return []string{}
	}
	return []string{s}
}
