package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// callOnce makes the model call tool with args on the user's message, then
// end its turn in text.
func callOnce(tool string, args map[string]any) *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("ok"), nil
		}
		return llmtest.Call(tool, args), nil
	}}
}

func TestMemoryTools(t *testing.T) {
	cases := []struct {
		tool, start string
		args        map[string]any
		want        string // block value after, or the error text
		fails       bool
	}{
		{agent.ToolMemoryInsert, "a\nb", map[string]any{"new_str": "top", "insert_line": 0}, "top\na\nb", false},
		{agent.ToolMemoryInsert, "a\nb", map[string]any{"new_str": "mid", "insert_line": 1}, "a\nmid\nb", false},
		{agent.ToolMemoryInsert, "a", map[string]any{"new_str": "end"}, "a\nend", false},
		{agent.ToolMemoryInsert, "a", map[string]any{"new_str": "x", "insert_line": 9}, "out of range", true},
		{agent.ToolMemoryReplace, "cat dog", map[string]any{"old_str": "dog", "new_str": "eel"}, "cat eel", false},
		{agent.ToolMemoryReplace, "dog dog", map[string]any{"old_str": "dog", "new_str": "eel"}, "occurs 2 times", true},
		{agent.ToolMemoryReplace, "cat", map[string]any{"old_str": "dog", "new_str": "eel"}, "does not occur", true},
		// Letta 0.16.8's argument names; the older ones above still work.
		{agent.ToolMemoryInsert, "a", map[string]any{"new_string": "end"}, "a\nend", false},
		{agent.ToolMemoryReplace, "cat dog", map[string]any{"old_string": "dog", "new_string": "eel"}, "cat eel", false},
		{agent.ToolMemoryReplace, "cat dog", map[string]any{"old_string": "dog", "new_str": "eel"}, "cat eel", false},
		{agent.ToolMemory, "a", map[string]any{"command": "str_replace", "path": "/memories/human", "old_string": "a", "new_string": "b"}, "b", false},
		{agent.ToolMemory, "a\nc", map[string]any{"command": "insert", "path": "/memories/human", "insert_line": 1, "insert_text": "b"}, "a\nb\nc", false},
		{agent.ToolMemoryApplyPatch, "one\ntwo\nthree", map[string]any{"patch": "@@\n one\n-two\n+2\n three\n"}, "one\n2\nthree", false},
		{agent.ToolMemoryApplyPatch, "one", map[string]any{"patch": "@@\n-zero\n+0\n"}, "", true},
		{agent.ToolMemoryRethink, "old", map[string]any{"new_memory": "brand new"}, "brand new", false},
		{agent.ToolMemoryRethink, "old", map[string]any{"new_memory": strings.Repeat("x", 101)}, "limit of 100", true},
	}
	for _, c := range cases {
		c.args["label"] = "human"
		e := newEnv(t, nil, callOnce(c.tool, c.args))
		ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{c.tool}, Blocks: []agent.BlockCreate{{Label: "human", Value: c.start, Limit: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "go"}}})
		if err != nil {
			t.Fatal(err)
		}
		ret := resp.Messages[2]
		got, _ := e.svc.GetAgent(ctx, ag.ID)
		value := got.Block("human").Value
		if c.fails {
			if ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, c.want) || value != c.start {
				t.Errorf("%s %v: return %q, block %q; want an error containing %q and no change", c.tool, c.args, ret.Content, value, c.want)
			}
		} else if ret.ToolStatus != agent.ToolSuccess || value != c.want {
			t.Errorf("%s %v: block %q (%s), want %q", c.tool, c.args, value, ret.Content, c.want)
		}
	}
}

func TestMemGPTHeartbeats(t *testing.T) {
	for _, heartbeat := range []bool{false, true} {
		calls := 0
		model := &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
			calls++
			if !strings.Contains(string(req.Tools[0].Parameters), "request_heartbeat") {
				t.Error("memgpt_agent tools lack request_heartbeat")
			}
			if calls > 1 {
				return llmtest.Call(agent.ToolSendMessage, map[string]any{"message": "done"}), nil
			}
			return llmtest.Call(agent.ToolConversationSearch, map[string]any{"query": "x", "request_heartbeat": heartbeat}), nil
		}}
		e := newEnv(t, nil, model)
		ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPT})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}})
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if heartbeat {
			want = 2
		}
		if resp.Usage.StepCount != want {
			t.Errorf("heartbeat=%v: %d steps, want %d", heartbeat, resp.Usage.StepCount, want)
		}
	}
}

// The omni memory tool and multi-block patches create, rename and delete
// blocks of the agent.
func TestMemoryToolsChangeBlocks(t *testing.T) {
	steps := []struct {
		tool string
		args map[string]any
	}{
		{agent.ToolMemory, map[string]any{"command": "create", "path": "/memories/notes", "description": "scratch", "file_text": "first"}},
		{agent.ToolMemory, map[string]any{"command": "rename", "old_path": "/memories/notes", "new_path": "/memories/journal"}},
		{agent.ToolMemoryApplyPatch, map[string]any{"patch": "*** Begin Patch\n*** Add Block: todo\n+buy milk\n*** Update Block: journal\n@@\n-first\n+day one\n*** Delete Block: scratch\n*** End Patch\n"}},
	}
	i := 0
	model := &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("ok"), nil
		}
		st := steps[i]
		i++
		return llmtest.Call(st.tool, st.args), nil
	}}
	e := newEnv(t, nil, model)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Tools: []string{agent.ToolMemory, agent.ToolMemoryApplyPatch},
		Blocks: []agent.BlockCreate{{Label: "scratch", Value: "tmp"}}})
	if err != nil {
		t.Fatal(err)
	}
	for range steps {
		resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "go"}}})
		if err != nil {
			t.Fatal(err)
		}
		if ret := resp.Messages[2]; ret.ToolStatus != agent.ToolSuccess {
			t.Fatalf("%s: %s", ret.ToolName, ret.Content)
		}
	}
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, b := range got.Blocks {
		labels = append(labels, b.Label+"="+b.Value)
	}
	if want := "journal=day one,todo=buy milk"; strings.Join(labels, ",") != want {
		t.Fatalf("blocks %v, want %s", labels, want)
	}
	if j := got.Block("journal"); j.Description != "scratch" || !strings.HasPrefix(j.ID, "block-") {
		t.Fatalf("journal block %+v", j)
	}
}
