package api

import (
	"net/http"

	"github.com/kelpie-ai/kelpie/llm"
)

// modelWire is Letta's Model.
type modelWire struct {
	Handle            string  `json:"handle"`
	Name              string  `json:"name"`
	DisplayName       string  `json:"display_name"`
	ProviderType      string  `json:"provider_type"`
	ProviderName      string  `json:"provider_name"`
	ModelType         string  `json:"model_type"`
	Model             string  `json:"model"`
	ModelEndpointType string  `json:"model_endpoint_type"`
	ContextWindow     int     `json:"context_window"`
	MaxContextWindow  int     `json:"max_context_window"`
	Temperature       float64 `json:"temperature"`
}

// embeddingModelWire is Letta's EmbeddingModel.
type embeddingModelWire struct {
	Handle                string `json:"handle"`
	Name                  string `json:"name"`
	DisplayName           string `json:"display_name"`
	ProviderType          string `json:"provider_type"`
	ProviderName          string `json:"provider_name"`
	ModelType             string `json:"model_type"`
	EmbeddingEndpointType string `json:"embedding_endpoint_type"`
	EmbeddingModel        string `json:"embedding_model"`
	EmbeddingDim          int    `json:"embedding_dim"`
}

// embeddingDimDefault is reported for an embedding model whose dimension
// Kelpie does not know (providers' model lists do not say).
const embeddingDimDefault = 1536

func (h *handler) modelInfos(r *http.Request) []llm.ModelInfo {
	if h.models == nil {
		return nil
	}
	return h.models.ModelsContext(r.Context())
}

// listModels answers GET /v1/models: the chat models of the configured
// providers, filtered by provider_name / provider_type if given.
func (h *handler) listModels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []modelWire{}
	for _, m := range h.modelInfos(r) {
		if m.Embedding || (q.Get("provider_name") != "" && q.Get("provider_name") != m.Provider) ||
			(q.Get("provider_type") != "" && q.Get("provider_type") != m.ProviderType) {
			continue
		}
		window := m.ContextWindow
		if window == 0 {
			window = defaultContextWindow
		}
		out = append(out, modelWire{Handle: m.Handle, Name: m.Model, DisplayName: m.Model, ProviderType: m.ProviderType,
			ProviderName: m.Provider, ModelType: "llm", Model: m.Model, ModelEndpointType: m.ProviderType,
			ContextWindow: window, MaxContextWindow: window, Temperature: 0.7})
	}
	writeJSON(w, http.StatusOK, out)
}

// listEmbeddingModels answers GET /v1/models/embedding.
func (h *handler) listEmbeddingModels(w http.ResponseWriter, r *http.Request) {
	out := []embeddingModelWire{}
	for _, m := range h.modelInfos(r) {
		if !m.Embedding {
			continue
		}
		out = append(out, embeddingModelWire{Handle: m.Handle, Name: m.Model, DisplayName: m.Model, ProviderType: m.ProviderType,
			ProviderName: m.Provider, ModelType: "embedding", EmbeddingEndpointType: m.ProviderType, EmbeddingModel: m.Model,
			EmbeddingDim: usualEmbeddingDim(m.Model)})
	}
	writeJSON(w, http.StatusOK, out)
}
