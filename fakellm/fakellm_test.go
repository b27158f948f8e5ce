package fakellm_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/kelpie-ai/kelpie/fakellm"
)

// newClient serves a fake with opts and returns an OpenAI SDK client for
// it (retries off unless asked for) and its base URL.
func newClient(t *testing.T, opts fakellm.Options, extra ...option.RequestOption) (openai.Client, string) {
	t.Helper()
	srv := httptest.NewServer(fakellm.New(opts))
	t.Cleanup(srv.Close)
	base := srv.URL + "/v1/"
	o := append([]option.RequestOption{option.WithBaseURL(base), option.WithAPIKey("test-key"), option.WithMaxRetries(0)}, extra...)
	return openai.NewClient(o...), base
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// tool declares a function tool with a free-form object schema.
func tool(name string) openai.ChatCompletionToolUnionParam {
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name:       name,
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{}},
	})
}

// lettaTools are the tools a Letta agent offers.
func lettaTools() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{
		tool("send_message"), tool("core_memory_append"), tool("archival_memory_search"),
	}
}

func TestFakeChatJSON(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})

	// No tools: a text echo.
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello there")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(res.Choices))
	}
	c := res.Choices[0]
	if c.Message.Content != "Echo: hello there" || c.FinishReason != "stop" || len(c.Message.ToolCalls) != 0 {
		t.Errorf("reply = %q finish %q calls %d, want \"Echo: hello there\", stop, no calls", c.Message.Content, c.FinishReason, len(c.Message.ToolCalls))
	}
	if res.Object != "chat.completion" || res.Model != "fake-model" || !strings.HasPrefix(res.ID, "chatcmpl-") {
		t.Errorf("object %q model %q id %q", res.Object, res.Model, res.ID)
	}
	// "be brief hello there" is 4 words: 4/0.75 = 5.33 → 6; "Echo: hello there" 3 words → 4.
	if res.Usage.PromptTokens != 6 || res.Usage.CompletionTokens != 4 || res.Usage.TotalTokens != 10 {
		t.Errorf("usage = %+v, want 6+4=10", res.Usage)
	}

	// With send_message offered: a send_message call.
	params := openai.ChatCompletionNewParams{
		Model:    "any-model-name",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		Tools:    lettaTools(),
	}
	res, err = client.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	c = res.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
		t.Fatalf("finish %q, %d calls; want tool_calls, 1", c.FinishReason, len(c.Message.ToolCalls))
	}
	tc := c.Message.ToolCalls[0]
	if tc.Type != "function" || tc.Function.Name != "send_message" || tc.Function.Arguments != `{"message":"Echo: hi"}` {
		t.Errorf("call = %s %s(%s), want function send_message({\"message\":\"Echo: hi\"})", tc.Type, tc.Function.Name, tc.Function.Arguments)
	}
	if want := fakellm.ToolCallID(1, 0, "send_message"); tc.ID != want {
		t.Errorf("call id = %q, want %q", tc.ID, want)
	}
	if res.Model != "any-model-name" {
		t.Errorf("model = %q, want the requested name", res.Model)
	}

	// Deterministic: the same request gets the same response.
	again, err := client.Chat.Completions.New(ctx(t), params)
	if err != nil {
		t.Fatal(err)
	}
	if again.RawJSON() != res.RawJSON() {
		t.Errorf("same request, different responses:\n%s\n%s", res.RawJSON(), again.RawJSON())
	}
}

