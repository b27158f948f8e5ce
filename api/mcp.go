package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/mcpservers"
	"github.com/kelpie-ai/kelpie/toolexec"
	toolreg "github.com/kelpie-ai/kelpie/tools"
)

// MCP servers. Two APIs reach the same records (package mcpservers): the
// id-keyed /v1/mcp-servers and the name-keyed /v1/tools/mcp/servers that
// letta-code uses. A server's tools become tool records (tool_type
// external_mcp) when the server is created (best effort: a server that
// cannot be reached is recorded without tools), refreshed or resynced,
// or, on the legacy API, one at a time. Secrets — auth_token, custom
// header values, stdio env values — are returned masked
// (mcpservers.Mask); an update that sends a masked value back keeps the
// stored one.

// mcpTestSeq numbers the connections of server tests, which are not
// recorded servers.
var mcpTestSeq atomic.Uint64

// WithMCP serves the MCP server APIs from servers, reaching the servers
// through pool. Without it those routes answer 404.
func WithMCP(servers *mcpservers.Registry, pool *mcpclient.Pool) Option {
	return func(o *options) { o.mcpServers, o.mcpPool = servers, pool }
}

func (h *handler) mcpRoutes() {
	if h.mcpServers == nil || h.mcpPool == nil {
		return
	}
	h.route("POST /v1/mcp-servers", h.createMCPServer)
	h.route("GET /v1/mcp-servers", h.listMCPServers)
	h.route("GET /v1/mcp-servers/{mcp_server_id}", h.getMCPServer)
	h.route("PATCH /v1/mcp-servers/{mcp_server_id}", h.updateMCPServer)
	h.route("DELETE /v1/mcp-servers/{mcp_server_id}", h.deleteMCPServer)
	h.route("GET /v1/mcp-servers/{mcp_server_id}/tools", h.listMCPServerTools)
	h.route("GET /v1/mcp-servers/{mcp_server_id}/tools/{tool_id}", h.getMCPServerTool)
	h.route("POST /v1/mcp-servers/{mcp_server_id}/tools/{tool_id}/run", h.runMCPServerTool)
	h.route("PATCH /v1/mcp-servers/{mcp_server_id}/refresh", h.refreshMCPServer)

	h.route("GET /v1/tools/mcp/servers", h.legacyListMCPServers)
	h.route("PUT /v1/tools/mcp/servers", h.legacyAddMCPServer)
	h.route("POST /v1/tools/mcp/servers/test", h.legacyTestMCPServer)
	h.route("PATCH /v1/tools/mcp/servers/{mcp_server_name}", h.legacyUpdateMCPServer)
	h.route("DELETE /v1/tools/mcp/servers/{mcp_server_name}", h.legacyDeleteMCPServer)
	h.route("GET /v1/tools/mcp/servers/{mcp_server_name}/tools", h.legacyListMCPTools)
	h.route("POST /v1/tools/mcp/servers/{mcp_server_name}/resync", h.legacyResyncMCPServer)
	h.route("POST /v1/tools/mcp/servers/{mcp_server_name}/{mcp_tool_name}", h.legacyAddMCPTool)
	h.route("POST /v1/tools/mcp/servers/{mcp_server_name}/tools/{tool_name}/execute", h.legacyExecuteMCPTool)
}

// mcpConfigIn is a server configuration as clients send it: Letta's
// Create*/Update* MCP server schemas (mcp_server_type) and the legacy
// *ServerConfig ones (type, server_name), with every field optional so an
// update changes only what it names.
type mcpConfigIn struct {
	ServerName    *string            `json:"server_name"`
	Type          string             `json:"type"`
	MCPServerType string             `json:"mcp_server_type"`
	Command       *string            `json:"command"`
	Args          *[]string          `json:"args"`
	Env           *map[string]string `json:"env"`
	ServerURL     *string            `json:"server_url"`
	AuthHeader    *string            `json:"auth_header"`
	AuthToken     *string            `json:"auth_token"`
	CustomHeaders *map[string]string `json:"custom_headers"`
	// StdioConfig is the legacy stdio update's nested configuration.
	StdioConfig *mcpConfigIn `json:"stdio_config"`
}

