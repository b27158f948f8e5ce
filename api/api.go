// Package api is Kelpie's HTTP surface: the Letta REST API, served under
// /v1 so that existing Letta clients (the official SDKs, letta-code, raw
// HTTP) work against Kelpie unchanged.
//
// Every route answers with and without a trailing slash, as Letta does.
// Errors are JSON objects of the form {"detail": <message>} with the
// matching HTTP status: an unknown route is 404 {"detail":"Not Found"} and
// a known route with the wrong method is 405
// {"detail":"Method Not Allowed"} with an Allow header.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/mcpservers"
	"github.com/kelpie-ai/kelpie/service"
)

// Version is Kelpie's own version, printed by `kelpie version` and sent
// in the X-Kelpie-Version header of every response. Release builds set it
// at link time:
//
//	go build -ldflags "-X github.com/kelpie-ai/kelpie/api.Version=v1.2.3" ./cmd/kelpie
var Version = "dev"

// LettaAPIVersion is the version of the Letta API that Kelpie implements,
// reported by GET /v1/health as Letta reports its own server version.
// Clients gate features on it: letta-code warns about servers older than
// 0.16.6.
const LettaAPIVersion = "0.16.8"

// versionHeader carries Version on every response.
const versionHeader = "X-Kelpie-Version"

// Option configures the handler New returns.
type Option func(*options)

type options struct {
	log       *slog.Logger
	password  string
	models    ModelLister
	providers ProviderLister

	mcpServers *mcpservers.Registry
	mcpPool    *mcpclient.Pool
}

// ModelLister is what GET /v1/models reads: the configured providers'
// models (an *llm.Router is one).
type ModelLister interface {
	ModelsContext(ctx context.Context) []llm.ModelInfo
}

// WithModels serves GET /v1/models and /v1/models/embedding from m, if m
// lists models; otherwise both answer an empty list.
func WithModels(m any) Option {
	return func(o *options) {
		if l, ok := m.(ModelLister); ok {
			o.models = l
		}
	}
}

// WithLogger sets the logger for request failures (recovered panics).
// The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// handler serves the API.
type handler struct {
	svc       *service.Service
	log       *slog.Logger
	mux       *http.ServeMux
	auth      authenticator
	models    ModelLister
	providers ProviderLister

	mcpServers *mcpservers.Registry
	mcpPool    *mcpclient.Pool
}

