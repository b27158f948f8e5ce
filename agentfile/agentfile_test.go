package agentfile_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/agentfile"
)

// The published files (see testdata/README.md).
const (
	memgptFile   = "testdata/memgpt_agent_with_convo.af" // plain JSON
	outreachFile = "testdata/outreach_workflow_agent.af" // JSON encoded twice
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t testing.TB, name string) *agentfile.File {
	t.Helper()
	f, err := agentfile.Parse(read(t, name))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return f
}

// generic decodes JSON into plain Go values, as a reference decoder would.
func generic(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParsePublishedMemGPT(t *testing.T) {
	raw := read(t, memgptFile)
	if firstNonSpace(raw) != '{' {
		t.Fatalf("%s is meant to be the plain form", memgptFile)
	}
	f := parse(t, memgptFile)
	ref := generic(t, raw).(map[string]any)
	refAgent := ref["agents"].([]any)[0].(map[string]any)

	if len(f.Agents) != 1 {
		t.Fatalf("%d agents", len(f.Agents))
	}
	a := f.Agents[0]
	if a.ID != refAgent["id"] || a.Name != "memgpt_agent" || a.AgentType != "letta_v1_agent" || *a.System != refAgent["system"] {
		t.Fatalf("agent = %s %q %s, system %.40q", a.ID, a.Name, a.AgentType, *a.System)
	}
	if a.ModelHandle() != "openai/gpt-4o-mini" || a.EmbeddingHandle() != "openai/text-embedding-3-small" {
		t.Fatalf("handles %q %q", a.ModelHandle(), a.EmbeddingHandle())
	}
	if !slices.Equal(a.BlockIDs, []string{"block-0", "block-1"}) || len(f.Blocks) != 2 {
		t.Fatalf("blocks %v of %d", a.BlockIDs, len(f.Blocks))
	}
	for i, b := range f.Blocks {
		rb := ref["blocks"].([]any)[i].(map[string]any)
		if b.Label != rb["label"] || b.Value != rb["value"] || b.CharLimit() != int(rb["limit"].(float64)) || *b.Description != rb["description"] {
			t.Fatalf("block %d = %+v", i, b)
		}
	}
	var names []string
	for _, tool := range f.Tools {
		names = append(names, tool.FunctionName())
	}
	if !slices.Equal(names, []string{"conversation_search", "memory_insert", "memory_replace"}) {
		t.Fatalf("tools %v", names)
	}
	if len(a.Messages) != 1 || a.Messages[0].Role != agentfile.RoleSystem || !strings.HasPrefix(a.Messages[0].Content.Text(), "<base_instructions>") {
		t.Fatalf("messages %+v", a.Messages)
	}
	if !slices.Equal(a.InContextMessageIDs, []string{"message-0"}) {
		t.Fatalf("in context %v", a.InContextMessageIDs)
	}
	// The members the types do not model are kept.
	if got := a.Extra.NonEmpty(); !slices.Equal(got, []string{"max_files_open", "per_file_view_window_char_limit", "timezone"}) {
		t.Fatalf("extra settings %v", got)
	}
	if string(a.Extra["timezone"]) != `"UTC"` {
		t.Fatalf("timezone %s", a.Extra["timezone"])
	}
}

func TestParsePublishedDoubleEncoded(t *testing.T) {
	raw := read(t, outreachFile)
	if firstNonSpace(raw) != '"' {
		t.Fatalf("%s is meant to be encoded twice", outreachFile)
	}
	f := parse(t, outreachFile)
	a := f.Agents[0]
	if a.Name != "outreach_workflow_agent" || a.System == nil || *a.System != "" || !a.MessageBufferAutoclear {
		t.Fatalf("agent %q system %v autoclear %v", a.Name, a.System, a.MessageBufferAutoclear)
	}
	if len(f.Tools) != 4 || len(a.ToolRules) != 5 || len(f.Blocks) != 0 {
		t.Fatalf("%d tools, %d rules, %d blocks", len(f.Tools), len(a.ToolRules), len(f.Blocks))
	}
	for _, tool := range f.Tools {
		if tool.Type() != agentfile.ToolCustom || tool.SourceCode == nil || !strings.Contains(*tool.SourceCode, "def "+tool.Name+"(") {
			t.Fatalf("tool %+v", tool)
		}
	}

	// The same document given once encoded parses the same.
	var inner string
	if err := json.Unmarshal(raw, &inner); err != nil {
		t.Fatal(err)
	}
	once, err := agentfile.Parse([]byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(once, f) {
		t.Fatal("the file encoded once and twice parse differently")
	}
	// And so does the memgpt file encoded twice, with a byte order mark.
	plain := read(t, memgptFile)
	twice, err := json.Marshal(string(plain))
	if err != nil {
		t.Fatal(err)
	}
	g, err := agentfile.Parse(append([]byte("\xef\xbb\xbf"), twice...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, parse(t, memgptFile)) {
		t.Fatal("the memgpt file encoded twice parses differently")
	}
}

// TestMarshalKeepsEverything: a file parsed and written again says what
// the original said, members the types do not model included (up to null
// and empty objects written or omitted), and writing is stable.
func TestMarshalKeepsEverything(t *testing.T) {
	for _, name := range []string{memgptFile, outreachFile} {
		raw := read(t, name)
		if firstNonSpace(raw) == '"' {
			var inner string
			if err := json.Unmarshal(raw, &inner); err != nil {
				t.Fatal(err)
			}
			raw = []byte(inner)
		}
		f := parse(t, name)
		out, err := agentfile.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if want, got := normalize(generic(t, raw)), normalize(generic(t, out)); !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: written again, the file says something else:\n%s", name, diff(want, got, ""))
		}
		if bytes.Contains(out, []byte(`\u003c`)) || !bytes.Contains(out, []byte("\n  \"agents\": [")) {
			t.Fatalf("%s: not written as Letta writes files (indented, < as is):\n%.200s", name, out)
		}
		g, err := agentfile.Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		again, err := agentfile.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, again) {
			t.Fatalf("%s: writing is not stable", name)
		}
	}
}

// normalize drops null members and empty objects, which the types write
// or omit as they please.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if m, ok := e.(map[string]any); e == nil || (ok && len(m) == 0) {
				continue
			}
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// diff describes the first difference of two generic values.
func diff(a, b any, path string) string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for k := range am {
			if d := diff(am[k], bm[k], path+"."+k); d != "" {
				return d
			}
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				return path + "." + k + ": only in the second"
			}
		}
		return ""
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			if d := diff(al[i], bl[i], path+"["+string(rune('0'+i%10))+"]"); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return path + ": " + strings.TrimSpace(jsonOf(a)) + " != " + strings.TrimSpace(jsonOf(b))
	}
	return ""
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func firstNonSpace(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// minimal is a valid file to break in the tests below.
const minimal = `{"agents": [{"id": "agent-0", "name": "a", "tool_ids": ["tool-0"], "block_ids": ["block-0"],
  "in_context_message_ids": ["message-0"],
  "messages": [{"id": "message-0", "role": "user", "content": "hi", "created_at": "2025-01-02T03:04:05"}]}],
 "groups": [], "blocks": [{"id": "block-0", "label": "human", "value": "v"}], "files": [], "sources": [],
 "tools": [{"id": "tool-0", "name": "t", "json_schema": {"name": "t"}}], "mcp_servers": []}`

func TestParseMinimal(t *testing.T) {
	f, err := agentfile.Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	m := f.Agents[0].Messages[0]
	if m.Content.Text() != "hi" {
		t.Fatalf("a string content reads as %+v", m.Content)
	}
	at, err := agentfile.ParseTime(m.CreatedAt)
	if err != nil || at.Format("2006-01-02T15:04:05Z07:00") != "2025-01-02T03:04:05Z" {
		t.Fatalf("a time without zone reads as %v, %v", at, err)
	}
	if f.Blocks[0].CharLimit() != agentfile.DefaultBlockLimit {
		t.Fatalf("default limit %d", f.Blocks[0].CharLimit())
	}
}

func TestParseRejects(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			t.Fatalf("minimal has no %q", old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	twice, _ := json.Marshal(minimal)
	thrice, _ := json.Marshal(string(twice))
	for _, c := range []struct {
		name, doc string
		want      error
		detail    string
	}{
		{"empty", "  \n", agentfile.ErrSyntax, "empty"},
		{"not JSON", "{\"agents\": [\n  oops]}", agentfile.ErrSyntax, "line 2, column 3"},
		{"truncated", minimal[:40], agentfile.ErrSyntax, "line 1"},
		{"string of not JSON", `"{\"agents\": ["`, agentfile.ErrSyntax, "in the JSON string"},
		{"encoded three times", string(thrice), agentfile.ErrSyntax, "encoded twice at most"},
		{"array", `[1, 2]`, agentfile.ErrNotAgentFile, "not an object"},
		{"legacy", `{"name": "x", "tools": [], "memory": {}}`, agentfile.ErrNotAgentFile, "no \"agents\" list"},
		{"agents not a list", `{"agents": {}}`, agentfile.ErrNotAgentFile, "no \"agents\" list"},
		{"no agents", `{"agents": []}`, agentfile.ErrInvalid, "no agents"},
		{"wrong type", edit(`"content": "hi"`, `"content": 7`), agentfile.ErrInvalid, "agents[0].messages[0]"},
		{"wrong type of a field", edit(`"name": "a"`, `"name": ["a"]`), agentfile.ErrInvalid, "expected a string, found a JSON array"},
		{"tools not a list", edit(`"tools": [{"id": "tool-0", "name": "t", "json_schema": {"name": "t"}}]`, `"tools": 3`), agentfile.ErrInvalid, "tools: expected a list"},
		{"dangling tool", edit(`"tool_ids": ["tool-0"]`, `"tool_ids": ["tool-9"]`), agentfile.ErrInvalid, `agents[0].tool_ids: "tool-9" names no entity of the file's tools`},
		{"tool id of a block", edit(`"tool_ids": ["tool-0"]`, `"tool_ids": ["block-0"]`), agentfile.ErrInvalid, `"block-0" names no entity of the file's tools`},
		{"dangling block", edit(`"block_ids": ["block-0"]`, `"block_ids": ["block-1"]`), agentfile.ErrInvalid, "block_ids"},
		{"dangling context", edit(`"in_context_message_ids": ["message-0"]`, `"in_context_message_ids": ["message-5"]`), agentfile.ErrInvalid, "in_context_message_ids"},
		{"duplicate id", edit(`{"id": "tool-0"`, `{"id": "block-0"`), agentfile.ErrInvalid, "used twice"},
		{"no id", edit(`{"id": "agent-0", `, `{`), agentfile.ErrInvalid, "agents[0] has no id"},
		{"bad role", edit(`"role": "user"`, `"role": "robot"`), agentfile.ErrInvalid, `role "robot"`},
		{"no label", edit(`"label": "human"`, `"label": ""`), agentfile.ErrInvalid, "blocks[0] has no label"},
		{"negative limit", edit(`"value": "v"`, `"value": "v", "limit": -1`), agentfile.ErrInvalid, "negative"},
	} {
		_, err := agentfile.Parse([]byte(c.doc))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.detail) {
			t.Errorf("%s: Parse = %v; want %v with %q", c.name, err, c.want, c.detail)
		}
	}
	// Twice encoded is fine.
	if _, err := agentfile.Parse(twice); err != nil {
		t.Fatalf("twice encoded: %v", err)
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, agentfile.FileBytesMax+1)
	if _, err := agentfile.Parse(big); !errors.Is(err, agentfile.ErrTooLarge) {
		t.Fatalf("a file of %d bytes: %v", len(big), err)
	}
	var f agentfile.File
	for i := range agentfile.AgentsMax + 1 {
		f.Agents = append(f.Agents, agentfile.Agent{ID: "agent-" + strings.Repeat("x", i+1)})
	}
	if err := agentfile.Validate(&f); !errors.Is(err, agentfile.ErrInvalid) || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("%d agents: %v", len(f.Agents), err)
	}
	// Many problems are listed up to a bound.
	f.Agents = nil
	a := agentfile.Agent{ID: "agent-0"}
	for range 50 {
		a.ToolIDs = append(a.ToolIDs, "tool-x")
	}
	f.Agents = append(f.Agents, a)
	err := agentfile.Validate(&f)
	if !errors.Is(err, agentfile.ErrInvalid) || !strings.Contains(err.Error(), "and 30 more problems") {
		t.Fatalf("50 problems: %v", err)
	}
}

