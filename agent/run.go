package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/compaction"
	"github.com/kelpie-ai/kelpie/invariant"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// A run is one turn of the agent loop. It starts with the client's
// messages (one invocation, one commit). Then a driver outside the actor
// advances it step by step: OpPrepare returns the model request for the
// next step; the driver calls the model — without holding the actor, so
// reads, cancels and refused sends are answered meanwhile — and OpApply
// logs the answer and runs its tool calls, committed together, so a tool
// call is never logged without its return. Steps are numbered; an answer
// for a step that is no longer current is dropped. A run that a crash
// interrupted is driven again when the agent next activates.

// Run statuses (Letta's).
const (
	RunCreated   = "created"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Run is a run's record.
type Run struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	// ConversationID names the run's conversation; "" for the default one.
	ConversationID string     `json:"conversation_id,omitempty"`
	Status         string     `json:"status"`
	StopReason     string     `json:"stop_reason,omitempty"`
	Error          string     `json:"error,omitempty"`
	Background     bool       `json:"background,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	CompletedAt    *time.Time `json:"completed_at,omitempty"`
	MaxSteps       int        `json:"max_steps"`
	// Model, if set, is the model handle this run uses instead of its
	// conversation's (a request's override_model).
	Model string `json:"model,omitempty"`
	// ClientTools are the client-side tools offered in this run.
	ClientTools []llm.Tool `json:"client_tools,omitempty"`
	// ClientSkills are the skills the client offered with the run.
	ClientSkills []ClientSkill `json:"client_skills,omitempty"`
	// Steps counts the model calls made so far.
	Steps int   `json:"steps"`
	Usage Usage `json:"usage"`
	// FirstSeq and EndSeq delimit the run's messages: [FirstSeq, EndSeq).
	FirstSeq uint64 `json:"first_seq"`
	EndSeq   uint64 `json:"end_seq"`
	// StepIDs name the run's steps, in order (at most MaxStepsMax).
	StepIDs []string `json:"step_ids,omitempty"`
}

// Step is the record of one model call of a run and what it logged.
type Step struct {
	ID               string    `json:"id"`
	RunID            string    `json:"run_id"`
	AgentID          string    `json:"agent_id"`
	ConversationID   string    `json:"conversation_id,omitempty"`
	Model            string    `json:"model,omitempty"`
	Status           string    `json:"status"` // "success" or "failed"
	PromptTokens     int       `json:"prompt_tokens"`
	CompletionTokens int       `json:"completion_tokens"`
	TotalTokens      int       `json:"total_tokens"`
	StopReason       string    `json:"stop_reason,omitempty"`
	Error            string    `json:"error,omitempty"`
	FirstSeq         uint64    `json:"first_seq"`
	EndSeq           uint64    `json:"end_seq"`
	CreatedAt        time.Time `json:"created_at"`
	// Feedback ("positive", "negative" or "") and Tags are a client's
	// rating of the step (OpStepFeedback).
	Feedback string   `json:"feedback,omitempty"`
	Tags     []string `json:"tags,omitempty"`
	// Metrics are the step's timings, when the driver measured them.
	Metrics *StepMetrics `json:"metrics,omitempty"`
}

// StepKey is the key of a step record in the agent's KV space.
func StepKey(id string) []byte { return tuple.Pack("s", id) }

// StepAgentKey maps a step ID to its agent (value: the agent ID).
func StepAgentKey(stepID string) []byte { return actor.IndexKey("step_agent", stepID) }

// StepByID names a step by ID.
type StepByID struct {
	StepID string `json:"step_id"`
}

// saveStep records a step of run.
func (t *turn) saveStep(st *Step) error {
	st.ID = rt.NewID(t.ids, "step")
	st.RunID, st.AgentID, st.Model, st.ConversationID = t.run.ID, t.ag.ID, t.th.model(t.ag), t.th.id()
	if t.run.Model != "" {
		st.Model = t.run.Model
	}
	st.CreatedAt = t.c.Now().UTC()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := t.c.Set(StepKey(st.ID), b); err != nil {
		return err
	}
	if err := t.c.SetIndex(StepAgentKey(st.ID), []byte(t.ag.ID)); err != nil {
		return err
	}
	if err := indexStep(t.c, st); err != nil {
		return err
	}
	t.run.StepIDs = append(t.run.StepIDs, st.ID)
	return nil
}

func loadStep(ctx context.Context, c *actor.Context[State], id string) (*Step, error) {
	v, err := c.Get(ctx, StepKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: step %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var st Step
	if err := json.Unmarshal(v, &st); err != nil {
		return nil, fmt.Errorf("%w: step %s: %v", storage.ErrCorrupt, id, err)
	}
	return &st, nil
}

// runSteps returns a run's steps in order.
func runSteps(ctx context.Context, c *actor.Context[State], runID string) ([]Step, error) {
	run, err := loadRun(ctx, c, runID)
	if err != nil {
		return nil, err
	}
	out := make([]Step, 0, len(run.StepIDs))
	for _, id := range run.StepIDs {
		st, err := loadStep(ctx, c, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *st)
	}
	return out, nil
}

// Done reports whether the run has finished.
func (r *Run) Done() bool { return r.Status != RunCreated && r.Status != RunRunning }

// RunEvent reports a run's committed progress: messages logged by one
// invocation, and the run's state after it.
type RunEvent struct {
	Run      Run
	Messages []Message
	// Err is why a failed run failed (in-process only).
	Err error
	// Delta, if set, is a streamed piece of step Run.Steps's model answer,
	// not yet committed; Messages is then empty.
	Delta *llm.Delta
}

// Events receives run events after the changes they describe commit.
type Events interface {
	Publish(ev RunEvent)
}

// ErrApprovalPending is returned for a send that does not answer the tool
// calls a previous run left waiting for approval.
var ErrApprovalPending = errors.New("agent: waiting for approval of pending tool calls")

// clientToolsMax bounds the client-side tools of one request.
const clientToolsMax = 64

// BusyError is returned for a send while another run is active.
type BusyError struct{ RunID string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("agent is busy with run %s; wait for it to finish or cancel it", e.RunID)
}

// Is makes errors.Is(err, actor.ErrBusy) hold.
func (e *BusyError) Is(target error) bool { return target == actor.ErrBusy }

// Driver advances active runs: the actor asks for a run to be driven
// after the commit that started it, and on activation for a run a crash
// interrupted. Drive must not block.
type Driver interface {
	Drive(agentID, runID string)
}

// ContextDriver is a Driver that is also given the context of the
// invocation that asks for the run (actor.Context.Values: its values
// only, such as a trace span to continue; never its cancellation).
type ContextDriver interface {
	DriveFrom(parent context.Context, agentID, runID string)
}

// SendResult is the reply to OpSend: the run, and whether it already
// existed because the client retried a message it had sent (same otid).
type SendResult struct {
	Run          Run  `json:"run"`
	Deduplicated bool `json:"deduplicated,omitempty"`
}

// RunRequest names a run.
type RunRequest struct {
	RunID string `json:"run_id"`
}

// CancelRequest cancels a run in progress: RunID, or (RunID empty) the
// one of conversation ConversationID ("" for the default one).
type CancelRequest struct {
	RunID          string `json:"run_id,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
}

