// Package sandbox runs the code of custom tools and of run_code (Python,
// JavaScript, TypeScript) in a bubblewrap sandbox. An *Executor is a
// toolexec.Executor.
//
// # Isolation
//
// Each call runs in a fresh bwrap(1) sandbox with its own user, PID, IPC,
// UTS, cgroup and (unless Config.Network is set) network namespace; no
// network means only a loopback interface that is down. Its root is a
// read-only tmpfs holding read-only binds of the system directories (/usr
// and the /bin, /lib… links or directories), a handful of files from /etc
// (the dynamic linker's cache, time zone, certificates — never /etc
// itself), and the interpreter's own prefix when it lives elsewhere (a
// pyenv or nvm install). Nothing else of the host is there: not /, /root,
// /home, the server's data or working directory. /tmp is a private tmpfs
// of Limits.ScratchBytes and the working directory; the call's harness,
// source and arguments are read-only under /sandbox; /etc/passwd names
// only the sandbox user. The tool runs as uid 1000 in its namespace with
// no capabilities, no_new_privs and nosuid mounts, as PID 1 of its PID
// namespace, so every process it starts dies with it; it dies with bwrap
// (a parent-death signal) and bwrap with the server, and it gets a
// session of its own (--new-session: it cannot push input into a
// terminal).
//
// A server that is not root gets bwrap's usual unprivileged user
// namespace, which maps the sandbox user to the server's user and where
// further user namespaces are disabled. A server running as root would get
// a sandbox user that is host root, on whom RLIMIT_NPROC never binds. So
// in root mode the sandbox's host user is Config.SandboxUID (a dedicated
// user, DefaultSandboxID unless configured): the executor has that user
// create a user namespace per call (so it owns it), maps it to the
// sandbox's uid 1000 and host root to uid 1, and runs bwrap as it; bwrap
// joins the namespace (--userns) and has its capabilities there to set
// the sandbox up, which lets it bind an interpreter from a directory only
// root may enter (/root for a pyenv install). The tool, with no
// capabilities, gains nothing by the mapping; everything of the call runs
// as an unprivileged host user whose process count is its own
// namespace's.
//
// # Bounds
//
// Limits bounds CPU time, memory, processes, open files and file size
// (rlimits set by prlimit(1) inside the sandbox), the scratch space, the
// captured output and return value, and wall-clock time: when it passes,
// or when ctx is done, the sandbox's PID 1 is killed, and with it
// everything in its PID namespace. A limit that ends a call is named in
// the error the model sees. Memory is bounded per process (a call may hold
// up to Processes × MemoryBytes): a cgroup would bound the sum, but a
// server can rarely create cgroups of its own (cgroup v2 needs a delegated
// subtree), so the executor does not use them.
//
// # Calls
//
// The arguments reach the tool as JSON in a file, never as source code. A
// small harness per language (harness/) loads the tool's source and calls
// its function: Python with keyword arguments; JavaScript with one object
// when the function destructures one, else positionally in the order of
// its parameter names (as Letta calls TypeScript tools). TypeScript is
// type-stripped by esbuild before it runs. The harness reports the result
// on file descriptor 3, which the tool's printing cannot reach: a string
// is returned as it is, any other value as JSON, an exception as a
// StatusError "Type: message" with its traceback appended to stderr.
// Source.Script runs the code as a program instead (run_code; see
// RunCodeName) and returns Letta's run_code result document.
//
// The tool's environment is Call.Env, LETTA_AGENT_ID, LETTA_TOOL_ID,
// LETTA_TOOL_CALL_ID and a minimal PATH, HOME, LANG and TMPDIR; nothing
// of the server's own environment.
//
// Python requirements (Source.Requirements) are installed with pip from
// Config.PipIndexURL, wheels only (so no package's build code runs), into
// a virtual environment cached per set of requirements under
// Config.CacheDir. The installation runs in a sandbox like a call's but
// with the host's network (to reach the index) and the environment's
// directory writable. Without an index a call with requirements fails
// with ErrNoPackageIndex.
//
// NewUnsandboxed is the same executor without bubblewrap, for operators
// who choose no sandbox: see its documentation for what that gives up.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// Environment variables the executor sets for every tool.
const (
	EnvAgentID    = "LETTA_AGENT_ID"
	EnvToolID     = "LETTA_TOOL_ID"
	EnvToolCallID = "LETTA_TOOL_CALL_ID"
)