// TestFakeAgentLoop drives a Letta-style agent loop: a directive makes
// the model call a memory tool with exact arguments; after the tool
// result the default behaviour resumes with send_message "Done."; after
// that result, plain text ends the turn.
func TestFakeAgentLoop(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	msgs := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("You are a helpful assistant."),
		openai.UserMessage("remember this\n@tool core_memory_append {\"label\": \"human\", \"content\": \"Likes \\\"green\\\" tea ☕\"}\n@tool archival_memory_search {\"query\":\"tea\",\"page\":0}"),
	}
	step := func() openai.ChatCompletionMessage {
		t.Helper()
		res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model", Messages: msgs, Tools: lettaTools()})
		if err != nil {
			t.Fatal(err)
		}
		m := res.Choices[0].Message
		msgs = append(msgs, m.ToParam())
		for _, tc := range m.ToolCalls {
			msgs = append(msgs, openai.ToolMessage(`{"status":"OK"}`, tc.ID))
		}
		return m
	}

	m := step()
	if len(m.ToolCalls) != 2 {
		t.Fatalf("step 1: %d tool calls, want 2: %s", len(m.ToolCalls), m.RawJSON())
	}
	want := []struct{ name, args string }{
		{"core_memory_append", `{"label":"human","content":"Likes \"green\" tea ☕"}`},
		{"archival_memory_search", `{"query":"tea","page":0}`},
	}
	for i, w := range want {
		got := m.ToolCalls[i].Function
		if got.Name != w.name || got.Arguments != w.args {
			t.Errorf("step 1 call %d = %s(%s), want %s(%s)", i, got.Name, got.Arguments, w.name, w.args)
		}
	}
	if m.ToolCalls[0].ID == m.ToolCalls[1].ID {
		t.Errorf("tool call IDs not unique: %q", m.ToolCalls[0].ID)
	}

	m = step()
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "send_message" || m.ToolCalls[0].Function.Arguments != `{"message":"Done."}` {
		t.Fatalf("step 2 = %s, want send_message(Done.)", m.RawJSON())
	}

	m = step()
	if len(m.ToolCalls) != 0 || m.Content != "OK" {
		t.Fatalf("step 3 = %s, want text OK", m.RawJSON())
	}

	// A new user turn: the default echo again, since send_message was not
	// called in this turn yet.
	msgs = append(msgs, openai.UserMessage("next"))
	m = step()
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Arguments != `{"message":"Echo: next"}` {
		t.Fatalf("new turn = %s, want send_message(Echo: next)", m.RawJSON())
	}
}

func TestFakeReplyDirective(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("question\n@reply I will not call tools.\n@reply Second line.")},
		Tools:    lettaTools(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Choices[0].Message
	if m.Content != "I will not call tools.\nSecond line." || len(m.ToolCalls) != 0 || res.Choices[0].FinishReason != "stop" {
		t.Errorf("reply = %s, want the @reply text and no tool calls", m.RawJSON())
	}
}

func TestFakeStreamingToolCalls(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	args0 := `{"label":"persona","content":"Ünïcödé ✓ and a fairly long value so that it takes several fragments"}`
	stream := client.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model: "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(
			"do it\n@reply Working on it.\n@tool core_memory_append " + args0 + "\n@tool send_message {\"message\": \"done\"}")},
		Tools:         lettaTools(),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	var chunks, argChunks, usageChunks int
	var finished []openai.FinishedChatCompletionToolCall
	for stream.Next() {
		ch := stream.Current()
		chunks++
		if !acc.AddChunk(ch) {
			t.Fatalf("accumulator rejected chunk %d: %s", chunks, ch.RawJSON())
		}
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
		if chunks == 1 && (len(ch.Choices) != 1 || ch.Choices[0].Delta.Role != "assistant") {
			t.Errorf("first chunk = %s, want the role delta", ch.RawJSON())
		}
		if ch.Object != "chat.completion.chunk" {
			t.Errorf("object = %q", ch.Object)
		}
		for _, c := range ch.Choices {
			for _, tc := range c.Delta.ToolCalls {
				if tc.Function.Arguments != "" {
					argChunks++
				}
			}
		}
		if len(ch.Choices) == 0 {
			usageChunks++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if argChunks < 4 {
		t.Errorf("%d argument fragments, want the arguments split over several chunks", argChunks)
	}
	if usageChunks != 1 || acc.Usage.TotalTokens == 0 {
		t.Errorf("usage chunks %d, usage %+v; want one usage chunk", usageChunks, acc.Usage)
	}
	if len(acc.Choices) != 1 {
		t.Fatalf("accumulated %d choices", len(acc.Choices))
	}
	c := acc.Choices[0]
	if c.Message.Content != "Working on it." || c.FinishReason != "tool_calls" {
		t.Errorf("content %q finish %q", c.Message.Content, c.FinishReason)
	}
	want := []struct{ name, args string }{{"core_memory_append", args0}, {"send_message", `{"message":"done"}`}}
	if len(c.Message.ToolCalls) != len(want) {
		t.Fatalf("accumulated %d tool calls, want %d", len(c.Message.ToolCalls), len(want))
	}
	for i, w := range want {
		got := c.Message.ToolCalls[i]
		if got.Function.Name != w.name || got.Function.Arguments != w.args || got.Type != "function" {
			t.Errorf("call %d = %s %s(%s), want function %s(%s)", i, got.Type, got.Function.Name, got.Function.Arguments, w.name, w.args)
		}
		if got.ID != fakellm.ToolCallID(1, i, w.name) {
			t.Errorf("call %d id %q", i, got.ID)
		}
	}
	if len(finished) == 0 || finished[0].Name != "core_memory_append" || finished[0].Arguments != args0 {
		t.Errorf("JustFinishedToolCall = %+v, want core_memory_append first", finished)
	}

	// Streaming and non-streaming replies agree.
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "fake-model", Tools: lettaTools(),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("plain")},
	})
	if err != nil {
		t.Fatal(err)
	}
	acc = openai.ChatCompletionAccumulator{}
	stream = client.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model: "fake-model", Tools: lettaTools(),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("plain")},
	})
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := acc.Choices[0].Message.ToolCalls[0].Function.Arguments, res.Choices[0].Message.ToolCalls[0].Function.Arguments; got != want {
		t.Errorf("streamed arguments %q, JSON %q", got, want)
	}
}

