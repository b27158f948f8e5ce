package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// hangGuard bounds how long any one operation in these tests may take
// before the test calls it stuck; the pool's own timeouts are far below.
const hangGuard = 20 * time.Second

// newTestPool is a pool closed when the test ends.
func newTestPool(t *testing.T, opts Options) *Pool {
	t.Helper()
	p := NewPool(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

// stdioTestServer is the test binary run as a stdio MCP server.
func stdioTestServer(t testing.TB, id, mode string, env map[string]string) Server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// GORACE: a race-enabled binary otherwise waits a second at exit.
	e := map[string]string{testServerEnv: mode, "GORACE": "atexit_sleep_ms=0"}
	maps.Copy(e, env)
	return Server{ID: id, Name: id + "-name", Config: ServerConfig{Type: TypeStdio, Command: exe, Env: e}}
}

// httpTestServer serves the test MCP server over streamable HTTP or SSE
// on 127.0.0.1; wrap, if not nil, wraps its handler. Its "die" tool drops
// every client connection.
func httpTestServer(t testing.TB, typ ServerType, wrap func(http.Handler) http.Handler) (*httptest.Server, Server) {
	t.Helper()
	var ts *httptest.Server
	stop := make(chan struct{})
	srv := newTestServer(&testHooks{die: func() { ts.CloseClientConnections() }, stop: stop})
	var h http.Handler
	path := "/mcp"
	if typ == TypeSSE {
		h = mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		path = "/sse"
	} else {
		h = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	}
	if wrap != nil {
		h = wrap(h)
	}
	ts = httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(stop) }) // first: Close waits for handlers
	return ts, Server{ID: "srv-" + string(typ), Name: string(typ) + "-test", Config: ServerConfig{Type: typ, ServerURL: ts.URL + path}}
}

// bounded runs f and fails the test if it does not return within
// hangGuard: the property under test is that nothing gets stuck.
func bounded[T any](t *testing.T, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(hangGuard):
		t.Fatalf("operation still running after %v", hangGuard)
		panic("unreachable")
	}
}

func callTool(t *testing.T, p *Pool, s Server, name, args string) (toolexec.Result, error) {
	t.Helper()
	return bounded(t, func() (toolexec.Result, error) {
		return p.CallTool(context.Background(), s, name, json.RawMessage(args))
	})
}

func mustCall(t *testing.T, p *Pool, s Server, name, args string) toolexec.Result {
	t.Helper()
	res, err := callTool(t, p, s, name, args)
	if err != nil {
		t.Fatalf("CallTool(%s, %s): %v", name, args, err)
	}
	return res
}

func wantReturn(t *testing.T, res toolexec.Result, status, ret string) {
	t.Helper()
	if res.Status != status || res.Return != ret {
		t.Fatalf("result = {%s %q}, want {%s %q}", res.Status, res.Return, status, ret)
	}
}

func wantConnects(t *testing.T, p *Pool, n int64) {
	t.Helper()
	if got := p.connects.Load(); got != n {
		t.Fatalf("%d connection attempts, want %d", got, n)
	}
}

// eventually polls cond until it holds, failing the test after hangGuard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %v", what, hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid no longer runs: it does not exist, or
// it is a zombie (reparented children may not be reaped in a container).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// connOf is the pool's live connection to the server with this ID.
func connOf(p *Pool, id string) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.servers[id]; e != nil {
		return e.conn
	}
	return nil
}