// apply returns old changed by c. A type other than old's starts from an
// empty configuration of that type; masked secrets sent back keep old's.
func (c *mcpConfigIn) apply(old mcpclient.ServerConfig) mcpclient.ServerConfig {
	if c.StdioConfig != nil {
		inner := *c.StdioConfig
		if inner.Type == "" && inner.MCPServerType == "" {
			inner.Type = string(mcpclient.TypeStdio)
		}
		return inner.apply(old)
	}
	typ := mcpclient.ServerType(c.MCPServerType)
	if typ == "" {
		typ = mcpclient.ServerType(c.Type)
	}
	if typ == "" {
		switch {
		case old.Type != "":
			typ = old.Type
		case c.Command != nil:
			typ = mcpclient.TypeStdio
		}
	}
	cfg := old
	if typ != old.Type {
		cfg = mcpclient.ServerConfig{Type: typ}
	}
	if c.Command != nil {
		cfg.Command = *c.Command
	}
	if c.Args != nil {
		cfg.Args = *c.Args
	}
	if c.Env != nil {
		cfg.Env = mcpservers.UnmaskMap(*c.Env, old.Env)
	}
	if c.ServerURL != nil {
		cfg.ServerURL = *c.ServerURL
	}
	if c.AuthHeader != nil {
		cfg.AuthHeader = *c.AuthHeader
	}
	if c.AuthToken != nil {
		cfg.AuthToken = mcpservers.Unmask(*c.AuthToken, old.AuthToken)
	}
	if c.CustomHeaders != nil {
		cfg.CustomHeaders = mcpservers.UnmaskMap(*c.CustomHeaders, old.CustomHeaders)
	}
	return cfg
}

// name is the server name c gives (the legacy stdio update's nested one
// included), or "".
func (c *mcpConfigIn) name() string {
	if c.ServerName != nil {
		return *c.ServerName
	}
	if c.StdioConfig != nil && c.StdioConfig.ServerName != nil {
		return *c.StdioConfig.ServerName
	}
	return ""
}

// mcpStdioWire is Letta's StdioMCPServer.
type mcpStdioWire struct {
	Type       string            `json:"mcp_server_type"`
	Command    string            `json:"command"`
	Args       []string          `json:"args"`
	Env        map[string]string `json:"env"`
	ID         string            `json:"id"`
	ServerName string            `json:"server_name"`
}

// mcpHTTPWire is Letta's SSEMCPServer and StreamableHTTPMCPServer.
type mcpHTTPWire struct {
	Type          string            `json:"mcp_server_type"`
	ServerURL     string            `json:"server_url"`
	AuthHeader    *string           `json:"auth_header"`
	AuthToken     *string           `json:"auth_token"`
	CustomHeaders map[string]string `json:"custom_headers"`
	ID            string            `json:"id"`
	ServerName    string            `json:"server_name"`
}

// toMCPServer renders s as Letta's *MCPServer, its secrets masked.
func toMCPServer(s *mcpservers.Server) any {
	c := mcpservers.Mask(s.Config)
	if c.Type == mcpclient.TypeStdio {
		return mcpStdioWire{Type: string(c.Type), Command: c.Command, Args: nonNilStrings(c.Args), Env: c.Env, ID: s.ID, ServerName: s.Name}
	}
	return mcpHTTPWire{Type: string(c.Type), ServerURL: c.ServerURL, AuthHeader: optional(c.AuthHeader), AuthToken: optional(c.AuthToken),
		CustomHeaders: c.CustomHeaders, ID: s.ID, ServerName: s.Name}
}

