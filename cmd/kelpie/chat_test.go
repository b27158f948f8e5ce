package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// setStdin makes `kelpie chat` read input for the rest of the test.
func setStdin(t *testing.T, input string) {
	t.Helper()
	old := chatInput
	chatInput = strings.NewReader(input)
	t.Cleanup(func() { chatInput = old })
}

// memoryModel answers "my name is X" by noting it in memory (with a
// reasoning line) and then replying; "fail" with a model failure; and
// anything else with "echo: <text>".
func memoryModel() *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		var user string
		for i := len(req.Messages) - 1; i >= 0; i-- {
			if req.Messages[i].Role == llm.RoleUser {
				user = req.Messages[i].Content
				break
			}
		}
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("Nice to meet you!"), nil
		}
		switch {
		case user == "fail":
			return nil, llm.ErrNotConfigured
		case strings.HasPrefix(user, "my name is "):
			// Use whichever memory-writing tool the agent type offers.
			note := "Name: " + strings.TrimPrefix(user, "my name is ")
			r := llmtest.Call("core_memory_append", map[string]any{"label": "human", "content": note})
			for _, tool := range req.Tools {
				if tool.Name == "memory_insert" {
					r = llmtest.Call("memory_insert", map[string]any{"label": "human", "new_str": note})
				}
			}
			r.Message.Content = "The user told me their name."
			return r, nil
		}
		return llmtest.Text("echo: " + user), nil
	}}
}

func createTestAgent(t *testing.T, env func(string) string) string {
	t.Helper()
	return strings.TrimSpace(mustKelpie(t, env, "agents", "create", "--name", "chatty", "--block", "human="))
}

func TestChatPipedInput(t *testing.T) {
	url := apiServer(t, memoryModel(), "")
	env := envOf(map[string]string{envServer: url})
	id := createTestAgent(t, env)

	setStdin(t, "hello\n\n   \nmy name is Ada\n")
	out := mustKelpie(t, env, "chat", id)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("chat printed %d lines, want 7:\n%s", len(lines), out)
	}
	wantLines := []struct{ prefix, contains string }{
		{"agent> echo: hello", ""},
		{"[end_turn · 1 step · 15 tokens (10 prompt + 5 completion)]", ""},
		{"(thinking) The user told me their name.", ""},
		{"→ ", `"Name: Ada"`}, // memory_insert or core_memory_append, by agent type
		{"← success", ""},
		{"agent> Nice to meet you!", ""},
		{"[end_turn · 2 steps · 30 tokens (20 prompt + 10 completion)]", ""},
	}
	for i, w := range wantLines {
		if !strings.HasPrefix(lines[i], w.prefix) || !strings.Contains(lines[i], w.contains) {
			t.Errorf("line %d = %q, want it to start with %q and contain %q", i+1, lines[i], w.prefix, w.contains)
		}
	}
	if !strings.Contains(lines[3], "memory") || !strings.HasSuffix(lines[3], ")  ✎ memory edit") {
		t.Errorf("the memory tool call is not marked as an edit: %q", lines[3])
	}
	if strings.Contains(out, "you>") {
		t.Errorf("piped input got a prompt:\n%s", out)
	}
	// The memory edit happened.
	if got := mustKelpie(t, env, "agents", "get", id); !strings.Contains(got, "    Name: Ada\n") {
		t.Errorf("memory after chat:\n%s", got)
	}
}

func TestChatOneMessage(t *testing.T) {
	url := apiServer(t, memoryModel(), "")
	env := envOf(map[string]string{envServer: url})
	id := createTestAgent(t, env)
	setStdin(t, "this is not read\n")
	out := mustKelpie(t, env, "chat", id, "--message", "ping")
	if out != "agent> echo: ping\n[end_turn · 1 step · 15 tokens (10 prompt + 5 completion)]\n" {
		t.Errorf("chat --message printed %q", out)
	}
}

func TestChatPipedStopsAtFirstFailure(t *testing.T) {
	model := memoryModel()
	url := apiServer(t, model, "")
	env := envOf(map[string]string{envServer: url})
	id := createTestAgent(t, env)
	setStdin(t, "one\nfail\nthree\n")
	code, stdout, stderr := kelpie(t, env, "chat", id)
	if code != 1 || !strings.Contains(stdout, "agent> echo: one") || strings.Contains(stdout, "three") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "server answered") {
		t.Errorf("stderr lacks the server's answer:\n%s", stderr)
	}
	if model.Calls() != 2 {
		t.Errorf("model called %d times, want 2 (the line after the failure is not sent)", model.Calls())
	}
}