func pidOf(t *testing.T, p *Pool, s Server) int {
	t.Helper()
	pid, err := strconv.Atoi(mustCall(t, p, s, "pid", `{}`).Return)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestStdioListAndCall(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, ResultBytesMax: 1000})
	s := stdioTestServer(t, "stdio-1", "stdio", nil)

	tools, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tools, func(tl Tool) bool { return tl.Name == "echo" })
	if i < 0 {
		t.Fatalf("no echo tool in %v", tools)
	}
	echo := tools[i]
	var schema struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal(echo.InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["message"] == nil || !slices.Equal(schema.Required, []string{"message"}) {
		t.Fatalf("echo input schema = %s", echo.InputSchema)
	}
	if echo.Description != "Echoes its message." || echo.Annotations == nil || echo.Annotations.ReadOnlyHint == nil || !*echo.Annotations.ReadOnlyHint {
		t.Fatalf("echo = %+v", echo)
	}

	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"hi"}`), toolexec.StatusSuccess, "echo: hi")
	wantReturn(t, mustCall(t, p, s, "echo", ` {"message":"again"} `), toolexec.StatusSuccess, "echo: again")
	wantReturn(t, mustCall(t, p, s, "fail", ``), toolexec.StatusError, "it went wrong")
	wantReturn(t, mustCall(t, p, s, "weather", `{}`), toolexec.StatusSuccess, `{"temperature":21.5}`)
	wantReturn(t, mustCall(t, p, s, "picture", `{}`), toolexec.StatusSuccess, "a picture:\n[image: image/png, 8 bytes]")

	big := mustCall(t, p, s, "big", `{"n":200000}`)
	if len(big.Return) > 1000 || !strings.HasPrefix(big.Return, "xxxx") || !strings.Contains(big.Return, "[truncated: the tool returned 200000 bytes") {
		t.Fatalf("big result: %d bytes, ends %q", len(big.Return), big.Return[max(0, len(big.Return)-80):])
	}

	// An unknown tool is the server's JSON-RPC error; the connection stays.
	_, err = callTool(t, p, s, "no-such-tool", `{}`)
	if _, ok := errors.AsType[*jsonrpc.Error](err); !ok {
		t.Fatalf("unknown tool: err = %v, want a *jsonrpc.Error", err)
	}
	if _, err := callTool(t, p, s, "echo", `[1]`); !errors.Is(err, ErrInvalidArguments) {
		t.Fatalf("array arguments: err = %v, want ErrInvalidArguments", err)
	}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"still"}`), toolexec.StatusSuccess, "echo: still")
	wantConnects(t, p, 1)
}

func TestStdioDisabled(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{})
	s := stdioTestServer(t, "stdio-off", "stdio", nil)
	_, err := p.ListTools(context.Background(), s)
	var e *Error
	if !errors.Is(err, ErrStdioDisabled) || !errors.As(err, &e) || e.ServerID != s.ID {
		t.Fatalf("ListTools: err = %v, want an *Error wrapping ErrStdioDisabled", err)
	}
	if _, err := p.CallTool(context.Background(), s, "echo", nil); !errors.Is(err, ErrStdioDisabled) {
		t.Fatalf("CallTool: err = %v, want ErrStdioDisabled", err)
	}
	wantConnects(t, p, 0)
}

func TestStdioEnvironmentIsOnlyTheConfigs(t *testing.T) {
	t.Setenv("KELPIE_TEST_SECRET", "hunter2")
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-env", "stdio", map[string]string{"FOO": "bar"})
	var env []string
	if err := json.Unmarshal([]byte(mustCall(t, p, s, "env", `{}`).Return), &env); err != nil {
		t.Fatal(err)
	}
	slices.Sort(env)
	want := []string{testServerEnv + "=stdio", "GORACE=atexit_sleep_ms=0", "FOO=bar", "PATH=" + DefaultStdioPATH}
	slices.Sort(want)
	if !slices.Equal(env, want) {
		t.Fatalf("server environment = %q, want %q", env, want)
	}
}

func TestStdioCommandLookedUpInChildPATH(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, StdioPATH: t.TempDir()})
	s := Server{ID: "look", Config: ServerConfig{Type: TypeStdio, Command: "sh", Args: []string{"-c", "exit 0"}}}
	_, err := p.ListTools(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), `command "sh" not found in PATH`) {
		t.Fatalf("err = %v, want the command not found in the child's PATH", err)
	}
}