// Languages a Source may be in.
const (
	LanguagePython     = "python"
	LanguageJavaScript = "javascript"
	LanguageTypeScript = "typescript"
)

// Bounds on what a call may bring.
const (
	codeBytesMax      = 1 << 20   // a tool's or program's source
	argumentsBytesMax = 1 << 20   // the JSON arguments
	envVarsMax        = 1024      // Call.Env entries
	envBytesMax       = 256 << 10 // Call.Env names and values together
	frameSlackBytes   = 64 << 10  // result frame bytes beyond ReturnBytes: JSON framing, error type, traceback
	waitDelay         = 2 * time.Second
	probeTimeout      = 10 * time.Second
	sandboxID         = 1000 // the tool's uid and gid inside the sandbox
	hostRootInside    = 1    // host root's uid and gid in a root-mode sandbox's user namespace
)

// Paths inside the sandbox.
const (
	callDirInside = "/sandbox"
	scratchInside = "/tmp"
)

// Config configures an Executor. The zero value is usable: every empty
// field has a default.
type Config struct {
	// Limits bound each call; zero fields take DefaultLimits.
	Limits Limits
	// Network lets tools use the host's network. The default is no
	// network at all.
	Network bool
	// BwrapPath, PythonPath and NodePath name the programs; "" looks up
	// bwrap, python3 and node in PATH. A missing interpreter is not an
	// error until a call needs it.
	BwrapPath  string
	PythonPath string
	NodePath   string
	// TempDir holds the per-call directories (removed after each call);
	// "" is os.TempDir().
	TempDir string
	// CacheDir holds the virtual environments of Python requirements; ""
	// is "kelpie/sandbox" under os.UserCacheDir().
	CacheDir string
	// PipIndexURL is the package index pip installs requirements from
	// (pip's --index-url; an http(s) or file URL). Without one, tools with
	// requirements fail with ErrNoPackageIndex.
	PipIndexURL string
	// InstallTimeout bounds installing one set of requirements; 0 is 5
	// minutes.
	InstallTimeout time.Duration
	// SandboxUID and SandboxGID are the host user and group a sandbox's
	// processes run as when the server runs as root; 0 is
	// DefaultSandboxID. Ignored otherwise: then they run as the server's
	// own user. No other process on the host should run as this user:
	// one that did could enter the sandboxes' namespaces and, for
	// example, read a running tool's environment.
	SandboxUID int
	SandboxGID int
}

const installTimeoutDefault = 5 * time.Minute

// DefaultSandboxID is the host user and group ID of the sandboxes of a
// server running as root when Config names none: one chosen to belong to
// nothing else (above the ranges that distributions, systemd and sssd
// allocate), rather than the widely shared nobody.
const DefaultSandboxID = 2100000000

// Executor runs tool calls in sandboxes. It is safe for concurrent use.
type Executor struct {
	limits         Limits
	network        bool
	isolated       bool // bubblewrap; false for NewUnsandboxed
	rootMode       bool // the server is root: a user namespace per call (see package doc)
	uid, gid       int  // host IDs the tool runs as in root mode
	bwrap          string
	bwrapFlags     []string // the fixed part of bwrap's command line
	prlimit        string
	setpriv        string
	unshare, cat   string // make and hold a root-mode call's user namespace
	tempDir        string
	cacheDir       string
	pipIndexURL    string
	installTimeout time.Duration

	python    *interpreter
	pythonErr error
	node      *interpreter
	nodeErr   error

	venvMu    sync.Mutex
	venvLocks map[string]*sync.Mutex
}

var _ toolexec.Executor = (*Executor)(nil)

