package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/scripted"
)

func newClient(t *testing.T, f *scripted.Server) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: f.URL, APIKey: "sk-ant-test", BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
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

// sse answers with the given (event, data) pairs.
func sse(events ...[2]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for _, e := range events {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e[0], e[1])
			fl.Flush()
		}
	}
}

func message(content string, stop string) string {
	return `{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":` + content +
		`,"stop_reason":"` + stop + `","stop_sequence":null,"usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":7}}`
}

func TestCompleteText(t *testing.T) {
	f := scripted.New(t, jsonReply(200, message(`[{"type":"text","text":"Hello "},{"type":"text","text":"there."}]`, "end_turn")))
	res, err := newClient(t, f).Complete(context.Background(), llm.Request{
		Model: "claude-test",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "be brief"},
			{Role: llm.RoleUser, Content: "hi"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: "Hello there."}, Usage: llm.Usage{PromptTokens: 25, CompletionTokens: 7, TotalTokens: 32}}
	if !reflect.DeepEqual(*res, want) {
		t.Fatalf("response = %+v, want %+v", *res, want)
	}
	r := f.Request(0)
	if r.Path != "/v1/messages" {
		t.Errorf("path = %q", r.Path)
	}
	if r.Header.Get("Anthropic-Version") == "" {
		t.Error("no anthropic-version header")
	}
	if r.Header.Get("X-Api-Key") != "sk-ant-test" && r.Header.Get("Authorization") != "Bearer sk-ant-test" {
		t.Errorf("API key not sent: %v", r.Header)
	}
	wantBody := map[string]any{
		"model":      "claude-test",
		"max_tokens": 4096.0,
		"system":     []any{map[string]any{"type": "text", "text": "be brief"}},
		"messages": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi"}}},
		},
	}
	if !reflect.DeepEqual(r.Body, wantBody) {
		t.Errorf("request body = %v\nwant %v", r.Body, wantBody)
	}
}

var memoryTool = llm.Tool{
	Name:        "core_memory_append",
	Description: "Append to a memory block.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"label":{"type":"string"},"content":{"type":"string"}},"required":["label","content"],"additionalProperties":false}`),
}

func TestToolCallRoundTrip(t *testing.T) {
	f := scripted.New(t,
		jsonReply(200, message(`[{"type":"text","text":"Noting."},
			{"type":"tool_use","id":"toolu_1","name":"core_memory_append","input":{"label":"human","content":"likes tea"}},
			{"type":"tool_use","id":"toolu_2","name":"send_message","input":{"message":"ok"}}]`, "tool_use")),
		jsonReply(200, message(`[{"type":"text","text":"Done."}]`, "end_turn")))
	c := newClient(t, f)
	history := []llm.Message{{Role: llm.RoleSystem, Content: "sys"}, {Role: llm.RoleUser, Content: "I like tea"}}
	res, err := c.Complete(context.Background(), llm.Request{Model: "claude-test", Messages: history, Tools: []llm.Tool{memoryTool}})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []llm.ToolCall{
		{ID: "toolu_1", Name: "core_memory_append", Arguments: `{"label":"human","content":"likes tea"}`},
		{ID: "toolu_2", Name: "send_message", Arguments: `{"message":"ok"}`},
	}
	if !reflect.DeepEqual(res.Message.ToolCalls, wantCalls) || res.Message.Content != "Noting." {
		t.Fatalf("message = %+v", res.Message)
	}
	first := f.Request(0).Body
	wantTools := []any{map[string]any{
		"name": "core_memory_append", "description": "Append to a memory block.",
		"input_schema": map[string]any{"type": "object", "required": []any{"label", "content"}, "additionalProperties": false,
			"properties": map[string]any{"label": map[string]any{"type": "string"}, "content": map[string]any{"type": "string"}}},
	}}
	if !reflect.DeepEqual(first["tools"], wantTools) {
		t.Errorf("tools = %v\nwant %v", first["tools"], wantTools)
	}
	if !reflect.DeepEqual(first["tool_choice"], map[string]any{"type": "auto"}) {
		t.Errorf("tool_choice = %v", first["tool_choice"])
	}

	history = append(history, res.Message,
		llm.Message{Role: llm.RoleTool, ToolCallID: "toolu_1", Name: "core_memory_append", Content: `{"status":"OK"}`},
		llm.Message{Role: llm.RoleTool, ToolCallID: "toolu_2", Name: "send_message", Content: "sent"})
	if _, err := c.Complete(context.Background(), llm.Request{Model: "claude-test", Messages: history, Tools: []llm.Tool{memoryTool}}); err != nil {
		t.Fatal(err)
	}
	msgs := f.Request(1).Body["messages"].([]any)
	want := []any{
		map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "I like tea"}}},
		map[string]any{"role": "assistant", "content": []any{
			map[string]any{"type": "text", "text": "Noting."},
			map[string]any{"type": "tool_use", "id": "toolu_1", "name": "core_memory_append", "input": map[string]any{"label": "human", "content": "likes tea"}},
			map[string]any{"type": "tool_use", "id": "toolu_2", "name": "send_message", "input": map[string]any{"message": "ok"}},
		}},
		// Consecutive tool results merge into one user message.
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": []any{map[string]any{"type": "text", "text": `{"status":"OK"}`}}},
			map[string]any{"type": "tool_result", "tool_use_id": "toolu_2", "content": []any{map[string]any{"type": "text", "text": "sent"}}},
		}},
	}
	if !reflect.DeepEqual(msgs, want) {
		got, _ := json.MarshalIndent(msgs, "", " ")
		t.Errorf("second request's messages =\n%s", got)
	}
}