func TestStdioConcurrentCallsShareOneConnection(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-conc", "stdio", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			msg := fmt.Sprint(i)
			res, err := p.CallTool(context.Background(), s, "echo", json.RawMessage(`{"message":"`+msg+`"}`))
			if err == nil && res.Return != "echo: "+msg {
				err = fmt.Errorf("call %d returned %q", i, res.Return)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wantConnects(t, p, 1)
}

func TestStdioConfigChangeReconnects(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-cfg", "stdio", map[string]string{"V": "1"})
	pid1 := pidOf(t, p, s)
	s.Config.Env = maps.Clone(s.Config.Env)
	s.Config.Env["V"] = "2"
	pid2 := pidOf(t, p, s)
	if pid1 == pid2 {
		t.Fatal("same process after the config changed")
	}
	if env := mustCall(t, p, s, "env", `{}`).Return; !strings.Contains(env, `"V=2"`) {
		t.Fatalf("environment after the change: %s", env)
	}
	wantConnects(t, p, 2)
	eventually(t, "the old server process has ended", func() bool { return processGone(pid1) })
}

func TestStdioHangTimesOut(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, CallTimeout: 300 * time.Millisecond})
	s := stdioTestServer(t, "stdio-hang", "stdio", nil)
	_, err := callTool(t, p, s, "hang", `{}`)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "callTimeout") {
		t.Fatalf("err = %v, want ErrTimeout naming callTimeout", err)
	}
	// The server was only slow at one tool: the connection stays.
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"ok"}`), toolexec.StatusSuccess, "echo: ok")
	wantConnects(t, p, 1)
}

func TestStdioContextCancel(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-cancel", "stdio", nil)
	mustCall(t, p, s, "echo", `{"message":"warm"}`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := bounded(t, func() (toolexec.Result, error) { return p.CallTool(ctx, s, "hang", nil) })
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestStdioServerDiesMidCall(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-die", "stdio", nil)
	_, err := callTool(t, p, s, "die", `{}`)
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("err = %v, want ErrConnectionLost", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "dying on purpose") {
		t.Fatalf("error %q does not say how the server ended", msg)
	}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "echo: back")
	wantConnects(t, p, 2)
}

func TestStdioKilledBetweenCallsReconnects(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-kill", "stdio", nil)
	pid := pidOf(t, p, s)
	c := connOf(p, s.ID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pool noticed the dead process", func() bool { return !c.alive() })
	if pid2 := pidOf(t, p, s); pid2 == pid {
		t.Fatal("same PID after the kill")
	}
	wantConnects(t, p, 2)
}

func TestStdioServerNotReadingInput(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, CallTimeout: 300 * time.Millisecond})
	s := stdioTestServer(t, "stdio-deaf", "deaf", nil)
	// 1 MiB of arguments fills the pipe: the write itself blocks.
	args := `{"message":"` + strings.Repeat("a", 1<<20) + `"}`
	_, err := callTool(t, p, s, "echo", args)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	c := connOf(p, s.ID)
	// The health check finds the server hung and drops the connection.
	eventually(t, "the hung connection was dropped", func() bool { return connOf(p, s.ID) != c })
}

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, ConnectTimeout: 300 * time.Millisecond})
	// This server reads the handshake and never answers.
	s := Server{ID: "mute", Config: ServerConfig{Type: TypeStdio, Command: "sh", Args: []string{"-c", "cat >/dev/null"}}}
	_, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	var e *Error
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "connectTimeout") || !errors.As(err, &e) || e.Op != opConnect {
		t.Fatalf("err = %v, want a connect error wrapping ErrTimeout", err)
	}
}

func TestStdioStartFailureSaysWhy(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true})
	s := Server{ID: "crash", Config: ServerConfig{Type: TypeStdio, Command: "sh", Args: []string{"-c", "echo no config file >&2; exit 7"}}}
	_, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	if err == nil || !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "no config file") {
		t.Fatalf("err = %v, want the exit status and stderr", err)
	}
}

func TestCloseEndsProcesses(t *testing.T) {
	t.Parallel()
	p := NewPool(Options{AllowStdio: true})
	s := stdioTestServer(t, "stdio-close", "stdio", nil)
	grandchild, err := strconv.Atoi(mustCall(t, p, s, "spawn", `{}`).Return)
	if err != nil {
		t.Fatal(err)
	}
	pid := pidOf(t, p, s)
	if processGone(pid) || processGone(grandchild) {
		t.Fatal("processes not running before Close")
	}
	if _, err := bounded(t, func() (struct{}, error) { return struct{}{}, p.Close() }); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Error("server process still running after Close")
	}
	eventually(t, "the server's child has ended", func() bool { return processGone(grandchild) })
	if _, err := p.CallTool(context.Background(), s, "echo", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("CallTool after Close: err = %v, want ErrClosed", err)
	}
}

func TestDisconnectAndIdleTimeout(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, IdleTimeout: 200 * time.Millisecond})
	s := stdioTestServer(t, "stdio-idle", "stdio", nil)
	pid := pidOf(t, p, s)
	eventually(t, "the idle server's process has ended", func() bool { return processGone(pid) })
	pid = pidOf(t, p, s)
	wantConnects(t, p, 2)
	p.Disconnect(s.ID)
	eventually(t, "the disconnected server's process has ended", func() bool { return processGone(pid) })
	pidOf(t, p, s)
	wantConnects(t, p, 3)
}

func TestStreamableHTTP(t *testing.T) {
	t.Parallel()
	testHTTPTransport(t, TypeStreamableHTTP)
}

func TestSSE(t *testing.T) {
	t.Parallel()
	testHTTPTransport(t, TypeSSE)
}

func testHTTPTransport(t *testing.T, typ ServerType) {
	_, s := httpTestServer(t, typ, nil)
	p := newTestPool(t, Options{CallTimeout: 300 * time.Millisecond})
	tools, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tools, func(tl Tool) bool { return tl.Name == "echo" }) {
		t.Fatalf("no echo in %v", tools)
	}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"hi"}`), toolexec.StatusSuccess, "echo: hi")
	wantReturn(t, mustCall(t, p, s, "weather", `{}`), toolexec.StatusSuccess, `{"temperature":21.5}`)
	wantConnects(t, p, 1)

	_, err = callTool(t, p, s, "hang", `{}`)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("hang: err = %v, want ErrTimeout", err)
	}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"after hang"}`), toolexec.StatusSuccess, "echo: after hang")
	wantConnects(t, p, 1)

	// The server drops the connection mid-call.
	_, err = callTool(t, p, s, "die", `{}`)
	if !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("die: err = %v, want ErrConnectionLost", err)
	}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "echo: back")
	wantConnects(t, p, 2)
}

func TestHTTPServerGoneFailsPromptly(t *testing.T) {
	t.Parallel()
	for _, typ := range []ServerType{TypeStreamableHTTP, TypeSSE} {
		t.Run(string(typ), func(t *testing.T) {
			ts, s := httpTestServer(t, typ, nil)
			p := newTestPool(t, Options{})
			mustCall(t, p, s, "echo", `{"message":"hi"}`)
			ts.CloseClientConnections() // Close alone waits for the event streams
			ts.Close()
			_, err := callTool(t, p, s, "echo", `{"message":"anyone?"}`)
			if err == nil {
				t.Fatal("call to a closed server succeeded")
			}
		})
	}
}

// requireBearer is middleware that refuses requests without the token,
// and records the headers it saw.
func requireBearer(token string, seen *sync.Map) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen.Store(r.Header.Get("X-Custom"), true)
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	for _, typ := range []ServerType{TypeStreamableHTTP, TypeSSE} {
		t.Run(string(typ), func(t *testing.T) {
			var seen sync.Map
			_, s := httpTestServer(t, typ, requireBearer("s3cret", &seen))
			p := newTestPool(t, Options{})

			_, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
			var e *Error
			if err == nil || !errors.As(err, &e) || e.Op != opConnect {
				t.Fatalf("without a token: err = %v, want a connect error", err)
			}

			// Letta's two forms: a token alone (sent as a bearer token),
			// and a header name with the value as given.
			s.Config.AuthToken = "s3cret"
			s.Config.CustomHeaders = map[string]string{"X-Custom": "one"}
			wantReturn(t, mustCall(t, p, s, "echo", `{"message":"in"}`), toolexec.StatusSuccess, "echo: in")
			s.Config.AuthHeader, s.Config.AuthToken = "Authorization", "Bearer s3cret"
			s.Config.CustomHeaders = map[string]string{"X-Custom": "two"}
			wantReturn(t, mustCall(t, p, s, "echo", `{"message":"in again"}`), toolexec.StatusSuccess, "echo: in again")
			if _, ok := seen.Load("one"); !ok {
				t.Error("custom header of the first config not sent")
			}
			if _, ok := seen.Load("two"); !ok {
				t.Error("custom header of the changed config not sent")
			}
		})
	}
}

func TestHTTPHeadersOnlyToServerOrigin(t *testing.T) {
	t.Parallel()
	var leaked sync.Map
	_, other := httpTestServer(t, TypeStreamableHTTP, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if v := r.Header.Get("Authorization"); v != "" {
				leaked.Store(v, true)
			}
			next.ServeHTTP(w, r)
		})
	})
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.Config.ServerURL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	p := newTestPool(t, Options{})
	s := Server{ID: "redirected", Config: ServerConfig{Type: TypeStreamableHTTP, ServerURL: redirector.URL + "/mcp", AuthToken: "s3cret"}}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"via"}`), toolexec.StatusSuccess, "echo: via")
	leaked.Range(func(k, _ any) bool {
		t.Errorf("the redirect's target got Authorization %q", k)
		return true
	})
}

