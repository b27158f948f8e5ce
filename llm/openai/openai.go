// Package openai is an llm.Streamer for OpenAI's chat-completions API, and
// an llm.Embedder for its embeddings API (POST {base}/embeddings), for
// OpenAI and the servers that imitate it (Ollama, vLLM, llama.cpp, LM Studio,
// OpenRouter, ...), built on the official SDK,
// github.com/openai/openai-go/v3.
//
// The SDK does the request encoding, response decoding and server-sent
// event parsing. Kelpie does the rest itself: retries (the SDK's are
// switched off, so that a stream is never retried after part of it was
// delivered and so that every provider follows one policy), error
// normalisation (the SDK drops the status and message of error bodies
// that are not OpenAI's JSON shape, such as Ollama's {"error": "..."} or a
// proxy's HTML page; a capturing middleware keeps them), the assembly of
// streamed tool calls, and model discovery. The client never reads the
// process environment: it is configured only through Config.
//
// Importing the package registers the "openai" provider type with
// llm.FromEnv.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/wire"
)

func init() {
	llm.RegisterProviderType(llm.ProviderTypeOpenAI, NewProvider)
}

// DefaultModelListTimeout bounds one GET {base}/models.
const DefaultModelListTimeout = 5 * time.Second

// Config configures a Client. Zero fields take defaults.
type Config struct {
	// Name is the provider's name in errors and model infos (default
	// "openai").
	Name string
	// BaseURL is the API's base URL including its version path (default
	// https://api.openai.com/v1; http://localhost:11434/v1 for Ollama).
	BaseURL string
	// APIKey is sent as a bearer token; empty sends none.
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
	// ModelListTimeout bounds ListModels (default 5s).
	ModelListTimeout time.Duration
}

// Client is an llm.Streamer and llm.Embedder over one OpenAI-compatible
// API. It is safe for concurrent use.
type Client struct {
	name        string
	official    bool // api.openai.com: max_completion_tokens instead of max_tokens
	chat        oai.ChatCompletionService
	embeddings  oai.EmbeddingService
	models      oai.ModelService
	retry       wire.Policy
	listTimeout time.Duration
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		cfg.Name = llm.ProviderTypeOpenAI
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = llm.DefaultOpenAIBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai: base URL %q: want an http:// or https:// URL", cfg.BaseURL)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = wire.HTTPClient
	}
	if cfg.ModelListTimeout <= 0 {
		cfg.ModelListTimeout = DefaultModelListTimeout
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(0),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	}
	return &Client{
		name:     cfg.Name,
		official: u.Hostname() == "api.openai.com",
		// The services, not oai.NewClient: NewClient reads OPENAI_* from
		// the process environment, and the configuration is Config alone.
		chat:       oai.NewChatCompletionService(opts...),
		embeddings: oai.NewEmbeddingService(opts...),
		models:     oai.NewModelService(opts...),
		retry: wire.Policy{
			MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseBackoff,
			MaxDelay: cfg.MaxBackoff, MaxRetryAfter: cfg.MaxRetryAfter,
		}.Defaults(),
		listTimeout: cfg.ModelListTimeout,
	}, nil
}

