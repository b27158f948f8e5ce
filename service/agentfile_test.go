package service_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/agentfile"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/tools"
)

// The published agent files (agentfile/testdata/README.md).
var publishedFiles = []string{
	"../agentfile/testdata/memgpt_agent_with_convo.af",
	"../agentfile/testdata/outreach_workflow_agent.af",
}

func parseFile(t *testing.T, name string) *agentfile.File {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := agentfile.Parse(b)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

// keepNames imports with the file's names and replaces tools of the same
// name, which the tests below mostly want.
var keepNames = service.ImportOptions{OverrideExistingTools: true}

func (e *env) importFile(t *testing.T, f *agentfile.File, opts service.ImportOptions) (*service.ImportResult, []*agent.Agent) {
	t.Helper()
	res, err := e.svc.ImportAgentFile(ctx, f, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(res.AgentIDs) != len(f.Agents) {
		t.Fatalf("imported %d agents of %d", len(res.AgentIDs), len(f.Agents))
	}
	var out []*agent.Agent
	for _, id := range res.AgentIDs {
		e.reload(t, id) // what was committed, not what is in memory
		ag, err := e.svc.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ag)
	}
	return res, out
}

func (e *env) log(t *testing.T, id string) []agent.Message {
	t.Helper()
	msgs, err := e.svc.ListMessages(ctx, id, agent.ListMessagesRequest{Limit: agent.MessagesPageMax})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func hasNote(notes []string, part string) bool {
	return slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, part) })
}

// checkImported compares an imported agent with the file it came from.
func checkImported(t *testing.T, f *agentfile.File, fa *agentfile.Agent, ag *agent.Agent) {
	t.Helper()
	if ag.Name != fa.Name || ag.AgentType != fa.AgentType || ag.System != *fa.System || ag.Model != fa.ModelHandle() {
		t.Fatalf("agent %q %s model %q, system %.60q; file: %q %s %q %.60q", ag.Name, ag.AgentType, ag.Model, ag.System, fa.Name, fa.AgentType, fa.ModelHandle(), *fa.System)
	}
	if fa.Description != nil && ag.Description != *fa.Description {
		t.Fatalf("description %q", ag.Description)
	}
	if len(ag.Blocks) != len(fa.BlockIDs) {
		t.Fatalf("%d blocks, the file has %d", len(ag.Blocks), len(fa.BlockIDs))
	}
	for i, id := range fa.BlockIDs {
		fb := f.Blocks[slices.IndexFunc(f.Blocks, func(b agentfile.Block) bool { return b.ID == id })]
		b := ag.Blocks[i]
		if b.Label != fb.Label || b.Value != fb.Value || b.Limit != fb.CharLimit() || b.Description != *fb.Description || b.ReadOnly != fb.ReadOnly {
			t.Fatalf("block %d = %+v, file's %+v", i, b, fb)
		}
	}
	var want []string
	for _, id := range fa.ToolIDs {
		want = append(want, f.Tools[slices.IndexFunc(f.Tools, func(t agentfile.Tool) bool { return t.ID == id })].FunctionName())
	}
	if got := slices.Sorted(slices.Values(ag.Tools)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("tools %v, the file's %v", got, want)
	}
	for _, ct := range ag.CustomTools {
		ft := f.Tools[slices.IndexFunc(f.Tools, func(t agentfile.Tool) bool { return t.FunctionName() == ct.Name })]
		if ct.SourceCode != *ft.SourceCode || ct.SourceType != *ft.SourceType || ct.Description != *ft.Description {
			t.Fatalf("custom tool %s = %+v, file's %+v", ct.Name, ct, ft)
		}
	}
}

