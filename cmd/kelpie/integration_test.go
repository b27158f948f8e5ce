package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/api"
)

// Bounds on the integration tests' waits.
const (
	buildTimeout    = 5 * time.Minute
	readyTimeout    = 30 * time.Second
	exitTimeout     = 30 * time.Second
	pollInterval    = 50 * time.Millisecond
	requestTimeout  = 2 * time.Second
	integrationVers = "v0.0.0-integration"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// kelpieBinary builds the kelpie command once per test run, with its
// version set through -ldflags as a release build does, and returns its
// path.
func kelpieBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kelpie-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "kelpie")
		args := []string{"build", "-o", binPath,
			"-ldflags", "-X github.com/kelpie-ai/kelpie/api.Version=" + integrationVers}
		if raceEnabled {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer is a bytes.Buffer safe to write from the child's output
// copier while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// child is a running kelpie process.
type child struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done closes
}

// start runs kelpie with args and an environment free of KELPIE_*
// variables. The process is killed at the end of the test if it is still
// running.
func start(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{
		cmd:    exec.Command(kelpieBinary(t), args...),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KELPIE_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start kelpie: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("kelpie %v stdout:\n%s\nstderr:\n%s", args, c.stdout, c.stderr)
		}
	})
	return c
}

// wait waits up to timeout for the process to exit and returns its exit
// code, failing the test if it does not exit.
func (c *child) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("kelpie did not exit within %v", timeout)
	}
	if c.err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		t.Fatalf("wait: %v", c.err)
	}
	return ee.ExitCode() // -1 if killed by a signal
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitHealthy polls GET /v1/health until it answers 200 and returns the
// response body and headers.
func waitHealthy(t *testing.T, c *child, addr string) ([]byte, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: requestTimeout}
	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			t.Fatalf("kelpie exited before answering: %v", c.err)
		default:
		}
		res, err := client.Get("http://" + addr + "/v1/health")
		if err == nil {
			body, rerr := io.ReadAll(res.Body)
			res.Body.Close()
			if rerr == nil && res.StatusCode == http.StatusOK {
				return body, res.Header
			}
			err = errors.New(res.Status + ": " + string(body))
			if rerr != nil {
				err = rerr
			}
		}
		lastErr = err
		time.Sleep(pollInterval)
	}
	t.Fatalf("GET /v1/health did not answer 200 within %v: %v", readyTimeout, lastErr)
	return nil, nil
}

// TestServeLifecycle runs `kelpie serve` as a real process with default
// (SQLite) storage, waits for it to answer health checks, stops it with a
// signal and checks it exits 0 having created its database.
func TestServeLifecycle(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			addr := freeAddr(t)
			c := start(t, "serve", "--addr", addr, "--data-dir", dataDir)

			body, header := waitHealthy(t, c, addr)
			if ctype := header.Get("Content-Type"); ctype != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ctype)
			}
			var health map[string]string
			if err := json.Unmarshal(body, &health); err != nil {
				t.Fatalf("health body %q: %v", body, err)
			}
			// The body names the Letta API version served; the binary's own
			// version (set at link time) is in a header.
			if len(health) != 2 || health["status"] != "ok" || health["version"] != api.LettaAPIVersion {
				t.Errorf("health = %s, want {\"status\":\"ok\",\"version\":%q}", body, api.LettaAPIVersion)
			}
			if v := header.Get("X-Kelpie-Version"); v != integrationVers {
				t.Errorf("X-Kelpie-Version = %q, want %q", v, integrationVers)
			}

			// Unknown routes answer Letta's error shape over real HTTP too.
			res, err := (&http.Client{Timeout: requestTimeout}).Get("http://" + addr + "/v1/no-such-route")
			if err != nil {
				t.Fatal(err)
			}
			nf, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound || strings.TrimSpace(string(nf)) != `{"detail":"Not Found"}` {
				t.Errorf("unknown route: %d %s, want 404 {\"detail\":\"Not Found\"}", res.StatusCode, nf)
			}

			if err := c.cmd.Process.Signal(sig); err != nil {
				t.Fatalf("signal: %v", err)
			}
			if code := c.wait(t, exitTimeout); code != 0 {
				t.Fatalf("exit code %d after %v, want 0", code, sig)
			}
			if _, err := os.Stat(filepath.Join(dataDir, "kelpie.db")); err != nil {
				t.Errorf("database file: %v", err)
			}
			logs := c.stderr.String()
			for _, want := range []string{"listening", addr, "backend=sqlite", filepath.Join(dataDir, "kelpie.db"), "shutdown complete"} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q", want)
				}
			}
		})
	}
}

func TestVersionBinary(t *testing.T) {
	c := start(t, "version")
	if code := c.wait(t, exitTimeout); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if got, want := c.stdout.String(), "kelpie "+integrationVers+"\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

// TestServePortInUse checks that serve on an occupied port fails at once
// with advice, without creating a database.
func TestServePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	c := start(t, "serve", "--addr", ln.Addr().String(), "--data-dir", dataDir)
	if code := c.wait(t, exitTimeout); code == 0 || code == -1 {
		t.Fatalf("exit code %d, want a non-zero exit", code)
	}
	stderr := c.stderr.String()
	for _, want := range []string{ln.Addr().String(), "already in use", "--addr"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir after failed start: %v; want it not created", err)
	}
}
