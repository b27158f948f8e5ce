package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// loggedServer is server with the handler's and the actor system's logs,
// at debug level, kept in log.
func loggedServer(t *testing.T, log *lockedBuffer) *httptest.Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: logger})
	svc, err := service.New(r, store, sys, llmtest.Echo())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, api.WithLogger(logger)))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return srv
}

// settingsJSON is the part of an AgentState the settings show in.
type settingsJSON struct {
	ID        string `json:"id"`
	LLMConfig struct {
		ContextWindow     int   `json:"context_window"`
		ParallelToolCalls *bool `json:"parallel_tool_calls"`
	} `json:"llm_config"`
	ModelSettings *struct {
		ProviderType      string `json:"provider_type"`
		ParallelToolCalls bool   `json:"parallel_tool_calls"`
	} `json:"model_settings"`
	CompactionSettings map[string]any `json:"compaction_settings"`
	Secrets            []secretJSON   `json:"secrets"`
	ToolExecEnvVars    []secretJSON   `json:"tool_exec_environment_variables"`
}

type secretJSON struct {
	ID          string  `json:"id"`
	Key         string  `json:"key"`
	Value       string  `json:"value"`
	Description *string `json:"description"`
	AgentID     string  `json:"agent_id"`
}

const secretValue = "s3cr3t-value-0451"

