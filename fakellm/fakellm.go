// Package fakellm is a deterministic OpenAI-compatible model server for
// tests, demos and CI. It answers chat completions (JSON and SSE
// streaming, with tool calls), embeddings and the model list, so an agent
// server such as Kelpie can run its agent loop end to end without a real
// model.
//
// # The model
//
// Without instructions the fake model answers one turn so that a Letta
// agent loop ends cleanly:
//
//   - last message from the user, send_message offered: call send_message
//     with {"message": "Echo: <user text>"};
//   - last message from the user, no send_message: reply "Echo: <user text>";
//   - last message a tool result: call send_message with {"message": "Done."}
//     if it is offered and was not called since the last user message,
//     otherwise reply "OK".
//
// Text between <system-reminder> and </system-reminder> in a user message
// is not the user's: clients such as letta-code wrap the context they add
// to every message (device, agent, permission mode) so. The fake model
// ignores those blocks when it echoes, reads directives and matches script
// rules.
//
// # Directives
//
// Lines of the last user message that start with a directive steer the
// reply to that message (the first model call after it; once a tool result
// comes back the default behaviour resumes). Other lines are the user's
// text. A user message packed the way Letta packs them,
// {"type": "user_message", "message": "..."}, is read as its "message".
//
//	@tool NAME {"json": "args"}   call tool NAME with these arguments ({} if none);
//	                              several @tool lines make several calls in one reply
//	@reply some text              reply with this text (with @tool: text and calls)
//	@error 429 [message]          answer with this HTTP error, OpenAI's error shape
//	                              (429 adds Retry-After: 1)
//	@sleep 200ms                  delay the reply (Go duration or milliseconds; at most 30s)
//
// # Script
//
// A [Script] is an ordered list of rules; the first rule that matches the
// request and has uses left decides the reply. Directives win over the
// script, and the script over the default behaviour.
//
// # Summaries
//
// A request that offers no tools and whose system message asks to
// summarise (it mentions "summar") is a summarizer's: the fake model
// answers with a short deterministic digest of the last user message,
// "Summary (N lines): " and its first words, so an agent server's
// compaction can run against it.
//
// Directives and script rules are obeyed whatever the request's
// tool_choice says, and may call tools the request does not offer (to
// test how a client copes); tool_choice "none", "required" or a named
// function shapes only the default behaviour.
//
// Requests are checked as OpenAI checks them, tool results answering the
// calls before them included; a bad request gets a 400 in OpenAI's error
// shape, {"error": {"message", "type", "param", "code"}}.
//
// Everything is deterministic: response and tool-call IDs are hashes of
// the request, token counts are word counts divided by 0.75, embeddings
// are hashed bags of words.
package fakellm

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults.
const (
	// DefaultChatModel and DefaultEmbeddingModel are the model IDs listed
	// when Options names none.
	DefaultChatModel      = "fake-model"
	DefaultEmbeddingModel = "fake-embedding"
	// DefaultDimensions is the length of embedding vectors when a request
	// does not ask for another.
	DefaultDimensions = 64
	// MaxDimensions bounds the dimensions a request may ask for.
	MaxDimensions = 4096
	// MaxSleep bounds the delay a directive or rule may ask for.
	MaxSleep = 30 * time.Second
)

// Fixed response metadata, so that identical requests get identical
// responses.
const (
	created           = 1735689600 // 2025-01-01T00:00:00Z
	systemFingerprint = "fp_kelpie_fake"
	ownedBy           = "kelpie"
	maxBodyBytes      = 32 << 20
	maxEmbedInputs    = 2048
	// contextWindow is listed for chat models in the non-standard
	// "context_window" field that model-list readers (Kelpie's among them)
	// look for.
	contextWindow = 128000
)

// Options configures a Server. The zero value is a working fake.
type Options struct {
	// Script, if set, scripts replies; see [Script].
	Script *Script
	// ChatModels and EmbeddingModels are the model IDs GET /v1/models
	// lists (default "fake-model" and "fake-embedding"). Requests may name
	// any model; the response echoes the name requested.
	ChatModels      []string
	EmbeddingModels []string
	// Dimensions is the embedding length when a request gives no
	// "dimensions" (default 64).
	Dimensions int
	// Logger, if set, gets one line per request.
	Logger *slog.Logger
	// ContextWindow, if set, is the chat models' context window in
	// tokens: listed in GET /v1/models, and enforced the way OpenAI
	// enforces it. A chat request counts one token per four bytes of its
	// messages and tools, its usage reports that count,
	// and a request over the window gets a 400 with code
	// context_length_exceeded. Without it, 128000 is listed and nothing
	// is enforced.
	ContextWindow int
}

// Server is the fake model server, an http.Handler. It is safe for
// concurrent use.
type Server struct {
	opts Options

	mu   sync.Mutex
	used []int // uses of each script rule
}

// New returns a Server with opts. It panics if opts.Script fails
// [Script.Validate].
func New(opts Options) *Server {
	if opts.Script != nil {
		if err := opts.Script.Validate(); err != nil {
			panic("fakellm: " + err.Error())
		}
	}
	if len(opts.ChatModels) == 0 {
		opts.ChatModels = []string{DefaultChatModel}
	}
	if len(opts.EmbeddingModels) == 0 {
		opts.EmbeddingModels = []string{DefaultEmbeddingModel}
	}
	if opts.Dimensions <= 0 {
		opts.Dimensions = DefaultDimensions
	}
	s := &Server{opts: opts}
	if opts.Script != nil {
		s.used = make([]int, len(opts.Script.Rules))
	}
	return s
}

