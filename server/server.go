// Package server assembles one Kelpie node (the production runtime, a
// storage backend, the actor system, the agent service and the HTTP API),
// serves until told to stop, and then shuts down in order: refuse new
// runs and let those in flight finish (bounded; past the bound they are
// interrupted, to resume at the next start), stop accepting HTTP requests
// and finish the ones in flight, drain the actors' mailboxes, close the
// store. At start it resumes the runs a crash or a shutdown interrupted.
//
// `kelpie serve` is a thin command-line shell over Run; tests start a
// node in-process with Start.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/mcpservers"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/postgres"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// Defaults for Config fields left zero.
const (
	// DefaultAddr is the HTTP listen address: loopback only, Letta's port.
	DefaultAddr = "127.0.0.1:8283"
	// DefaultDataDir holds the SQLite database when no storage is given.
	DefaultDataDir = "./kelpie-data"
	// DefaultStartTimeout bounds opening the store (connecting to
	// PostgreSQL, migrating the schema).
	DefaultStartTimeout = 30 * time.Second
	// DefaultHTTPShutdownTimeout bounds waiting for in-flight HTTP
	// requests at shutdown; connections still busy after it are closed.
	DefaultHTTPShutdownTimeout = 15 * time.Second
	// DefaultDrainTimeout bounds, at shutdown, letting the runs in flight
	// finish, and then again draining the actors' mailboxes.
	DefaultDrainTimeout = 30 * time.Second
)

// HTTP server limits.
const (
	// readHeaderTimeout bounds reading a request's headers.
	readHeaderTimeout = 10 * time.Second
	// idleConnTimeout closes keep-alive connections idle this long.
	idleConnTimeout = 120 * time.Second
	// tasksJoinTimeout bounds waiting, after the actors drained, for the
	// runtime's remaining tasks to return.
	tasksJoinTimeout = 5 * time.Second
)

