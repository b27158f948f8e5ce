package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/server"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// apiServer starts the real API over an in-memory store, with the given
// model and password (empty: none), and returns its URL.
func apiServer(t *testing.T, model llm.Client, password string) string {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, model)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, api.WithLogger(slog.New(slog.DiscardHandler)), api.WithPassword(password)))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return srv.URL
}

// envOf returns a getenv over vars.
func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// kelpie runs the command line in-process and returns the exit code and
// its output.
func kelpie(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, getenv)
	return code, out.String(), errOut.String()
}

// mustKelpie runs the command line and requires exit code 0.
func mustKelpie(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	code, stdout, stderr := kelpie(t, getenv, args...)
	if code != 0 {
		t.Fatalf("kelpie %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, stdout, stderr)
	}
	return stdout
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestClientConnectionRefused(t *testing.T) {
	addr := refusedAddr(t)
	for _, args := range [][]string{
		{"agents", "list", "--server", "http://" + addr},
		{"agents", "get", "agent-x", "--server", addr}, // no scheme: http:// is assumed
		{"chat", "agent-x", "--server", "http://" + addr, "--message", "hi"},
	} {
		code, stdout, stderr := kelpie(t, noEnv, args...)
		if code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
		for _, want := range []string{"connection refused", "is `kelpie serve` running at http://" + addr, "--server"} {
			if !strings.Contains(strings.ToLower(stderr), strings.ToLower(want)) {
				t.Errorf("%q: stderr lacks %q:\n%s", args, want, stderr)
			}
		}
		if stdout != "" {
			t.Errorf("%q: stdout = %q, want nothing", args, stdout)
		}
	}
}

func TestClientServerFromEnv(t *testing.T) {
	url := apiServer(t, llmtest.Echo(), "")
	env := envOf(map[string]string{envServer: url + "/v1/"}) // a trailing /v1 is tolerated
	if out := mustKelpie(t, env, "agents", "list"); !strings.Contains(out, "No agents") {
		t.Errorf("list = %q", out)
	}
	// The flag wins over the environment.
	env = envOf(map[string]string{envServer: "http://" + refusedAddr(t)})
	mustKelpie(t, env, "agents", "list", "--server", url)
}

func TestClientAuth(t *testing.T) {
	const pw = "s3cret-pass"
	url := apiServer(t, llmtest.Echo(), pw)

	code, _, stderr := kelpie(t, noEnv, "agents", "list", "--server", url)
	if code != 1 {
		t.Fatalf("list without a password: exit %d, want 1", code)
	}
	for _, want := range []string{"401", "authentication required", "--password", envPassword} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr without a password lacks %q:\n%s", want, stderr)
		}
	}

	code, _, stderr = kelpie(t, noEnv, "agents", "create", "--name", "x", "--server", url, "--password", "wr0ng-guess")
	if code != 1 || !strings.Contains(stderr, "invalid password") || !strings.Contains(stderr, "rejected the password") {
		t.Errorf("create with a wrong password: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "wr0ng-guess") {
		t.Errorf("stderr echoes the password:\n%s", stderr)
	}

	id := strings.TrimSpace(mustKelpie(t, noEnv, "agents", "create", "--name", "x", "--server", url, "--password", pw))
	env := envOf(map[string]string{envServer: url, envPassword: pw})
	if out := mustKelpie(t, env, "agents", "list"); !strings.Contains(out, id) {
		t.Errorf("list with the password from the environment lacks %s:\n%s", id, out)
	}
	if out := mustKelpie(t, env, "chat", id, "--message", "knock knock"); !strings.Contains(out, "agent> echo: knock knock") {
		t.Errorf("chat with the password: %q", out)
	}
}

// TestServePassword runs a node as `kelpie serve` configures it, with a
// password from the environment, and talks to it with the CLI.
func TestServePassword(t *testing.T) {
	f := serveFlags{addr: "127.0.0.1:0", storage: "memory"}
	cmd := newServeCmd(&bytes.Buffer{}, envOf(map[string]string{envPassword: "from-env"}))
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	cfg := serveConfig(cmd, f, envOf(map[string]string{envPassword: "from-env"}))
	if cfg.Password != "from-env" {
		t.Fatalf("Password = %q, want the environment's", cfg.Password)
	}
	cmd = newServeCmd(&bytes.Buffer{}, noEnv)
	if err := cmd.ParseFlags([]string{"--password", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	f.password = "from-flag"
	if got := serveConfig(cmd, f, envOf(map[string]string{envPassword: "from-env"})).Password; got != "from-flag" {
		t.Fatalf("Password = %q, want the flag's", got)
	}

	cfg.Model = llmtest.Echo()
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	url := "http://" + s.Addr()

	res, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("health without a password = %d, want 200", res.StatusCode)
	}
	if code, _, stderr := kelpie(t, noEnv, "agents", "list", "--server", url); code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("list without a password: exit %d\n%s", code, stderr)
	}
	mustKelpie(t, noEnv, "agents", "list", "--server", url, "--password", "from-env")
}

func TestClientNotAKelpieServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>nope</html>", http.StatusBadGateway)
	}))
	defer srv.Close()
	code, _, stderr := kelpie(t, noEnv, "agents", "list", "--server", srv.URL)
	if code != 1 || !strings.Contains(stderr, "502") || !strings.Contains(stderr, "<html>nope</html>") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

func TestClientBadServerURL(t *testing.T) {
	for _, s := range []string{"ftp://host", "http://", " "} {
		code, _, stderr := kelpie(t, noEnv, "agents", "list", "--server", s)
		if code != 2 || !strings.Contains(stderr, "--server") {
			t.Errorf("--server %q: exit %d\n%s", s, code, stderr)
		}
	}
}

func TestNewAPIClientBase(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:8283":         "http://127.0.0.1:8283",
		"http://127.0.0.1:8283/":        "http://127.0.0.1:8283",
		"http://127.0.0.1:8283/v1":      "http://127.0.0.1:8283",
		"localhost:8283":                "http://localhost:8283",
		"https://example.com/letta/v1/": "https://example.com/letta",
		"http://h:1/?x=1#f":             "http://h:1",
	}
	for in, want := range tests {
		c, err := newAPIClient(in, "")
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if c.base != want {
			t.Errorf("%q: base %q, want %q", in, c.base, want)
		}
	}
}
