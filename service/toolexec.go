package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// External tool execution: the driver runs a step's calls to tools that
// run outside the actor (agent.Prepared.External) between the model call
// and OpApply, and the service runs approved ones before the send that
// approves them. See agent/external.go.

// Limits of external tool execution.
const (
	// toolTimeout bounds one external tool call, whatever the executor's
	// own bounds.
	toolTimeout = 3 * time.Minute
	// toolCallsParallelMax bounds the calls of one step that run at once.
	toolCallsParallelMax = 4
)

// WithToolExecutor makes the service execute the tools that run outside
// the actor (fetch_webpage, web_search, …) with e. Without it, a call to
// one gets a tool error saying the server cannot run it.
func WithToolExecutor(e toolexec.Executor) Option {
	return func(s *Service) { s.executor = e }
}

// runExternal executes the calls among calls to the tools in external
// that need no approval, at most toolCallsParallelMax at a time, and
// returns their results. A call the executor cannot attempt, or that
// runs out of time, gets an error result: the run goes on.
func (s *Service) runExternal(ctx context.Context, agentID string, external []agent.ExternalTool, calls []llm.ToolCall) []agent.ToolResult {
	var todo []toolexec.Call
	var kinds []string
	for _, c := range calls {
		i := slices.IndexFunc(external, func(e agent.ExternalTool) bool { return e.Name == c.Name })
		if i < 0 || external[i].RequiresApproval {
			continue
		}
		kinds = append(kinds, external[i].Kind)
		todo = append(todo, toolexec.Call{ID: c.ID, Name: c.Name, Arguments: json.RawMessage(c.Arguments),
			AgentID: agentID, ToolID: external[i].ToolID, Source: external[i].Source, Env: external[i].Env, MCPServerID: external[i].MCPServerID})
	}
	results := make([]agent.ToolResult, len(todo))
	for start := 0; start < len(todo); start += toolCallsParallelMax {
		batch := todo[start:min(start+toolCallsParallelMax, len(todo))]
		futures := make([]*rt.Future[agent.ToolResult], len(batch))
		for i, call := range batch {
			f := rt.NewFuture[agent.ToolResult](s.rt)
			futures[i] = f
			kind := kinds[start+i]
			s.rt.Go("tool "+call.ID, func() {
				tctx, end := s.observeTool(ctx, kind, call.Name)
				r := s.execute(tctx, call)
				end(r.Status)
				f.Resolve(r, nil)
			})
		}
		for i, f := range futures {
			r, _ := f.Wait(context.Background()) // execute always resolves, bounded by toolTimeout
			results[start+i] = r
		}
	}
	return results
}

// execute runs one call, bounded by toolTimeout and ctx.
func (s *Service) execute(ctx context.Context, call toolexec.Call) agent.ToolResult {
	out := agent.ToolResult{CallID: call.ID}
	if s.executor == nil {
		out.Status, out.Return = agent.ToolError, fmt.Sprintf("Error: %s cannot run on this server: no tool executor is configured", call.Name)
		return out
	}
	tctx, cancel := rt.WithTimeout(s.rt, ctx, toolTimeout)
	defer cancel()
	res, err := s.executor.Run(tctx, call)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (err != nil && tctx.Err() != nil && ctx.Err() == nil):
		out.Status, out.Return = agent.ToolError, fmt.Sprintf("Error: %s did not finish within %s", call.Name, toolTimeout)
	case err != nil:
		out.Status, out.Return = agent.ToolError, fmt.Sprintf("Error: %s could not run: %v", call.Name, err)
	default:
		out.Status, out.Return, out.Stdout, out.Stderr = res.Status, res.Return, res.Stdout, res.Stderr
		if out.Status != agent.ToolSuccess {
			out.Status = agent.ToolError
		}
	}
	return out
}

// approvalToolResults executes the approved calls to external tools among
// the pending calls that approvals answer, before the send that approves
// them (the actor logs their results with the send). nil when none is.
func (s *Service) approvalToolResults(ctx context.Context, agentID, conversationID string, approvals []agent.Approval) []agent.ToolResult {
	approved := func(callID string) bool {
		for _, a := range approvals {
			if (a.ToolCallID == callID || (len(approvals) == 1 && a.ToolCallID == "")) && a.Approve && a.Return == nil {
				return true
			}
		}
		return false
	}
	if !slices.ContainsFunc(approvals, func(a agent.Approval) bool { return a.Approve && a.Return == nil }) {
		return nil
	}
	ag, err := s.GetAgent(ctx, agentID) // with its custom tools' current definitions
	if err != nil {
		return nil // the send reports the problem
	}
	pending := ag.PendingApproval
	if conversationID != "" {
		if pending, err = s.pendingApproval(ctx, agentID, conversationID); err != nil {
			return nil
		}
	}
	if pending == nil {
		return nil
	}
	tools := agent.ExternalTools(ag, ag.CustomTools)
	var calls []llm.ToolCall
	var external []agent.ExternalTool
	for _, c := range pending.Calls {
		i := slices.IndexFunc(tools, func(e agent.ExternalTool) bool { return e.Name == c.Name })
		if approved(c.ID) && i >= 0 {
			calls = append(calls, llm.ToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
			e := tools[i]
			e.RequiresApproval = false // approved
			external = append(external, e)
		}
	}
	if len(calls) == 0 {
		return nil
	}
	return s.runExternal(ctx, agentID, external, calls)
}

// pendingApproval returns the calls waiting for approval in a
// conversation ("" for the agent's default one).
func (s *Service) pendingApproval(ctx context.Context, agentID, conversationID string) (*agent.PendingApproval, error) {
	if conversationID == "" {
		ag, err := s.GetAgent(ctx, agentID)
		if err != nil {
			return nil, err
		}
		return ag.PendingApproval, nil
	}
	conv, err := s.GetConversation(ctx, conversationID)
	if err != nil {
		return nil, err
	}
	return conv.PendingApproval, nil
}

// RunTool executes one call outside any agent (POST /v1/tools/run),
// bounded like a run's calls; the result is logged nowhere.
func (s *Service) RunTool(ctx context.Context, call toolexec.Call) agent.ToolResult {
	if call.ID == "" {
		call.ID = rt.NewID(s.ids, "call")
	}
	return s.execute(ctx, call)
}

// RunAgentTool executes the agent's tool named name with args, as a run's
// step would (its source, the agent's secrets), but logs nothing. Only
// tools that run outside the agent can run on their own: the memory
// tools change the agent inside a step.
func (s *Service) RunAgentTool(ctx context.Context, agentID, name string, args json.RawMessage) (agent.ToolResult, error) {
	ag, err := s.GetAgent(ctx, agentID)
	if err != nil {
		return agent.ToolResult{}, err
	}
	tools := agent.ExternalTools(ag, ag.CustomTools)
	i := slices.IndexFunc(tools, func(e agent.ExternalTool) bool { return e.Name == name })
	if i < 0 {
		if slices.Contains(ag.Tools, name) {
			return agent.ToolResult{}, fmt.Errorf("%w: %s runs inside the agent's steps (it changes the agent's memory or log) and cannot run on its own", agent.ErrInvalid, name)
		}
		return agent.ToolResult{}, fmt.Errorf("%w: agent %s has no tool named %q", agent.ErrNotFound, agentID, name)
	}
	e := tools[i]
	return s.execute(ctx, toolexec.Call{ID: rt.NewID(s.ids, "call"), Name: name, Arguments: args, AgentID: agentID,
		ToolID: e.ToolID, Source: e.Source, Env: e.Env, MCPServerID: e.MCPServerID}), nil
}