// Config configures a node. Zero fields take the defaults above.
type Config struct {
	// Addr is the HTTP listen address, host:port. Port 0 picks a free
	// port; Server.Addr reports it.
	Addr string
	// DataDir is the directory of the default SQLite database.
	DataDir string
	// Storage selects the backend; see ParseStorage. Empty means SQLite in
	// DataDir.
	Storage string
	// Password, when not empty, must accompany every API request except
	// the health check (as "Authorization: Bearer <password>"); see
	// api.WithPassword.
	Password string
	// Model is the LLM client agents use; nil means llm.Unconfigured.
	// If it is also an llm.Embedder (a Router is), it computes the
	// embeddings of archival memory.
	Model llm.Client
	// EmbeddingModel is the embedding model handle given to agents created
	// without one ("openai/text-embedding-3-small"); empty for none, which
	// leaves such agents on full-text archival search. Start fails if
	// Model cannot embed with it.
	EmbeddingModel string
	// ContextWindow is the context window, in tokens, of models whose
	// provider does not list one (agent.DefaultContextWindow if 0).
	ContextWindow int
	// WebTools executes fetch_webpage and web_search; nil: a call to one
	// gets a tool error.
	WebTools toolexec.Executor
	// ToolSandbox is how custom tools and run_code run: SandboxBwrap (the
	// default) or SandboxNone (see those). Where bubblewrap cannot run,
	// SandboxBwrap starts anyway and such calls get a tool error saying
	// why and what to do.
	ToolSandbox string
	// PipIndexURL is the package index custom tools' pip_requirements are
	// installed from (cached per set of requirements under DataDir);
	// empty: such tools fail, naming the requirement.
	PipIndexURL string
	// MCPAllowStdio lets users register stdio MCP servers: commands this
	// server runs as its own user. Off by default; sse and
	// streamable_http servers are always allowed.
	MCPAllowStdio bool
	// MCPCallTimeout bounds one MCP tool call; zero means
	// mcpclient.DefaultCallTimeout. A call that runs out of it is a tool
	// error the model sees.
	MCPCallTimeout time.Duration
	// MCPHTTPClient is the base HTTP client for sse and streamable_http
	// MCP servers (see mcpclient.Options.HTTPClient); nil: the pool's own.
	MCPHTTPClient *http.Client
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// StartTimeout bounds opening the store.
	StartTimeout time.Duration
	// HTTPShutdownTimeout bounds finishing in-flight requests at shutdown.
	HTTPShutdownTimeout time.Duration
	// DrainTimeout bounds, at shutdown, waiting for the runs in flight to
	// finish (new sends are refused with 503 meanwhile); runs still going
	// then are interrupted, their callers told, and they resume at the
	// next start. It bounds draining the actors' mailboxes afterwards too.
	DrainTimeout time.Duration
	// MetricsPublic serves GET /metrics without the password; by default
	// it needs the password like the API (when one is set).
	MetricsPublic bool
	// PprofAddr, if set, serves net/http/pprof (/debug/pprof/) on its own
	// listener at this host:port; empty (the default) for none.
	PprofAddr string
	// TracerProvider makes the node's tracer (see telemetry.TracingFromEnv);
	// nil traces nothing.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Model == nil {
		c.Model = llm.Unconfigured{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.HTTPShutdownTimeout <= 0 {
		c.HTTPShutdownTimeout = DefaultHTTPShutdownTimeout
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	return c
}

// ListenError reports that the HTTP listener could not be opened (the
// port is taken, the address is malformed, or the port is privileged).
type ListenError struct {
	// Addr is the address that was requested.
	Addr string
	// Err is the error from net.Listen.
	Err error
}

// Error implements error.
func (e *ListenError) Error() string { return fmt.Sprintf("cannot listen on %s: %v", e.Addr, e.Err) }

// Unwrap returns the underlying error.
func (e *ListenError) Unwrap() error { return e.Err }

// EmbeddingError reports that the default embedding model cannot be used:
// no configured provider has it (or any embeddings endpoint).
type EmbeddingError struct {
	// Model is the handle that was configured.
	Model string
	// Err is the model client's error.
	Err error
}

// Error implements error.
func (e *EmbeddingError) Error() string {
	return fmt.Sprintf("default embedding model %q: %v", e.Model, e.Err)
}

// Unwrap returns the underlying error.
func (e *EmbeddingError) Unwrap() error { return e.Err }

// StorageError reports that the store could not be opened.
type StorageError struct {
	// Spec is the store that was requested.
	Spec StorageSpec
	// Err is the backend's error.
	Err error
}

// Error implements error.
func (e *StorageError) Error() string {
	return fmt.Sprintf("cannot open storage (%s): %v", e.Spec, e.Err)
}

// Unwrap returns the underlying error.
func (e *StorageError) Unwrap() error { return e.Err }

// Server is a running node. Start it with Start, stop it with Shutdown.
type Server struct {
	cfg   Config
	log   *slog.Logger
	spec  StorageSpec
	rt    *rt.System
	store storage.Store
	sys   *actor.System
	svc   *service.Service
	mcp   *mcpclient.Pool
	http  *http.Server
	ln    net.Listener
	pprof *pprofServer // nil unless Config.PprofAddr

	serveDone chan struct{} // closed when http.Serve returns
	serveErr  error         // set before serveDone closes; nil after Shutdown

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens the listener and the store, wires the actor system, the
// agent service and the API, and starts serving. ctx bounds startup only
// (with Config.StartTimeout); the node runs until Shutdown.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if cfg.EmbeddingModel != "" {
		// Before anything is opened: a default no provider serves is a
		// configuration error.
		e, _ := cfg.Model.(llm.Embedder)
		if err := llm.CheckEmbeddingModel(ctx, e, cfg.EmbeddingModel); err != nil {
			return nil, &EmbeddingError{Model: cfg.EmbeddingModel, Err: err}
		}
	}
	spec, err := ParseStorage(cfg.Storage, cfg.DataDir)
	if err != nil {
		return nil, err
	}

	// Listen first: a taken port is the commonest failure, and finding it
	// before touching storage leaves no database file behind.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, &ListenError{Addr: cfg.Addr, Err: err}
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	pprofSrv, err := listenPprof(cfg.PprofAddr)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && pprofSrv != nil {
			pprofSrv.ln.Close()
		}
	}()
	var sys *actor.System
	tel := newTelemetry(cfg, log, &sys)

	log.Info("opening storage", "backend", spec.Backend, "location", spec.location())
	store, err := openStore(ctx, spec, cfg.StartTimeout)
	if err != nil {
		return nil, &StorageError{Spec: spec, Err: err}
	}
	observeStore(store, tel)
	defer func() {
		if err != nil {
			store.Close()
		}
	}()

	if cfg.ContextWindow < 0 || cfg.ContextWindow > agent.ContextWindowTokensMax {
		return nil, fmt.Errorf("--context-window %d: want 1..%d tokens (0 for the default, %d)", cfg.ContextWindow, agent.ContextWindowTokensMax, agent.DefaultContextWindow)
	}
	r := rt.NewSystem()
	sys = actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: log.With("component", "actor"), Observer: tel.Actors()})
	tools, err := newToolRouter(cfg, log)
	if err != nil {
		return nil, err
	}
	mcpPool := mcpclient.NewPool(mcpclient.Options{AllowStdio: cfg.MCPAllowStdio, HTTPClient: cfg.MCPHTTPClient, CallTimeout: cfg.MCPCallTimeout})
	defer func() {
		if err != nil {
			mcpPool.Close()
		}
	}()
	mcpServers := mcpservers.New(r, store, r.Rand("mcp_servers"), mcpservers.Options{AllowStdio: cfg.MCPAllowStdio})
	tools.mcpPool, tools.mcpServers = mcpPool, mcpServers
	if cfg.MCPAllowStdio {
		log.Warn("stdio MCP servers are ENABLED (--mcp-stdio): any API user can make this server run commands as its own user")
	} else {
		log.Info("stdio MCP servers are disabled (enable with --mcp-stdio or KELPIE_MCP_ALLOW_STDIO=1); sse and streamable_http servers are allowed")
	}
	svc, err := service.New(r, store, sys, cfg.Model, service.WithDefaultEmbedding(cfg.EmbeddingModel), service.WithToolExecutor(tools),
		service.WithContextWindowDefault(cfg.ContextWindow), service.WithObserver(tel.Service()))
	if err != nil {
		return nil, fmt.Errorf("start agent service: %w", err)
	}
	if cfg.EmbeddingModel != "" {
		log.Info("agents created without an embedding model get the default one", "embedding_model", cfg.EmbeddingModel)
	}
	if !llm.IsConfigured(cfg.Model) {
		log.Warn("no LLM provider configured: agents can be created and managed, but sending them messages fails; set OPENAI_API_KEY and/or OPENAI_BASE_URL, or ANTHROPIC_API_KEY")
	}

	// The runs a crash or a shutdown interrupted resume now, not when a
	// request happens to touch their agents.
	recovered, err := svc.RecoverRuns(ctx)
	if err != nil {
		return nil, fmt.Errorf("resume interrupted runs: %w", err)
	}
	if recovered > 0 {
		log.Info("resuming interrupted runs", "runs", recovered)
	}

	s := &Server{
		cfg: cfg, log: log, spec: spec, rt: r, store: store, sys: sys, svc: svc, ln: ln, mcp: mcpPool, pprof: pprofSrv,
		http: &http.Server{
			Handler: withTelemetry(cfg, tel, api.New(svc, api.WithLogger(log.With("component", "api")), api.WithPassword(cfg.Password), api.WithModels(cfg.Model), api.WithProviders(cfg.Model),
				api.WithMCP(mcpServers, mcpPool))),
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleConnTimeout,
			ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
		},
		serveDone: make(chan struct{}),
	}
	go s.serve()
	log.Info("listening", "addr", s.Addr(), "url", "http://"+s.Addr()+"/v1/health", "version", api.Version)
	if pprofSrv != nil {
		go pprofSrv.serve(log)
		log.Warn("pprof profiler listening (--pprof-addr): anyone who can reach it can profile this process", "url", "http://"+pprofSrv.addr()+"/debug/pprof/")
	}
	return s, nil
}

