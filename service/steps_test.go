package service_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// replyText answers every request with text after a pause (the model
// call's duration), so each send is one step and logs two messages.
func replyText(pause time.Duration) *llmtest.Script {
	return &llmtest.Script{Reply: func(context.Context, llm.Request) (*llm.Response, error) {
		time.Sleep(pause)
		return llmtest.Text("ok"), nil
	}}
}

func (e *env) send(t *testing.T, id, text string) *agent.SendResponse {
	t.Helper()
	resp, err := e.svc.SendMessage(ctx, id, agent.SendRequest{Messages: []agent.InputMessage{{Role: llm.RoleUser, Content: text}}})
	if err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	return resp
}

func stepIDs(steps []agent.Step) []string {
	out := make([]string, len(steps))
	for i, st := range steps {
		out[i] = st.ID
	}
	return out
}

func (e *env) listSteps(t *testing.T, q service.StepQuery) []agent.Step {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 100
	}
	page, err := e.svc.ListSteps(ctx, q)
	if err != nil {
		t.Fatalf("ListSteps(%+v): %v", q, err)
	}
	if page.Partial {
		t.Fatalf("ListSteps(%+v) is partial", q)
	}
	return page.Steps
}

func TestStepMetricsAreMeasured(t *testing.T) {
	const pause = 20 * time.Millisecond
	e := newEnv(t, nil, replyText(pause))
	a := e.create(t, "timed")
	resp := e.send(t, a.ID, "hello")
	steps, err := e.svc.RunSteps(ctx, a.ID, resp.RunID)
	if err != nil || len(steps) != 1 {
		t.Fatalf("steps = %+v, %v", steps, err)
	}
	m := steps[0].Metrics
	if m == nil || m.LLMRequestNs == nil || m.StepNs == nil || m.ToolExecutionNs == nil {
		t.Fatalf("metrics = %+v", m)
	}
	if *m.LLMRequestNs < int64(pause) || *m.StepNs < *m.LLMRequestNs {
		t.Fatalf("llm_request_ns = %d, step_ns = %d; want >= %d and step >= request", *m.LLMRequestNs, *m.StepNs, pause)
	}
	if m.StepStartNs <= 0 || m.LLMRequestStartNs < m.StepStartNs || m.LLMRequestStartNs > steps[0].CreatedAt.UnixNano() {
		t.Fatalf("start times %d, %d do not frame the step created at %d", m.StepStartNs, m.LLMRequestStartNs, steps[0].CreatedAt.UnixNano())
	}
}