// StepRequest names a step of a run.
type StepRequest struct {
	RunID string `json:"run_id"`
	Step  int    `json:"step"`
	// Overflow says the provider refused the step's previous request as
	// over the model's context window: compact, or cut, whatever the
	// counts say.
	Overflow bool `json:"overflow,omitempty"`
	// NoCompact asks for the step's request even if its window would be
	// compacted (the driver's bound on compactions per step).
	NoCompact bool `json:"no_compact,omitempty"`
}

// Prepared is the model request for a run's next step, or Done when the
// run is no longer active (finished, cancelled, or the step is stale).
type Prepared struct {
	Done    bool        `json:"done,omitempty"`
	Step    int         `json:"step"`
	Request llm.Request `json:"request"`
	// Embedding is the agent's embedding model handle: the driver embeds
	// the archival tool calls of the answer with it (ApplyRequest).
	Embedding string `json:"embedding,omitempty"`
	// External are the step's tools that run outside the actor: the
	// driver executes the answer's calls to them (ApplyRequest.ToolResults).
	External []ExternalTool `json:"external,omitempty"`
	// PromptEstimate is Kelpie's count of Request's prompt, in tokens;
	// the driver passes it back (ApplyRequest) to be compared with the
	// provider's.
	PromptEstimate int `json:"prompt_estimate,omitempty"`
	// Compact, if set, is a compaction the window needs before the step:
	// the driver asks the model for the summary (Compact.Request) and
	// applies it (OpCompact), then prepares the step again. Request is
	// then empty.
	Compact *CompactionPlan `json:"compact,omitempty"`
}