// openStore opens the backend spec selects, bounded by timeout.
func openStore(ctx context.Context, spec StorageSpec, timeout time.Duration) (storage.Store, error) {
	switch spec.Backend {
	case BackendMemory:
		return memory.New(), nil
	case BackendSQLite:
		return sqlite.Open(spec.Location)
	case BackendPostgres:
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return postgres.Open(ctx, spec.Location)
	default:
		return nil, fmt.Errorf("%w: unknown backend %q", ErrBadStorage, spec.Backend)
	}
}

// location is the spec's location as it may be logged.
func (s StorageSpec) location() string {
	switch s.Backend {
	case BackendMemory:
		return "(in memory; lost on exit)"
	case BackendPostgres:
		return redactURL(s.Location)
	default:
		return s.Location
	}
}

// serve runs the HTTP server until Shutdown or a listener failure.
func (s *Server) serve() {
	err := s.http.Serve(s.ln)
	if !errors.Is(err, http.ErrServerClosed) {
		s.serveErr = err
	}
	close(s.serveDone)
}

// Addr returns the address the server listens on, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// PprofAddr returns the profiler's address, host:port, or "" when
// Config.PprofAddr was empty.
func (s *Server) PprofAddr() string { return s.pprof.addr() }

// Storage returns the store the server uses.
func (s *Server) Storage() StorageSpec { return s.spec }

