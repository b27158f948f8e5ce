package api

import (
	"net/http"
	"strings"

	"github.com/kelpie-ai/kelpie/agent"
	toolreg "github.com/kelpie-ai/kelpie/tools"
)

// The tools registry (package tools):
//
//	GET    /v1/tools                                   built-in and custom tools -> [Tool]
//	GET    /v1/tools/count                             -> integer
//	POST   /v1/tools                                   ToolCreate -> Tool (409 if the name is taken)
//	PUT    /v1/tools                                   ToolCreate -> Tool: create, or replace the tool of that name
//	GET    /v1/tools/{tool_id}                         -> Tool
//	PATCH  /v1/tools/{tool_id}                         ToolUpdate -> Tool
//	DELETE /v1/tools/{tool_id}                         -> null
//	GET    /v1/agents/{agent_id}/tools                 the agent's tools -> [Tool]
//	PATCH  /v1/agents/{agent_id}/tools/attach/{tool_id} -> AgentState
//	PATCH  /v1/agents/{agent_id}/tools/detach/{tool_id} -> AgentState
//
// Built-in tools are listed with their stable IDs and answer 403 to
// PATCH, PUT and DELETE. A custom tool's name comes from its json_schema,
// or from the last function its Python source_code defines (the schema is
// then derived from the signature and docstring; 422 if it cannot be).
// ToolCreate has no name field; Kelpie also accepts "name", which must
// then agree with the schema. Lists are ordered by creation, built-in
// tools first (in name order), newest first by default.
//
// Agents attach custom tools by reference: every agent that has a tool
// uses its current definition (name, description, json_schema, …) from
// its next step on, and lists it (agent tools, the agent's tools
// relationship, the context window) as it is now; deleting a tool
// detaches it from every agent. A call to a custom tool runs on the server
// (in the tool sandbox); one that requires approval pauses the run (stop_reason
// requires_approval, an approval_request_message) until the client approves
// it or sends its own result as a tool_return message.
// Attaching an attached tool or detaching one that is not attached
// changes nothing.

// agentToolsPageDefault is the page size of GET /v1/agents/{id}/tools
// (Letta's).
const agentToolsPageDefault = 10

// toolRoutes registers the tools endpoints.
func (h *handler) toolRoutes() {
	h.route("GET /v1/tools", h.listTools)
	h.route("GET /v1/tools/count", h.countTools)
	h.route("POST /v1/tools/add-base-tools", h.addBaseTools)
	h.route("POST /v1/tools", h.createTool)
	h.route("PUT /v1/tools", h.upsertTool)
	h.route("GET /v1/tools/{tool_id}", h.getTool)
	h.route("PATCH /v1/tools/{tool_id}", h.updateTool)
	h.route("DELETE /v1/tools/{tool_id}", h.deleteTool)
	h.route("GET /v1/agents/{agent_id}/tools", h.listAgentTools)
	h.route("PATCH /v1/agents/{agent_id}/tools/attach/{tool_id}", h.attachTool)
	h.route("PATCH /v1/agents/{agent_id}/tools/detach/{tool_id}", h.detachTool)
}

// toTool renders a tool as Letta's Tool.
func toTool(t toolreg.Tool) toolWire {
	metadata := t.Metadata
	if metadata == nil {
		metadata = map[string]any{}
	}
	return toolWire{
		ID: t.ID, Name: t.Name, ToolType: t.ToolType, Description: t.Description, SourceType: t.SourceType,
		Tags: nonNilStrings(t.Tags), JSONSchema: t.JSONSchema, ReturnCharLim: t.ReturnCharLimit, Metadata: metadata,
		RequiresApprov: t.DefaultRequiresApproval, SourceCode: optional(t.SourceCode), ArgsJSONSchema: t.ArgsJSONSchema,
		PipRequire: requirementsOf(t.PipRequirements),
	}
}

// requirementsOf renders pip requirement specifiers as Letta's
// PipRequirements (name and, for name==version, the version).
func requirementsOf(specs []string) []pipRequirement {
	var out []pipRequirement
	for _, s := range specs {
		name, version, ok := strings.Cut(s, "==")
		r := pipRequirement{Name: name}
		if ok {
			r.Version = &version
		} else {
			r.Name = s
		}
		out = append(out, r)
	}
	return out
}

