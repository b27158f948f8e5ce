// Package providers links every provider type into the program, so that
// llm.FromEnv can build them: the server imports it and calls FromEnv.
package providers

import (
	"github.com/kelpie-ai/kelpie/llm"

	// The provider types register themselves with llm when imported.
	_ "github.com/kelpie-ai/kelpie/llm/anthropic"
	_ "github.com/kelpie-ai/kelpie/llm/openai"
)

// FromEnv is llm.FromEnv with every provider type linked: it configures
// the OpenAI-compatible provider from OPENAI_API_KEY / OPENAI_BASE_URL /
// OPENAI_MODELS and the Anthropic one from ANTHROPIC_API_KEY /
// ANTHROPIC_BASE_URL / ANTHROPIC_MODELS. getenv is usually os.Getenv.
func FromEnv(getenv func(string) string) (*llm.Router, error) {
	return llm.FromEnv(getenv)
}