// mcpLegacyStdioWire is Letta's StdioServerConfig.
type mcpLegacyStdioWire struct {
	ServerName string            `json:"server_name"`
	Type       string            `json:"type"`
	Command    string            `json:"command"`
	Args       []string          `json:"args"`
	Env        map[string]string `json:"env"`
}

// mcpLegacyHTTPWire is Letta's SSEServerConfig and
// StreamableHTTPServerConfig.
type mcpLegacyHTTPWire struct {
	ServerName    string            `json:"server_name"`
	Type          string            `json:"type"`
	ServerURL     string            `json:"server_url"`
	AuthHeader    *string           `json:"auth_header"`
	AuthToken     *string           `json:"auth_token"`
	CustomHeaders map[string]string `json:"custom_headers"`
}

// toMCPServerConfig renders s as Letta's legacy *ServerConfig, its
// secrets masked.
func toMCPServerConfig(s *mcpservers.Server) any {
	c := mcpservers.Mask(s.Config)
	if c.Type == mcpclient.TypeStdio {
		return mcpLegacyStdioWire{ServerName: s.Name, Type: string(c.Type), Command: c.Command, Args: nonNilStrings(c.Args), Env: c.Env}
	}
	return mcpLegacyHTTPWire{ServerName: s.Name, Type: string(c.Type), ServerURL: c.ServerURL, AuthHeader: optional(c.AuthHeader),
		AuthToken: optional(c.AuthToken), CustomHeaders: c.CustomHeaders}
}

// failMCP answers an error from the registry or the pool.
func (h *handler) failMCP(w http.ResponseWriter, r *http.Request, err error) {
	var e *mcpclient.Error
	switch {
	case errors.Is(err, mcpclient.ErrStdioDisabled):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, mcpclient.ErrInvalidConfig), errors.Is(err, mcpclient.ErrInvalidArguments):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.Is(err, mcpclient.ErrTimeout):
		writeError(w, http.StatusGatewayTimeout, err.Error())
	case errors.As(err, &e):
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		h.fail(w, r, err)
	}
}

// mcpServerByID reads the server the mcp_server_id path parameter names.
func (h *handler) mcpServerByID(w http.ResponseWriter, r *http.Request) (*mcpservers.Server, bool) {
	id, ok := pathID(w, r, "mcp_server_id", mcpservers.IDPrefix)
	if !ok {
		return nil, false
	}
	s, err := h.mcpServers.Get(r.Context(), id)
	if err != nil {
		h.failMCP(w, r, err)
		return nil, false
	}
	return s, true
}

// mcpServerByName reads the server the mcp_server_name path parameter
// names.
func (h *handler) mcpServerByName(w http.ResponseWriter, r *http.Request) (*mcpservers.Server, bool) {
	s, err := h.mcpServers.GetByName(r.Context(), r.PathValue("mcp_server_name"))
	if err != nil {
		h.failMCP(w, r, err)
		return nil, false
	}
	return s, true
}