func TestMessageMapping(t *testing.T) {
	c, err := New(Config{APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.params(llm.Request{Model: "m", MaxTokens: 100, Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "one"},
		{Role: llm.RoleSystem, Content: "two"},
		{Role: llm.RoleAssistant, Content: "earlier answer", ToolCalls: []llm.ToolCall{{ID: "t1", Name: "f", Arguments: "{truncated"}}},
		{Role: llm.RoleTool, ToolCallID: "t1", Content: ""},
		{Role: llm.RoleSystem, Content: "a late system note"},
		{Role: llm.RoleUser, Content: "hi"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	var got map[string]any
	json.Unmarshal(b, &got)
	want := map[string]any{
		"model": "m", "max_tokens": 100.0,
		"system": []any{map[string]any{"type": "text", "text": "one"}, map[string]any{"type": "text", "text": "two"}},
		"messages": []any{
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": placeholder}}},
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "text", "text": "earlier answer"},
				map[string]any{"type": "tool_use", "id": "t1", "name": "f", "input": map[string]any{}},
			}},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "tool_result", "tool_use_id": "t1"},
				map[string]any{"type": "text", "text": "a late system note"},
				map[string]any{"type": "text", "text": "hi"},
			}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("params = %s", b)
	}
}

func TestStream(t *testing.T) {
	f := scripted.New(t, sse(
		[2]string{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":1}}}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		[2]string{"ping", `{"type":"ping"}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"note that."}}`},
		[2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"core_memory_append","input":{}}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"label\": \"hu"}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"man\"}"}}`},
		[2]string{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"send_message","input":{}}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"message\":\"ok\"}"}}`},
		[2]string{"content_block_stop", `{"type":"content_block_stop","index":2}`},
		[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`},
		[2]string{"message_stop", `{"type":"message_stop"}`},
	))
	var got []llm.Delta
	res, err := newClient(t, f).CompleteStream(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, Tools: []llm.Tool{memoryTool}}, func(d llm.Delta) error {
		got = append(got, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.Delta{
		{Content: "Let me "},
		{Content: "note that."},
		{ToolCallIndex: 0, ToolCallID: "toolu_1", ToolCallName: "core_memory_append"},
		{ToolCallIndex: 0, ToolCallArguments: `{"label": "hu`},
		{ToolCallIndex: 0, ToolCallArguments: `man"}`},
		{ToolCallIndex: 1, ToolCallID: "toolu_2", ToolCallName: "send_message"},
		{ToolCallIndex: 1, ToolCallArguments: `{"message":"ok"}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deltas =\n%+v\nwant\n%+v", got, want)
	}
	wantMsg := llm.Message{Role: llm.RoleAssistant, Content: "Let me note that.", ToolCalls: []llm.ToolCall{
		{ID: "toolu_1", Name: "core_memory_append", Arguments: `{"label": "human"}`},
		{ID: "toolu_2", Name: "send_message", Arguments: `{"message":"ok"}`},
	}}
	if !reflect.DeepEqual(res.Message, wantMsg) {
		t.Errorf("message = %+v", res.Message)
	}
	if res.Usage != (llm.Usage{PromptTokens: 30, CompletionTokens: 42, TotalTokens: 72}) {
		t.Errorf("usage = %+v", res.Usage)
	}
	if f.Request(0).Body["stream"] != true {
		t.Errorf("stream = %v", f.Request(0).Body["stream"])
	}
}

func TestStreamErrorEvent(t *testing.T) {
	f := scripted.New(t, sse(
		[2]string{"message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-test","content":[],"usage":{"input_tokens":30,"output_tokens":1}}}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`},
		[2]string{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`},
	))
	n := 0
	_, err := newClient(t, f).CompleteStream(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, func(llm.Delta) error {
		n++
		return nil
	})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 529 || ae.Message != "Overloaded" || ae.Type != "overloaded_error" || !ae.Retryable() {
		t.Fatalf("err = %#v", err)
	}
	if f.Attempts() != 1 || n != 1 {
		t.Errorf("%d attempts, %d deltas: a stream that delivered must not be retried", f.Attempts(), n)
	}
}

func TestRetry429ThenSuccess(t *testing.T) {
	f := scripted.New(t,
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "0")
			jsonReply(429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`)(w, r)
		},
		jsonReply(200, message(`[{"type":"text","text":"ok"}]`, "end_turn")))
	res, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Content != "ok" || f.Attempts() != 2 {
		t.Errorf("content %q after %d attempts", res.Message.Content, f.Attempts())
	}
}