// ApplyRequest carries the model's answer for a step, or its failure.
type ApplyRequest struct {
	RunID    string        `json:"run_id"`
	Step     int           `json:"step"`
	Response *llm.Response `json:"response,omitempty"`
	// Error is the model call's failure (Response is then nil).
	Error string `json:"error,omitempty"`
	// Embeddings are the vectors of the answer's archival tool calls,
	// computed with Prepared.Embedding (see ToolEmbeddings).
	Embeddings *ToolEmbeddings `json:"embeddings,omitempty"`
	// Timing, if set, is what the driver measured of the step; it is
	// recorded as the step's metrics.
	Timing *StepTiming `json:"timing,omitempty"`
	// ToolResults are the results of the answer's calls to external
	// tools (Prepared.External), executed by the driver.
	ToolResults []ToolResult `json:"tool_results,omitempty"`
	// PromptEstimate is Prepared.PromptEstimate.
	PromptEstimate int `json:"prompt_estimate,omitempty"`
}

// Applied tells the driver whether the run goes on.
type Applied struct {
	Done bool `json:"done"`
	// StopReason is why the step ended the run (StopEndTurn, …), or
	// StepContinued if the run goes on; empty for a stale apply, which
	// logged no step.
	StopReason string `json:"stop_reason,omitempty"`
}

// StepContinued is Applied.StopReason of a step after which the run goes
// on (its tool calls want another step).
const StepContinued = "continue"

// Keys in the agent's KV space.

// RunKey is the key of a run record.
func RunKey(id string) []byte { return tuple.Pack("r", id) }

// OTIDKey maps a client's message otid to the run it started.
func OTIDKey(otid string) []byte { return tuple.Pack("o", otid) }

// Global run indexes.

// RunsIndex is the index of runs by creation time.
const RunsIndex = "runs_by_created"

// RunIndexKey is a run's entry in RunsIndex (value: the agent ID).
func RunIndexKey(r *Run) []byte {
	return actor.IndexKey(RunsIndex, uint64(r.CreatedAt.UnixNano()), r.ID)
}

// RunAgentKey maps a run ID to its agent (value: the agent ID).
func RunAgentKey(runID string) []byte { return actor.IndexKey("run_agent", runID) }

// ActiveRunsIndex is the index of the runs in progress, of every agent: an
// entry is written by the transaction that starts a run and deleted by the
// one that ends it (or deletes its agent), so a node starting up finds the
// runs a crash or a shutdown interrupted without activating every agent.
const ActiveRunsIndex = "runs_active"

// ActiveRunKey is a run's entry in ActiveRunsIndex (value: the agent ID).
func ActiveRunKey(runID string) []byte { return actor.IndexKey(ActiveRunsIndex, runID) }

// otidBytesMax bounds a client's otid.
const otidBytesMax = 256