// New returns the HTTP handler for the Kelpie API backed by svc. Only
// routes that need no service (health) work with a nil svc.
func New(svc *service.Service, opts ...Option) http.Handler {
	o := options{log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	h := &handler{svc: svc, log: o.log, mux: http.NewServeMux(), auth: newAuthenticator(o.password), models: o.models, providers: o.providers,
		mcpServers: o.mcpServers, mcpPool: o.mcpPool}
	h.route("GET /v1/health", h.health)
	h.route("GET /v1/models", h.listModels)
	h.route("GET /v1/models/embedding", h.listEmbeddingModels)
	h.route("GET /v1/models/embeddings", h.listEmbeddingModels)
	h.route("GET /v1/providers", h.listProviders)
	if svc != nil {
		h.route("POST /v1/agents", h.createAgent)
		h.route("GET /v1/agents", h.listAgents)
		h.route("GET /v1/agents/{agent_id}", h.getAgent)
		h.route("PATCH /v1/agents/{agent_id}", h.updateAgent)
		h.route("DELETE /v1/agents/{agent_id}", h.deleteAgent)
		h.route("GET /v1/agents/{agent_id}/core-memory/blocks", h.listBlocks)
		h.route("GET /v1/agents/{agent_id}/core-memory/blocks/{block_label}", h.getBlock)
		h.route("PATCH /v1/agents/{agent_id}/core-memory/blocks/{block_label}", h.updateBlock)
		h.memoryRoutes()
		h.route("GET /v1/agents/{agent_id}/messages", h.listMessages)
		h.route("POST /v1/agents/{agent_id}/messages", h.sendMessage)
		h.archivalRoutes()
		h.passagesRoutes()
		h.toolRoutes()
		h.runRoutes()
		h.conversationRoutes()
		h.blockRoutes()
		h.agentFileRoutes()
		h.toolRunRoutes()
		h.messageRoutes()
		h.agentOpRoutes()
		h.mcpRoutes()
		h.compactionRoutes()
	}
	return h
}

// route registers fn for pattern ("METHOD /path", no trailing slash) and
// for the same path with a trailing slash. The slash form is anchored with
// {$} so that it matches only itself, not the subtree below it.
func (h *handler) route(pattern string, fn http.HandlerFunc) {
	if strings.HasSuffix(pattern, "/") {
		panic("api: route pattern must not end in a slash: " + pattern)
	}
	h.mux.HandleFunc(pattern, fn)
	h.mux.HandleFunc(pattern+"/{$}", fn)
}

// ServeHTTP dispatches r, answering unmatched requests with JSON errors in
// Letta's shape instead of net/http's plain-text ones, and turning a
// handler panic into a 500 JSON error.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(versionHeader, Version)
	defer h.recoverPanic(w, r)
	if !h.auth.authorize(w, r) {
		return
	}
	next, pattern := h.mux.Handler(r)
	if pattern != "" {
		// Let the mux serve it: unlike calling next directly, that sets
		// r.Pattern and the path values handlers read with r.PathValue.
		h.mux.ServeHTTP(w, r)
		return
	}
	// No route matched. The mux's fallback decides between 404 and 405
	// (and computes the Allow header); run it against a recorder and
	// answer in JSON with the status it chose.
	rec := &statusRecorder{header: make(http.Header)}
	next.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeError(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	case http.StatusNotFound, 0:
		writeError(w, http.StatusNotFound, "Not Found")
	default: // a redirect or other answer the mux produced: pass it on
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
	}
}

// RoutePattern returns the pattern of the route r matches ("GET
// /v1/agents/{agent_id}"), or "" if none does: what telemetry labels a
// request with when it was answered before routing (a 401).
func (h *handler) RoutePattern(r *http.Request) string {
	_, pattern := h.mux.Handler(r)
	return pattern
}

// recoverPanic answers 500 {"detail": ...} when a handler panics. The
// response may already be partly written, in which case the status cannot
// change; the panic is logged either way. http.ErrAbortHandler is passed
// on, as net/http expects.
func (h *handler) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	h.log.Error("api: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
	writeError(w, http.StatusInternalServerError, "Internal Server Error")
}

// healthResponse is the body of GET /v1/health.
type healthResponse struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// health answers GET /v1/health: the server is up and serving. Its
// version is the Letta API version Kelpie implements (LettaAPIVersion);
// Kelpie's own is in the X-Kelpie-Version header.
func (h *handler) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok", Version: LettaAPIVersion})
}

// errorResponse is Letta's error body.
type errorResponse struct {
	Detail string `json:"detail"`
}

// validationError is one item of FastAPI's 422 body, which Letta's
// OpenAPI document declares for every validation failure.
type validationError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// writeQueryError answers 422 for a bad query parameter, located as
// FastAPI locates it: ["query", name].
func writeQueryError(w http.ResponseWriter, name, detail string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string][]validationError{"detail": {{Loc: []string{"query", name}, Msg: detail, Type: "value_error"}}})
}

// writeError writes {"detail": detail} with status; a 422 carries the
// detail in FastAPI's list form, {"detail": [{"loc", "msg", "type"}]},
// located in the body.
func writeError(w http.ResponseWriter, status int, detail string) {
	if status == http.StatusUnprocessableEntity {
		writeJSON(w, status, map[string][]validationError{"detail": {{Loc: []string{"body"}, Msg: detail, Type: "value_error"}}})
		return
	}
	writeJSON(w, status, errorResponse{Detail: detail})
}

// writeJSON writes v as a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"detail":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// statusRecorder captures the status and headers a fallback handler sets
// and discards its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(status int) {
	if s.status == 0 {
		s.status = status
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}
