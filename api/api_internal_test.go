package api

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
)

// TestPathValues checks that routed handlers see their pattern's path
// values (ServeHTTP must dispatch through the mux, not call the matched
// handler directly).
func TestPathValues(t *testing.T) {
	h := New(nil).(*handler)
	var got string
	h.route("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		got = r.PathValue("id")
		writeJSON(w, http.StatusOK, map[string]string{})
	})
	for _, path := range []string{"/v1/things/abc", "/v1/things/abc/"} {
		got = ""
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK || got != "abc" {
			t.Errorf("GET %s: status %d, id %q; want 200, \"abc\"", path, rec.Code, got)
		}
	}
}

func TestPanicIs500JSON(t *testing.T) {
	h := New(nil, WithLogger(slog.New(slog.DiscardHandler))).(*handler)
	h.route("GET /v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/boom", nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	var m map[string]string
	if res.StatusCode != http.StatusInternalServerError || json.Unmarshal(body, &m) != nil || m["detail"] != "Internal Server Error" {
		t.Errorf("status %d body %s; want 500 {\"detail\":\"Internal Server Error\"}", res.StatusCode, body)
	}
}

// TestBusyRetryAfter: a 409 for a busy agent (mailbox full, or a run in
// progress) tells the client when to retry.
func TestBusyRetryAfter(t *testing.T) {
	h := New(nil, WithLogger(slog.New(slog.DiscardHandler))).(*handler)
	for _, err := range []error{
		fmt.Errorf("%w: agents/agent-x has 64 messages queued", actor.ErrBusy),
		&agent.BusyError{RunID: "run-1"},
	} {
		rec := httptest.NewRecorder()
		h.fail(rec, httptest.NewRequest(http.MethodGet, "/v1/agents/x/context", nil), err)
		if rec.Code != http.StatusConflict || rec.Header().Get("Retry-After") != busyRetryAfterSeconds {
			t.Errorf("%v: status %d, Retry-After %q", err, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	rec := httptest.NewRecorder()
	h.fail(rec, httptest.NewRequest(http.MethodPost, "/v1/agents/", nil), agent.ErrAlreadyExists)
	if rec.Header().Get("Retry-After") != "" {
		t.Error("a conflict that retrying cannot fix has a Retry-After")
	}
}