// start begins a run: validate, deduplicate by otid, log the input, and
// queue the first step.
func (a *Actor) start(ctx context.Context, c *actor.Context[State], req *SendRequest) (*SendResult, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if (len(req.Messages) == 0 && len(req.Approvals) == 0) || len(req.Messages) > MessagesPerSendMax {
		return nil, invalidf("a send carries 1..%d messages (or approvals), got %d", MessagesPerSendMax, len(req.Messages))
	}
	if err := checkSkills(req.ClientSkills); err != nil {
		return nil, err
	}
	if len(req.ClientTools) > clientToolsMax {
		return nil, invalidf("%d client tools, over the limit of %d", len(req.ClientTools), clientToolsMax)
	}
	for _, ct := range req.ClientTools {
		if ct.Name == "" || len(ct.Name) > 128 {
			return nil, invalidf("client tool name %q", ct.Name)
		}
	}
	maxSteps := req.MaxSteps
	if maxSteps == 0 {
		maxSteps = DefaultMaxSteps
	}
	if maxSteps < 0 || maxSteps > MaxStepsMax {
		return nil, invalidf("max_steps %d outside 1..%d", req.MaxSteps, MaxStepsMax)
	}
	for _, m := range req.Messages {
		if m.Role != llm.RoleUser && m.Role != llm.RoleSystem {
			return nil, invalidf("message role %q: must be user or system", m.Role)
		}
		if err := checkText("message content", m.Content, MessageBytesMax); err != nil {
			return nil, err
		}
		if len(m.OTID) > otidBytesMax {
			return nil, invalidf("otid of %d bytes, over the limit of %d", len(m.OTID), otidBytesMax)
		}
	}
	// A retried send (same otid) returns the run it started the first time.
	for _, m := range req.Messages {
		if m.OTID == "" {
			continue
		}
		v, err := c.Get(ctx, OTIDKey(m.OTID))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		run, err := loadRun(ctx, c, string(v))
		if err != nil {
			return nil, err
		}
		return &SendResult{Run: *run, Deduplicated: true}, nil
	}
	if err := checkText("override_model", req.OverrideModel, NameBytesMax); err != nil {
		return nil, err
	}
	th, err := loadThread(ctx, c, req.ConversationID)
	if err != nil {
		return nil, err
	}
	if th.ActiveRun != nil {
		return nil, &BusyError{RunID: th.ActiveRun.ID}
	}
	if th.conv != nil && len(ag.ConversationRuns) >= ConversationRunsMax {
		return nil, fmt.Errorf("%w: %d conversations of agent %s have runs in progress, the limit", actor.ErrBusy, len(ag.ConversationRuns), ag.ID)
	}
	if p := th.PendingApproval; p != nil && len(req.Approvals) == 1 && req.Approvals[0].ToolCallID == "" {
		// One answer without a call ID answers every pending call.
		one := req.Approvals[0]
		req.Approvals = nil
		for _, call := range p.Calls {
			a := one
			a.ToolCallID = call.ID
			req.Approvals = append(req.Approvals, a)
		}
	}
	if err := checkApprovals(th.PendingApproval, req.Approvals); err != nil {
		return nil, err
	}
	if err := req.Embeddings.check(); err != nil {
		return nil, err
	}
	if err := checkToolResults(req.ToolResults); err != nil {
		return nil, err
	}
	if req.RunID == "" || len(req.RunID) > 128 {
		return nil, invalidf("run id %q", req.RunID)
	}
	now := c.Now().UTC()
	run := &Run{ID: req.RunID, AgentID: ag.ID, ConversationID: th.id(), Status: RunRunning, Background: req.Background, CreatedAt: now,
		MaxSteps: maxSteps, FirstSeq: th.NextSeq, ClientTools: req.ClientTools, ClientSkills: req.ClientSkills, Model: req.OverrideModel}
	t := &turn{c: c, ag: ag, th: th, ids: c.Runtime().Rand("ids"), runID: run.ID, run: run, embeds: req.Embeddings, results: req.ToolResults}
	if p := th.PendingApproval; p != nil {
		if len(run.ClientTools) == 0 {
			run.ClientTools = p.ClientTools
		}
		if err := t.answer(ctx, p, req.Approvals); err != nil {
			return nil, err
		}
		th.PendingApproval = nil
	}
	for _, m := range req.Messages {
		if err := t.append(Message{Role: m.Role, Content: m.Content, OTID: m.OTID}); err != nil {
			return nil, err
		}
		if m.OTID != "" {
			if err := c.Set(OTIDKey(m.OTID), []byte(run.ID)); err != nil {
				return nil, err
			}
		}
	}
	run.EndSeq = th.NextSeq
	if err := c.SetIndex(RunIndexKey(run), []byte(ag.ID)); err != nil {
		return nil, err
	}
	if err := c.SetIndex(RunAgentKey(run.ID), []byte(ag.ID)); err != nil {
		return nil, err
	}
	if err := c.Set(AgentRunKey(run), nil); err != nil {
		return nil, err
	}
	if err := c.SetIndex(ActiveRunKey(run.ID), []byte(ag.ID)); err != nil {
		return nil, err
	}
	if err := saveRun(c, run); err != nil {
		return nil, err
	}
	th.ActiveRun, th.LastRunID = run, run.ID
	if th.conv != nil {
		ag.ConversationRuns = append(ag.ConversationRuns, ConversationRun{ConversationID: th.conv.ID, RunID: run.ID})
		th.conv.LastMessageAt = &now
		if err := th.save(c); err != nil {
			return nil, err
		}
	}
	a.publish(c, *run, t.added, nil)
	a.drive(c, run)
	return &SendResult{Run: *run}, nil
}

// activeStep returns the run in progress runID, and its conversation, if
// it is at step n.
func activeStep(ctx context.Context, c *actor.Context[State], runID string, n int) (*thread, *Run, error) {
	th, err := runThread(ctx, c, runID)
	if err != nil || th == nil || th.ActiveRun.Steps != n {
		return nil, nil, err
	}
	return th, th.ActiveRun, nil
}

