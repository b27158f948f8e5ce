package service_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/kelpie-ai/kelpie/toolexec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
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
	var calls []toolexec.Call
	exec := toolexec.Func(func(_ context.Context, call toolexec.Call) (toolexec.Result, error) {
		calls = append(calls, call)
		return toolexec.Result{Status: toolexec.StatusSuccess, Return: "709000 people", Stdout: "looking up\n"}, nil
	})
	e := newEnvWith(t, rec.script("lookup", map[string]any{"city": "Oslo"}), service.WithToolExecutor(exec))
	limit := 5
	tool, err := e.svc.Tools().Create(ctx, tools.Spec{SourceCode: lookupSrc, ReturnCharLimit: &limit, PipRequirements: []string{"requests==2.32.3"}})
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
	// The reference survives a reload from storage.
	e.reload(t, ag.ID)
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "how many live in Oslo?"}}})
	if err != nil {
		t.Fatal(err)
	}
	offered := rec.last("lookup")
	if offered == nil || offered.Description != "Look up a city's population." || !strings.Contains(string(offered.Parameters), `"city"`) {
		t.Fatalf("model was offered %+v", offered)
	}
	// The server ran it (outside the actor) with its source and the
	// model's arguments, and cut the return to return_char_limit.
	if len(calls) != 1 || calls[0].Source == nil || calls[0].Source.Code != lookupSrc || calls[0].Source.Language != "python" ||
		string(calls[0].Arguments) != `{"city":"Oslo"}` || calls[0].AgentID != ag.ID || calls[0].ToolID != tool.ID ||
		!slices.Equal(calls[0].Source.Requirements, []string{"requests==2.32.3"}) {
		t.Fatalf("executed %+v", calls)
	}
	ret := resp.Messages[2]
	if ret.Role != llm.RoleTool || !strings.HasPrefix(ret.Content, "70900\n[cut to the tool's return_char_limit of 5") || ret.ToolStatus != agent.ToolSuccess || resp.StopReason != agent.StopEndTurn {
		t.Fatalf("turn: stop %s, return %+v", resp.StopReason, ret)
	}

	// A tool that requires approval pauses first, and runs once approved.
	yes := true
	if _, err := e.svc.Tools().Update(ctx, tool.ID, tools.Patch{DefaultRequiresApproval: &yes}); err != nil {
		t.Fatal(err)
	}
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "and now?"}}})
	if err != nil || resp.StopReason != agent.StopApproval || len(calls) != 1 {
		t.Fatalf("second turn: %+v %v (executed %d)", resp, err, len(calls))
	}
	callID := resp.Messages[len(resp.Messages)-1].ToolCalls[0].ID
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{ToolCallID: callID, Approve: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if ret := resp.Messages[0]; len(calls) != 2 || calls[1].ID != callID || ret.ToolStatus != agent.ToolSuccess || !strings.HasPrefix(ret.Content, "70900") {
		t.Fatalf("approved: executed %d, return %+v", len(calls), ret)
	}
	// Or the client gives the result itself, cut to return_char_limit.
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "once more"}}})
	if err != nil || resp.StopReason != agent.StopApproval {
		t.Fatalf("third turn: %+v %v", resp, err)
	}
	callID = resp.Messages[len(resp.Messages)-1].ToolCalls[0].ID
	result := "709000 people"
	resp, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Approvals: []agent.Approval{{ToolCallID: callID, Return: &result, Status: agent.ToolSuccess}}})
	if err != nil {
		t.Fatal(err)
	}
	if ret := resp.Messages[0]; ret.Role != llm.RoleTool || ret.Content != "70900" || ret.ToolName != "lookup" || resp.StopReason != agent.StopEndTurn || len(calls) != 2 {
		t.Fatalf("after the result: %+v (stop %s)", ret, resp.StopReason)
	}
}

