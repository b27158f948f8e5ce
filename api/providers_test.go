package api_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/providers"
)

type providerJSON struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	ProviderType     string  `json:"provider_type"`
	ProviderCategory string  `json:"provider_category"`
	BaseURL          *string `json:"base_url"`
}

var providerIDPattern = regexp.MustCompile(`^provider-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// GET /v1/providers lists the providers configured from the environment,
// with stable IDs and without credentials.
func TestListProviders(t *testing.T) {
	// Model discovery (in the background) goes to this loopback server.
	upstream := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(upstream.Close)
	loopback := strings.TrimPrefix(upstream.URL, "http://")
	env := map[string]string{
		"OPENAI_BASE_URL":    "http://user:hunter2@" + loopback + "/v1?api-key=query-secret",
		"OPENAI_API_KEY":     "sk-test-secret",
		"ANTHROPIC_API_KEY":  "anthropic-test-secret",
		"ANTHROPIC_BASE_URL": upstream.URL,
	}
	router, err := providers.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(nil, api.WithProviders(router))
	list := func(query string) []providerJSON {
		t.Helper()
		res, body := do(t, h, http.MethodGet, "/v1/providers"+query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/providers%s = %d %s", query, res.StatusCode, body)
		}
		conform(t, body, "Provider", true)
		for _, secret := range []string{"sk-test-secret", "anthropic-test-secret", "hunter2", "query-secret"} {
			if strings.Contains(string(body), secret) {
				t.Fatalf("GET /v1/providers%s shows a credential: %s", query, body)
			}
		}
		return decodeAs[[]providerJSON](t, body)
	}

	all := list("")
	if len(all) != 2 || all[0].Name != "anthropic" || all[1].Name != "openai" {
		t.Fatalf("providers (newest configured first) = %+v", all)
	}
	want := map[string]providerJSON{
		"openai":    {Name: "openai", ProviderType: "openai", ProviderCategory: "base", BaseURL: ptrTo("http://" + loopback + "/v1")},
		"anthropic": {Name: "anthropic", ProviderType: "anthropic", ProviderCategory: "base", BaseURL: ptrTo(upstream.URL)},
	}
	for _, p := range all {
		w := want[p.Name]
		if !providerIDPattern.MatchString(p.ID) || p.ProviderType != w.ProviderType || p.ProviderCategory != "base" ||
			p.BaseURL == nil || *p.BaseURL != *w.BaseURL {
			t.Errorf("provider %+v (base_url %v), want %+v (base_url %s)", p, p.BaseURL, w, *w.BaseURL)
		}
	}
	if all[0].ID == all[1].ID {
		t.Fatalf("two providers share ID %s", all[0].ID)
	}
	// The same configuration gives the same IDs.
	again, err := providers.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	_, body := do(t, api.New(nil, api.WithProviders(again)), http.MethodGet, "/v1/providers?order=asc")
	if asc := decodeAs[[]providerJSON](t, body); len(asc) != 2 || asc[0].ID != all[1].ID || asc[1].ID != all[0].ID {
		t.Fatalf("IDs after a restart, oldest first: %+v; before %+v", asc, all)
	}

	if got := list("?name=openai"); len(got) != 1 || got[0].Name != "openai" {
		t.Fatalf("name=openai: %+v", got)
	}
	if got := list("?provider_type=anthropic"); len(got) != 1 || got[0].Name != "anthropic" {
		t.Fatalf("provider_type=anthropic: %+v", got)
	}
	if got := list("?provider_type=groq"); len(got) != 0 {
		t.Fatalf("provider_type=groq: %+v", got)
	}
	if got := list("?limit=1&after=" + all[0].ID); len(got) != 1 || got[0].ID != all[1].ID {
		t.Fatalf("the page after %s: %+v", all[0].ID, got)
	}
	for query, status := range map[string]int{"?provider_type=nope": 422, "?limit=0": 422, "?order=up": 422, "?order_by=name": 422, "?after=provider-x": 404} {
		res, body := do(t, h, http.MethodGet, "/v1/providers"+query)
		if res.StatusCode != status || !strings.Contains(string(body), `"detail"`) {
			t.Errorf("GET /v1/providers%s = %d %s, want %d with a detail", query, res.StatusCode, body, status)
		}
	}

	// Nothing configured: no providers.
	_, body = do(t, api.New(nil, api.WithProviders(llm.NewRouter())), http.MethodGet, "/v1/providers/")
	if strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("no providers: %s", body)
	}
}

func ptrTo[T any](v T) *T { return &v }
