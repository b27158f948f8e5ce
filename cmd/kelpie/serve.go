package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/providers"
	"github.com/kelpie-ai/kelpie/server"
	"github.com/kelpie-ai/kelpie/telemetry"
	"github.com/kelpie-ai/kelpie/web"
)

// Environment variables read by `kelpie serve` for flags not given on the
// command line.
const (
	envAddr    = "KELPIE_ADDR"
	envDataDir = "KELPIE_DATA_DIR"
	envStorage = "KELPIE_STORAGE"
	// envPassword is read by serve (the password to require) and by the
	// client commands (the password to send).
	envPassword = "KELPIE_SERVER_PASSWORD"
	// envEmbeddingModel is the embedding model of agents created without
	// one.
	envEmbeddingModel = "KELPIE_EMBEDDING_MODEL"
	// envContextWindow is the context window of models whose provider
	// does not list one.
	envContextWindow = "KELPIE_CONTEXT_WINDOW"
	// envToolSandbox and envPipIndexURL configure custom tool execution.
	envToolSandbox = "KELPIE_TOOL_SANDBOX"
	envPipIndexURL = "KELPIE_PIP_INDEX_URL"
	// envMCPStdio enables stdio MCP servers ("1", "true"; anything else
	// that strconv.ParseBool does not read as true leaves them off).
	envMCPStdio = "KELPIE_MCP_ALLOW_STDIO"
	// envDrainTimeout bounds letting runs finish at shutdown (a Go
	// duration, such as 30s).
	envDrainTimeout = "KELPIE_DRAIN_TIMEOUT"
	// envMetricsPublic serves /metrics without the password (as
	// envMCPStdio is read).
	envMetricsPublic = "KELPIE_METRICS_PUBLIC"
	// envPprofAddr is the profiler's listen address.
	envPprofAddr = "KELPIE_PPROF_ADDR"
)

// serveFlags holds the serve command's flag values.
type serveFlags struct {
	addr     string
	dataDir  string
	storage  string
	password string
	// embeddingModel is the default embedding model handle.
	embeddingModel string
	// toolSandbox and pipIndexURL configure custom tool execution.
	toolSandbox, pipIndexURL string
	// mcpStdio lets users register stdio MCP servers.
	mcpStdio bool
	// contextWindow is the context window of models whose provider does
	// not list one.
	contextWindow int
	// drainTimeout bounds letting runs in flight finish at shutdown.
	drainTimeout time.Duration
	// metricsPublic serves /metrics without the password.
	metricsPublic bool
	// pprofAddr is the profiler's listen address; empty for none.
	pprofAddr string
}