// New returns an Executor that runs every call in a bubblewrap sandbox.
// It fails, saying why, when bubblewrap cannot run a sandbox here (see
// Available).
//
// New (like NewUnsandboxed and Available) marks every descriptor the
// server process inherited from whatever started it close-on-exec, so
// that none reaches a tool; the server itself keeps using them.
func New(cfg Config) (*Executor, error) {
	e, err := newExecutor(cfg, true, true)
	if err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	return e, nil
}

// NewUnsandboxed returns an Executor that runs tools as bare subprocesses
// of the server: the operator's explicit choice of no sandbox.
//
// It is unsafe for code the operator does not trust. A tool runs as the
// server's own user and sees the server's file system and network, so it
// can read the server's data and secrets and reach any service the server
// can. What it keeps: the same rlimits (but RLIMIT_NPROC does not bind a
// server running as root), an empty environment besides the tool's own
// variables, a fresh temporary working directory per call, and the
// wall-clock limit, which kills the call's process group (a process that
// leaves the group survives it).
func NewUnsandboxed(cfg Config) (*Executor, error) {
	return newExecutor(cfg, false, true)
}

// newExecutor makes an executor, finding the interpreters if probe is set.
func newExecutor(cfg Config, isolated, probe bool) (*Executor, error) {
	closeInheritedFDs()
	limits, err := cfg.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Executor{
		limits:         limits,
		network:        cfg.Network,
		isolated:       isolated,
		rootMode:       isolated && os.Geteuid() == 0,
		uid:            cmpOr(cfg.SandboxUID, DefaultSandboxID),
		gid:            cmpOr(cfg.SandboxGID, DefaultSandboxID),
		tempDir:        cmpOr(cfg.TempDir, os.TempDir()),
		pipIndexURL:    cfg.PipIndexURL,
		installTimeout: cmpOr(cfg.InstallTimeout, installTimeoutDefault),
		venvLocks:      map[string]*sync.Mutex{},
	}
	if e.uid <= 0 || e.gid <= 0 || e.uid >= 1<<31 || e.gid >= 1<<31 {
		return nil, fmt.Errorf("sandbox: SandboxUID %d and SandboxGID %d must be user and group IDs", cfg.SandboxUID, cfg.SandboxGID)
	}
	if e.installTimeout < 0 || e.installTimeout > timeLimitMax {
		return nil, fmt.Errorf("sandbox: InstallTimeout %v is outside (0, %v]", e.installTimeout, timeLimitMax)
	}
	e.cacheDir = cfg.CacheDir
	if e.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("sandbox: no CacheDir configured and no user cache directory: %w", err)
		}
		e.cacheDir = filepath.Join(dir, "kelpie", "sandbox")
	}
	if e.prlimit, err = exec.LookPath("prlimit"); err != nil {
		return nil, fmt.Errorf("sandbox: prlimit (from util-linux) is needed to apply the limits: %w", err)
	}
	if e.prlimit, err = filepath.EvalSymlinks(e.prlimit); err != nil {
		return nil, fmt.Errorf("sandbox: prlimit: %w", err)
	}
	if isolated {
		if e.bwrap, err = lookBwrap(cfg.BwrapPath); err != nil {
			return nil, err
		}
		if e.rootMode {
			if e.unshare, err = exec.LookPath("unshare"); err != nil {
				return nil, fmt.Errorf("sandbox: unshare (from util-linux) is needed to make user namespaces: %w", err)
			}
			if e.cat, err = exec.LookPath("cat"); err != nil {
				return nil, fmt.Errorf("sandbox: cat (from coreutils) is needed to hold user namespaces: %w", err)
			}
		}
		if e.setpriv, err = exec.LookPath("setpriv"); err == nil {
			e.setpriv, err = filepath.EvalSymlinks(e.setpriv)
		}
		if err != nil {
			return nil, fmt.Errorf("sandbox: setpriv (from util-linux) is needed to tie a sandbox's life to bubblewrap's: %w", err)
		}
		for _, p := range []string{e.prlimit, e.setpriv} {
			if !underSystemDir(p) {
				return nil, fmt.Errorf("sandbox: %s is outside the system directories the sandbox binds", p)
			}
		}
		e.bwrapFlags = e.fixedBwrapFlags()
	}
	if probe {
		e.python, e.pythonErr = probeCached("python", cmpOr(cfg.PythonPath, "python3"), probePython)
		e.node, e.nodeErr = probeCached("node", cmpOr(cfg.NodePath, "node"), probeNode)
	}
	return e, nil
}

