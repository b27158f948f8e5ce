// Package anthropic is an llm.Streamer for Anthropic's Messages API, built
// on the official SDK, github.com/anthropics/anthropic-sdk-go/v2.
//
// The SDK does the request encoding, response decoding and server-sent
// event parsing. Kelpie does the rest itself, as in package openai:
// retries (the SDK's are switched off, so that a stream is never retried
// after part of it was delivered), error normalisation (a capturing
// middleware keeps the status, message and Retry-After of any error
// body), the assembly of streamed tool calls, and the mapping between the
// provider-neutral chat and Anthropic's content blocks:
//
//   - leading system messages become the system parameter; a system
//     message later in the conversation becomes user text, since the
//     Messages API has no system turn;
//   - an assistant message becomes text and tool_use blocks;
//   - tool results become tool_result blocks in a user message, and
//     consecutive messages of one role merge into one message;
//   - max_tokens, which the API requires, defaults to DefaultMaxTokens;
//   - Request.Temperature is not sent: the API version the SDK speaks
//     (2026-10-21) has no temperature parameter.
//
// The client never reads the process environment. Importing the package
// registers the "anthropic" provider type with llm.FromEnv.
package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/packages/param"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/wire"
)

func init() {
	llm.RegisterProviderType(llm.ProviderTypeAnthropic, NewProvider)
}

// DefaultMaxTokens is max_tokens for a request that sets no MaxTokens.
const DefaultMaxTokens = 4096

// nonStreamingMaxTokens is the largest max_tokens Complete sends without
// streaming: the SDK refuses non-streaming requests it expects to run past
// ten minutes, and long idle responses are fragile, so beyond it Complete
// streams and assembles the answer.
const nonStreamingMaxTokens = 16384

// Config configures a Client. Zero fields take defaults.
type Config struct {
	// Name is the provider's name in errors and model infos (default
	// "anthropic").
	Name string
	// BaseURL is the API's base URL without the version path (default
	// https://api.anthropic.com; a trailing "/v1" is dropped).
	BaseURL string
	// APIKey is the API key.
	APIKey string
	// HTTPClient sends the requests (default: a client without an overall
	// timeout; each call's context bounds it).
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts of one call, the first included
	// (default 3).
	MaxAttempts int
	// BaseBackoff is the wait before the second attempt, doubling for each
	// further one, with jitter (default 500ms).
	BaseBackoff time.Duration
	// MaxBackoff caps the wait between attempts (default 8s).
	MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits out; a
	// longer one fails the call at once (default 60s).
	MaxRetryAfter time.Duration
}

// Client is an llm.Streamer over the Anthropic Messages API. It is safe
// for concurrent use.
type Client struct {
	name     string
	messages sdk.MessageService
	retry    wire.Policy
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = llm.ProviderTypeAnthropic
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = llm.DefaultAnthropicBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("anthropic: base URL %q: want an http:// or https:// URL", cfg.BaseURL)
	}
	base := strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), "/v1")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.HTTPClient
	}
	opts := []option.RequestOption{
		// The process environment (ANTHROPIC_*, credential profiles) is
		// not consulted: the configuration is Config alone.
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(base),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	client := sdk.NewClient(opts...)
	return &Client{
		name:     cfg.Name,
		messages: client.Messages,
		retry: wire.Policy{
			MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseBackoff,
			MaxDelay: cfg.MaxBackoff, MaxRetryAfter: cfg.MaxRetryAfter,
		}.Defaults(),
	}, nil
}

