// Package llmtest provides a scripted llm.Client for tests and the
// simulator: each call is answered by a function of the request, so tests
// decide exactly which tools the "model" calls.
package llmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/kelpie-ai/kelpie/llm"
)

// Script answers requests with Reply; it counts calls.
type Script struct {
	// Reply produces the response to one request.
	Reply func(ctx context.Context, req llm.Request) (*llm.Response, error)

	mu    sync.Mutex
	calls int
}

// Complete implements llm.Client.
func (s *Script) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Reply(ctx, req)
}

// Calls returns how many requests the script has answered.
func (s *Script) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Echo returns a script whose model answers every user message by calling
// send_message with "echo: <last user message>", then ends its turn. A
// request without tools (a summarizer's) gets "summary of N messages".
func Echo() *Script {
	return &Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if len(req.Tools) == 0 {
			return Text(fmt.Sprintf("summary of %d messages", len(req.Messages))), nil
		}
		last := req.Messages[len(req.Messages)-1]
		if last.Role == llm.RoleTool {
			return Text("done"), nil // after the tool ran, end the turn
		}
		var user string
		for i := len(req.Messages) - 1; i >= 0; i-- {
			if req.Messages[i].Role == llm.RoleUser {
				user = req.Messages[i].Content
				break
			}
		}
		return Call("send_message", map[string]any{"message": "echo: " + user}), nil
	}}
}

// Text returns a response with plain assistant text and no tool call.
func Text(s string) *llm.Response {
	return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: s}, Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}}
}

// Call returns a response whose assistant message calls tool with args.
func Call(tool string, args map[string]any) *llm.Response {
	b, err := json.Marshal(args)
	if err != nil {
		panic(fmt.Sprintf("llmtest.Call: %v", err))
	}
	return &llm.Response{
		Message: llm.Message{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call-" + tool, Name: tool, Arguments: string(b)}}},
		Usage:   llm.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15},
	}
}