// Sandboxed reports whether e runs calls in bubblewrap sandboxes.
func (e *Executor) Sandboxed() bool { return e.isolated }

// Limits returns the bounds e applies to each call.
func (e *Executor) Limits() Limits { return e.limits }

// Run executes call, whose Source must be set. It returns a Result for
// everything the tool did, failures and limits included; an error when
// the call could not be attempted (no source, a bad environment, no
// interpreter or package index, a broken sandbox) or ctx ended it.
func (e *Executor) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	if err := ctx.Err(); err != nil {
		return toolexec.Result{}, err
	}
	src := call.Source
	if src == nil {
		return toolexec.Result{}, fmt.Errorf("sandbox: tool %q has no source code to run", call.Name)
	}
	reject := func(format string, args ...any) (toolexec.Result, error) {
		r := toolexec.Errorf(format, args...)
		if src.Script {
			r.Return = runCodeReturn(r, nil)
		}
		return r, nil
	}
	lang, ok := normalizeLanguage(src.Language)
	if !ok {
		if src.Script {
			return reject("run_code cannot run %q: the languages it supports are python, javascript and typescript", src.Language)
		}
		return reject("tool %q is written in %q, which this server cannot run: use python, javascript or typescript", call.Name, src.Language)
	}
	if len(src.Code) > codeBytesMax {
		return reject("the source code is %d bytes, over the limit of %d", len(src.Code), codeBytesMax)
	}
	entry := cmpOr(src.Entry, call.Name)
	if !src.Script && !identifier.MatchString(entry) {
		return reject("tool %q names no function to call: %q is not an identifier", call.Name, entry)
	}
	args, problem := parseArguments(call.Arguments)
	if problem != "" {
		return reject("%s", problem)
	}
	if err := checkEnv(call.Env); err != nil {
		return toolexec.Result{}, err
	}

	var in *interpreter
	switch lang {
	case LanguagePython:
		if e.python == nil {
			return toolexec.Result{}, e.pythonErr
		}
		in = e.python
	default:
		if e.node == nil {
			return toolexec.Result{}, e.nodeErr
		}
		in = e.node
		if len(src.Requirements) > 0 {
			return reject("tool %q needs npm packages (%s), which this server cannot install: bundle them into the tool's source", call.Name, strings.Join(src.Requirements, ", "))
		}
	}
	code := src.Code
	if lang == LanguageTypeScript {
		js, msg := stripTypes(code)
		if msg != "" {
			return reject("the TypeScript source does not compile: %s", msg)
		}
		code = js
	}
	if lang != LanguagePython && !src.Script {
		// The harness calls the entry through this export, whether or not
		// the source exports it itself.
		code += "\nexport { " + entry + " as __kelpie_entry__ };\n"
	}

	var binds []bind
	exe := in.exe
	if lang == LanguagePython && len(src.Requirements) > 0 {
		venv, problem, err := e.venv(ctx, in, src.Requirements)
		if err != nil {
			return toolexec.Result{}, err
		}
		if problem != "" {
			return reject("%s", problem)
		}
		binds = append(binds, bind{src: venv, dst: venv})
		exe = filepath.Join(venv, "bin", "python")
	}
	binds = append(binds, in.binds...)

	dir, err := e.newCallDir()
	if err != nil {
		return toolexec.Result{}, err
	}
	defer os.RemoveAll(dir)
	home := scratchInside
	if !e.isolated {
		home = filepath.Join(dir, "work")
	}
	env := environment(call, home)
	paths := e.callPaths(dir, lang)
	if err := writeCallFiles(dir, lang, code, callFile{
		Source:    paths.source,
		Entry:     entry,
		Script:    src.Script,
		Arguments: args,
	}); err != nil {
		return toolexec.Result{}, err
	}

	var argv []string
	if lang == LanguagePython {
		argv = []string{exe, "-u", "-B", paths.harness, paths.call, "3"}
	} else {
		argv = []string{exe, fmt.Sprintf("--max-old-space-size=%d", e.limits.nodeHeapMiB()), paths.harness, paths.call, "3"}
	}
	out, err := e.execute(ctx, &spec{
		argv:    argv,
		env:     env,
		limits:  e.limits,
		network: e.network,
		callDir: dir,
		binds:   binds,
		result:  true,
	})
	if err != nil {
		return toolexec.Result{}, err
	}
	return e.interpret(src.Script, out)
}

