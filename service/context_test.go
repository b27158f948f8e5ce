package service_test

import (
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
)

func TestContextWindow(t *testing.T) {
	e := newEnv(t, nil, replyText(0))
	a := e.create(t, "ctx")
	e.send(t, a.ID, "first")
	e.send(t, a.ID, "second")
	cw, err := e.svc.ContextWindow(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cw.System != a.System || cw.System+cw.CoreMemory != agent.CompileSystemPrompt(a) {
		t.Fatalf("system %q + core memory %q", cw.System, cw.CoreMemory)
	}
	if len(cw.Messages) != 4 || cw.RecallCount != 4 || cw.Messages[0].Content != "first" || len(cw.Tools) == 0 {
		t.Fatalf("context = %+v", cw)
	}
	if _, err := e.svc.ResetMessages(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	e.send(t, a.ID, "third")
	if cw, err = e.svc.ContextWindow(ctx, a.ID); err != nil || cw.RecallCount != 2 || len(cw.Messages) != 2 {
		t.Fatalf("after reset: %+v, %v", cw, err)
	}
}