// prepare builds the model request for the active run's next step.
func (a *Actor) prepare(ctx context.Context, c *actor.Context[State], req *StepRequest) (*Prepared, error) {
	th, run, err := activeStep(ctx, c, req.RunID, req.Step)
	if err != nil {
		return nil, err
	}
	if run == nil {
		return &Prepared{Done: true}, nil
	}
	ag := c.State.Agent
	t := &turn{c: c, ag: ag, th: th, runID: run.ID, run: run}
	system, msgs, err := t.context(ctx)
	if err != nil {
		return nil, err
	}
	// The custom tools' current definitions, read here: an update to a
	// tool reaches the model at the agent's next step.
	tools, err := t.stepTools(ctx)
	if errors.Is(err, ErrToolsTooLarge) {
		// Not transient: the run fails with the reason, and the driver,
		// told the step is done, stops.
		if err := a.finish(c, t, run, RunFailed, StopError, err); err != nil {
			return nil, err
		}
		return &Prepared{Done: true}, nil
	}
	if err != nil {
		return nil, err
	}
	tools = append(tools, run.ClientTools...)
	model := th.model(ag)
	if run.Model != "" {
		model = run.Model
	}
	limit := a.contextLimit(ag, th, run)
	ps := measure(th, limit, system, msgs, tools)
	if fixed := int(float64(ps.budget.Fixed) * correction(th)); fixed >= limit {
		err := fmt.Errorf("the system prompt and tool definitions take about %d tokens, over the model's context window of %d: "+
			"shorten the memory blocks, detach tools, or raise the context window (llm_config.context_window)", fixed, limit)
		if err := a.finish(c, t, run, RunFailed, StopContextOverflowSystem, err); err != nil {
			return nil, err
		}
		return &Prepared{Done: true}, nil
	}
	trigger := ""
	switch {
	case req.Overflow:
		// The provider counted more than Kelpie did: from now on, counts
		// are scaled so that this prompt reads as over the window.
		trigger = compaction.TriggerOverflow
		if ps.corrected <= limit {
			th.PromptEstimate, th.PromptTokens = ps.estimate, limit+limit/50+1
			if err := th.save(c); err != nil {
				return nil, err
			}
			ps = measure(th, limit, system, msgs, tools)
		}
	case ps.budget.Over(ps.corrected) || len(msgs) >= contextMessagesMax:
		trigger = compaction.TriggerPostStep
	}
	if trigger != "" && !req.NoCompact {
		if p := a.planCompaction(ag, th, msgs, ps, trigger, model, nil); !p.Empty {
			p.RunID, p.Step = run.ID, run.Steps
			return &Prepared{Step: run.Steps, Compact: p}, nil
		}
	}
	history := t.history(system, msgs)
	if req.Overflow {
		// Nothing more can leave the window, and it is still too long:
		// the longest messages are cut, in this request only.
		history = fitHistory(history, ps.corrected-int(compaction.Threshold*float64(limit)))
	}
	external, err := t.externalTools(ctx)
	if err != nil {
		return nil, err
	}
	return &Prepared{Step: run.Steps, Request: llm.Request{Model: model, Messages: history, Tools: tools}, Embedding: ag.Embedding,
		External: external, PromptEstimate: ps.estimate}, nil
}

