package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

var agentIDPattern = regexp.MustCompile(`^agent-[0-9a-f-]{36}$`)

func TestAgentsRoundTrip(t *testing.T) {
	url := apiServer(t, llmtest.Echo(), "")
	env := envOf(map[string]string{envServer: url})

	if out := mustKelpie(t, env, "agents", "list"); !strings.Contains(out, "No agents yet") {
		t.Errorf("empty list = %q", out)
	}

	// create prints the new ID and nothing else.
	out := mustKelpie(t, env, "agents", "create", "--name", "support",
		"--model", "openai/gpt-4o-mini", "--system", "You help.",
		"--block", "persona=I am patient.", "--block", "human=Name: Ada\nLikes: a=b")
	id := strings.TrimSpace(out)
	if !agentIDPattern.MatchString(id) || out != id+"\n" {
		t.Fatalf("create printed %q, want one agent ID", out)
	}

	// create --json prints the agent.
	out = mustKelpie(t, env, "agents", "create", "--name", "second", "--json")
	var second struct{ ID, Name string }
	if err := json.Unmarshal([]byte(out), &second); err != nil || second.Name != "second" || !agentIDPattern.MatchString(second.ID) {
		t.Fatalf("create --json printed %q (%v)", out, err)
	}

	// list: a table, newest first.
	out = mustKelpie(t, env, "agents", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("list printed %d lines, want a header and 2 agents:\n%s", len(lines), out)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "ID NAME MODEL CREATED" {
		t.Errorf("header = %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[0] != second.ID || f[1] != "second" {
		t.Errorf("first row = %q, want the newer agent", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) < 4 || f[0] != id || f[1] != "support" || f[2] != "openai/gpt-4o-mini" {
		t.Errorf("second row = %q", lines[2])
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`).MatchString(lines[1]) {
		t.Errorf("row lacks a creation time: %q", lines[1])
	}

	// list --limit and --json.
	out = mustKelpie(t, env, "agents", "list", "--limit", "1", "--json")
	var listed []struct{ ID string }
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].ID != second.ID {
		t.Fatalf("list --limit 1 --json = %q (%v)", out, err)
	}

	// get: a summary with the memory blocks.
	out = mustKelpie(t, env, "agents", "get", id)
	for _, want := range []string{
		"ID:          " + id, "Name:        support", "Model:       openai/gpt-4o-mini",
		"System:      You help. (9 chars)", "Tools:       ", "memory_",
		"Memory blocks (2):",
		"  persona (13/", "    I am patient.",
		"  human (", "    Name: Ada\n    Likes: a=b\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}
	out = mustKelpie(t, env, "agents", "get", id, "--json")
	var got struct {
		ID     string
		Blocks []struct{ Label, Value string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.ID != id || len(got.Blocks) != 2 {
		t.Fatalf("get --json = %q (%v)", out, err)
	}

	// delete, then the agent is gone.
	if out := mustKelpie(t, env, "agents", "delete", id); !strings.Contains(out, "Deleted agent "+id) {
		t.Errorf("delete printed %q", out)
	}
	code, _, stderr := kelpie(t, env, "agents", "get", id)
	if code != 1 || !strings.Contains(stderr, "404") || !strings.Contains(stderr, "kelpie agents list") {
		t.Errorf("get after delete: exit %d\n%s", code, stderr)
	}
	out = mustKelpie(t, env, "agents", "list")
	if strings.Contains(out, id) || !strings.Contains(out, second.ID) {
		t.Errorf("list after delete:\n%s", out)
	}
}

func TestAgentsServerErrors(t *testing.T) {
	url := apiServer(t, llmtest.Echo(), "")
	env := envOf(map[string]string{envServer: url})
	// The server's detail is shown.
	code, _, stderr := kelpie(t, env, "agents", "get", "not-an-id")
	if code != 1 || !strings.Contains(stderr, "422") || !strings.Contains(stderr, "not a valid agent ID") {
		t.Errorf("get not-an-id: exit %d\n%s", code, stderr)
	}
	code, _, stderr = kelpie(t, env, "agents", "delete", "agent-00000000-0000-4000-8000-000000000000")
	if code != 1 || !strings.Contains(stderr, "404") {
		t.Errorf("delete of a missing agent: exit %d\n%s", code, stderr)
	}
}

func TestAgentsUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"agents", "get"}, "takes one argument"},
		{[]string{"agents", "delete", "a", "b"}, "takes one argument"},
		{[]string{"agents", "list", "extra"}, "takes no arguments"},
		{[]string{"agents", "list", "--limit", "0"}, "--limit"},
		{[]string{"agents", "create", "--block", "novalue"}, "label=value"},
		{[]string{"agents", "create", "--block", "=x"}, "label=value"},
		{[]string{"agents", "frobnicate"}, "unknown command"},
		{[]string{"agents", "list", "--nope"}, "unknown flag"},
		{[]string{"chat"}, "takes one argument"},
		{[]string{"chat", "agent-x", "--message", " "}, "--message is empty"},
	}
	for _, tc := range tests {
		code, _, stderr := kelpie(t, noEnv, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, want 2 with %q:\n%s", tc.args, code, tc.want, stderr)
		}
	}
	// Without a subcommand, agents shows its help.
	if out := mustKelpie(t, noEnv, "agents"); !strings.Contains(out, "kelpie agents list") {
		t.Errorf("agents without a subcommand printed %q", out)
	}
}