func TestCustomToolReferences(t *testing.T) {
	e := newEnv(t, nil, nil)
	reg := e.svc.Tools()
	tool, err := reg.Create(ctx, tools.Spec{SourceCode: lookupSrc})
	if err != nil {
		t.Fatal(err)
	}
	ag := e.create(t, "refs")
	if _, err := e.svc.AttachTool(ctx, ag.ID, tool.ID); err != nil {
		t.Fatal(err)
	}
	// The agent reads the tool's record: an edit shows at once, also after
	// a reload from storage.
	if _, err := reg.Update(ctx, tool.ID, tools.Patch{Description: ptrTo("Population, newest census.")}); err != nil {
		t.Fatal(err)
	}
	e.reload(t, ag.ID)
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil || len(got.CustomTools) != 1 || got.CustomTools[0].Description != "Population, newest census." ||
		strings.Join(got.CustomToolIDs, ",") != tool.ID || !slices.Contains(got.Tools, "lookup") {
		t.Fatalf("after the edit: %+v %v", got, err)
	}
	// Names and IDs resolve to built-in names and custom IDs.
	ids := []string{tools.BuiltinID(agent.ToolMemoryInsert), tool.ID}
	names, customIDs, err := e.svc.ResolveTools(ctx, []string{"lookup", agent.ToolSendMessage}, ids)
	if err != nil || strings.Join(names, ",") != "send_message,memory_insert" || strings.Join(customIDs, ",") != tool.ID {
		t.Fatalf("resolve: %v %v %v", names, customIDs, err)
	}
	names = names[1:]
	got, err = e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Tools: &names, CustomToolIDs: &customIDs})
	if err != nil || strings.Join(got.Tools, ",") != "memory_insert,lookup" || len(got.CustomTools) != 1 {
		t.Fatalf("update with resolved tools: %+v %v", got, err)
	}
	// Deleting the tool detaches it: reads skip it, and the next change
	// of tools drops the reference (an update naming it, from a stale
	// view, too); a new agent cannot have it.
	if err := reg.Delete(ctx, tool.ID); err != nil {
		t.Fatal(err)
	}
	got, err = e.svc.GetAgent(ctx, ag.ID)
	if err != nil || len(got.CustomTools) != 0 || strings.Join(got.Tools, ",") != "memory_insert" {
		t.Fatalf("after delete: %+v %v", got, err)
	}
	got, err = e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Tools: &names, CustomToolIDs: &customIDs})
	if err != nil || strings.Join(got.Tools, ",") != "memory_insert" || len(got.CustomToolIDs) != 0 {
		t.Fatalf("update naming the deleted tool: %+v %v", got, err)
	}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{CustomToolIDs: &customIDs}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("update naming a deleted tool the agent no longer has: %v", err)
	}
	if _, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "late", CustomToolIDs: customIDs}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("create with a deleted tool: %v", err)
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
	// Custom tools are attached by ID only.
	bad := []string{agent.ToolSendMessage, "lookup"}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Tools: &bad}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("a custom tool by name among the built-ins: %v", err)
	}
}

// toolModel is a model that calls tool (when set) once per user message
// and answers a tool result with text; it records every request, and
// runs during, if set, inside each call that calls the tool.
type toolModel struct {
	mu     sync.Mutex
	tool   string
	reqs   []llm.Request
	during func()
}

func (m *toolModel) script() *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		m.mu.Lock()
		m.reqs = append(m.reqs, req)
		tool, during := m.tool, m.during
		m.mu.Unlock()
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool || tool == "" {
			return llmtest.Text("noted"), nil
		}
		if during != nil {
			during()
		}
		return llmtest.Call(tool, map[string]any{"city": "Oslo"}), nil
	}}
}

// offered returns the custom tools (those not built in) of the last
// request whose system prompt starts with system.
func (m *toolModel) offered(t *testing.T, system string) []llm.Tool {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.reqs) - 1; i >= 0; i-- {
		if !strings.HasPrefix(m.reqs[i].Messages[0].Content, system) {
			continue
		}
		var out []llm.Tool
		for _, tl := range m.reqs[i].Tools {
			if !slices.Contains(agent.BuiltinTools(), tl.Name) {
				out = append(out, tl)
			}
		}
		return out
	}
	t.Fatalf("no request from %q", system)
	return nil
}