func TestChatUnknownAgent(t *testing.T) {
	url := apiServer(t, memoryModel(), "")
	setStdin(t, "hello\n")
	code, _, stderr := kelpie(t, envOf(map[string]string{envServer: url}), "chat", "agent-00000000-0000-4000-8000-000000000000")
	if code != 1 || !strings.Contains(stderr, "404") || !strings.Contains(stderr, "kelpie agents list") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// TestChatInteractive drives the loop as it runs at a terminal: a
// greeting, prompts, a failed turn reported without ending the session,
// and /exit.
func TestChatInteractive(t *testing.T) {
	url := apiServer(t, memoryModel(), "")
	env := envOf(map[string]string{envServer: url})
	id := createTestAgent(t, env)
	c, err := newAPIClient(url, "")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	s := &chatSession{client: c, agentID: id, out: newTurnPrinter(&out, false), stderr: &errOut}
	if err := s.loop(&cobra.Command{}, strings.NewReader("fail\nhi\n/exit\nnot sent\n"), true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "Chatting with chatty ("+id) {
		t.Errorf("no greeting:\n%s", got)
	}
	if n := strings.Count(got, "you> "); n != 3 {
		t.Errorf("%d prompts, want 3:\n%s", n, got)
	}
	if !strings.Contains(got, "you> agent> echo: hi\n") || strings.Contains(got, "not sent") {
		t.Errorf("output:\n%s", got)
	}
	if !strings.Contains(errOut.String(), "kelpie: ") {
		t.Errorf("the failed turn was not reported: %q", errOut.String())
	}
}

func TestTurnPrinterMessages(t *testing.T) {
	long := strings.Repeat("x", 500)
	tests := []struct {
		name string
		json string
		want string
	}{
		{"assistant", `{"message_type":"assistant_message","content":"hi"}`, "agent> hi\n"},
		{"assistant, several lines", `{"message_type":"assistant_message","content":"one\ntwo\n"}`, "agent> one\n       two\n"},
		{"assistant, content parts", `{"message_type":"assistant_message","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}`, "agent> a\n       b\n"},
		{"reasoning", `{"message_type":"reasoning_message","reasoning":"hmm"}`, "(thinking) hmm\n"},
		{"hidden reasoning", `{"message_type":"hidden_reasoning_message","state":"redacted"}`, "(thinking) [hidden]\n"},
		{"tool call", `{"message_type":"tool_call_message","tool_call":{"name":"archival_memory_search","arguments":"{\"query\": \"tea\", \"page\": 0}"}}`,
			"→ archival_memory_search(query=\"tea\", page=0)\n"},
		{"memory edit", `{"message_type":"tool_call_message","tool_call":{"name":"core_memory_replace","arguments":"{\"label\":\"human\",\"old_content\":\"a\",\"new_content\":\"b\"}"}}`,
			"→ core_memory_replace(label=\"human\", old_content=\"a\", new_content=\"b\")  ✎ memory edit\n"},
		{"tool call, not memory", `{"message_type":"tool_call_message","tool_call":{"name":"conversation_search","arguments":"{\"query\":\"x\"}"}}`,
			"→ conversation_search(query=\"x\")\n"},
		{"tool calls list", `{"message_type":"tool_call_message","tool_calls":[{"name":"a","arguments":"{}"},{"name":"b","arguments":"not json"}]}`,
			"→ a()\n→ b(not json)\n"},
		{"tool return", `{"message_type":"tool_return_message","status":"success","tool_return":"line one\nline two"}`, "← success: line one line two\n"},
		{"tool return, empty", `{"message_type":"tool_return_message","status":"success","tool_return":""}`, "← success\n"},
		{"tool return, long", `{"message_type":"tool_return_message","status":"error","tool_return":"` + long + `"}`,
			"← error: " + strings.Repeat("x", toolResultMax-1) + "…\n"},
		{"user message is not echoed", `{"message_type":"user_message","content":"hi"}`, ""},
		{"unknown type", `{"message_type":"event_message","content":"compacted"}`, "[event_message] compacted\n"},
		{"stop then usage", `{"message_type":"stop_reason","stop_reason":"max_steps"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m lettaMessage
			if err := json.Unmarshal([]byte(tc.json), &m); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			p := newTurnPrinter(&buf, false)
			p.message(m)
			if buf.String() != tc.want {
				t.Errorf("printed %q, want %q", buf.String(), tc.want)
			}
		})
	}
}

// TestTurnPrinterStream feeds the printer a turn one message at a time,
// as an SSE reader will, stop_reason and usage_statistics included.
func TestTurnPrinterStream(t *testing.T) {
	events := []string{
		`{"message_type":"reasoning_message","reasoning":"thinking"}`,
		`{"message_type":"assistant_message","content":"done"}`,
		`{"message_type":"stop_reason","stop_reason":"end_turn"}`,
		`{"message_type":"usage_statistics","completion_tokens":1,"prompt_tokens":2,"total_tokens":3,"step_count":1}`,
	}
	var buf bytes.Buffer
	p := newTurnPrinter(&buf, false)
	for _, e := range events {
		var m lettaMessage
		if err := json.Unmarshal([]byte(e), &m); err != nil {
			t.Fatal(err)
		}
		p.message(m)
	}
	if err := p.finish(); err != nil {
		t.Fatal(err)
	}
	want := "(thinking) thinking\nagent> done\n[end_turn · 1 step · 3 tokens (2 prompt + 1 completion)]\n"
	if buf.String() != want {
		t.Errorf("printed %q, want %q", buf.String(), want)
	}

	// A stop reason without usage is printed by finish.
	buf.Reset()
	p.message(lettaMessage{MessageType: "stop_reason", StopReason: "cancelled"})
	p.finish()
	if buf.String() != "[cancelled]\n" {
		t.Errorf("printed %q", buf.String())
	}
}

func TestTurnPrinterColor(t *testing.T) {
	var buf bytes.Buffer
	p := newTurnPrinter(&buf, true)
	p.message(lettaMessage{MessageType: "reasoning_message", Reasoning: "hmm"})
	p.message(lettaMessage{MessageType: "tool_call_message", ToolCall: &toolCall{Name: "core_memory_replace", Arguments: "{}"}})
	got := buf.String()
	if !strings.Contains(got, ansiDim+"(thinking) hmm"+ansiReset) || !strings.Contains(got, ansiYellow+"→ core_memory_replace()") {
		t.Errorf("printed %q", got)
	}
	if colorEnabled(&buf, noEnv) {
		t.Error("color enabled for a buffer")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestTurnPrinterWriteError(t *testing.T) {
	p := newTurnPrinter(failWriter{}, false)
	err := p.response(&lettaResponse{Messages: []lettaMessage{{MessageType: "assistant_message", Content: "x"}}})
	if err == nil {
		t.Fatal("a write error was lost")
	}
}
