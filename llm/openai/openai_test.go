package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/scripted"
)

func newClient(t *testing.T, f *scripted.Server, key string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: f.URL + "/v1", APIKey: key, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonReply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// sse answers with the given data events, then [DONE] unless noDone.
func sse(events []string, noDone bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
			fl.Flush()
		}
		if !noDone {
			io.WriteString(w, "data: [DONE]\n\n")
		}
	}
}

const textCompletion = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-test",
 "choices":[{"index":0,"message":{"role":"assistant","content":"Hello there."},"finish_reason":"stop"}],
 "usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}`

func TestCompleteText(t *testing.T) {
	f := scripted.New(t, jsonReply(200, textCompletion))
	c := newClient(t, f, "sk-test")
	temp := 0.25
	res, err := c.Complete(context.Background(), llm.Request{
		Model:       "gpt-test",
		Messages:    []llm.Message{{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Content: "hi"}},
		MaxTokens:   100,
		Temperature: &temp,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: "Hello there."}, Usage: llm.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15}}
	if !reflect.DeepEqual(*res, want) {
		t.Fatalf("response = %+v, want %+v", *res, want)
	}
	r := f.Request(0)
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path = %q", r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
		t.Errorf("Authorization = %q", got)
	}
	wantBody := map[string]any{
		"model": "gpt-test",
		"messages": []any{
			map[string]any{"role": "system", "content": "be brief"},
			map[string]any{"role": "user", "content": "hi"},
		},
		"max_tokens":  100.0,
		"temperature": 0.25,
	}
	if !reflect.DeepEqual(r.Body, wantBody) {
		t.Errorf("request body = %v\nwant %v", r.Body, wantBody)
	}
}

func TestNoAPIKeySendsNoAuthorization(t *testing.T) {
	f := scripted.New(t, jsonReply(200, textCompletion))
	if _, err := newClient(t, f, "").Complete(context.Background(), llm.Request{Model: "llama3", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if got := f.Request(0).Header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
}

var memoryTool = llm.Tool{
	Name:        "core_memory_append",
	Description: "Append to a memory block.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"label":{"type":"string"},"content":{"type":"string"}},"required":["label","content"]}`),
}

func TestToolCallRoundTrip(t *testing.T) {
	f := scripted.New(t,
		jsonReply(200, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-test",
		 "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
		   {"id":"call_abc","type":"function","function":{"name":"core_memory_append","arguments":"{\"label\":\"human\",\"content\":\"likes tea\"}"}}]},
		  "finish_reason":"tool_calls"}],
		 "usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}`),
		jsonReply(200, textCompletion))
	c := newClient(t, f, "k")
	history := []llm.Message{{Role: llm.RoleSystem, Content: "sys"}, {Role: llm.RoleUser, Content: "I like tea"}}
	res, err := c.Complete(context.Background(), llm.Request{Model: "gpt-test", Messages: history, Tools: []llm.Tool{memoryTool}})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []llm.ToolCall{{ID: "call_abc", Name: "core_memory_append", Arguments: `{"label":"human","content":"likes tea"}`}}
	if !reflect.DeepEqual(res.Message.ToolCalls, wantCalls) || res.Message.Content != "" {
		t.Fatalf("message = %+v", res.Message)
	}
	first := f.Request(0).Body
	wantTools := []any{map[string]any{"type": "function", "function": map[string]any{
		"name": "core_memory_append", "description": "Append to a memory block.",
		"parameters": map[string]any{"type": "object", "required": []any{"label", "content"}, "properties": map[string]any{
			"label": map[string]any{"type": "string"}, "content": map[string]any{"type": "string"}}},
	}}}
	if !reflect.DeepEqual(first["tools"], wantTools) {
		t.Errorf("tools = %v\nwant %v", first["tools"], wantTools)
	}
	if first["tool_choice"] != "auto" {
		t.Errorf("tool_choice = %v", first["tool_choice"])
	}

	history = append(history, res.Message, llm.Message{Role: llm.RoleTool, ToolCallID: "call_abc", Name: "core_memory_append", Content: `{"status":"OK"}`})
	if _, err := c.Complete(context.Background(), llm.Request{Model: "gpt-test", Messages: history, Tools: []llm.Tool{memoryTool}}); err != nil {
		t.Fatal(err)
	}
	msgs := f.Request(1).Body["messages"].([]any)
	if len(msgs) != 4 {
		t.Fatalf("second request has %d messages: %v", len(msgs), msgs)
	}
	wantAssistant := map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{
		"id": "call_abc", "type": "function",
		"function": map[string]any{"name": "core_memory_append", "arguments": `{"label":"human","content":"likes tea"}`},
	}}}
	if !reflect.DeepEqual(msgs[2], wantAssistant) {
		t.Errorf("assistant message = %v\nwant %v", msgs[2], wantAssistant)
	}
	wantTool := map[string]any{"role": "tool", "tool_call_id": "call_abc", "content": `{"status":"OK"}`}
	if !reflect.DeepEqual(msgs[3], wantTool) {
		t.Errorf("tool message = %v\nwant %v", msgs[3], wantTool)
	}
}

