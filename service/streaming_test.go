package service_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// streamCounter is Echo as a model that can stream; it counts the calls
// of each kind.
type streamCounter struct {
	*llmtest.Script
	streamed atomic.Int32
}

func (s *streamCounter) CompleteStream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	s.streamed.Add(1)
	resp, err := s.Complete(ctx, req)
	if err == nil && resp.Message.Content != "" {
		err = onDelta(llm.Delta{Content: resp.Message.Content})
	}
	return resp, err
}

// TestModelStreamsOnlyForWatchers: a send whose caller takes no progress
// (a JSON send) calls the model without streaming, which is cheaper; a
// stream's steps stream, and the caller gets the pieces.
func TestModelStreamsOnlyForWatchers(t *testing.T) {
	model := &streamCounter{Script: llmtest.Echo()}
	e := newEnv(t, nil, model)
	ag := e.create(t, "streamer")
	req := agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}}
	if _, err := e.svc.SendMessage(ctx, ag.ID, req); err != nil {
		t.Fatal(err)
	}
	if n := model.streamed.Load(); n != 0 || model.Calls() == 0 {
		t.Fatalf("a JSON send: %d streamed calls of %d, want none streamed", n, model.Calls())
	}
	deltas := 0
	_, err := e.svc.Stream(ctx, ag.ID, req, func(ev agent.RunEvent) error {
		if ev.Delta != nil {
			deltas++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if model.streamed.Load() == 0 || deltas == 0 {
		t.Fatalf("a stream: %d streamed calls, %d deltas relayed; want both > 0", model.streamed.Load(), deltas)
	}
}