// apply logs the model's answer for a step and runs its tool calls.
func (a *Actor) apply(ctx context.Context, c *actor.Context[State], req *ApplyRequest) (*Applied, error) {
	th, run, err := activeStep(ctx, c, req.RunID, req.Step)
	if err != nil {
		return nil, err
	}
	if run == nil {
		return &Applied{Done: true}, nil // stale: cancelled, finished, or applied already
	}
	if err := req.Embeddings.check(); err != nil {
		return nil, err
	}
	if err := checkToolResults(req.ToolResults); err != nil {
		return nil, err
	}
	ag := c.State.Agent
	t := &turn{c: c, ag: ag, th: th, ids: c.Runtime().Rand("ids"), runID: run.ID, run: run, embeds: req.Embeddings, results: req.ToolResults}
	if req.Response == nil {
		msg := req.Error
		if msg == "" {
			msg = "model call failed"
		}
		if err := t.saveStep(&Step{Status: "failed", StopReason: StopLLMAPIError, Error: msg, FirstSeq: th.NextSeq, EndSeq: th.NextSeq,
			Metrics: stepMetrics(req.Timing, 0, c.Now())}); err != nil {
			return nil, err
		}
		return &Applied{Done: true, StopReason: StopLLMAPIError}, a.finish(c, t, run, RunFailed, StopLLMAPIError, errors.New(msg))
	}
	out := req.Response
	if out.Usage.PromptTokens > 0 && req.PromptEstimate > 0 {
		th.PromptTokens, th.PromptEstimate = out.Usage.PromptTokens, req.PromptEstimate
	}
	firstSeq := th.NextSeq
	run.Steps++
	run.Usage.StepCount++
	run.Usage.PromptTokens += out.Usage.PromptTokens
	run.Usage.CompletionTokens += out.Usage.CompletionTokens
	run.Usage.TotalTokens += out.Usage.TotalTokens
	am := Message{Role: llm.RoleAssistant, Content: out.Message.Content}
	var pending []ToolCall
	for _, tc := range out.Message.ToolCalls {
		// Calls resolve against the tools' definitions as this
		// invocation reads them: a custom tool renamed or deleted since
		// prepare is not found, and its call gets a tool error (runTool).
		approval, err := t.needsApproval(ctx, tc.Name)
		if err != nil {
			return nil, err
		}
		call := ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments, Approval: approval}
		am.ToolCalls = append(am.ToolCalls, call)
		if call.Approval {
			pending = append(pending, call)
		}
	}
	if err := t.append(am); err != nil {
		return nil, err
	}
	more, toolStart := false, c.Now()
	for _, tc := range am.ToolCalls {
		if tc.Approval {
			continue // waits for the client
		}
		result, status, terminal := t.runTool(ctx, tc)
		if t.fatal != nil {
			return nil, t.fatal
		}
		if err := t.append(Message{Role: llm.RoleTool, Content: result, ToolCallID: tc.ID, ToolName: tc.Name, ToolStatus: status}); err != nil {
			return nil, err
		}
		more = more || !terminal
	}
	run.EndSeq = th.NextSeq
	invariant.Check(callsAnswered(am.ToolCalls, t.added), "run %s step %d: a tool call that needs no approval has no return", run.ID, run.Steps)
	now := c.Now()
	if err := t.saveStep(&Step{Status: "success", PromptTokens: out.Usage.PromptTokens, CompletionTokens: out.Usage.CompletionTokens,
		TotalTokens: out.Usage.TotalTokens, FirstSeq: firstSeq, EndSeq: th.NextSeq, Metrics: stepMetrics(req.Timing, now.Sub(toolStart), now)}); err != nil {
		return nil, err
	}
	var stop string
	switch {
	case len(pending) > 0:
		th.PendingApproval = &PendingApproval{RunID: run.ID, Calls: pending, ClientTools: run.ClientTools}
		stop = StopApproval
	case !more:
		stop = StopEndTurn
	case run.Steps >= run.MaxSteps:
		stop = StopMaxSteps
	default:
		// The run goes on: it neither stopped nor waits for anyone.
		invariant.Check(run.Status == RunRunning && th.ActiveRun != nil && th.ActiveRun.ID == run.ID && th.PendingApproval == nil,
			"run %s continues with status %q, active run %v, pending approval %v", run.ID, run.Status, th.ActiveRun, th.PendingApproval != nil)
		if err := saveRun(c, run); err != nil {
			return nil, err
		}
		if err := th.save(c); err != nil {
			return nil, err
		}
		a.publish(c, *run, t.added, nil)
		return &Applied{StopReason: StepContinued}, nil
	}
	err = a.finish(c, t, run, RunCompleted, stop, nil)
	return &Applied{Done: true, StopReason: stop}, err
}

// callsAnswered reports whether every call in calls that needs no
// approval has its tool return among msgs.
func callsAnswered(calls []ToolCall, msgs []Message) bool {
	for _, tc := range calls {
		if tc.Approval {
			continue
		}
		if !slices.ContainsFunc(msgs, func(m Message) bool { return m.Role == llm.RoleTool && m.ToolCallID == tc.ID }) {
			return false
		}
	}
	return true
}

