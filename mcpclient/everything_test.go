package mcpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// The MCP reference test server, @modelcontextprotocol/server-everything,
// run with Node over each transport. scripts/install-mcp-everything.sh
// installs it into testdata/everything; everythingEnv may name another
// copy (the package's directory, holding dist/index.js).
const everythingEnv = "KELPIE_MCP_EVERYTHING"

// everything locates node and the server's entry point. With CI set, a
// missing one fails the test; otherwise it skips.
func everything(t *testing.T) (node, index string) {
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
	dir := os.Getenv(everythingEnv)
	if dir == "" {
		dir = filepath.Join("testdata", "everything", "node_modules", "@modelcontextprotocol", "server-everything")
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

// everythingHTTP is server-everything serving an HTTP transport on a
// loopback port.
type everythingHTTP struct {
	t                      *testing.T
	node, index, transport string
	port                   int
	cmd                    *exec.Cmd
	log                    string // its output's file
}

func startEverythingHTTP(t *testing.T, node, index, transport string) *everythingHTTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	e := &everythingHTTP{t: t, node: node, index: index, transport: transport, port: port,
		log: filepath.Join(t.TempDir(), "server.log")}
	e.start()
	t.Cleanup(e.kill)
	return e
}

// start runs the server and waits until it accepts connections.
func (e *everythingHTTP) start() {
	e.t.Helper()
	out, err := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(e.node, e.index, e.transport)
	cmd.Env = []string{"PATH=" + DefaultStdioPATH, "PORT=" + strconv.Itoa(e.port)}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr() // its own process group, killed if the test dies
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
	exited := make(chan struct{})
	go func() {
		cmd.Process.Wait()
		close(exited)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port))
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(e.log)
			e.t.Fatalf("server-everything %s exited before listening on %s:\n%s", e.transport, addr, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("server-everything %s not listening on %s after %v", e.transport, addr, hangGuard)
		}
	}
}

// kill ends the server (its process group), if running.
func (e *everythingHTTP) kill() {
	if e.cmd == nil {
		return
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	e.cmd.Wait()
	e.cmd = nil
}

func (e *everythingHTTP) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", e.port, path)
}

func TestEverything(t *testing.T) {
	node, index := everything(t)
	t.Run("stdio", func(t *testing.T) {
		p := newTestPool(t, Options{AllowStdio: true})
		s := Server{ID: "everything-stdio", Name: "everything", Config: ServerConfig{
			Type: TypeStdio, Command: node, Args: []string{index, "stdio"}, Env: map[string]string{"GREETING": "hi"},
		}}
		checkEverything(t, p, s)

		var env map[string]string
		if err := json.Unmarshal([]byte(mustCall(t, p, s, "get-env", `{}`).Return), &env); err != nil {
			t.Fatal(err)
		}
		// Nothing of this process's environment (HOME, PATH, ...).
		if want := map[string]string{"PATH": DefaultStdioPATH, "GREETING": "hi"}; !maps.Equal(env, want) {
			t.Fatalf("server environment = %v, want %v", env, want)
		}

		c := connOf(p, s.ID)
		if err := syscall.Kill(c.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pool noticed the dead server", func() bool { return !c.alive() })
		wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "Echo: back")
		wantConnects(t, p, 2)
	})
	for _, tc := range []struct {
		transport, path string
		typ             ServerType
	}{
		{"sse", "/sse", TypeSSE},
		{"streamableHttp", "/mcp", TypeStreamableHTTP},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			srv := startEverythingHTTP(t, node, index, tc.transport)
			p := newTestPool(t, Options{})
			s := Server{ID: "everything-" + tc.transport, Name: "everything", Config: ServerConfig{Type: tc.typ, ServerURL: srv.url(tc.path)}}
			checkEverything(t, p, s)

			// Kill the server; the pool notices the event stream end.
			c := connOf(p, s.ID)
			srv.kill()
			eventually(t, "the pool noticed the dead server", func() bool { return !c.alive() })
			if _, err := callTool(t, p, s, "echo", `{"message":"anyone?"}`); err == nil {
				t.Fatal("call with the server down succeeded")
			}
			srv.start()
			wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "Echo: back")
			wantConnects(t, p, 3) // the failed attempt, and the one that worked
		})
	}
}

// checkEverything lists server-everything's tools and calls some, on one
// connection.
func checkEverything(t *testing.T, p *Pool, s Server) {
	t.Helper()
	tools, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tools, func(tl Tool) bool { return tl.Name == "echo" })
	if i < 0 {
		t.Fatalf("no echo tool among %d", len(tools))
	}
	var schema struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(tools[i].InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["message"].Type != "string" || !slices.Contains(schema.Required, "message") {
		t.Fatalf("echo input schema = %s", tools[i].InputSchema)
	}
	if a := tools[i].Annotations; a == nil || a.ReadOnlyHint == nil || !*a.ReadOnlyHint {
		t.Fatalf("echo annotations = %+v, want readOnlyHint", a)
	}
	if !slices.ContainsFunc(tools, func(tl Tool) bool { return tl.Name == "get-sum" }) {
		t.Fatal("no get-sum tool")
	}

	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"hello"}`), toolexec.StatusSuccess, "Echo: hello")
	wantReturn(t, mustCall(t, p, s, "get-sum", `{"a":2,"b":3.5}`), toolexec.StatusSuccess, "The sum of 2 and 3.5 is 5.5.")
	weather := mustCall(t, p, s, "get-structured-content", `{"location":"Chicago"}`)
	if weather.Status != toolexec.StatusSuccess || !strings.Contains(weather.Return, "Light rain") {
		t.Fatalf("get-structured-content = %+v", weather)
	}
	image := mustCall(t, p, s, "get-tiny-image", `{}`)
	if !strings.Contains(image.Return, "[image: image/png, ") {
		t.Fatalf("get-tiny-image = %q, want the image described", image.Return)
	}
	// Bad arguments: the server's validation error, as an error result or
	// a JSON-RPC error, but not a lost connection.
	res, err := callTool(t, p, s, "get-sum", `{"a":"two"}`)
	if err == nil && res.Status != toolexec.StatusError || err != nil && !serverError(err) {
		t.Fatalf("get-sum with bad arguments = (%+v, %v)", res, err)
	}
	wantConnects(t, p, 1)
}
