package anthropic

import (
	sdk "github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/kelpie-ai/kelpie/llm"
)

// contextWindow is the context window reported for Claude models: every
// current one has at least 200k tokens.
const contextWindow = 200000

// BuiltinModels are the generally available Claude models offered without
// configuration, newest first, taken from the SDK's model constants (its
// deprecated models and those behind access programs left out). The first
// is the default model unless ANTHROPIC_MODELS names others.
var BuiltinModels = []string{
	sdk.ModelClaudeSonnet5_5,
	sdk.ModelClaudeOpus5_5,
	sdk.ModelClaudeHaiku5_5,
	sdk.ModelClaudeFable5_2,
	sdk.ModelClaudeOpus4_8,
	sdk.ModelClaudeSonnet4_6,
	sdk.ModelClaudeHaiku4_5,
}

// NewProvider is the llm.ProviderFactory of the "anthropic" type: a Client
// for cfg, offering the models cfg names (the first is the default model)
// and then BuiltinModels. It does no I/O.
func NewProvider(cfg llm.ProviderConfig) (llm.Provider, error) {
	c, err := New(Config{Name: cfg.Name, BaseURL: cfg.BaseURL, APIKey: cfg.APIKey})
	if err != nil {
		return llm.Provider{}, err
	}
	p := llm.Provider{Name: cfg.Name, Type: llm.ProviderTypeAnthropic, BaseURL: cfg.BaseURL, Client: c}
	seen := make(map[string]bool)
	for _, m := range append(append([]string(nil), cfg.Models...), BuiltinModels...) {
		if seen[m] {
			continue
		}
		seen[m] = true
		p.Models = append(p.Models, llm.ModelInfo{Model: m, ProviderType: llm.ProviderTypeAnthropic, ContextWindow: contextWindow})
	}
	p.DefaultModel = p.Models[0].Model
	return p, nil
}
