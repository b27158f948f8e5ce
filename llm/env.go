package llm

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// Environment variables FromEnv reads.
const (
	// EnvOpenAIAPIKey is the OpenAI (or compatible server's) API key.
	EnvOpenAIAPIKey = "OPENAI_API_KEY"
	// EnvOpenAIBaseURL is the base URL of an OpenAI-compatible API, with
	// its version path ("http://localhost:11434/v1" for Ollama).
	EnvOpenAIBaseURL = "OPENAI_BASE_URL"
	// EnvOpenAIModels names models (comma-separated) to offer besides the
	// ones the server lists at GET {base}/models; the first is the
	// provider's default model.
	EnvOpenAIModels = "OPENAI_MODELS"
	// EnvAnthropicAPIKey is the Anthropic API key.
	EnvAnthropicAPIKey = "ANTHROPIC_API_KEY"
	// EnvAnthropicBaseURL overrides the Anthropic API's base URL, without
	// the version path.
	EnvAnthropicBaseURL = "ANTHROPIC_BASE_URL"
	// EnvAnthropicModels names models (comma-separated) to offer before
	// the built-in list; the first is the provider's default model.
	EnvAnthropicModels = "ANTHROPIC_MODELS"
)

// Default base URLs.
const (
	DefaultOpenAIBaseURL    = "https://api.openai.com/v1"
	DefaultAnthropicBaseURL = "https://api.anthropic.com"
)

// ProviderConfig is one provider's configuration, as FromEnv reads it.
type ProviderConfig struct {
	// Name is the provider's name, the prefix of its handles.
	Name string
	// Type is the wire protocol: ProviderTypeOpenAI or ProviderTypeAnthropic.
	Type string
	// BaseURL is the API's base URL, without a trailing "/".
	BaseURL string
	// APIKey is the API key; it may be empty for a local server.
	APIKey string
	// Models are model names configured explicitly, in order.
	Models []string
}

// ProviderFactory builds the Provider for a configuration of one type.
// It must not block on the network: model discovery belongs in the
// Provider's ListModels, or in the background.
type ProviderFactory func(cfg ProviderConfig) (Provider, error)

// factories are the registered provider types.
var (
	factoriesMu sync.RWMutex
	factories   = make(map[string]ProviderFactory)
)

// RegisterProviderType makes FromEnv build providers of type typ with f.
// The provider packages (llm/openai, llm/anthropic) register themselves
// when imported; import llm/providers to link both. A later registration
// of the same type replaces the earlier one.
func RegisterProviderType(typ string, f ProviderFactory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	factories[typ] = f
}

func factory(typ string) (ProviderFactory, bool) {
	factoriesMu.RLock()
	defer factoriesMu.RUnlock()
	f, ok := factories[typ]
	return f, ok
}

// ConfigFromEnv reads the provider configuration from the environment
// (getenv is os.Getenv, or a stand-in for tests), in routing order:
//
//   - OPENAI_API_KEY and/or OPENAI_BASE_URL configure the "openai"
//     provider, an OpenAI-compatible chat-completions API. The base URL
//     alone is enough (Ollama, vLLM and llama.cpp need no key); it
//     defaults to https://api.openai.com/v1. OPENAI_MODELS adds model
//     names.
//   - ANTHROPIC_API_KEY configures the "anthropic" provider, with
//     ANTHROPIC_BASE_URL overriding https://api.anthropic.com and
//     ANTHROPIC_MODELS adding model names.
//
// Nothing set yields no configurations and no error. A malformed base URL
// is an error.
func ConfigFromEnv(getenv func(string) string) ([]ProviderConfig, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var out []ProviderConfig
	if key, base := get(EnvOpenAIAPIKey), get(EnvOpenAIBaseURL); key != "" || base != "" {
		u, err := baseURL(EnvOpenAIBaseURL, base, DefaultOpenAIBaseURL)
		if err != nil {
			return nil, err
		}
		out = append(out, ProviderConfig{Name: ProviderTypeOpenAI, Type: ProviderTypeOpenAI, BaseURL: u, APIKey: key, Models: splitList(get(EnvOpenAIModels))})
	}
	if key := get(EnvAnthropicAPIKey); key != "" {
		u, err := baseURL(EnvAnthropicBaseURL, get(EnvAnthropicBaseURL), DefaultAnthropicBaseURL)
		if err != nil {
			return nil, err
		}
		out = append(out, ProviderConfig{Name: ProviderTypeAnthropic, Type: ProviderTypeAnthropic, BaseURL: u, APIKey: key, Models: splitList(get(EnvAnthropicModels))})
	}
	return out, nil
}

// FromEnv returns a Router over the providers ConfigFromEnv finds, built by
// the registered provider types (import llm/providers, or llm/openai and
// llm/anthropic, to register them). With nothing configured it returns a
// Router without providers, whose calls fail with ErrNotConfigured; check
// Router.Configured. It does not wait on the network: model lists are
// fetched in the background and on demand, with a short timeout.
func FromEnv(getenv func(string) string) (*Router, error) {
	cfgs, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	providers := make([]Provider, 0, len(cfgs))
	for _, cfg := range cfgs {
		f, ok := factory(cfg.Type)
		if !ok {
			return nil, fmt.Errorf("llm: provider %q is configured but its type %q is not linked into this program "+
				"(import github.com/kelpie-ai/kelpie/llm/providers); linked types: %s", cfg.Name, cfg.Type, strings.Join(registered(), ", "))
		}
		p, err := f(cfg)
		if err != nil {
			return nil, fmt.Errorf("llm: provider %q: %w", cfg.Name, err)
		}
		if p.Name == "" {
			p.Name = cfg.Name
		}
		if p.Type == "" {
			p.Type = cfg.Type
		}
		if p.BaseURL == "" {
			p.BaseURL = cfg.BaseURL
		}
		providers = append(providers, p)
	}
	return NewRouter(providers...), nil
}

// registered lists the registered provider types, sorted.
func registered() []string {
	factoriesMu.RLock()
	defer factoriesMu.RUnlock()
	out := make([]string, 0, len(factories))
	for t := range factories {
		out = append(out, t)
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = append(out, "none")
	}
	return out
}

// baseURL validates the base URL in variable name, or returns def.
func baseURL(name, raw, def string) (string, error) {
	if raw == "" {
		return def, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := raw
		if err == nil {
			shown = u.Redacted()
		}
		return "", fmt.Errorf("llm: %s=%q: want an http:// or https:// URL such as http://localhost:11434/v1", name, shown)
	}
	return strings.TrimRight(raw, "/"), nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