// finish ends the run in progress of t's conversation.
func (a *Actor) finish(c *actor.Context[State], t *turn, run *Run, status, stopReason string, cause error) error {
	// A run stops once, and only the conversation's active run.
	invariant.Check(!run.Done() && t.th.ActiveRun != nil && t.th.ActiveRun.ID == run.ID,
		"finishing run %s (status %q) of conversation %s, whose active run is %v", run.ID, run.Status, t.th.id(), t.th.ActiveRun)
	now := c.Now().UTC()
	run.Status, run.StopReason, run.CompletedAt = status, stopReason, &now
	if cause != nil {
		run.Error = cause.Error()
	}
	th := t.th
	run.EndSeq = th.NextSeq
	th.ActiveRun = nil
	th.MessageCount = th.NextSeq
	th.LastStopReason, th.LastRunCompletion = stopReason, &now
	if th.conv != nil {
		t.ag.ConversationRuns = slices.DeleteFunc(t.ag.ConversationRuns, func(r ConversationRun) bool { return r.RunID == run.ID })
	}
	if err := c.DeleteIndex(ActiveRunKey(run.ID)); err != nil {
		return err
	}
	if err := saveRun(c, run); err != nil {
		return err
	}
	if err := th.save(c); err != nil {
		return err
	}
	a.publish(c, *run, t.added, cause)
	return nil
}

// cancel stops a run in progress.
func (a *Actor) cancel(ctx context.Context, c *actor.Context[State], req *CancelRequest) (*Run, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	var th *thread
	var err error
	if req.RunID != "" {
		th, err = runThread(ctx, c, req.RunID)
	} else {
		th, err = loadThread(ctx, c, req.ConversationID)
	}
	if err != nil || th == nil || th.ActiveRun == nil {
		return nil, err
	}
	run := th.ActiveRun
	t := &turn{c: c, ag: ag, th: th, runID: run.ID}
	return run, a.finish(c, t, run, RunCancelled, StopCancelled, nil)
}

// OnActivate has the runs that a crash or a deactivation interrupted
// driven again: the default conversation's, and those of the others.
func (a *Actor) OnActivate(ctx context.Context, c *actor.Context[State]) error {
	ag := c.State.Agent
	if ag == nil {
		return nil
	}
	if ag.ActiveRun != nil {
		a.drive(c, ag.ActiveRun)
	}
	for _, r := range ag.ConversationRuns {
		a.drive(c, &Run{ID: r.RunID})
	}
	return nil
}

// drive asks the driver, once the current invocation commits, to advance
// run.
func (a *Actor) drive(c *actor.Context[State], run *Run) {
	if a.Driver == nil {
		return
	}
	agentID, runID := c.ID.ID, run.ID
	if d, ok := a.Driver.(ContextDriver); ok {
		parent := c.Values()
		c.AfterCommit(func() { d.DriveFrom(parent, agentID, runID) })
		return
	}
	c.AfterCommit(func() { a.Driver.Drive(agentID, runID) })
}

func (a *Actor) publish(c *actor.Context[State], run Run, msgs []Message, cause error) {
	if a.Events == nil {
		return
	}
	ev := RunEvent{Run: run, Messages: append([]Message(nil), msgs...), Err: cause}
	c.AfterCommit(func() { a.Events.Publish(ev) })
}

func saveRun(c *actor.Context[State], run *Run) error {
	b, err := json.Marshal(run)
	if err != nil {
		return err
	}
	return c.Set(RunKey(run.ID), b)
}

func loadRun(ctx context.Context, c *actor.Context[State], id string) (*Run, error) {
	if ag := c.State.Agent; ag != nil && ag.ActiveRun != nil && ag.ActiveRun.ID == id {
		r := *ag.ActiveRun
		return &r, nil
	}
	v, err := c.Get(ctx, RunKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: run %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: run %s: %v", storage.ErrCorrupt, id, err)
	}
	return &r, nil
}

// runMessages returns a run's messages.
func runMessages(ctx context.Context, c *actor.Context[State], id string) ([]Message, error) {
	run, err := loadRun(ctx, c, id)
	if err != nil {
		return nil, err
	}
	end := run.EndSeq
	if th, err := runThread(ctx, c, id); err != nil {
		return nil, err
	} else if th != nil {
		end = th.NextSeq
	}
	if end <= run.FirstSeq {
		return []Message{}, nil
	}
	return listMessages(ctx, c, &ListMessagesRequest{ConversationID: run.ConversationID, Start: run.FirstSeq, End: end, Limit: min(int(end-run.FirstSeq), MessagesPageMax)})
}

