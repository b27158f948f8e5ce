package api

import (
	"strings"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
)

// Letta's EmbeddingConfig, for agents (the model that embeds their
// passages, named by the "embedding" handle) and passages (the model that
// embedded them).

// embeddingConfigWire is Letta's EmbeddingConfig as Kelpie reports it.
type embeddingConfigWire struct {
	EmbeddingEndpointType string  `json:"embedding_endpoint_type"`
	EmbeddingEndpoint     *string `json:"embedding_endpoint"`
	EmbeddingModel        string  `json:"embedding_model"`
	EmbeddingDim          int     `json:"embedding_dim"`
	// EmbeddingChunkSize is null: Kelpie embeds each passage whole.
	EmbeddingChunkSize *int    `json:"embedding_chunk_size"`
	Handle             *string `json:"handle"`
	BatchSize          int     `json:"batch_size"`
}

// embeddingConfigRequest is the part of Letta's EmbeddingConfig that a
// create or update request names a model with.
type embeddingConfigRequest struct {
	Handle                string `json:"handle"`
	EmbeddingModel        string `json:"embedding_model"`
	EmbeddingEndpointType string `json:"embedding_endpoint_type"`
}

// knownEmbeddingDims are the dimensions of well-known embedding models,
// reported for an agent until its first passage says.
var knownEmbeddingDims = map[string]int{
	"text-embedding-3-small": 1536,
	"text-embedding-3-large": 3072,
	"text-embedding-ada-002": 1536,
	"nomic-embed-text":       768,
	"mxbai-embed-large":      1024,
	"all-minilm":             384,
}

// usualEmbeddingDim is the dimension model's vectors usually have: its
// entry in knownEmbeddingDims (an Ollama tag such as ":latest" aside), else
// embeddingDimDefault.
func usualEmbeddingDim(model string) int {
	name, _, _ := strings.Cut(model, ":")
	if dim := knownEmbeddingDims[name]; dim > 0 {
		return dim
	}
	return embeddingDimDefault
}

// openAICompatibleEndpoints are Letta's endpoint types that Kelpie serves
// through its OpenAI-compatible provider ("openai"): a config naming one
// of them maps to an "openai/<model>" handle.
var openAICompatibleEndpoints = map[string]bool{
	"openai": true, "ollama": true, "vllm": true, "llamacpp": true, "lmstudio": true,
	"lmstudio-legacy": true, "koboldcpp": true, "webui": true, "webui-legacy": true,
}

// handle returns the model handle c names: its handle, or
// "<provider>/<embedding_model>" with the provider its endpoint type
// implies (default "openai"); "" if it names no model.
func (c *embeddingConfigRequest) handle() string {
	if c == nil {
		return ""
	}
	if c.Handle != "" {
		return c.Handle
	}
	if c.EmbeddingModel == "" {
		return ""
	}
	provider := c.EmbeddingEndpointType
	if provider == "" || openAICompatibleEndpoints[provider] {
		provider = llm.ProviderTypeOpenAI
	}
	return provider + "/" + c.EmbeddingModel
}

// embeddingConfig describes the model named by handle, with vectors of
// dim dimensions (0: unknown, the model's usual dimension if Kelpie knows
// it, else embeddingDimDefault); nil for no model.
func embeddingConfig(handle string, dim int) *embeddingConfigWire {
	if handle == "" {
		return nil
	}
	provider, model, ok := strings.Cut(handle, "/")
	if !ok {
		provider, model = llm.ProviderTypeOpenAI, handle
	}
	endpoint := llm.ProviderTypeOpenAI
	if provider == llm.ProviderTypeAnthropic {
		endpoint = llm.ProviderTypeAnthropic
	}
	if dim <= 0 {
		dim = usualEmbeddingDim(model)
	}
	h := handle
	return &embeddingConfigWire{
		EmbeddingEndpointType: endpoint, EmbeddingModel: model, EmbeddingDim: dim,
		Handle: &h, BatchSize: llm.EmbedInputsMax,
	}
}

// passageEmbeddingConfig describes the model that embedded p; nil if it
// has no vector, or one a caller supplied without naming its model.
func passageEmbeddingConfig(p *agent.Passage) *embeddingConfigWire {
	if len(p.Embedding) == 0 || p.EmbeddingModel == "" {
		return nil
	}
	return embeddingConfig(p.EmbeddingModel, len(p.Embedding))
}
