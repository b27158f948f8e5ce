package llm

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Provider is one configured model provider behind a Router.
type Provider struct {
	// Name is the provider's name, the prefix of its model handles:
	// "openai", "anthropic", or a custom name.
	Name string
	// Type is the wire protocol, ProviderTypeOpenAI or
	// ProviderTypeAnthropic; empty means Name when Name is one of those.
	// It fills ModelInfo.ProviderType.
	Type string
	// BaseURL is the provider's API base URL, for display (GET
	// /v1/providers); empty if unknown. Client has its own copy.
	BaseURL string
	// Client serves the provider's requests; it receives model names
	// without the "provider/" prefix. It must not be nil.
	Client Streamer
	// Models are the models the provider is known to offer.
	Models []ModelInfo
	// ListModels, if set, discovers further models; the Router calls it
	// when it needs the full list (Models, or routing a bare model name)
	// and falls back to Models alone if it fails. It must bound its own
	// time and should cache: the Router calls it with context.Background
	// from Models.
	ListModels func(ctx context.Context) ([]ModelInfo, error)
	// DefaultModel is used for a request that names no model, or only the
	// provider ("openai/").
	DefaultModel string
}

// typ returns p's wire protocol, "" if unknown.
func (p *Provider) typ() string {
	if p.Type != "" {
		return p.Type
	}
	if p.Name == ProviderTypeOpenAI || p.Name == ProviderTypeAnthropic {
		return p.Name
	}
	return ""
}

// models returns p's static and discovered models, completed (Handle,
// Provider, ProviderType) and without duplicates, static ones first.
func (p *Provider) models(ctx context.Context) []ModelInfo {
	all := p.Models
	if p.ListModels != nil {
		if found, err := p.ListModels(ctx); err == nil {
			all = append(append([]ModelInfo(nil), p.Models...), found...)
		}
	}
	out := make([]ModelInfo, 0, len(all))
	seen := make(map[string]bool, len(all))
	for _, m := range all {
		if m.Model == "" || seen[m.Model] {
			continue
		}
		seen[m.Model] = true
		m.Provider = p.Name
		m.Handle = p.Name + "/" + m.Model
		if m.ProviderType == "" {
			m.ProviderType = p.typ()
		}
		out = append(out, m)
	}
	return out
}

// lists reports whether p's static Models name model.
func (p *Provider) lists(model string) bool {
	for _, m := range p.Models {
		if m.Model == model {
			return true
		}
	}
	return false
}

// Router is a Streamer that sends each request to one of several
// providers, chosen by the request's model:
//
//   - "provider/model" goes to the provider of that name, with the model
//     name after the first "/" ("openai/Qwen/Qwen2.5-7B" asks the openai
//     provider for "Qwen/Qwen2.5-7B");
//   - a name without a known provider prefix ("gpt-4o", or a model name
//     containing "/" such as "Qwen/Qwen2.5-7B") goes, unchanged, to the
//     first provider that lists it — in its Models, or else in what its
//     ListModels discovers; a name without "/" that no provider lists goes
//     to the first provider;
//   - an empty name, or "provider/", uses the provider's DefaultModel.
//
// A name whose prefix is no provider and that no provider lists fails with
// an *APIError of Status 400 naming the configured providers. A Router
// without providers fails every call with ErrNotConfigured. A Router is
// safe for concurrent use.
type Router struct {
	providers []Provider
}

// NewRouter returns a Router over providers, in order of preference. A
// provider whose Name repeats an earlier one's is ignored. It panics if a
// provider has no Name or a nil Client.
func NewRouter(providers ...Provider) *Router {
	r := &Router{}
	seen := make(map[string]bool)
	for _, p := range providers {
		if p.Name == "" || strings.Contains(p.Name, "/") || p.Client == nil {
			panic(fmt.Sprintf("llm.NewRouter: provider %q needs a name without \"/\" and a client", p.Name))
		}
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		p.Models = append([]ModelInfo(nil), p.Models...)
		r.providers = append(r.providers, p)
	}
	return r
}

// Configured reports whether r has any provider.
func (r *Router) Configured() bool { return len(r.providers) > 0 }

// Providers returns the names of r's providers, in order.
func (r *Router) Providers() []string {
	names := make([]string, len(r.providers))
	for i, p := range r.providers {
		names[i] = p.Name
	}
	return names
}

// ProviderInfo describes a configured provider, without its client or
// credentials.
type ProviderInfo struct {
	// Name is the provider's name, the prefix of its model handles.
	Name string
	// Type is the wire protocol, ProviderTypeOpenAI or
	// ProviderTypeAnthropic; empty if unknown.
	Type string
	// BaseURL is the API's base URL; empty if unknown.
	BaseURL string
}

// ProviderInfos describes r's providers, in order.
func (r *Router) ProviderInfos() []ProviderInfo {
	out := make([]ProviderInfo, len(r.providers))
	for i := range r.providers {
		p := &r.providers[i]
		out[i] = ProviderInfo{Name: p.Name, Type: p.typ(), BaseURL: p.BaseURL}
	}
	return out
}

