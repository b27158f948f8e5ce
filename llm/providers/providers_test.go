package providers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// An OpenAI-compatible server configured by its base URL alone (as for
// Ollama) lists its models, and requests for them reach it.
func TestFromEnvBaseURLOnly(t *testing.T) {
	var listed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/models":
			listed.Add(1)
			if r.Header.Get("Authorization") != "" {
				t.Errorf("Authorization sent without a key: %q", r.Header.Get("Authorization"))
			}
			io.WriteString(w, `{"object":"list","data":[{"id":"llama3.2","object":"model","created":1,"owned_by":"library"},{"id":"qwen2.5:7b","object":"model","created":1,"owned_by":"library"}]}`)
		case "/v1/chat/completions":
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"qwen2.5:7b","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	r, err := FromEnv(env(map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1", "OPENAI_MODELS": "extra-model"}))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Configured() || !reflect.DeepEqual(r.Providers(), []string{"openai"}) {
		t.Fatalf("providers = %v", r.Providers())
	}
	want := []llm.ModelInfo{
		{Handle: "openai/extra-model", Provider: "openai", Model: "extra-model", ProviderType: "openai"},
		{Handle: "openai/llama3.2", Provider: "openai", Model: "llama3.2", ProviderType: "openai"},
		{Handle: "openai/qwen2.5:7b", Provider: "openai", Model: "qwen2.5:7b", ProviderType: "openai"},
	}
	if got := r.Models(); !reflect.DeepEqual(got, want) {
		t.Errorf("Models() =\n%+v\nwant\n%+v", got, want)
	}
	r.Models()
	if n := listed.Load(); n != 1 {
		t.Errorf("GET /models %d times, want 1 (cached)", n)
	}
	res, err := r.Complete(context.Background(), llm.Request{Model: "openai/qwen2.5:7b", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	if err != nil || res.Message.Content != "hi" {
		t.Fatalf("Complete: %v, %+v", err, res)
	}
}

// An unreachable server neither slows startup nor hides the configured
// model names.
func TestFromEnvUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	start := time.Now()
	r, err := FromEnv(env(map[string]string{"OPENAI_BASE_URL": url + "/v1", "OPENAI_MODELS": "a,b", "ANTHROPIC_API_KEY": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	models := r.Models()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	if len(models) < 3 || models[0].Handle != "openai/a" || models[1].Handle != "openai/b" || models[2].Provider != "anthropic" {
		t.Errorf("models = %+v", models)
	}
	if p, m, err := r.Resolve(context.Background(), "anthropic/"); p != "anthropic" || m == "" || err != nil {
		t.Errorf("anthropic default: %q %q %v", p, m, err)
	}
	// Each provider is described with its base URL, never its key.
	want := []llm.ProviderInfo{
		{Name: "openai", Type: llm.ProviderTypeOpenAI, BaseURL: url + "/v1"},
		{Name: "anthropic", Type: llm.ProviderTypeAnthropic, BaseURL: llm.DefaultAnthropicBaseURL},
	}
	if got := r.ProviderInfos(); !reflect.DeepEqual(got, want) {
		t.Errorf("ProviderInfos() = %+v, want %+v", got, want)
	}
}

func TestFromEnvNothing(t *testing.T) {
	r, err := FromEnv(env(nil))
	if err != nil || r.Configured() {
		t.Fatalf("%v, %v", r, err)
	}
}