// collect returns an onDelta that records the deltas.
func collect(into *[]llm.Delta) func(llm.Delta) error {
	return func(d llm.Delta) error {
		*into = append(*into, d)
		return nil
	}
}

func chunk(delta string, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":` + fr + `}]}`
}

const usageChunk = `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}}`

func TestStreamText(t *testing.T) {
	f := scripted.New(t, sse([]string{
		chunk(`{"role":"assistant","content":""}`, ""),
		chunk(`{"reasoning_content":"thinking…"}`, ""),
		chunk(`{"content":"Hel"}`, ""),
		chunk(`{"content":"lo"}`, ""),
		chunk(`{"content":"!"}`, "stop"),
		usageChunk,
	}, false))
	var got []llm.Delta
	res, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Delta{{Reasoning: "thinking…"}, {Content: "Hel"}, {Content: "lo"}, {Content: "!"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deltas = %+v, want %+v", got, want)
	}
	if res.Message.Content != "Hello!" || res.Message.Role != llm.RoleAssistant {
		t.Errorf("message = %+v", res.Message)
	}
	if res.Usage != (llm.Usage{PromptTokens: 7, CompletionTokens: 4, TotalTokens: 11}) {
		t.Errorf("usage = %+v", res.Usage)
	}
	body := f.Request(0).Body
	if body["stream"] != true || !reflect.DeepEqual(body["stream_options"], map[string]any{"include_usage": true}) {
		t.Errorf("stream fields = %v, %v", body["stream"], body["stream_options"])
	}
}

func TestStreamToolCalls(t *testing.T) {
	f := scripted.New(t, sse([]string{
		chunk(`{"role":"assistant","content":"Let me note that."}`, ""),
		chunk(`{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"core_memory_append","arguments":""}}]}`, ""),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"label\":"}}]}`, ""),
		chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"human\"}"}}]}`, ""),
		chunk(`{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"send_message","arguments":"{\"message\""}}]}`, ""),
		chunk(`{"tool_calls":[{"index":1,"function":{"arguments":":\"ok\"}"}}]}`, "tool_calls"),
		usageChunk,
	}, false))
	var got []llm.Delta
	res, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, Tools: []llm.Tool{memoryTool}}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Delta{
		{Content: "Let me note that."},
		{ToolCallIndex: 0, ToolCallID: "call_1", ToolCallName: "core_memory_append"},
		{ToolCallIndex: 0, ToolCallArguments: `{"label":`},
		{ToolCallIndex: 0, ToolCallArguments: `"human"}`},
		{ToolCallIndex: 1, ToolCallID: "call_2", ToolCallName: "send_message", ToolCallArguments: `{"message"`},
		{ToolCallIndex: 1, ToolCallArguments: `:"ok"}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deltas =\n%+v\nwant\n%+v", got, want)
	}
	wantCalls := []llm.ToolCall{
		{ID: "call_1", Name: "core_memory_append", Arguments: `{"label":"human"}`},
		{ID: "call_2", Name: "send_message", Arguments: `{"message":"ok"}`},
	}
	if !reflect.DeepEqual(res.Message.ToolCalls, wantCalls) || res.Message.Content != "Let me note that." {
		t.Errorf("message = %+v", res.Message)
	}
	if res.Usage.TotalTokens != 11 {
		t.Errorf("usage = %+v", res.Usage)
	}
}

// Some servers send every tool call at index 0, each whole.
func TestStreamToolCallsSameIndex(t *testing.T) {
	f := scripted.New(t, sse([]string{
		chunk(`{"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]}`, ""),
		chunk(`{"tool_calls":[{"index":0,"id":"b","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]}`, "tool_calls"),
	}, false))
	res, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{{ID: "a", Name: "f", Arguments: "{}"}, {ID: "b", Name: "g", Arguments: `{"x":1}`}}
	if !reflect.DeepEqual(res.Message.ToolCalls, want) {
		t.Errorf("tool calls = %+v", res.Message.ToolCalls)
	}
}