// newServeCmd builds `kelpie serve`.
func newServeCmd(stderr io.Writer, getenv func(string) string) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Kelpie server",
		Long: `Run the Kelpie server until SIGINT or SIGTERM, then shut down cleanly:
refuse new messages (503 with Retry-After) and let the runs in flight finish
for up to --drain-timeout; past it, stop the runs still going (their callers
get a 503 error, or an error event on a stream) and leave them to resume at
the next start; then finish in-flight HTTP requests, drain the agents'
mailboxes and close storage. A second signal exits at once. At start, the
runs a crash or a shutdown interrupted resume.

Storage (--storage or KELPIE_STORAGE):
  (empty)                        SQLite at <data-dir>/kelpie.db (the default)
  sqlite:<file> or <file>        SQLite at that file
  postgres://user:pw@host/db     PostgreSQL (also postgresql://)
  memory                         in memory, lost on exit (demos only)

With --password (or KELPIE_SERVER_PASSWORD, which keeps it out of the process
list), every request except GET /v1/health must send
"Authorization: Bearer <password>"; without one the API is open to anyone who
can reach --addr.

Archival search ranks an agent's passages by embedding similarity when the
agent has an embedding model (the "embedding" handle it was created with,
such as openai/text-embedding-3-small, served by an OpenAI-compatible
provider), and by full-text relevance otherwise. --embedding-model (or
KELPIE_EMBEDDING_MODEL) gives agents created without one this model; there is
no default, because not every OpenAI-compatible server has an embedding model
(with Ollama, pull one and name it: --embedding-model openai/nomic-embed-text).

Observability: GET /metrics serves Prometheus metrics (behind --password
unless --metrics-public); each request is logged (method, route, status,
duration, bytes, request ID, echoed in X-Request-Id); with
OTEL_EXPORTER_OTLP_ENDPOINT set (http://localhost:4318, say) traces go to
that OTLP/HTTP collector; --pprof-addr serves net/http/pprof on its own
listener.

Each flag may be set through its environment variable; a flag given on the
command line wins.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkDrainTimeout(cmd, f, getenv); err != nil {
				return err
			}
			return serve(cmd.Context(), serveConfig(cmd, f, getenv), stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", server.DefaultAddr, "HTTP listen address, host:port (env "+envAddr+")")
	fl.StringVar(&f.dataDir, "data-dir", server.DefaultDataDir, "directory of the default SQLite database (env "+envDataDir+")")
	fl.StringVar(&f.storage, "storage", "", "storage backend: empty for SQLite in --data-dir, sqlite:<file>, postgres://…, or memory (env "+envStorage+")")
	fl.StringVar(&f.password, "password", "", "require this password (Authorization: Bearer) on every request but the health check; empty for none (env "+envPassword+")")
	fl.StringVar(&f.toolSandbox, "tool-sandbox", server.SandboxBwrap, "how custom tools and run_code run: bwrap (bubblewrap sandbox) or none (unsandboxed: only if you trust every tool) (env "+envToolSandbox+")")
	fl.StringVar(&f.pipIndexURL, "pip-index-url", "", "package index for custom tools' pip_requirements; empty: such tools fail naming the requirement (env "+envPipIndexURL+")")
	fl.BoolVar(&f.mcpStdio, "mcp-stdio", false, "let API users register stdio MCP servers, commands this server runs as its own user; off by default (env "+envMCPStdio+")")
	fl.IntVar(&f.contextWindow, "context-window", agent.DefaultContextWindow, "context window, in tokens, of models whose provider does not list one (agents may set their own: llm_config.context_window) (env "+envContextWindow+")")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", server.DefaultDrainTimeout, "at shutdown, how long runs in flight may take to finish before they are interrupted (to resume at the next start) (env "+envDrainTimeout+")")
	fl.BoolVar(&f.metricsPublic, "metrics-public", false, "serve GET /metrics without the password (for a scraper that cannot send it); off by default (env "+envMetricsPublic+")")
	fl.StringVar(&f.pprofAddr, "pprof-addr", "", "serve the Go profiler (net/http/pprof, /debug/pprof/) on this host:port, such as 127.0.0.1:6060; empty (the default) for none (env "+envPprofAddr+")")
	fl.StringVar(&f.embeddingModel, "embedding-model", "", "embedding model handle (provider/model) of agents created without one; empty: full-text archival search (env "+envEmbeddingModel+")")
	return cmd
}

// serveConfig resolves the server configuration: a flag set on the
// command line wins, then a non-empty environment variable, then the
// flag's default.
func serveConfig(cmd *cobra.Command, f serveFlags, getenv func(string) string) server.Config {
	pick := func(flag, env, value string) string {
		if !cmd.Flags().Changed(flag) {
			if v := getenv(env); v != "" {
				return v
			}
		}
		return value
	}
	mcpStdio := f.mcpStdio
	if v := getenv(envMCPStdio); v != "" && !cmd.Flags().Changed("mcp-stdio") {
		b, err := strconv.ParseBool(v)
		mcpStdio = err == nil && b
	}
	metricsPublic := f.metricsPublic
	if v := getenv(envMetricsPublic); v != "" && !cmd.Flags().Changed("metrics-public") {
		b, err := strconv.ParseBool(v)
		metricsPublic = err == nil && b
	}
	window := f.contextWindow
	if v, err := strconv.Atoi(getenv(envContextWindow)); err == nil && !cmd.Flags().Changed("context-window") {
		window = v
	}
	drain := f.drainTimeout
	if v := getenv(envDrainTimeout); v != "" && !cmd.Flags().Changed("drain-timeout") {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			drain = d
		}
	}
	return server.Config{
		DrainTimeout:   drain,
		ContextWindow:  window,
		Addr:           pick("addr", envAddr, f.addr),
		DataDir:        pick("data-dir", envDataDir, f.dataDir),
		Storage:        pick("storage", envStorage, f.storage),
		Password:       pick("password", envPassword, f.password),
		EmbeddingModel: strings.TrimSpace(pick("embedding-model", envEmbeddingModel, f.embeddingModel)),
		ToolSandbox:    pick("tool-sandbox", envToolSandbox, f.toolSandbox),
		PipIndexURL:    pick("pip-index-url", envPipIndexURL, f.pipIndexURL),
		MCPAllowStdio:  mcpStdio,
		MetricsPublic:  metricsPublic,
		PprofAddr:      pick("pprof-addr", envPprofAddr, f.pprofAddr),
	}
}

// checkDrainTimeout refuses a drain timeout that is not a positive
// duration, from the flag or from the environment.
func checkDrainTimeout(cmd *cobra.Command, f serveFlags, getenv func(string) string) error {
	if v := getenv(envDrainTimeout); v != "" && !cmd.Flags().Changed("drain-timeout") {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive duration such as 30s", envDrainTimeout, v)
		}
	}
	if f.drainTimeout <= 0 {
		return fmt.Errorf("--drain-timeout %v: want a positive duration such as 30s", f.drainTimeout)
	}
	return nil
}

// serve runs the server until SIGINT or SIGTERM, logging to stderr.
func serve(ctx context.Context, cfg server.Config, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = log
	if cfg.Model == nil {
		router, err := providers.FromEnv(os.Getenv)
		if err != nil {
			return fmt.Errorf("model providers: %w (check OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY)", err)
		}
		cfg.Model = router
		for _, p := range router.Providers() {
			log.Info("model provider configured", "provider", p)
		}
	}
	if cfg.WebTools == nil {
		wcfg, err := web.ConfigFromEnv(os.Getenv)
		if err != nil {
			return fmt.Errorf("web tools: %w", err)
		}
		cfg.WebTools = web.New(wcfg)
		if p, err := wcfg.Search.ResolvedProvider(); err == nil {
			log.Info("web_search provider configured", "provider", p)
		} else {
			log.Info("web_search has no provider: calls answer with a tool error naming the settings (KELPIE_WEB_SEARCH_PROVIDER, EXA_API_KEY, TAVILY_API_KEY, BRAVE_API_KEY, KELPIE_SEARXNG_URL)")
		}
		if wcfg.Fetch.AllowPrivate {
			log.Warn("fetch_webpage may reach loopback and private addresses (KELPIE_WEB_FETCH_ALLOW_PRIVATE)")
		}
	}
	if cfg.TracerProvider == nil {
		tracing, err := telemetry.TracingFromEnv(ctx, os.Getenv)
		if err != nil {
			return fmt.Errorf("tracing: %w (check %s)", err, telemetry.EnvOTLPEndpoint)
		}
		defer func() {
			if err := tracing.Shutdown(context.WithoutCancel(ctx)); err != nil {
				log.Warn("flushing traces failed", "err", err)
			}
		}()
		cfg.TracerProvider = tracing.Provider
		if tracing.Enabled {
			log.Info("tracing: spans go to the OTLP/HTTP collector", "endpoint", tracing.Endpoint)
		}
	}
	ctx, stop := onSignal(ctx, log)
	defer stop()
	if err := server.Run(ctx, cfg); err != nil {
		return explain(err)
	}
	return nil
}

// onSignal returns a context cancelled at the first SIGINT or SIGTERM.
// After that first signal the default handling is restored, so a second
// one ends the process at once. stop releases the signal handler.
func onSignal(parent context.Context, log *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			log.Info("received signal; shutting down (send it again to exit at once)", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel()
	}
}

// explain adds to err advice on what the user can do about it.
func explain(err error) error {
	hint := ""
	var le *server.ListenError
	var se *server.StorageError
	var ee *server.EmbeddingError
	switch {
	case errors.As(err, &le):
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			hint = fmt.Sprintf("Another process (perhaps another kelpie) is already using %s. Stop it, or choose another address with --addr or %s (for example --addr 127.0.0.1:8284).", le.Addr, envAddr)
		case errors.Is(err, syscall.EACCES):
			hint = fmt.Sprintf("Ports below 1024 usually need extra privileges. Choose a higher port with --addr or %s.", envAddr)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			hint = fmt.Sprintf("No network interface here has that address. Use host 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces) in --addr or %s.", envAddr)
		default:
			hint = fmt.Sprintf("Give --addr or %s as host:port, for example 127.0.0.1:8283.", envAddr)
		}
	case errors.As(err, &ee):
		hint = fmt.Sprintf("--embedding-model or %s names a provider/model handle (for example openai/text-embedding-3-small) of an OpenAI-compatible provider configured with OPENAI_API_KEY and/or OPENAI_BASE_URL (Anthropic has no embeddings); leave it empty for full-text archival search.", envEmbeddingModel)
	case errors.Is(err, server.ErrBadStorage):
		hint = fmt.Sprintf("--storage or %s accepts: nothing (SQLite in --data-dir), sqlite:<file>, a file path, postgres://user:password@host:5432/dbname, or memory.", envStorage)
	case errors.As(err, &se):
		switch se.Spec.Backend {
		case server.BackendSQLite:
			hint = fmt.Sprintf("Check that the directory of %s exists or can be created and that this user can read and write it, or choose another directory with --data-dir or %s, or another file with --storage sqlite:<file>.", se.Spec.Location, envDataDir)
		case server.BackendPostgres:
			hint = fmt.Sprintf("Check the URL given with --storage or %s (form postgres://user:password@host:5432/dbname), that the PostgreSQL server is running and reachable from here, and that the user may create tables in that database.", envStorage)
		}
	}
	if hint == "" {
		return err
	}
	return &hintError{err: err, hint: hint}
}

// hintError is an error followed by advice, printed on its own line.
type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string {
	return h.err.Error() + "\n  " + strings.TrimSpace(h.hint)
}

func (h *hintError) Unwrap() error { return h.err }
