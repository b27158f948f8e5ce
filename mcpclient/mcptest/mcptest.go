// Package mcptest runs the MCP reference test server,
// @modelcontextprotocol/server-everything, for tests in other packages:
// over stdio (Everything locates it; the test's pool starts it) or over
// an HTTP transport on a free loopback port (StartHTTP).
//
// scripts/install-mcp-everything.sh installs the server into
// mcpclient/testdata/everything; the environment variable EnvEverything
// may name another copy (the package's directory, holding dist/index.js).
// With CI set, a missing node or server fails the test; otherwise it
// skips.
package mcptest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// EnvEverything names another copy of server-everything.
const EnvEverything = "KELPIE_MCP_EVERYTHING"

// startTimeout bounds waiting for an HTTP server to listen.
const startTimeout = 30 * time.Second

// stdioPATH is the PATH the HTTP servers run with.
const stdioPATH = "/usr/local/bin:/usr/bin:/bin"

// Everything returns node's path and server-everything's entry point:
// a stdio server is `node index stdio`.
func Everything(t testing.TB) (node, index string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + "; run scripts/install-mcp-everything.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found: %v", err)
	}
	dir := os.Getenv(EnvEverything)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "mcpclient", "testdata", "everything", "node_modules", "@modelcontextprotocol", "server-everything")
	}
	index, err = filepath.Abs(filepath.Join(dir, "dist", "index.js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(index); err != nil {
		missing("server-everything not installed: %v", err)
	}
	return node, index
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Transports of StartHTTP, and the paths their endpoints have.
const (
	// StreamableHTTP serves the streamable HTTP transport at /mcp.
	StreamableHTTP = "streamableHttp"
	// SSE serves the HTTP+SSE transport at /sse.
	SSE = "sse"
)

// HTTPServer is server-everything serving an HTTP transport on a
// loopback port, killed when the test ends.
type HTTPServer struct {
	t         testing.TB
	transport string
	node      string
	index     string
	port      int
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
	log       string
}

// StartHTTP starts server-everything with the given transport
// (StreamableHTTP or SSE) and waits until it listens.
func StartHTTP(t testing.TB, transport string) *HTTPServer {
	t.Helper()
	node, index := Everything(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &HTTPServer{t: t, transport: transport, node: node, index: index, port: port, log: filepath.Join(t.TempDir(), "server.log")}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's MCP endpoint.
func (s *HTTPServer) URL() string {
	path := "/mcp"
	if s.transport == SSE {
		path = "/sse"
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path)
}

// Start runs the server (again, after Kill) and waits until it listens.
func (s *HTTPServer) Start() {
	s.t.Helper()
	out, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(s.node, s.index, s.transport)
	cmd.Env = []string{"PATH=" + stdioPATH, "PORT=" + strconv.Itoa(s.port)}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("server-everything %s exited before listening on %s:\n%s", s.transport, addr, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server-everything %s not listening on %s after %v", s.transport, addr, startTimeout)
		}
	}
}

// Kill ends the server and its process group, if running.
func (s *HTTPServer) Kill() {
	if s.cmd == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(startTimeout):
		s.t.Errorf("server-everything (pid %d) still running %v after SIGKILL", s.cmd.Process.Pid, startTimeout)
	}
	s.cmd = nil
}