func TestListStepsFromStorage(t *testing.T) {
	e := newEnv(t, nil, replyText(0))
	a, b := e.create(t, "a"), e.create(t, "b")
	var runs []string
	for _, id := range []string{a.ID, b.ID, a.ID} {
		runs = append(runs, e.send(t, id, "hi").RunID)
	}
	var want []string // every step, oldest first
	for i, id := range []string{a.ID, b.ID, a.ID} {
		steps, err := e.svc.RunSteps(ctx, id, runs[i])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, stepIDs(steps)...)
	}
	if len(want) != 3 {
		t.Fatalf("steps %v", want)
	}
	// Listing reads storage: it activates no agent.
	e.reload(t, a.ID)
	e.reload(t, b.ID)
	if got := stepIDs(e.listSteps(t, service.StepQuery{Descending: true})); !slices.Equal(got, []string{want[2], want[1], want[0]}) {
		t.Fatalf("all steps, newest first = %v, want %v reversed", got, want)
	}
	if e.sys.IsActive(agent.ActorID(a.ID)) || e.sys.IsActive(agent.ActorID(b.ID)) {
		t.Fatal("listing steps activated an agent")
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{AgentID: a.ID, Descending: true})); !slices.Equal(got, []string{want[2], want[0]}) {
		t.Fatalf("agent a's steps = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{Descending: true, Limit: 1, After: want[0]})); !slices.Equal(got, []string{}) {
		t.Fatalf("after the oldest, newest first = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{Descending: true, Limit: 1, After: want[2]})); !slices.Equal(got, []string{want[1]}) {
		t.Fatalf("after the newest, newest first, limit 1 = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{After: want[0]})); !slices.Equal(got, want[1:]) {
		t.Fatalf("oldest first, after the oldest = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{AgentID: a.ID, After: want[0]})); !slices.Equal(got, []string{want[2]}) {
		t.Fatalf("agent a's, after its oldest = %v", got)
	}
	// A page with only "before" is the one nearest the cursor.
	if got := stepIDs(e.listSteps(t, service.StepQuery{Limit: 1, Before: want[2]})); !slices.Equal(got, []string{want[1]}) {
		t.Fatalf("ascending, before the newest, limit 1 = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{After: want[0], Before: want[2]})); !slices.Equal(got, []string{want[1]}) {
		t.Fatalf("between the oldest and newest = %v", got)
	}
	mid, err := e.svc.GetStep(ctx, want[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{Start: mid.CreatedAt})); !slices.Equal(got, []string{want[2]}) {
		t.Fatalf("created after the middle one = %v", got)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{End: mid.CreatedAt})); !slices.Equal(got, []string{want[0]}) {
		t.Fatalf("created before the middle one = %v", got)
	}
	if _, err := e.svc.ListSteps(ctx, service.StepQuery{Limit: 10, After: "step-00000000-0000-4000-8000-000000000000"}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
	// A deleted agent's steps are gone from the list.
	if err := e.svc.DeleteAgent(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if got := stepIDs(e.listSteps(t, service.StepQuery{})); !slices.Equal(got, []string{want[0], want[2]}) {
		t.Fatalf("after deleting b = %v", got)
	}
}

func TestStepFeedbackIsDurable(t *testing.T) {
	store := memory.New()
	e := newEnv(t, store, replyText(0))
	a := e.create(t, "rated")
	resp := e.send(t, a.ID, "hi")
	steps, err := e.svc.RunSteps(ctx, a.ID, resp.RunID)
	if err != nil || len(steps) != 1 {
		t.Fatalf("steps %v %v", steps, err)
	}
	id := steps[0].ID
	st, err := e.svc.SetStepFeedback(ctx, agent.StepFeedbackRequest{StepID: id, Feedback: agent.FeedbackPositive, Tags: []string{"good", "fast"}})
	if err != nil || st.Feedback != agent.FeedbackPositive || !slices.Equal(st.Tags, []string{"good", "fast"}) {
		t.Fatalf("feedback reply = %+v, %v", st, err)
	}
	// A new node on the same store sees it.
	e2 := newEnv(t, store, nil)
	got, err := e2.svc.GetStep(ctx, id)
	if err != nil || got.Feedback != agent.FeedbackPositive || !slices.Equal(got.Tags, []string{"good", "fast"}) {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
	yes, no := true, false
	if got := e2.listSteps(t, service.StepQuery{Feedback: agent.FeedbackPositive}); len(got) != 1 || got[0].ID != id {
		t.Fatalf("feedback=positive: %v", stepIDs(got))
	}
	if got := e2.listSteps(t, service.StepQuery{HasFeedback: &no}); len(got) != 0 {
		t.Fatalf("has_feedback=false: %v", stepIDs(got))
	}
	if got := e2.listSteps(t, service.StepQuery{Tags: []string{"nope", "fast"}}); len(got) != 1 {
		t.Fatalf("tags any of: %v", stepIDs(got))
	}
	// Letta's semantics: no feedback clears it; no tags keeps them.
	st, err = e2.svc.SetStepFeedback(ctx, agent.StepFeedbackRequest{StepID: id})
	if err != nil || st.Feedback != "" || !slices.Equal(st.Tags, []string{"good", "fast"}) {
		t.Fatalf("cleared = %+v, %v", st, err)
	}
	if got := e2.listSteps(t, service.StepQuery{HasFeedback: &yes}); len(got) != 0 {
		t.Fatalf("has_feedback=true after clearing: %v", stepIDs(got))
	}
	for _, bad := range []agent.StepFeedbackRequest{{StepID: id, Feedback: "meh"}, {StepID: id, Tags: []string{""}}} {
		if _, err := e2.svc.SetStepFeedback(ctx, bad); !errors.Is(err, agent.ErrInvalid) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	if _, err := e2.svc.SetStepFeedback(ctx, agent.StepFeedbackRequest{StepID: "step-00000000-0000-4000-8000-000000000000"}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unknown step: %v", err)
	}
}

func TestListRunsActivatesNoAgent(t *testing.T) {
	e := newEnv(t, nil, replyText(0))
	a := e.create(t, "runner")
	first := e.send(t, a.ID, "one").RunID
	second := e.send(t, a.ID, "two").RunID
	e.reload(t, a.ID)
	page, err := e.svc.ListRuns(ctx, service.RunQuery{AgentIDs: []string{a.ID}, Descending: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	runs := page.Runs
	if len(runs) != 2 || runs[0].ID != second || runs[1].ID != first {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	if runs[0].Status != agent.RunCompleted || runs[0].StopReason != agent.StopEndTurn || len(runs[0].StepIDs) != 1 {
		t.Fatalf("run read from storage = %+v", runs[0])
	}
	if e.sys.IsActive(agent.ActorID(a.ID)) {
		t.Fatal("listing runs activated the agent")
	}
}
