package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

const testPassword = "correct horse battery staple"

// authServer starts the API with the given password (empty: none).
func authServer(t *testing.T, password string) *httptest.Server {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, llmtest.Echo())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithPassword(password)))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return srv
}

// authCall sends a request with the given headers and returns the
// response (body read into the second result).
func authCall(t *testing.T, srv *httptest.Server, method, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"name":"a"}`)
	}
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(out)
}

func bearer(pw string) map[string]string { return map[string]string{"Authorization": "Bearer " + pw} }

func TestAuthDisabledByDefault(t *testing.T) {
	srv := authServer(t, "")
	for _, path := range []string{"/v1/agents", "/v1/health"} {
		if res, body := authCall(t, srv, "GET", path, nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a password configured = %d %s, want 200", path, res.StatusCode, body)
		}
	}
	// A credential sent to a server without a password is ignored.
	if res, body := authCall(t, srv, "GET", "/v1/agents", bearer("anything")); res.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/agents with a stray token = %d %s, want 200", res.StatusCode, body)
	}
}

func TestAuthAccepts(t *testing.T) {
	srv := authServer(t, testPassword)
	tests := []struct {
		name   string
		header map[string]string
	}{
		{"bearer", bearer(testPassword)},
		{"lowercase scheme", map[string]string{"Authorization": "bearer " + testPassword}},
		{"letta bare password", map[string]string{"X-BARE-PASSWORD": "password " + testPassword}},
		{"bearer beside a wrong bare password", map[string]string{"Authorization": "Bearer " + testPassword, "X-BARE-PASSWORD": "password nope"}},
		{"bare password beside a foreign bearer token", map[string]string{"Authorization": "Bearer some-cloud-token", "X-BARE-PASSWORD": "password " + testPassword}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, rq := range [][2]string{{"GET", "/v1/agents"}, {"GET", "/v1/agents/"}, {"POST", "/v1/agents"}} {
				if res, body := authCall(t, srv, rq[0], rq[1], tc.header); res.StatusCode != http.StatusOK {
					t.Errorf("%s %s = %d %s, want 200", rq[0], rq[1], res.StatusCode, body)
				}
			}
		})
	}
	// Authenticated requests still get the usual errors.
	if res, body := authCall(t, srv, "GET", "/v1/no-such-route", bearer(testPassword)); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown route, authenticated = %d %s, want 404", res.StatusCode, body)
	}
}

func TestAuthRejects(t *testing.T) {
	srv := authServer(t, testPassword)
	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   string
	}{
		{"no credentials", "GET", "/v1/agents", nil, "authentication required"},
		{"no credentials, POST", "POST", "/v1/agents", nil, "authentication required"},
		{"no credentials, agent route", "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000", nil, "authentication required"},
		{"no credentials, unknown route", "GET", "/v1/no-such-route", nil, "authentication required"},
		{"POST to health is not public", "POST", "/v1/health", nil, "authentication required"},
		{"wrong password", "GET", "/v1/agents", bearer("wrong"), "invalid password"},
		{"empty bearer", "GET", "/v1/agents", map[string]string{"Authorization": "Bearer "}, "authentication required"},
		{"prefix of the password", "GET", "/v1/agents", bearer(testPassword[:5]), "invalid password"},
		{"password plus a suffix", "GET", "/v1/agents", bearer(testPassword + "x"), "invalid password"},
		{"basic scheme", "GET", "/v1/agents", map[string]string{"Authorization": "Basic " + testPassword}, "authentication required"},
		{"wrong bare password", "GET", "/v1/agents", map[string]string{"X-BARE-PASSWORD": "password wrong"}, "invalid password"},
		{"bare password without its prefix", "GET", "/v1/agents", map[string]string{"X-BARE-PASSWORD": "pass " + testPassword}, "invalid password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := authCall(t, srv, tc.method, tc.path, tc.header)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s %s = %d %s, want 401", tc.method, tc.path, res.StatusCode, body)
			}
			var e struct {
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			for _, want := range []string{tc.want, "Authorization: Bearer <password>", "KELPIE_SERVER_PASSWORD"} {
				if !strings.Contains(e.Detail, want) {
					t.Errorf("detail %q lacks %q", e.Detail, want)
				}
			}
			if strings.Contains(e.Detail, testPassword) {
				t.Errorf("detail %q leaks the password", e.Detail)
			}
			if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestAuthPublicRoutes(t *testing.T) {
	srv := authServer(t, testPassword)
	for _, path := range []string{"/v1/health", "/v1/health/"} {
		res, body := authCall(t, srv, "GET", path, nil)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
			t.Errorf("GET %s without credentials = %d %s, want 200", path, res.StatusCode, body)
		}
		// A wrong credential does not break the health check either.
		if res, body := authCall(t, srv, "GET", path, bearer("wrong")); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s with a wrong token = %d %s, want 200", path, res.StatusCode, body)
		}
	}
	if res, _ := authCall(t, srv, "HEAD", "/v1/health", nil); res.StatusCode != http.StatusOK {
		t.Errorf("HEAD /v1/health = %d, want 200", res.StatusCode)
	}
	// A CORS preflight carries no credentials; it must not be refused
	// for lacking them (whatever the API then answers to OPTIONS).
	res, _ := authCall(t, srv, "OPTIONS", "/v1/agents", map[string]string{
		"Origin": "https://app.letta.com", "Access-Control-Request-Method": "GET"})
	if res.StatusCode == http.StatusUnauthorized {
		t.Errorf("CORS preflight = 401")
	}
	// A plain OPTIONS is not a preflight and needs credentials.
	if res, _ := authCall(t, srv, "OPTIONS", "/v1/agents", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("OPTIONS without preflight headers = %d, want 401", res.StatusCode)
	}
}
