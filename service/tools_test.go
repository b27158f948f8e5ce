package service_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/tools"
)

const lookupSrc = `def lookup(city: str) -> str:
    """Look up a city's population.

    Args:
        city: The city.
    """
    raise NotImplementedError
`

// recorder is a model that calls tool once per user message, answers a
// tool result with text, and records the tools it was offered.
type recorder struct {
	mu      sync.Mutex
	offered [][]llm.Tool
}

func (m *recorder) script(tool string, args map[string]any) *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		m.mu.Lock()
		m.offered = append(m.offered, req.Tools)
		m.mu.Unlock()
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("noted"), nil
		}
		return llmtest.Call(tool, args), nil
	}}
}

func (m *recorder) last(name string) *llm.Tool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.offered[len(m.offered)-1] {
		if t.Name == name {
			return &t
		}
	}
	return nil
}

func TestCustomToolLoop(t *testing.T) {
	var rec recorder
	e := newEnv(t, nil, rec.script("lookup", map[string]any{"city": "Oslo"}))
	limit := 5
	tool, err := e.svc.Tools().Create(ctx, tools.Spec{SourceCode: lookupSrc, ReturnCharLimit: &limit})
	if err != nil {
		t.Fatal(err)
	}
	ag := e.create(t, "custom")
	ag, err = e.svc.AttachTool(ctx, ag.ID, tool.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ag.CustomTools) != 1 || !strings.Contains(strings.Join(ag.Tools, ","), "lookup") {
		t.Fatalf("after attach: tools %v, custom %+v", ag.Tools, ag.CustomTools)
	}
	// The copy survives a reload from storage.
	e.reload(t, ag.ID)
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "how many live in Oslo?"}}})
	if err != nil {
		t.Fatal(err)
	}
	offered := rec.last("lookup")
	if offered == nil || offered.Description != "Look up a city's population." || !strings.Contains(string(offered.Parameters), `"city"`) {
		t.Fatalf("model was offered %+v", offered)
	}
	last := resp.Messages[len(resp.Messages)-1]
	if resp.StopReason != agent.StopApproval || len(last.ToolCalls) != 1 || !last.ToolCalls[0].Approval {
		t.Fatalf("turn: stop %s, last %+v", resp.StopReason, last)
	}
	callID := last.ToolCalls[0].ID
	// Approving without a result: the server cannot run the tool.
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{ToolCallID: callID, Approve: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if ret := resp.Messages[0]; ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, "the client must run it") {
		t.Fatalf("approved without result: %+v", ret)
	}
	// Again, now with the client's result, cut to return_char_limit.
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "and now?"}}})
	if err != nil || resp.StopReason != agent.StopApproval {
		t.Fatalf("second turn: %+v %v", resp, err)
	}
	callID = resp.Messages[len(resp.Messages)-1].ToolCalls[0].ID
	result := "709000 people"
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{ToolCallID: callID, Return: &result, Status: agent.ToolSuccess}}})
	if err != nil {
		t.Fatal(err)
	}
	if ret := resp.Messages[0]; ret.Role != llm.RoleTool || ret.Content != "70900" || ret.ToolName != "lookup" || resp.StopReason != agent.StopEndTurn {
		t.Fatalf("after the result: %+v (stop %s)", ret, resp.StopReason)
	}
}

func TestCustomToolCopies(t *testing.T) {
	e := newEnv(t, nil, nil)
	reg := e.svc.Tools()
	tool, err := reg.Create(ctx, tools.Spec{SourceCode: lookupSrc})
	if err != nil {
		t.Fatal(err)
	}
	ag := e.create(t, "copies")
	if _, err := e.svc.AttachTool(ctx, ag.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	// Edits do not reach the attached copy until the tool is attached again.
	if _, err := reg.Update(ctx, tool.ID, tools.Patch{Description: ptrTo("Population, newest census.")}); err != nil {
		t.Fatal(err)
	}
	got, _ := e.svc.GetAgent(ctx, ag.ID)
	if got.CustomTools[0].Description != "Look up a city's population." {
		t.Fatalf("copy changed without re-attaching: %+v", got.CustomTools[0])
	}
	got, err = e.svc.AttachTool(ctx, ag.ID, tool.ID)
	if err != nil || len(got.CustomTools) != 1 || got.CustomTools[0].Description != "Population, newest census." {
		t.Fatalf("re-attach: %+v %v", got, err)
	}
	// Deleting the tool leaves the copy; an update naming the agent's tool
	// IDs still resolves it, and detaching by ID removes it.
	if err := reg.Delete(ctx, tool.ID); err != nil {
		t.Fatal(err)
	}
	ids := []string{tools.BuiltinID(agent.ToolMemoryInsert), tool.ID}
	names, copies, err := e.svc.ResolveTools(ctx, ag.ID, nil, ids)
	if err != nil || strings.Join(names, ",") != "memory_insert,lookup" || len(copies) != 1 || copies[0].ID != tool.ID {
		t.Fatalf("resolve: %v %+v %v", names, copies, err)
	}
	if _, _, err := e.svc.ResolveTools(ctx, "", nil, ids); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("resolve a deleted tool for a new agent: %v", err)
	}
	got, err = e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Tools: &names, CustomTools: &copies})
	if err != nil || len(got.Tools) != 2 || len(got.CustomTools) != 1 {
		t.Fatalf("update with resolved tools: %+v %v", got, err)
	}
	got, err = e.svc.DetachTool(ctx, ag.ID, tool.ID)
	if err != nil || len(got.CustomTools) != 0 || strings.Join(got.Tools, ",") != "memory_insert" {
		t.Fatalf("detach: %+v %v", got, err)
	}
	// Detaching again, or a built-in, is idempotent.
	for _, id := range []string{tool.ID, tools.BuiltinID(agent.ToolMemoryInsert), tools.BuiltinID(agent.ToolMemoryInsert)} {
		if got, err = e.svc.DetachTool(ctx, ag.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if len(got.Tools) != 0 {
		t.Fatalf("tools after detaching all: %v", got.Tools)
	}
	if _, err := e.svc.AttachTool(ctx, ag.ID, tool.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("attach a deleted tool: %v", err)
	}
	// The agent rejects copies that break its invariants.
	bad := []agent.CustomTool{{ID: "tool-x", Name: agent.ToolSendMessage}}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{AttachCustomTools: bad}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a copy shadowing a built-in: %v", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
