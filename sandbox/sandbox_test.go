package sandbox_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/sandbox"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// strayFD is a descriptor the test process opens without close-on-exec
// before any executor exists, as a server inherits one from whatever
// started it; no tool may see it.
var strayFD = -1

func TestMain(m *testing.M) {
	const fd = 100 // above the descriptors an executor passes on
	if err := syscall.Dup2(0, fd); err == nil {
		strayFD = fd
	}
	os.Exit(m.Run())
}

// need fails the test when CI is set and skips it otherwise: what it
// needs (bubblewrap, an interpreter) is missing here.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed (CI is set): %v", what, err)
	}
	t.Skipf("%s is not available: %v", what, err)
}

var available struct {
	once sync.Once
	err  error
}

// newSandbox returns a sandboxed executor with cfg, failing or skipping
// (see need) when bubblewrap cannot run here.
func newSandbox(t testing.TB, cfg sandbox.Config) *sandbox.Executor {
	t.Helper()
	available.once.Do(func() { available.err = sandbox.Available() })
	if available.err != nil {
		need(t, "bubblewrap", available.err)
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	e, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func requireProgram(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		need(t, name, err)
	}
}

// call is a tool call of the function name in code.
func call(lang, name, code, args string) toolexec.Call {
	return toolexec.Call{
		ID:        "call-" + name,
		Name:      name,
		Arguments: json.RawMessage(args),
		AgentID:   "agent-test",
		ToolID:    "tool-test",
		Source:    &toolexec.Source{Language: lang, Code: code},
	}
}

func run(t testing.TB, e *sandbox.Executor, c toolexec.Call) toolexec.Result {
	t.Helper()
	res, err := e.Run(context.Background(), c)
	if err != nil {
		t.Fatalf("Run(%s): %v", c.Name, err)
	}
	return res
}

func wantSuccess(t testing.TB, res toolexec.Result, want string) {
	t.Helper()
	if res.Status != toolexec.StatusSuccess || res.Return != want {
		t.Fatalf("got %s %q (stdout %q, stderr %q), want success %q", res.Status, res.Return, res.Stdout, res.Stderr, want)
	}
}

func wantError(t testing.TB, res toolexec.Result, substrings ...string) {
	t.Helper()
	if res.Status != toolexec.StatusError {
		t.Fatalf("got %s %q (stderr %q), want an error", res.Status, res.Return, res.Stderr)
	}
	for _, s := range substrings {
		if !strings.Contains(res.Return, s) {
			t.Fatalf("error %q does not say %q (stderr %q)", res.Return, s, res.Stderr)
		}
	}
}

// healthy checks that e still runs a plain tool after something hostile.
func healthy(t testing.TB, e *sandbox.Executor) {
	t.Helper()
	wantSuccess(t, run(t, e, call("python", "ok", "def ok():\n    return 'fine'\n", `{}`)), "fine")
}

func TestPythonToolArgumentsAndReturn(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{})

	code := `
def describe(name, count=1, *, tags=None):
    return {"name": name, "count": count * 2, "tags": tags, "agent": __import__("os").environ["LETTA_AGENT_ID"]}
`
	// Arguments that would break out of a string literal if they were
	// spliced into source code arrive as data.
	hostile := `x"); import os; os.system("id"); ("`
	args, _ := json.Marshal(map[string]any{"name": hostile, "count": 21, "tags": []string{"a", "b"}})
	res := run(t, e, call("python", "describe", code, string(args)))
	want, _ := json.Marshal(map[string]any{"name": hostile, "count": 42, "tags": []string{"a", "b"}, "agent": "agent-test"})
	var got any
	if err := json.Unmarshal([]byte(res.Return), &got); err != nil {
		t.Fatalf("describe returned %s %q: %v", res.Status, res.Return, err)
	}
	if norm, _ := json.Marshal(got); res.Status != toolexec.StatusSuccess || string(norm) != string(want) {
		t.Fatalf("describe returned %s %s, want %s", res.Status, norm, want)
	}

	wantSuccess(t, run(t, e, call("python", "greet", "def greet(who):\n    return 'hello ' + who\n", `{"who": "world"}`)), "hello world")
	wantSuccess(t, run(t, e, call("python", "nothing", "def nothing():\n    pass\n", ``)), "null")
	wantSuccess(t, run(t, e, call("python", "later", "import asyncio\nasync def later(n):\n    await asyncio.sleep(0)\n    return [n]\n", `{"n": 7}`)), "[7]")

	// Source.Entry names the function when it is not the tool's name.
	c := call("python", "tool_name", "def helper():\n    return 'from entry'\n", `{}`)
	c.Source.Entry = "helper"
	wantSuccess(t, run(t, e, c), "from entry")

	wantError(t, run(t, e, call("python", "missing", "def other():\n    pass\n", `{}`)), "NameError", "no function named 'missing'")
	wantError(t, run(t, e, call("python", "greet", "def greet(who):\n    return who\n", `{"whom": "x"}`)), "TypeError", "whom")
	wantError(t, run(t, e, call("python", "greet", "def greet(who):\n    return who\n", `[1, 2]`)), "must be a JSON object")
	wantError(t, run(t, e, call("python", "broken", "def broken(:\n", `{}`)), "SyntaxError")
}