func TestRetry429ThenSuccess(t *testing.T) {
	f := scripted.New(t,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After-Ms", "20")
			jsonReply(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)(w, r)
		},
		jsonReply(200, textCompletion))
	start := time.Now()
	res, err := newClient(t, f, "k").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Content != "Hello there." {
		t.Errorf("content = %q", res.Message.Content)
	}
	if n := f.Attempts(); n != 2 {
		t.Errorf("attempts = %d, want 2", n)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("retried after %v, before the Retry-After", d)
	}
}

func TestServerErrorExhaustsAttempts(t *testing.T) {
	f := scripted.New(t, jsonReply(500, `{"error":{"message":"The server had an error","type":"server_error"}}`))
	_, err := newClient(t, f, "k").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	var ae *llm.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *llm.APIError", err, err)
	}
	if ae.Status != 500 || ae.Provider != "openai" || ae.Message != "The server had an error" || !ae.Retryable() {
		t.Errorf("error = %+v", ae)
	}
	if !errors.Is(err, llm.ErrUnavailable) || llm.HTTPStatus(err) != http.StatusBadGateway {
		t.Errorf("class of %v: unavailable=%v status=%d", err, errors.Is(err, llm.ErrUnavailable), llm.HTTPStatus(err))
	}
	if n := f.Attempts(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
}

func TestBadRequestNotRetried(t *testing.T) {
	f := scripted.New(t, jsonReply(400, `{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}`))
	_, err := newClient(t, f, "k").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 400 || ae.Retryable() || !strings.Contains(ae.Message, "maximum context length") {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, llm.ErrInvalidRequest) || !errors.Is(err, llm.ErrContextWindowExceeded) || llm.HTTPStatus(err) != 400 {
		t.Errorf("classes of %v wrong", err)
	}
	if n := f.Attempts(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
}

// Error bodies that are not OpenAI's shape keep their status and message.
func TestForeignErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		status      int
		ctype, body string
		msg         string
	}{
		{404, "application/json", `{"error":"model \"llama9\" not found, try pulling it first"}`, `model "llama9" not found, try pulling it first`},
		{400, "application/json", `{"object":"error","message":"bad tool schema","type":"BadRequestError","code":400}`, "bad tool schema"},
		{401, "text/plain", "unauthorized\n", "unauthorized"},
		{403, "text/html", "<html><body>Forbidden</body></html>", ""},
	} {
		f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.ctype)
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		_, err := newClient(t, f, "k").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		ae, ok := llm.AsAPIError(err)
		if !ok || ae.Status != tc.status || ae.Message != tc.msg {
			t.Errorf("%d %s: err = %#v", tc.status, tc.body, err)
		}
		if f.Attempts() != 1 {
			t.Errorf("%d: %d attempts", tc.status, f.Attempts())
		}
	}
}

