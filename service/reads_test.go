package service_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// stalled is the agent actor with its updates held until release closes,
// so that the actor's mailbox stays busy.
type stalled struct {
	*agent.Actor
	entered chan struct{}
	release chan struct{}
}

func (s *stalled) Invoke(ctx context.Context, c *actor.Context[agent.State], op string, payload []byte) ([]byte, error) {
	if op == agent.OpUpdate.Name {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Actor.Invoke(ctx, c, op, payload)
}

// TestReadsDoNotQueueBehindTheMailbox: while the agent's actor is stuck in
// an invocation and its mailbox is full (further invocations fail with
// actor.ErrBusy), reads of its committed state — the agent, its messages,
// its context window, a run, its messages and steps — are answered from
// storage at once, and show the last commit.
func TestReadsDoNotQueueBehindTheMailbox(t *testing.T) {
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler), MailboxDepthMax: 1})
	st := &stalled{entered: make(chan struct{}, 1), release: make(chan struct{})}
	svc, err := service.NewWithActor(r, store, sys, llmtest.Echo(), func(a *agent.Actor) actor.Actor[agent.State] { st.Actor = a; return st })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	e := &env{svc: svc, sys: sys, store: store}
	a := e.create(t, "reader")
	sent := e.send(t, a.ID, "hello")
	name := "renamed"
	done := make(chan error, 1)
	go func() { // held in the actor
		_, err := svc.UpdateAgent(ctx, a.ID, agent.UpdateRequest{Name: &name})
		done <- err
	}()
	<-st.entered
	// Fill the mailbox: queued cancels wait behind the update.
	fillCtx, stopFill := context.WithTimeout(ctx, 5*time.Second)
	defer stopFill()
	for filled := false; !filled; {
		if fillCtx.Err() != nil {
			t.Fatal("the mailbox never filled")
		}
		errs := make(chan error, 1)
		go func() {
			_, err := svc.CancelRun(fillCtx, a.ID, "")
			errs <- err
		}()
		select {
		case err := <-errs:
			filled = errors.Is(err, actor.ErrBusy)
		case <-time.After(20 * time.Millisecond): // queued
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ag, err := svc.GetAgent(rctx, a.ID)
	if err != nil || ag.Name != "reader" {
		t.Fatalf("GetAgent while busy: %v", err)
	}
	msgs, err := svc.ListMessages(rctx, a.ID, agent.ListMessagesRequest{Limit: 10})
	if err != nil || len(msgs) < 2 {
		t.Fatalf("ListMessages while busy: %d, %v", len(msgs), err)
	}
	if _, err := svc.ContextWindow(rctx, a.ID); err != nil {
		t.Fatalf("ContextWindow while busy: %v", err)
	}
	run, err := svc.GetRun(rctx, sent.RunID)
	if err != nil || run.Status != agent.RunCompleted {
		t.Fatalf("GetRun while busy: %v", err)
	}
	if _, err := svc.RunMessages(rctx, a.ID, sent.RunID); err != nil {
		t.Fatalf("RunMessages while busy: %v", err)
	}
	if _, err := svc.RunSteps(rctx, a.ID, sent.RunID); err != nil {
		t.Fatalf("RunSteps while busy: %v", err)
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ag, err := svc.GetAgent(ctx, a.ID); err != nil || ag.Name != name {
		t.Fatalf("after the update committed: %+v, %v", ag, err)
	}
	if _, err := svc.GetAgent(ctx, "agent-00000000-0000-4000-8000-000000000000"); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
}
