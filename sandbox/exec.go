package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by the errors of New and Available when
// bubblewrap cannot run a sandbox on this machine.
var ErrUnavailable = errors.New("sandbox: bubblewrap cannot run a sandbox here")

// Available reports whether bubblewrap can run a sandbox on this machine
// with the default configuration: nil if it can, else an error wrapping
// ErrUnavailable that says why and what to do.
func Available() error {
	e, err := newExecutor(Config{CacheDir: os.TempDir()}, true, false)
	if err != nil {
		return err
	}
	return e.check()
}

// bind is a host path bound into the sandbox, read-only unless rw.
type bind struct {
	src, dst string
	rw       bool
}

// spec is one program to run in a sandbox, or as a bare subprocess when
// the executor has none.
type spec struct {
	argv    []string // the program (an absolute path) and its arguments
	env     []string
	limits  Limits
	network bool
	callDir string // the call's files: bound read-only at /sandbox, or the parent of the working directory
	binds   []bind
	result  bool // give the program a result pipe as descriptor 3
}

// outcome is what a program did.
type outcome struct {
	stdout, stderr string
	frames         []byte // what it wrote on descriptor 3, bounded
	framesDropped  int64
	exitCode       int
	signal         syscall.Signal // the signal that killed it (unsandboxed), or 0
	wallExpired    bool           // it was killed at the wall-clock limit
}

// etcFiles are the files of /etc bound into every sandbox; etcNetFiles
// also into those with the network.
var (
	etcFiles = []string{
		"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
		"/etc/alternatives", "/etc/nsswitch.conf", "/etc/mime.types",
		"/etc/ssl", "/etc/ca-certificates", "/etc/pki",
	}
	etcNetFiles = []string{"/etc/resolv.conf", "/etc/hosts", "/etc/host.conf", "/etc/gai.conf"}
)

func lookBwrap(path string) (string, error) {
	name := cmpOr(path, "bwrap")
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (%v): install bubblewrap (the Debian package bubblewrap), or choose to run tools unsandboxed, which is unsafe", ErrUnavailable, name, err)
	}
	return p, nil
}

// check runs a trivial program in a sandbox made as every call's is.
func (e *Executor) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	help, _ := exec.CommandContext(ctx, e.bwrap, "--help").CombinedOutput()
	needed := []string{"--size", "--userns"}
	if !e.rootMode {
		needed = []string{"--size", "--disable-userns"}
	}
	for _, opt := range needed {
		if !bytes.Contains(help, []byte(opt+" ")) {
			return fmt.Errorf("%w: %s is too old: it has no %s option (bubblewrap 0.8 or later is needed)", ErrUnavailable, e.bwrap, opt)
		}
	}
	truePath, err := exec.LookPath("true")
	if err == nil {
		truePath, err = filepath.EvalSymlinks(truePath)
	}
	if err != nil || !underSystemDir(truePath) {
		return fmt.Errorf("%w: no true(1) in the system directories to test a sandbox with", ErrUnavailable)
	}
	out, err := e.execute(ctx, &spec{argv: []string{truePath}, env: []string{"PATH=/usr/bin:/bin"}, limits: e.limits})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if out.exitCode != 0 || out.signal != 0 || out.wallExpired {
		hint := ""
		if !e.rootMode {
			hint = " (bubblewrap needs unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0, and no AppArmor restriction on them)"
		}
		return fmt.Errorf("%w: a test sandbox failed with exit status %d: %s%s", ErrUnavailable, out.exitCode, firstLine(out.stderr), hint)
	}
	return nil
}

// fixedBwrapFlags are the flags every sandbox of e gets.
func (e *Executor) fixedBwrapFlags() []string {
	a := []string{
		"--die-with-parent", "--new-session", "--as-pid-1",
		"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--hostname", "sandbox",
	}
	if e.rootMode {
		a = append(a, "--userns", "4")
	} else {
		a = append(a, "--unshare-user", "--disable-userns")
	}
	a = append(a, "--info-fd", "5")
	id := strconv.Itoa(sandboxID)
	a = append(a, "--uid", id, "--gid", id)
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				a = append(a, "--symlink", target, d)
			}
		case fi.IsDir():
			a = append(a, "--ro-bind", d, d)
		}
	}
	for _, f := range etcFiles {
		if _, err := os.Stat(f); err == nil {
			a = append(a, "--ro-bind", f, f)
		}
	}
	return append(a, "--dev", "/dev", "--proc", "/proc")
}