// FuzzParse: no input makes Parse panic, and whatever it accepts, Marshal
// writes and Parse accepts again, unchanged.
func FuzzParse(f *testing.F) {
	f.Add(read(f, memgptFile))
	f.Add(read(f, outreachFile))
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := agentfile.Parse(data)
		if err != nil {
			return
		}
		out, err := agentfile.Marshal(file)
		if err != nil {
			t.Fatalf("Marshal of a parsed file: %v", err)
		}
		again, err := agentfile.Parse(out)
		if err != nil {
			t.Fatalf("Parse of a written file: %v\n%s", err, out)
		}
		out2, err := agentfile.Marshal(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("writing is not stable: %v", err)
		}
	})
}

func BenchmarkParsePublished(b *testing.B) {
	raw := read(b, memgptFile)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := agentfile.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseHistory parses a file with a long history (4000 messages,
// Kelpie's import limit).
func BenchmarkParseHistory(b *testing.B) {
	f, err := agentfile.Parse(read(b, memgptFile))
	if err != nil {
		b.Fatal(err)
	}
	a := &f.Agents[0]
	for i := range 4000 {
		a.Messages = append(a.Messages, agentfile.Message{ID: "message-h" + jsonOf(i), Role: agentfile.RoleUser,
			Content: agentfile.Content{agentfile.TextPart(strings.Repeat("words and more words ", 10))}, CreatedAt: "2025-01-02T03:04:05Z"})
	}
	raw, err := agentfile.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := agentfile.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
