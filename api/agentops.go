package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/kelpie-ai/kelpie/service"
)

// One-off operations on an agent: recompiling its system prompt, and a
// model call with its model.

func (h *handler) agentOpRoutes() {
	h.route("POST /v1/agents/{agent_id}/recompile", h.recompileAgent)
	h.route("POST /v1/agents/{agent_id}/system-prompt/recompile", h.recompileAgent)
	h.route("POST /v1/agents/{agent_id}/generate", h.generate)
}

// recompileAgent answers POST /v1/agents/{agent_id}/recompile and its
// deprecated alias POST …/system-prompt/recompile: the system prompt of
// the agent's default conversation as its next step will send it. Kelpie
// compiles the prompt from the current memory blocks at every step and
// stores no compiled copy, so there is nothing to rebuild or persist:
// dry_run changes nothing, and update_timestamp (the memory's last-edit
// time, which Kelpie's prompt does not show) is accepted and has no
// effect. Both must be booleans.
func (h *handler) recompileAgent(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	for _, name := range []string{"update_timestamp", "dry_run"} {
		if _, ok := queryBool(w, r, name, false); !ok {
			return
		}
	}
	system, err := h.svc.CompileConversation(r.Context(), id, "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, system)
}

// generateRequest is Letta's GenerateRequest.
type generateRequest struct {
	Prompt         *string         `json:"prompt"`
	SystemPrompt   *string         `json:"system_prompt"`
	OverrideModel  *string         `json:"override_model"`
	ResponseSchema json.RawMessage `json:"response_schema"`
}

// generateResponse is Letta's GenerateResponse.
type generateResponse struct {
	Content string    `json:"content"`
	Model   string    `json:"model"`
	Usage   usageWire `json:"usage"`
}

// generate answers POST /v1/agents/{agent_id}/generate: one model call
// with the agent's model (or override_model) over the prompt, after the
// system_prompt if given, outside the agent and logged nowhere. With a
// response_schema the model must call a tool taking that schema, and the
// answer is the call's JSON arguments; a model that answers otherwise is
// a 502. A failed model call answers as a failed run does
// (llm_api_error, with the provider's status mapped).
func (h *handler) generate(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req generateRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Prompt == nil {
		writeFieldError(w, []any{"body", "prompt"}, "Field required", "missing")
		return
	}
	in := service.GenerateRequest{Prompt: *req.Prompt}
	if req.SystemPrompt != nil {
		in.SystemPrompt = *req.SystemPrompt
	}
	if req.OverrideModel != nil {
		in.OverrideModel = *req.OverrideModel
	}
	if s := string(req.ResponseSchema); s != "" && s != "null" {
		in.ResponseSchema = req.ResponseSchema
	}
	out, err := h.svc.Generate(r.Context(), id, in)
	if errors.Is(err, service.ErrNoStructuredOutput) {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("llm_api_error: %v", err))
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, generateResponse{Content: out.Content, Model: out.Model, Usage: usageWire{
		MessageType: "usage_statistics", CompletionTokens: out.Usage.CompletionTokens, PromptTokens: out.Usage.PromptTokens,
		TotalTokens: out.Usage.TotalTokens, StepCount: 1, RunIDs: []string{}}})
}