// bwrapArgs is bwrap's command line for s.
func (e *Executor) bwrapArgs(s *spec) []string {
	a := append([]string(nil), e.bwrapFlags...)
	if s.network {
		for _, f := range etcNetFiles {
			if _, err := os.Stat(f); err == nil {
				a = append(a, "--ro-bind", f, f)
			}
		}
	} else {
		a = append(a, "--unshare-net")
	}
	a = append(a, "--size", strconv.FormatInt(s.limits.ScratchBytes, 10), "--tmpfs", scratchInside, "--chdir", scratchInside)
	if s.callDir != "" {
		a = append(a,
			"--ro-bind", s.callDir, callDirInside,
			"--ro-bind", filepath.Join(s.callDir, "passwd"), "/etc/passwd",
			"--ro-bind", filepath.Join(s.callDir, "group"), "/etc/group")
	}
	for _, b := range s.binds {
		if b.rw {
			a = append(a, "--bind", b.src, b.dst)
		} else {
			a = append(a, "--ro-bind", b.src, b.dst)
		}
	}
	// The root (a tmpfs bwrap made) is read-only too, once every mount
	// point in it exists; /tmp is a mount of its own.
	a = append(a, "--remount-ro", "/")
	a = append(a, "--", e.setpriv, "--pdeathsig", "KILL", "--", e.prlimit)
	a = append(a, s.limits.prlimitArgs()...)
	a = append(a, "--")
	return append(a, s.argv...)
}

// execute runs s and waits for it, within s.limits.WallTime. It returns
// an error only when s could not be started or ctx ended it; then nothing
// of s is left running.
func (e *Executor) execute(ctx context.Context, s *spec) (*outcome, error) {
	wctx, cancel := context.WithTimeout(ctx, s.limits.WallTime)
	defer cancel()

	var r, w *os.File
	if s.result {
		var err error
		if r, w, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("sandbox: making the result pipe: %w", err)
		}
		defer r.Close()
	}
	var cmd *exec.Cmd
	var child *sandboxChild
	var stopped atomic.Bool  // the wall-clock limit or ctx stopped the program
	var childOnly []*os.File // the child's ends of pipes, closed here once it starts
	if e.isolated {
		var ns *os.File
		if e.rootMode {
			var err error
			if ns, err = e.newUserNamespace(); err != nil {
				closeFile(w)
				return nil, err
			}
			defer ns.Close()
		}
		infoR, infoW, err := os.Pipe()
		if err != nil {
			closeFile(w)
			return nil, fmt.Errorf("sandbox: making the info pipe: %w", err)
		}
		defer infoR.Close()
		childOnly = append(childOnly, infoW)
		child = watchChild(infoR)
		cmd = exec.CommandContext(wctx, e.bwrap, e.bwrapArgs(s)...)
		// Descriptor 3 is the result pipe, 4 the user namespace (root
		// mode), 5 where bwrap says which process is the sandbox's PID 1.
		cmd.ExtraFiles = []*os.File{w, ns, infoW}
		// Stopping the sandbox kills its PID 1, whose death bwrap reports
		// by exiting (so it is reaped, not left a zombie); bwrap itself is
		// killed only if it has no child yet or does not exit (WaitDelay).
		// Killing bwrap alone is not enough while it sets the sandbox up:
		// its child gets a parent-death signal that works only once it
		// runs the tool (see below).
		cmd.Cancel = func() error {
			stopped.Store(true)
			if child.kill(waitDelay) {
				return nil
			}
			return cmd.Process.Kill()
		}
		// bwrap dies with the server, and the tool, the sandbox's PID 1,
		// with bwrap (setpriv --pdeathsig; see bwrapArgs), and the kernel
		// kills a PID namespace's processes when its PID 1 dies. In root
		// mode bwrap runs as the sandbox user: a parent-death signal
		// reaches only a process of the same user (or is sent by one with
		// CAP_KILL, which bwrap drops).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if e.rootMode {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid), Groups: []uint32{}}
		}
	} else {
		work := filepath.Join(s.callDir, "work")
		if err := os.Mkdir(work, 0o700); err != nil {
			closeFile(w)
			return nil, fmt.Errorf("sandbox: making the working directory: %w", err)
		}
		args := append(s.limits.prlimitArgs(), "--")
		cmd = exec.CommandContext(wctx, e.prlimit, append(args, s.argv...)...)
		cmd.Dir = work
		cmd.ExtraFiles = []*os.File{w}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Cancel = func() error {
			stopped.Store(true)
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	cmd.Env = s.env
	stdout, stderr := newCaptures(s.limits.OutputBytes)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay

	if w != nil {
		childOnly = append(childOnly, w)
	}
	err := cmd.Start()
	closeAll(childOnly)
	if err != nil {
		return nil, fmt.Errorf("sandbox: starting %s: %w", cmd.Path, err)
	}
	frames := &boundedBuffer{limit: s.limits.ReturnBytes + frameSlackBytes}
	framesDone := make(chan struct{})
	if r != nil {
		go func() {
			defer close(framesDone)
			_, _ = io.Copy(frames, r)
		}()
	} else {
		close(framesDone)
	}
	_ = cmd.Wait() // the outcome is read from ProcessState below
	if child != nil {
		// Normally gone with bwrap already; not if bwrap died early.
		child.kill(waitDelay)
	} else {
		// What the program left running in its process group goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if r != nil {
		_ = r.SetReadDeadline(time.Now().Add(waitDelay))
	}
	<-framesDone

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sandbox: the call was stopped: %w", err)
	}
	out := &outcome{
		stdout:        stdout.String(),
		stderr:        stderr.String(),
		frames:        frames.data,
		framesDropped: frames.dropped,
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			out.signal = ws.Signal()
		} else {
			out.exitCode = ws.ExitStatus()
		}
	}
	out.wallExpired = stopped.Load()
	return out, nil
}

