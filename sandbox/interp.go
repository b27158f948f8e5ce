package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// interpreter is an installed python3 or node.
type interpreter struct {
	exe     string // absolute, symbolic links resolved
	version string // "3.11.7"; "" for node
	binds   []bind // its installation, when outside the system directories
}

// systemDirs are bound read-only into every sandbox (as the symbolic
// links they are, where they are links).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

func underSystemDir(path string) bool {
	for _, d := range systemDirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// pythonProbe prints what the sandbox needs to know of an interpreter.
const pythonProbe = `import json, sys
print(json.dumps({"executable": sys.executable, "prefix": sys.base_prefix,
  "exec_prefix": sys.base_exec_prefix, "version": "%d.%d.%d" % sys.version_info[:3]}))`

// probes caches what probePython and probeNode found, by the name they
// were given: probing a pyenv shim takes seconds, and an executor is made
// per configuration.
var probes struct {
	sync.Mutex
	found map[string]*interpreter
}

func probeCached(kind, name string, probe func(string) (*interpreter, error)) (*interpreter, error) {
	probes.Lock()
	defer probes.Unlock()
	key := kind + "\x00" + name
	if in, ok := probes.found[key]; ok {
		return in, nil
	}
	in, err := probe(name)
	if err != nil {
		return nil, err
	}
	if probes.found == nil {
		probes.found = map[string]*interpreter{}
	}
	probes.found[key] = in
	return in, nil
}

// probePython finds the real interpreter behind name (which may be a
// pyenv shim or a virtual environment's link) and the installation
// prefix to bind for it.
func probePython(name string) (*interpreter, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: python3 (%s): %v", ErrNoInterpreter, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-I", "-c", pythonProbe)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s does not run: %v: %s", ErrNoInterpreter, path, err, firstLine(stderr.String()))
	}
	var p struct {
		Executable string `json:"executable"`
		Prefix     string `json:"prefix"`
		ExecPrefix string `json:"exec_prefix"`
		Version    string `json:"version"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &p); err != nil || p.Executable == "" {
		return nil, fmt.Errorf("%w: %s did not describe itself: %q", ErrNoInterpreter, path, stdout.String())
	}
	exe, err := filepath.EvalSymlinks(p.Executable)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoInterpreter, p.Executable, err)
	}
	in := &interpreter{exe: exe, version: p.Version}
	for _, dir := range []string{p.Prefix, p.ExecPrefix, filepath.Dir(exe)} {
		if err := in.addPrefix(dir); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// probeNode finds node and the installation prefix to bind for it.
func probeNode(name string) (*interpreter, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: node (%s): %v", ErrNoInterpreter, name, err)
	}
	exe, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoInterpreter, path, err)
	}
	if exe, err = filepath.Abs(exe); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoInterpreter, path, err)
	}
	in := &interpreter{exe: exe}
	// bin/node's installation is the directory above bin (nvm, a tarball).
	if err := in.addPrefix(filepath.Dir(filepath.Dir(exe))); err != nil {
		return nil, err
	}
	return in, nil
}

// addPrefix records dir as a directory to bind, unless the system
// directories already hold it. It refuses directories so broad that
// binding them would expose what the sandbox keeps out.
func (in *interpreter) addPrefix(dir string) error {
	dir = filepath.Clean(dir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if underSystemDir(dir) {
		return nil
	}
	for _, b := range in.binds {
		if dir == b.src || strings.HasPrefix(dir, b.src+"/") {
			return nil
		}
	}
	if strings.Count(dir, "/") < 2 {
		return fmt.Errorf("%w: %s is installed in %s, too broad a directory to bind into a sandbox: install it under its own prefix", ErrNoInterpreter, in.exe, dir)
	}
	if cwd, err := os.Getwd(); err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
		return fmt.Errorf("%w: %s is installed in %s, which holds the server's working directory %s: run the server elsewhere or install the interpreter elsewhere", ErrNoInterpreter, in.exe, dir, cwd)
	}
	in.binds = append(in.binds, bind{src: dir, dst: dir})
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