// Models returns every model of every provider, in provider order. It may
// call the providers' ListModels, which bound their own time.
func (r *Router) Models() []ModelInfo {
	return r.ModelsContext(context.Background())
}

// ModelsContext is Models, giving up on model discovery when ctx ends.
func (r *Router) ModelsContext(ctx context.Context) []ModelInfo {
	var out []ModelInfo
	for i := range r.providers {
		out = append(out, r.providers[i].models(ctx)...)
	}
	return out
}

// Resolve returns the provider that a request for model goes to and the
// model name that provider receives. Its errors are those of Complete.
func (r *Router) Resolve(ctx context.Context, model string) (provider, providerModel string, err error) {
	p, m, err := r.route(ctx, model)
	if err != nil {
		return "", "", err
	}
	return p.Name, m, nil
}

// route picks the provider for model and the name to send it.
func (r *Router) route(ctx context.Context, model string) (*Provider, string, error) {
	if len(r.providers) == 0 {
		return nil, "", errNotConfiguredAdvice
	}
	if model == "" {
		return r.withDefault(&r.providers[0], model)
	}
	prefix, rest, hasSlash := strings.Cut(model, "/")
	if hasSlash {
		for i := range r.providers {
			if r.providers[i].Name == prefix {
				if rest == "" {
					return r.withDefault(&r.providers[i], model)
				}
				return &r.providers[i], rest, nil
			}
		}
	}
	if !hasSlash && len(r.providers) == 1 {
		return &r.providers[0], model, nil
	}
	// A bare name: the first provider that lists it, static lists first so
	// that discovery is needed only when they do not decide.
	for i := range r.providers {
		if r.providers[i].lists(model) {
			return &r.providers[i], model, nil
		}
	}
	for i := range r.providers {
		p := &r.providers[i]
		if p.ListModels == nil {
			continue
		}
		for _, m := range p.models(ctx) {
			if m.Model == model {
				return p, model, nil
			}
		}
	}
	if !hasSlash {
		return &r.providers[0], model, nil
	}
	return nil, "", &APIError{
		Status: http.StatusBadRequest,
		Type:   "unknown_provider",
		Message: fmt.Sprintf("model %q: no provider named %q and no provider lists the model; configured providers: %s "+
			"(name a model as provider/model)", model, prefix, strings.Join(r.Providers(), ", ")),
	}
}

// withDefault routes a request without a model name to p's DefaultModel.
func (r *Router) withDefault(p *Provider, asked string) (*Provider, string, error) {
	if p.DefaultModel == "" {
		return nil, "", &APIError{
			Provider: p.Name,
			Status:   http.StatusBadRequest,
			Type:     "no_model",
			Message:  fmt.Sprintf("model %q: no model named and provider %q has no default model", asked, p.Name),
		}
	}
	return p, p.DefaultModel, nil
}

// Complete implements Client.
func (r *Router) Complete(ctx context.Context, req Request) (*Response, error) {
	p, model, err := r.route(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	req.Model = model
	return p.Client.Complete(ctx, req)
}

// CompleteStream implements Streamer.
func (r *Router) CompleteStream(ctx context.Context, req Request, onDelta func(Delta) error) (*Response, error) {
	p, model, err := r.route(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	req.Model = model
	return p.Client.CompleteStream(ctx, req, onDelta)
}

// ModelChecker is a Client that can tell, without a model call, whether
// it would accept a chat model's handle: a Router checks that the handle
// names a configured provider (or a model one lists).
type ModelChecker interface {
	Client
	// CheckModel returns nil if Complete would send requests for model to
	// a provider, and otherwise the error Complete would return.
	CheckModel(ctx context.Context, model string) error
}

// CheckModel reports whether c would accept model as a chat model's
// handle: ErrNotConfigured (wrapped) if c has no provider, the routing
// error of a ModelChecker, and nil for any other client, which decides
// only when called.
func CheckModel(ctx context.Context, c Client, model string) error {
	if c == nil {
		return errNotConfiguredAdvice
	}
	if cc, ok := c.(interface{ Configured() bool }); ok && !cc.Configured() {
		return errNotConfiguredAdvice
	}
	if mc, ok := c.(ModelChecker); ok {
		return mc.CheckModel(ctx, model)
	}
	return nil
}

// CheckModel implements ModelChecker: the errors of Complete that routing
// alone decides. The handle "/" (an empty provider and model) is refused.
func (r *Router) CheckModel(ctx context.Context, model string) error {
	if strings.TrimSpace(model) == "/" {
		return &APIError{Status: http.StatusBadRequest, Type: "no_model", Message: fmt.Sprintf("model %q: name the model as provider/model", model)}
	}
	_, _, err := r.route(ctx, model)
	return err
}
