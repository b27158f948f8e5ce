package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm/providers"
	"github.com/kelpie-ai/kelpie/server"
)

// Profile labels: every goroutine of the run carries side=server,
// side=client or side=model (the fake model), inherited from the
// goroutine that started it.
const (
	labelSide   = "side"
	sideServer  = "server"
	sideClient  = "client"
	sideModel   = "model"
	loopbackAny = "127.0.0.1:0"
	// shutdownTimeout bounds stopping the in-process server and model.
	shutdownTimeout = 30 * time.Second
	// fakeLLMReadHeaderTimeout bounds reading a request's headers at the
	// in-process fake model.
	fakeLLMReadHeaderTimeout = 10 * time.Second
)

// target is what a run drives: the Kelpie server's base URL, the fake
// model's (for the floor; empty for none), and, in-process, the node.
type target struct {
	kelpie   string // base URL, no /v1
	fakeLLM  string // base URL, no /v1; "" skips the floor
	password string
	storage  string // what the report calls the store

	node    *server.Server // in-process only
	fake    *http.Server   // in-process only
	tempDir string         // removed at close

	// cleanupAgents: delete the agents at the end (a store that outlives
	// the run).
	cleanupAgents bool

	client *http.Client // for the server
	floor  *http.Client // for the fake model
}

// newTarget starts the in-process fake model and server, or checks the
// remote ones answer.
func newTarget(ctx context.Context, cfg *Config) (*target, error) {
	t := &target{password: cfg.Password}
	t.client = newHTTPClient(cfg.Clients)
	t.floor = newHTTPClient(cfg.Clients)
	if !cfg.inProcess() {
		t.kelpie, t.fakeLLM, t.storage, t.cleanupAgents = cfg.Server, cfg.FakeLLM, "remote", true
		if err := t.health(ctx); err != nil {
			return nil, err
		}
		return t, nil
	}
	if err := t.startInProcess(ctx, cfg); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// newHTTPClient returns a client keeping up to conns idle connections
// to one host, so each benchmark client reuses its own.
func newHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns * 2
	tr.MaxIdleConnsPerHost = conns * 2
	tr.Proxy = nil // loopback benchmarks go direct
	return &http.Client{Transport: tr}
}

// startInProcess starts the fake model and a node on loopback ports.
func (t *target) startInProcess(ctx context.Context, cfg *Config) error {
	ln, err := net.Listen("tcp", loopbackAny)
	if err != nil {
		return fmt.Errorf("fake model: %w", err)
	}
	t.fake = &http.Server{Handler: fakellm.New(fakellm.Options{}), ReadHeaderTimeout: fakeLLMReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(slog.New(slog.DiscardHandler).Handler(), slog.LevelWarn)}
	pprof.Do(ctx, pprof.Labels(labelSide, sideModel), func(context.Context) {
		go t.fake.Serve(ln)
	})
	t.fakeLLM = "http://" + ln.Addr().String()

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	scfg := server.Config{Addr: loopbackAny, Logger: log}
	switch s := strings.TrimSpace(cfg.Storage); s {
	case "", StorageSQLite:
		dir, err := os.MkdirTemp("", "kelpie-bench-")
		if err != nil {
			return fmt.Errorf("temporary data directory: %w", err)
		}
		t.tempDir, scfg.DataDir, t.storage = dir, dir, "sqlite (temporary directory)"
	case StorageMemory:
		scfg.Storage, t.storage = s, "memory"
	default:
		spec, err := server.ParseStorage(s, server.DefaultDataDir)
		if err != nil {
			return &ConfigError{Flag: "--storage", Msg: fmt.Sprintf("%v; want sqlite, memory or a postgres:// URL", err)}
		}
		scfg.Storage, t.storage, t.cleanupAgents = s, spec.String(), true
	}
	var startErr error
	pprof.Do(ctx, pprof.Labels(labelSide, sideServer), func(ctx context.Context) {
		// The router's background model-list fetches are the server's.
		env := map[string]string{"OPENAI_BASE_URL": t.fakeLLM + "/v1", "OPENAI_API_KEY": "bench"}
		router, err := providers.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			startErr = fmt.Errorf("model router: %w", err)
			return
		}
		scfg.Model = router
		t.node, startErr = server.Start(ctx, scfg)
		if startErr != nil {
			startErr = fmt.Errorf("start the in-process server: %w", startErr)
		}
	})
	if startErr != nil {
		return startErr
	}
	t.kelpie = "http://" + t.node.Addr()
	return nil
}

// health checks the remote server (and fake model) answer.
func (t *target) health(ctx context.Context) error {
	status, body, err := t.do(ctx, t.client, http.MethodGet, t.kelpie+"/v1/health", "", nil)
	if err != nil {
		return fmt.Errorf("--server %s: %w", t.kelpie, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("--server %s: GET /v1/health answered %d: %.200s", t.kelpie, status, body)
	}
	if t.fakeLLM == "" {
		return nil
	}
	status, body, err = t.do(ctx, t.floor, http.MethodGet, t.fakeLLM+"/v1/models", "", nil)
	if err != nil {
		return fmt.Errorf("--fake-llm %s: %w", t.fakeLLM, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("--fake-llm %s: GET /v1/models answered %d: %.200s", t.fakeLLM, status, body)
	}
	return nil
}

// commitStats returns the in-process store's commit counters, if it
// keeps any.
func (t *target) commitStats() (server.CommitStats, bool) {
	if t.node == nil {
		return server.CommitStats{}, false
	}
	return t.node.CommitStats()
}

// close stops what startInProcess started and removes the temporary
// directory.
func (t *target) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	if t.node != nil {
		if err := t.node.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop the in-process server: %w", err))
		}
	}
	if t.fake != nil {
		if err := t.fake.Shutdown(ctx); err != nil {
			t.fake.Close()
		}
	}
	if t.tempDir != "" {
		if err := os.RemoveAll(t.tempDir); err != nil {
			errs = append(errs, err)
		}
	}
	t.client.CloseIdleConnections()
	t.floor.CloseIdleConnections()
	return errors.Join(errs...)
}

// do sends one request with an optional body and reads the response,
// bounded by responseBytesMax.
func (t *target) do(ctx context.Context, c *http.Client, method, url, contentType string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if t.password != "" && c == t.client {
		req.Header.Set("Authorization", "Bearer "+t.password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	return resp.StatusCode, b, err
}
