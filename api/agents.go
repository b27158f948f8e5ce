package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	toolreg "github.com/kelpie-ai/kelpie/tools"
)

// Limits at the edge.
const (
	// requestBytesMax bounds a request body.
	requestBytesMax = 8 << 20
)

// idPattern matches Letta object IDs: "<prefix>-<uuid4>".
var idPattern = regexp.MustCompile(`^[a-z_]+-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// pathID returns the path parameter name, which must be an ID with the
// given prefix; otherwise it answers 422 and returns false.
func pathID(w http.ResponseWriter, r *http.Request, name, prefix string) (string, bool) {
	id := r.PathValue(name)
	if !validID(id, prefix) {
		writeFieldError(w, []any{"path", name}, fmt.Sprintf("%s %q is not a valid %s ID (expected %s-<uuid4>)", name, id, prefix, prefix), "value_error")
		return "", false
	}
	return id, true
}

// pathAgent reads the agent named by the agent_id path parameter,
// answering 422 for a malformed ID and the service's error otherwise.
func (h *handler) pathAgent(w http.ResponseWriter, r *http.Request) (*agent.Agent, bool) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return nil, false
	}
	ag, err := h.svc.GetAgent(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return ag, true
}

// validID reports whether id is a Letta ID with the given prefix.
func validID(id, prefix string) bool {
	return idPattern.MatchString(id) && strings.HasPrefix(id, prefix+"-")
}

// readBody reads a request body, bounded by requestBytesMax, answering
// 413 or 400 on failure. An empty body reads as {}.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, requestBytesMax))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", requestBytesMax))
		} else {
			writeError(w, http.StatusBadRequest, "could not read request body: "+err.Error())
		}
		return nil, false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	return body, true
}

// restoreBody lets a body already read be read again.
func restoreBody(r *http.Request, body []byte) { r.Body = io.NopCloser(bytes.NewReader(body)) }

// decodeBody reads a JSON request body into v, answering 413 or 422 on
// failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readBody(w, r)
	if !ok {
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// fail answers an error from the service with its status and detail.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, detail := h.classify(r, err)
	var busy *agent.BusyError
	switch {
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds)
	case status == http.StatusConflict && (errors.Is(err, actor.ErrBusy) || errors.As(err, &busy)):
		w.Header().Set("Retry-After", busyRetryAfterSeconds)
	}
	writeError(w, status, detail)
}

// retryAfterSeconds is the Retry-After of a 503: the server is shutting
// down, and a restart takes a few seconds.
const retryAfterSeconds = "5"

// busyRetryAfterSeconds is the Retry-After of a 409 for a busy agent (its
// mailbox full, or a run in progress): a step takes about a second.
const busyRetryAfterSeconds = "1"

// classify maps an error from the service to a status and a useful detail.
func (h *handler) classify(r *http.Request, err error) (int, string) {
	status := http.StatusInternalServerError
	detail := err.Error()
	var busy *agent.BusyError
	var runErr *service.RunError
	switch {
	case errors.As(err, &busy):
		status = http.StatusConflict
		detail = fmt.Sprintf("Cannot send a new message: agent is busy with run %s (run_id=%s); wait for it to finish or cancel it", busy.RunID, busy.RunID)
	case errors.As(err, &runErr) && runErr.Run.StopReason == agent.StopLLMAPIError:
		status = llm.HTTPStatus(runErr)
		if status == 0 {
			status = http.StatusBadGateway
		}
		detail = fmt.Sprintf("llm_api_error: run %s: %s", runErr.Run.ID, runErr.Run.Error)
	case errors.Is(err, agent.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, toolreg.ErrReadOnly):
		status = http.StatusForbidden
	case errors.Is(err, service.ErrNothingToCompact):
		status = http.StatusBadRequest
	case errors.Is(err, agent.ErrInvalid), errors.Is(err, storage.ErrInvalid):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, agent.ErrAlreadyExists), errors.Is(err, agent.ErrApprovalPending):
		status = http.StatusConflict
	case errors.Is(err, actor.ErrBusy):
		status = http.StatusConflict
		detail = "the agent is busy with other requests; retry shortly"
	case errors.Is(err, storage.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, llm.ErrNotConfigured):
		status = http.StatusBadRequest
		detail = "no model provider is configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for Ollama, vLLM or llama.cpp) or ANTHROPIC_API_KEY and restart the server"
	case errors.Is(err, agent.ErrEmbeddingModel):
		status = http.StatusConflict
		detail = "the agent's embedding model changed during the request; retry"
	case llm.HTTPStatus(err) != 0:
		// A model call outside a run failed: embedding a passage or a
		// query, or checking an embedding model's handle.
		status = llm.HTTPStatus(err)
		detail = "llm_api_error: " + err.Error()
	case errors.Is(err, actor.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	case errors.Is(err, actor.ErrStopped):
		status = http.StatusServiceUnavailable
		detail = "the server is shutting down"
	case errors.Is(err, service.ErrShuttingDown):
		status = http.StatusServiceUnavailable
	default:
		h.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		detail = "internal error: " + err.Error()
	}
	return status, detail
}

// createAgentRequest is Letta's CreateAgentRequest (the fields Kelpie uses).
type createAgentRequest struct {
	Name             string            `json:"name"`
	MemoryBlocks     []blockCreate     `json:"memory_blocks"`
	Tools            []string          `json:"tools"`
	ToolIDs          []string          `json:"tool_ids"`
	BlockIDs         []string          `json:"block_ids"`
	Tags             []string          `json:"tags"`
	System           string            `json:"system"`
	AgentType        string            `json:"agent_type"`
	IncludeBaseTools *bool             `json:"include_base_tools"`
	Description      string            `json:"description"`
	Metadata         map[string]any    `json:"metadata"`
	Model            string            `json:"model"`
	Embedding        string            `json:"embedding"`
	LLMConfig        *llmConfigRequest `json:"llm_config"`
	// EmbeddingConfig (deprecated by Letta) names the embedding model
	// when Embedding does not.
	EmbeddingConfig *embeddingConfigRequest `json:"embedding_config"`
	agentSettingsRequest
	// IncludeBaseToolRules is accepted and has no effect: Kelpie has no
	// tool rules.
	IncludeBaseToolRules *bool `json:"include_base_tool_rules"`
	// InitialMessageSequence are messages to log into the default
	// conversation when the agent is created.
	InitialMessageSequence []messageCreate `json:"initial_message_sequence"`
}

// llmConfigRequest is the part of Letta's (deprecated) LLMConfig Kelpie
// reads in a create or an update: the handle (or model) and the context
// window. The sampling settings are validated (check) and otherwise not
// used: Kelpie sends none to the model.
type llmConfigRequest struct {
	Handle             string   `json:"handle"`
	Model              string   `json:"model"`
	ContextWindow      int      `json:"context_window"`
	Temperature        *float64 `json:"temperature"`
	MaxTokens          *int     `json:"max_tokens"`
	MaxReasoningTokens *int     `json:"max_reasoning_tokens"`
	FrequencyPenalty   *float64 `json:"frequency_penalty"`
	TopLogprobs        *int     `json:"top_logprobs"`
}

// Ranges of llm_config's numbers, as the providers accept them (OpenAI's
// widest).
const (
	temperatureMax      = 2.0
	frequencyPenaltyMax = 2.0
	topLogprobsMax      = 20
)

// check answers 422 naming the first field of c outside its range (nil c
// is valid).
func (c *llmConfigRequest) check(w http.ResponseWriter) bool {
	if c == nil {
		return true
	}
	bad := func(field, msg string) bool {
		writeFieldError(w, []any{"body", "llm_config", field}, msg, "value_error")
		return false
	}
	switch {
	case c.ContextWindow < 0 || c.ContextWindow > agent.ContextWindowTokensMax:
		return bad("context_window", fmt.Sprintf("context_window %d outside 1..%d tokens", c.ContextWindow, agent.ContextWindowTokensMax))
	case c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > temperatureMax):
		return bad("temperature", fmt.Sprintf("temperature %v outside 0..%v", *c.Temperature, temperatureMax))
	case c.MaxTokens != nil && *c.MaxTokens < 1:
		return bad("max_tokens", fmt.Sprintf("max_tokens %d: must be at least 1", *c.MaxTokens))
	case c.MaxReasoningTokens != nil && *c.MaxReasoningTokens < 0:
		return bad("max_reasoning_tokens", fmt.Sprintf("max_reasoning_tokens %d: must not be negative", *c.MaxReasoningTokens))
	case c.FrequencyPenalty != nil && (*c.FrequencyPenalty < -frequencyPenaltyMax || *c.FrequencyPenalty > frequencyPenaltyMax):
		return bad("frequency_penalty", fmt.Sprintf("frequency_penalty %v outside -%v..%v", *c.FrequencyPenalty, frequencyPenaltyMax, frequencyPenaltyMax))
	case c.TopLogprobs != nil && (*c.TopLogprobs < 0 || *c.TopLogprobs > topLogprobsMax):
		return bad("top_logprobs", fmt.Sprintf("top_logprobs %d outside 0..%d", *c.TopLogprobs, topLogprobsMax))
	}
	return true
}

// agentSettingsRequest holds the settings CreateAgentRequest and
// UpdateAgent share (see agent.Agent): nil for absent or null.
type agentSettingsRequest struct {
	CompactionSettings *map[string]any `json:"compaction_settings"`
	ContextWindowLimit *int            `json:"context_window_limit"`
	// ParallelToolCalls is Letta's deprecated field; ModelSettings'
	// parallel_tool_calls, its replacement, wins when both are given.
	// Kelpie reads nothing else of the model settings.
	ParallelToolCalls *bool `json:"parallel_tool_calls"`
	ModelSettings     *struct {
		ParallelToolCalls *bool `json:"parallel_tool_calls"`
	} `json:"model_settings"`
	// Secrets, or else ToolExecEnvVars (Letta's deprecated name), replace
	// the agent's secrets.
	Secrets         *secretList `json:"secrets"`
	ToolExecEnvVars *secretList `json:"tool_exec_environment_variables"`
}

// parallelToolCalls is the setting the request gives, or nil.
func (s *agentSettingsRequest) parallelToolCalls() *bool {
	if s.ModelSettings != nil && s.ModelSettings.ParallelToolCalls != nil {
		return s.ModelSettings.ParallelToolCalls
	}
	return s.ParallelToolCalls
}

// secrets are the secrets the request gives, or nil.
func (s *agentSettingsRequest) secrets() *[]agent.Secret {
	l := s.Secrets
	if l == nil {
		l = s.ToolExecEnvVars
	}
	if l == nil {
		return nil
	}
	out := []agent.Secret(*l)
	return &out
}

// secretList is a set of secrets as Letta's requests give them, an object
// of key → value, or as its AgentState lists them, [{"key", "value",
// "description"}]; objects are read in key order. Its errors never quote
// a value.
type secretList []agent.Secret

// UnmarshalJSON implements json.Unmarshaler.
func (l *secretList) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err == nil {
		out := make(secretList, 0, len(m))
		for k, v := range m {
			out = append(out, agent.Secret{Key: k, Value: v})
		}
		slices.SortFunc(out, func(a, b agent.Secret) int { return strings.Compare(a.Key, b.Key) })
		*l = out
		return nil
	}
	var list []struct {
		Key         string  `json:"key"`
		Value       string  `json:"value"`
		Description *string `json:"description"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("secrets must be an object of string values by key, or a list of {key, value, description}")
	}
	out := make(secretList, 0, len(list))
	for _, e := range list {
		s := agent.Secret{Key: e.Key, Value: e.Value}
		if e.Description != nil {
			s.Description = *e.Description
		}
		out = append(out, s)
	}
	*l = out
	return nil
}

