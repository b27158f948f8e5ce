package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/openai"
)

// embeddingServer starts the API with an "openai" provider served by the
// fake LLM (chat and embeddings); while failing is set, the fake's
// embeddings endpoint answers 503.
func embeddingServer(t *testing.T, failing *atomic.Bool) *httptest.Server {
	t.Helper()
	fake := fakellm.New(fakellm.Options{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && strings.HasSuffix(r.URL.Path, "/embeddings") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"message":"embedding backend overloaded","type":"server_error"}}`)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(upstream.Close)
	client, err := openai.New(openai.Config{BaseURL: upstream.URL + "/v1", BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return server(t, llm.NewRouter(llm.Provider{Name: "openai", Type: llm.ProviderTypeOpenAI, Client: client, DefaultModel: fakellm.DefaultChatModel}))
}

type embeddingAgentJSON struct {
	ID              string  `json:"id"`
	Embedding       *string `json:"embedding"`
	EmbeddingConfig *struct {
		Handle                string `json:"handle"`
		EmbeddingModel        string `json:"embedding_model"`
		EmbeddingEndpointType string `json:"embedding_endpoint_type"`
		EmbeddingDim          int    `json:"embedding_dim"`
	} `json:"embedding_config"`
}

type embeddedPassageJSON struct {
	ID              string    `json:"id"`
	Embedding       []float32 `json:"embedding"`
	EmbeddingConfig *struct {
		Handle       string `json:"handle"`
		EmbeddingDim int    `json:"embedding_dim"`
	} `json:"embedding_config"`
}

const fakeEmbedding = "openai/" + fakellm.DefaultEmbeddingModel

func TestArchivalEmbeddingsAPI(t *testing.T) {
	var failing atomic.Bool
	srv := embeddingServer(t, &failing)
	out := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "semantic", "model": "openai/fake-model", "embedding": fakeEmbedding})
	conform(t, out, "AgentState", false)
	ag := decodeAs[embeddingAgentJSON](t, out)
	if ag.Embedding == nil || *ag.Embedding != fakeEmbedding || ag.EmbeddingConfig == nil ||
		ag.EmbeddingConfig.Handle != fakeEmbedding || ag.EmbeddingConfig.EmbeddingModel != fakellm.DefaultEmbeddingModel ||
		ag.EmbeddingConfig.EmbeddingEndpointType != "openai" {
		t.Fatalf("agent = %s", out)
	}

	texts := []string{
		"Ada's cat Pixel sleeps on the sofa",
		"The quarterly report is due on Friday",
		"Ada drinks green tea every morning",
	}
	var ids []string
	for _, text := range texts {
		body := ok(t, srv, "POST", "/v1/agents/"+ag.ID+"/archival-memory", map[string]any{"text": text})
		conform(t, body, "Passage", true)
		ps := decodeAs[[]embeddedPassageJSON](t, body)
		if len(ps) != 1 || len(ps[0].Embedding) != fakellm.DefaultDimensions || ps[0].EmbeddingConfig == nil ||
			ps[0].EmbeddingConfig.Handle != fakeEmbedding || ps[0].EmbeddingConfig.EmbeddingDim != fakellm.DefaultDimensions {
			t.Fatalf("inserted passage = %s", body)
		}
		ids = append(ids, ps[0].ID)
	}
	list := ok(t, srv, "GET", "/v1/agents/"+ag.ID+"/archival-memory", nil)
	conform(t, list, "Passage", true)

	res, ranking := searchArchival(t, srv, ag.ID, url.Values{"query": {"which sofa does the cat sleep on"}})
	if ranking != "embedding-cosine" || len(res.Results) == 0 || res.Results[0].ID != ids[0] {
		t.Fatalf("search (ranking %s) = %+v", ranking, res)
	}

	// The agent now reports the dimension its model returned.
	out = ok(t, srv, "GET", "/v1/agents/"+ag.ID, nil)
	conform(t, out, "AgentState", false)
	if got := decodeAs[embeddingAgentJSON](t, out); got.EmbeddingConfig == nil || got.EmbeddingConfig.EmbeddingDim != fakellm.DefaultDimensions {
		t.Fatalf("agent after inserts = %s", out)
	}

	// A failing embeddings endpoint fails the insert and the search with
	// the provider's error (502 after the retries) and stores nothing.
	failing.Store(true)
	fails(t, srv, "POST", "/v1/agents/"+ag.ID+"/archival-memory", map[string]any{"text": "lost"}, http.StatusBadGateway, "embedding backend overloaded")
	fails(t, srv, "GET", "/v1/agents/"+ag.ID+"/archival-memory/search?query=cat", nil, http.StatusBadGateway, "llm_api_error")
	failing.Store(false)
	list = ok(t, srv, "GET", "/v1/agents/"+ag.ID+"/archival-memory", nil)
	if n := len(decodeAs[[]embeddedPassageJSON](t, list)); n != len(texts) {
		t.Fatalf("%d passages after a failed insert, want %d", n, len(texts))
	}

	// Dropping the model: full-text ranking, and new passages without vectors.
	out = ok(t, srv, "PATCH", "/v1/agents/"+ag.ID, map[string]any{"embedding": ""})
	conform(t, out, "AgentState", false)
	if got := decodeAs[embeddingAgentJSON](t, out); got.Embedding != nil || got.EmbeddingConfig != nil {
		t.Fatalf("agent without a model = %s", out)
	}
	body := ok(t, srv, "POST", "/v1/agents/"+ag.ID+"/archival-memory", map[string]any{"text": "a dog named Rex"})
	conform(t, body, "Passage", true)
	if ps := decodeAs[[]embeddedPassageJSON](t, body); len(ps[0].Embedding) != 0 || ps[0].EmbeddingConfig != nil {
		t.Fatalf("passage without a model = %s", body)
	}
	if _, ranking := searchArchival(t, srv, ag.ID, url.Values{"query": {"dog"}}); ranking == "embedding-cosine" {
		t.Fatalf("ranking without a model = %s", ranking)
	}
}

func TestAgentEmbeddingFields(t *testing.T) {
	var failing atomic.Bool
	srv := embeddingServer(t, &failing)
	// Letta's deprecated embedding_config names the model too.
	out := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "cfg",
		"embedding_config": map[string]any{"embedding_model": "nomic-embed-text", "embedding_endpoint_type": "ollama", "embedding_dim": 768}})
	conform(t, out, "AgentState", false)
	ag := decodeAs[embeddingAgentJSON](t, out)
	if ag.Embedding == nil || *ag.Embedding != "openai/nomic-embed-text" || ag.EmbeddingConfig.EmbeddingDim != 768 {
		t.Fatalf("agent from embedding_config = %s", out)
	}
	out = ok(t, srv, "PATCH", "/v1/agents/"+ag.ID, map[string]any{"embedding_config": map[string]any{"handle": fakeEmbedding}})
	if got := decodeAs[embeddingAgentJSON](t, out); got.Embedding == nil || *got.Embedding != fakeEmbedding {
		t.Fatalf("agent after PATCH embedding_config = %s", out)
	}
	// Without a model: null fields.
	out = ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "plain"})
	if got := decodeAs[embeddingAgentJSON](t, out); got.Embedding != nil || got.EmbeddingConfig != nil {
		t.Fatalf("agent without a model = %s", out)
	}
	// Handles the configured providers cannot embed with: 400 naming them.
	fails(t, srv, "POST", "/v1/agents", map[string]any{"embedding": "anthropic/claude-sonnet-4-5"}, http.StatusBadRequest, `no provider named "anthropic"`)
	fails(t, srv, "POST", "/v1/agents", map[string]any{"embedding": "openai/"}, http.StatusBadRequest, "provider/model")
	fails(t, srv, "PATCH", "/v1/agents/"+ag.ID, map[string]any{"embedding": "letta/letta-free"}, http.StatusBadRequest, "letta/letta-free")
}
