package service_test

import (
	"context"
	"fmt"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/web"
)

// newEnvWith is newEnv with service options.
func newEnvWith(t *testing.T, model llm.Client, opts ...service.Option) *env {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, model, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return &env{svc: svc, sys: sys, store: store}
}

// fetchPage sends one message whose model calls fetch_webpage on url and
// returns the tool's return message.
func fetchPage(t *testing.T, e *env, agentID, url string) agent.Message {
	t.Helper()
	resp, err := e.svc.SendMessage(ctx, agentID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "read " + url}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range resp.Messages {
		if m.Role == llm.RoleTool {
			return m
		}
	}
	t.Fatalf("no tool return in %+v", resp.Messages)
	return agent.Message{}
}

// fetch_webpage runs outside the actor through the service's executor (the
// real web package, allowed to reach the loopback test server), and its
// result is logged with the step.
func TestFetchWebpageRunsOutsideTheActor(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><title>T</title><script>evil()</script></head><body><h1>Kelpie facts</h1><p>Kelpies live in lochs.</p></body></html>"))
	}))
	defer page.Close()
	var model llm.Client = callOnce(agent.ToolFetchWebpage, map[string]any{"url": page.URL})

	e := newEnvWith(t, model, service.WithToolExecutor(web.New(web.Config{Fetch: web.FetchConfig{AllowPrivate: true}})))
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage, agent.ToolWebSearch}})
	if err != nil {
		t.Fatal(err)
	}
	ret := fetchPage(t, e, ag.ID, page.URL)
	if ret.ToolStatus != agent.ToolSuccess || !strings.Contains(ret.Content, "# Kelpie facts") || strings.Contains(ret.Content, "evil") {
		t.Fatalf("fetch_webpage returned %s: %q", ret.ToolStatus, ret.Content)
	}

	// By default loopback is refused, with a tool error; the run goes on.
	e = newEnvWith(t, model, service.WithToolExecutor(web.New(web.Config{})))
	ag, _ = e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage}})
	if ret := fetchPage(t, e, ag.ID, page.URL); ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, "loopback") {
		t.Fatalf("fetch of a loopback address: %s %q", ret.ToolStatus, ret.Content)
	}

	// Without an executor the call gets an error saying so.
	e = newEnvWith(t, model)
	ag, _ = e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage}})
	if ret := fetchPage(t, e, ag.ID, page.URL); ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, "no tool executor") {
		t.Fatalf("fetch without an executor: %s %q", ret.ToolStatus, ret.Content)
	}
}

// An external tool that needs approval is not executed until the client
// approves it; the service then executes it before the approving send,
// whose run logs the result.
func TestExternalToolRunsAfterApproval(t *testing.T) {
	var runs []string
	exec := toolexec.Func(func(_ context.Context, call toolexec.Call) (toolexec.Result, error) {
		runs = append(runs, call.ID)
		return toolexec.Result{Status: toolexec.StatusSuccess, Return: "page for " + string(call.Arguments)}, nil
	})
	e := newEnvWith(t, callOnce(agent.ToolFetchWebpage, map[string]any{"url": "https://example.com/"}), service.WithToolExecutor(exec))
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage}})
	if err != nil {
		t.Fatal(err)
	}
	set := []string{agent.ToolFetchWebpage}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{ApprovalRequired: &set}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "read it"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason != agent.StopApproval || len(runs) != 0 {
		t.Fatalf("stop %s, executed %v: want requires_approval and nothing executed", resp.StopReason, runs)
	}
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{Approve: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || resp.Messages[0].Role != llm.RoleTool || !strings.Contains(resp.Messages[0].Content, "example.com") {
		t.Fatalf("after approval: executed %v, messages %+v", runs, resp.Messages)
	}
}

// Cancelling a run stops the tool it is running: the executor's context
// ends, and the run ends cancelled without waiting for the tool.
func TestCancelStopsRunningTool(t *testing.T) {
	entered, stopped := make(chan struct{}), make(chan error, 1)
	exec := toolexec.Func(func(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
		close(entered)
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
			return toolexec.Result{}, ctx.Err()
		case <-time.After(30 * time.Second):
			stopped <- nil
			return toolexec.Result{Status: toolexec.StatusSuccess, Return: "finished"}, nil
		}
	})
	e := newEnvWith(t, callOnce(agent.ToolFetchWebpage, map[string]any{"url": "https://example.com/"}), service.WithToolExecutor(exec))
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage}})
	if err != nil {
		t.Fatal(err)
	}
	started, err := e.svc.StartRun(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "slow"}}})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	run, err := e.svc.CancelRun(ctx, ag.ID, started.Run.ID)
	if err != nil || run == nil || run.Status != agent.RunCancelled {
		t.Fatalf("cancel: %+v %v", run, err)
	}
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("the tool ran to the end after its run was cancelled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tool was still running 10 s after its run was cancelled")
	}
}

// The external calls of one model answer run at the same time: three
// calls that each wait for the others to start all finish.
func TestExternalCallsRunConcurrently(t *testing.T) {
	const calls = 3
	var started sync.WaitGroup
	started.Add(calls)
	exec := toolexec.Func(func(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
		started.Done()
		done := make(chan struct{})
		go func() { started.Wait(); close(done) }()
		select {
		case <-done:
			return toolexec.Result{Status: toolexec.StatusSuccess, Return: "together " + call.ID}, nil
		case <-time.After(10 * time.Second):
			return toolexec.Result{Status: toolexec.StatusError, Return: "ran alone"}, nil
		}
	})
	model := &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("ok"), nil
		}
		resp := llmtest.Call(agent.ToolFetchWebpage, map[string]any{"url": "https://example.com/"})
		resp.Message.ToolCalls = nil
		for i := range calls {
			resp.Message.ToolCalls = append(resp.Message.ToolCalls, llm.ToolCall{ID: fmt.Sprintf("call-%d", i), Name: agent.ToolFetchWebpage, Arguments: `{"url":"https://example.com/"}`})
		}
		return resp, nil
	}}
	e := newEnvWith(t, model, service.WithToolExecutor(exec))
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolFetchWebpage}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "three at once"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range resp.Messages {
		if m.Role == llm.RoleTool {
			n++
			if m.ToolStatus != agent.ToolSuccess || !strings.HasPrefix(m.Content, "together") {
				t.Fatalf("call %s: %s %q", m.ToolCallID, m.ToolStatus, m.Content)
			}
		}
	}
	if n != calls {
		t.Fatalf("%d tool returns, want %d", n, calls)
	}
}