// agentTools returns the agent's tools: built-in, then custom (a's
// current definitions, as the service's replies carry them).
func agentTools(a *agent.Agent) []toolreg.Tool {
	var out []toolreg.Tool
	for _, t := range agent.ToolSchemas(a.Tools) {
		out = append(out, toolreg.Builtin(t))
	}
	for _, ct := range a.CustomTools {
		out = append(out, toolreg.Custom(ct))
	}
	return out
}

// customToolWires renders the agent's custom tools (for AgentState.tools).
func customToolWires(a *agent.Agent) []toolWire {
	out := make([]toolWire, 0, len(a.CustomTools))
	for _, ct := range a.CustomTools {
		out = append(out, toTool(toolreg.Custom(ct)))
	}
	return out
}

func toTools(ts []toolreg.Tool) []toolWire {
	out := make([]toolWire, 0, len(ts))
	for _, t := range ts {
		out = append(out, toTool(t))
	}
	return out
}

// queryList reads a list query parameter given repeatedly or
// comma-separated.
func queryList(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.URL.Query()[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// toolQuery reads the filters and paging of a tools list.
func toolQuery(w http.ResponseWriter, r *http.Request, pageDefault int) (toolreg.Query, bool) {
	q := r.URL.Query()
	query := toolreg.Query{
		Name: q.Get("name"), Names: queryList(r, "names"), IDs: queryList(r, "tool_ids"), Search: q.Get("search"),
		Types: queryList(r, "tool_types"), ExcludeTypes: queryList(r, "exclude_tool_types"),
		After: q.Get("after"), Before: q.Get("before"),
	}
	var ok bool
	if query.OnlyLetta, ok = queryBool(w, r, "return_only_letta_tools", false); !ok {
		return query, false
	}
	if query.ExcludeLetta, ok = queryBool(w, r, "exclude_letta_tools", false); !ok {
		return query, false
	}
	if ob := q.Get("order_by"); ob != "" && ob != "created_at" {
		writeQueryError(w, "order_by", `order_by must be "created_at"`)
		return query, false
	}
	if query.Descending, ok = descending(w, r); !ok {
		return query, false
	}
	query.Limit, ok = listLimit(w, r, pageDefault, toolreg.ListLimitMax)
	return query, ok
}

func (h *handler) listTools(w http.ResponseWriter, r *http.Request) {
	q, ok := toolQuery(w, r, 50)
	if !ok {
		return
	}
	ts, err := h.svc.Tools().List(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTools(ts))
}

func (h *handler) countTools(w http.ResponseWriter, r *http.Request) {
	q, ok := toolQuery(w, r, 50)
	if !ok {
		return
	}
	n, err := h.svc.Tools().Count(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// toolCreateRequest is Letta's ToolCreate, plus an optional name.
// npm_requirements and enable_parallel_execution are accepted and
// ignored.
type toolCreateRequest struct {
	Name                    string           `json:"name"`
	Description             *string          `json:"description"`
	Tags                    []string         `json:"tags"`
	SourceCode              *string          `json:"source_code"`
	SourceType              *string          `json:"source_type"`
	JSONSchema              map[string]any   `json:"json_schema"`
	ArgsJSONSchema          map[string]any   `json:"args_json_schema"`
	ReturnCharLimit         *int             `json:"return_char_limit"`
	DefaultRequiresApproval *bool            `json:"default_requires_approval"`
	Metadata                map[string]any   `json:"metadata_"`
	PipRequirements         []pipRequirement `json:"pip_requirements"`
}

// pipRequirement is Letta's PipRequirement.
type pipRequirement struct {
	Name    string  `json:"name"`
	Version *string `json:"version"`
}

// specifiers renders requirements as pip requirement specifiers.
func specifiers(reqs []pipRequirement) []string {
	var out []string
	for _, r := range reqs {
		s := r.Name
		if r.Version != nil && *r.Version != "" {
			s += "==" + *r.Version
		}
		out = append(out, s)
	}
	return out
}

func pipPatch(reqs *[]pipRequirement) *[]string {
	if reqs == nil {
		return nil
	}
	s := specifiers(*reqs)
	if s == nil {
		s = []string{}
	}
	return &s
}

// decodeToolCreate reads a ToolCreate body.
func decodeToolCreate(w http.ResponseWriter, r *http.Request) (toolreg.Spec, bool) {
	var req toolCreateRequest
	if !decodeBody(w, r, &req) {
		return toolreg.Spec{}, false
	}
	if req.SourceCode == nil {
		writeError(w, http.StatusUnprocessableEntity, "source_code is required")
		return toolreg.Spec{}, false
	}
	spec := toolreg.Spec{
		Name: req.Name, Tags: req.Tags, SourceCode: *req.SourceCode, JSONSchema: req.JSONSchema, ArgsJSONSchema: req.ArgsJSONSchema,
		ReturnCharLimit: req.ReturnCharLimit, DefaultRequiresApproval: req.DefaultRequiresApproval, Metadata: req.Metadata,
		PipRequirements: specifiers(req.PipRequirements),
	}
	if req.Description != nil {
		spec.Description = *req.Description
	}
	if req.SourceType != nil {
		spec.SourceType = *req.SourceType
	}
	return spec, true
}

func (h *handler) createTool(w http.ResponseWriter, r *http.Request) {
	spec, ok := decodeToolCreate(w, r)
	if !ok {
		return
	}
	t, err := h.svc.Tools().Create(r.Context(), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTool(*t))
}

func (h *handler) upsertTool(w http.ResponseWriter, r *http.Request) {
	spec, ok := decodeToolCreate(w, r)
	if !ok {
		return
	}
	t, _, err := h.svc.Tools().Upsert(r.Context(), spec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTool(*t))
}

func (h *handler) getTool(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "tool_id", "tool")
	if !ok {
		return
	}
	t, err := h.svc.Tools().Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTool(*t))
}

// toolUpdateRequest is Letta's ToolUpdate; null or absent fields stay.
type toolUpdateRequest struct {
	Description             *string           `json:"description"`
	Tags                    *[]string         `json:"tags"`
	SourceCode              *string           `json:"source_code"`
	SourceType              *string           `json:"source_type"`
	JSONSchema              map[string]any    `json:"json_schema"`
	ArgsJSONSchema          map[string]any    `json:"args_json_schema"`
	ReturnCharLimit         *int              `json:"return_char_limit"`
	DefaultRequiresApproval *bool             `json:"default_requires_approval"`
	Metadata                map[string]any    `json:"metadata_"`
	PipRequirements         *[]pipRequirement `json:"pip_requirements"`
}

func (h *handler) updateTool(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "tool_id", "tool")
	if !ok {
		return
	}
	var req toolUpdateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	t, err := h.svc.Tools().Update(r.Context(), id, toolreg.Patch{
		Description: req.Description, Tags: req.Tags, SourceCode: req.SourceCode, SourceType: req.SourceType,
		JSONSchema: req.JSONSchema, ArgsJSONSchema: req.ArgsJSONSchema, ReturnCharLimit: req.ReturnCharLimit,
		DefaultRequiresApproval: req.DefaultRequiresApproval, Metadata: req.Metadata, PipRequirements: pipPatch(req.PipRequirements),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTool(*t))
}

func (h *handler) deleteTool(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "tool_id", "tool")
	if !ok {
		return
	}
	if err := h.svc.Tools().Delete(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

func (h *handler) listAgentTools(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	q, ok := toolQuery(w, r, agentToolsPageDefault)
	if !ok {
		return
	}
	ag, err := h.svc.GetAgent(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ts, err := toolreg.Select(agentTools(ag), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTools(ts))
}

func (h *handler) attachTool(w http.ResponseWriter, r *http.Request) {
	h.changeTools(w, r, true)
}

func (h *handler) detachTool(w http.ResponseWriter, r *http.Request) {
	h.changeTools(w, r, false)
}

func (h *handler) changeTools(w http.ResponseWriter, r *http.Request, attach bool) {
	agentID, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	toolID, ok := pathID(w, r, "tool_id", "tool")
	if !ok {
		return
	}
	change := h.svc.DetachTool
	if attach {
		change = h.svc.AttachTool
	}
	ag, err := change(r.Context(), agentID, toolID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}

// addBaseTools answers POST /v1/tools/add-base-tools with the built-in
// tools. They are part of the server, always present, so there is
// nothing to upsert.
func (h *handler) addBaseTools(w http.ResponseWriter, r *http.Request) {
	out := []toolWire{}
	for _, t := range toolreg.Builtins() {
		out = append(out, toTool(t))
	}
	writeJSON(w, http.StatusOK, out)
}