// interpret turns what a call did into its Result.
func (e *Executor) interpret(script bool, out *outcome) (toolexec.Result, error) {
	started, fr, frameErr := parseFrames(out.frames, out.framesDropped)
	res := toolexec.Result{Stdout: out.stdout, Stderr: out.stderr}
	switch {
	case out.wallExpired:
		res.Status = toolexec.StatusError
		res.Return = fmt.Sprintf("the tool did not finish within its wall-clock limit of %v and was killed", e.limits.WallTime)
	case frameErr != "":
		res.Status = toolexec.StatusError
		res.Return = frameErr
	case fr != nil && fr.OK:
		res.Status = toolexec.StatusSuccess
		switch {
		case script:
		case fr.Text != nil:
			res.Return = *fr.Text
		default:
			res.Return = compactJSON(fr.Value)
		}
	case fr != nil:
		res.Status = toolexec.StatusError
		res.Return = fr.Type + ": " + fr.Message + e.limitHint(fr)
		if fr.Traceback != "" && !script {
			res.Stderr = appendLine(res.Stderr, strings.TrimRight(fr.Traceback, "\n"))
		}
	case !started && e.isolated && strings.HasPrefix(out.stderr, "bwrap: "):
		line, _, _ := strings.Cut(out.stderr, "\n")
		return toolexec.Result{}, fmt.Errorf("sandbox: bubblewrap could not set up the sandbox: %s", line)
	default:
		res.Status = toolexec.StatusError
		res.Return = e.exitReason(out)
	}
	if script {
		res.Return = runCodeReturn(res, fr)
	}
	return res, nil
}

// limitHint says which limit an exception probably comes from, or "".
func (e *Executor) limitHint(fr *frame) string {
	lim := e.limits
	switch {
	case fr.Type == "MemoryError",
		fr.Type == "RangeError" && (strings.Contains(fr.Message, "allocation failed") || strings.Contains(fr.Message, "Invalid array length")):
		return fmt.Sprintf(" (the sandbox's memory limit is %s per process)", formatBytes(lim.MemoryBytes))
	case fr.Errno == int(syscall.EAGAIN) || fr.Code == "EAGAIN":
		return fmt.Sprintf(" (the sandbox's process limit is %d processes and threads)", lim.Processes)
	case fr.Errno == int(syscall.EFBIG) || fr.Code == "EFBIG":
		return fmt.Sprintf(" (the sandbox's file size limit is %s)", formatBytes(lim.ScratchBytes))
	case fr.Errno == int(syscall.ENOSPC) || fr.Code == "ENOSPC":
		return fmt.Sprintf(" (the sandbox's /tmp holds %s)", formatBytes(lim.ScratchBytes))
	case fr.Errno == int(syscall.EROFS) || fr.Code == "EROFS":
		return " (in the sandbox only /tmp is writable)"
	case fr.Errno == int(syscall.EMFILE) || fr.Code == "EMFILE":
		return fmt.Sprintf(" (the sandbox's limit is %d open files per process)", lim.OpenFiles)
	}
	if !e.network && (fr.Errno == int(syscall.ENETUNREACH) || fr.Errno == int(syscall.ECONNREFUSED) ||
		fr.Type == "gaierror" || slices.Contains([]string{"ENETUNREACH", "ECONNREFUSED", "EAI_AGAIN", "ENOTFOUND"}, fr.Code)) {
		return " (the sandbox has no network)"
	}
	return ""
}

