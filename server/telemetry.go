package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/telemetry"
)

// Observability of a node: metrics (GET /metrics), traces, the access
// log (package telemetry) and the opt-in profiler.

// MetricsPath is where a node serves its Prometheus metrics.
const MetricsPath = "/metrics"

// newTelemetry makes the node's telemetry; sys, once set, feeds the
// active actors gauge.
func newTelemetry(cfg Config, log *slog.Logger, sys **actor.System) *telemetry.Telemetry {
	return telemetry.New(telemetry.Options{
		TracerProvider: cfg.TracerProvider,
		Logger:         log.With("component", "access"),
		ActiveActors: func() int {
			if *sys == nil {
				return 0
			}
			return (*sys).ActiveCount()
		},
	})
}

// observeStore has store report its commits to tel, if it can (SQLite
// and PostgreSQL do; the memory store does not).
func observeStore(store storage.Store, tel *telemetry.Telemetry) {
	if o, ok := store.(interface {
		SetCommitObserver(storage.CommitObserver)
	}); ok {
		o.SetCommitObserver(tel.Storage())
	}
}

// withTelemetry wraps the API handler: GET /metrics (behind the password,
// if there is one, unless cfg.MetricsPublic), and the telemetry
// middleware around everything.
func withTelemetry(cfg Config, tel *telemetry.Telemetry, apiHandler http.Handler) http.Handler {
	metrics := tel.MetricsHandler()
	if !cfg.MetricsPublic {
		metrics = api.RequirePassword(cfg.Password, metrics)
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == MetricsPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			r.Pattern = "GET " + MetricsPath
			metrics.ServeHTTP(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	})
	router, _ := apiHandler.(telemetry.Router)
	return tel.Middleware(mux, router)
}

// pprofServer serves net/http/pprof on its own listener.
type pprofServer struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// listenPprof opens the profiler's listener on addr; nil if addr is
// empty (the default: no profiler).
func listenPprof(addr string) (*pprofServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for the profiler (--pprof-addr): %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &pprofServer{http: &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout}, ln: ln, done: make(chan struct{})}, nil
}

// serve runs the profiler until close.
func (p *pprofServer) serve(log *slog.Logger) {
	defer close(p.done)
	if err := p.http.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
		log.Error("pprof server stopped", "err", err)
	}
}

// close stops the profiler at once: a profile being taken is cut off.
func (p *pprofServer) close() {
	if p == nil {
		return
	}
	p.http.Close()
	<-p.done
}

// addr returns the profiler's address, or "" when there is none.
func (p *pprofServer) addr() string {
	if p == nil {
		return ""
	}
	return p.ln.Addr().String()
}
