package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/llm/openai"
)

func TestRecompileAgent(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "recompiled")
	compiled := func(path string) string {
		t.Helper()
		var s string
		if err := json.Unmarshal(ok(t, srv, "POST", path, nil), &s); err != nil {
			t.Fatalf("POST %s: not a JSON string: %v", path, err)
		}
		return s
	}
	first := compiled("/v1/agents/" + a.ID + "/recompile")
	if !strings.Contains(first, "Name: unknown") || !strings.Contains(first, "<memory_blocks>") {
		t.Fatalf("compiled prompt lacks the memory blocks: %q", first)
	}
	if conv := compiled("/v1/conversations/default/recompile?agent_id=" + a.ID); conv != first {
		t.Fatalf("the agent's prompt %q differs from its default conversation's %q", first, conv)
	}
	// The prompt follows the blocks; the deprecated alias and the query
	// flags answer the same.
	ok(t, srv, "PATCH", "/v1/agents/"+a.ID+"/core-memory/blocks/human", map[string]any{"value": "Name: Ada"})
	for _, path := range []string{"/recompile", "/recompile/?dry_run=true", "/system-prompt/recompile?update_timestamp=true&dry_run=false"} {
		if got := compiled("/v1/agents/" + a.ID + path); !strings.Contains(got, "Name: Ada") || strings.Contains(got, "Name: unknown") {
			t.Fatalf("POST %s after the block edit: %q", path, got)
		}
	}
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/recompile?dry_run=maybe", nil, http.StatusUnprocessableEntity, "dry_run")
	fails(t, srv, "POST", "/v1/agents/agent-1/recompile", nil, http.StatusUnprocessableEntity, "agent_id")
	fails(t, srv, "POST", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/system-prompt/recompile", nil, http.StatusNotFound, "agent-00000000-0000-4000-8000-000000000000")
}

// recordingModel answers with text and records the requests it got.
type recordingModel struct {
	mu    sync.Mutex
	reqs  []llm.Request
	reply func(req llm.Request) (*llm.Response, error)
}

func (m *recordingModel) Complete(_ context.Context, req llm.Request) (*llm.Response, error) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	m.mu.Unlock()
	return m.reply(req)
}

func (m *recordingModel) last(t *testing.T) llm.Request {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reqs) == 0 {
		t.Fatal("the model was not called")
	}
	return m.reqs[len(m.reqs)-1]
}

type generateJSON struct {
	Content string `json:"content"`
	Model   string `json:"model"`
	Usage   struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestGenerate(t *testing.T) {
	model := &recordingModel{reply: func(req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Content == "fail" {
			return nil, &llm.APIError{Provider: "openai", Status: http.StatusTooManyRequests, Message: "slow down"}
		}
		return llmtest.Text("a haiku about " + req.Model), nil
	}}
	srv := server(t, model)
	a := createAgent(t, srv, "poet")
	generate := func(body map[string]any) generateJSON {
		t.Helper()
		out := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/generate", body)
		conform(t, out, "GenerateResponse", false)
		return decodeAs[generateJSON](t, out)
	}

	got := generate(map[string]any{"prompt": "write a haiku"})
	req := model.last(t)
	if got.Content != "a haiku about openai/gpt-4o-mini" || got.Model != "openai/gpt-4o-mini" || got.Usage.TotalTokens != 15 ||
		req.Model != "openai/gpt-4o-mini" || len(req.Messages) != 1 || req.Messages[0].Role != "user" ||
		req.Messages[0].Content != "write a haiku" || len(req.Tools) != 0 {
		t.Fatalf("generate = %+v; the model got %+v", got, req)
	}
	got = generate(map[string]any{"prompt": "again", "system_prompt": "be brief", "override_model": "anthropic/claude-test"})
	req = model.last(t)
	if got.Model != "anthropic/claude-test" || req.Model != "anthropic/claude-test" || len(req.Messages) != 2 ||
		req.Messages[0].Role != "system" || req.Messages[0].Content != "be brief" {
		t.Fatalf("with system prompt and override: %+v; the model got %+v", got, req)
	}
	// Nothing is logged: no message, no run.
	if out := ok(t, srv, "GET", "/v1/agents/"+a.ID+"/messages", nil); strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("generate logged messages: %s", out)
	}
	if out := ok(t, srv, "GET", "/v1/runs?agent_id="+a.ID, nil); strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("generate started a run: %s", out)
	}

	// A schema asks for a forced tool call; text instead is a 502.
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/generate", map[string]any{"prompt": "as json", "response_schema": map[string]any{"type": "object"}},
		http.StatusBadGateway, "did not return structured output")
	if req := model.last(t); req.ToolChoice != "structured_output" || len(req.Tools) != 1 || string(req.Tools[0].Parameters) != `{"type":"object"}` {
		t.Fatalf("with a response schema the model got %+v", req)
	}

	for _, tc := range []struct {
		body   map[string]any
		status int
		want   string
	}{
		{map[string]any{}, 422, "Field required"},
		{map[string]any{"prompt": "  "}, 422, "prompt is empty"},
		{map[string]any{"prompt": "x", "response_schema": "object"}, 422, "response_schema"},
		{map[string]any{"prompt": "x", "response_schema": []int{1}}, 422, "response_schema"},
		{map[string]any{"prompt": "fail"}, 429, "slow down"},
	} {
		fails(t, srv, "POST", "/v1/agents/"+a.ID+"/generate", tc.body, tc.status, tc.want)
	}
	fails(t, srv, "POST", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/generate", map[string]any{"prompt": "x"}, 404, "agent-00000000-0000-4000-8000-000000000000")

	unconfigured := server(t, llm.Unconfigured{})
	b := createAgent(t, unconfigured, "mute")
	fails(t, unconfigured, "POST", "/v1/agents/"+b.ID+"/generate", map[string]any{"prompt": "x"}, 400, "no model provider is configured")
}

// With a response schema over a real OpenAI-compatible client (against the
// fake LLM server), the model is forced to call the structured-output
// tool and its arguments are the answer.
func TestGenerateStructured(t *testing.T) {
	fake := httptest.NewServer(fakellm.New(fakellm.Options{}))
	t.Cleanup(fake.Close)
	client, err := openai.New(openai.Config{BaseURL: fake.URL + "/v1", BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, llm.NewRouter(llm.Provider{Name: "openai", Type: llm.ProviderTypeOpenAI, Client: client, DefaultModel: fakellm.DefaultChatModel}))
	a := createAgent(t, srv, "structured")
	out := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/generate", map[string]any{"prompt": "give me JSON",
		"override_model":  "openai/" + fakellm.DefaultChatModel,
		"response_schema": map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}}})
	conform(t, out, "GenerateResponse", false)
	got := decodeAs[generateJSON](t, out)
	var args map[string]any
	if err := json.Unmarshal([]byte(got.Content), &args); err != nil || got.Model != "openai/"+fakellm.DefaultChatModel {
		t.Fatalf("structured answer %+v: content is not a JSON object (%v)", got, err)
	}
	// Without a schema the same model answers in text.
	out = ok(t, srv, "POST", "/v1/agents/"+a.ID+"/generate", map[string]any{"prompt": "hello", "override_model": "openai/" + fakellm.DefaultChatModel})
	if got := decodeAs[generateJSON](t, out); !strings.Contains(got.Content, "hello") {
		t.Fatalf("text answer %+v", got)
	}
}