func TestExecutor(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Options{AllowStdio: true, CallTimeout: 300 * time.Millisecond})
	s := stdioTestServer(t, "stdio-exec", "stdio", nil)
	ex := p.Executor(s)
	run := func(ctx context.Context, name, args string) (toolexec.Result, error) {
		return bounded(t, func() (toolexec.Result, error) {
			return ex.Run(ctx, toolexec.Call{ID: "call-1", Name: name, Arguments: json.RawMessage(args)})
		})
	}
	res, err := run(context.Background(), "echo", `{"message":"x"}`)
	if err != nil {
		t.Fatal(err)
	}
	wantReturn(t, res, toolexec.StatusSuccess, "echo: x")

	// Failures of the tool are results the model sees.
	for _, tc := range []struct{ tool, want string }{
		{"hang", "callTimeout"},
		{"die", "connection to the MCP server was lost"},
		{"no-such-tool", "no-such-tool"},
	} {
		res, err := run(context.Background(), tc.tool, `{}`)
		if err != nil || res.Status != toolexec.StatusError || !strings.Contains(res.Return, tc.want) {
			t.Fatalf("%s: (%+v, %v), want a StatusError result mentioning %q", tc.tool, res, err, tc.want)
		}
	}

	// Calls that could not be made, or that ctx ended, are errors.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := run(ctx, "echo", `{"message":"x"}`); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v, want context.Canceled", err)
	}
	if _, err := run(context.Background(), "echo", `"x"`); !errors.Is(err, ErrInvalidArguments) {
		t.Fatalf("bad arguments: err = %v, want ErrInvalidArguments", err)
	}
	off := NewPool(Options{})
	defer off.Close()
	if _, err := off.Executor(s).Run(context.Background(), toolexec.Call{Name: "echo"}); !errors.Is(err, ErrStdioDisabled) {
		t.Fatalf("stdio disabled: err = %v, want ErrStdioDisabled", err)
	}
}

// A streamable HTTP server that restarted has forgotten the session: the
// call is made again on a new one (the server did not run it).
func TestStreamableHTTPSessionLostIsRetried(t *testing.T) {
	t.Parallel()
	var current atomic.Pointer[http.Handler]
	restart := func() {
		srv := newTestServer(nil)
		var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
		current.Store(&h)
	}
	restart()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // no event stream: the client cannot notice the restart
			http.Error(w, "no event stream", http.StatusMethodNotAllowed)
			return
		}
		(*current.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	p := newTestPool(t, Options{})
	s := Server{ID: "restarting", Config: ServerConfig{Type: TypeStreamableHTTP, ServerURL: ts.URL}}
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"one"}`), toolexec.StatusSuccess, "echo: one")
	restart()
	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"two"}`), toolexec.StatusSuccess, "echo: two")
	wantConnects(t, p, 2)
}