func TestFakeStreamingText(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	stream := client.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("the  quick brown fox")},
	})
	var acc openai.ChatCompletionAccumulator
	var content []string
	for stream.Next() {
		ch := stream.Current()
		acc.AddChunk(ch)
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			content = append(content, ch.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "Echo: the  quick brown fox" {
		t.Errorf("content = %q", got)
	}
	if len(content) < 3 {
		t.Errorf("content deltas %q, want several", content)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish = %q", acc.Choices[0].FinishReason)
	}
}

// TestFakeStreamWire checks the raw event stream: OpenAI's chunk layout,
// "usage": null on content chunks when usage is asked for, and [DONE].
func TestFakeStreamWire(t *testing.T) {
	srv := httptest.NewServer(fakellm.New(fakellm.Options{}))
	defer srv.Close()
	body := `{"model":"m","stream":true,"stream_options":{"include_usage":true},
		"messages":[{"role":"user","content":"x\n@tool t1 {\"a\":1}"}],
		"tools":[{"type":"function","function":{"name":"t1"}}]}`
	res, err := http.Post(srv.URL+"/chat/completions", "application/json", strings.NewReader(body)) // no /v1 prefix
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("Content-Type = %q", ct)
	}
	var events []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("line %q is not a data line", line)
		}
		events = append(events, data)
	}
	if len(events) < 6 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events = %q", events)
	}
	type ev struct {
		Object  string `json:"object"`
		Choices []struct {
			Delta        map[string]json.RawMessage `json:"delta"`
			FinishReason *string                    `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	parse := func(s string) ev {
		var e ev
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			t.Fatalf("event %q: %v", s, err)
		}
		return e
	}
	first := parse(events[0])
	if string(first.Choices[0].Delta["role"]) != `"assistant"` || string(first.Choices[0].Delta["content"]) != "null" {
		t.Errorf("first event %s, want role assistant and content null", events[0])
	}
	head := parse(events[1])
	if tc := string(head.Choices[0].Delta["tool_calls"]); !strings.Contains(tc, `"id":"call_`) || !strings.Contains(tc, `"name":"t1"`) || !strings.Contains(tc, `"arguments":""`) {
		t.Errorf("tool call head %s", events[1])
	}
	var args string
	for _, s := range events[2 : len(events)-3] {
		e := parse(s)
		var tcs []struct {
			Index    int `json:"index"`
			Function struct {
				Name      *string `json:"name"`
				Arguments string  `json:"arguments"`
			} `json:"function"`
		}
		json.Unmarshal(e.Choices[0].Delta["tool_calls"], &tcs)
		if len(tcs) != 1 || tcs[0].Function.Name != nil {
			t.Errorf("fragment event %s", s)
			continue
		}
		args += tcs[0].Function.Arguments
		if string(e.Usage) != "null" {
			t.Errorf("content event usage %s, want null", e.Usage)
		}
	}
	if args != `{"a":1}` {
		t.Errorf("fragments join to %q", args)
	}
	fin := parse(events[len(events)-3])
	if len(fin.Choices) != 1 || fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "tool_calls" || len(fin.Choices[0].Delta) != 0 {
		t.Errorf("finish event %s", events[len(events)-3])
	}
	u := parse(events[len(events)-2])
	if len(u.Choices) != 0 || !strings.Contains(string(u.Usage), `"total_tokens"`) {
		t.Errorf("usage event %s", events[len(events)-2])
	}
}