// exitReason explains a call that ended without reporting a result.
func (e *Executor) exitReason(out *outcome) string {
	lim := e.limits
	sig, code := out.signal, out.exitCode
	if e.isolated && sig == 0 && code > 128 && code < 128+65 {
		// bwrap exits with 128+n when the tool was killed by signal n.
		sig, code = syscall.Signal(code-128), 0
	}
	if sig != 0 && strings.Contains(out.stderr, "JavaScript heap out of memory") {
		// V8 aborts (or crashes) when its heap is full.
		return fmt.Sprintf("the tool ran out of memory: its JavaScript heap reached the limit of %d MiB (the sandbox's memory limit is %s per process)",
			lim.nodeHeapMiB(), formatBytes(lim.MemoryBytes))
	}
	switch sig {
	case 0:
		return fmt.Sprintf("the tool exited with status %d before returning a result", code)
	case syscall.SIGXCPU:
		return fmt.Sprintf("the tool used up its CPU time limit of %d s and was stopped", lim.cpuSeconds())
	case syscall.SIGKILL:
		return fmt.Sprintf("the tool was killed (SIGKILL): past its CPU time limit of %d s, or out of memory", lim.cpuSeconds())
	case syscall.SIGXFSZ:
		return fmt.Sprintf("the tool wrote a file past the file size limit of %s and was stopped", formatBytes(lim.ScratchBytes))
	}
	return fmt.Sprintf("the tool was killed by signal %d (%v) before returning a result", int(sig), sig)
}