func TestContextTimeout(t *testing.T) {
	f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, f, "k").Complete(ctx, llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 0 || ae.Retryable() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %#v", err)
	}
	if llm.HTTPStatus(err) != http.StatusGatewayTimeout {
		t.Errorf("HTTPStatus = %d", llm.HTTPStatus(err))
	}
	if n := f.Attempts(); n != 1 {
		t.Errorf("attempts = %d", n)
	}
}

func TestStreamRetriedBeforeFirstDelta(t *testing.T) {
	f := scripted.New(t,
		jsonReply(503, `{"error":{"message":"overloaded","type":"server_error"}}`),
		sse([]string{chunk(`{"content":"ok"}`, "stop")}, false))
	var got []llm.Delta
	res, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, collect(&got))
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Content != "ok" || len(got) != 1 || f.Attempts() != 2 {
		t.Errorf("content %q, %d deltas, %d attempts", res.Message.Content, len(got), f.Attempts())
	}
}

func TestStreamNotRetriedAfterDelta(t *testing.T) {
	// The stream breaks off after one delta: no finish_reason, no [DONE].
	f := scripted.New(t, sse([]string{chunk(`{"content":"partial"}`, "")}, true))
	var got []llm.Delta
	_, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, collect(&got))
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 0 || !ae.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	if n := f.Attempts(); n != 1 {
		t.Errorf("attempts = %d, want 1 (a delta was delivered)", n)
	}
	if len(got) != 1 {
		t.Errorf("deltas = %+v", got)
	}
}

func TestStreamErrorEvent(t *testing.T) {
	f := scripted.New(t, sse([]string{`{"error":{"message":"context too long for this model","type":"invalid_request_error"}}`}, true))
	_, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 400 || ae.Message != "context too long for this model" {
		t.Fatalf("err = %#v", err)
	}
	if f.Attempts() != 1 {
		t.Errorf("attempts = %d", f.Attempts())
	}
}

func TestOnDeltaErrorStopsStream(t *testing.T) {
	f := scripted.New(t, sse([]string{chunk(`{"content":"a"}`, ""), chunk(`{"content":"b"}`, ""), chunk(`{"content":"c"}`, "stop")}, false))
	stop := errors.New("client went away")
	var got []llm.Delta
	_, err := newClient(t, f, "k").CompleteStream(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, func(d llm.Delta) error {
		got = append(got, d)
		return stop
	})
	if err != stop {
		t.Fatalf("err = %v, want the callback's error unchanged", err)
	}
	if len(got) != 1 || f.Attempts() != 1 {
		t.Errorf("%d deltas, %d attempts", len(got), f.Attempts())
	}
}

func TestRetryAfterTooLongNotRetried(t *testing.T) {
	f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		jsonReply(429, `{"error":{"message":"quota","type":"requests"}}`)(w, r)
	})
	_, err := newClient(t, f, "k").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 429 || ae.RetryAfter != time.Hour || !errors.Is(err, llm.ErrRateLimited) || llm.HTTPStatus(err) != 429 {
		t.Fatalf("err = %#v", err)
	}
	if f.Attempts() != 1 {
		t.Errorf("attempts = %d", f.Attempts())
	}
}

