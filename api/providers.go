package api

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"

	"github.com/kelpie-ai/kelpie/llm"
)

// GET /v1/providers lists the model providers the server was configured
// with (OPENAI_* and ANTHROPIC_* variables; see llm.ConfigFromEnv) as
// Letta's Provider objects, in the "base" category (Letta's name for
// providers the server's environment configures, as opposed to ones a
// user adds). Kelpie does not store providers, so the list is the
// configuration; creating, changing and deleting providers are not
// served. A provider's API key is never shown, nor credentials in its
// base URL.

// ProviderLister is what GET /v1/providers reads: the configured
// providers (an *llm.Router is one).
type ProviderLister interface {
	ProviderInfos() []llm.ProviderInfo
}

// WithProviders serves GET /v1/providers from p, if p lists providers;
// otherwise it answers an empty list.
func WithProviders(p any) Option {
	return func(o *options) {
		if l, ok := p.(ProviderLister); ok {
			o.providers = l
		}
	}
}

// providerTypes are Letta's ProviderType values.
var providerTypes = []string{"anthropic", "azure", "baseten", "bedrock", "cerebras", "chatgpt_oauth", "deepseek", "fireworks",
	"google_ai", "google_vertex", "groq", "hugging-face", "letta", "lmstudio_openai", "minimax", "mistral", "ollama", "openai",
	"together", "vllm", "sglang", "openrouter", "xai", "zai", "zai_coding"}

// providersPageMax bounds one page of providers.
const providersPageMax = 1000

// providerWire is Letta's Provider (without its credential fields, which
// Kelpie never sends).
type providerWire struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	ProviderType     string  `json:"provider_type"`
	ProviderCategory string  `json:"provider_category"`
	BaseURL          *string `json:"base_url"`
	Region           *string `json:"region"`
	APIVersion       *string `json:"api_version"`
	UpdatedAt        *string `json:"updated_at"`
	LastSynced       *string `json:"last_synced"`
}

// providerID is the stable ID of the provider named name: "provider-"
// and a UUID derived from the name, the same on every start.
func providerID(name string) string {
	h := sha256.Sum256([]byte("kelpie provider " + name))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("provider-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// displayURL is raw without the user information, query and fragment,
// where credentials may hide; "" if raw is not a URL.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

func toProviderWire(p llm.ProviderInfo) providerWire {
	typ := p.Type
	if typ == "" {
		typ = llm.ProviderTypeOpenAI // an OpenAI-compatible API unless it said otherwise
	}
	return providerWire{ID: providerID(p.Name), Name: p.Name, ProviderType: typ, ProviderCategory: "base", BaseURL: optional(displayURL(p.BaseURL))}
}

// listProviders answers GET /v1/providers, filtered by name and
// provider_type and paged with Letta's parameters; the configuration
// order is the creation order.
func (h *handler) listProviders(w http.ResponseWriter, r *http.Request) {
	typ, ok := queryLiteral(w, r, "provider_type", providerTypes...)
	if !ok {
		return
	}
	if _, ok := queryLiteral(w, r, "order_by", "created_at"); !ok {
		return
	}
	name := r.URL.Query().Get("name")
	all := []providerWire{}
	if h.providers != nil {
		for _, p := range h.providers.ProviderInfos() {
			pw := toProviderWire(p)
			if (name == "" || pw.Name == name) && (typ == "" || pw.ProviderType == typ) {
				all = append(all, pw)
			}
		}
	}
	page, ok := pageOf(w, r, all, func(p providerWire) string { return p.ID }, 50, providersPageMax, false)
	if ok {
		writeJSON(w, http.StatusOK, page)
	}
}
