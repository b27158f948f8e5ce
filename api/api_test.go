package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// newHandler returns the API over a real service on an in-memory store.
func newHandler(t *testing.T) http.Handler {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store})
	svc, err := service.New(r, store, sys, llm.Unconfigured{})
	if err != nil {
		t.Fatalf("service.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Shutdown(ctx); err != nil {
			t.Errorf("actor shutdown: %v", err)
		}
		store.Close()
	})
	return api.New(svc)
}

// do serves one request and returns the response and its body.
func do(t *testing.T, h http.Handler, method, path string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, body
}

// decode unmarshals body strictly into a map of strings, so an unexpected
// shape fails the test.
func decode(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", body, err)
	}
	return m
}

// Health reports the Letta API version Kelpie implements; Kelpie's own
// version is in a header of every response, errors included.
func TestHealth(t *testing.T) {
	old := api.Version
	api.Version = "v9.8.7-test"
	t.Cleanup(func() { api.Version = old })
	h := newHandler(t)

	for _, path := range []string{"/v1/health", "/v1/health/"} {
		t.Run(path, func(t *testing.T) {
			res, body := do(t, h, http.MethodGet, path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", res.StatusCode, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			conform(t, body, "Health", false)
			got := decode(t, body)
			want := map[string]string{"status": "ok", "version": "0.16.8"}
			if len(got) != len(want) || got["status"] != want["status"] || got["version"] != want["version"] {
				t.Errorf("body = %v, want %v", got, want)
			}
			if v := res.Header.Get("X-Kelpie-Version"); v != "v9.8.7-test" {
				t.Errorf("X-Kelpie-Version = %q, want v9.8.7-test", v)
			}
		})
	}
	for _, path := range []string{"/v1/nope", "/v1/agents/agent-1"} {
		if res, _ := do(t, h, http.MethodGet, path); res.Header.Get("X-Kelpie-Version") != "v9.8.7-test" {
			t.Errorf("GET %s: X-Kelpie-Version = %q, want it on errors too", path, res.Header.Get("X-Kelpie-Version"))
		}
	}
}

func TestErrors(t *testing.T) {
	h := newHandler(t)
	tests := []struct {
		method, path string
		status       int
		detail       string
	}{
		{http.MethodGet, "/", http.StatusNotFound, "Not Found"},
		{http.MethodGet, "/v1/nope", http.StatusNotFound, "Not Found"},
		{http.MethodGet, "/v1/nope/", http.StatusNotFound, "Not Found"},
		{http.MethodGet, "/v1/health/extra", http.StatusNotFound, "Not Found"},
		{http.MethodPost, "/v1/nope", http.StatusNotFound, "Not Found"},
		{http.MethodPost, "/v1/health", http.StatusMethodNotAllowed, "Method Not Allowed"},
		{http.MethodDelete, "/v1/health/", http.StatusMethodNotAllowed, "Method Not Allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res, body := do(t, h, tc.method, tc.path)
			if res.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			got := decode(t, body)
			if len(got) != 1 || got["detail"] != tc.detail {
				t.Errorf("body = %s, want {\"detail\":%q}", body, tc.detail)
			}
			if tc.status == http.StatusMethodNotAllowed {
				if allow := res.Header.Get("Allow"); !strings.Contains(allow, http.MethodGet) {
					t.Errorf("Allow = %q, want it to list GET", allow)
				}
			}
		})
	}
}

// Routes letta-code probes that Letta 0.16.8 does not serve answer a JSON
// 404, so the client falls back cleanly.
func TestUnservedProbes(t *testing.T) {
	h := newHandler(t)
	id := "agent-00000000-0000-4000-8000-000000000000"
	for _, sub := range []string{"secrets", "mcp-servers", "repositories", "secrets/", "mcp-servers/", "repositories/"} {
		path := "/v1/agents/" + id + "/" + sub
		res, body := do(t, h, http.MethodGet, path)
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d (%s) %s, want a JSON 404", path, res.StatusCode, res.Header.Get("Content-Type"), body)
			continue
		}
		if got := decode(t, body); len(got) != 1 || got["detail"] != "Not Found" {
			t.Errorf("GET %s body = %s, want {\"detail\":\"Not Found\"}", path, body)
		}
	}
}