type blockCreate struct {
	Label       string `json:"label"`
	Value       string `json:"value"`
	Limit       int    `json:"limit"`
	Description string `json:"description"`
	ReadOnly    bool   `json:"read_only"`
}

func (h *handler) createAgent(w http.ResponseWriter, r *http.Request) {
	var req createAgentRequest
	if !decodeBody(w, r, &req) || !req.LLMConfig.check(w) {
		return
	}
	// Tool names and IDs may name built-in or custom tools (see tools.go).
	tools, customTools, err := h.svc.ResolveTools(r.Context(), req.Tools, req.ToolIDs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	agentType := req.AgentType
	if agentType == "" {
		agentType = agent.TypeLettaV1
	}
	if req.IncludeBaseTools == nil || *req.IncludeBaseTools {
		for _, t := range agent.DefaultTools(agentType) {
			if !slices.Contains(tools, t) {
				tools = append(tools, t)
			}
		}
	}
	model := req.Model
	if model == "" && req.LLMConfig != nil {
		model = req.LLMConfig.Handle
		if model == "" {
			model = req.LLMConfig.Model
		}
	}
	embedding := req.Embedding
	if embedding == "" {
		embedding = req.EmbeddingConfig.handle()
	}
	cr := agent.CreateRequest{
		Name: req.Name, AgentType: agentType, Description: req.Description, System: req.System,
		Model: model, Embedding: embedding, Tools: nonNilStrings(tools), Tags: req.Tags, Metadata: req.Metadata,
		CustomToolIDs: customTools, ParallelToolCalls: req.parallelToolCalls(), SharedBlockIDs: req.BlockIDs,
	}
	if req.CompactionSettings != nil {
		cr.CompactionSettings = *req.CompactionSettings
	}
	switch {
	case req.ContextWindowLimit != nil:
		cr.ContextWindowLimit = *req.ContextWindowLimit
		if cr.ContextWindowLimit == 0 {
			writeFieldError(w, []any{"body", "context_window_limit"}, "context_window_limit must be a positive number of tokens", "value_error")
			return
		}
	case req.LLMConfig != nil && req.LLMConfig.ContextWindow > 0:
		cr.ContextWindowLimit = req.LLMConfig.ContextWindow
	}
	if s := req.secrets(); s != nil {
		cr.Secrets = *s
	}
	for i, m := range req.InitialMessageSequence {
		if m.Type != "" && m.Type != "message" {
			writeFieldError(w, []any{"body", "initial_message_sequence", i, "type"}, "Input should be 'message'", "literal_error")
			return
		}
		text, err := m.text()
		if err != nil {
			writeFieldError(w, []any{"body", "initial_message_sequence", i, "content"}, err.Error(), "value_error")
			return
		}
		cr.InitialMessages = append(cr.InitialMessages, agent.InputMessage{Role: m.Role, Content: text, OTID: m.OTID})
	}
	for _, b := range req.MemoryBlocks {
		cr.Blocks = append(cr.Blocks, agent.BlockCreate{Label: b.Label, Value: b.Value, Limit: b.Limit, Description: b.Description, ReadOnly: b.ReadOnly})
	}
	ag, err := h.svc.CreateAgent(r.Context(), cr)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}

// getAgent answers GET /v1/agents/{agent_id} with the relationships the
// request selects (include.go).
func (h *handler) getAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	rel, ok := parseRelationships(w, r)
	if !ok {
		return
	}
	ag, err := h.svc.GetAgent(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeAgent(w, r, ag, rel)
}

// updateAgentRequest is Letta's UpdateAgent (the fields Kelpie uses).
type updateAgentRequest struct {
	Name        *string         `json:"name"`
	System      *string         `json:"system"`
	Description *string         `json:"description"`
	Tags        *[]string       `json:"tags"`
	Metadata    *map[string]any `json:"metadata"`
	Model       *string         `json:"model"`
	ToolIDs     *[]string       `json:"tool_ids"`
	// Embedding, or else EmbeddingConfig, replaces the embedding model.
	Embedding       *string                 `json:"embedding"`
	EmbeddingConfig *embeddingConfigRequest `json:"embedding_config"`
	// LLMConfig's context_window sets the context window when
	// context_window_limit does not.
	LLMConfig *llmConfigRequest `json:"llm_config"`
	agentSettingsRequest
}

func (h *handler) updateAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req updateAgentRequest
	if !decodeBody(w, r, &req) || !req.LLMConfig.check(w) {
		return
	}
	up := agent.UpdateRequest{Name: req.Name, System: req.System, Description: req.Description, Tags: req.Tags, Metadata: req.Metadata, Model: req.Model,
		CompactionSettings: req.CompactionSettings, ContextWindowLimit: req.ContextWindowLimit, ParallelToolCalls: req.parallelToolCalls(), Secrets: req.secrets()}
	if up.ContextWindowLimit == nil && req.LLMConfig != nil && req.LLMConfig.ContextWindow != 0 {
		up.ContextWindowLimit = &req.LLMConfig.ContextWindow
	}
	if up.Embedding = req.Embedding; up.Embedding == nil && req.EmbeddingConfig != nil {
		e := req.EmbeddingConfig.handle()
		up.Embedding = &e
	}
	if req.ToolIDs != nil {
		tools, customTools, err := h.svc.ResolveTools(r.Context(), nil, *req.ToolIDs)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		tools, customTools = nonNilStrings(tools), nonNilStrings(customTools)
		up.Tools, up.CustomToolIDs = &tools, &customTools
	}
	ag, err := h.svc.UpdateAgent(r.Context(), id, up)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}