func cosine(a, b []float64) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return dot / math.Sqrt(na*nb)
}

func TestFakeEmbeddings(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	texts := []string{
		"The user's favourite drink is green tea with honey.",
		"The user's favorite drink is green tea with honey!",
		"Quarterly revenue grew in Europe despite supply problems.",
	}
	res, err := client.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
		Model: "fake-embedding",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: texts},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 3 {
		t.Fatalf("%d embeddings, want 3", len(res.Data))
	}
	for i, d := range res.Data {
		if int(d.Index) != i || len(d.Embedding) != fakellm.DefaultDimensions {
			t.Errorf("embedding %d: index %d, %d dims", i, d.Index, len(d.Embedding))
		}
		var n float64
		for _, x := range d.Embedding {
			n += x * x
		}
		if math.Abs(n-1) > 1e-5 {
			t.Errorf("embedding %d: squared norm %v, want 1", i, n)
		}
	}
	near, far := cosine(res.Data[0].Embedding, res.Data[1].Embedding), cosine(res.Data[0].Embedding, res.Data[2].Embedding)
	t.Logf("cosine: near-duplicate %.3f, unrelated %.3f", near, far)
	if near < 0.7 || near <= far+0.3 {
		t.Errorf("cosine near-duplicate %.3f, unrelated %.3f; want near > 0.7 and well above unrelated", near, far)
	}
	if res.Usage.PromptTokens == 0 || res.Usage.TotalTokens != res.Usage.PromptTokens {
		t.Errorf("usage = %+v", res.Usage)
	}

	// dimensions is honoured, base64 decodes to the same vector, and the
	// vectors are deterministic.
	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		r, err := client.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
			Model:          "fake-embedding",
			Input:          openai.EmbeddingNewParamsInputUnion{OfString: openai.String(texts[0])},
			Dimensions:     openai.Int(256),
			EncodingFormat: format,
		})
		if err != nil {
			t.Fatal(err)
		}
		got := r.Data[0].Embedding
		want := fakellm.Embed(texts[0], 256)
		if len(got) != 256 {
			t.Fatalf("%s: %d dims, want 256", format, len(got))
		}
		for i := range want {
			if float32(got[i]) != want[i] {
				t.Fatalf("%s: dim %d = %v, want %v", format, i, got[i], want[i])
			}
		}
	}

	_, err = client.Embeddings.New(ctx(t), openai.EmbeddingNewParams{
		Model:      "fake-embedding",
		Input:      openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")},
		Dimensions: openai.Int(fakellm.MaxDimensions + 1),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "dimensions" {
		t.Errorf("too many dimensions: %v, want a 400 on dimensions", err)
	}
}

func TestFakeModels(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	page, err := client.Models.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" {
			t.Errorf("model %+v", m)
		}
	}
	if !strings.Contains(page.Data[0].RawJSON(), `"context_window":128000`) || strings.Contains(page.Data[1].RawJSON(), "context_window") {
		t.Errorf("context windows: %s %s; want one on the chat model only", page.Data[0].RawJSON(), page.Data[1].RawJSON())
	}
	if strings.Join(ids, ",") != "fake-model,fake-embedding" {
		t.Errorf("models = %v, want fake-model, fake-embedding", ids)
	}

	client, _ = newClient(t, fakellm.Options{ChatModels: []string{"gpt-4o-mini", "gpt-4.1"}, EmbeddingModels: []string{"text-embedding-3-small"}})
	page, err = client.Models.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 3 || page.Data[2].ID != "text-embedding-3-small" {
		t.Errorf("configured models = %+v", page.Data)
	}
	m, err := client.Models.Get(ctx(t), "gpt-4.1")
	if err != nil || m.ID != "gpt-4.1" {
		t.Errorf("get gpt-4.1: %v %v", m, err)
	}
	_, err = client.Models.Get(ctx(t), "nope")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("get unknown model: %v, want 404 model_not_found", err)
	}
}