func TestImportPublishedMemGPT(t *testing.T) {
	e := newEnv(t, nil, nil)
	f := parseFile(t, publishedFiles[0])
	res, ags := e.importFile(t, f, keepNames)
	ag, fa := ags[0], &f.Agents[0]
	checkImported(t, f, fa, ag)
	if ag.Name != "memgpt_agent" || len(ag.CustomTools) != 0 || !strings.HasPrefix(ag.Blocks[1].Value, "\nThe following is a starter persona") {
		t.Fatalf("agent %q, custom tools %v, persona %.40q", ag.Name, ag.CustomTools, ag.Blocks[1].Value)
	}
	// Its one message is Letta's compiled system prompt, which Kelpie
	// compiles itself.
	if msgs := e.log(t, ag.ID); len(msgs) != 0 {
		t.Fatalf("log %+v", msgs)
	}
	for _, n := range []string{"compiled system prompt", "max_files_open, per_file_view_window_char_limit, timezone", "llm_config"} {
		if !hasNote(res.Notes, n) {
			t.Errorf("no note on %q in %q", n, res.Notes)
		}
	}
	// The imported agent runs: its compiled prompt has the file's blocks.
	cw, err := e.svc.ContextWindow(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cw.CoreMemory, "First name: Chad") {
		t.Fatalf("core memory %.200q", cw.CoreMemory)
	}
}

func TestImportPublishedDoubleEncoded(t *testing.T) {
	e := newEnv(t, nil, nil)
	f := parseFile(t, publishedFiles[1])
	res, ags := e.importFile(t, f, service.ImportOptions{AppendCopySuffix: true})
	ag := ags[0]
	if ag.Name != "outreach_workflow_agent_copy" || ag.System != "" || len(ag.Blocks) != 0 {
		t.Fatalf("agent %q system %q blocks %v", ag.Name, ag.System, ag.Blocks)
	}
	ag.Name = f.Agents[0].Name
	checkImported(t, f, &f.Agents[0], ag)
	if len(ag.CustomTools) != 4 {
		t.Fatalf("custom tools %v", ag.CustomTools)
	}
	// The tools are in the registry, by name.
	for _, n := range []string{"reject", "send_email", "evaluate_candidate", "retrieve_candidate"} {
		if _, err := e.svc.Tools().GetByName(ctx, n); err != nil {
			t.Fatalf("tool %s: %v", n, err)
		}
	}
	for _, n := range []string{"5 tool rules (run_first, constrain_child_tools, conditional, exit_loop)", "message_buffer_autoclear", "compiled system prompt"} {
		if !hasNote(res.Notes, n) {
			t.Errorf("no note on %q in %q", n, res.Notes)
		}
	}
}

// chatty is a model that, for each user message, makes a memory edit
// that fails, then says sorry with send_message, then ends its turn with
// text beside nothing: a history with every kind of message.
func chatty() *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		switch last := req.Messages[len(req.Messages)-1]; {
		case last.Role == llm.RoleUser:
			return llmtest.Call(agent.ToolCoreMemoryReplace, map[string]any{"label": "human", "old_content": "not there", "new_content": "x"}), nil
		case last.Role == llm.RoleTool && last.Name == agent.ToolCoreMemoryReplace:
			return llmtest.Call(agent.ToolSendMessage, map[string]any{"message": "sorry"}), nil
		}
		return llmtest.Text("done"), nil
	}}
}

