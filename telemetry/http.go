package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDHeader carries a request's ID, in both directions: a sane
// incoming one is kept, otherwise one is made; the response echoes it.
const RequestIDHeader = "X-Request-Id"

// requestIDBytesMax bounds an incoming request ID kept as it is.
const requestIDBytesMax = 128

// Route label values of requests no route pattern names.
const (
	// RouteUnmatched labels a request no route matched (a 404 or 405).
	RouteUnmatched = "unmatched"
)

// accessLogLevel is the level of the access log's lines.
const accessLogLevel = slog.LevelInfo

// propagator reads the W3C traceparent header of incoming requests.
var propagator = propagation.TraceContext{}

// Router names the route pattern a request matches ("GET
// /v1/agents/{agent_id}"), or "" for none. The middleware asks it for
// requests answered before routing (a 401 from the password check);
// routed requests carry their pattern in http.Request.Pattern.
type Router interface {
	RoutePattern(r *http.Request) string
}

type requestIDKey struct{}

// RequestID returns the ID of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Middleware wraps next: each request gets a request ID (echoed in
// X-Request-Id), a server span (continuing an incoming traceparent), a
// count and a latency in the HTTP metrics by route pattern, method and
// status, and one access log line. router, if not nil, names the routes
// of requests next answers before routing them.
func (t *Telemetry) Middleware(next http.Handler, router Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get(RequestIDHeader))
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
		method := methodLabel(r.Method)
		ctx, span := t.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path), attribute.String("kelpie.request_id", id)))
		r = r.WithContext(ctx)
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			// A panic net/http recovers (http.ErrAbortHandler) still
			// gets its line and its count.
			route := r.Pattern
			if route == "" && router != nil {
				route = router.RoutePattern(r)
			}
			route = routeLabel(route)
			status := rw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http answers 200
			}
			d := time.Since(start)
			t.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			t.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
			span.SetName(method + " " + route)
			span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
			t.log.LogAttrs(ctx, accessLogLevel, "request",
				slog.String("method", r.Method), slog.String("route", route), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.Int64("bytes", rw.bytes),
				slog.String("request_id", id))
		}()
		next.ServeHTTP(rw, r)
	})
}

// requestID returns incoming if it is a sane request ID (1 to
// requestIDBytesMax bytes of letters, digits and "-_.:"), or else a new
// random one (32 hex digits).
func requestID(incoming string) string {
	if incoming != "" && len(incoming) <= requestIDBytesMax && strings.IndexFunc(incoming, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':')
	}) < 0 {
		return incoming
	}
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand.Read panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// methodLabel bounds the method label: the standard methods, or "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// routeLabel is the route label of a mux pattern: its path without the
// method (the method is a label of its own) and without the "/{$}" of
// the trailing-slash form the API registers beside each route, or
// RouteUnmatched.
func routeLabel(pattern string) string {
	if pattern == "" {
		return RouteUnmatched
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		pattern = strings.TrimLeft(pattern[i+1:], " \t")
	}
	if p, ok := strings.CutSuffix(pattern, "/{$}"); ok {
		pattern = p
	}
	return pattern
}

// responseWriter records the status and the body's size. It passes
// Flush on (an SSE stream's events go out as written) and unwraps for
// http.ResponseController (Flush, SetWriteDeadline, Hijack, …).
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(status int) {
	if w.status == 0 && (status >= 200 || status == http.StatusSwitchingProtocols) {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher, for handlers that assert it.
func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