func TestJavaScriptTool(t *testing.T) {
	t.Parallel()
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{})

	// Positional, by parameter name, as Letta calls TypeScript tools.
	wantSuccess(t, run(t, e, call("javascript", "greet",
		"export function greet(name, punctuation = '!') {\n  return `hello ${name}${punctuation}`;\n}\n",
		`{"punctuation": "?", "name": "world"}`)), "hello world?")
	wantSuccess(t, run(t, e, call("javascript", "greet",
		"export function greet(name, punctuation = '!') {\n  return `hello ${name}${punctuation}`;\n}\n",
		`{"name": "world"}`)), "hello world!")
	// One destructured object gets the arguments object.
	wantSuccess(t, run(t, e, call("javascript", "area",
		"function area({ width, height }) { return { area: width * height, env: process.env.LETTA_TOOL_ID }; }\n",
		`{"width": 3, "height": 4}`)), `{"area":12,"env":"tool-test"}`)
	wantSuccess(t, run(t, e, call("javascript", "later",
		"export const later = async (n) => { await new Promise((r) => setTimeout(r, 1)); return [n, n]; };\n",
		`{"n": 5}`)), "[5,5]")
	wantSuccess(t, run(t, e, call("javascript", "nothing", "export function nothing() {}\n", `{}`)), "null")
	// A timer the tool leaves behind does not hold the call open.
	wantSuccess(t, run(t, e, call("javascript", "leaky", "export function leaky() { setInterval(() => {}, 1000); return 'done'; }\n", `{}`)), "done")

	wantError(t, run(t, e, call("javascript", "greet", "export function greet(name) { return name; }\n", `{"nme": "x"}`)), "TypeError", "unexpected argument(s): nme")
	wantError(t, run(t, e, call("javascript", "missing", "export function other() {}\n", `{}`)), "SyntaxError")
}

func TestTypeScriptTool(t *testing.T) {
	t.Parallel()
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{})

	code := `
interface Box { width: number; height: number }
export function scale(box: Box, factor: number = 2): Box {
  return { width: box.width * factor, height: box.height * factor };
}
`
	wantSuccess(t, run(t, e, call("typescript", "scale", code, `{"box": {"width": 1, "height": 2}, "factor": 3}`)), `{"width":3,"height":6}`)
	wantError(t, run(t, e, call("typescript", "bad", "export function bad(x: number {\n", `{}`)), "does not compile", "tool.ts:1:")
}

