// Package llm is the boundary between agents and language models: a
// provider-neutral chat-completion request and response with tool calls,
// and the Client interface that providers implement.
package llm

import (
	"context"
	"encoding/json"
	"errors"
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
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	Tools    []Tool    `json:"tools,omitempty"`
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

// Unconfigured is the Client used when no provider is set up: every call
// fails with ErrNotConfigured and advice on what to set.
type Unconfigured struct{}

// Complete implements Client.
func (Unconfigured) Complete(context.Context, Request) (*Response, error) {
	return nil, ErrNotConfigured
}