// Complete implements llm.Client.
func (c *Client) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	if req.MaxTokens > nonStreamingMaxTokens {
		return c.CompleteStream(ctx, req, nil)
	}
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	var out *llm.Response
	err = c.retry.Do(ctx, func(ctx context.Context) error {
		capt := &wire.Capture{}
		res, err := c.messages.New(ctx, params, option.WithMiddleware(capt.Middleware))
		if err != nil {
			return c.error(ctx, capt, err)
		}
		out = c.response(res)
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// error normalises a failed attempt, including an error event inside a
// stream, which the SDK reports with the stream's 200 status.
func (c *Client) error(ctx context.Context, capt *wire.Capture, err error) error {
	var ae *sdk.Error
	if errors.As(err, &ae) && ae.StatusCode < 400 {
		typ := string(ae.Type())
		msg := ae.Message
		if msg == "" {
			msg, _, _ = wire.ParseErrorBody([]byte(ae.RawJSON()))
		}
		return &llm.APIError{Provider: c.name, Status: wire.StatusForType(typ), Message: msg, Type: typ}
	}
	return wire.Error(ctx, c.name, capt, err)
}

// response converts a non-streamed message.
func (c *Client) response(res *sdk.Message) *llm.Response {
	out := llm.Message{Role: llm.RoleAssistant}
	var text strings.Builder
	for _, b := range res.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			out.ToolCalls = append(out.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
		}
	}
	out.Content = text.String()
	out.ToolCalls = wire.NormalizeToolCalls(out.ToolCalls)
	return &llm.Response{Message: out, Usage: usage(res.Usage.InputTokens+res.Usage.CacheCreationInputTokens+res.Usage.CacheReadInputTokens, res.Usage.OutputTokens)}
}

func usage(prompt, completion int64) llm.Usage {
	return llm.Usage{PromptTokens: int(prompt), CompletionTokens: int(completion), TotalTokens: int(prompt + completion)}
}

// CompleteStream implements llm.Streamer. Usage comes from message_start
// (prompt) and message_delta (completion); a stream that ends before
// message_stop fails with a Status-0 *llm.APIError.
func (c *Client) CompleteStream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	var (
		asm *wire.Assembler
		out *llm.Response
	)
	err = c.retry.Do(ctx, func(ctx context.Context) error {
		asm = wire.NewAssembler(onDelta)
		res, err := c.stream(ctx, params, asm)
		out = res
		return err
	}, func() bool { return asm != nil && asm.Delivered() })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// stream makes one streaming attempt, feeding asm.
func (c *Client) stream(ctx context.Context, params sdk.MessageNewParams, asm *wire.Assembler) (*llm.Response, error) {
	capt := &wire.Capture{}
	s := c.messages.NewStreaming(ctx, params, option.WithMiddleware(capt.Middleware))
	defer s.Close()
	var (
		prompt, completion int64
		finished           bool
		slots              = make(map[int64]int) // content-block index → tool-call index
	)
	for s.Next() {
		ev := s.Current()
		switch ev.Type {
		case "message_start":
			u := ev.Message.Usage
			prompt = u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
			completion = u.OutputTokens
		case "content_block_start":
			b := ev.ContentBlock
			var err error
			switch b.Type {
			case "tool_use":
				slot := asm.ToolCalls()
				slots[ev.Index] = slot
				err = asm.ToolCall(slot, b.ID, b.Name, "")
			case "text":
				err = asm.Content(b.Text)
			case "thinking":
				err = asm.Reasoning(b.Thinking)
			}
			if err != nil {
				return nil, err
			}
		case "content_block_delta":
			d := ev.Delta
			var err error
			switch d.Type {
			case "text_delta":
				err = asm.Content(d.Text)
			case "input_json_delta":
				if slot, ok := slots[ev.Index]; ok {
					err = asm.ToolCall(slot, "", "", d.PartialJSON)
				}
			case "thinking_delta":
				err = asm.Reasoning(d.Thinking)
			}
			if err != nil {
				return nil, err
			}
		case "message_delta":
			if ev.Usage.JSON.InputTokens.Valid() && ev.Usage.InputTokens > 0 {
				prompt = ev.Usage.InputTokens + ev.Usage.CacheCreationInputTokens + ev.Usage.CacheReadInputTokens
			}
			completion = ev.Usage.OutputTokens
		case "message_stop":
			finished = true
		}
	}
	if err := s.Err(); err != nil {
		return nil, c.error(ctx, capt, err)
	}
	if !finished {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &llm.APIError{Provider: c.name, Message: cerr.Error(), Err: cerr}
		}
		return nil, &llm.APIError{Provider: c.name, Message: wire.ErrStreamTruncated.Error(), Err: wire.ErrStreamTruncated}
	}
	return &llm.Response{Message: asm.Message(), Usage: usage(prompt, completion)}, nil
}

