package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Steps: a record per model call (run.go writes it), its feedback, its
// timings, and the orderings that let steps be listed without activating
// any agent.
//
// Layout:
//
//	agent KV ("s", stepID)                      -> the Step, JSON
//	agent KV ("sc", createdNanos, stepID)       -> empty: the agent's steps in creation order
//	index ("step_agent", stepID)                -> agent ID
//	index ("steps_by_created", createdNanos, stepID) -> agent ID
//
// All four are written in the invocation that logs the step, hence in one
// transaction. Deleting an agent clears its KV space (its steps and their
// order) but leaves the two index entries, which then name no step; readers
// skip them, as they skip the run index entries of deleted agents.

// Step feedback values (Letta's FeedbackType).
const (
	FeedbackPositive = "positive"
	FeedbackNegative = "negative"
)

// StepsIndex is the index of every agent's steps by creation time; its
// entries are (createdNanos, stepID) -> agent ID.
const StepsIndex = "steps_by_created"

// StepIndexKey is a step's entry in StepsIndex.
func StepIndexKey(st *Step) []byte {
	return actor.IndexKey(StepsIndex, uint64(st.CreatedAt.UnixNano()), st.ID)
}

// StepsIndexPrefix is the prefix of every StepIndexKey.
func StepsIndexPrefix() tuple.Key { return actor.IndexKey(StepsIndex) }

// AgentStepKey orders a step among its agent's steps: a key in the agent's
// KV space, (createdNanos, stepID) -> empty.
func AgentStepKey(st *Step) []byte { return tuple.Pack("sc", uint64(st.CreatedAt.UnixNano()), st.ID) }

// AgentStepsPrefix is the prefix of every AgentStepKey.
func AgentStepsPrefix() tuple.Key { return tuple.Pack("sc") }

// StepTiming is what the run driver measured of one step on the runtime's
// clock, sent with the model's answer: when the step began (before the
// model request was prepared), when the model request began, and how long
// it took.
type StepTiming struct {
	StepStart       time.Time `json:"step_start"`
	LLMRequestStart time.Time `json:"llm_request_start"`
	LLMRequestNanos int64     `json:"llm_request_ns"`
}

// StepMetrics are a step's timings (Letta's StepMetrics): start times in
// nanoseconds since the Unix epoch, durations in nanoseconds. A nil
// duration was not measured.
type StepMetrics struct {
	StepStartNs       int64  `json:"step_start_ns"`
	LLMRequestStartNs int64  `json:"llm_request_start_ns"`
	LLMRequestNs      *int64 `json:"llm_request_ns,omitempty"`
	// ToolExecutionNs is the time the step's tool calls took to run (and
	// their returns to be logged) inside the agent's invocation.
	ToolExecutionNs *int64 `json:"tool_execution_ns,omitempty"`
	// StepNs runs from StepStart to the moment the step's record was
	// written, in the invocation that commits it.
	StepNs *int64 `json:"step_ns,omitempty"`
}

// stepMetrics turns the driver's timing into a step's metrics; now is the
// time the record is written and tools the time its tool calls took. It
// returns nil without a timing (a driver that measured nothing). Durations
// computed across the driver and the actor use wall-clock readings (the
// timing crossed a JSON boundary), so a clock step backwards is clamped
// to zero.
func stepMetrics(tm *StepTiming, tools time.Duration, now time.Time) *StepMetrics {
	if tm == nil {
		return nil
	}
	llm := max(tm.LLMRequestNanos, 0)
	toolNs := max(int64(tools), 0)
	stepNs := max(int64(now.Sub(tm.StepStart)), 0)
	return &StepMetrics{
		StepStartNs: tm.StepStart.UnixNano(), LLMRequestStartNs: tm.LLMRequestStart.UnixNano(),
		LLMRequestNs: &llm, ToolExecutionNs: &toolNs, StepNs: &stepNs,
	}
}

// indexStep writes a new step's orderings (see the layout above).
func indexStep(c *actor.Context[State], st *Step) error {
	if err := c.Set(AgentStepKey(st), nil); err != nil {
		return err
	}
	return c.SetIndex(StepIndexKey(st), []byte(st.AgentID))
}

// StepFeedbackRequest sets a step's feedback with Letta's semantics:
// Feedback replaces the step's feedback ("" clears it); Tags, when not
// empty, replace the step's tags.
type StepFeedbackRequest struct {
	StepID   string   `json:"step_id"`
	Feedback string   `json:"feedback,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// CheckStepFeedback validates a feedback request's values.
func CheckStepFeedback(req *StepFeedbackRequest) error {
	switch req.Feedback {
	case "", FeedbackPositive, FeedbackNegative:
	default:
		return invalidf("feedback %q: must be %q or %q", req.Feedback, FeedbackPositive, FeedbackNegative)
	}
	return checkTags(req.Tags)
}

// setStepFeedback records feedback on one of the agent's steps.
func setStepFeedback(ctx context.Context, c *actor.Context[State], req *StepFeedbackRequest) (*Step, error) {
	if c.State.Agent == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if err := CheckStepFeedback(req); err != nil {
		return nil, err
	}
	st, err := loadStep(ctx, c, req.StepID)
	if err != nil {
		return nil, err
	}
	st.Feedback = req.Feedback
	if len(req.Tags) > 0 {
		st.Tags = slices.Clone(req.Tags)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if err := c.Set(StepKey(st.ID), b); err != nil {
		return nil, err
	}
	return st, nil
}