// sandboxChild is bwrap's child, the sandbox's PID 1, as bwrap reports
// it on its --info-fd.
type sandboxChild struct {
	reported chan struct{} // closed once proc is set, or bwrap reported nothing
	proc     *os.Process   // nil if bwrap reported no child
}

// watchChild reads bwrap's report of its child from r.
func watchChild(r *os.File) *sandboxChild {
	c := &sandboxChild{reported: make(chan struct{})}
	go func() {
		defer close(c.reported)
		var info struct {
			ChildPID int `json:"child-pid"`
		}
		if err := json.NewDecoder(io.LimitReader(r, 4<<10)).Decode(&info); err != nil || info.ChildPID <= 0 {
			return
		}
		// A pidfd (os.FindProcess has one on Linux) cannot signal another
		// process that later reuses the PID.
		if p, err := os.FindProcess(info.ChildPID); err == nil {
			c.proc = p
		}
	}()
	return c
}

// kill kills the child, waiting up to wait for bwrap to report it, and
// says whether it did. Killing a PID namespace's PID 1 kills every
// process in the namespace.
func (c *sandboxChild) kill(wait time.Duration) bool {
	select {
	case <-c.reported:
	case <-time.After(wait):
		return false
	}
	return c.proc != nil && c.proc.Signal(syscall.SIGKILL) == nil
}

// newUserNamespace makes a root-mode call's user namespace. The sandbox
// user creates it (unshare(1), holding it open with cat(1) until the
// namespace is opened here), so it owns it, and bwrap, running as that
// user too, may join it and has every capability in it while it sets the
// sandbox up. The executor writes its ID map: the sandbox user, and host
// root as uid 1, so that bwrap's capabilities there let it look up bind
// sources in directories only root may enter (a pyenv install under
// /root). The tool runs with no capabilities, so the mapping gives it
// nothing; a host process of the sandbox user could use it, which is why
// that user must be one nothing else runs as (Config.SandboxUID). The
// namespace lives as long as the returned file.
func (e *Executor) newUserNamespace() (*os.File, error) {
	cmd := exec.Command(e.unshare, "--user", "--", e.cat)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid), Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: making the call's user namespace: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: making the call's user namespace: %w", err)
	}
	var stderr boundedBuffer
	stderr.limit = 4 << 10
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: making the call's user namespace: %w", err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	// cat echoes a byte once it runs, that is once unshare has made the
	// namespace.
	var echo [1]byte
	if _, err := stdin.Write([]byte{'.'}); err == nil {
		_, err = io.ReadFull(stdout, echo[:])
	}
	if echo[0] != '.' {
		return nil, fmt.Errorf("sandbox: making the call's user namespace as uid %d failed: %s", e.uid, firstLine(string(stderr.data)))
	}
	pid := cmd.Process.Pid
	for _, m := range []struct {
		file string
		host int
	}{{"uid_map", e.uid}, {"gid_map", e.gid}} {
		line := fmt.Sprintf("%d %d 1\n%d 0 1\n", sandboxID, m.host, hostRootInside)
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, m.file), []byte(line), 0); err != nil {
			return nil, fmt.Errorf("sandbox: writing the call's user namespace's %s: %w", m.file, err)
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("sandbox: opening the call's user namespace: %w", err)
	}
	return f, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

func closeFile(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// inheritedFDsClosed marks close-on-exec, once, every descriptor from 3 up
// that the server process has: the ones Go opens are already, and the
// others are what the server inherited from whatever started it (a
// socket-activation listener, a shell's stray pipe), which would otherwise
// pass through bwrap to every tool.
var inheritedFDsClosed sync.Once

func closeInheritedFDs() {
	inheritedFDsClosed.Do(func() {
		if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
			return
		}
		// Kernels before 5.11: one descriptor at a time.
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return
		}
		for _, ent := range entries {
			if fd, err := strconv.Atoi(ent.Name()); err == nil && fd > 2 {
				_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
			}
		}
	})
}