// Done is closed when the HTTP server stops serving, after Shutdown or
// because the listener failed; Err then tells which.
func (s *Server) Done() <-chan struct{} { return s.serveDone }

// Err returns the error that stopped the HTTP server on its own, or nil.
// It is meaningful once Done is closed.
func (s *Server) Err() error {
	select {
	case <-s.serveDone:
		return s.serveErr
	default:
		return nil
	}
}

// Shutdown stops the node. It refuses new runs (sends answer 503) and
// waits up to Config.DrainTimeout for the runs in flight to finish; runs
// still going then stop where they are (their callers get an error
// saying the server is shutting down) and stay in progress in storage,
// to resume at the next start. Then it stops accepting HTTP requests and
// waits for those in flight (closing connections still busy after
// Config.HTTPShutdownTimeout), drains the actors' mailboxes (bounded by
// Config.DrainTimeout), and closes the store. Every step runs even if an
// earlier one failed; the error joins their failures (interrupted runs
// are not one). ctx bounds the whole. Calling Shutdown again returns the
// first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	var errs []error

	began := time.Now()
	s.log.Info("shutdown: refusing new runs, waiting for those in flight", "timeout", s.cfg.DrainTimeout)
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	left := s.svc.Drain(dctx)
	cancel()
	if left > 0 {
		left = s.svc.Interrupt()
		s.log.Warn("shutdown: drain timeout reached; runs interrupted, they resume at the next start", "runs", left, "waited", time.Since(began).Round(time.Millisecond))
	} else {
		s.svc.Interrupt()
		s.log.Info("shutdown: runs drained", "waited", time.Since(began).Round(time.Millisecond))
	}

	s.log.Info("shutdown: stopping HTTP server", "timeout", s.cfg.HTTPShutdownTimeout)
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPShutdownTimeout)
	err := s.http.Shutdown(hctx)
	cancel()
	if err != nil {
		s.log.Error("shutdown: HTTP requests still running; closing their connections", "err", err)
		s.http.Close()
		errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
	}
	<-s.serveDone
	s.pprof.close()

	s.log.Info("shutdown: draining actors", "active", s.sys.ActiveCount(), "timeout", s.cfg.DrainTimeout)
	dctx, cancel = context.WithTimeout(ctx, s.cfg.DrainTimeout)
	err = s.sys.Shutdown(dctx)
	cancel()
	if err != nil {
		s.log.Error("shutdown: actors did not drain", "err", err)
		errs = append(errs, fmt.Errorf("drain actors: %w", err))
	} else {
		st := s.sys.Stats()
		s.log.Info("shutdown: actors drained", "activations", st.Activations, "invocations", st.Invocations)
		if !s.joinTasks(ctx) {
			s.log.Warn("shutdown: runtime tasks still running", "waited", tasksJoinTimeout)
		}
	}

	// After the actors: no run calls an MCP server any more.
	if err := s.mcp.Close(); err != nil {
		s.log.Error("shutdown: closing MCP connections failed", "err", err)
		errs = append(errs, fmt.Errorf("close MCP connections: %w", err))
	}

	s.log.Info("shutdown: closing storage", "backend", s.spec.Backend, "location", s.spec.location())
	if err := s.store.Close(); err != nil {
		s.log.Error("shutdown: closing storage failed", "err", err)
		errs = append(errs, fmt.Errorf("close storage: %w", err))
	}

	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.log.Info("shutdown complete")
	return nil
}

// joinTasks waits, up to tasksJoinTimeout, for every task the runtime
// started to return, and reports whether they did. A task still running
// is left behind (the runtime cannot cancel it).
func (s *Server) joinTasks(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		s.rt.Wait()
		close(done)
	}()
	t := time.NewTimer(tasksJoinTimeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Run starts a node and serves until ctx is done, then shuts it down
// gracefully and returns nil if everything stopped cleanly. If the HTTP
// server fails on its own, Run shuts down and returns that failure.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-s.Done():
		serveErr = s.Err()
		s.log.Error("HTTP server stopped unexpectedly", "err", serveErr)
	}
	return errors.Join(serveErr, s.Shutdown(context.WithoutCancel(ctx)))
}
