package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// TestCreateAgentModelChecked: a model handle no configured provider
// serves is refused at create and at update (400 naming it), as an
// embedding handle is, and llm_config's numbers out of range answer 422
// naming the field; nothing is created. The handles the SDK suites send
// (openai/fake-model) and the default stay valid.
func TestCreateAgentModelChecked(t *testing.T) {
	router := llm.NewRouter(llm.Provider{Name: "openai", Type: llm.ProviderTypeOpenAI, Client: streamer{llmtest.Echo()}, DefaultModel: "fake-model"})
	srv := server(t, router)
	for _, model := range []string{"nope/nope", "/"} {
		fails(t, srv, "POST", "/v1/agents/", map[string]any{"model": model}, http.StatusBadRequest, model)
		fails(t, srv, "POST", "/v1/agents/", map[string]any{"llm_config": map[string]any{"handle": model}}, http.StatusBadRequest, model)
	}
	for _, c := range []struct {
		config map[string]any
		field  string
	}{
		{map[string]any{"temperature": -100}, "temperature"},
		{map[string]any{"temperature": 2.5}, "temperature"},
		{map[string]any{"context_window": -1}, "context_window"},
		{map[string]any{"max_tokens": 0}, "max_tokens"},
		{map[string]any{"top_logprobs": 21}, "top_logprobs"},
	} {
		c.config["handle"] = "openai/fake-model"
		fails(t, srv, "POST", "/v1/agents/", map[string]any{"llm_config": c.config}, http.StatusUnprocessableEntity, c.field)
	}
	if got := decodeAs[[]agentJSON](t, ok(t, srv, "GET", "/v1/agents/", nil)); len(got) != 0 {
		t.Fatalf("refused creates left %d agents", len(got))
	}
	a := decodeAs[agentJSON](t, ok(t, srv, "POST", "/v1/agents/", map[string]any{"model": "openai/fake-model",
		"llm_config": map[string]any{"handle": "openai/fake-model", "temperature": 0.7, "context_window": 32000, "max_tokens": 4096}}))
	ok(t, srv, "POST", "/v1/agents/", map[string]any{"name": "default model"})
	fails(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"model": "nope/nope"}, http.StatusBadRequest, "nope/nope")
	fails(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"llm_config": map[string]any{"temperature": -1}}, http.StatusUnprocessableEntity, "temperature")
	ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"model": "openai/other-model"})
}

// streamer makes a scripted model a Streamer that answers in one delta.
type streamer struct{ *llmtest.Script }

func (s streamer) CompleteStream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	return s.Complete(ctx, req)
}
