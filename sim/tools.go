package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// Tools is the simulated tool sandbox: the executor of the tools that run
// outside the agents (the workload's custom tool, which has source code),
// with their faults. A call takes simulated time; ToolTimeout makes it
// hang until its deadline or its run's cancellation, ToolCrash ends it as a
// process killed by a signal would, and ToolMemoryKill as the memory
// limit would. A node crash during a call kills it with the node's tasks,
// and the resumed run executes it again (at least once).
type Tools struct {
	r   rt.Runtime
	inj *Injector
	// calls counts the calls the sandbox was asked to run, and results
	// records what it returned, by tool call ID.
	calls   *int
	results map[string][]string
}

// NewTools returns a simulated sandbox running on r that counts its calls
// in *calls and records its results in results.
func NewTools(r rt.Runtime, inj *Injector, calls *int, results map[string][]string) *Tools {
	return &Tools{r: r, inj: inj, calls: calls, results: results}
}

// Run implements toolexec.Executor.
func (t *Tools) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	*t.calls++
	rnd := t.r.Rand("tools")
	if err := t.r.Sleep(ctx, time.Duration(20+rt.Intn(rnd, 480))*time.Millisecond); err != nil {
		return toolexec.Result{}, err
	}
	if call.MCPServerID != "" {
		return t.mcp(ctx, call)
	}
	if f, ok := t.inj.Check(OpToolRun); ok {
		switch f {
		case ToolTimeout:
			t.r.Sleep(ctx, 365*24*time.Hour) // a tool that never ends
			return toolexec.Result{}, ctx.Err()
		case ToolCrash:
			return t.note(call, toolexec.Errorf("%s was killed by signal 9 (the sandbox's process exited)", call.Name)), nil
		case ToolMemoryKill:
			return t.note(call, toolexec.Errorf("%s was killed: it went over its memory limit of 512 MiB", call.Name)), nil
		default:
			t.inj.Unhandled(OpToolRun, f)
			return toolexec.Errorf("unhandled fault %s", f), nil
		}
	}
	if call.Source == nil {
		return toolexec.Errorf("%s has no source code", call.Name), nil
	}
	return t.note(call, toolexec.Result{Status: toolexec.StatusSuccess, Return: fmt.Sprintf("ran %s(%s)", call.Name, call.Arguments)}), nil
}

// mcp is the simulated MCP server: it echoes, unless MCPTimeout makes it
// never answer (the pool's call timeout, or the run's cancellation, ends
// the call) or MCPConnectionDropped drops the connection mid-call.
func (t *Tools) mcp(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	if f, ok := t.inj.Check(OpMCPCall); ok {
		switch f {
		case MCPTimeout:
			cctx, cancel := rt.WithTimeout(t.r, ctx, mcpCallTimeout)
			defer cancel()
			t.r.Sleep(cctx, 365*24*time.Hour)
			return t.note(call, toolexec.Errorf("mcp server %s: %s did not answer within %s", call.MCPServerID, call.Name, mcpCallTimeout)), nil
		case MCPConnectionDropped:
			return t.note(call, toolexec.Errorf("mcp server %s: the connection was lost during %s", call.MCPServerID, call.Name)), nil
		default:
			t.inj.Unhandled(OpMCPCall, f)
			return toolexec.Errorf("unhandled fault %s", f), nil
		}
	}
	return t.note(call, toolexec.Result{Status: toolexec.StatusSuccess, Return: fmt.Sprintf("echo from %s: %s", call.MCPServerID, call.Arguments)}), nil
}

// mcpCallTimeout is the simulated MCP pool's call timeout.
const mcpCallTimeout = 60 * time.Second

// note records a result the sandbox gives.
func (t *Tools) note(call toolexec.Call, res toolexec.Result) toolexec.Result {
	t.results[call.ID] = append(t.results[call.ID], res.Return)
	return res
}