// toolAgents creates the tool "lookup" and two agents ("A", "B": their
// system prompts) that attach it.
func toolAgents(t *testing.T, model llm.Client) (*env, *tools.Tool, []*agent.Agent) {
	t.Helper()
	e := newEnv(t, nil, model)
	tool, err := e.svc.Tools().Create(ctx, tools.Spec{SourceCode: lookupSrc})
	if err != nil {
		t.Fatal(err)
	}
	var ags []*agent.Agent
	for _, name := range []string{"A", "B"} {
		ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: name, System: "I am " + name, Tools: []string{agent.ToolSendMessage}})
		if err != nil {
			t.Fatal(err)
		}
		if ag, err = e.svc.AttachTool(ctx, ag.ID, tool.ID); err != nil {
			t.Fatal(err)
		}
		ags = append(ags, ag)
	}
	return e, tool, ags
}

func say(t *testing.T, e *env, agentID, text string) *agent.SendResponse {
	t.Helper()
	resp, err := e.svc.SendMessage(ctx, agentID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: text}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// An edit of a custom tool (description, schema, name) reaches every agent
// that has it at its next step; deleting it takes it from all of them.
func TestCustomToolEditsReachEveryAgent(t *testing.T) {
	var m toolModel
	e, tool, ags := toolAgents(t, m.script())
	reg := e.svc.Tools()
	check := func(when, name, description, param string) {
		t.Helper()
		for _, ag := range ags {
			say(t, e, ag.ID, "hello")
			got := m.offered(t, "I am "+ag.Name)
			if len(got) != 1 || got[0].Name != name || got[0].Description != description || !strings.Contains(string(got[0].Parameters), param) {
				t.Fatalf("%s: agent %s offered %+v", when, ag.Name, got)
			}
			cw, err := e.svc.ContextWindow(ctx, ag.ID)
			if err != nil || !slices.ContainsFunc(cw.Tools, func(tl llm.Tool) bool { return tl.Name == name && tl.Description == description }) {
				t.Fatalf("%s: agent %s context window %+v %v", when, ag.Name, cw, err)
			}
		}
	}
	check("attached", "lookup", "Look up a city's population.", `"city"`)
	if _, err := reg.Update(ctx, tool.ID, tools.Patch{Description: ptrTo("Population, newest census.")}); err != nil {
		t.Fatal(err)
	}
	check("after a new description", "lookup", "Population, newest census.", `"city"`)
	// Upsert by name replaces the definition the agents read.
	v2 := strings.Replace(lookupSrc, "city: str", "city: str, year: int", 1)
	if _, created, err := reg.Upsert(ctx, tools.Spec{SourceCode: v2}); err != nil || created {
		t.Fatalf("upsert: created %v, %v", created, err)
	}
	check("after an upsert", "lookup", "Look up a city's population.", `"year"`)
	schema := map[string]any{"name": "census", "description": "Census figures.",
		"parameters": map[string]any{"type": "object", "properties": map[string]any{"region": map[string]any{"type": "string"}}}}
	if _, err := reg.Update(ctx, tool.ID, tools.Patch{JSONSchema: schema}); err != nil {
		t.Fatal(err)
	}
	check("after a new schema", "census", "Census figures.", `"region"`)
	if err := reg.Delete(ctx, tool.ID); err != nil {
		t.Fatal(err)
	}
	for _, ag := range ags {
		say(t, e, ag.ID, "hello")
		if got := m.offered(t, "I am "+ag.Name); len(got) != 0 {
			t.Fatalf("after delete, agent %s offered %+v", ag.Name, got)
		}
		got, err := e.svc.GetAgent(ctx, ag.ID)
		if err != nil || len(got.CustomTools) != 0 || slices.Contains(got.Tools, "census") {
			t.Fatalf("after delete, agent %s: %+v %v", ag.Name, got, err)
		}
		list, err := e.svc.ListAgents(ctx, service.ListOptions{})
		if err != nil || len(list) != 2 || len(list[0].CustomTools)+len(list[1].CustomTools) != 0 {
			t.Fatalf("after delete, listed %+v %v", list, err)
		}
	}
}

// A call to a custom tool deleted (or renamed) between the step's prepare
// and its apply gets a tool error, and the run goes on.
func TestCustomToolGoneBeforeApply(t *testing.T) {
	m := toolModel{tool: "lookup"}
	e, tool, ags := toolAgents(t, m.script())
	reg := e.svc.Tools()
	// The first agent's call names the tool renamed meanwhile, the
	// second's the tool deleted meanwhile.
	for _, tc := range []struct {
		ag     *agent.Agent
		during func()
	}{
		{ags[0], func() {
			schema := map[string]any{"name": "census", "parameters": map[string]any{"type": "object", "properties": map[string]any{}}}
			if _, err := reg.Update(ctx, tool.ID, tools.Patch{JSONSchema: schema}); err != nil {
				t.Error(err)
			}
		}},
		{ags[1], func() {
			if err := reg.Delete(ctx, tool.ID); err != nil {
				t.Error(err)
			}
		}},
	} {
		m.mu.Lock()
		m.during = tc.during
		m.mu.Unlock()
		resp := say(t, e, tc.ag.ID, "how many live in Oslo?")
		m.mu.Lock()
		m.during = nil
		m.mu.Unlock()
		var ret *agent.Message
		for i := range resp.Messages {
			if resp.Messages[i].Role == llm.RoleTool {
				ret = &resp.Messages[i]
			}
		}
		if ret == nil || ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, `tool "lookup" is not available`) {
			t.Fatalf("agent %s: tool return %+v", tc.ag.Name, ret)
		}
		last := resp.Messages[len(resp.Messages)-1]
		if resp.StopReason != agent.StopEndTurn || last.Role != llm.RoleAssistant || last.Content != "noted" {
			t.Fatalf("agent %s: the run did not go on: stop %s, last %+v", tc.ag.Name, resp.StopReason, last)
		}
	}
}