// Complete implements llm.Client.
func (c *Client) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	var out *llm.Response
	err = c.retry.Do(ctx, func(ctx context.Context) error {
		capt := &wire.Capture{}
		res, err := c.chat.New(ctx, params, option.WithMiddleware(capt.Middleware))
		if err != nil {
			return wire.Error(ctx, c.name, capt, err)
		}
		out, err = c.response(res)
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// response converts a non-streamed completion.
func (c *Client) response(res *oai.ChatCompletion) (*llm.Response, error) {
	if res == nil || len(res.Choices) == 0 {
		return nil, &llm.APIError{Provider: c.name, Status: http.StatusBadGateway, Type: "invalid_response", Message: "the completion has no choices"}
	}
	msg := res.Choices[0].Message
	out := llm.Message{Role: llm.RoleAssistant, Content: msg.Content}
	if out.Content == "" && msg.Refusal != "" {
		out.Content = msg.Refusal
	}
	for _, tc := range msg.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			continue
		}
		out.ToolCalls = append(out.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	out.ToolCalls = wire.NormalizeToolCalls(out.ToolCalls)
	return &llm.Response{Message: out, Usage: usage(res.Usage)}, nil
}

// usage converts token counts, filling a missing total.
func usage(u oai.CompletionUsage) llm.Usage {
	out := llm.Usage{PromptTokens: int(u.PromptTokens), CompletionTokens: int(u.CompletionTokens), TotalTokens: int(u.TotalTokens)}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// CompleteStream implements llm.Streamer. It asks for the usage chunk
// (stream_options.include_usage) and fails with a Status-0 *llm.APIError
// if the stream ends before a finish_reason.
func (c *Client) CompleteStream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	params, err := c.params(req)
	if err != nil {
		return nil, err
	}
	params.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: param.NewOpt(true)}
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

// reasoningFields are the non-standard delta fields servers put reasoning
// text in: reasoning_content (DeepSeek, vLLM, llama.cpp), reasoning
// (Ollama, OpenRouter).
var reasoningFields = []string{"reasoning_content", "reasoning"}

// stream makes one streaming attempt, feeding asm.
func (c *Client) stream(ctx context.Context, params oai.ChatCompletionNewParams, asm *wire.Assembler) (*llm.Response, error) {
	capt := &wire.Capture{}
	s := c.chat.NewStreaming(ctx, params, option.WithMiddleware(capt.Middleware))
	defer s.Close()
	var (
		u        llm.Usage
		finished bool
		slots    = make(map[int64]int) // the server's tool-call index → our dense index
	)
	for s.Next() {
		chunk := s.Current()
		if chunk.Usage.PromptTokens != 0 || chunk.Usage.CompletionTokens != 0 || chunk.Usage.TotalTokens != 0 {
			u = usage(chunk.Usage)
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			d := ch.Delta
			for _, f := range reasoningFields {
				if field, ok := d.JSON.ExtraFields[f]; ok {
					var text string
					if json.Unmarshal([]byte(field.Raw()), &text) == nil {
						if err := asm.Reasoning(text); err != nil {
							return nil, err
						}
					}
				}
			}
			if err := asm.Content(d.Content); err != nil {
				return nil, err
			}
			for _, tc := range d.ToolCalls {
				slot, ok := slots[tc.Index]
				// A new id at a known index is a new call: some servers
				// send every call at index 0.
				if !ok || (tc.ID != "" && asm.ToolCallID(slot) != "" && asm.ToolCallID(slot) != tc.ID) {
					slot = asm.ToolCalls()
					slots[tc.Index] = slot
				}
				if err := asm.ToolCall(slot, tc.ID, tc.Function.Name, tc.Function.Arguments); err != nil {
					return nil, err
				}
			}
			if ch.FinishReason != "" {
				finished = true
			}
		}
	}
	if err := s.Err(); err != nil {
		var se *ssestream.StreamError
		if errors.As(err, &se) {
			return nil, wire.StreamError(c.name, se.Event.Data)
		}
		return nil, wire.Error(ctx, c.name, capt, err)
	}
	if !finished {
		if cerr := ctx.Err(); cerr != nil {
			return nil, &llm.APIError{Provider: c.name, Message: cerr.Error(), Err: cerr}
		}
		return nil, &llm.APIError{Provider: c.name, Message: wire.ErrStreamTruncated.Error(), Err: wire.ErrStreamTruncated}
	}
	return &llm.Response{Message: asm.Message(), Usage: u}, nil
}

// invalid is the error for a request that cannot be sent as it is.
func (c *Client) invalid(format string, args ...any) error {
	return &llm.APIError{Provider: c.name, Status: http.StatusBadRequest, Type: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

// params converts a request to the wire.
func (c *Client) params(req llm.Request) (oai.ChatCompletionNewParams, error) {
	p := oai.ChatCompletionNewParams{Model: req.Model}
	if req.Model == "" {
		return p, c.invalid("the request names no model")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case llm.RoleSystem:
			p.Messages = append(p.Messages, oai.SystemMessage(m.Content))
		case llm.RoleUser:
			p.Messages = append(p.Messages, oai.UserMessage(m.Content))
		case llm.RoleAssistant:
			var a oai.ChatCompletionAssistantMessageParam
			if m.Content != "" || len(m.ToolCalls) == 0 {
				a.Content.OfString = param.NewOpt(m.Content)
			}
			for _, tc := range m.ToolCalls {
				args := tc.Arguments
				if strings.TrimSpace(args) == "" {
					args = "{}"
				}
				a.ToolCalls = append(a.ToolCalls, oai.ChatCompletionMessageToolCallUnionParam{
					OfFunction: &oai.ChatCompletionMessageFunctionToolCallParam{
						ID:       tc.ID,
						Function: oai.ChatCompletionMessageFunctionToolCallFunctionParam{Name: tc.Name, Arguments: args},
					},
				})
			}
			p.Messages = append(p.Messages, oai.ChatCompletionMessageParamUnion{OfAssistant: &a})
		case llm.RoleTool:
			p.Messages = append(p.Messages, oai.ToolMessage(m.Content, m.ToolCallID))
		default:
			return p, c.invalid("message %d has unknown role %q", i, m.Role)
		}
	}
	for _, t := range req.Tools {
		params := shared.FunctionParameters{"type": "object", "properties": map[string]any{}}
		if len(t.Parameters) > 0 && string(t.Parameters) != "null" {
			params = nil
			if err := json.Unmarshal(t.Parameters, &params); err != nil {
				return p, c.invalid("tool %q: parameters are not a JSON object: %v", t.Name, err)
			}
		}
		def := shared.FunctionDefinitionParam{Name: t.Name, Parameters: params}
		if t.Description != "" {
			def.Description = param.NewOpt(t.Description)
		}
		p.Tools = append(p.Tools, oai.ChatCompletionFunctionTool(def))
	}
	switch {
	case req.ToolChoice != "":
		if !offers(req.Tools, req.ToolChoice) {
			return p, c.invalid("tool_choice %q is not among the request's tools", req.ToolChoice)
		}
		p.ToolChoice = oai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &oai.ChatCompletionNamedToolChoiceParam{
			Function: oai.ChatCompletionNamedToolChoiceFunctionParam{Name: req.ToolChoice}}}
	case len(p.Tools) > 0:
		p.ToolChoice = oai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: param.NewOpt(string(oai.ChatCompletionToolChoiceOptionAutoAuto))}
	}
	if req.MaxTokens > 0 {
		// OpenAI itself deprecated max_tokens (its reasoning models reject
		// it); the servers that imitate it know max_tokens best.
		if c.official {
			p.MaxCompletionTokens = param.NewOpt(int64(req.MaxTokens))
		} else {
			p.MaxTokens = param.NewOpt(int64(req.MaxTokens))
		}
	}
	if req.Temperature != nil {
		p.Temperature = param.NewOpt(*req.Temperature)
	}
	return p, nil
}

// ListModels asks the server for its models (GET {base}/models), once,
// within the ModelListTimeout. Context windows are read from the fields
// servers add (vLLM's max_model_len, OpenRouter's context_length,
// llama.cpp's meta.n_ctx_train); models whose name contains "embed" are
// marked as embedding models.
func (c *Client) ListModels(ctx context.Context) ([]llm.ModelInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.listTimeout)
	defer cancel()
	capt := &wire.Capture{}
	page, err := c.models.List(ctx, option.WithMiddleware(capt.Middleware))
	if err != nil {
		return nil, wire.Error(ctx, c.name, capt, err)
	}
	out := make([]llm.ModelInfo, 0, len(page.Data))
	for _, m := range page.Data {
		if m.ID == "" {
			continue
		}
		out = append(out, llm.ModelInfo{
			Handle:        c.name + "/" + m.ID,
			Provider:      c.name,
			Model:         m.ID,
			ProviderType:  llm.ProviderTypeOpenAI,
			ContextWindow: contextWindow(m.RawJSON()),
			Embedding:     strings.Contains(strings.ToLower(m.ID), "embed"),
		})
	}
	return out, nil
}

// contextWindow reads a model's context window from the non-standard
// fields of its /models entry; 0 if none is there.
func contextWindow(raw string) int {
	var f struct {
		ContextWindow    int `json:"context_window"`
		ContextLength    int `json:"context_length"`
		MaxContextLength int `json:"max_context_length"`
		MaxModelLen      int `json:"max_model_len"`
		Meta             struct {
			NCtxTrain int `json:"n_ctx_train"`
		} `json:"meta"`
		TopProvider struct {
			ContextLength int `json:"context_length"`
		} `json:"top_provider"`
	}
	if json.Unmarshal([]byte(raw), &f) != nil {
		return 0
	}
	for _, n := range []int{f.ContextWindow, f.ContextLength, f.MaxContextLength, f.MaxModelLen, f.TopProvider.ContextLength, f.Meta.NCtxTrain} {
		if n > 0 {
			return n
		}
	}
	return 0
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