func (h *handler) deleteAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	if err := h.svc.DeleteAgent(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": fmt.Sprintf("Agent id=%s successfully deleted", id)})
}

// listLimit parses the limit query parameter (default def, at most max).
func listLimit(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		writeQueryError(w, "limit", fmt.Sprintf("limit must be an integer in 1..%d", max))
		return 0, false
	}
	return n, true
}

// descending parses the order query parameter (default desc).
func descending(w http.ResponseWriter, r *http.Request) (bool, bool) {
	return orderDescending(w, r, true)
}

// orderDescending parses the order query parameter with the given default.
func orderDescending(w http.ResponseWriter, r *http.Request, def bool) (bool, bool) {
	switch r.URL.Query().Get("order") {
	case "":
		return def, true
	case "desc":
		return true, true
	case "asc":
		return false, true
	}
	writeQueryError(w, "order", `order must be "asc" or "desc"`)
	return false, false
}

// listAgents answers GET /v1/agents: newest first by default, filtered by
// name, query_text (substring of the name) and tags (any, or all with
// match_all_tags), paged with before/after/limit, each agent with the
// relationships the request selects (include.go).
func (h *handler) listAgents(w http.ResponseWriter, r *http.Request) {
	limit, ok := listLimit(w, r, 50, service.ListLimitMax)
	if !ok {
		return
	}
	desc, ok := descending(w, r)
	if !ok {
		return
	}
	rel, ok := parseRelationships(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("ascending") == "true" {
		desc = false
	}
	name, text, tags := q.Get("name"), strings.ToLower(q.Get("query_text")), q["tags"]
	matchAll := q.Get("match_all_tags") == "true"
	keep := func(a *agent.Agent) bool {
		if name != "" && a.Name != name {
			return false
		}
		if text != "" && !strings.Contains(strings.ToLower(a.Name), text) {
			return false
		}
		if len(tags) > 0 {
			hits := 0
			for _, t := range tags {
				if slices.Contains(a.Tags, t) {
					hits++
				}
			}
			if hits == 0 || (matchAll && hits < len(tags)) {
				return false
			}
		}
		return true
	}
	// "before" pages the other way: list in the opposite order after the
	// cursor, then reverse.
	cursor, flip := q.Get("after"), false
	if b := q.Get("before"); b != "" && cursor == "" {
		cursor, flip = b, true
	}
	opts := service.ListOptions{Limit: service.ListLimitMax, After: cursor, Descending: desc != flip}
	out := make([]*agent.Agent, 0, limit)
	for len(out) < limit {
		page, err := h.svc.ListAgents(r.Context(), opts)
		if errors.Is(err, agent.ErrNotFound) && opts.After == cursor {
			writeError(w, http.StatusNotFound, fmt.Sprintf("cursor agent %s not found", cursor))
			return
		}
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, a := range page {
			if keep(a) && len(out) < limit {
				out = append(out, a)
			}
		}
		if len(page) < opts.Limit {
			break
		}
		opts.After = page[len(page)-1].ID
	}
	if flip {
		slices.Reverse(out)
	}
	h.writeAgents(w, r, out, rel)
}

// Core memory blocks.

func (h *handler) listBlocks(w http.ResponseWriter, r *http.Request) {
	ag, ok := h.pathAgent(w, r)
	if !ok {
		return
	}
	blocks, ok := pageOf(w, r, h.agentWire(ag).Blocks, func(b blockWire) string { return b.ID }, 100, service.ListLimitMax, false)
	if ok {
		writeJSON(w, http.StatusOK, blocks)
	}
}

func (h *handler) getBlock(w http.ResponseWriter, r *http.Request) {
	ag, ok := h.pathAgent(w, r)
	if !ok {
		return
	}
	label := r.PathValue("block_label")
	b := ag.Block(label)
	if b == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("agent %s has no memory block labelled %q", ag.ID, label))
		return
	}
	writeJSON(w, http.StatusOK, toBlockWire(*b))
}

