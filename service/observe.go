package service

import (
	"context"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
)

// Observer receives the service's measurements, for metrics and traces
// (package telemetry implements it). Durations are measured on the
// runtime's clock, so under the simulator they are virtual; without an
// observer (the default) nothing is measured. Its methods must be quick
// and must not call back into the Service.
type Observer interface {
	// RunContext returns the context a run's driver starts from, given
	// the context (values only) of the invocation that asked for the run
	// to be driven: it may carry that invocation's trace on. It must not
	// carry parent's values wholesale, since the driver outlives the
	// request.
	RunContext(parent context.Context) context.Context
	// ModelCall reports that a model call starts, to the model with the
	// given handle ("provider/model"; empty for the default model). It
	// returns the context for the call and end, called with its outcome.
	ModelCall(ctx context.Context, model string) (context.Context, func(d time.Duration, usage llm.Usage, err error))
	// ToolCalls reports the tool calls of one model answer, by kind: one
	// of agent.External* for tools that run outside the actor,
	// ToolKindAgent for the others (run by the agent, or left for
	// approval or the client).
	ToolCalls(kinds []string)
	// ToolCall reports that an external tool call starts; end is called
	// with its status (agent.ToolSuccess or agent.ToolError).
	ToolCall(ctx context.Context, kind, name string) (context.Context, func(d time.Duration, status string))
	// StepEnded reports a committed step, with why it ended its run or
	// agent.StepContinued.
	StepEnded(stopReason string)
	// RunEnded reports that a run ended (committed), with its stop reason.
	RunEnded(stopReason string)
	// Compaction reports that a compaction starts, for a run's step
	// (CompactionRun) or a client's request (CompactionRequest); end is
	// called with its outcome.
	Compaction(ctx context.Context, trigger string) (context.Context, func(d time.Duration, err error))
}

// ToolKindAgent is the kind Observer.ToolCalls gives a call to a tool
// that does not run outside the actor.
const ToolKindAgent = "agent"

// Compaction triggers (Observer.Compaction).
const (
	CompactionRun     = "run"
	CompactionRequest = "request"
)

// WithObserver has the service report its measurements to o, and the
// agents' run events (RunEnded) too.
func WithObserver(o Observer) Option {
	return func(s *Service) { s.obs = o }
}

// noEnd and friends are the ends of unobserved measurements.
var (
	noModelEnd = func(*llm.Response, error) {}
	noToolEnd  = func(string) {}
	noEnd      = func(error) {}
)

// observeModel starts observing a model call to model.
func (s *Service) observeModel(ctx context.Context, model string) (context.Context, func(*llm.Response, error)) {
	if s.obs == nil {
		return ctx, noModelEnd
	}
	start := s.rt.Now()
	ctx, end := s.obs.ModelCall(ctx, model)
	return ctx, func(resp *llm.Response, err error) {
		var u llm.Usage
		if resp != nil {
			u = resp.Usage
		}
		end(s.rt.Now().Sub(start), u, err)
	}
}

// observeTool starts observing an external tool call.
func (s *Service) observeTool(ctx context.Context, kind, name string) (context.Context, func(status string)) {
	if s.obs == nil {
		return ctx, noToolEnd
	}
	start := s.rt.Now()
	ctx, end := s.obs.ToolCall(ctx, kind, name)
	return ctx, func(status string) { end(s.rt.Now().Sub(start), status) }
}

// observeCompaction starts observing a compaction.
func (s *Service) observeCompaction(ctx context.Context, trigger string) (context.Context, func(error)) {
	if s.obs == nil {
		return ctx, noEnd
	}
	start := s.rt.Now()
	ctx, end := s.obs.Compaction(ctx, trigger)
	return ctx, func(err error) { end(s.rt.Now().Sub(start), err) }
}

// observeToolCalls reports the kinds of an answer's tool calls.
func (s *Service) observeToolCalls(external []agent.ExternalTool, calls []llm.ToolCall) {
	if s.obs == nil || len(calls) == 0 {
		return
	}
	kinds := make([]string, len(calls))
	for i, c := range calls {
		kinds[i] = ToolKindAgent
		for _, e := range external {
			if e.Name == c.Name {
				kinds[i] = e.Kind
				break
			}
		}
	}
	s.obs.ToolCalls(kinds)
}

// observedEvents passes the agents' run events to the hub, reporting each
// run's end to the observer.
type observedEvents struct {
	hub *hub
	obs Observer
}

// Publish implements agent.Events.
func (e observedEvents) Publish(ev agent.RunEvent) {
	if ev.Delta == nil && ev.Run.Done() {
		e.obs.RunEnded(ev.Run.StopReason)
	}
	e.hub.Publish(ev)
}

// events is what the agent actor publishes its run events to.
func (s *Service) events() agent.Events {
	if s.obs == nil {
		return s.hub
	}
	return observedEvents{hub: s.hub, obs: s.obs}
}

// DriveFrom implements agent.ContextDriver: Drive, continuing the trace
// parent carries when the service has an observer.
func (s *Service) DriveFrom(parent context.Context, agentID, runID string) {
	s.drive(parent, agentID, runID)
}

// runBase is the context a run's driver starts from.
func (s *Service) runBase(parent context.Context) context.Context {
	if s.obs == nil || parent == nil {
		return context.Background()
	}
	return s.obs.RunContext(parent)
}
