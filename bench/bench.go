// Package bench is Kelpie's load generator, the engine of `kelpie bench`
// (what pgbench is to PostgreSQL and redis-benchmark to Redis): it
// creates agents on a Kelpie server, drives them with concurrent
// clients that each send one short user message per request, and
// measures throughput, latency, process CPU, allocations and storage
// commits per message. In the same run it measures the floor: the same
// clients posting chat completions straight to the same fake model, so
// the headline figure, kelpie messages per second ÷ model requests per
// second, says how much of the model's own speed the server keeps.
//
// By default Run starts everything in this process on loopback ports: a
// fakellm server and a Kelpie node (server.Start) on a temporary SQLite
// database. Given Config.Server it drives that server instead (and
// Config.FakeLLM, if given, for the floor). The package knows nothing of
// the command line; cmd/kelpie's bench command is its shell.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config fields left zero.
const (
	// DefaultAgents and DefaultClients are the agents created and the
	// concurrent clients driving them.
	DefaultAgents  = 100
	DefaultClients = 100
	// DefaultModel is the agents' model handle: the fake model behind
	// the in-process server's "openai" provider.
	DefaultModel = "openai/fake-model"
	// DefaultFloorModel is the model the floor's requests name.
	DefaultFloorModel = "fake-model"
)

// Limits on a run.
const (
	// AgentsMax and ClientsMax bound the agents and clients of a run.
	AgentsMax  = 100_000
	ClientsMax = 10_000
	// HistoryMax bounds the messages preloaded into each agent (an agent
	// file holds at most agentfile.MessagesPerAgentMax).
	HistoryMax = 50_000
	// requestTimeout bounds one benchmark request (a message turn, or a
	// floor request) from start to the end of its response.
	requestTimeout = 2 * time.Minute
	// setupTimeout bounds one setup request (create, export, import,
	// delete an agent).
	setupTimeout = 2 * time.Minute
	// busyBackoffMax bounds the wait before retrying a message an agent
	// refused as busy (409); the wait doubles from busyBackoffMin.
	busyBackoffMin = time.Millisecond
	busyBackoffMax = 50 * time.Millisecond
	// progressInterval is how often the progress line is redrawn.
	progressInterval = 200 * time.Millisecond
	// responseBytesMax bounds a response body the clients read.
	responseBytesMax = 64 << 20
)

// Storage choices for the in-process server (Config.Storage).
const (
	// StorageSQLite is SQLite in a temporary directory, removed at the end.
	StorageSQLite = "sqlite"
	// StorageMemory is the in-memory store.
	StorageMemory = "memory"
)

// Config describes a benchmark run. Exactly one of Messages and Duration
// is set.
type Config struct {
	// Agents is the number of agents created; Clients the number of
	// concurrent clients. Client i sends to agent i mod Agents, so with
	// more clients than agents some share one and get 409 (busy), which
	// is counted and retried.
	Agents, Clients int
	// Messages is the number of messages sent in all (and of floor
	// requests); Duration, instead, how long each phase runs.
	Messages int
	Duration time.Duration
	// Stream sends through the SSE endpoint with token streaming (and
	// streams the floor's completions); otherwise JSON.
	Stream bool
	// History preloads each agent with this many logged messages (by
	// importing an agent file) before measuring.
	History int
	// Tools makes every turn call a memory tool (memory_rethink on the
	// agent's "bench" block) before answering: two model calls a turn.
	Tools bool

	// Server is the base URL of a running server to drive; empty starts
	// one in this process.
	Server string
	// Password is sent as a bearer token to Server.
	Password string
	// FakeLLM is the base URL of the fake model behind Server, for the
	// floor; empty with Server set skips the floor.
	FakeLLM string
	// Model is the agents' model handle (DefaultModel if empty).
	Model string

	// Storage is the in-process server's store: StorageSQLite (the
	// default, in a temporary directory), StorageMemory, or a
	// postgres:// URL (any server.ParseStorage spec is accepted).
	Storage string
	// CPUProfile, if set, receives a CPU profile of the measured kelpie
	// phase (in-process only). Samples carry the label side=server,
	// side=client or side=model, so `go tool pprof -tagfocus=side=server`
	// shows the server alone.
	CPUProfile io.Writer
	// Progress, if set, gets a progress line redrawn with \r.
	Progress io.Writer
	// Logger receives the in-process server's logs; nil discards them.
	Logger *slog.Logger
}