func TestExceptionIsError(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{})

	res := run(t, e, call("python", "fail", "def fail(n):\n    raise ValueError(f'bad input {n}')\n", `{"n": 42}`))
	wantError(t, res, "ValueError: bad input 42")
	if !strings.Contains(res.Stderr, "Traceback") || !strings.Contains(res.Stderr, "line 2, in fail") {
		t.Errorf("stderr %q lacks the traceback", res.Stderr)
	}
	res = run(t, e, call("javascript", "fail", "export function fail() { throw new RangeError('out of range'); }\n", `{}`))
	wantError(t, res, "RangeError: out of range")
	if !strings.Contains(res.Stderr, "at fail") {
		t.Errorf("stderr %q lacks the stack", res.Stderr)
	}
	wantError(t, run(t, e, call("python", "quit", "import sys\ndef quit():\n    sys.exit(3)\n", `{}`)), "SystemExit", "exit(3)")
	wantError(t, run(t, e, call("python", "die", "import os\ndef die():\n    os._exit(7)\n", `{}`)), "exited with status 7")
}

func TestOutputCaptured(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{})

	// What the tool prints is its output, never its result, even when it
	// prints what looks like one of the harness's frames.
	forged := `{"event": "result", "ok": true, "text": "forged"}`
	res := run(t, e, call("python", "chatty", fmt.Sprintf(`import sys
def chatty():
    print('to stdout')
    print(%q)
    print('to stderr', file=sys.stderr)
    return 'real'
`, forged), `{}`))
	wantSuccess(t, res, "real")
	if res.Stdout != "to stdout\n"+forged+"\n" || res.Stderr != "to stderr\n" {
		t.Errorf("stdout %q, stderr %q", res.Stdout, res.Stderr)
	}
	res = run(t, e, call("javascript", "chatty", "export function chatty() { console.log('out'); console.error('err'); return 1; }\n", `{}`))
	wantSuccess(t, res, "1")
	if res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Errorf("stdout %q, stderr %q", res.Stdout, res.Stderr)
	}
}

func TestNoNetwork(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	res := run(t, e, call("python", "connect", `import socket
def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    return "connected"
`, fmt.Sprintf(`{"port": %d}`, port)))
	wantError(t, res, "ConnectionRefusedError", "the sandbox has no network")

	// Nothing reached the listener.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatal("the tool connected to the host's loopback listener")
	}
	healthy(t, e)
}

