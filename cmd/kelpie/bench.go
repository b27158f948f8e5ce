package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/bench"
)

// benchDefaultMessages is the message count of a run given neither
// --messages nor --duration.
const benchDefaultMessages = 1000

// benchFlags holds the bench command's flag values.
type benchFlags struct {
	cfg        bench.Config
	jsonOut    bool
	cpuProfile string
	verbose    bool
}

// newBenchCmd builds `kelpie bench`.
func newBenchCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark a Kelpie server against its model's own speed",
		Long: `Benchmark Kelpie: create --agents agents, drive them with --clients concurrent
clients, each sending one short user message per request (client i to agent
i mod N), for --messages messages or for --duration; then, in the same run,
post the same number of chat completions (or for the same duration) straight
to the same fake model: the floor. The headline is the ratio of Kelpie's
messages per second to the floor's requests per second.

By default everything runs in this process on loopback ports: a fake model
(as 'kelpie fake-llm') and a Kelpie server on a temporary SQLite database
(--storage memory, or a postgres:// URL, for the others). It then also
reports process CPU and allocations per message (they include the clients
and the fake model; a server estimate subtracts the floor's), the store's
commits and fsyncs per message (SQLite), and with --cpuprofile a CPU profile
whose samples are labelled side=server|client|model:
  go tool pprof -tagfocus=side=server -top bench.prof

--server URL drives a running server instead (its model must be a fake-llm
for a fair ratio); --fake-llm URL names that model for the floor, and
without it the floor is skipped.

Every agent gets one unmeasured message first. A progress line goes to
stderr when it is a terminal; --json prints one JSON object on stdout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fl := cmd.Flags()
			if fl.Changed("duration") && !fl.Changed("messages") {
				f.cfg.Messages = 0 // --duration replaces the default count
			}
			if !fl.Changed("password") && f.cfg.Server != "" {
				f.cfg.Password = getenv(envPassword)
			}
			return runBench(cmd.Context(), f, stdout, stderr)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.cfg.Agents, "agents", bench.DefaultAgents, "agents to create")
	fl.IntVar(&f.cfg.Clients, "clients", bench.DefaultClients, "concurrent clients (client i sends to agent i mod --agents; more clients than agents get 409 busy, counted and retried)")
	fl.IntVar(&f.cfg.Messages, "messages", benchDefaultMessages, "messages to send in all (and floor requests)")
	fl.DurationVar(&f.cfg.Duration, "duration", 0, "run each phase this long instead of --messages (such as 30s)")
	fl.BoolVar(&f.cfg.Stream, "stream", false, "send through the SSE endpoint with token streaming (the floor streams too)")
	fl.IntVar(&f.cfg.History, "history", 0, "preload each agent with this many logged messages (imported as an agent file) before measuring")
	fl.BoolVar(&f.cfg.Tools, "tools", false, "make each turn call a memory tool (memory_rethink) before answering: two model calls a turn")
	fl.StringVar(&f.cfg.Storage, "storage", "", "in-process store: sqlite (a temporary directory, the default), memory, or postgres://user:pw@host/db")
	fl.StringVar(&f.cfg.Server, "server", "", "URL of a running server to drive instead of an in-process one")
	fl.StringVar(&f.cfg.FakeLLM, "fake-llm", "", "with --server: URL of the fake model behind it, for the floor (none: no floor)")
	fl.StringVar(&f.cfg.Password, "password", "", "with --server: its password, sent as Authorization: Bearer (env "+envPassword+")")
	fl.StringVar(&f.cfg.Model, "model", bench.DefaultModel, "the agents' model handle")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the kelpie phase to this file (in-process only)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as one JSON object")
	fl.BoolVar(&f.verbose, "verbose", false, "show the in-process server's warnings and errors on stderr")
	return cmd
}

// runBench runs the benchmark and prints its report.
func runBench(ctx context.Context, f benchFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := f.cfg
	if err := cfg.Validate(); err != nil {
		var ce *bench.ConfigError
		if errors.As(err, &ce) {
			return &usageError{err}
		}
		return err
	}
	if isTerminal(stderr) {
		cfg.Progress = stderr
	}
	if f.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if f.cpuProfile != "" {
		if cfg.Server != "" {
			return &usageError{errors.New("--cpuprofile: profiles the in-process server only; it cannot be given with --server")}
		}
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pf.Close()
		cfg.CPUProfile = pf
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := onSignal(ctx, log)
	defer stop()
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		var werr error
		if f.jsonOut {
			werr = rep.WriteJSON(stdout)
		} else {
			werr = rep.WriteText(stdout)
		}
		if err == nil {
			err = werr
		}
	}
	if err != nil {
		var ce *bench.ConfigError
		if errors.As(err, &ce) {
			return &usageError{err}
		}
		return err
	}
	if f.cpuProfile != "" {
		fmt.Fprintf(stderr, "CPU profile written to %s; the server's share: go tool pprof -tagfocus=side=server -top %s\n", f.cpuProfile, f.cpuProfile)
	}
	return nil
}
