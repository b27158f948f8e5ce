package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/telemetry"
)

// startNode starts a node on SQLite in a temporary directory (so commits
// are observed) with the echo model, and returns it.
func startNode(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if cfg.Model == nil {
		cfg.Model = llmtest.Echo()
	}
	cfg.ToolSandbox, cfg.DataDir = SandboxNone, t.TempDir()
	logger := cfg.Logger
	cfg = quietConfig(cfg)
	if logger != nil {
		cfg.Logger = logger
	}
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// get sends GET base+path with the headers and returns the response, its
// body read.
func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// sendEcho creates an agent and sends it one message; it returns the
// agent's ID.
func sendEcho(t *testing.T, base string) string {
	t.Helper()
	ag := apiOK[struct{ ID string }](t, base, "POST", "/v1/agents", map[string]any{"name": "observed", "model": "openai/gpt-4o-mini"})
	apiOK[map[string]any](t, base, "POST", "/v1/agents/"+ag.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello"}}})
	return ag.ID
}

// TestMetricsAfterSend: after a send to the fake model, /metrics counts
// the request by its route pattern, the run and its step by stop reason,
// the model call by provider and model, the tool call, the activation
// and the SQLite commits and their fsyncs.
func TestMetricsAfterSend(t *testing.T) {
	s := startNode(t, Config{})
	base := "http://" + s.Addr()
	sendEcho(t, base)
	res, body := get(t, base+MetricsPath, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", res.StatusCode, body)
	}
	for _, want := range []string{
		`kelpie_http_requests_total{method="POST",route="/v1/agents/{agent_id}/messages",status="200"} 1`,
		`kelpie_http_requests_total{method="POST",route="/v1/agents",status="200"} 1`,
		`kelpie_http_request_duration_seconds_count{method="POST",route="/v1/agents/{agent_id}/messages"} 1`,
		`kelpie_runs_total{stop_reason="end_turn"} 1`,
		// Echo calls send_message, then ends the turn: two steps.
		`kelpie_steps_total{stop_reason="continue"} 1`,
		`kelpie_steps_total{stop_reason="end_turn"} 1`,
		`kelpie_model_calls_total{model="gpt-4o-mini",outcome="ok",provider="openai"} 2`,
		`kelpie_model_call_duration_seconds_count{model="gpt-4o-mini",provider="openai"} 2`,
		`kelpie_model_tokens_total{model="gpt-4o-mini",provider="openai",type="prompt"}`,
		`kelpie_tool_calls_total{kind="agent"} 1`,
		`kelpie_actor_activations_total 1`,
		`kelpie_actors_active 1`,
		`kelpie_storage_commits_total{backend="sqlite",outcome="ok"}`,
		`kelpie_storage_fsyncs_total{backend="sqlite"}`,
		`kelpie_storage_batch_requests_count{backend="sqlite"}`,
		`kelpie_actor_invocations_total{op="send",outcome="ok"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "kelpie_"))
	}
}

// grepLines returns body's lines containing s.
func grepLines(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetricsPassword: with a password, /metrics needs it like the API,
// unless MetricsPublic opens it; the health check stays open either way.
func TestMetricsPassword(t *testing.T) {
	auth := http.Header{"Authorization": {"Bearer sesame"}}
	closed := "http://" + startNode(t, Config{Password: "sesame"}).Addr()
	if res, body := get(t, closed+MetricsPath, nil); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "authentication required") {
		t.Errorf("GET /metrics without the password = %d %s, want 401", res.StatusCode, body)
	}
	if res, body := get(t, closed+MetricsPath, http.Header{"Authorization": {"Bearer wrong"}}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong password = %d %s, want 401", res.StatusCode, body)
	}
	res, body := get(t, closed+MetricsPath, auth)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `kelpie_http_requests_total{method="GET",route="/metrics",status="401"} 2`) {
		t.Errorf("GET /metrics with the password = %d, want 200 counting the two refusals:\n%s", res.StatusCode, grepLines(body, "http_requests"))
	}
	// A refused API request is labelled with the route it would match.
	get(t, closed+"/v1/agents", nil)
	if _, body := get(t, closed+MetricsPath, auth); !strings.Contains(body, `kelpie_http_requests_total{method="GET",route="/v1/agents",status="401"} 1`) {
		t.Errorf("a 401 from the API is not counted by its route:\n%s", grepLines(body, "http_requests"))
	}

	open := "http://" + startNode(t, Config{Password: "sesame", MetricsPublic: true}).Addr()
	if res, _ := get(t, open+MetricsPath, nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics with MetricsPublic = %d, want 200", res.StatusCode)
	}
	if res, _ := get(t, open+"/v1/agents", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("MetricsPublic opened the API too: GET /v1/agents = %d", res.StatusCode)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(s.b.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(l, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLog: each request gets one access log line with its method,
// route, status, duration, size and the request ID the response echoes
// (the client's own when it sent a sane one).
func TestAccessLog(t *testing.T) {
	var logs syncBuffer
	s := startNode(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	base := "http://" + s.Addr()
	res, body := get(t, base+"/v1/agents/agent-00000000-0000-4000-8000-000000000000", http.Header{telemetry.RequestIDHeader: {"client-id-7"}})
	if got := res.Header.Get(telemetry.RequestIDHeader); got != "client-id-7" {
		t.Errorf("X-Request-Id = %q, want the client's", got)
	}
	res2, _ := get(t, base+"/v1/health", nil)
	made := res2.Header.Get(telemetry.RequestIDHeader)
	if len(made) != 32 {
		t.Errorf("X-Request-Id = %q, want a made one", made)
	}
	find := func(id string) map[string]any {
		for _, l := range logs.lines() {
			if l["msg"] == "request" && l["request_id"] == id {
				return l
			}
		}
		return nil
	}
	l := find("client-id-7")
	if l == nil || l["component"] != "access" || l["method"] != "GET" || l["route"] != "/v1/agents/{agent_id}" ||
		l["status"] != float64(res.StatusCode) || l["bytes"] != float64(len(body)) || l["duration_ms"] == nil {
		t.Errorf("access log line %v, want GET /v1/agents/{agent_id} %d %d bytes", l, res.StatusCode, len(body))
	}
	if l := find(made); l == nil || l["route"] != "/v1/health" || l["status"] != float64(200) {
		t.Errorf("access log line %v, want the health check's", l)
	}
}

// TestPprof: the profiler is off by default (and never on the API's
// listener), and on its own listener with PprofAddr.
func TestPprof(t *testing.T) {
	off := startNode(t, Config{})
	if off.PprofAddr() != "" {
		t.Errorf("PprofAddr() = %q by default, want none", off.PprofAddr())
	}
	if res, _ := get(t, "http://"+off.Addr()+"/debug/pprof/cmdline", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("the API serves /debug/pprof/cmdline: %d", res.StatusCode)
	}
	on := startNode(t, Config{PprofAddr: "127.0.0.1:0"})
	if on.PprofAddr() == "" || on.PprofAddr() == on.Addr() {
		t.Fatalf("PprofAddr() = %q (API %s), want a listener of its own", on.PprofAddr(), on.Addr())
	}
	res, body := get(t, "http://"+on.PprofAddr()+"/debug/pprof/cmdline", nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "server.test") {
		t.Errorf("GET /debug/pprof/cmdline = %d %q", res.StatusCode, body)
	}
	if res, _ := get(t, "http://"+on.Addr()+"/debug/pprof/cmdline", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("the API serves /debug/pprof/cmdline with PprofAddr: %d", res.StatusCode)
	}
}

// TestTraceSpans: with a tracer, a send is one trace: the HTTP server
// span, the actor invocations, the model call and the commits, the model
// call (made by the run's driver, outside the request) under the HTTP
// span.
func TestTraceSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	s := startNode(t, Config{TracerProvider: telemetry.NewTracerProvider(sdktrace.WithSyncer(exp))})
	base := "http://" + s.Addr()
	sendEcho(t, base)
	spans := exp.GetSpans()
	byID := make(map[trace.SpanID]tracetest.SpanStub)
	var httpSpan, modelSpan *tracetest.SpanStub
	for i, sp := range spans {
		byID[sp.SpanContext.SpanID()] = sp
		switch sp.Name {
		case "POST /v1/agents/{agent_id}/messages":
			httpSpan = &spans[i]
		case "llm.call":
			modelSpan = &spans[i]
		}
	}
	if httpSpan == nil || modelSpan == nil {
		t.Fatalf("spans %v: want the send's HTTP span and a model call", names(spans))
	}
	tid := httpSpan.SpanContext.TraceID()
	var chain []string
	for sp, ok := *modelSpan, true; ok; sp, ok = byID[sp.Parent.SpanID()] {
		chain = append(chain, sp.Name)
		if sp.SpanContext.SpanID() == httpSpan.SpanContext.SpanID() {
			break
		}
	}
	if chain[len(chain)-1] != httpSpan.Name || modelSpan.SpanContext.TraceID() != tid {
		t.Errorf("model call's ancestors %v: want them to reach the HTTP span", chain)
	}
	var commits, invokes int
	for _, sp := range spans {
		if sp.SpanContext.TraceID() != tid {
			continue
		}
		switch {
		case sp.Name == "storage.commit":
			commits++
		case strings.HasPrefix(sp.Name, "actor.invoke "):
			invokes++
		}
	}
	if commits == 0 || invokes < 3 { // send, prepare, apply
		t.Errorf("in the send's trace: %d commits, %d actor invocations; spans %v", commits, invokes, names(spans))
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
