package sim

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
	"github.com/kelpie-ai/kelpie/tools"
)

// The workload's custom tool. One custom tool (named CustomToolPrefix) is
// created before the clients start and attached to new agents with
// probability 1/customToolOneIn. Clients now and then rename it (to a
// name never used before), change its description, or delete it and
// create another (attached to the agents the deleted one was). The
// simulated model calls it by the name the step's tool list offered; a
// call whose name is gone by the time the step applies it gets a tool
// error at once (check.CustomToolCallsResolved), and a call to the
// current name waits for the client, who answers it like any paused run.

// CustomToolPrefix begins every name the workload's custom tool has.
const CustomToolPrefix = "team_lookup"

const (
	// customToolOneIn: a new agent gets the custom tool with
	// probability 1/customToolOneIn.
	customToolOneIn = 2
	// createToolAttempts bounds the attempts to create the custom tool.
	createToolAttempts = 20
)

// customToolWork is the workload's custom tool and its MCP tool: their
// histories, the calls the models made to them, and the simulated
// sandbox's results.
type customToolWork struct {
	*world
	// tool is the current custom tool (nil if none); toolGone holds when
	// each of its names was known to be gone; customCalls the calls to
	// it any model made, by call ID; loggedCalls those in the final logs.
	tool          *simTool
	replacingTool bool
	toolGone      map[string]int64
	customCalls   map[string]*check.CustomToolCall
	loggedCalls   []string
	// sandboxResults are the simulated sandbox's results, by call ID;
	// mcpToolID is the workload's MCP tool ("" if its create failed).
	sandboxResults map[string][]string
	mcpToolID      string
}

// checks are the custom tool's invariants.
func (w *customToolWork) checks() []func() error {
	return []func() error{func() error { return check.CustomToolCallsResolved(w.customToolCalls(), unavailable) }}
}

// simTool is the history of one custom tool.
type simTool struct {
	id string
	// names holds every name the tool may have had.
	names []string
	// agents holds the agents it may be attached to.
	agents []string
}

// toolSchema is the custom tool's function schema under a name.
func toolSchema(name, desc string) map[string]any {
	return map[string]any{"name": name, "description": desc,
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}}}}
}

// createTool creates a custom tool named name; on success it becomes the
// current one (w.tool).
func (w *customToolWork) createTool(r rt.Runtime, c int, name string) {
	for range createToolAttempts {
		var t *tools.Tool
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			var err error
			t, err = svc.Tools().Create(ctx, tools.Spec{SourceCode: "def " + name + "(q): pass", JSONSchema: toolSchema(name, "Looks something up for the team.")})
			return err
		})
		if op.Outcome == check.OK && op.Found {
			w.tool = &simTool{id: t.ID, names: []string{name}}
			return
		}
		// An Unknown create may have taken the name: try another.
		name = fmt.Sprintf("%s_c%d", CustomToolPrefix, rt.Intn(w.rng, 1<<30))
		r.Sleep(context.Background(), 100*time.Millisecond)
	}
}

// gone records that from t on no tool has any of names.
func (w *customToolWork) gone(names []string, t int64) {
	for _, n := range names {
		if at, ok := w.toolGone[n]; !ok || t < at {
			w.toolGone[n] = t
		}
	}
}

// editTool renames the custom tool, changes its description, or deletes
// it and creates another, attached to the same agents.
func (w *customToolWork) editTool(r rt.Runtime, c, i int) {
	t := w.tool
	if w.replacingTool {
		return
	}
	if t == nil { // deleted, and its successor's create failed
		w.createTool(r, c, fmt.Sprintf("%s_r%d_%d", CustomToolPrefix, c, i))
		return
	}
	lost := func(op check.Op) { // an earlier Unknown delete applied
		if op.Outcome == check.OK && !op.Found && w.tool == t {
			w.gone(t.names, op.Return)
			w.tool = nil
		}
	}
	switch rt.Intn(w.rng, 4) {
	case 0: // delete, then create another
		w.replacingTool = true
		defer func() { w.replacingTool = false }()
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			return svc.Tools().Delete(ctx, t.id)
		})
		if op.Outcome != check.OK {
			return // perhaps deleted: later edits may find it gone
		}
		w.res.ToolDeletes++
		w.gone(t.names, op.Return)
		w.tool = nil
		w.createTool(r, c, fmt.Sprintf("%s_r%d_%d", CustomToolPrefix, c, i))
		if w.tool == nil {
			return
		}
		for _, id := range t.agents {
			w.attach(r, c, id, agent.UpdateRequest{AttachCustomTools: []string{w.tool.id}})
		}
	case 1: // rename
		name := fmt.Sprintf("%s_%d_%d", CustomToolPrefix, c, i)
		t.names = append(t.names, name)
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			_, err := svc.Tools().Update(ctx, t.id, tools.Patch{JSONSchema: toolSchema(name, fmt.Sprintf("Looks something up for the team (%d/%d).", c, i))})
			return err
		})
		if op.Outcome == check.OK && op.Found {
			w.res.ToolEdits++
			w.gone(t.names[:len(t.names)-1], op.Return)
		}
		lost(op)
	default: // a new description
		desc := fmt.Sprintf("Looks something up for the team, edition %d/%d.", c, i)
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			_, err := svc.Tools().Update(ctx, t.id, tools.Patch{Description: &desc})
			return err
		})
		if op.Outcome == check.OK && op.Found {
			w.res.ToolEdits++
		}
		lost(op)
	}
}

// customCalled records a call to the custom tool the model answered with
// (called by the simulated model, on the scheduler).
func (w *customToolWork) customCalled(agentID, callID, name string) {
	w.customCalls[callID] = &check.CustomToolCall{Agent: agentID, CallID: callID, Name: name, Issued: w.sim.Now().Sub(Epoch).Nanoseconds()}
}

// noteCustomCalls records the calls to the custom tool and their returns
// in an agent's final message log.
func (w *customToolWork) noteCustomCalls(msgs []agent.Message) {
	for _, m := range msgs {
		if c, ok := w.customCalls[m.ToolCallID]; ok && m.ToolCallID != "" {
			c.Returned, c.Status, c.Content = true, m.ToolStatus, m.Content
		}
		for _, tc := range m.ToolCalls {
			if c, ok := w.customCalls[tc.ID]; ok {
				c.Approval = tc.Approval
				w.loggedCalls = append(w.loggedCalls, c.CallID)
			}
		}
	}
}

// customToolCalls returns the logged calls to the custom tool, in log
// order, with when their names were gone; and counts them.
func (w *customToolWork) customToolCalls() []check.CustomToolCall {
	out := make([]check.CustomToolCall, 0, len(w.loggedCalls))
	for _, id := range w.loggedCalls {
		c := *w.customCalls[id]
		c.GoneSince = w.toolGone[c.Name]
		c.Executed = w.sandboxResults[c.CallID]
		if c.GoneSince != 0 && c.GoneSince < c.Issued {
			w.res.StaleToolCalls++
		}
		out = append(out, c)
	}
	w.res.CustomToolCalls += len(out)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// unavailable is the tool error of a call to a tool the agent does not
// have.
func unavailable(name string) string {
	return fmt.Sprintf("Error: tool %q is not available to this agent", name)
}