func TestRetryStreamBeforeFirstDelta(t *testing.T) {
	f := scripted.New(t,
		jsonReply(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
		sse(
			[2]string{"message_start", `{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`},
			[2]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
			[2]string{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"ok"}}`},
			[2]string{"content_block_stop", `{"type":"content_block_stop","index":0}`},
			[2]string{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`},
			[2]string{"message_stop", `{"type":"message_stop"}`},
		))
	res, err := newClient(t, f).CompleteStream(context.Background(), llm.Request{Model: "c", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Content != "ok" || res.Usage.TotalTokens != 5 || f.Attempts() != 2 {
		t.Errorf("response %+v after %d attempts", res, f.Attempts())
	}
}

func TestServerErrorExhaustsAttempts(t *testing.T) {
	f := scripted.New(t, jsonReply(500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`))
	_, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	var ae *llm.APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Provider != "anthropic" || ae.Message != "Internal server error" || ae.Type != "api_error" {
		t.Fatalf("err = %#v", err)
	}
	if f.Attempts() != 3 {
		t.Errorf("attempts = %d, want 3", f.Attempts())
	}
}

func TestBadRequestNotRetried(t *testing.T) {
	f := scripted.New(t, jsonReply(400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`))
	_, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 400 || ae.Retryable() || !strings.HasPrefix(ae.Message, "prompt is too long") {
		t.Fatalf("err = %#v", err)
	}
	if !errors.Is(err, llm.ErrContextWindowExceeded) {
		t.Errorf("%v is not ErrContextWindowExceeded", err)
	}
	if f.Attempts() != 1 {
		t.Errorf("attempts = %d", f.Attempts())
	}
}

func TestProxyHTMLError(t *testing.T) {
	f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(502)
		io.WriteString(w, "<html>Bad Gateway</html>")
	})
	_, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 502 || f.Attempts() != 3 {
		t.Fatalf("err = %#v after %d attempts", err, f.Attempts())
	}
}

func TestContextTimeout(t *testing.T) {
	f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := newClient(t, f).CompleteStream(ctx, llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 0 || !errors.Is(err, context.DeadlineExceeded) || f.Attempts() != 1 {
		t.Fatalf("err = %#v after %d attempts", err, f.Attempts())
	}
}

func TestLargeMaxTokensStreams(t *testing.T) {
	f := scripted.New(t, sse(
		[2]string{"message_start", `{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`},
		[2]string{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"long"}}`},
		[2]string{"message_stop", `{"type":"message_stop"}`},
	))
	res, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "c", MaxTokens: 64000, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Message.Content != "long" || f.Request(0).Body["stream"] != true || f.Request(0).Body["max_tokens"] != 64000.0 {
		t.Errorf("response %+v, request %v", res, f.Request(0).Body)
	}
}

func TestProvider(t *testing.T) {
	p, err := NewProvider(llm.ProviderConfig{Name: "anthropic", Type: "anthropic", BaseURL: llm.DefaultAnthropicBaseURL, APIKey: "k", Models: []string{"claude-custom", BuiltinModels[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if p.DefaultModel != "claude-custom" || len(p.Models) != 1+len(BuiltinModels) || p.Models[1].Model != BuiltinModels[1] {
		t.Errorf("provider = %+v", p)
	}
}

// The client is configured by Config alone, never by ANTHROPIC_* variables.
func TestIgnoresProcessEnvironment(t *testing.T) {
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	t.Setenv("ANTHROPIC_API_KEY", "sk-from-env")
	t.Setenv("ANTHROPIC_AUTH_TOKEN", "tok-from-env")
	f := scripted.New(t, jsonReply(200, message(`[{"type":"text","text":"ok"}]`, "end_turn")))
	if _, err := newClient(t, f).Complete(context.Background(), llm.Request{Model: "c", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	h := f.Request(0).Header
	if strings.Contains(fmt.Sprint(h), "from-env") {
		t.Errorf("environment leaked into the request: %v", h)
	}
}

// A request that names a tool forces the model to call it; naming a tool
// the request does not offer fails before anything is sent.
func TestForcedToolChoice(t *testing.T) {
	f := scripted.New(t, jsonReply(200, message(`[{"type":"tool_use","id":"toolu_1","name":"core_memory_append","input":{"label":"human","content":"x"}}]`, "tool_use")))
	c := newClient(t, f)
	req := llm.Request{Model: "claude-test", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}, Tools: []llm.Tool{memoryTool}, ToolChoice: memoryTool.Name}
	if _, err := c.Complete(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "tool", "name": "core_memory_append"}
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
