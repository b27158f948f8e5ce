package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/fakellm"
)

// Environment variables read by `kelpie fake-llm` for flags not given on
// the command line.
const (
	envFakeLLMAddr   = "KELPIE_FAKE_LLM_ADDR"
	envFakeLLMScript = "KELPIE_FAKE_LLM_SCRIPT"
)

// defaultFakeLLMAddr is next to kelpie serve's default port.
const defaultFakeLLMAddr = "127.0.0.1:8284"

// fakeLLMShutdownTimeout bounds the wait for in-flight requests at exit.
const fakeLLMShutdownTimeout = 5 * time.Second

// fakeLLMFlags holds the fake-llm command's flag values.
type fakeLLMFlags struct {
	addr            string
	script          string
	chatModels      []string
	embeddingModels []string
	dimensions      int
	contextWindow   int
}

// newFakeLLMCmd builds `kelpie fake-llm`.
func newFakeLLMCmd(stderr io.Writer, getenv func(string) string) *cobra.Command {
	var f fakeLLMFlags
	cmd := &cobra.Command{
		Use:   "fake-llm",
		Short: "Run a deterministic OpenAI-compatible model server for tests and demos",
		Long: `Run a fake, deterministic OpenAI-compatible model server until SIGINT or SIGTERM.
Point Kelpie (or any OpenAI client) at it with OPENAI_BASE_URL=http://<addr>/v1.
It serves POST /v1/chat/completions (JSON and streaming, with tool calls),
POST /v1/embeddings (hashed bag-of-words vectors) and GET /v1/models.

By default the model ends each agent turn: it answers a user message by calling
send_message with "Echo: <text>" (or replies that text if send_message is not
offered), and answers a tool result with send_message "Done." (if not yet sent
this turn) or the text "OK".

Lines of the user's message steer the model's next reply:
  @tool NAME {"arg": "value"}   call tool NAME with these arguments (several
                                lines: several calls in one reply)
  @reply some text              reply with this text
  @error 429 [message]          answer with this HTTP error (429 adds Retry-After: 1)
  @sleep 200ms                  delay the reply (at most 30s)

--script file.json scripts replies with rules, the first match wins:
  [{"match": {"last_user_contains": "hi", "last_role": "user", "has_tool": "send_message"},
    "reply": {"content": "...", "tool_calls": [{"name": "...", "arguments": {...}}]},
    "times": 1}]
match may also give "last_tool" and "model"; reply may instead give
"error": {"status": 503, "message": "..."}, and "sleep": "200ms".

Each flag may be set through its environment variable; a flag given on the
command line wins.`,
		Example: `  kelpie fake-llm
  kelpie fake-llm --addr 127.0.0.1:9000 --script rules.json
  OPENAI_BASE_URL=http://127.0.0.1:8284/v1 OPENAI_API_KEY=unused kelpie serve`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pick := func(flag, env, value string) string {
				if !cmd.Flags().Changed(flag) {
					if v := getenv(env); v != "" {
						return v
					}
				}
				return value
			}
			f.addr = pick("addr", envFakeLLMAddr, f.addr)
			f.script = pick("script", envFakeLLMScript, f.script)
			if f.contextWindow < 0 {
				return &usageError{fmt.Errorf("--context-window %d: want 0 (none) or a number of tokens", f.contextWindow)}
			}
			if f.dimensions < 1 || f.dimensions > fakellm.MaxDimensions {
				return &usageError{fmt.Errorf("--dimensions %d: want 1..%d", f.dimensions, fakellm.MaxDimensions)}
			}
			return runFakeLLM(cmd.Context(), f, stderr)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultFakeLLMAddr, "HTTP listen address, host:port (env "+envFakeLLMAddr+")")
	fl.StringVar(&f.script, "script", "", "JSON file of scripted replies (env "+envFakeLLMScript+")")
	fl.StringSliceVar(&f.chatModels, "model", []string{fakellm.DefaultChatModel}, "chat model IDs to list in /v1/models (repeatable)")
	fl.StringSliceVar(&f.embeddingModels, "embedding-model", []string{fakellm.DefaultEmbeddingModel}, "embedding model IDs to list in /v1/models (repeatable)")
	fl.IntVar(&f.dimensions, "dimensions", fakellm.DefaultDimensions, "embedding length when a request gives no \"dimensions\"")
	fl.IntVar(&f.contextWindow, "context-window", 0, "chat models' context window in tokens (4 bytes each), enforced with OpenAI's 400 context_length_exceeded (0: none)")
	return cmd
}

// runFakeLLM serves the fake model until ctx ends or SIGINT or SIGTERM.
func runFakeLLM(ctx context.Context, f fakeLLMFlags, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := onSignal(ctx, log)
	defer stop()
	opts := fakellm.Options{ChatModels: f.chatModels, EmbeddingModels: f.embeddingModels, Dimensions: f.dimensions, Logger: log,
		ContextWindow: f.contextWindow}
	if f.script != "" {
		s, err := fakellm.LoadScript(f.script)
		if err != nil {
			return explainFakeLLMScript(err)
		}
		opts.Script = s
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return explainFakeLLMListen(f.addr, err)
	}
	srv := &http.Server{
		Handler:           fakellm.New(opts),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Cancelling the base context wakes requests sleeping on @sleep at
	// shutdown.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv.BaseContext = func(net.Listener) context.Context { return base }

	fmt.Fprintf(stderr, "fake LLM listening on http://%s/v1 (set OPENAI_BASE_URL to this)\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("fake LLM server: %w", err)
	case <-ctx.Done():
	}
	cancelBase()
	sctx, cancel := context.WithTimeout(context.Background(), fakeLLMShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("fake LLM server: %w", err)
	}
	log.Info("fake LLM stopped")
	return nil
}

// explainFakeLLMScript adds advice to a script loading error.
func explainFakeLLMScript(err error) error {
	hint := `A script is a JSON array of rules: [{"match": {"last_user_contains": "..."}, "reply": {"content": "..."}, "times": 1}]. Run 'kelpie fake-llm --help' for the fields.`
	if errors.Is(err, fs.ErrNotExist) {
		hint = fmt.Sprintf("Check the path given with --script or %s.", envFakeLLMScript)
	}
	return &hintError{err: err, hint: hint}
}

// explainFakeLLMListen adds advice to a listen error.
func explainFakeLLMListen(addr string, err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = fmt.Sprintf("Another process (perhaps another fake LLM) is already using %s. Stop it, or choose another address with --addr or %s (port 0 picks a free one).", addr, envFakeLLMAddr)
	case errors.Is(err, syscall.EACCES):
		hint = fmt.Sprintf("Ports below 1024 usually need extra privileges. Choose a higher port with --addr or %s.", envFakeLLMAddr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = fmt.Sprintf("No network interface here has that address. Use host 127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces) in --addr or %s.", envFakeLLMAddr)
	default:
		hint = fmt.Sprintf("Give --addr or %s as host:port, for example %s.", envFakeLLMAddr, defaultFakeLLMAddr)
	}
	return &hintError{err: fmt.Errorf("fake LLM: %w", err), hint: hint}
}