func TestFakeErrorDirective(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	_, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("@error 429")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *openai.Error", err)
	}
	if apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || apiErr.Message == "" {
		t.Errorf("error = %d %q %q, want 429 rate_limit_exceeded", apiErr.StatusCode, apiErr.Code, apiErr.Message)
	}
	if ra := apiErr.Response.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}

	// Streaming surfaces it too, with a custom message.
	stream := client.Chat.Completions.NewStreaming(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("@error 500 the GPUs melted")},
	})
	for stream.Next() {
	}
	if !errors.As(stream.Err(), &apiErr) || apiErr.StatusCode != 500 || apiErr.Message != "the GPUs melted" || apiErr.Type != "server_error" {
		t.Errorf("stream err = %v, want 500 server_error \"the GPUs melted\"", stream.Err())
	}
}

func TestFakeSleepDirective(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	start := time.Now()
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("slow\n@sleep 150ms")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered after %v, want at least 150ms", d)
	}
	if res.Choices[0].Message.Content != "Echo: slow" {
		t.Errorf("reply = %q, want the default without the directive line", res.Choices[0].Message.Content)
	}

	// A client that gives up is not kept waiting.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = client.Chat.Completions.New(short, openai.ChatCompletionNewParams{
		Model:    "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("@sleep 30s")},
	})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled sleep: err %v after %v", err, time.Since(start))
	}
}

const testScript = `[
  {"match": {"last_user_contains": "weather", "has_tool": "get_weather"},
   "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}]},
   "times": 1},
  {"match": {"last_role": "tool", "last_tool": "get_weather"},
   "reply": {"content": "It is 3°C in Oslo."}},
  {"match": {"last_user_contains": "weather"},
   "reply": {"content": "I already told you."}},
  {"match": {"last_user_contains": "broken"},
   "reply": {"tool_calls": [{"name": "get_weather", "arguments": "{\"city\": "}]}},
  {"match": {"last_user_contains": "flaky"},
   "reply": {"error": {"status": 503, "message": "try again"}}, "times": 1}
]`

