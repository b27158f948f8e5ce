package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// testTimeout bounds each blocking step of these tests.
const testTimeout = 10 * time.Second

// TestMiddlewareStreams: an SSE handler behind the middleware reaches
// http.Flusher and http.ResponseController (Flush, SetWriteDeadline)
// through the wrapper, and each event reaches the client while the
// handler is still running.
func TestMiddlewareStreams(t *testing.T) {
	tel := New(Options{Logger: slog.New(slog.DiscardHandler)})
	next := make(chan struct{}, 2) // buffered: a handler that gave up does not block the client
	h := tel.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the middleware: %v", err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: one\n\n")
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("the middleware's writer is not an http.Flusher")
			return
		}
		f.Flush()
		<-next // the client has the first event
		io.WriteString(w, "data: two\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("ResponseController.Flush through the middleware: %v", err)
		}
		<-next
	}), nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rd := bufio.NewReader(res.Body)
	for _, want := range []string{"data: one", "data: two"} {
		line, err := rd.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != want {
			t.Fatalf("read %q, %v; want %q before the handler goes on", line, err, want)
		}
		rd.ReadString('\n') // the blank line ending the event
		next <- struct{}{}
	}
}

// TestMiddlewareCountsAndLogs: a request is counted by its route
// pattern (not its path), method and status, and logged once with the
// request ID the response echoes; a sane incoming ID is kept, others are
// replaced.
func TestMiddlewareCountsAndLogs(t *testing.T) {
	var logs bytes.Buffer
	tel := New(Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agents/{agent_id}", func(w http.ResponseWriter, r *http.Request) {
		if RequestID(r.Context()) == "" {
			t.Error("no request ID in the handler's context")
		}
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	})
	srv := httptest.NewServer(tel.Middleware(mux, nil))
	defer srv.Close()
	for _, tc := range []struct {
		incoming string
		kept     bool
	}{
		{"req-42.a:b_c", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("x", requestIDBytesMax+1), false},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/agents/agent-1", nil)
		if tc.incoming != "" {
			req.Header.Set(RequestIDHeader, tc.incoming)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		id := res.Header.Get(RequestIDHeader)
		switch {
		case tc.kept && id != tc.incoming:
			t.Errorf("incoming ID %q: response has %q, want it kept", tc.incoming, id)
		case !tc.kept && (id == tc.incoming || len(id) != 32):
			t.Errorf("incoming ID %q: response has %q, want a new 32-digit one", tc.incoming, id)
		}
		var line map[string]any
		last := bytes.TrimSpace(logs.Bytes())
		if i := bytes.LastIndexByte(last, '\n'); i >= 0 {
			last = last[i+1:]
		}
		if err := json.Unmarshal(last, &line); err != nil {
			t.Fatalf("access log %q: %v", logs.String(), err)
		}
		if line["msg"] != "request" || line["request_id"] != id || line["route"] != "/v1/agents/{agent_id}" || line["method"] != "GET" ||
			line["status"] != float64(http.StatusTeapot) || line["bytes"] != float64(len("short and stout")) || line["path"] != "/v1/agents/agent-1" {
			t.Errorf("access log line %v; want request %s", line, id)
		}
		if _, ok := line["duration_ms"].(float64); !ok {
			t.Errorf("access log line %v has no duration_ms", line)
		}
	}
	if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues("/v1/agents/{agent_id}", "GET", "418")); got != 4 {
		t.Errorf("kelpie_http_requests_total{route=/v1/agents/{agent_id}} = %v, want 4", got)
	}
	res, err := http.Post(srv.URL+"/nowhere", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := testutil.ToFloat64(tel.httpRequests.WithLabelValues(RouteUnmatched, "POST", "404")); got != 1 {
		t.Errorf("unmatched requests = %v, want 1", got)
	}
}

func TestRouteLabel(t *testing.T) {
	for in, want := range map[string]string{
		"GET /v1/agents/{agent_id}":     "/v1/agents/{agent_id}",
		"GET /v1/agents/{agent_id}/{$}": "/v1/agents/{agent_id}",
		"/v1/health":                    "/v1/health",
		"":                              RouteUnmatched,
	} {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
	if methodLabel("BREW") != "other" || methodLabel("PATCH") != "PATCH" {
		t.Error("methodLabel does not bound the method label")
	}
}

// TestModelLabelsBounded: model handles come from clients; past
// modelLabelsMax distinct ones they share the label "other".
func TestModelLabelsBounded(t *testing.T) {
	tel := New(Options{})
	if p, m := tel.modelLabels("openai/gpt-4o-mini"); p != "openai" || m != "gpt-4o-mini" {
		t.Errorf("labels of openai/gpt-4o-mini = %s, %s", p, m)
	}
	if p, m := tel.modelLabels(""); p != "default" || m != "default" {
		t.Errorf("labels of the default model = %s, %s", p, m)
	}
	for i := range modelLabelsMax {
		tel.modelLabels("p/m" + strings.Repeat("x", i))
	}
	if p, m := tel.modelLabels("new/one"); p != "other" || m != "other" {
		t.Errorf("labels past the bound = %s, %s; want other, other", p, m)
	}
	if p, m := tel.modelLabels("openai/gpt-4o-mini"); p != "openai" || m != "gpt-4o-mini" {
		t.Errorf("a model seen before the bound lost its labels: %s, %s", p, m)
	}
}

// TestTracingFromEnv: without the OTLP endpoint tracing is a no-op (no
// span records anything); with it the SDK exports.
func TestTracingFromEnv(t *testing.T) {
	ctx := context.Background()
	off, err := TracingFromEnv(ctx, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	_, span := off.Provider.Tracer("test").Start(ctx, "x")
	if off.Enabled || span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("tracing without %s: enabled %v, span recording %v", EnvOTLPEndpoint, off.Enabled, span.IsRecording())
	}
	span.End()
	if err := off.Shutdown(ctx); err != nil {
		t.Errorf("shutdown of the no-op tracer: %v", err)
	}

	t.Setenv(EnvOTLPEndpoint, "http://127.0.0.1:1") // the exporter reads the environment itself
	on, err := TracingFromEnv(ctx, func(k string) string {
		if k == EnvOTLPEndpoint {
			return "http://127.0.0.1:1"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := on.Provider.(*sdktrace.TracerProvider); !ok || !on.Enabled || on.Endpoint != "http://127.0.0.1:1" {
		t.Errorf("tracing with %s: %+v", EnvOTLPEndpoint, on)
	}
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	on.Shutdown(sctx) // nothing listens there: only bounded
}

// TestMiddlewareSpans: with an SDK tracer the middleware records a server
// span named by method and route, continuing an incoming traceparent.
func TestMiddlewareSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := New(Options{Logger: slog.New(slog.DiscardHandler), TracerProvider: NewTracerProvider(sdktrace.WithSyncer(exp))})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/agents/{agent_id}/messages", func(w http.ResponseWriter, r *http.Request) {})
	srv := httptest.NewServer(tel.Middleware(mux, nil))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/agents/a/messages", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "POST /v1/agents/{agent_id}/messages" || s.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("span %q trace %s parent %s; want the route's name in the incoming trace", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID())
	}
}