// invalid is the error for a request that cannot be sent as it is.
func (c *Client) invalid(format string, args ...any) error {
	return &llm.APIError{Provider: c.name, Status: http.StatusBadRequest, Type: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// turn is one message being built: consecutive messages of a role merge.
type turn struct {
	role   string
	blocks []sdk.ContentBlockParamUnion
}

// placeholder opens a conversation whose first turn is the assistant's
// (the API requires a user turn first).
const placeholder = "(earlier messages omitted)"

// params converts a request to the wire.
func (c *Client) params(req llm.Request) (sdk.MessageNewParams, error) {
	p := sdk.MessageNewParams{Model: req.Model, MaxTokens: DefaultMaxTokens}
	if req.Model == "" {
		return p, c.invalid("the request names no model")
	}
	if req.MaxTokens > 0 {
		p.MaxTokens = int64(req.MaxTokens)
	}
	var turns []turn
	add := func(role string, blocks ...sdk.ContentBlockParamUnion) {
		if len(blocks) == 0 {
			return
		}
		if n := len(turns); n > 0 && turns[n-1].role == role {
			turns[n-1].blocks = append(turns[n-1].blocks, blocks...)
			return
		}
		turns = append(turns, turn{role: role, blocks: blocks})
	}
	text := func(s string) []sdk.ContentBlockParamUnion {
		if strings.TrimSpace(s) == "" {
			return nil // the API rejects empty text blocks
		}
		return []sdk.ContentBlockParamUnion{sdk.NewTextBlock(s)}
	}
	leading := true
	for i, m := range req.Messages {
		if m.Role != llm.RoleSystem {
			leading = false
		}
		switch m.Role {
		case llm.RoleSystem:
			if leading {
				if strings.TrimSpace(m.Content) != "" {
					p.System = append(p.System, sdk.TextBlockParam{Text: m.Content})
				}
				continue
			}
			add(llm.RoleUser, text(m.Content)...)
		case llm.RoleUser:
			add(llm.RoleUser, text(m.Content)...)
		case llm.RoleAssistant:
			blocks := text(m.Content)
			for _, tc := range m.ToolCalls {
				blocks = append(blocks, sdk.NewToolUseBlock(tc.ID, toolInput(tc.Arguments), tc.Name))
			}
			add(llm.RoleAssistant, blocks...)
		case llm.RoleTool:
			r := sdk.ToolResultBlockParam{ToolUseID: m.ToolCallID}
			if m.Content != "" {
				r.Content = []sdk.ToolResultBlockParamContentUnion{{OfText: &sdk.TextBlockParam{Text: m.Content}}}
			}
			add(llm.RoleUser, sdk.ContentBlockParamUnion{OfToolResult: &r})
		default:
			return p, c.invalid("message %d has unknown role %q", i, m.Role)
		}
	}
	if len(turns) == 0 {
		return p, c.invalid("the request has no user or assistant message")
	}
	if turns[0].role != llm.RoleUser {
		turns = append([]turn{{role: llm.RoleUser, blocks: text(placeholder)}}, turns...)
	}
	for _, t := range turns {
		if t.role == llm.RoleUser {
			p.Messages = append(p.Messages, sdk.NewUserMessage(t.blocks...))
		} else {
			p.Messages = append(p.Messages, sdk.NewAssistantMessage(t.blocks...))
		}
	}
	for _, t := range req.Tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return p, c.invalid("tool %q: %v", t.Name, err)
		}
		tp := sdk.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tp.Description = param.NewOpt(t.Description)
		}
		p.Tools = append(p.Tools, sdk.ToolUnionParam{OfTool: &tp})
	}
	switch {
	case req.ToolChoice != "":
		if !offers(req.Tools, req.ToolChoice) {
			return p, c.invalid("tool_choice %q is not among the request's tools", req.ToolChoice)
		}
		p.ToolChoice = sdk.ToolChoiceUnionParam{OfTool: &sdk.ToolChoiceToolParam{Name: req.ToolChoice}}
	case len(p.Tools) > 0:
		p.ToolChoice = sdk.ToolChoiceUnionParam{OfAuto: &sdk.ToolChoiceAutoParam{}}
	}
	return p, nil
}

// toolInput is a tool call's arguments as a tool_use input, which must be
// a JSON object: anything else (a model's truncated or malformed
// arguments) is sent as {}.
func toolInput(args string) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(args), &obj) != nil || obj == nil {
		return json.RawMessage("{}")
	}
	return json.RawMessage(args)
}

// inputSchema converts a tool's JSON Schema to the SDK's input_schema.
func inputSchema(raw json.RawMessage) (sdk.ToolInputSchemaParam, error) {
	var s sdk.ToolInputSchemaParam
	if len(raw) == 0 || string(raw) == "null" {
		s.Properties = map[string]any{}
		return s, nil
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return s, fmt.Errorf("parameters are not a JSON object: %w", err)
	}
	s.Properties = map[string]any{}
	if props, ok := obj["properties"]; ok {
		s.Properties = props
	}
	if req, ok := obj["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				s.Required = append(s.Required, name)
			}
		}
	}
	for k, v := range obj {
		switch k {
		case "type", "properties", "required":
		default:
			if s.ExtraFields == nil {
				s.ExtraFields = map[string]any{}
			}
			s.ExtraFields[k] = v
		}
	}
	return s, nil
}

// offers reports whether tools has one named name.
func offers(tools []llm.Tool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}
