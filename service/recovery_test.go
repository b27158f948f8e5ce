package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// answerWait bounds a test's wait for something that must happen at once.
const answerWait = 5 * time.Second

// heldModel is a model whose calls wait until released (or their context
// ends); called receives a token per call.
type heldModel struct {
	called  chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHeldModel() *heldModel {
	return &heldModel{called: make(chan struct{}, 100), release: make(chan struct{})}
}

func (m *heldModel) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	m.called <- struct{}{}
	select {
	case <-m.release:
		return llmtest.Text("done"), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitCalled waits for n model calls.
func (m *heldModel) waitCalled(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-m.called:
		case <-time.After(answerWait):
			t.Fatal("the model was not called")
		}
	}
}

func (m *heldModel) free() { m.once.Do(func() { close(m.release) }) }

func userSend(text string) agent.SendRequest {
	return agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: text}}}
}

// runStatus reads a run's status from committed storage (ListRuns), not
// through its agent.
func runStatus(t *testing.T, svc *service.Service, runID string) string {
	t.Helper()
	page, err := svc.ListRuns(ctx, service.RunQuery{Limit: service.ListLimitMax})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Runs {
		if r.ID == runID {
			return r.Status
		}
	}
	return "absent"
}

func TestDeleteAgentEndsWaitingCallers(t *testing.T) {
	model := newHeldModel()
	defer model.free()
	e := newEnv(t, nil, model)
	a, b := e.create(t, "sync"), e.create(t, "async")
	sent := make(chan error, 1)
	go func() {
		_, err := e.svc.SendMessage(ctx, a.ID, userSend("hi"))
		sent <- err
	}()
	started, err := e.svc.StartRun(ctx, b.ID, userSend("hi"))
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan error, 1)
	go func() {
		_, err := e.svc.FollowRun(ctx, b.ID, started.Run.ID, -1, nil)
		followed <- err
	}()
	model.waitCalled(t, 2)
	for _, id := range []string{a.ID, b.ID} {
		if err := e.svc.DeleteAgent(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The send was in its run (the model was called); the follow may have
	// begun after the delete, and then found no agent.
	for name, ch := range map[string]chan error{"send": sent, "follow": followed} {
		select {
		case err := <-ch:
			if !errors.Is(err, agent.ErrNotFound) || (name == "send" && !errors.Is(err, service.ErrDeletedDuringRun)) {
				t.Errorf("%s of a run whose agent was deleted: %v; want ErrNotFound (and, for the send, ErrDeletedDuringRun)", name, err)
			}
		case <-time.After(answerWait):
			t.Errorf("%s of a run whose agent was deleted: no answer within %v", name, answerWait)
		}
	}
}

func TestRecoverRunsResumesInterruptedRuns(t *testing.T) {
	store := memory.New()
	held := newHeldModel()
	defer held.free()
	crashed := newEnv(t, store, held)
	ag := crashed.create(t, "a")
	started, err := crashed.svc.StartRun(ctx, ag.ID, userSend("hi"))
	if err != nil {
		t.Fatal(err)
	}
	held.waitCalled(t, 1)
	// A second node on the same store, as after a crash of the first
	// (whose commits its new activations fence).
	restarted := newEnv(t, store, llmtest.Echo())
	n, err := restarted.svc.RecoverRuns(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RecoverRuns = %d, %v; want the 1 interrupted run", n, err)
	}
	deadline := time.Now().Add(answerWait)
	for runStatus(t, restarted.svc, started.Run.ID) != agent.RunCompleted {
		if time.Now().After(deadline) {
			t.Fatalf("run %s: %s %v after RecoverRuns; want completed", started.Run.ID, runStatus(t, restarted.svc, started.Run.ID), answerWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Its end removed it from the index: nothing more to recover.
	if n, err := restarted.svc.RecoverRuns(ctx); err != nil || n != 0 {
		t.Errorf("RecoverRuns after the run ended = %d, %v; want 0", n, err)
	}
}

func TestDrainThenInterrupt(t *testing.T) {
	store := memory.New()
	model := newHeldModel()
	defer model.free()
	e := newEnv(t, store, model)
	a, b, c := e.create(t, "async"), e.create(t, "stream"), e.create(t, "late")
	started, err := e.svc.StartRun(ctx, a.ID, userSend("hi"))
	if err != nil {
		t.Fatal(err)
	}
	streamed := make(chan error, 1)
	var events []agent.RunEvent
	go func() {
		_, err := e.svc.Stream(ctx, b.ID, userSend("hi"), func(ev agent.RunEvent) error {
			events = append(events, ev)
			return nil
		})
		streamed <- err
	}()
	model.waitCalled(t, 2)

	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	left := e.svc.Drain(dctx)
	cancel()
	if left != 2 {
		t.Errorf("Drain left %d runs, want the 2 held in their model calls", left)
	}
	if _, err := e.svc.SendMessage(ctx, c.ID, userSend("hi")); !errors.Is(err, service.ErrShuttingDown) {
		t.Errorf("send while draining: %v, want ErrShuttingDown", err)
	}
	if n := e.svc.Interrupt(); n != 2 {
		t.Errorf("Interrupt stopped %d runs, want 2", n)
	}
	select {
	case err := <-streamed:
		if !errors.Is(err, service.ErrShuttingDown) {
			t.Errorf("stream of an interrupted run: %v, want ErrShuttingDown", err)
		}
		if len(events) == 0 {
			t.Errorf("stream of an interrupted run: no events before the end; want its input")
		}
	case <-time.After(answerWait):
		t.Fatalf("stream of an interrupted run: no answer within %v", answerWait)
	}
	if _, err := e.svc.FollowRun(ctx, a.ID, started.Run.ID, -1, nil); !errors.Is(err, service.ErrShuttingDown) {
		t.Errorf("follow after Interrupt: %v, want ErrShuttingDown", err)
	}
	// Interrupted, not ended: both runs are left for the next node.
	if st := runStatus(t, e.svc, started.Run.ID); st != agent.RunRunning {
		t.Errorf("interrupted run: %s, want running", st)
	}
	next := newEnv(t, store, llmtest.Echo())
	if n, err := next.svc.RecoverRuns(ctx); err != nil || n != 2 {
		t.Errorf("RecoverRuns after the interrupted shutdown = %d, %v; want 2", n, err)
	}
}
