package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
)

// One-off generation (Letta's POST /v1/agents/{agent_id}/generate): a
// single model call with an agent's model, or another, over a prompt and
// an optional system prompt. It is made outside the agent's actor and
// logs nothing: no memory, no tools of the agent's, no message, no run.

// Generation limits.
const (
	// generateTimeout bounds one generation (its retries included).
	generateTimeout = 5 * time.Minute
	// ResponseSchemaBytesMax bounds a generation's response schema.
	ResponseSchemaBytesMax = 64 << 10
)

// StructuredOutputTool is the tool a generation with a response schema
// forces the model to call; its arguments are the answer.
const StructuredOutputTool = "structured_output"

// ErrNoStructuredOutput: a generation with a response schema got an answer
// that did not call StructuredOutputTool.
var ErrNoStructuredOutput = errors.New("service: the model did not return structured output")

// GenerateRequest is a one-off generation.
type GenerateRequest struct {
	// Prompt is the user message; it must not be blank.
	Prompt string
	// SystemPrompt, if set, comes before it.
	SystemPrompt string
	// OverrideModel, if set, is the model handle to use instead of the
	// agent's.
	OverrideModel string
	// ResponseSchema, if set, is a JSON Schema object the answer must
	// follow: the model is made to call StructuredOutputTool with it as
	// parameters, and the call's arguments are the answer.
	ResponseSchema json.RawMessage
}

// GenerateResult is a generation's answer.
type GenerateResult struct {
	// Content is the model's text, or the JSON arguments of its
	// structured output.
	Content string
	// Model is the handle of the model that answered.
	Model string
	Usage llm.Usage
}

// checkGenerate validates req.
func checkGenerate(req *GenerateRequest) error {
	if strings.TrimSpace(req.Prompt) == "" {
		return fmt.Errorf("%w: prompt is empty", agent.ErrInvalid)
	}
	if len(req.Prompt) > agent.MessageBytesMax {
		return fmt.Errorf("%w: prompt is %d bytes, over the limit of %d", agent.ErrInvalid, len(req.Prompt), agent.MessageBytesMax)
	}
	if len(req.SystemPrompt) > agent.SystemBytesMax {
		return fmt.Errorf("%w: system_prompt is %d bytes, over the limit of %d", agent.ErrInvalid, len(req.SystemPrompt), agent.SystemBytesMax)
	}
	if len(req.OverrideModel) > agent.NameBytesMax {
		return fmt.Errorf("%w: override_model is %d bytes, over the limit of %d", agent.ErrInvalid, len(req.OverrideModel), agent.NameBytesMax)
	}
	if len(req.ResponseSchema) > 0 {
		if len(req.ResponseSchema) > ResponseSchemaBytesMax {
			return fmt.Errorf("%w: response_schema is %d bytes, over the limit of %d", agent.ErrInvalid, len(req.ResponseSchema), ResponseSchemaBytesMax)
		}
		var obj map[string]any
		if err := json.Unmarshal(req.ResponseSchema, &obj); err != nil || obj == nil {
			return fmt.Errorf("%w: response_schema must be a JSON Schema object", agent.ErrInvalid)
		}
	}
	return nil
}

// Generate runs a one-off generation for the agent: one model call, with
// the agent's model unless the request overrides it, read from the
// agent's committed state without activating it.
func (s *Service) Generate(ctx context.Context, agentID string, req GenerateRequest) (*GenerateResult, error) {
	if err := checkGenerate(&req); err != nil {
		return nil, err
	}
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	ag, err := s.loadStored(ctx, tx, agentID)
	tx.Rollback()
	if err != nil {
		return nil, err
	}
	model := ag.Model
	if req.OverrideModel != "" {
		model = req.OverrideModel
	}
	if !llm.IsConfigured(s.model) {
		return nil, llm.ErrNotConfigured
	}
	if r, ok := s.model.(interface {
		Resolve(ctx context.Context, model string) (provider, providerModel string, err error)
	}); ok && model == "" {
		// Name the provider's default model that will answer.
		if provider, m, err := r.Resolve(ctx, model); err == nil {
			model = provider + "/" + m
		}
	}
	call := llm.Request{Model: model}
	if req.SystemPrompt != "" {
		call.Messages = append(call.Messages, llm.Message{Role: llm.RoleSystem, Content: req.SystemPrompt})
	}
	call.Messages = append(call.Messages, llm.Message{Role: llm.RoleUser, Content: req.Prompt})
	if len(req.ResponseSchema) > 0 {
		call.Tools = []llm.Tool{{Name: StructuredOutputTool, Description: "Return the answer in the required structure.", Parameters: req.ResponseSchema}}
		call.ToolChoice = StructuredOutputTool
	}
	ctx, cancel := rt.WithTimeout(s.rt, ctx, generateTimeout)
	defer cancel()
	ctx, end := s.observeModel(ctx, model)
	resp, err := s.model.Complete(ctx, call)
	end(resp, err)
	if err != nil {
		return nil, err
	}
	out := &GenerateResult{Content: resp.Message.Content, Model: model, Usage: resp.Usage}
	if len(req.ResponseSchema) > 0 {
		i := -1
		for j, tc := range resp.Message.ToolCalls {
			if tc.Name == StructuredOutputTool {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("%w (model %s answered without calling %s)", ErrNoStructuredOutput, model, StructuredOutputTool)
		}
		out.Content = resp.Message.ToolCalls[i].Arguments
	}
	return out, nil
}