func TestFakeScript(t *testing.T) {
	script, err := fakellm.ParseScript([]byte(testScript))
	if err != nil {
		t.Fatal(err)
	}
	srv := fakellm.New(fakellm.Options{Script: script})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	tools := []openai.ChatCompletionToolUnionParam{tool("get_weather"), tool("send_message")}

	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what's the weather?")}
	call := func(msgs []openai.ChatCompletionMessageParamUnion) openai.ChatCompletionMessage {
		t.Helper()
		res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model", Messages: msgs, Tools: tools})
		if err != nil {
			t.Fatal(err)
		}
		return res.Choices[0].Message
	}

	m := call(msgs)
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].Function.Arguments != `{"city":"Oslo","unit":"C"}` {
		t.Fatalf("rule 1: %s", m.RawJSON())
	}
	msgs = append(msgs, m.ToParam(), openai.ToolMessage("3", m.ToolCalls[0].ID))
	if m := call(msgs); m.Content != "It is 3°C in Oslo." || len(m.ToolCalls) != 0 {
		t.Fatalf("rule 2: %s", m.RawJSON())
	}
	// Rule 1 is used up: the same question now falls to rule 3.
	if m := call(msgs[:1]); m.Content != "I already told you." {
		t.Fatalf("after times: %s", m.RawJSON())
	}
	// Raw argument text is sent as is, malformed on purpose.
	if m := call([]openai.ChatCompletionMessageParamUnion{openai.UserMessage("broken")}); m.ToolCalls[0].Function.Arguments != `{"city": ` {
		t.Fatalf("raw arguments: %s", m.RawJSON())
	}
	// No rule: the default behaviour.
	if m := call([]openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}); m.ToolCalls[0].Function.Arguments != `{"message":"Echo: hi"}` {
		t.Fatalf("default: %s", m.RawJSON())
	}
	// Directives win over the script.
	if m := call([]openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather\n@reply directive")}); m.Content != "directive" {
		t.Fatalf("directive over script: %s", m.RawJSON())
	}
	if got, want := srv.Uses(), []int{1, 1, 1, 1, 0}; !equal(got, want) {
		t.Errorf("uses = %v, want %v", got, want)
	}

	// An error rule with times 1: the SDK's retry gets through.
	retrying := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("k"), option.WithMaxRetries(2))
	res, err := retrying.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
		Model: "fake-model", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("flaky")},
	})
	if err != nil {
		t.Fatalf("retry after a one-time 503: %v", err)
	}
	if res.Choices[0].Message.Content != "Echo: flaky" {
		t.Errorf("after retry: %q", res.Choices[0].Message.Content)
	}
	if u := srv.Uses(); u[4] != 1 {
		t.Errorf("error rule uses = %d, want 1", u[4])
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFakeParseScriptErrors(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{`{"rules": 3}`, "rules"},
		{`"x"`, "JSON array"},
		{`[{"match": {"last_user": "x"}, "reply": {"content": "y"}}]`, `rule 1: json: unknown field "last_user"`},
		{`[{"reply": {"content": "y"}}, {"match": {"last_role": "robot"}, "reply": {"content": "y"}}]`, `rule 2: match.last_role "robot"`},
		{`[{"reply": {}}]`, "reply is empty"},
		{`[{"reply": {"tool_calls": [{"name": "bad name"}]}}]`, "name"},
		{`[{"reply": {"tool_calls": [{"name": "t", "arguments": [1]}]}}]`, "arguments"},
		{`[{"reply": {"error": {"status": 200}}}]`, "400..599"},
		{`[{"reply": {"content": "x", "error": {"status": 500}}}]`, "cannot be combined"},
		{`[{"reply": {"sleep": "soon"}}]`, "sleep"},
		{`[{"reply": {"content": "x"}, "times": -1}]`, "times"},
	} {
		_, err := fakellm.ParseScript([]byte(tc.script))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScript(%s) = %v, want an error containing %q", tc.script, err, tc.want)
		}
	}
	s, err := fakellm.ParseScript([]byte(`{"rules": [{"reply": {"content": ""}}]}`))
	if err != nil || len(s.Rules) != 1 {
		t.Errorf("object form: %v %v", s, err)
	}
}

// TestFakeBadRequests checks validation and OpenAI's error shape over raw
// HTTP.
func TestFakeBadRequests(t *testing.T) {
	srv := httptest.NewServer(fakellm.New(fakellm.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string // in the message
	}{
		{"bad JSON", "POST", "/v1/chat/completions", `{"model":`, 400, "could not parse the JSON body"},
		{"no model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"no messages", "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400, "empty array"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, 400, "'robot'"},
		{"orphan tool result", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, 400, "must be a response"},
		{"unanswered call", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"y"}]}`, 400, "c1"},
		{"bad tool name", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a b"}}]}`, 400, "pattern"},
		{"stream_options without stream", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}`, 400, "stream_options"},
		{"bad directive", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"@tool f {not json"}]}`, 400, "line 1"},
		{"bad error directive", "POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"@error 200"}]}`, 400, "400..599"},
		{"empty embedding", "POST", "/v1/embeddings", `{"model":"e","input":""}`, 400, "input"},
		{"wrong method", "GET", "/v1/embeddings", ``, 405, "POST"},
		{"unknown path", "POST", "/v1/completions", `{}`, 404, "Invalid URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var e struct {
				Error *struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
				t.Fatalf("body %s: not OpenAI's error shape (%v)", b, err)
			}
			if res.StatusCode != tc.status || e.Error.Type == "" || !strings.Contains(e.Error.Message, tc.want) {
				t.Errorf("%d %s; want %d with a message containing %q", res.StatusCode, b, tc.status, tc.want)
			}
			if res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type = %q", res.Header.Get("Content-Type"))
			}
		})
	}
}