// conversed creates an agent with a custom tool, a shared block, a tool
// needing approval and a conversation.
func conversed(t *testing.T, e *env) *agent.Agent {
	t.Helper()
	tool, err := e.svc.Tools().Create(ctx, tools.Spec{SourceCode: "def shout(text: str) -> str:\n    \"\"\"Shout.\n\n    Args:\n        text (str): what to shout.\n    \"\"\"\n    return text.upper()\n"})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "talker", AgentType: agent.TypeMemGPT, Description: "talks",
		Model: "openai/gpt-4o-mini", Tags: []string{"a", "b"}, Metadata: map[string]any{"k": "v"},
		Tools: []string{agent.ToolSendMessage, agent.ToolCoreMemoryReplace}, CustomToolIDs: []string{tool.ID},
		Blocks: []agent.BlockCreate{{Label: "human", Value: "likes tea", Limit: 500, Description: "who"}, {Label: "rules", Value: "be kind", ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := e.svc.CreateBlock(ctx, agent.Block{Label: "team", Value: "we ship", Limit: 300})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AttachBlock(ctx, ag.ID, shared.ID); err != nil {
		t.Fatal(err)
	}
	approval := []string{tool.Name}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{ApprovalRequired: &approval}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"hello", "how are you?"} {
		if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: llm.RoleUser, Content: text, OTID: "otid-" + text}}}); err != nil {
			t.Fatal(err)
		}
	}
	if ag, err = e.svc.GetAgent(ctx, ag.ID); err != nil {
		t.Fatal(err)
	}
	return ag
}