// ServeHTTP implements http.Handler. Every route is served both under /v1
// and without that prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	note := s.route(rec, r)
	if s.opts.Logger != nil {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start).Round(time.Microsecond)}
		if note != "" {
			attrs = append(attrs, "reply", note)
		}
		s.opts.Logger.Info("fake LLM request", attrs...)
	}
}

// route dispatches r and returns a note on the reply for the log.
func (s *Server) route(w http.ResponseWriter, r *http.Request) string {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if p, ok := strings.CutPrefix(path, "/v1"); ok && (p == "" || p[0] == '/') {
		path = p
	}
	switch {
	case path == "/chat/completions":
		if !allow(w, r, http.MethodPost) {
			return ""
		}
		return s.chat(w, r)
	case path == "/embeddings":
		if !allow(w, r, http.MethodPost) {
			return ""
		}
		s.embeddings(w, r)
	case path == "/models":
		if !allow(w, r, http.MethodGet) {
			return ""
		}
		s.models(w)
	case strings.HasPrefix(path, "/models/"):
		if !allow(w, r, http.MethodGet) {
			return ""
		}
		s.model(w, strings.TrimPrefix(path, "/models/"))
	default:
		writeError(w, &apiError{status: http.StatusNotFound, typ: typeInvalidRequest, code: "unknown_url",
			message: fmt.Sprintf("Invalid URL (%s %s). The fake LLM serves POST /v1/chat/completions, POST /v1/embeddings and GET /v1/models.", r.Method, r.URL.Path)})
	}
	return ""
}

// allow answers 405 unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, &apiError{status: http.StatusMethodNotAllowed, typ: typeInvalidRequest, code: "method_not_allowed",
		message: fmt.Sprintf("Method %s not allowed for %s; use %s.", r.Method, r.URL.Path, method)})
	return false
}

// model is an entry of the model list.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// ContextWindow is not OpenAI's; OpenAI clients ignore it.
	ContextWindow int `json:"context_window,omitempty"`
}

func (s *Server) modelIDs() []string {
	return append(append([]string(nil), s.opts.ChatModels...), s.opts.EmbeddingModels...)
}

// modelEntry describes the model id.
func (s *Server) modelEntry(id string) model {
	m := model{ID: id, Object: "model", Created: created, OwnedBy: ownedBy}
	for _, c := range s.opts.ChatModels {
		if c == id {
			m.ContextWindow = contextWindow
			if s.opts.ContextWindow > 0 {
				m.ContextWindow = s.opts.ContextWindow
			}
		}
	}
	return m
}

// models answers GET /v1/models.
func (s *Server) models(w http.ResponseWriter) {
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, id := range s.modelIDs() {
		list.Data = append(list.Data, s.modelEntry(id))
	}
	writeJSON(w, http.StatusOK, list)
}

// model answers GET /v1/models/{id}.
func (s *Server) model(w http.ResponseWriter, id string) {
	for _, m := range s.modelIDs() {
		if m == id {
			writeJSON(w, http.StatusOK, s.modelEntry(id))
			return
		}
	}
	writeError(w, &apiError{status: http.StatusNotFound, typ: typeInvalidRequest, code: "model_not_found",
		message: fmt.Sprintf("The model '%s' does not exist. This fake LLM lists: %s.", id, strings.Join(s.modelIDs(), ", "))})
}

// Error types, as OpenAI names them.
const (
	typeInvalidRequest = "invalid_request_error"
	typeServer         = "server_error"
)

// apiError is an error answered in OpenAI's shape:
// {"error":{"message","type","param","code"}}.
type apiError struct {
	status  int
	message string
	typ     string
	param   string
	code    string
}

func (e *apiError) Error() string { return e.message }

// badRequest returns a 400 invalid_request_error.
func badRequest(param, code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, param: param, code: code, message: fmt.Sprintf(format, args...)}
}

// statusError returns the error a directive or rule asks for: status
// with OpenAI's type and code for it, and message or a default one.
func statusError(status int, message string) *apiError {
	e := &apiError{status: status, message: message, typ: typeInvalidRequest}
	def := http.StatusText(status)
	switch {
	case status == http.StatusUnauthorized:
		e.code = "invalid_api_key"
		def = "Incorrect API key provided."
	case status == http.StatusForbidden:
		e.typ, e.code = "permission_error", "unsupported_country_region_territory"
	case status == http.StatusNotFound:
		e.code = "model_not_found"
	case status == http.StatusTooManyRequests:
		e.typ, e.code = "requests", "rate_limit_exceeded"
		def = "Rate limit reached for requests (fake LLM). Please try again in 1s."
	case status >= 500:
		e.typ = typeServer
		def = "The server had an error while processing your request. Sorry about that! (fake LLM)"
	}
	if e.message == "" {
		e.message = def
	}
	return e
}

// writeError answers e in OpenAI's error shape.
func writeError(w http.ResponseWriter, e *apiError) {
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	nullable := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = e.message, e.typ
	body.Error.Param, body.Error.Code = nullable(e.param), nullable(e.code)
	writeJSON(w, e.status, body)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"fake LLM: encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decodeBody decodes r's JSON body into v, answering 400 on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = fmt.Errorf("unexpected data after the JSON value")
	}
	if err != nil {
		writeError(w, badRequest("", "invalid_json",
			"We could not parse the JSON body of your request: %v. The API expects a JSON object, sent with Content-Type: application/json.", err))
		return false
	}
	return true
}

// recorder remembers the status a handler answers.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the writer's Flush.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