func TestFakeToolChoiceAndLettaPacking(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	ask := func(choice openai.ChatCompletionToolChoiceOptionUnionParam, text string) openai.ChatCompletionMessage {
		t.Helper()
		res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
			Model: "fake-model", Tools: lettaTools(), ToolChoice: choice,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Choices[0].Message
	}
	if m := ask(openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}, "hi"); m.Content != "Echo: hi" || len(m.ToolCalls) != 0 {
		t.Errorf("tool_choice none: %s", m.RawJSON())
	}
	named := openai.ChatCompletionToolChoiceOptionUnionParam{OfFunctionToolChoice: &openai.ChatCompletionNamedToolChoiceParam{
		Function: openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "archival_memory_search"},
	}}
	if m := ask(named, "hi"); len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "archival_memory_search" || m.ToolCalls[0].Function.Arguments != "{}" {
		t.Errorf("named tool_choice: %s", m.RawJSON())
	}
	packed := `{"type": "user_message", "message": "packed\n@reply unpacked", "time": "2025-01-01 00:00:00 AM UTC+0000"}`
	if m := ask(openai.ChatCompletionToolChoiceOptionUnionParam{}, packed); m.Content != "unpacked" {
		t.Errorf("Letta-packed message: %s", m.RawJSON())
	}
}

// letta-code sends each prompt as content parts, most of them
// <system-reminder> blocks; the fake model answers only the user's part.
func TestFakeIgnoresSystemReminders(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	ask := func(parts ...string) string {
		t.Helper()
		var content []openai.ChatCompletionContentPartUnionParam
		for _, p := range parts {
			content = append(content, openai.TextContentPart(p))
		}
		res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{
			Model:    "fake-model",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(content)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Choices[0].Message.Content
	}
	reminder := "<system-reminder>\nDevice: Linux\n@reply not a directive\n</system-reminder>"
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{[]string{reminder, "<system-reminder>Permission mode: unrestricted.</system-reminder>\n\n", "hi"}, "Echo: hi"},
		{[]string{reminder + "\n@reply from the user"}, "from the user"},
		{[]string{"before " + reminder + " after"}, "Echo: before  after"},
		{[]string{"an unclosed <system-reminder> stays"}, "Echo: an unclosed <system-reminder> stays"},
	} {
		if got := ask(tc.parts...); got != tc.want {
			t.Errorf("parts %q: reply %q, want %q", tc.parts, got, tc.want)
		}
	}
}

func TestFakeContextWindow(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{ContextWindow: 100})
	// 200 bytes of text: 50 tokens and framing, within the window; the
	// usage reports the same count the limit is checked against.
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("abcd", 50))}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.PromptTokens != 54 {
		t.Errorf("prompt tokens = %d, want (200+16)/4 = 54", res.Usage.PromptTokens)
	}
	_, err = client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(strings.Repeat("abcd", 100))}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" {
		t.Fatalf("over the window: %v, want a 400 with code context_length_exceeded", err)
	}
	if !strings.Contains(apiErr.Message, "maximum context length is 100 tokens") {
		t.Errorf("message = %q", apiErr.Message)
	}
}

func TestFakeSummary(t *testing.T) {
	client, _ := newClient(t, fakellm.Options{})
	res, err := client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Summarize this conversation."),
			openai.UserMessage("[user] my name is Ada\n[assistant] hello Ada")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Choices[0].Message.Content; got != "Summary (2 lines): [user] my name is Ada [assistant] hello Ada" {
		t.Fatalf("summary = %q", got)
	}
	// With tools offered it is an ordinary turn.
	res, err = client.Chat.Completions.New(ctx(t), openai.ChatCompletionNewParams{Model: "fake-model", Tools: lettaTools(),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Summarize."), openai.UserMessage("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("with tools: %+v", res.Choices[0].Message)
	}
}