func TestExportAgent(t *testing.T) {
	e := newEnv(t, nil, chatty())
	ag := conversed(t, e)
	log := e.log(t, ag.ID)
	f, err := e.svc.ExportAgentFile(ctx, ag.ID, service.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := agentfile.Validate(f); err != nil {
		t.Fatal(err)
	}
	fa := f.Agents[0]
	if fa.Name != "talker" || *fa.System != ag.System || fa.AgentType != agent.TypeMemGPT || *fa.Description != "talks" || fa.ModelHandle() != ag.Model || !slices.Equal(fa.Tags, ag.Tags) {
		t.Fatalf("agent %+v", fa)
	}
	// Blocks: its own and the shared one, current.
	var labels []string
	for _, b := range f.Blocks {
		labels = append(labels, b.Label+"="+b.Value)
	}
	if !slices.Equal(labels, []string{"human=likes tea", "rules=be kind", "team=we ship"}) || !f.Blocks[1].ReadOnly || *f.Blocks[0].Limit != 500 {
		t.Fatalf("blocks %v", labels)
	}
	// Tools: built-in by name, custom with source; the approval as a rule.
	var names []string
	for _, tl := range f.Tools {
		names = append(names, tl.Type()+":"+tl.Name)
	}
	if !slices.Equal(names, []string{"letta_core:send_message", "letta_memory_core:core_memory_replace", "custom:shout"}) || !strings.Contains(*f.Tools[2].SourceCode, "text.upper()") {
		t.Fatalf("tools %v", names)
	}
	if len(fa.ToolRules) != 1 || string(fa.ToolRules[0]) != `{"tool_name":"shout","type":"requires_approval"}` {
		t.Fatalf("tool rules %s", fa.ToolRules)
	}
	// Messages: the compiled prompt, then the log in order.
	if len(fa.Messages) != len(log)+1 || fa.Messages[0].Role != agentfile.RoleSystem || !strings.Contains(fa.Messages[0].Content.Text(), "<memory_blocks>") {
		t.Fatalf("%d messages for a log of %d: %+v", len(fa.Messages), len(log), fa.Messages[0])
	}
	for i, m := range log {
		fm := fa.Messages[i+1]
		if fm.Role != m.Role || fm.Content.Text() != m.Content || len(fm.ToolCalls) != len(m.ToolCalls) || fm.CreatedAt != agentfile.FormatTime(m.CreatedAt) {
			t.Fatalf("message %d = %+v; logged %+v", i, fm, m)
		}
		if m.Role == llm.RoleTool && (*fm.ToolCallID != m.ToolCallID || fm.ToolReturns[0].Status != m.ToolStatus || *fm.Name != m.ToolName) {
			t.Fatalf("tool message %d = %+v; logged %+v", i, fm, m)
		}
		if m.OTID != "" && *fm.OTID != m.OTID {
			t.Fatalf("otid of %d", i)
		}
	}
	statuses := map[string]bool{}
	for _, m := range log {
		statuses[m.ToolStatus] = true
	}
	if !statuses[agent.ToolError] || !statuses[agent.ToolSuccess] {
		t.Fatalf("the conversation lacks a failed or a successful tool call: %+v", log)
	}
	if len(fa.InContextMessageIDs) != len(fa.Messages) || fa.InContextMessageIDs[0] != "message-0" {
		t.Fatalf("in context %v of %d", fa.InContextMessageIDs, len(fa.Messages))
	}

	scrubbed, err := e.svc.ExportAgentFile(ctx, ag.ID, service.ExportOptions{ScrubMessages: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(scrubbed.Agents[0].Messages) != 0 || len(scrubbed.Agents[0].InContextMessageIDs) != 0 {
		t.Fatalf("scrubbed export has messages")
	}
	if _, err := e.svc.ExportAgentFile(ctx, "agent-00000000-0000-4000-8000-000000000000", service.ExportOptions{}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("export of no agent: %v", err)
	}
}

// TestAgentFileRoundTrip: import a file, export the agent, import the
// export: the second agent is the first, and the second export the first.
func TestAgentFileRoundTrip(t *testing.T) {
	e := newEnv(t, nil, chatty())
	files := map[string]*agentfile.File{}
	for _, name := range publishedFiles {
		files[name] = parseFile(t, name)
	}
	orig := conversed(t, e)
	f0, err := e.svc.ExportAgentFile(ctx, orig.ID, service.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files["conversation"] = f0

	for _, name := range append(slices.Clone(publishedFiles), "conversation") {
		_, first := e.importFile(t, files[name], keepNames)
		exp1, err := e.svc.ExportAgentFile(ctx, first[0].ID, service.ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		written, err := agentfile.Marshal(exp1)
		if err != nil {
			t.Fatal(err)
		}
		reread, err := agentfile.Parse(written)
		if err != nil {
			t.Fatalf("%s: the export does not parse: %v", name, err)
		}
		_, second := e.importFile(t, reread, keepNames)
		exp2, err := e.svc.ExportAgentFile(ctx, second[0].ID, service.ExportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, b := first[0], second[0]
		if a.Name != b.Name || a.System != b.System || a.AgentType != b.AgentType || a.Description != b.Description || a.Model != b.Model ||
			!slices.Equal(a.Tags, b.Tags) || !slices.Equal(a.Tools, b.Tools) || !slices.Equal(a.ApprovalRequired, b.ApprovalRequired) ||
			mustJSON(t, a.Metadata) != mustJSON(t, b.Metadata) {
			t.Fatalf("%s: re-imported agent differs:\n%s\n%s", name, mustJSON(t, a), mustJSON(t, b))
		}
		if len(a.Blocks) != len(b.Blocks) {
			t.Fatalf("%s: blocks %v / %v", name, a.Blocks, b.Blocks)
		}
		for i := range a.Blocks {
			x, y := a.Blocks[i], b.Blocks[i]
			if x.Label != y.Label || x.Value != y.Value || x.Limit != y.Limit || x.Description != y.Description || x.ReadOnly != y.ReadOnly {
				t.Fatalf("%s: block %d: %+v / %+v", name, i, x, y)
			}
		}
		la, lb := e.log(t, a.ID), e.log(t, b.ID)
		if len(la) != len(lb) {
			t.Fatalf("%s: logs of %d and %d messages", name, len(la), len(lb))
		}
		for i := range la {
			x, y := la[i], lb[i]
			x.ID, x.Seq, y.ID, y.Seq = "", 0, "", 0
			if mustJSON(t, x) != mustJSON(t, y) {
				t.Fatalf("%s: message %d:\n%s\n%s", name, i, mustJSON(t, x), mustJSON(t, y))
			}
		}
		// The exports agree but for when they were made.
		for _, f := range []*agentfile.File{exp1, exp2} {
			f.CreatedAt = nil
			if len(f.Agents[0].Messages) > 0 {
				f.Agents[0].Messages[0].CreatedAt = ""
			}
		}
		if mustJSON(t, exp1) != mustJSON(t, exp2) {
			t.Fatalf("%s: the exports of the import and the re-import differ:\n%s\n%s", name, mustJSON(t, exp1), mustJSON(t, exp2))
		}
	}

	// The conversation came through whole.
	_, again := e.importFile(t, f0, service.ImportOptions{AppendCopySuffix: true})
	if again[0].Name != "talker_copy" || len(again[0].CustomTools) != 1 || !slices.Equal(again[0].ApprovalRequired, []string{"shout"}) {
		t.Fatalf("imported %q tools %v approval %v", again[0].Name, again[0].CustomTools, again[0].ApprovalRequired)
	}
	lo, li := e.log(t, orig.ID), e.log(t, again[0].ID)
	if testing.Verbose() {
		out, _ := agentfile.Marshal(f0)
		t.Logf("the conversation's export:\n%s", out)
	}
	if len(lo) != len(li) || len(lo) < 6 {
		t.Fatalf("log of %d, imported %d", len(lo), len(li))
	}
	for i := range lo {
		x, y := lo[i], li[i]
		x.ID, x.Seq, x.RunID, y.ID, y.Seq = "", 0, "", "", 0
		for j := range x.ToolCalls {
			x.ToolCalls[j].Approval = false // not part of the format
		}
		if mustJSON(t, x) != mustJSON(t, y) {
			t.Fatalf("message %d:\n%s\n%s", i, mustJSON(t, x), mustJSON(t, y))
		}
	}
}

func TestImportTools(t *testing.T) {
	e := newEnv(t, nil, nil)
	f := parseFile(t, publishedFiles[1])
	mine, err := e.svc.Tools().Create(ctx, tools.Spec{SourceCode: "def reject(candidate_name: str):\n    \"\"\"Mine.\n\n    Args:\n        candidate_name (str): who.\n    \"\"\"\n    return 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	// Not overriding: the existing tool is reused as it is.
	_, ags := e.importFile(t, f, service.ImportOptions{})
	got, err := e.svc.Tools().Get(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SourceCode != mine.SourceCode || !slices.Contains(ags[0].CustomToolIDs, mine.ID) {
		t.Fatalf("tool replaced (%q) or not attached (%v)", got.SourceCode, ags[0].CustomToolIDs)
	}
	// Overriding: the file's definition replaces it; the ID stays.
	_, ags = e.importFile(t, f, keepNames)
	if got, err = e.svc.Tools().Get(ctx, mine.ID); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(f.Tools, func(t agentfile.Tool) bool { return t.Name == "reject" })
	if got.SourceCode != *f.Tools[i].SourceCode || !slices.Contains(ags[0].CustomToolIDs, mine.ID) {
		t.Fatalf("tool not replaced (%q) or not attached (%v)", got.SourceCode, ags[0].CustomToolIDs)
	}
	n, err := e.svc.Tools().Count(ctx, tools.Query{Types: []string{tools.TypeCustom}})
	if err != nil || n != 4 {
		t.Fatalf("%d custom tools, %v", n, err)
	}
}

func TestImportStripMessagesAndOverrides(t *testing.T) {
	e := newEnv(t, nil, chatty())
	f0, err := e.svc.ExportAgentFile(ctx, conversed(t, e).ID, service.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, ags := e.importFile(t, f0, service.ImportOptions{StripMessages: true, Name: "renamed", AppendCopySuffix: true, Model: "anthropic/claude", ProjectID: "p1", Secrets: []string{"KEY"}})
	if ags[0].Name != "renamed" || ags[0].Model != "anthropic/claude" || len(e.log(t, ags[0].ID)) != 0 {
		t.Fatalf("agent %q model %q", ags[0].Name, ags[0].Model)
	}
	for _, n := range []string{"were stripped", "project_id", "secrets given (KEY)"} {
		if !hasNote(res.Notes, n) {
			t.Errorf("no note on %q in %q", n, res.Notes)
		}
	}
}

// TestImportHistoryRepairs: what cannot be a Kelpie history is left out
// and noted; the rest is logged as it was.
func TestImportHistoryRepairs(t *testing.T) {
	e := newEnv(t, nil, nil)
	doc := `{"agents": [{"id": "agent-0", "name": "h", "system": "be brief", "tool_ids": [], "include_base_tools": false,
	  "in_context_message_ids": ["message-0", "message-6", "message-7"],
	  "messages": [
	    {"id": "message-0", "role": "system", "content": [{"type": "text", "text": "compiled"}]},
	    {"id": "message-1", "role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image", "source": {"type": "url", "url": "x"}}], "otid": "o1", "created_at": "2025-03-04T05:06:07.5+00:00"},
	    {"id": "message-2", "role": "assistant", "content": [{"type": "reasoning", "reasoning": "hmm", "is_native": true}, {"type": "text", "text": "let me check"}],
	     "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "conversation_search", "arguments": "{}"}},
	                    {"id": "c2", "type": "function", "function": {"name": "conversation_search", "arguments": "{\"query\": \"x\"}"}}]},
	    {"id": "message-3", "role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "[]"}], "tool_returns": [{"tool_call_id": "c1", "status": "error", "func_response": "boom"}]},
	    {"id": "message-4", "role": "tool", "tool_call_id": "zz", "content": "orphan", "tool_returns": []},
	    {"id": "message-5", "role": "approval", "content": []},
	    {"id": "message-6", "role": "assistant", "content": [{"type": "reasoning", "reasoning": "only thinking"}],
	     "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "a", "arguments": "{}"}}, {"id": "c4", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
	    {"id": "message-7", "role": "tool", "content": [], "tool_returns": [{"tool_call_id": "c3", "status": "success", "func_response": "A"}, {"tool_call_id": "c4", "status": "error", "func_response": [{"type": "text", "text": "B"}]}]},
	    {"id": "message-8", "role": "assistant", "content": [], "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
	    {"id": "message-9", "role": "user", "content": "again"},
	    {"id": "message-10", "role": "assistant", "content": [], "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "a", "arguments": "{}"}}]},
	    {"id": "message-11", "role": "tool", "name": "a", "tool_call_id": "c9", "content": "ok"},
	    {"id": "message-12", "role": "user", "content": "late"},
	    {"id": "message-13", "role": "tool", "name": "a", "tool_call_id": "c9", "content": "too late"}
	  ]}], "groups": [], "blocks": [], "files": [], "sources": [], "tools": [], "mcp_servers": []}`
	f, err := agentfile.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, ags := e.importFile(t, f, keepNames)
	if ags[0].System != "be brief" || len(ags[0].Tools) != 0 {
		t.Fatalf("agent %+v", ags[0])
	}
	type m struct{ Role, Content, Calls, CallID, Name, Status, OTID string }
	var got []m
	for _, x := range e.log(t, ags[0].ID) {
		var calls []string
		for _, c := range x.ToolCalls {
			calls = append(calls, c.ID)
		}
		got = append(got, m{x.Role, x.Content, strings.Join(calls, ","), x.ToolCallID, x.ToolName, x.ToolStatus, x.OTID})
	}
	want := []m{
		{Role: "user", Content: "look", OTID: "o1"},
		{Role: "assistant", Content: "let me check", Calls: "c1"},
		{Role: "tool", Content: "[]", CallID: "c1", Name: "conversation_search", Status: "error"},
		{Role: "assistant", Content: "only thinking", Calls: "c3,c4"},
		{Role: "tool", Content: "A", CallID: "c3", Name: "a", Status: "success"},
		{Role: "tool", Content: "B", CallID: "c4", Name: "b", Status: "error"},
		{Role: "user", Content: "again"},
		{Role: "assistant", Calls: "c9"},
		{Role: "tool", Content: "ok", CallID: "c9", Name: "a", Status: "success"},
		{Role: "user", Content: "late"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log:\n%+v\nwant\n%+v", got, want)
	}
	if at := e.log(t, ags[0].ID)[0].CreatedAt; at.Format("2006-01-02T15:04:05.0") != "2025-03-04T05:06:07.5" {
		t.Fatalf("created_at %v", at)
	}
	for _, n := range []string{"1 approval messages", "1 content parts other than", "1 messages kept their text but not the reasoning", "2 tool returns without their call", "2 tool calls without a return", "held 3 of the 10"} {
		if !hasNote(res.Notes, n) {
			t.Errorf("no note on %q in %q", n, res.Notes)
		}
	}
}

func TestImportSharedBlocksAndUndo(t *testing.T) {
	e := newEnv(t, nil, nil)
	two := `{"agents": [
	   {"id": "agent-0", "name": "one", "block_ids": ["block-0", "block-1"], "include_base_tools": false},
	   {"id": "agent-1", "name": "two", "block_ids": ["block-0"], "include_base_tools": false}],
	 "groups": [], "blocks": [{"id": "block-0", "label": "team", "value": "shared", "limit": 100},
	   {"id": "block-1", "label": "own", "value": "mine", "limit": 100}, {"id": "block-2", "label": "spare", "value": ""}],
	 "files": [], "sources": [], "tools": [], "mcp_servers": []}`
	f, err := agentfile.Parse([]byte(two))
	if err != nil {
		t.Fatal(err)
	}
	res, ags := e.importFile(t, f, keepNames)
	one, other := ags[0], ags[1]
	if len(one.Blocks) != 2 || len(other.Blocks) != 1 || one.Blocks[0].Label != "own" || !one.Blocks[1].Shared || one.Blocks[1].ID != other.Blocks[0].ID {
		t.Fatalf("blocks %+v / %+v", one.Blocks, other.Blocks)
	}
	if !hasNote(res.Notes, "1 of the file's blocks belong to no agent") {
		t.Errorf("notes %q", res.Notes)
	}
	// One block: an edit through one agent is the other's.
	v := "edited"
	if _, err := e.svc.UpdateAgent(ctx, one.ID, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: "team", Value: &v}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.GetAgent(ctx, other.ID); got.Blocks[0].Value != "edited" {
		t.Fatalf("the other agent's block is %q", got.Blocks[0].Value)
	}

	// The second agent cannot be created (its block is over its limit):
	// the first agent and the shared block go again.
	before, err := e.svc.ListAgents(ctx, service.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(two, `"block_ids": ["block-0"], "include_base_tools": false}`, `"block_ids": ["block-0"], "include_base_tools": false, "memory_blocks": [{"label": "x", "value": "too long", "limit": 2}]}`, 1)
	if bad == two {
		t.Fatal("the edit did not apply")
	}
	if f, err = agentfile.Parse([]byte(bad)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ImportAgentFile(ctx, f, keepNames); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), `agent "two"`) {
		t.Fatalf("import = %v", err)
	}
	after, err := e.svc.ListAgents(ctx, service.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d agents after the failed import, %d before", len(after), len(before))
	}
	blocks, err := e.svc.ListBlocks(ctx, "team", 100)
	if err != nil || len(blocks) != 1 {
		t.Fatalf("%d standalone blocks labelled team (want the first import's only), %v", len(blocks), err)
	}
}

func TestImportRejects(t *testing.T) {
	e := newEnv(t, nil, nil)
	f := parseFile(t, publishedFiles[1])
	f.Tools[0].JSONSchema = map[string]any{"name": "not a name!"}
	if _, err := e.svc.ImportAgentFile(ctx, f, keepNames); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), "not a name!") {
		t.Fatalf("import of a bad tool = %v", err)
	}
	// Nothing was written: no agent, no tool.
	if ags, _ := e.svc.ListAgents(ctx, service.ListOptions{}); len(ags) != 0 {
		t.Fatalf("%d agents", len(ags))
	}
	if n, _ := e.svc.Tools().Count(ctx, tools.Query{Types: []string{tools.TypeCustom}}); n != 0 {
		t.Fatalf("%d tools", n)
	}

	// The longest history one import takes fits its transaction (every
	// message is three writes); one more is refused.
	full := parseFile(t, publishedFiles[0])
	full.Agents[0].Messages, full.Agents[0].InContextMessageIDs = nil, nil
	for i := range agent.ImportMessagesMax {
		full.Agents[0].Messages = append(full.Agents[0].Messages, agentfile.Message{ID: fmt.Sprintf("message-y%d", i), Role: agentfile.RoleUser, Content: agentfile.Content{agentfile.TextPart("hi")}})
	}
	if res, err := e.svc.ImportAgentFile(ctx, full, keepNames); err != nil || len(res.AgentIDs) != 1 {
		t.Fatalf("import of %d messages = %v", agent.ImportMessagesMax, err)
	}
	g := parseFile(t, publishedFiles[0])
	a := &g.Agents[0]
	for i := range agent.ImportMessagesMax + 1 {
		a.Messages = append(a.Messages, agentfile.Message{ID: fmt.Sprintf("message-x%d", i), Role: agentfile.RoleUser, Content: agentfile.Content{agentfile.TextPart("hi")}})
	}
	if _, err := e.svc.ImportAgentFile(ctx, g, keepNames); !errors.Is(err, agent.ErrInvalid) || !strings.Contains(err.Error(), "strip_messages") {
		t.Fatalf("import of %d messages = %v", len(a.Messages), err)
	}
	// A file that breaks the format's rules.
	g.Agents[0].ToolIDs = append(g.Agents[0].ToolIDs, "tool-99")
	if _, err := e.svc.ImportAgentFile(ctx, g, keepNames); !errors.Is(err, agent.ErrInvalid) || !errors.Is(err, agentfile.ErrInvalid) {
		t.Fatalf("import of an invalid file = %v", err)
	}
	// An embedding model the caller names must be served.
	h := parseFile(t, publishedFiles[0])
	if res, err := e.svc.ImportAgentFile(ctx, h, service.ImportOptions{Embedding: "openai/text-embedding-3-small"}); err != nil || len(res.AgentIDs) != 1 {
		t.Fatalf("import with an embedding (no provider configured: accepted) = %v", err)
	}
}

// TestImportEmbedding: a file's embedding model this server does not serve
// gives way to the default, noted; one the caller names must be served.
func TestImportEmbedding(t *testing.T) {
	e, _ := newEmbedEnv(t, nil, nil, service.WithDefaultEmbedding(conceptModel))
	f := parseFile(t, publishedFiles[0])
	res, ags := e.importFile(t, f, keepNames)
	if ags[0].Embedding != conceptModel || !hasNote(res.Notes, "embedding model openai/text-embedding-3-small is not served here") {
		t.Fatalf("embedding %q, notes %q", ags[0].Embedding, res.Notes)
	}
	_, ags = e.importFile(t, f, service.ImportOptions{Embedding: conceptModel})
	if ags[0].Embedding != conceptModel {
		t.Fatalf("embedding %q", ags[0].Embedding)
	}
	if _, err := e.svc.ImportAgentFile(ctx, f, service.ImportOptions{Embedding: "anthropic/claude"}); err == nil || !strings.Contains(err.Error(), "anthropic/claude") {
		t.Fatalf("import with an embedding model not served = %v", err)
	}
	if ags, _ := e.svc.ListAgents(ctx, service.ListOptions{}); len(ags) != 2 {
		t.Fatalf("%d agents after the refused import", len(ags))
	}
}