// ConfigError is a Config that cannot run; Flag names the setting.
type ConfigError struct {
	// Flag is the command-line flag the setting comes from.
	Flag string
	// Msg says what is wrong and what is wanted.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Flag + ": " + e.Msg }

// inProcess reports whether the run starts its own server.
func (c *Config) inProcess() bool { return c.Server == "" }

// Validate checks the configuration and fills in the default model.
// Agents and Clients have no zero default: a run needs at least one of
// each (the command line's defaults are DefaultAgents, DefaultClients).
func (c *Config) Validate() error {
	if c.Model == "" {
		c.Model = DefaultModel
	}
	bad := func(flag, format string, args ...any) error {
		return &ConfigError{Flag: flag, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.Agents < 1 || c.Agents > AgentsMax:
		return bad("--agents", "%d agents: want 1..%d", c.Agents, AgentsMax)
	case c.Clients < 1 || c.Clients > ClientsMax:
		return bad("--clients", "%d clients: want 1..%d concurrent clients", c.Clients, ClientsMax)
	case c.Messages < 0:
		return bad("--messages", "%d messages: want a positive count", c.Messages)
	case c.Duration < 0:
		return bad("--duration", "%v: want a positive duration such as 30s", c.Duration)
	case c.Messages > 0 && c.Duration > 0:
		return bad("--messages", "give --messages or --duration, not both")
	case c.Messages == 0 && c.Duration == 0:
		return bad("--messages", "give a message count (--messages) or a duration (--duration)")
	case c.History < 0 || c.History > HistoryMax:
		return bad("--history", "%d messages: want 0..%d", c.History, HistoryMax)
	case !c.inProcess() && c.CPUProfile != nil:
		return bad("--cpuprofile", "profiles the in-process server only; it cannot be given with --server")
	case !c.inProcess() && c.Storage != "":
		return bad("--storage", "chooses the in-process server's store; it cannot be given with --server")
	case c.inProcess() && c.FakeLLM != "":
		return bad("--fake-llm", "names the fake model behind --server; the in-process server runs its own")
	case c.inProcess() && c.Password != "":
		return bad("--password", "is sent to --server; the in-process server needs none")
	}
	for _, u := range []struct{ flag, v string }{{"--server", c.Server}, {"--fake-llm", c.FakeLLM}} {
		if u.v == "" {
			continue
		}
		base, err := baseURL(u.v)
		if err != nil {
			return bad(u.flag, "%v", err)
		}
		if u.flag == "--server" {
			c.Server = base
		} else {
			c.FakeLLM = base
		}
	}
	return nil
}

// baseURL normalizes a server URL: http:// when no scheme is given, no
// trailing slash or /v1.
func baseURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL; give one like http://127.0.0.1:8283", raw)
	}
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	return strings.TrimSuffix(u.String(), "/"), nil
}

// Run runs the benchmark: setup, the kelpie phase, the floor phase, and
// teardown. A failed setup is an error; failed messages are counted in
// the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := newTarget(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	rep, err := run(ctx, &cfg, t)
	if cerr := t.close(); err == nil && cerr != nil {
		err = cerr
	}
	return rep, err
}

func run(ctx context.Context, cfg *Config, t *target) (*Report, error) {
	rep := newReport(cfg, t)
	ids, err := setupAgents(ctx, cfg, t)
	if err != nil {
		return nil, err
	}
	if t.cleanupAgents {
		defer deleteAgents(context.WithoutCancel(ctx), cfg, t, ids)
	}
	if err := warmUp(ctx, cfg, t, ids); err != nil {
		return nil, err
	}

	meter := t.meter()
	if cfg.CPUProfile != nil {
		if err := startCPUProfile(cfg.CPUProfile); err != nil {
			return nil, err
		}
	}
	kelpie := runPhase(ctx, cfg, "kelpie", &kelpieLoad{cfg: cfg, t: t, agents: ids})
	if cfg.CPUProfile != nil {
		stopCPUProfile()
	}
	used := meter.since()
	rep.Kelpie = kelpie.stats(used)
	rep.setCommits(used)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if t.fakeLLM != "" {
		meter := t.meter()
		floor := runPhase(ctx, cfg, "floor", &floorLoad{cfg: cfg, t: t})
		fs := floor.stats(meter.since())
		rep.Floor = &fs
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	rep.finish()
	if rep.Kelpie.OK == 0 {
		return rep, errors.New("no message succeeded; see the errors above")
	}
	return rep, nil
}