// checkEnv checks a tool's environment variables.
func checkEnv(vars map[string]string) error {
	if len(vars) > envVarsMax {
		return fmt.Errorf("sandbox: the tool has %d environment variables, over the limit of %d", len(vars), envVarsMax)
	}
	total := 0
	for k, v := range vars {
		if !envName.MatchString(k) {
			return fmt.Errorf("sandbox: environment variable name %q is not of the form [A-Za-z_][A-Za-z0-9_]*", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("sandbox: environment variable %s has a NUL byte in its value", k)
		}
		total += len(k) + len(v)
	}
	if total > envBytesMax {
		return fmt.Errorf("sandbox: the tool's environment is %d bytes, over the limit of %d", total, envBytesMax)
	}
	return nil
}

// environment is the tool's environment: the minimal defaults (with home
// as HOME and TMPDIR), Call.Env over them, and the call's identity last.
func environment(call toolexec.Call, home string) []string {
	vars := map[string]string{
		"PATH":   "/usr/local/bin:/usr/bin:/bin",
		"HOME":   home,
		"TMPDIR": home,
		"LANG":   "C.UTF-8",
	}
	for k, v := range call.Env {
		vars[k] = v
	}
	vars[EnvAgentID] = call.AgentID
	vars[EnvToolID] = call.ToolID
	vars[EnvToolCallID] = call.ID
	env := make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

var (
	identifier = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`)
	envName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// normalizeLanguage maps a Source.Language (or run_code's language
// argument) to one of the Language constants.
func normalizeLanguage(lang string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(lang)) {
	case "python", "py", "python3":
		return LanguagePython, true
	case "javascript", "js", "node":
		return LanguageJavaScript, true
	case "typescript", "ts":
		return LanguageTypeScript, true
	}
	return "", false
}

// parseArguments checks the call's arguments (a JSON object, or nothing)
// and returns them, or what is wrong with them.
func parseArguments(raw json.RawMessage) (json.RawMessage, string) {
	if len(raw) > argumentsBytesMax {
		return nil, fmt.Sprintf("the arguments are %d bytes, over the limit of %d", len(raw), argumentsBytesMax)
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return json.RawMessage("{}"), ""
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, "the arguments must be a JSON object: " + describeJSONError(err)
	}
	return raw, ""
}

func describeJSONError(err error) string {
	if err == nil {
		return "got null"
	}
	return err.Error()
}

// callFile is the harness's call.json.
type callFile struct {
	Source    string          `json:"source"`
	Entry     string          `json:"entry"`
	Script    bool            `json:"script"`
	Arguments json.RawMessage `json:"arguments"`
}

// callPaths are where the harness finds the call's files: inside the
// sandbox, or in the call directory itself when there is none.
type callPaths struct{ harness, source, call string }

func (e *Executor) callPaths(dir, lang string) callPaths {
	base := callDirInside
	if !e.isolated {
		base = dir
	}
	if lang == LanguagePython {
		return callPaths{filepath.Join(base, "harness.py"), filepath.Join(base, "tool.py"), filepath.Join(base, "call.json")}
	}
	return callPaths{filepath.Join(base, "harness.mjs"), filepath.Join(base, "tool.mjs"), filepath.Join(base, "call.json")}
}

// newCallDir makes the call's host directory, readable by the sandbox's
// user and no one else.
func (e *Executor) newCallDir() (string, error) {
	dir, err := os.MkdirTemp(e.tempDir, "kelpie-call-*")
	if err != nil {
		return "", fmt.Errorf("sandbox: making the call directory: %w", err)
	}
	if e.rootMode {
		if err := os.Chown(dir, e.uid, e.gid); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("sandbox: making the call directory: %w", err)
		}
	}
	return dir, nil
}

func writeCallFiles(dir, lang, code string, cf callFile) error {
	cj, err := json.Marshal(cf)
	if err != nil {
		return fmt.Errorf("sandbox: encoding the call: %w", err)
	}
	files := map[string][]byte{
		"call.json": cj,
		"passwd":    []byte(fmt.Sprintf("sandbox:x:%d:%d:Kelpie tool sandbox:%s:/usr/sbin/nologin\n", sandboxID, sandboxID, scratchInside)),
		"group":     []byte(fmt.Sprintf("sandbox:x:%d:\n", sandboxID)),
	}
	if lang == LanguagePython {
		files["harness.py"] = harnessPython
		files["tool.py"] = []byte(code)
	} else {
		files["harness.mjs"] = harnessNode
		files["tool.mjs"] = []byte(code)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("sandbox: writing the call's files: %w", err)
		}
	}
	return nil
}

// frame is one line the harness writes on its result descriptor.
type frame struct {
	Event     string          `json:"event"`
	OK        bool            `json:"ok"`
	Text      *string         `json:"text"`
	Value     json.RawMessage `json:"value"`
	Type      string          `json:"type"`
	Message   string          `json:"message"`
	Traceback string          `json:"traceback"`
	Errno     int             `json:"errno"`
	Code      string          `json:"code"`
}

// parseFrames reads the harness's frames: whether it started, its result
// (nil if it wrote none), and a message when the frames are unusable.
func parseFrames(data []byte, dropped int64) (started bool, result *frame, problem string) {
	lines := strings.Split(string(data), "\n")
	for _, line := range lines {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var f frame
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			if dropped > 0 {
				return started, nil, fmt.Sprintf("the tool's result is over the limit of %d bytes", len(data)-frameSlackBytes)
			}
			return started, nil, "the tool's harness reported a malformed result"
		}
		switch f.Event {
		case "start":
			started = true
		case "result":
			// The harness writes its result last; a tool that writes on
			// the descriptor itself does not get the final word by
			// writing first.
			result = &f
		}
	}
	if dropped > 0 {
		return started, nil, fmt.Sprintf("the tool's result is over the limit of %d bytes", len(data)-frameSlackBytes)
	}
	return started, result, ""
}

func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

func appendLine(s, line string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s + line + "\n"
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

// ErrNoInterpreter is wrapped by the error of a call in a language whose
// interpreter (python3, node) was not found or does not work.
var ErrNoInterpreter = errors.New("sandbox: interpreter not available")
