package mcpclient

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Stdio process limits.
const (
	// stdioExitGrace is how long a stdio server has to exit after its
	// standard input is closed, and then again after SIGTERM, before it
	// (its whole process group) is sent SIGKILL.
	stdioExitGrace = 2 * time.Second
	// stdioKillWait bounds the wait for the process after SIGKILL.
	stdioKillWait = 5 * time.Second
	// stderrTailBytes is how much of the end of a server's standard error
	// is kept, for the message when it fails.
	stderrTailBytes = 2 << 10
	// exitInfoWait is how long a failed operation waits for the process's
	// exit status, to say in its error how the server ended.
	exitInfoWait = 250 * time.Millisecond
)

// stdioTransport is an mcp.Transport that runs a stdio server as a child
// process. Unlike the SDK's CommandTransport it gives the child a fixed
// environment, resolves the command in the child's PATH, runs the child in
// its own process group (so that Close ends what it started too), and
// notices the child's exit even if a grandchild keeps its output open.
type stdioTransport struct {
	cfg     ServerConfig
	path    string // the child's default PATH
	lineMax int    // bound of one JSON-RPC message, bytes
	procs   *procSet

	proc *process // set by Connect
}

// Connect starts the process and speaks newline-delimited JSON to it.
func (t *stdioTransport) Connect(context.Context) (mcp.Connection, error) {
	p, err := startProcess(t.cfg, t.path, t.procs)
	if err != nil {
		return nil, err
	}
	t.proc = p
	pipes := &mcp.IOTransport{Reader: p.stdout, Writer: stdinCloser{p}, MaxLineLength: t.lineMax}
	return pipes.Connect(context.Background())
}

// stdinCloser writes to the process's standard input; closing it stops
// the process (the SDK closes its connection's writer last).
type stdinCloser struct{ p *process }

func (w stdinCloser) Write(b []byte) (int, error) { return w.p.stdin.Write(b) }
func (w stdinCloser) Close() error                { w.p.stop(); return nil }

// process is a running stdio server.
type process struct {
	cmd    *exec.Cmd
	stdin  *os.File // write end of the child's standard input
	stdout *os.File // read end of the child's standard output
	stderr tail

	exited  chan struct{} // closed when the child has been reaped
	exitErr error         // cmd.Wait's error; read after exited is closed

	stopOnce sync.Once
}

// childEnv is the environment of a stdio server: cfg's variables and
// PATH, sorted.
func childEnv(env map[string]string, path string) []string {
	out := make([]string, 0, len(env)+1)
	if _, ok := env["PATH"]; !ok {
		out = append(out, "PATH="+path)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// lookPath finds command in the directories of path, as a shell would;
// a command with a slash is used as it is.
func lookPath(command, path string) (string, error) {
	if strings.Contains(command, "/") {
		return command, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never the working directory
		}
		p := filepath.Join(dir, command)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q: give its absolute path, or set PATH in the server's env", command, path)
}

// procSet is the pool's running stdio processes, so that Close ends
// every one, whatever became of its session.
type procSet struct {
	mu     sync.Mutex
	closed bool
	procs  map[*process]struct{}
}

// add records p, unless the set is closed.
func (s *procSet) add(p *process) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.procs == nil {
		s.procs = make(map[*process]struct{})
	}
	s.procs[p] = struct{}{}
	return true
}

func (s *procSet) remove(p *process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.procs, p)
}

// close stops every process and refuses new ones.
func (s *procSet) close() {
	s.mu.Lock()
	s.closed = true
	procs := make([]*process, 0, len(s.procs))
	for p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(p.stop)
	}
	wg.Wait()
}

// startProcess starts cfg's command and records it in procs.
func startProcess(cfg ServerConfig, path string, procs *procSet) (*process, error) {
	env := childEnv(cfg.Env, path)
	childPath := path
	if v, ok := cfg.Env["PATH"]; ok {
		childPath = v
	}
	prog, err := lookPath(cfg.Command, childPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(prog, cfg.Args...)
	cmd.Args[0] = cfg.Command
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr()

	// The pipes are the process's own files (not exec's copying
	// goroutines), so that the child's exit does not close them under a
	// reader, and Wait does not wait for grandchildren holding them.
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("starting %q: %w", cfg.Command, err)
	}
	inR.Close()
	outW.Close()
	errW.Close()

	p := &process{cmd: cmd, stdin: inW, stdout: outR, exited: make(chan struct{}), stderr: tail{done: make(chan struct{})}}
	if !procs.add(p) { // the pool closed meanwhile
		signalGroup(cmd.Process, sigKill)
		cmd.Wait()
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, ErrClosed
	}
	go p.stderr.drain(errR)
	go func() {
		p.exitErr = cmd.Wait()
		// The server is gone: end what it left behind, so that its
		// standard output reaches EOF and the session ends.
		signalGroup(cmd.Process, sigKill)
		procs.remove(p)
		close(p.exited)
	}()
	return p, nil
}

// waitExit reports whether the process exits within d.
func (p *process) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// stop ends the process as the MCP specification asks: close its
// standard input, wait, SIGTERM, wait, SIGKILL; each signal goes to the
// whole process group. It returns when the process has been reaped (or
// stdioKillWait after SIGKILL).
func (p *process) stop() {
	p.stopOnce.Do(func() {
		p.stdin.Close()
		if p.waitExit(stdioExitGrace) {
			return
		}
		signalGroup(p.cmd.Process, sigTerm)
		if p.waitExit(stdioExitGrace) {
			return
		}
		signalGroup(p.cmd.Process, sigKill)
		p.waitExit(stdioKillWait)
	})
}

// exitInfo describes how the process ended, if it has within
// exitInfoWait: its exit status and the end of its standard error.
func (p *process) exitInfo() string {
	t := time.NewTimer(exitInfoWait)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		return ""
	}
	select { // the rest of stderr
	case <-p.stderr.done:
	case <-t.C:
	}
	status := "exited"
	if ps := p.cmd.ProcessState; ps != nil {
		status = "ended with " + ps.String()
	} else if p.exitErr != nil {
		status = "ended: " + p.exitErr.Error()
	}
	msg := "; the server process " + status
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		msg += "; its stderr ended with: " + s
	}
	return msg
}

// tail keeps the last stderrTailBytes written to it.
type tail struct {
	mu   sync.Mutex
	buf  []byte
	done chan struct{} // closed when drain has read all
}

// drain reads r to EOF into t, then closes r.
func (t *tail) drain(r *os.File) {
	defer close(t.done)
	defer r.Close()
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		if n > 0 {
			t.mu.Lock()
			t.buf = append(t.buf, b[:n]...)
			if over := len(t.buf) - stderrTailBytes; over > 0 {
				t.buf = append(t.buf[:0], t.buf[over:]...)
			}
			t.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.ToValidUTF8(string(t.buf), "")
}