// The settings letta-code sends at create and update are stored and
// reported where AgentState has them; secrets only when asked for by
// name, and never in a log.
func TestAgentSettings(t *testing.T) {
	log := &lockedBuffer{}
	srv := loggedServer(t, log)
	get := func(path string) settingsJSON {
		t.Helper()
		body := ok(t, srv, "GET", path, nil)
		conform(t, body, "AgentState", false)
		return decodeAs[settingsJSON](t, body)
	}
	// letta-code's create request.
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{
		"name": "coder", "agent_type": "letta_v1_agent", "model": "openai/gpt-4o-mini", "system": "You code.",
		"tools": []string{"web_search", "fetch_webpage"}, "include_base_tools": false, "include_base_tool_rules": false,
		"initial_message_sequence": []any{}, "parallel_tool_calls": true,
		"compaction_settings": map[string]any{"model": "openai/gpt-4o-mini"}, "context_window_limit": 64000,
		"secrets": map[string]string{"API_TOKEN": secretValue},
	})
	conform(t, body, "AgentState", false)
	if strings.Contains(string(body), secretValue) {
		t.Fatalf("the create response shows the secret: %s", body)
	}
	a := decodeAs[settingsJSON](t, body)
	if a.LLMConfig.ContextWindow != 64000 || a.LLMConfig.ParallelToolCalls == nil || !*a.LLMConfig.ParallelToolCalls ||
		a.ModelSettings == nil || !a.ModelSettings.ParallelToolCalls || a.ModelSettings.ProviderType != "openai" ||
		a.CompactionSettings["model"] != "openai/gpt-4o-mini" || len(a.CompactionSettings) != 1 || len(a.Secrets) != 0 {
		t.Fatalf("created %s", body)
	}
	path := "/v1/agents/" + a.ID

	// Secrets show only when asked for by name.
	for _, q := range []string{"", "?include=agent.tools", "?include_relationships=tools"} {
		if out := ok(t, srv, "GET", path+q, nil); strings.Contains(string(out), secretValue) {
			t.Fatalf("GET %s%s shows the secret: %s", path, q, out)
		}
	}
	for _, q := range []string{"?include=agent.secrets", "?include_relationships=tool_exec_environment_variables"} {
		got := get(path + q)
		want := secretJSON{Key: "API_TOKEN", Value: secretValue, AgentID: a.ID}
		if len(got.Secrets) != 1 || len(got.ToolExecEnvVars) != 1 || !strings.HasPrefix(got.Secrets[0].ID, "agent-env-") ||
			got.Secrets[0].Key != want.Key || got.Secrets[0].Value != want.Value || got.Secrets[0].AgentID != want.AgentID ||
			got.ToolExecEnvVars[0] != got.Secrets[0] {
			t.Fatalf("GET %s%s: secrets %+v, tool_exec_environment_variables %+v", path, q, got.Secrets, got.ToolExecEnvVars)
		}
	}
	list := ok(t, srv, "GET", "/v1/agents?include=agent.secrets", nil)
	conform(t, list, "AgentState", true)
	if !strings.Contains(string(list), secretValue) {
		t.Fatalf("list with include=agent.secrets lacks the secret: %s", list)
	}

	// Updates replace each setting given.
	body = ok(t, srv, "PATCH", path, map[string]any{"context_window_limit": 32000, "parallel_tool_calls": false,
		"compaction_settings":             map[string]any{"mode": "all", "clip_chars": 1000, "prompt": nil, "sliding_window_percentage": 0.3},
		"tool_exec_environment_variables": map[string]string{"B_KEY": "b"}})
	conform(t, body, "AgentState", false)
	got := get(path + "?include=agent.secrets")
	if got.LLMConfig.ContextWindow != 32000 || *got.LLMConfig.ParallelToolCalls || got.ModelSettings.ParallelToolCalls ||
		got.CompactionSettings["mode"] != "all" || got.CompactionSettings["clip_chars"] != 1000.0 || len(got.CompactionSettings) != 4 ||
		len(got.Secrets) != 1 || got.Secrets[0].Key != "B_KEY" {
		t.Fatalf("after the update: %+v", got)
	}
	cw := ok(t, srv, "GET", path+"/context", nil)
	conform(t, cw, "ContextWindowOverview", false)
	if !strings.Contains(string(cw), `"context_window_size_max":32000`) {
		t.Fatalf("context window overview: %s", cw)
	}
	ok(t, srv, "PATCH", path, map[string]any{"model_settings": map[string]any{"provider_type": "openai", "parallel_tool_calls": true},
		"secrets": []map[string]any{{"key": "C_KEY", "value": "c", "description": "for tools"}}})
	got = get(path + "?include=agent.secrets")
	if !got.ModelSettings.ParallelToolCalls || len(got.Secrets) != 1 || got.Secrets[0].Key != "C_KEY" ||
		got.Secrets[0].Description == nil || *got.Secrets[0].Description != "for tools" {
		t.Fatalf("after the model_settings and secrets update: %+v", got)
	}
	ok(t, srv, "PATCH", path, map[string]any{"secrets": map[string]string{}, "compaction_settings": map[string]any{}})
	if got := get(path + "?include=agent.secrets"); len(got.Secrets) != 0 || got.CompactionSettings != nil {
		t.Fatalf("after clearing: %+v", got)
	}

	bigValue := strings.Repeat(secretValue, 2000)
	many := map[string]string{}
	for i := range 65 {
		many[fmt.Sprintf("K%d", i)] = "v"
	}
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"compaction_settings": map[string]any{"bogus": 1}}, `unknown field "bogus"`},
		{map[string]any{"compaction_settings": map[string]any{"mode": "everything"}}, "compaction_settings.mode"},
		{map[string]any{"compaction_settings": map[string]any{"clip_chars": 1.5}}, "compaction_settings.clip_chars must be an integer"},
		{map[string]any{"compaction_settings": map[string]any{"model_settings": "fast"}}, "compaction_settings.model_settings"},
		{map[string]any{"compaction_settings": map[string]any{"prompt_acknowledgement": nil}}, "compaction_settings.prompt_acknowledgement must be a boolean"},
		{map[string]any{"context_window_limit": 0}, "context_window_limit"},
		{map[string]any{"context_window_limit": -5}, "context_window_limit"},
		{map[string]any{"context_window_limit": 1 << 30}, "context_window_limit"},
		{map[string]any{"secrets": map[string]string{"1BAD": secretValue}}, "environment variable name"},
		{map[string]any{"secrets": map[string]string{"GOOD": bigValue}}, `secret "GOOD"`},
		{map[string]any{"secrets": many}, "65 secrets"},
		{map[string]any{"secrets": 5}, "secrets must be an object"},
		{map[string]any{"secrets": []map[string]any{{"key": "A", "value": "1"}, {"key": "A", "value": "2"}}}, "given twice"},
	} {
		for _, method := range []string{"POST", "PATCH"} {
			target := "/v1/agents"
			if method == "PATCH" {
				target = path
			}
			status, out := call(t, srv, method, target, tc.body)
			detail, err := errorDetail(out)
			if status != http.StatusUnprocessableEntity || err != nil || !strings.Contains(detail, tc.want) {
				t.Errorf("%s %s %v = %d %s; want 422 with %q", method, target, tc.body, status, out, tc.want)
			}
			if strings.Contains(string(out), secretValue) {
				t.Errorf("%s %s: the error shows a secret value: %s", method, target, out)
			}
		}
	}
	// The failed updates changed nothing.
	if got := get(path + "?include=agent.secrets"); len(got.Secrets) != 0 || got.LLMConfig.ContextWindow != 32000 {
		t.Fatalf("a rejected update changed the agent: %+v", got)
	}
	if strings.Contains(log.take(), secretValue) {
		t.Fatal("a secret value was logged")
	}
}