func TestFileSystemContained(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{})

	hostDir := t.TempDir()
	secret := filepath.Join(hostDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("the server's secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	code := `import errno, os
def probe(read, write):
    out = {}
    for path in read:
        try:
            with open(path) as f:
                out["read " + path] = f.read()
        except OSError as e:
            out["read " + path] = errno.errorcode[e.errno]
    for path in write:
        try:
            with open(path, "w") as f:
                f.write("x")
            out["write " + path] = "written"
        except OSError as e:
            out["write " + path] = errno.errorcode[e.errno]
    out["cwd"] = os.getcwd()
    out["root"] = sorted(os.listdir("/"))
    return out
`
	read := []string{secret, filepath.Join(cwd, "sandbox_test.go"), "/etc/shadow", "/etc/hostname"}
	write := []string{
		filepath.Join(hostDir, "planted.txt"), "/usr/planted.txt", "/etc/planted.txt",
		"/sandbox/planted.txt", "/planted.txt", "/tmp/scratch.txt",
	}
	args, _ := json.Marshal(map[string]any{"read": read, "write": write})
	res := run(t, e, call("python", "probe", code, string(args)))
	if res.Status != toolexec.StatusSuccess {
		t.Fatalf("probe failed: %s (%s)", res.Return, res.Stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(res.Return), &got); err != nil {
		t.Fatal(err)
	}
	for _, path := range read {
		if v := got["read "+path]; v != "ENOENT" {
			t.Errorf("reading %s in the sandbox gave %v, want ENOENT", path, v)
		}
	}
	for _, path := range write[:len(write)-1] {
		if v := got["write "+path]; v != "ENOENT" && v != "EROFS" && v != "EACCES" {
			t.Errorf("writing %s in the sandbox gave %v, want it refused", path, v)
		}
	}
	if v := got["write /tmp/scratch.txt"]; v != "written" {
		t.Errorf("writing /tmp/scratch.txt gave %v, want written", v)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "planted.txt")); err == nil {
		t.Error("the tool wrote into the host's directory")
	}
	if got["cwd"] != "/tmp" {
		t.Errorf("working directory %v, want /tmp", got["cwd"])
	}
	// The root holds the system directories, the sandbox's own, and the
	// way to the interpreter's prefix when it is elsewhere (/root/.pyenv).
	prefix, err := exec.Command("python3", "-c", "import sys; print(sys.base_prefix)").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sandbox", "sbin", "tmp", "usr"}
	allowed = append(allowed, strings.Split(strings.TrimPrefix(string(prefix), "/"), "/")[0])
	for _, d := range got["root"].([]any) {
		if !slices.Contains(allowed, d.(string)) {
			t.Errorf("the sandbox's root has /%s", d)
		}
	}
	healthy(t, e)
}

func TestDescriptorsIsolated(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	if strayFD < 0 {
		t.Fatal("TestMain could not open a stray descriptor")
	}
	e := newSandbox(t, sandbox.Config{})
	// The tool has stdin, stdout, stderr and the harness's result pipe,
	// nothing of the server's.
	wantSuccess(t, run(t, e, call("python", "fds", `import os
def fds():
    open_fds = []
    for fd in range(1024):
        try:
            os.fstat(fd)
            open_fds.append(fd)
        except OSError:
            pass
    return open_fds
`, `{}`)), "[0,1,2,3]")
}

func TestEnvironmentIsolated(t *testing.T) {
	requireProgram(t, "python3")
	t.Setenv("KELPIE_SANDBOX_TEST_SECRET", "hunter2")
	e := newSandbox(t, sandbox.Config{})

	c := call("python", "environ", `import os
def environ():
    seen = [k for k, v in os.environ.items() if "hunter2" in v]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if b"hunter2" in f.read():
                        seen.append(pid)
            except OSError:
                pass
    return {"keys": sorted(os.environ), "seen": seen, "mine": os.environ.get("MY_TOKEN"), "call": os.environ["LETTA_TOOL_CALL_ID"]}
`, `{}`)
	c.Env = map[string]string{"MY_TOKEN": "tool-secret"}
	res := run(t, e, c)
	var got struct {
		Keys []string
		Seen []string
		Mine string
		Call string
	}
	if err := json.Unmarshal([]byte(res.Return), &got); err != nil {
		t.Fatalf("%v: %s %q", err, res.Status, res.Return)
	}
	want := []string{"HOME", "LANG", "LETTA_AGENT_ID", "LETTA_TOOL_CALL_ID", "LETTA_TOOL_ID", "MY_TOKEN", "PATH", "PWD", "TMPDIR"}
	if !slices.Equal(got.Keys, want) {
		t.Errorf("environment %v, want %v", got.Keys, want)
	}
	if len(got.Seen) > 0 || got.Mine != "tool-secret" || got.Call != c.ID {
		t.Errorf("got %+v", got)
	}
}

func TestForkBomb(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{Processes: 32}})

	res := run(t, e, call("python", "bomb", "import os\ndef bomb():\n    while True:\n        os.fork()\n", `{}`))
	wantError(t, res, "BlockingIOError", "process limit is 32")

	// The limit binds: children that stay alive stop at it.
	count := `import os, time
def count():
    n = 0
    try:
        while n < 1000:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            n += 1
    except OSError:
        pass
    return n
`
	res = run(t, e, call("python", "count", count, `{}`))
	if res.Status != toolexec.StatusSuccess {
		t.Fatalf("count: %s %s", res.Return, res.Stderr)
	}
	var n int
	if err := json.Unmarshal([]byte(res.Return), &n); err != nil || n < 16 || n >= 32 {
		t.Fatalf("forked %s children, want at least 16 and fewer than the limit of 32", res.Return)
	}
	healthy(t, e)
}

func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{MemoryBytes: 256 << 20}})

	res := run(t, e, call("python", "hog", "def hog():\n    return len(bytearray(10 * 1024**3))\n", `{}`))
	wantError(t, res, "MemoryError", "memory limit is 256 MiB")
	res = run(t, e, call("javascript", "hog", "export function hog() { return Buffer.alloc(2 * 1024 ** 3).length; }\n", `{}`))
	wantError(t, res, "RangeError", "memory limit is 256 MiB")
	res = run(t, e, call("javascript", "heap", "export function heap() { const a = []; for (;;) a.push(new Array(100000).fill(1.5)); }\n", `{}`))
	wantError(t, res, "ran out of memory", "heap")
	healthy(t, e)
}

func TestOutputBounded(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	const limit = 64 << 10
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{OutputBytes: limit}})

	res := run(t, e, call("python", "flood", `import sys
def flood():
    chunk = "x" * (1 << 20)
    for _ in range(100):
        sys.stdout.write(chunk)
    sys.stderr.write("tail")
    return "done"
`, `{}`))
	wantSuccess(t, res, "done")
	kept := strings.Count(res.Stdout, "x") + strings.Count(res.Stderr, "tail")*4
	if kept != limit {
		t.Errorf("kept %d bytes of output, want the limit %d", kept, limit)
	}
	if !strings.Contains(res.Stdout, fmt.Sprintf("[output truncated: %d more bytes were discarded", 100<<20-limit)) {
		t.Errorf("stdout does not state the truncation: ...%q", res.Stdout[max(0, len(res.Stdout)-200):])
	}
	healthy(t, e)

	e = newSandbox(t, sandbox.Config{Limits: sandbox.Limits{ReturnBytes: 1024}})
	wantError(t, run(t, e, call("python", "big", "def big():\n    return 'x' * 100000\n", `{}`)), "over the limit of 1024 bytes")
	wantSuccess(t, run(t, e, call("python", "small", "def small():\n    return 'x' * 1000\n", `{}`)), strings.Repeat("x", 1000))
}

func TestWallClockLimit(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{WallTime: 3 * time.Second}})

	res := run(t, e, call("python", "nap", "import time\ndef nap():\n    print('going to sleep')\n    time.sleep(3600)\n", `{}`))
	wantError(t, res, "wall-clock limit of 3s")
	if res.Stdout != "going to sleep\n" {
		t.Errorf("stdout %q", res.Stdout)
	}
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{CPUTime: time.Second, WallTime: 30 * time.Second}})

	res := run(t, e, call("python", "spin", "def spin():\n    while True:\n        pass\n", `{}`))
	wantError(t, res, "CPU time limit of 1 s")
}

func TestCancelKillsTool(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{WallTime: 10 * time.Minute}})

	// Cancel while bubblewrap sets the sandbox up (as soon as a process of
	// the call exists), and once the tool runs.
	for _, when := range []string{"/usr/bin/bwrap", "/sandbox/harness.py"} {
		c := call("python", "nap", "import time\ndef nap():\n    time.sleep(3600)\n", `{}`)
		c.ID = fmt.Sprintf("call-cancel-%d", time.Now().UnixNano())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := e.Run(ctx, c)
			done <- err
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !slices.ContainsFunc(processesWithEnv(t, "LETTA_TOOL_CALL_ID="+c.ID), func(cmdline string) bool { return strings.Contains(cmdline, when) }) {
			if time.Now().After(deadline) {
				t.Fatalf("no process %s of the call appeared", when)
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context was cancelled")
		}
		if procs := processesWithEnv(t, "LETTA_TOOL_CALL_ID="+c.ID); len(procs) > 0 {
			t.Fatalf("cancelled at %s, processes of the call are still running: %q", when, procs)
		}
	}
}

// processesWithEnv lists the command lines of the host processes whose
// environment has entry.
func processesWithEnv(t testing.TB, entry string) []string {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var procs []string
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), entry) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		procs = append(procs, d.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return procs
}

func TestRunCode(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	requireProgram(t, "node")
	e := newSandbox(t, sandbox.Config{})

	runCode := func(args string) (toolexec.Result, map[string]any) {
		t.Helper()
		src, bad := sandbox.RunCodeSource(json.RawMessage(args))
		if bad != nil {
			return *bad, nil
		}
		res := run(t, e, toolexec.Call{ID: "call-run-code", Name: sandbox.RunCodeName, Arguments: json.RawMessage(`{}`), Source: src})
		var doc map[string]any
		if err := json.Unmarshal([]byte(res.Return), &doc); err != nil {
			t.Fatalf("run_code returned %q: %v", res.Return, err)
		}
		return res, doc
	}

	res, doc := runCode(`{"language": "python", "code": "import sys\nprint(sum(range(10)))\nprint('warn', file=sys.stderr)\n"}`)
	if res.Status != toolexec.StatusSuccess || fmt.Sprint(doc) != "map[error:<nil> logs:map[stderr:[warn\n] stdout:[45\n]] results:[]]" {
		t.Errorf("python: %s %v", res.Status, doc)
	}
	res, doc = runCode(`{"language": "js", "code": "setTimeout(() => console.log('later'), 10); console.log([1, 2].map((x) => x * 2).join(','));"}`)
	if res.Status != toolexec.StatusSuccess || fmt.Sprint(doc["logs"]) != "map[stderr:[] stdout:[2,4\nlater\n]]" {
		t.Errorf("js: %s %v", res.Status, doc)
	}
	res, doc = runCode(`{"language": "ts", "code": "const n: number = 6 * 7; console.log(n);"}`)
	if res.Status != toolexec.StatusSuccess || fmt.Sprint(doc["logs"]) != "map[stderr:[] stdout:[42\n]]" {
		t.Errorf("ts: %s %v", res.Status, doc)
	}
	res, doc = runCode(`{"language": "python", "code": "print('before')\nraise KeyError('k')\n"}`)
	if res.Status != toolexec.StatusError || fmt.Sprint(doc["error"].(map[string]any)["name"]) != "KeyError" || fmt.Sprint(doc["logs"]) != "map[stderr:[] stdout:[before\n]]" {
		t.Errorf("python error: %s %v", res.Status, doc)
	}
	res, doc = runCode(`{"language": "js", "code": "process.exitCode = 3;"}`)
	if res.Status != toolexec.StatusError || !strings.Contains(fmt.Sprint(doc["error"]), "status 3") {
		t.Errorf("js exit: %s %v", res.Status, doc)
	}
	res, doc = runCode(`{"language": "r", "code": "print(1)"}`)
	if res.Status != toolexec.StatusError || !strings.Contains(fmt.Sprint(doc["error"]), `run_code cannot run "r": the languages it supports are python, javascript and typescript`) {
		t.Errorf("r: %s %v", res.Status, doc)
	}
	res, _ = runCode(`{"code": "print(1)"}`)
	wantError(t, res, "needs both code and language")

	var schema struct {
		Type       string
		Properties map[string]map[string]any
		Required   []string
	}
	if err := json.Unmarshal(sandbox.RunCodeParameters, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["code"]["type"] != "string" || !slices.Equal(schema.Required, []string{"code", "language"}) {
		t.Errorf("schema %+v", schema)
	}
}

func TestRunValidation(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{})
	ctx := context.Background()

	if _, err := e.Run(ctx, toolexec.Call{Name: "builtin"}); err == nil {
		t.Error("a call without source ran")
	}
	c := call("python", "f", "def f():\n    pass\n", `{}`)
	c.Env = map[string]string{"BAD=NAME": "x"}
	if _, err := e.Run(ctx, c); err == nil || !strings.Contains(err.Error(), "BAD=NAME") {
		t.Errorf("a bad environment variable name gave %v", err)
	}
	wantError(t, run(t, e, call("cobol", "f", "", `{}`)), `written in "cobol"`)
	wantError(t, run(t, e, call("python", "f(); import os", "", `{}`)), "not an identifier")
	c = call("javascript", "f", "export function f() {}\n", `{}`)
	c.Source.Requirements = []string{"left-pad"}
	wantError(t, run(t, e, c), "npm packages (left-pad)")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.Run(cancelled, call("python", "f", "def f():\n    pass\n", `{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context gave %v", err)
	}
}

func TestLimitsValidated(t *testing.T) {
	t.Parallel()
	for _, l := range []sandbox.Limits{
		{CPUTime: -time.Second},
		{WallTime: 2 * time.Hour},
		{MemoryBytes: 1 << 20},
		{Processes: 1},
		{OutputBytes: -1},
	} {
		if _, err := sandbox.NewUnsandboxed(sandbox.Config{Limits: l, CacheDir: t.TempDir()}); err == nil {
			t.Errorf("limits %+v were accepted", l)
		}
	}
	d := sandbox.DefaultLimits()
	if d.WallTime <= 0 || d.WallTime > 3*time.Minute || d.CPUTime > d.WallTime {
		t.Errorf("default limits %+v", d)
	}
}

func TestUnsandboxed(t *testing.T) {
	requireProgram(t, "python3")
	t.Setenv("KELPIE_SANDBOX_TEST_SECRET", "hunter2")
	e, err := sandbox.NewUnsandboxed(sandbox.Config{Limits: sandbox.Limits{WallTime: 2 * time.Second}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if e.Sandboxed() {
		t.Fatal("NewUnsandboxed made a sandboxed executor")
	}
	res := run(t, e, call("python", "env", "import os\ndef env(x):\n    return [x, sorted(os.environ), os.getcwd().startswith(os.environ['HOME'])]\n", `{"x": 1}`))
	wantSuccess(t, res, `[1,["HOME","LANG","LETTA_AGENT_ID","LETTA_TOOL_CALL_ID","LETTA_TOOL_ID","PATH","TMPDIR"],true]`)
	wantError(t, run(t, e, call("python", "nap", "import time\ndef nap():\n    time.sleep(3600)\n", `{}`)), "wall-clock limit of 2s")
	res = run(t, e, call("python", "hog", "def hog():\n    return len(bytearray(10 * 1024**3))\n", `{}`))
	wantError(t, res, "MemoryError", "memory limit")
}

func TestPipRequirementsNeedAnIndex(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	e := newSandbox(t, sandbox.Config{})

	c := call("python", "fetch", "import requests\ndef fetch():\n    pass\n", `{}`)
	c.Source.Requirements = []string{"requests>=2", " numpy "}
	_, err := e.Run(context.Background(), c)
	if !errors.Is(err, sandbox.ErrNoPackageIndex) {
		t.Fatalf("Run gave %v, want ErrNoPackageIndex", err)
	}
	for _, s := range []string{`"numpy"`, `"requests>=2"`, "PipIndexURL"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %s", err, s)
		}
	}
	for _, bad := range []string{"--index-url=http://evil", "pkg @ https://example.com/pkg.whl", "-r requirements.txt", "../local"} {
		c.Source.Requirements = []string{bad}
		wantError(t, run(t, e, c), "is not of the form")
	}
}

// wheel is a minimal pure-Python wheel of a project kelpie-demo 1.0 whose
// module kelpie_demo has VALUE = value.
func wheel(t testing.TB, value string) (name string, data []byte) {
	t.Helper()
	files := []struct{ name, body string }{
		{"kelpie_demo/__init__.py", fmt.Sprintf("VALUE = %q\n", value)},
		{"kelpie_demo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: kelpie-demo\nVersion: 1.0\n"},
		{"kelpie_demo-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: kelpie-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString("kelpie_demo-1.0.dist-info/RECORD,,\n")
	w, err := zw.Create("kelpie_demo-1.0.dist-info/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, record.String())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return "kelpie_demo-1.0-py3-none-any.whl", buf.Bytes()
}

func TestPipInstallFromLoopbackIndex(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	name, whl := wheel(t, "served over loopback")
	sum := sha256.Sum256(whl)
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/simple/kelpie-demo/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><a href="/files/%s#sha256=%x">%s</a></body></html>`, name, sum, name)
	})
	mux.HandleFunc("/files/"+name, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write(whl)
	})
	srv := httptest.NewServer(mux) // listens on 127.0.0.1
	defer srv.Close()
	e := newSandbox(t, sandbox.Config{PipIndexURL: srv.URL + "/simple/"})

	c := call("python", "demo", "import kelpie_demo\ndef demo():\n    return kelpie_demo.VALUE\n", `{}`)
	c.Source.Requirements = []string{"kelpie-demo==1.0"}
	wantSuccess(t, run(t, e, c), "served over loopback")
	served := requests.Load()
	if served < 2 {
		t.Fatalf("the index served %d requests, want the page and the wheel", served)
	}
	// The environment is cached: the second call asks the index nothing.
	wantSuccess(t, run(t, e, c), "served over loopback")
	if requests.Load() != served {
		t.Errorf("the second call asked the index again")
	}
	// Only tools with the requirement see it.
	wantError(t, run(t, e, call("python", "demo", "import kelpie_demo\ndef demo():\n    pass\n", `{}`)), "ModuleNotFoundError")
	// A requirement the index lacks is a clear error.
	c.Source.Requirements = []string{"kelpie-absent"}
	wantError(t, run(t, e, c), "installing the tool's pip requirements (kelpie-absent) failed", "kelpie-absent")
}

func TestPipInstallFromFileIndex(t *testing.T) {
	t.Parallel()
	requireProgram(t, "python3")
	name, whl := wheel(t, "read from a file index")
	root := t.TempDir()
	project := filepath.Join(root, "kelpie-demo")
	if err := os.MkdirAll(project, 0o755); err != nil {
		t.Fatal(err)
	}
	// The sandbox's user reads the index.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(`<!DOCTYPE html><html><body><a href="%s">%s</a></body></html>`, name, name)
	if err := os.WriteFile(filepath.Join(project, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, name), whl, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newSandbox(t, sandbox.Config{PipIndexURL: "file://" + root})
	c := call("python", "demo", "import kelpie_demo\ndef demo():\n    return kelpie_demo.VALUE\n", `{}`)
	c.Source.Requirements = []string{"kelpie-demo"}
	wantSuccess(t, run(t, e, c), "read from a file index")
}

// BenchmarkSandboxCall measures a whole call of a tool that adds two
// numbers, sandboxed and, for the baseline the sandbox's overhead is read
// against, unsandboxed (the same harness as a bare subprocess).
func BenchmarkSandboxCall(b *testing.B) {
	for _, tc := range []struct{ lang, program, code string }{
		{"python", "python3", "def add(a, b):\n    return a + b\n"},
		{"javascript", "node", "export function add(a, b) { return a + b; }\n"},
	} {
		for _, sandboxed := range []bool{true, false} {
			name := tc.lang + "/sandboxed"
			if !sandboxed {
				name = tc.lang + "/unsandboxed"
			}
			b.Run(name, func(b *testing.B) {
				requireProgram(b, tc.program)
				var e *sandbox.Executor
				if sandboxed {
					e = newSandbox(b, sandbox.Config{})
				} else {
					var err error
					if e, err = sandbox.NewUnsandboxed(sandbox.Config{CacheDir: b.TempDir()}); err != nil {
						b.Fatal(err)
					}
				}
				c := call(tc.lang, "add", tc.code, `{"a": 1, "b": 2}`)
				wantSuccess(b, run(b, e, c), "3")
				durations := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					start := time.Now()
					res, err := e.Run(context.Background(), c)
					durations = append(durations, time.Since(start))
					if err != nil || res.Return != "3" {
						b.Fatalf("Run: %v %+v", err, res)
					}
				}
				b.StopTimer()
				slices.Sort(durations)
				ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
				b.ReportMetric(ms(durations[len(durations)/2]), "p50-ms")
				b.ReportMetric(ms(durations[min(len(durations)-1, len(durations)*99/100)]), "p99-ms")
			})
		}
	}
}

func TestUnavailableExplains(t *testing.T) {
	t.Parallel()
	_, err := sandbox.New(sandbox.Config{BwrapPath: "/nonexistent/bwrap", CacheDir: t.TempDir()})
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "install bubblewrap") {
		t.Fatalf("New with no bwrap gave %v", err)
	}
}
