package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrUnavailable is wrapped by the errors of New and Available when
// bubblewrap cannot run a sandbox on this machine.
var ErrUnavailable = errors.New("sandbox: bubblewrap cannot run a sandbox here")

// Available reports whether bubblewrap can run a sandbox on this machine
// with the default configuration: nil if it can, else an error wrapping
// ErrUnavailable that says why and what to do.
func Available() error {
	e, err := newExecutor(Config{}, true)
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
	needed := []string{"--size", "--cap-drop", "--userns"}
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
		"--die-with-parent", "--new-session",
		"--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--hostname", "sandbox",
	}
	if e.rootMode {
		a = append(a, "--userns", "4", "--cap-drop", "ALL")
	} else {
		a = append(a, "--unshare-user", "--disable-userns")
	}
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
	a = append(a, "--", e.prlimit)
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
		cmd = exec.CommandContext(wctx, e.bwrap, e.bwrapArgs(s)...)
		// Descriptor 3 is the result pipe, 4 the user namespace (root mode).
		cmd.ExtraFiles = []*os.File{w, ns}
		// Killing bwrap kills the sandbox: its PID 1 has PR_SET_PDEATHSIG
		// (--die-with-parent), and the kernel kills a PID namespace's
		// processes when its PID 1 dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	}
	cmd.Env = s.env
	stdout, stderr := newCaptures(s.limits.OutputBytes)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay

	if err := cmd.Start(); err != nil {
		closeFile(w)
		return nil, fmt.Errorf("sandbox: starting %s: %w", cmd.Path, err)
	}
	closeFile(w)
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
	if !e.isolated {
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
		out.wallExpired = wctx.Err() != nil && ws.Signaled()
	}
	return out, nil
}

// newUserNamespace makes a root-mode call's user namespace: the sandbox
// user is e.uid on the host, and host IDs below idMapSize-1 other than it
// appear shifted by one (host root is uid 1), so that bwrap, which joins
// the namespace as host root, keeps its access to the host paths it binds
// while the tool has none of it. The namespace lives as long as the
// returned file.
func (e *Executor) newUserNamespace() (*os.File, error) {
	cmd := exec.Command(e.sleep, "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                idMap(e.uid),
		GidMappings:                idMap(e.gid),
		GidMappingsEnableSetgroups: true,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sandbox: making the call's user namespace: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("sandbox: opening the call's user namespace: %w", err)
	}
	return f, nil
}

// idMap is a root-mode namespace's ID map for the sandbox's host ID.
func idMap(host int) []syscall.SysProcIDMap {
	m := []syscall.SysProcIDMap{{ContainerID: sandboxID, HostID: host, Size: 1}}
	if lo := min(host, idMapSize-1); lo > 0 {
		m = append(m, syscall.SysProcIDMap{ContainerID: 1, HostID: 0, Size: lo})
	}
	if host+1 < idMapSize-1 {
		m = append(m, syscall.SysProcIDMap{ContainerID: host + 2, HostID: host + 1, Size: idMapSize - 1 - (host + 1)})
	}
	return m
}

func closeFile(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}
