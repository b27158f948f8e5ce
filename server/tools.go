package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"errors"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/mcpservers"
	"github.com/kelpie-ai/kelpie/sandbox"
	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/toolschema"
)

// Tool sandbox modes (Config.ToolSandbox).
const (
	// SandboxBwrap runs custom tools and run_code in bubblewrap sandboxes:
	// no network, a read-only system, private /tmp, bounded CPU, memory,
	// processes, output and time, no server environment.
	SandboxBwrap = "bwrap"
	// SandboxNone runs them as bare subprocesses, with the same bounds
	// but no isolation: the operator's explicit choice, never a fallback.
	SandboxNone = "none"
)

// toolRouter sends each external tool call to its executor: calls with
// source code (custom tools) and run_code to the sandbox, tools of MCP
// servers to their server (through the pool, with the server's current
// record), the web tools to web. A sandbox that could not start answers
// its calls with the reason.
type toolRouter struct {
	web        toolexec.Executor
	sandbox    toolexec.Executor
	sandboxErr error
	mcpPool    *mcpclient.Pool
	mcpServers *mcpservers.Registry
}

// Run implements toolexec.Executor.
func (t *toolRouter) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	if call.MCPServerID != "" {
		return t.runMCP(ctx, call)
	}
	if call.Source != nil || call.Name == toolschema.NameRunCode {
		if t.sandbox == nil {
			return toolexec.Errorf("%s cannot run on this server: %v", call.Name, t.sandboxErr), nil
		}
		if call.Source == nil {
			src, bad := sandbox.RunCodeSource(call.Arguments)
			if bad != nil {
				return *bad, nil
			}
			call.Source = src
		}
		return t.sandbox.Run(ctx, call)
	}
	if t.web == nil {
		return toolexec.Errorf("%s cannot run on this server: no executor for it is configured", call.Name), nil
	}
	return t.web.Run(ctx, call)
}

// newToolRouter builds the executors of a node's external tools.
func newToolRouter(cfg Config, log *slog.Logger) (*toolRouter, error) {
	t := &toolRouter{web: cfg.WebTools}
	scfg := sandbox.Config{PipIndexURL: cfg.PipIndexURL, CacheDir: filepath.Join(cfg.DataDir, "tool-cache")}
	switch cfg.ToolSandbox {
	case "", SandboxBwrap:
		e, err := sandbox.New(scfg)
		if err != nil {
			t.sandboxErr = fmt.Errorf("the bubblewrap tool sandbox is unavailable (%v); install bubblewrap (apt-get install bubblewrap), or start kelpie serve with --tool-sandbox none to run tools unsandboxed", err)
			log.Warn("custom tools and run_code will not run: "+t.sandboxErr.Error(), "tool_sandbox", SandboxBwrap)
			return t, nil
		}
		t.sandbox = e
		lim := e.Limits()
		log.Info("custom tools and run_code run in a bubblewrap sandbox", "cpu", lim.CPUTime, "wall", lim.WallTime,
			"memory_bytes", lim.MemoryBytes, "processes", lim.Processes, "output_bytes", lim.OutputBytes, "network", false)
	case SandboxNone:
		e, err := sandbox.NewUnsandboxed(scfg)
		if err != nil {
			return nil, fmt.Errorf("unsandboxed tool runner: %w", err)
		}
		t.sandbox = e
		log.Warn("custom tools and run_code run UNSANDBOXED (--tool-sandbox none): they can read this server's files and reach its network", "tool_sandbox", SandboxNone)
	default:
		return nil, fmt.Errorf("--tool-sandbox %q: want %q or %q", cfg.ToolSandbox, SandboxBwrap, SandboxNone)
	}
	if cfg.PipIndexURL == "" {
		log.Info("tools with pip_requirements fail until a package index is set (--pip-index-url)")
	}
	return t, nil
}

// runMCP calls an MCP server's tool on the server's current record.
func (t *toolRouter) runMCP(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	if t.mcpPool == nil || t.mcpServers == nil {
		return toolexec.Errorf("%s cannot run on this server: MCP servers are not configured", call.Name), nil
	}
	s, err := t.mcpServers.Get(ctx, call.MCPServerID)
	if errors.Is(err, agent.ErrNotFound) {
		return toolexec.Errorf("%s cannot run: its MCP server %s was deleted; add the server again or detach the tool", call.Name, call.MCPServerID), nil
	}
	if err != nil {
		return toolexec.Result{}, fmt.Errorf("reading MCP server %s: %w", call.MCPServerID, err)
	}
	return t.mcpPool.Executor(s.Client()).Run(ctx, call)
}