// An agent created with an initial message sequence has those messages in
// its default conversation, logged with the agent.
func TestInitialMessageSequence(t *testing.T) {
	srv := server(t, llmtest.Echo())
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "primed", "initial_message_sequence": []map[string]any{
		{"role": "system", "content": "The user prefers metric units."},
		{"role": "user", "content": "Hello there", "otid": "otid-1"},
		{"role": "assistant", "content": []map[string]any{{"type": "text", "text": "Hi! How can I help?"}}},
	}})
	conform(t, body, "AgentState", false)
	id := decodeAs[agentJSON](t, body).ID
	out := ok(t, srv, "GET", "/v1/agents/"+id+"/messages?order=asc", nil)
	conform(t, out, "LettaMessageUnion", true)
	msgs := decodeAs[[]sentMessage](t, out)
	want := []struct{ typ, content string }{
		{"system_message", "The user prefers metric units."}, {"user_message", "Hello there"}, {"assistant_message", "Hi! How can I help?"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("messages = %s", out)
	}
	for i, w := range want {
		if msgs[i].MessageType != w.typ || msgs[i].Content == nil || *msgs[i].Content != w.content {
			t.Fatalf("message %d = %+v, want %s %q", i, msgs[i], w.typ, w.content)
		}
	}
	// They are indexed like any logged message, and the agent's next turn
	// sees them.
	ok(t, srv, "GET", "/v1/messages/"+msgs[1].ID, nil)
	sendTurn(t, srv, "/v1/agents/"+id+"/messages", "and now?")
	if out := ok(t, srv, "GET", "/v1/agents/"+id+"/messages?order=asc", nil); strings.Count(string(out), `"message_type"`) < 5 {
		t.Fatalf("after a turn: %s", out)
	}

	before := ok(t, srv, "GET", "/v1/agents", nil)
	for _, tc := range []struct {
		seq  []map[string]any
		want string
	}{
		{[]map[string]any{{"role": "tool", "content": "x"}}, `role "tool"`},
		{[]map[string]any{{"role": "user", "content": []map[string]any{{"type": "image", "url": "x"}}}}, "only text"},
		{[]map[string]any{{"role": "user", "content": "x", "type": "approval"}}, "'message'"},
	} {
		fails(t, srv, "POST", "/v1/agents", map[string]any{"name": "rejected", "initial_message_sequence": tc.seq}, http.StatusUnprocessableEntity, tc.want)
	}
	long := make([]map[string]any, 65)
	for i := range long {
		long[i] = map[string]any{"role": "user", "content": "m"}
	}
	fails(t, srv, "POST", "/v1/agents", map[string]any{"initial_message_sequence": long}, http.StatusUnprocessableEntity, "65 initial messages")
	if after := ok(t, srv, "GET", "/v1/agents", nil); len(decodeAs[[]json.RawMessage](t, after)) != len(decodeAs[[]json.RawMessage](t, before)) {
		t.Fatal("a rejected create left an agent")
	}
}
