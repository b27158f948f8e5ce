package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoPackageIndex is wrapped by the error of a call whose tool needs
// pip packages when Config.PipIndexURL is not set.
var ErrNoPackageIndex = errors.New("sandbox: no Python package index is configured")

// Bounds on a tool's requirements and their installation.
const (
	requirementsMax     = 64
	requirementBytesMax = 200
	installScratchBytes = 512 << 20 // pip unpacks wheels in /tmp
	installProcessesMin = 256
	installOutputBytes  = 64 << 10
	lockPollInterval    = 100 * time.Millisecond
	venvReadyFile       = ".kelpie-ready"
)

// requirementPattern is a requirement this executor installs: a project
// name, optional extras and optional version specifiers. Direct URLs,
// paths, pip options and environment markers are refused.
var requirementPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?` +
	`(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?` +
	`((===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+(,(===|==|!=|~=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?$`)

// normalizeRequirements trims, checks, de-duplicates and sorts reqs, or
// says what is wrong with them.
func normalizeRequirements(reqs []string) ([]string, string) {
	if len(reqs) > requirementsMax {
		return nil, fmt.Sprintf("the tool has %d pip requirements, over the limit of %d", len(reqs), requirementsMax)
	}
	out := make([]string, 0, len(reqs))
	for _, req := range reqs {
		req = strings.Join(strings.Fields(req), "")
		if req == "" {
			continue
		}
		if len(req) > requirementBytesMax || !requirementPattern.MatchString(req) {
			return nil, fmt.Sprintf("pip requirement %q is not of the form name[extras]<specifiers> (for example requests or numpy>=1.26): URLs, paths, options and markers are not accepted", req)
		}
		out = append(out, req)
	}
	slices.Sort(out)
	return slices.Compact(out), ""
}

// venv returns the virtual environment holding reqs for in, installing it
// first if no call has yet. Requirements that are malformed or cannot be
// installed give a problem for the model to see; a missing index or a
// broken cache an error.
func (e *Executor) venv(ctx context.Context, in *interpreter, reqs []string) (dir, problem string, err error) {
	reqs, problem = normalizeRequirements(reqs)
	if problem != "" {
		return "", problem, nil
	}
	if len(reqs) == 0 {
		return "", "", nil
	}
	if e.pipIndexURL == "" {
		return "", "", fmt.Errorf("%w: the tool needs the pip package(s) %s; set the sandbox's PipIndexURL (a PyPI mirror or a local index) so they can be installed",
			ErrNoPackageIndex, quoteList(reqs))
	}
	sum := sha256.Sum256([]byte(strings.Join(append([]string{in.exe, in.version, e.pipIndexURL}, reqs...), "\n")))
	key := hex.EncodeToString(sum[:16])
	root := filepath.Join(e.cacheDir, "venvs")
	dir = filepath.Join(root, key)
	if venvReady(dir) {
		return dir, "", nil
	}

	// One installation per key: a mutex in this process, a lock file
	// between processes.
	mu := e.venvLock(key)
	mu.Lock()
	defer mu.Unlock()
	if venvReady(dir) {
		return dir, "", nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", "", fmt.Errorf("sandbox: making the requirements cache: %w", err)
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if venvReady(dir) {
		return dir, "", nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", "", fmt.Errorf("sandbox: clearing a half-built environment: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("sandbox: making the environment: %w", err)
	}
	if e.rootMode {
		if err := os.Chown(dir, e.uid, e.gid); err != nil {
			return "", "", fmt.Errorf("sandbox: making the environment: %w", err)
		}
	}
	if problem, err := e.install(ctx, in, dir, reqs); err != nil || problem != "" {
		_ = os.RemoveAll(dir)
		return "", problem, err
	}
	if err := os.WriteFile(filepath.Join(dir, venvReadyFile), []byte(strings.Join(reqs, "\n")+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("sandbox: marking the environment ready: %w", err)
	}
	return dir, "", nil
}

// install makes a virtual environment in dir and installs reqs into it
// with pip, in a sandbox with the network (to reach the index) whose only
// writable host path is dir. pip installs wheels only, so no package's
// build code runs.
func (e *Executor) install(ctx context.Context, in *interpreter, dir string, reqs []string) (problem string, err error) {
	lim := e.limits
	lim.WallTime = e.installTimeout
	lim.CPUTime = e.installTimeout
	lim.MemoryBytes = max(lim.MemoryBytes, installMemoryMin)
	lim.Processes = max(lim.Processes, installProcessesMin)
	lim.ScratchBytes = max(lim.ScratchBytes, installScratchBytes)
	lim.OutputBytes = max(lim.OutputBytes, installOutputBytes)

	binds := append([]bind{{src: dir, dst: dir, rw: true}}, in.binds...)
	if u, err := url.Parse(e.pipIndexURL); err == nil && u.Scheme == "file" {
		binds = append(binds, bind{src: u.Path, dst: u.Path})
	}
	callDir, err := e.newCallDir()
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(callDir)
	if err := writeCallFiles(callDir, LanguagePython, "", callFile{}); err != nil {
		return "", err
	}
	home := scratchInside
	if !e.isolated {
		home = filepath.Join(callDir, "work")
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "TMPDIR=" + home, "LANG=C.UTF-8", "PIP_NO_INPUT=1"}
	steps := [][]string{
		{in.exe, "-I", "-m", "venv", "--without-pip", dir},
		append([]string{in.exe, "-I", "-m", "pip", "--python", filepath.Join(dir, "bin", "python"),
			"install", "--disable-pip-version-check", "--no-cache-dir", "--only-binary=:all:",
			"--retries", "0", "--timeout", "30", "--index-url", e.pipIndexURL, "--"}, reqs...),
	}
	for i, argv := range steps {
		if !e.isolated && i > 0 {
			// Each step gets a fresh working directory.
			_ = os.RemoveAll(home)
		}
		out, err := e.execute(ctx, &spec{argv: argv, env: env, limits: lim, network: true, callDir: callDir, binds: binds})
		if err != nil {
			return "", err
		}
		if out.wallExpired {
			return fmt.Sprintf("installing the tool's pip requirements (%s) took longer than %v", strings.Join(reqs, ", "), e.installTimeout), nil
		}
		if out.exitCode != 0 || out.signal != 0 {
			if e.isolated && strings.HasPrefix(out.stderr, "bwrap: ") {
				return "", fmt.Errorf("sandbox: bubblewrap could not set up the install sandbox: %s", firstLine(out.stderr))
			}
			return fmt.Sprintf("installing the tool's pip requirements (%s) failed: %s", strings.Join(reqs, ", "), pipError(out.stderr, out.stdout)), nil
		}
	}
	return "", nil
}

// pipError picks pip's own explanation out of its output.
func pipError(stderr, stdout string) string {
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "ERROR:") {
			lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "ERROR:")))
		}
	}
	if len(lines) == 0 {
		s := strings.TrimSpace(stderr + "\n" + stdout)
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		return s
	}
	return strings.Join(lines, "; ")
}

func venvReady(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, venvReadyFile))
	return err == nil
}

func (e *Executor) venvLock(key string) *sync.Mutex {
	e.venvMu.Lock()
	defer e.venvMu.Unlock()
	mu, ok := e.venvLocks[key]
	if !ok {
		mu = new(sync.Mutex)
		e.venvLocks[key] = mu
	}
	return mu
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sandbox: opening the environment's lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("sandbox: locking the environment: %w", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("sandbox: waiting for another installation of the same requirements: %w", ctx.Err())
		case <-time.After(lockPollInterval):
		}
	}
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