// needsApproval reports whether a call to the named tool waits for the
// client: client-side tools, and the agent's tools marked as requiring
// approval (custom tools also by their default_requires_approval).
// A call to a tool the agent does not have (any more) waits for nothing:
// it gets a tool error.
func (t *turn) needsApproval(ctx context.Context, name string) (bool, error) {
	if t.isClientTool(name) {
		return true, nil
	}
	ct, err := t.customTool(ctx, name)
	if err != nil {
		return false, err
	}
	if ct != nil {
		return requiresApproval(ct, t.ag), nil
	}
	return slices.Contains(t.ag.ApprovalRequired, name) && slices.Contains(t.ag.Tools, name), nil
}

// checkApprovals checks that a send answers exactly the pending calls.
func checkApprovals(p *PendingApproval, approvals []Approval) error {
	if p == nil {
		if len(approvals) > 0 {
			return invalidf("no tool call is waiting for approval")
		}
		return nil
	}
	if len(approvals) == 0 {
		ids := make([]string, len(p.Calls))
		for i, c := range p.Calls {
			ids[i] = c.ID
		}
		return fmt.Errorf("%w: answer tool calls %v (approve, deny, or return their results) before sending new messages", ErrApprovalPending, ids)
	}
	seen := map[string]bool{}
	for _, a := range approvals {
		if !slices.ContainsFunc(p.Calls, func(c ToolCall) bool { return c.ID == a.ToolCallID }) {
			return invalidf("tool call %q is not waiting for approval", a.ToolCallID)
		}
		if seen[a.ToolCallID] {
			return invalidf("tool call %q answered twice", a.ToolCallID)
		}
		seen[a.ToolCallID] = true
		if a.Return != nil {
			if err := checkText("tool return", *a.Return, MessageBytesMax); err != nil {
				return err
			}
		}
	}
	for _, c := range p.Calls {
		if !seen[c.ID] {
			return invalidf("tool call %q was not answered", c.ID)
		}
	}
	return nil
}

// answer logs the outcome of each pending call: the client's result, the
// server's run of an approved call, or a denial.
func (t *turn) answer(ctx context.Context, p *PendingApproval, approvals []Approval) error {
	for _, call := range p.Calls {
		i := slices.IndexFunc(approvals, func(a Approval) bool { return a.ToolCallID == call.ID })
		a := approvals[i]
		// The tool as it is now: a custom tool edited since the call
		// answers with its current return_char_limit.
		ct, err := t.customTool(ctx, call.Name)
		if err != nil {
			return err
		}
		var result, status string
		switch {
		case a.Return != nil:
			result, status = *a.Return, ToolSuccess
			if a.Status == ToolError {
				status = ToolError
			}
			if ct != nil && ct.ReturnCharLimit > 0 {
				result = truncateChars(result, ct.ReturnCharLimit)
			}
		case a.Approve && t.isClientTool(call.Name):
			result, status = "Error: "+call.Name+" is a client-side tool: the client must return its result", ToolError
		case a.Approve && ct != nil:
			// The service ran it in the sandbox before this send.
			result, status = t.customResult(ct, call)
		case a.Approve:
			result, status, _ = t.runTool(ctx, call)
			if t.fatal != nil {
				return t.fatal
			}
		default:
			result, status = "Error: the user denied this tool call", ToolError
			if a.Reason != "" {
				result += ": " + a.Reason
			}
		}
		if err := t.append(Message{Role: llm.RoleTool, Content: result, ToolCallID: call.ID, ToolName: call.Name, ToolStatus: status}); err != nil {
			return err
		}
	}
	return nil
}

func (t *turn) isClientTool(name string) bool {
	return t.run != nil && slices.ContainsFunc(t.run.ClientTools, func(ct llm.Tool) bool { return ct.Name == name })
}

// resetMessages empties the message log. The sequence numbers go on from
// where they were, so cursors held by clients never point at new messages.
func resetMessages(c *actor.Context[State]) (*Agent, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if ag.ActiveRun != nil {
		return nil, &BusyError{RunID: ag.ActiveRun.ID}
	}
	for _, prefix := range []tuple.Key{MessagePrefix(), tuple.Pack("mi")} {
		if err := c.DeleteRange(prefix, prefix.End()); err != nil {
			return nil, err
		}
	}
	ag.PendingApproval = nil
	ag.ContextStart, ag.Summary, ag.PromptTokens, ag.PromptEstimate = ag.NextSeq, nil, 0, 0
	forgetWindows(c)
	ag.UpdatedAt = c.Now().UTC()
	return ag, nil
}

// truncateChars cuts s to at most n characters.
func truncateChars(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