// syncMCPTools records the tools s offers now (new ones added, existing
// ones updated) and, with prune, deletes the records of tools it no
// longer offers. A tool whose name another tool holds, or that Kelpie
// cannot record, is left out.
func (h *handler) syncMCPTools(ctx context.Context, s *mcpservers.Server, prune bool) ([]toolreg.Tool, error) {
	live, err := h.mcpPool.ListTools(ctx, s.Client())
	if err != nil {
		return nil, err
	}
	reg := h.svc.Tools()
	var out []toolreg.Tool
	for _, mt := range live {
		t, err := reg.UpsertMCP(ctx, mcpToolSpec(s, mt))
		if errors.Is(err, agent.ErrAlreadyExists) || errors.Is(err, agent.ErrInvalid) {
			h.log.Warn("api: MCP tool not recorded", "server", s.Name, "tool", mt.Name, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *t)
	}
	if prune {
		recorded, err := reg.MCPTools(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		for _, t := range recorded {
			if !slices.ContainsFunc(live, func(mt mcpclient.Tool) bool { return mt.Name == t.Name }) {
				if err := reg.Delete(ctx, t.ID); err != nil && !errors.Is(err, agent.ErrNotFound) {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// mcpToolSpec is the tool record of mt, a tool of s.
func mcpToolSpec(s *mcpservers.Server, mt mcpclient.Tool) toolreg.MCPToolSpec {
	var schema map[string]any
	if err := json.Unmarshal(mt.InputSchema, &schema); err != nil {
		schema = nil // the pool gives a JSON object; fall back to no parameters
	}
	return toolreg.MCPToolSpec{ServerID: s.ID, ServerName: s.Name, Name: mt.Name, Description: mt.Description, InputSchema: schema}
}

// deleteMCPTools deletes the tool records of the server with the given
// ID, which detaches them from their agents.
func (h *handler) deleteMCPTools(ctx context.Context, id string) error {
	reg := h.svc.Tools()
	recorded, err := reg.MCPTools(ctx, id)
	if err != nil {
		return err
	}
	for _, t := range recorded {
		if err := reg.Delete(ctx, t.ID); err != nil && !errors.Is(err, agent.ErrNotFound) {
			return err
		}
	}
	return nil
}

// createServer records a server and, best effort, its tools.
func (h *handler) createServer(w http.ResponseWriter, r *http.Request, name string, cfg mcpclient.ServerConfig) (*mcpservers.Server, bool) {
	s, err := h.mcpServers.Create(r.Context(), name, cfg)
	if err != nil {
		h.failMCP(w, r, err)
		return nil, false
	}
	if _, err := h.syncMCPTools(r.Context(), s, false); err != nil {
		h.log.Warn("api: MCP server recorded, but its tools could not be listed; refresh it once it is reachable", "server", s.Name, "err", err)
	}
	return s, true
}

func (h *handler) createMCPServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ServerName string       `json:"server_name"`
		Config     *mcpConfigIn `json:"config"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Config == nil {
		writeError(w, http.StatusUnprocessableEntity, "config is required")
		return
	}
	s, ok := h.createServer(w, r, req.ServerName, req.Config.apply(mcpclient.ServerConfig{}))
	if ok {
		writeJSON(w, http.StatusOK, toMCPServer(s))
	}
}

func (h *handler) listMCPServers(w http.ResponseWriter, r *http.Request) {
	all, err := h.mcpServers.List(r.Context())
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	out := make([]any, 0, len(all))
	for i := range all {
		out = append(out, toMCPServer(&all[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getMCPServer(w http.ResponseWriter, r *http.Request) {
	if s, ok := h.mcpServerByID(w, r); ok {
		writeJSON(w, http.StatusOK, toMCPServer(s))
	}
}

// updateServer applies an update to the server with the given ID.
func (h *handler) updateServer(w http.ResponseWriter, r *http.Request, id, name string, cfg *mcpConfigIn) (*mcpservers.Server, bool) {
	s, err := h.mcpServers.Update(r.Context(), id, func(s *mcpservers.Server) error {
		if name != "" {
			s.Name = name
		}
		if cfg != nil {
			s.Config = cfg.apply(s.Config)
		}
		return nil
	})
	if err != nil {
		h.failMCP(w, r, err)
		return nil, false
	}
	return s, true
}

func (h *handler) updateMCPServer(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "mcp_server_id", mcpservers.IDPrefix)
	if !ok {
		return
	}
	var req struct {
		ServerName *string      `json:"server_name"`
		Config     *mcpConfigIn `json:"config"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	name := ""
	if req.ServerName != nil {
		name = *req.ServerName
	}
	if s, ok := h.updateServer(w, r, id, name, req.Config); ok {
		writeJSON(w, http.StatusOK, toMCPServer(s))
	}
}

// deleteServer deletes a server, its tools and its connection.
func (h *handler) deleteServer(w http.ResponseWriter, r *http.Request, id string) bool {
	if err := h.deleteMCPTools(r.Context(), id); err != nil {
		h.failMCP(w, r, err)
		return false
	}
	if _, err := h.mcpServers.Delete(r.Context(), id); err != nil {
		h.failMCP(w, r, err)
		return false
	}
	h.mcpPool.Disconnect(id)
	return true
}

func (h *handler) deleteMCPServer(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByID(w, r)
	if ok && h.deleteServer(w, r, s.ID) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (h *handler) listMCPServerTools(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByID(w, r)
	if !ok {
		return
	}
	recorded, err := h.svc.Tools().MCPTools(r.Context(), s.ID)
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	out := make([]toolWire, 0, len(recorded))
	for _, t := range recorded {
		out = append(out, toTool(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// mcpServerTool reads the server and the tool record the path names.
func (h *handler) mcpServerTool(w http.ResponseWriter, r *http.Request) (*mcpservers.Server, *toolreg.Tool, bool) {
	s, ok := h.mcpServerByID(w, r)
	if !ok {
		return nil, nil, false
	}
	id, ok := pathID(w, r, "tool_id", "tool")
	if !ok {
		return nil, nil, false
	}
	t, err := h.svc.Tools().Get(r.Context(), id)
	if err == nil && t.MCPServerID() != s.ID {
		err = fmt.Errorf("%w: tool %s is not a tool of MCP server %s", agent.ErrNotFound, id, s.Name)
	}
	if err != nil {
		h.failMCP(w, r, err)
		return nil, nil, false
	}
	return s, t, true
}

func (h *handler) getMCPServerTool(w http.ResponseWriter, r *http.Request) {
	if _, t, ok := h.mcpServerTool(w, r); ok {
		writeJSON(w, http.StatusOK, toTool(*t))
	}
}

// runMCPTool calls a server's tool with the args of the request body and
// answers Letta's ToolExecutionResult. A failure of the tool is a result
// with status error; one of the server (unreachable, refused) an error
// status.
func (h *handler) runMCPTool(w http.ResponseWriter, r *http.Request, s *mcpservers.Server, name string) {
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
	res, err := h.mcpPool.Executor(s.Client()).Run(r.Context(), toolexec.Call{Name: name, Arguments: args})
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": res.Status, "func_return": agent.CutReturn(res.Return, toolreg.DefaultReturnCharLimit),
		"stdout": lines(res.Stdout), "stderr": lines(res.Stderr)})
}

func (h *handler) runMCPServerTool(w http.ResponseWriter, r *http.Request) {
	if s, t, ok := h.mcpServerTool(w, r); ok {
		h.runMCPTool(w, r, s, t.Name)
	}
}

func (h *handler) refreshMCPServer(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByID(w, r)
	if !ok {
		return
	}
	h.refresh(w, r, s)
}

// refresh resyncs s's tools and answers what changed.
func (h *handler) refresh(w http.ResponseWriter, r *http.Request, s *mcpservers.Server) {
	tools, err := h.syncMCPTools(r.Context(), s, true)
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	names := make([]string, 0, len(tools))
	for _, t := range tools {
		names = append(names, t.Name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"server_name": s.Name, "tools": names})
}

// Legacy, name-keyed API.

// legacyConfigs renders every server as Letta's legacy configurations.
func (h *handler) legacyConfigs(r *http.Request) ([]any, error) {
	all, err := h.mcpServers.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(all))
	for i := range all {
		out = append(out, toMCPServerConfig(&all[i]))
	}
	return out, nil
}

func (h *handler) legacyListMCPServers(w http.ResponseWriter, r *http.Request) {
	all, err := h.mcpServers.List(r.Context())
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	out := make(map[string]any, len(all))
	for i := range all {
		out[all[i].Name] = toMCPServerConfig(&all[i])
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) legacyAddMCPServer(w http.ResponseWriter, r *http.Request) {
	var req mcpConfigIn
	if !decodeBody(w, r, &req) {
		return
	}
	if _, ok := h.createServer(w, r, req.name(), req.apply(mcpclient.ServerConfig{})); !ok {
		return
	}
	out, err := h.legacyConfigs(r)
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) legacyTestMCPServer(w http.ResponseWriter, r *http.Request) {
	var req mcpConfigIn
	if !decodeBody(w, r, &req) {
		return
	}
	name := req.name()
	if name == "" {
		name = "test"
	}
	cfg := req.apply(mcpclient.ServerConfig{})
	if err := h.mcpServers.Check(name, cfg); err != nil {
		h.failMCP(w, r, err)
		return
	}
	// A connection of its own, closed when the test is over.
	srv := mcpclient.Server{ID: fmt.Sprintf("test-%d", mcpTestSeq.Add(1)), Name: name, Config: cfg}
	defer h.mcpPool.Disconnect(srv.ID)
	tools, err := h.mcpPool.ListTools(r.Context(), srv)
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, mcpToolWires(tools))
}

func (h *handler) legacyUpdateMCPServer(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByName(w, r)
	if !ok {
		return
	}
	var req mcpConfigIn
	if !decodeBody(w, r, &req) {
		return
	}
	if s, ok := h.updateServer(w, r, s.ID, req.name(), &req); ok {
		writeJSON(w, http.StatusOK, toMCPServerConfig(s))
	}
}

func (h *handler) legacyDeleteMCPServer(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByName(w, r)
	if !ok || !h.deleteServer(w, r, s.ID) {
		return
	}
	out, err := h.legacyConfigs(r)
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// mcpToolWire is Letta's MCPTool.
type mcpToolWire struct {
	Name         string                     `json:"name"`
	Title        *string                    `json:"title"`
	Description  *string                    `json:"description"`
	InputSchema  json.RawMessage            `json:"inputSchema"`
	OutputSchema json.RawMessage            `json:"outputSchema,omitempty"`
	Annotations  *mcpclient.ToolAnnotations `json:"annotations,omitempty"`
}

func mcpToolWires(tools []mcpclient.Tool) []mcpToolWire {
	out := make([]mcpToolWire, 0, len(tools))
	for _, t := range tools {
		out = append(out, mcpToolWire{Name: t.Name, Title: optional(t.Title), Description: optional(t.Description),
			InputSchema: t.InputSchema, OutputSchema: t.OutputSchema, Annotations: t.Annotations})
	}
	return out
}

func (h *handler) legacyListMCPTools(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByName(w, r)
	if !ok {
		return
	}
	tools, err := h.mcpPool.ListTools(r.Context(), s.Client())
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, mcpToolWires(tools))
}

func (h *handler) legacyResyncMCPServer(w http.ResponseWriter, r *http.Request) {
	if s, ok := h.mcpServerByName(w, r); ok {
		h.refresh(w, r, s)
	}
}

func (h *handler) legacyAddMCPTool(w http.ResponseWriter, r *http.Request) {
	s, ok := h.mcpServerByName(w, r)
	if !ok {
		return
	}
	name := r.PathValue("mcp_tool_name")
	live, err := h.mcpPool.ListTools(r.Context(), s.Client())
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	i := slices.IndexFunc(live, func(t mcpclient.Tool) bool { return t.Name == name })
	if i < 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("MCP server %s has no tool named %q", s.Name, name))
		return
	}
	t, err := h.svc.Tools().UpsertMCP(r.Context(), mcpToolSpec(s, live[i]))
	if err != nil {
		h.failMCP(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toTool(*t))
}

func (h *handler) legacyExecuteMCPTool(w http.ResponseWriter, r *http.Request) {
	if s, ok := h.mcpServerByName(w, r); ok {
		h.runMCPTool(w, r, s, r.PathValue("tool_name"))
	}
}