type blockUpdateRequest struct {
	Value       *string `json:"value"`
	Limit       *int    `json:"limit"`
	Description *string `json:"description"`
}

func (h *handler) updateBlock(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req blockUpdateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	label := r.PathValue("block_label")
	ag, err := h.svc.UpdateAgent(r.Context(), id, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: label, Value: req.Value, Limit: req.Limit, Description: req.Description}}})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toBlockWire(*ag.Block(label)))
}

// setToolApproval answers PATCH /v1/agents/{agent_id}/tools/approval/{tool_name}
// (?requires_approval=true|false, or a JSON body with requires_approval).
func (h *handler) setToolApproval(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var body struct {
		RequiresApproval *bool `json:"requires_approval"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	required := body.RequiresApproval
	if q := r.URL.Query().Get("requires_approval"); q != "" {
		v, err := strconv.ParseBool(q)
		if err != nil {
			writeQueryError(w, "requires_approval", "requires_approval must be true or false")
			return
		}
		required = &v
	}
	if required == nil {
		writeError(w, http.StatusUnprocessableEntity, "requires_approval is required")
		return
	}
	name := r.PathValue("tool_name")
	ag, err := h.svc.GetAgent(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !slices.Contains(ag.Tools, name) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("agent %s has no tool named %q", id, name))
		return
	}
	set := slices.DeleteFunc(slices.Clone(ag.ApprovalRequired), func(n string) bool { return n == name })
	if *required {
		set = append(set, name)
	}
	ag, err = h.svc.UpdateAgent(r.Context(), id, agent.UpdateRequest{ApprovalRequired: &set})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}

// pageOf applies Letta's list parameters — order (default desc unless
// ascByDefault), after, before, limit — to items given oldest first,
// identified by id. Unknown cursors answer 404.
func pageOf[T any](w http.ResponseWriter, r *http.Request, items []T, id func(T) string, def, max int, ascByDefault bool) ([]T, bool) {
	limit, ok := listLimit(w, r, def, max)
	if !ok {
		return nil, false
	}
	desc, ok := orderDescending(w, r, !ascByDefault)
	if !ok {
		return nil, false
	}
	out := slices.Clone(items)
	if desc {
		slices.Reverse(out)
	}
	q := r.URL.Query()
	find := func(cursor string) (int, bool) {
		i := slices.IndexFunc(out, func(v T) bool { return id(v) == cursor })
		if i < 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("cursor %s not found", cursor))
		}
		return i, i >= 0
	}
	if after := q.Get("after"); after != "" {
		i, ok := find(after)
		if !ok {
			return nil, false
		}
		out = out[i+1:]
	}
	if before := q.Get("before"); before != "" {
		i, ok := find(before)
		if !ok {
			return nil, false
		}
		out = out[:i]
		if len(out) > limit { // the page nearest the cursor
			out = out[len(out)-limit:]
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, true
}
