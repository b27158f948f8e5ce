package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
)

// staticModels lists fixed models.
type staticModels []llm.ModelInfo

func (m staticModels) ModelsContext(context.Context) []llm.ModelInfo { return m }

func TestEmbeddingModelDims(t *testing.T) {
	models := staticModels{
		{Handle: "openai/gpt-4o-mini", Provider: "openai", Model: "gpt-4o-mini", ProviderType: llm.ProviderTypeOpenAI},
		{Handle: "openai/text-embedding-3-large", Provider: "openai", Model: "text-embedding-3-large", ProviderType: llm.ProviderTypeOpenAI, Embedding: true},
		{Handle: "openai/nomic-embed-text:latest", Provider: "openai", Model: "nomic-embed-text:latest", ProviderType: llm.ProviderTypeOpenAI, Embedding: true},
		{Handle: "openai/my-embedder", Provider: "openai", Model: "my-embedder", ProviderType: llm.ProviderTypeOpenAI, Embedding: true},
	}
	srv := httptest.NewServer(api.New(nil, api.WithModels(models), api.WithLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(srv.Close)
	out := ok(t, srv, "GET", "/v1/models/embedding", nil)
	conform(t, out, "EmbeddingModel", true)
	got := decodeAs[[]struct {
		Handle string `json:"handle"`
		Dim    int    `json:"embedding_dim"`
	}](t, out)
	want := map[string]int{"openai/text-embedding-3-large": 3072, "openai/nomic-embed-text:latest": 768, "openai/my-embedder": 1536}
	if len(got) != len(want) {
		t.Fatalf("embedding models %+v", got)
	}
	for _, m := range got {
		if want[m.Handle] != m.Dim {
			t.Errorf("%s: embedding_dim %d, want %d", m.Handle, m.Dim, want[m.Handle])
		}
	}
}
