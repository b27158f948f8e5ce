// Package llm is the boundary between agents and language models: a
// provider-neutral chat-completion request and response with tool calls,
// and the Client interface that providers implement; and embeddings, the
// Embedder interface (EmbedRequest → EmbedResponse, bounded by
// EmbedInputsMax, EmbedInputBytesMax and EmbedRequestBytesMax).
//
// A Router sends each request to a provider chosen by its model handle,
// "provider/model". Chat and embedding handles follow the same rules,
// except that an embedding request must name its model (a provider's
// default model is a chat model) and its provider must have an embeddings
// endpoint: the OpenAI-compatible provider (llm/openai) has one, Anthropic
// (llm/anthropic) has none, and routing an embedding handle to it fails
// with a 400 *APIError. Every failure is, or wraps, an *APIError that
// HTTPStatus maps to the status the API answers with.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// ErrNotConfigured is returned when no model provider is configured.
var ErrNotConfigured = errors.New("llm: no model provider configured")

// errNotConfiguredAdvice is ErrNotConfigured with what to set, returned by
// Unconfigured and by a Router without providers.
var errNotConfiguredAdvice = fmt.Errorf("%w: set OPENAI_API_KEY and/or OPENAI_BASE_URL "+
	"(an OpenAI-compatible server such as Ollama, vLLM or llama.cpp needs only OPENAI_BASE_URL), "+
	"or ANTHROPIC_API_KEY", ErrNotConfigured)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content,omitempty"`
	// ToolCalls are the calls an assistant message makes.
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	// ToolCallID links a tool message to the call it answers.
	ToolCallID string `json:"tool_call_id,omitempty"`
	// Name is the tool's name on a tool message.
	Name string `json:"name,omitempty"`
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // a JSON object
}

// Tool describes a tool the model may call.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"` // a JSON Schema object
}

// Request is one chat completion request.
type Request struct {
	// Model names the model: a handle "provider/model" when the request
	// goes through a Router, the provider's own model name otherwise.
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Tools    []Tool    `json:"tools,omitempty"`
	// ToolChoice, if set, names the tool (one of Tools) the model must
	// call; empty lets the model choose, or answer with text.
	ToolChoice string `json:"tool_choice,omitempty"`
	// MaxTokens bounds the completion's length; 0 means the provider's
	// default (Anthropic, which requires a bound, gets 4096).
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature is the sampling temperature; nil means the provider's
	// default.
	Temperature *float64 `json:"temperature,omitempty"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Response is a completion: one assistant message.
type Response struct {
	Message Message `json:"message"`
	Usage   Usage   `json:"usage"`
}

// Client completes chats. Implementations must honour ctx.
type Client interface {
	Complete(ctx context.Context, req Request) (*Response, error)
}

// Delta is one piece of a streamed answer, in the order the model produced
// it. A piece carries text (Content), reasoning text (Reasoning), or a
// piece of a tool call: tool-call pieces accumulate by ToolCallIndex, the
// call's 0-based position among this answer's tool calls. The first piece
// of a call usually carries its ToolCallID and ToolCallName; the following
// ones carry fragments of ToolCallArguments to append. A delta is a
// tool-call piece exactly when one of the ToolCall strings is non-empty.
type Delta struct {
	Content           string `json:"content,omitempty"`
	Reasoning         string `json:"reasoning,omitempty"`
	ToolCallIndex     int    `json:"tool_call_index,omitempty"`
	ToolCallID        string `json:"tool_call_id,omitempty"`
	ToolCallName      string `json:"tool_call_name,omitempty"`
	ToolCallArguments string `json:"tool_call_arguments,omitempty"`
}

// IsToolCall reports whether d is a piece of a tool call.
func (d Delta) IsToolCall() bool {
	return d.ToolCallID != "" || d.ToolCallName != "" || d.ToolCallArguments != ""
}

// Streamer is a Client that can also stream its answer.
type Streamer interface {
	Client
	// CompleteStream is Complete, calling onDelta with each piece of the
	// answer as it arrives, in order, from the calling goroutine. The
	// returned Response is the whole assembled message and its usage, as
	// Complete would return it. If onDelta returns an error, streaming
	// stops and CompleteStream returns that error unchanged. A failed
	// attempt is retried only while no delta has been delivered.
	CompleteStream(ctx context.Context, req Request, onDelta func(Delta) error) (*Response, error)
}

// Provider types: the wire protocols Kelpie speaks.
const (
	ProviderTypeOpenAI    = "openai"
	ProviderTypeAnthropic = "anthropic"
)

// ModelInfo describes a model a provider offers.
type ModelInfo struct {
	// Handle is "provider/model", the name agents use.
	Handle string `json:"handle"`
	// Provider is the provider's name (Provider.Name).
	Provider string `json:"provider"`
	// Model is the provider's own name for the model.
	Model string `json:"model"`
	// ProviderType is the wire protocol: ProviderTypeOpenAI or
	// ProviderTypeAnthropic.
	ProviderType string `json:"provider_type"`
	// ContextWindow is the model's context window in tokens; 0 if unknown.
	ContextWindow int `json:"context_window,omitempty"`
	// Embedding marks an embedding model (not for chat).
	Embedding bool `json:"embedding,omitempty"`
}

// IsConfigured reports whether c can answer at all: false for
// Unconfigured and for clients that say so with a Configured method.
func IsConfigured(c Client) bool {
	if c == nil {
		return false
	}
	if cc, ok := c.(interface{ Configured() bool }); ok {
		return cc.Configured()
	}
	return true
}

// Unconfigured is the Client used when no provider is set up: every call
// fails with ErrNotConfigured and advice on what to set.
type Unconfigured struct{}

// Configured reports false: see IsConfigured.
func (Unconfigured) Configured() bool { return false }

// Complete implements Client.
func (Unconfigured) Complete(context.Context, Request) (*Response, error) {
	return nil, errNotConfiguredAdvice
}

// CompleteStream implements Streamer.
func (Unconfigured) CompleteStream(context.Context, Request, func(Delta) error) (*Response, error) {
	return nil, errNotConfiguredAdvice
}