func TestTransportErrorRetried(t *testing.T) {
	f := scripted.New(t, jsonReply(200, textCompletion))
	url := f.URL
	f.Close()
	c, err := New(Config{BaseURL: url + "/v1", BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 0 || ae.Err == nil || !ae.Retryable() || !errors.Is(err, llm.ErrUnavailable) {
		t.Fatalf("err = %#v", err)
	}
}

func TestInvalidRequestIsAPIError(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1/v1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: "robot", Content: "hi"}}})
	if ae, ok := llm.AsAPIError(err); !ok || ae.Status != 400 {
		t.Fatalf("err = %#v", err)
	}
	_, err = c.Complete(context.Background(), llm.Request{Model: "m", Tools: []llm.Tool{{Name: "t", Parameters: json.RawMessage(`[1]`)}}})
	if ae, ok := llm.AsAPIError(err); !ok || ae.Status != 400 {
		t.Fatalf("err = %#v", err)
	}
}

func TestListModels(t *testing.T) {
	f := scripted.New(t, jsonReply(200, `{"object":"list","data":[
		{"id":"llama3.2","object":"model","created":1,"owned_by":"library"},
		{"id":"Qwen/Qwen2.5-7B-Instruct","object":"model","created":1,"owned_by":"vllm","max_model_len":32768},
		{"id":"nomic-embed-text","object":"model","created":1,"owned_by":"library","meta":{"n_ctx_train":8192}}]}`))
	got, err := newClient(t, f, "").ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ModelInfo{
		{Handle: "openai/llama3.2", Provider: "openai", Model: "llama3.2", ProviderType: "openai"},
		{Handle: "openai/Qwen/Qwen2.5-7B-Instruct", Provider: "openai", Model: "Qwen/Qwen2.5-7B-Instruct", ProviderType: "openai", ContextWindow: 32768},
		{Handle: "openai/nomic-embed-text", Provider: "openai", Model: "nomic-embed-text", ProviderType: "openai", ContextWindow: 8192, Embedding: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("models =\n%+v\nwant\n%+v", got, want)
	}
	if p := f.Request(0).Path; p != "/v1/models" {
		t.Errorf("path = %q", p)
	}
}

func TestOfficialUsesMaxCompletionTokens(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.params(llm.Request{Model: "gpt-x", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, MaxTokens: 50})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	if !strings.Contains(string(b), `"max_completion_tokens":50`) || strings.Contains(string(b), `"max_tokens"`) {
		t.Errorf("params = %s", b)
	}
}

func TestModelListerCachesFailure(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	l := NewModelLister(func(context.Context) ([]llm.ModelInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return nil, errors.New("unreachable")
	})
	l.Prefetch()
	for range 3 {
		if _, err := l.Models(context.Background()); err == nil {
			t.Fatal("no error")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("fetched %d times, want 1 within the retry interval", calls)
	}
}

// The client is configured by Config alone, never by OPENAI_* variables.
func TestIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("OPENAI_API_KEY", "sk-from-env")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-Leak: yes")
	f := scripted.New(t, jsonReply(200, textCompletion))
	if _, err := newClient(t, f, "").Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if h := f.Request(0).Header; h.Get("Authorization") != "" || h.Get("X-Leak") != "" {
		t.Errorf("environment leaked into the request: %v", h)
	}
}

// A request that names a tool forces the model to call it; naming a tool
// the request does not offer fails before anything is sent.
func TestForcedToolChoice(t *testing.T) {
	f := scripted.New(t, jsonReply(200, textCompletion))
	c := newClient(t, f, "k")
	req := llm.Request{Model: "gpt-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, Tools: []llm.Tool{memoryTool}, ToolChoice: memoryTool.Name}
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "function", "function": map[string]any{"name": "core_memory_append"}}
	if got := f.Request(0).Body["tool_choice"]; !reflect.DeepEqual(got, want) {
		t.Errorf("tool_choice = %v, want %v", got, want)
	}
	req.ToolChoice = "no_such_tool"
	if _, err := c.Complete(context.Background(), req); llm.HTTPStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "no_such_tool") {
		t.Errorf("an unknown tool_choice: %v", err)
	}
	if n := f.Attempts(); n != 1 {
		t.Errorf("%d requests sent, want 1", n)
	}
}