// The custom tools' definitions are bounded when attached and, as tools
// may grow after, again at each step: a step over the bound fails the
// run with the reason instead of sending them.
func TestCustomToolsSizeBound(t *testing.T) {
	var m toolModel
	e := newEnv(t, nil, m.script())
	reg := e.svc.Tools()
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "big", Tools: []string{agent.ToolSendMessage}})
	if err != nil {
		t.Fatal(err)
	}
	// Each tool grows to a schema of about 60 KiB (under SchemaBytesMax).
	const grown = 60 << 10
	var ids []string
	n := agent.CustomToolsBytesMax/grown + 1
	for i := range n {
		tl, err := reg.Create(ctx, tools.Spec{SourceCode: "", JSONSchema: map[string]any{"name": fmt.Sprintf("t%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tl.ID)
	}
	if n > agent.CustomToolsMax {
		t.Fatalf("test needs %d tools, over CustomToolsMax", n)
	}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{CustomToolIDs: &ids}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		schema := map[string]any{"name": fmt.Sprintf("t%d", i), "parameters": map[string]any{"type": "object", "properties": map[string]any{
			"q": map[string]any{"type": "string", "description": strings.Repeat("x", grown)}}}}
		if _, err := reg.Update(ctx, id, tools.Patch{JSONSchema: schema}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}})
	if !errors.As(err, new(*service.RunError)) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("a step with oversized tools: %v", err)
	}
	if len(m.reqs) != 0 {
		t.Fatalf("the model was called %d times", len(m.reqs))
	}
	// Attaching is refused likewise, and the run's failure left the agent
	// usable once the tools are smaller.
	extra, err := reg.Create(ctx, tools.Spec{SourceCode: lookupSrc})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AttachTool(ctx, ag.ID, extra.ID); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("attach over the bound: %v", err)
	}
	// Changes that do not add to the tools still go through, detaching a
	// built-in one as well as a custom one.
	for _, id := range []string{tools.BuiltinID(agent.ToolSendMessage), ids[0]} {
		if _, err := e.svc.DetachTool(ctx, ag.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	// The tools left are within the bound but fill about 260k tokens:
	// over the default window, so the run would stop for that.
	window := agent.ContextWindowTokensMax
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{ContextWindowLimit: &window}); err != nil {
		t.Fatal(err)
	}
	if resp := say(t, e, ag.ID, "hi again"); resp.StopReason != agent.StopEndTurn {
		t.Fatalf("after detaching one: %s", resp.StopReason)
	}
}

func ptrTo[T any](v T) *T { return &v }
