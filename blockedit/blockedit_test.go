package blockedit

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testBlocks is the agent the table tests run against.
func testBlocks() []Block {
	return []Block{
		{Label: "human", Value: "Name: Alice\nLikes: tea", Description: "About the user", Limit: 100},
		{Label: "persona", Value: "I am Sam.", Limit: 100, ReadOnly: true},
		{Label: "empty", Limit: 20},
		{Label: "notes_work", Value: "a\tb", Limit: 100},
	}
}

type applyCase struct {
	name   string
	tool   string
	args   map[string]any
	opts   Options
	want   []Change // on success
	result string   // on success; "=" means the value of the only Set
	err    error    // the error kind, or nil for success
	errHas []string // substrings of the error's message
}

func set(label, value string) []Change { return []Change{{Kind: Set, Label: label, Value: value}} }

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blocks := testBlocks()
			argsJSON, err := json.Marshal(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			changes, result, err := Apply(tc.tool, tc.args, blocks, tc.opts)
			if !reflect.DeepEqual(blocks, testBlocks()) {
				t.Errorf("Apply modified blocks: %+v", blocks)
			}
			if after, _ := json.Marshal(tc.args); string(after) != string(argsJSON) {
				t.Errorf("Apply modified args: %s", after)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want kind %v", err, tc.err)
				}
				if changes != nil || result != "" {
					t.Errorf("an error came with changes %+v and result %q", changes, result)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(changes, tc.want) {
				t.Errorf("changes:\n got %+v\nwant %+v", changes, tc.want)
			}
			want := tc.result
			if want == "=" {
				want = tc.want[0].Value
			}
			if result != want {
				t.Errorf("result = %q, want %q", result, want)
			}
			if _, err := ApplyChanges(blocks, changes); err != nil {
				t.Errorf("the changes do not apply: %v", err)
			}
		})
	}
}

func TestMemoryInsert(t *testing.T) {
	a := func(kv ...any) map[string]any {
		m := map[string]any{"label": "human"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	runApplyCases(t, []applyCase{
		{name: "default end", tool: "memory_insert", args: a("new_string", "Pets: cat"),
			want: set("human", "Name: Alice\nLikes: tea\nPets: cat"), result: "="},
		{name: "minus one", tool: "memory_insert", args: a("new_string", "Pets: cat", "insert_line", -1.0),
			want: set("human", "Name: Alice\nLikes: tea\nPets: cat"), result: "="},
		{name: "top", tool: "memory_insert", args: a("new_string", "# Alice", "insert_line", 0.0),
			want: set("human", "# Alice\nName: Alice\nLikes: tea"), result: "="},
		{name: "after line 1, two lines", tool: "memory_insert", args: a("new_string", "A\nB", "insert_line", 1.0),
			want: set("human", "Name: Alice\nA\nB\nLikes: tea"), result: "="},
		{name: "after last line", tool: "memory_insert", args: a("new_string", "Z", "insert_line", 2.0),
			want: set("human", "Name: Alice\nLikes: tea\nZ"), result: "="},
		{name: "line as json.Number", tool: "memory_insert", args: a("new_string", "Z", "insert_line", json.Number("1")),
			want: set("human", "Name: Alice\nZ\nLikes: tea"), result: "="},
		{name: "line as digit string", tool: "memory_insert", args: a("new_string", "Z", "insert_line", " 1 "),
			want: set("human", "Name: Alice\nZ\nLikes: tea"), result: "="},
		{name: "empty block at end", tool: "memory_insert", args: map[string]any{"label": "empty", "new_string": "x"},
			want: set("empty", "x"), result: "="},
		{name: "empty block line 1", tool: "memory_insert", args: map[string]any{"label": "empty", "new_string": "x", "insert_line": 1.0},
			want: set("empty", "x"), result: "="},
		{name: "empty block line 2", tool: "memory_insert", args: map[string]any{"label": "empty", "new_string": "x", "insert_line": 2.0},
			err: ErrArgument, errHas: []string{"insert_line 2", "0 (before the first line) to 1"}},
		{name: "older name", tool: "memory_insert", args: a("new_str", "Z"),
			want: set("human", "Name: Alice\nLikes: tea\nZ"), result: "="},
		{name: "both names, same", tool: "memory_insert", args: a("new_str", "Z", "new_string", "Z"),
			want: set("human", "Name: Alice\nLikes: tea\nZ"), result: "="},
		{name: "both names, different", tool: "memory_insert", args: a("new_str", "Z", "new_string", "Y"),
			err: ErrArgument, errHas: []string{"new_string", "new_str", "different values"}},
		{name: "null counts as absent", tool: "memory_insert", args: a("new_str", "Z", "new_string", nil),
			want: set("human", "Name: Alice\nLikes: tea\nZ"), result: "="},
		{name: "tabs expanded", tool: "memory_insert", args: map[string]any{"label": "notes_work", "new_string": "\tc"},
			want: set("notes_work", "a       b\n        c"), result: "="},
		{name: "line too far", tool: "memory_insert", args: a("new_string", "x", "insert_line", 3.0),
			err: ErrArgument, errHas: []string{"insert_line 3", "0 (before the first line) to 2", "-1 for the end"}},
		{name: "line below minus one", tool: "memory_insert", args: a("new_string", "x", "insert_line", -2.0),
			err: ErrArgument, errHas: []string{"insert_line -2"}},
		{name: "fractional line", tool: "memory_insert", args: a("new_string", "x", "insert_line", 0.5),
			err: ErrArgument, errHas: []string{"whole number", "0.5"}},
		{name: "huge line", tool: "memory_insert", args: a("new_string", "x", "insert_line", 1e300),
			err: ErrArgument, errHas: []string{"whole number"}},
		{name: "boolean line", tool: "memory_insert", args: a("new_string", "x", "insert_line", true),
			err: ErrArgument, errHas: []string{"whole number", "a boolean"}},
		{name: "missing text", tool: "memory_insert", args: a(),
			err: ErrArgument, errHas: []string{"new_string is required"}},
		{name: "missing label", tool: "memory_insert", args: map[string]any{"new_string": "x"},
			err: ErrArgument, errHas: []string{"label is required"}},
		{name: "label not a string", tool: "memory_insert", args: map[string]any{"label": 3.0, "new_string": "x"},
			err: ErrArgument, errHas: []string{"label must be a string", "a number"}},
		{name: "unknown label", tool: "memory_insert", args: map[string]any{"label": "nobody", "new_string": "x"},
			err: ErrNoBlock, errHas: []string{`"nobody" does not exist`, `"human", "persona", "empty", "notes_work"`}},
		{name: "read-only", tool: "memory_insert", args: map[string]any{"label": "persona", "new_string": "x"},
			err: ErrReadOnly, errHas: []string{`"persona" is read-only`}},
		{name: "over limit", tool: "memory_insert", args: map[string]any{"label": "empty", "new_string": strings.Repeat("é", 21)},
			err: ErrLimit, errHas: []string{"21 characters", "limit of 20", "nothing was changed"}},
		{name: "at limit in characters, not bytes", tool: "memory_insert", args: map[string]any{"label": "empty", "new_string": strings.Repeat("é", 20)},
			want: set("empty", strings.Repeat("é", 20)), result: "="},
		{name: "arrow prefix", tool: "memory_insert", args: a("new_string", "ok\n  12→ x"),
			err: ErrLineNumbers, errHas: []string{"new_string", "12→"}},
		{name: "Line N prefix", tool: "memory_insert", args: a("new_string", "Line 4: x"),
			err: ErrLineNumbers, errHas: []string{"Line 4: "}},
		{name: "banner", tool: "memory_insert", args: a("new_string", "# NOTE: Line numbers shown below (with arrows) are…"),
			err: ErrLineNumbers, errHas: []string{"note"}},
		{name: "arrow not at line start is text", tool: "memory_insert", args: a("new_string", "step 1→2"),
			want: set("human", "Name: Alice\nLikes: tea\nstep 1→2"), result: "="},
		{name: "argument over its bound", tool: "memory_insert", args: a("new_string", "0123456789"), opts: Options{ArgBytesMax: 9},
			err: ErrLimit, errHas: []string{"new_string is 10 bytes", "limit of 9"}},
		{name: "invalid UTF-8", tool: "memory_insert", args: a("new_string", "a\xffb"),
			err: ErrArgument, errHas: []string{"not valid UTF-8"}},
	})
}

func TestMemoryReplace(t *testing.T) {
	a := func(kv ...any) map[string]any {
		m := map[string]any{"label": "human"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	runApplyCases(t, []applyCase{
		{name: "once", tool: "memory_replace", args: a("old_string", "tea", "new_string", "coffee"),
			want: set("human", "Name: Alice\nLikes: coffee"), result: "="},
		{name: "multi-line", tool: "memory_replace", args: a("old_string", "Alice\nLikes", "new_string", "Bob\nLoves"),
			want: set("human", "Name: Bob\nLoves: tea"), result: "="},
		{name: "delete", tool: "memory_replace", args: a("old_string", "\nLikes: tea", "new_string", ""),
			want: set("human", "Name: Alice"), result: "="},
		{name: "older names", tool: "memory_replace", args: a("old_str", "tea", "new_str", "milk"),
			want: set("human", "Name: Alice\nLikes: milk"), result: "="},
		{name: "mixed names", tool: "memory_replace", args: a("old_str", "tea", "new_string", "milk"),
			want: set("human", "Name: Alice\nLikes: milk"), result: "="},
		{name: "old names differ", tool: "memory_replace", args: a("old_str", "tea", "old_string", "Alice", "new_string", "x"),
			err: ErrArgument, errHas: []string{"old_string and old_str"}},
		{name: "tab in old matches expanded block", tool: "memory_replace", args: map[string]any{"label": "notes_work", "old_string": "a\tb", "new_string": "c"},
			want: set("notes_work", "c"), result: "="},
		{name: "not found", tool: "memory_replace", args: a("old_string", "Bob", "new_string", "x"),
			err: ErrNotFound, errHas: []string{`old_string "Bob" does not occur`, `"human"`}},
		{name: "case matters", tool: "memory_replace", args: a("old_string", "alice", "new_string", "x"),
			err: ErrNotFound},
		{name: "twice", tool: "memory_replace", args: a("old_string", "e", "new_string", "x"),
			err: ErrAmbiguous, errHas: []string{"occurs 4 times", "(starting on lines 1, 2)"}},
		{name: "empty old", tool: "memory_replace", args: a("old_string", "", "new_string", "x"),
			err: ErrArgument, errHas: []string{"old_string is empty"}},
		{name: "empty old in empty block", tool: "memory_replace", args: map[string]any{"label": "empty", "old_string": "", "new_string": "x"},
			err: ErrArgument},
		{name: "missing new", tool: "memory_replace", args: a("old_string", "tea"),
			err: ErrArgument, errHas: []string{"new_string is required"}},
		{name: "missing old", tool: "memory_replace", args: a("new_string", "tea"),
			err: ErrArgument, errHas: []string{"old_string is required"}},
		{name: "over limit", tool: "memory_replace", args: a("old_string", "tea", "new_string", strings.Repeat("x", 90)),
			err: ErrLimit, errHas: []string{"109 characters", "limit of 100"}},
		{name: "prefix in old", tool: "memory_replace", args: a("old_string", "2→ Likes: tea", "new_string", "x"),
			err: ErrLineNumbers, errHas: []string{"old_string"}},
		{name: "prefix in new", tool: "memory_replace", args: a("old_string", "tea", "new_string", "a\n3→ b"),
			err: ErrLineNumbers, errHas: []string{"new_string"}},
		{name: "banner in old", tool: "memory_replace", args: a("old_string", "# NOTE: Line numbers shown below\ntea", "new_string", "x"),
			err: ErrLineNumbers, errHas: []string{"old_string"}},
		{name: "read-only", tool: "memory_replace", args: map[string]any{"label": "persona", "old_string": "Sam", "new_string": "Bob"},
			err: ErrReadOnly},
		{name: "unknown label", tool: "memory_replace", args: map[string]any{"label": "x", "old_string": "a", "new_string": "b"},
			err: ErrNoBlock, errHas: []string{`"human"`}},
		{name: "long text quoted short", tool: "memory_replace", args: a("old_string", strings.Repeat("q", 5000), "new_string", "x"),
			err: ErrNotFound, errHas: []string{"… (5000 characters)"}},
	})
}

func TestRethinkFinishCore(t *testing.T) {
	runApplyCases(t, []applyCase{
		{name: "rethink", tool: "memory_rethink", args: map[string]any{"label": "human", "new_memory": "Name: Bob"},
			want: set("human", "Name: Bob"), result: "="},
		{name: "rethink keeps tabs", tool: "memory_rethink", args: map[string]any{"label": "human", "new_memory": "a\tb"},
			want: set("human", "a\tb"), result: "="},
		{name: "rethink to empty", tool: "memory_rethink", args: map[string]any{"label": "human", "new_memory": ""},
			want: set("human", ""), result: ""},
		{name: "rethink over limit", tool: "memory_rethink", args: map[string]any{"label": "empty", "new_memory": strings.Repeat("x", 21)},
			err: ErrLimit},
		{name: "rethink read-only", tool: "memory_rethink", args: map[string]any{"label": "persona", "new_memory": "x"},
			err: ErrReadOnly},
		{name: "rethink unknown", tool: "memory_rethink", args: map[string]any{"label": "x", "new_memory": "x"},
			err: ErrNoBlock},
		{name: "rethink prefix", tool: "memory_rethink", args: map[string]any{"label": "human", "new_memory": "1→ a"},
			err: ErrLineNumbers, errHas: []string{"new_memory"}},
		{name: "rethink missing", tool: "memory_rethink", args: map[string]any{"label": "human"},
			err: ErrArgument, errHas: []string{"new_memory is required"}},
		{name: "finish", tool: "memory_finish_edits", args: map[string]any{"request_heartbeat": true}, want: nil, result: ""},
		{name: "finish nil args", tool: "memory_finish_edits", args: nil, want: nil, result: ""},
		{name: "append", tool: "core_memory_append", args: map[string]any{"label": "human", "content": "Pets: cat"},
			want: set("human", "Name: Alice\nLikes: tea\nPets: cat"), result: "="},
		{name: "append to empty", tool: "core_memory_append", args: map[string]any{"label": "empty", "content": "x"},
			want: set("empty", "x"), result: "="},
		{name: "append keeps tabs", tool: "core_memory_append", args: map[string]any{"label": "notes_work", "content": "\t"},
			want: set("notes_work", "a\tb\n\t"), result: "="},
		{name: "append over limit", tool: "core_memory_append", args: map[string]any{"label": "empty", "content": strings.Repeat("x", 21)},
			err: ErrLimit},
		{name: "append read-only", tool: "core_memory_append", args: map[string]any{"label": "persona", "content": "x"},
			err: ErrReadOnly},
		{name: "append unknown", tool: "core_memory_append", args: map[string]any{"label": "x", "content": "x"},
			err: ErrNoBlock},
		{name: "append missing", tool: "core_memory_append", args: map[string]any{"label": "human"},
			err: ErrArgument, errHas: []string{"content is required"}},
		{name: "replace all", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "e", "new_content": "E"},
			want: set("human", "NamE: AlicE\nLikEs: tEa"), result: "="},
		{name: "replace delete", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "Name: Alice\n", "new_content": ""},
			want: set("human", "Likes: tea"), result: "="},
		{name: "replace not found", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "Bob", "new_content": "x"},
			err: ErrNotFound, errHas: []string{`old_content "Bob"`}},
		{name: "replace empty old", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "", "new_content": "x"},
			err: ErrArgument},
		{name: "replace missing new", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "tea"},
			err: ErrArgument, errHas: []string{"new_content is required"}},
		{name: "replace read-only", tool: "core_memory_replace", args: map[string]any{"label": "persona", "old_content": "Sam", "new_content": "x"},
			err: ErrReadOnly},
		{name: "replace over limit", tool: "core_memory_replace", args: map[string]any{"label": "human", "old_content": "e", "new_content": strings.Repeat("x", 30)},
			err: ErrLimit},
		{name: "unknown tool", tool: "send_message", args: map[string]any{"message": "hi"},
			err: ErrUnknownTool, errHas: []string{`"send_message"`}},
	})
}

func TestMemoryTool(t *testing.T) {
	m := func(kv ...any) map[string]any {
		a := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			a[kv[i].(string)] = kv[i+1]
		}
		return a
	}
	runApplyCases(t, []applyCase{
		{name: "create", tool: "memory", args: m("command", "create", "path", "/memories/prefs", "description", "Prefs", "file_text", "tabs"),
			want:   []Change{{Kind: Create, Label: "prefs", Value: "tabs", Description: "Prefs", Limit: DefaultLimitChars}},
			result: `Created memory block "prefs"; it is now part of your core memory.`},
		{name: "create with the agent's limit", tool: "memory", opts: Options{DefaultLimitChars: 5000},
			args:   m("command", "create", "path", "/prefs", "description", ""),
			want:   []Change{{Kind: Create, Label: "prefs", Limit: 5000}},
			result: `Created memory block "prefs"; it is now part of your core memory.`},
		{name: "create keeps slash", tool: "memory", args: m("command", "create", "path", "/memories/a/b", "description", "x"),
			want:   []Change{{Kind: Create, Label: "a/b", Description: "x", Limit: DefaultLimitChars}},
			result: `Created memory block "a/b"; it is now part of your core memory.`},
		{name: "create exists", tool: "memory", args: m("command", "create", "path", "/memories/human", "description", "x"),
			err: ErrExists, errHas: []string{`"human" already exists`}},
		{name: "create no description", tool: "memory", args: m("command", "create", "path", "/memories/x"),
			err: ErrArgument, errHas: []string{"description is required"}},
		{name: "create no path", tool: "memory", args: m("command", "create", "description", "x"),
			err: ErrArgument, errHas: []string{"path is required"}},
		{name: "create empty label", tool: "memory", args: m("command", "create", "path", "/memories/", "description", "x"),
			err: ErrArgument, errHas: []string{"names no block"}},
		{name: "create label too long", tool: "memory", opts: Options{LabelBytesMax: 4},
			args: m("command", "create", "path", "/memories/abcde", "description", "x"),
			err:  ErrLimit, errHas: []string{"5 bytes", "limit of 4"}},
		{name: "create newline label", tool: "memory", args: m("command", "create", "path", "/memories/a\nb", "description", "x"),
			err: ErrArgument, errHas: []string{"control character"}},
		{name: "create too many", tool: "memory", opts: Options{BlocksMax: 4},
			args: m("command", "create", "path", "/memories/x", "description", "x"),
			err:  ErrLimit, errHas: []string{"already has 4 blocks"}},
		{name: "create over limit", tool: "memory", opts: Options{DefaultLimitChars: 3},
			args: m("command", "create", "path", "/memories/x", "description", "x", "file_text", "abcd"),
			err:  ErrLimit, errHas: []string{"4 characters", "limit of 3"}},
		{name: "create description too long", tool: "memory", opts: Options{DescriptionBytesMax: 3},
			args: m("command", "create", "path", "/memories/x", "description", "abcd"),
			err:  ErrLimit, errHas: []string{"description is 4 bytes"}},
		{name: "str_replace", tool: "memory", args: m("command", "str_replace", "path", "/memories/human", "old_string", "tea", "new_string", "gin"),
			want: set("human", "Name: Alice\nLikes: gin"), result: "="},
		{name: "str_replace older names", tool: "memory", args: m("command", "str_replace", "path", "human", "old_str", "tea", "new_str", "gin"),
			want: set("human", "Name: Alice\nLikes: gin"), result: "="},
		{name: "str_replace slash finds underscore", tool: "memory", args: m("command", "str_replace", "path", "/memories/notes/work", "old_string", "a", "new_string", "z"),
			want: set("notes_work", "z       b"), result: "="},
		{name: "str_replace missing old", tool: "memory", args: m("command", "str_replace", "path", "/memories/human", "new_string", "x"),
			err: ErrArgument, errHas: []string{"old_string is required"}},
		{name: "str_replace ambiguous", tool: "memory", args: m("command", "str_replace", "path", "/memories/human", "old_string", "i", "new_string", "x"),
			err: ErrAmbiguous, errHas: []string{"occurs 2 times"}},
		{name: "str_replace unknown", tool: "memory", args: m("command", "str_replace", "path", "/memories/nobody", "old_string", "i", "new_string", "x"),
			err: ErrNoBlock, errHas: []string{`"nobody"`}},
		{name: "insert", tool: "memory", args: m("command", "insert", "path", "/memories/human", "insert_text", "Pets: cat", "insert_line", 1.0),
			want: set("human", "Name: Alice\nPets: cat\nLikes: tea"), result: "="},
		{name: "insert default end", tool: "memory", args: m("command", "insert", "path", "/memories/human", "insert_text", "Pets: cat"),
			want: set("human", "Name: Alice\nLikes: tea\nPets: cat"), result: "="},
		{name: "insert missing text", tool: "memory", args: m("command", "insert", "path", "/memories/human"),
			err: ErrArgument, errHas: []string{"insert_text is required"}},
		{name: "insert out of range", tool: "memory", args: m("command", "insert", "path", "/memories/human", "insert_text", "x", "insert_line", 9.0),
			err: ErrArgument, errHas: []string{"insert_line 9"}},
		{name: "insert prefix", tool: "memory", args: m("command", "insert", "path", "/memories/human", "insert_text", "1→ x"),
			err: ErrLineNumbers, errHas: []string{"insert_text"}},
		{name: "delete", tool: "memory", args: m("command", "delete", "path", "/memories/empty"),
			want:   []Change{{Kind: Delete, Label: "empty"}},
			result: `Deleted memory block "empty"; it is no longer part of your core memory.`},
		{name: "delete unknown", tool: "memory", args: m("command", "delete", "path", "/memories/nobody"),
			err: ErrNoBlock},
		{name: "delete read-only", tool: "memory", args: m("command", "delete", "path", "/memories/persona"),
			err: ErrReadOnly},
		{name: "rename", tool: "memory", args: m("command", "rename", "old_path", "/memories/empty", "new_path", "/memories/blank"),
			want:   []Change{{Kind: Rename, Label: "empty", NewLabel: "blank"}},
			result: `Renamed memory block "empty" to "blank".`},
		{name: "describe", tool: "memory", args: m("command", "rename", "path", "/memories/human", "description", "The user"),
			want:   []Change{{Kind: Describe, Label: "human", Description: "The user"}},
			result: `Updated the description of memory block "human".`},
		{name: "describe and rename", tool: "memory", args: m("command", "rename", "path", "/memories/human", "description", "The user", "old_path", "/memories/human", "new_path", "/memories/user"),
			want:   []Change{{Kind: Describe, Label: "human", Description: "The user"}, {Kind: Rename, Label: "human", NewLabel: "user"}},
			result: `Updated the description of memory block "human". Renamed memory block "human" to "user".`},
		{name: "rename second fails, first dropped", tool: "memory", args: m("command", "rename", "path", "/memories/human", "description", "The user", "old_path", "/memories/human", "new_path", "/memories/empty"),
			err: ErrExists},
		{name: "rename empty description only", tool: "memory", args: m("command", "rename", "path", "/memories/human", "description", ""),
			err: ErrArgument, errHas: []string{"old_path and new_path"}},
		{name: "rename onto itself", tool: "memory", args: m("command", "rename", "old_path", "/memories/human", "new_path", "/memories/human"),
			err: ErrArgument, errHas: []string{"already has that label"}},
		{name: "rename read-only", tool: "memory", args: m("command", "rename", "old_path", "/memories/persona", "new_path", "/memories/me"),
			err: ErrReadOnly},
		{name: "describe read-only", tool: "memory", args: m("command", "rename", "path", "/memories/persona", "description", "x"),
			err: ErrReadOnly},
		{name: "unknown command", tool: "memory", args: m("command", "view", "path", "/memories/human"),
			err: ErrArgument, errHas: []string{`"view"`, "create, str_replace, insert, delete, rename"}},
		{name: "no command", tool: "memory", args: m("path", "/memories/human"),
			err: ErrArgument, errHas: []string{"command is required"}},
	})
}

func TestMemoryApplyPatch(t *testing.T) {
	p := func(label, patch string) map[string]any { return map[string]any{"label": label, "patch": patch} }
	runApplyCases(t, []applyCase{
		{name: "single", tool: "memory_apply_patch", args: p("human", "@@\n Name: Alice\n-Likes: tea\n+Likes: gin\n"),
			want: set("human", "Name: Alice\nLikes: gin"), result: "="},
		{name: "single two hunks", tool: "memory_apply_patch", args: p("human", "@@\n-Name: Alice\n+Name: Bo\n@@\n-Likes: tea\n+Likes: gin"),
			want: set("human", "Name: Bo\nLikes: gin"), result: "="},
		{name: "single insert at top", tool: "memory_apply_patch", args: p("human", "@@\n+# Alice\n Name: Alice"),
			want: set("human", "# Alice\nName: Alice\nLikes: tea"), result: "="},
		{name: "single append", tool: "memory_apply_patch", args: p("human", "+Pets: cat"),
			want: set("human", "Name: Alice\nLikes: tea\nPets: cat"), result: "="},
		{name: "single begin/end markers", tool: "memory_apply_patch", args: p("human", "*** Begin Patch\n@@\n-Likes: tea\n*** End Patch\n"),
			want: set("human", "Name: Alice"), result: "="},
		{name: "multi", tool: "memory_apply_patch",
			args: p("", "*** Begin Patch\n*** Add Block: x\nDescription: An x\n+1\n+2\n*** Update Block: human\n@@\n-Likes: tea\n+Likes: gin\n*** Move to: user\n*** Delete Block: empty\n*** End Patch"),
			want: []Change{
				{Kind: Create, Label: "x", Value: "1\n2", Description: "An x", Limit: DefaultLimitChars},
				{Kind: Set, Label: "human", Value: "Name: Alice\nLikes: gin"},
				{Kind: Rename, Label: "human", NewLabel: "user"},
				{Kind: Delete, Label: "empty"},
			},
			result: "Applied the memory patch; your core memory now shows the result:\n- created block \"x\"\n- updated block \"human\" and renamed it to \"user\"\n- deleted block \"empty\""},
		{name: "add trailing empty lines dropped", tool: "memory_apply_patch", args: p("", "*** Add Block: x\n+a\n+\n+\n"),
			want:   []Change{{Kind: Create, Label: "x", Value: "a", Limit: DefaultLimitChars}},
			result: "Applied the memory patch; your core memory now shows the result:\n- created block \"x\""},
		{name: "not found", tool: "memory_apply_patch", args: p("human", "@@\n-Likes: coffee\n+Likes: gin"),
			err: ErrNotFound, errHas: []string{"hunk 1 (line 2 of the patch)", `"Likes: coffee"`}},
		{name: "ambiguous", tool: "memory_apply_patch", args: p("", "*** Add Block: x\n+a\n+a\n*** Update Block: x\n@@\n-a\n+b"),
			err: ErrAmbiguous, errHas: []string{"matches 2 places", "lines 1, 2", "no block changed"}},
		{name: "overlapping matches counted", tool: "memory_apply_patch", args: p("", "*** Add Block: x\n+a\n+a\n+a\n*** Update Block: x\n@@\n a\n-a"),
			err: ErrAmbiguous, errHas: []string{"matches 2 places"}},
		{name: "no hunk", tool: "memory_apply_patch", args: p("human", "hello"),
			err: ErrPatch, errHas: []string{"no hunk"}},
		{name: "bad hunk line", tool: "memory_apply_patch", args: p("human", "@@\n-Likes: tea\nLikes: gin"),
			err: ErrPatch, errHas: []string{"line 3 of the patch"}},
		{name: "unknown header", tool: "memory_apply_patch", args: p("", "*** Update Block: human\n*** Remove Block: empty"),
			err: ErrPatch, errHas: []string{`"*** Remove Block: empty"`, "not a patch header"}},
		{name: "prefix after plus", tool: "memory_apply_patch", args: p("human", "+1→ x"),
			err: ErrLineNumbers},
		{name: "banner", tool: "memory_apply_patch", args: p("human", "# NOTE: Line numbers shown below are\n+x"),
			err: ErrLineNumbers},
		{name: "over limit", tool: "memory_apply_patch", args: p("empty", "+"+strings.Repeat("x", 21)),
			err: ErrLimit},
		{name: "read-only", tool: "memory_apply_patch", args: p("persona", "+x"),
			err: ErrReadOnly},
		{name: "unknown block", tool: "memory_apply_patch", args: p("nobody", "+x"),
			err: ErrNoBlock},
		{name: "too many hunks", tool: "memory_apply_patch", args: p("human", strings.Repeat("@@\n+x\n", patchHunksMax+1)),
			err: ErrLimit, errHas: []string{"more than 256 hunks"}},
		{name: "many hunks", tool: "memory_apply_patch", args: p("empty", strings.Repeat("@@\n+x\n", 10)),
			want: set("empty", strings.Repeat("x\n", 9)+"x"), result: "="},
		{name: "too many sections", tool: "memory_apply_patch", args: p("", strings.Repeat("*** Delete Block: human\n", patchSectionsMax+1)),
			err: ErrLimit, errHas: []string{"more than 256 sections"}},
		{name: "too many hunks over sections", tool: "memory_apply_patch", args: p("", strings.Repeat("*** Update Block: human\n"+strings.Repeat("@@\n+x\n", 100), 3)),
			err: ErrLimit, errHas: []string{"more than 256 hunks"}},
	})
}

// TestApplyChanges checks the helper that replays changes, and that it
// refuses changes that do not fit the blocks.
func TestApplyChanges(t *testing.T) {
	blocks := []Block{{Label: "a", Value: "1", Limit: 10}, {Label: "b", Value: "2", Limit: 10, ReadOnly: true}}
	got, err := ApplyChanges(blocks, []Change{
		{Kind: Set, Label: "a", Value: "x"},
		{Kind: Describe, Label: "b", Description: "B"},
		{Kind: Create, Label: "c", Value: "3", Description: "C", Limit: 7},
		{Kind: Rename, Label: "a", NewLabel: "d"},
		{Kind: Delete, Label: "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{{Label: "d", Value: "x", Limit: 10}, {Label: "c", Value: "3", Description: "C", Limit: 7}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if blocks[0].Value != "1" || len(blocks) != 2 {
		t.Errorf("ApplyChanges modified its argument: %+v", blocks)
	}
	for _, bad := range [][]Change{
		{{Kind: Set, Label: "z"}},
		{{Kind: Create, Label: "a"}},
		{{Kind: Rename, Label: "a", NewLabel: "b"}},
		{{Kind: Delete, Label: "a"}, {Kind: Set, Label: "a"}},
		{{Kind: ChangeKind(99), Label: "a"}},
	} {
		if _, err := ApplyChanges(blocks, bad); err == nil {
			t.Errorf("ApplyChanges(%+v) succeeded", bad)
		}
	}
	if s := ChangeKind(99).String(); s != "ChangeKind(99)" {
		t.Errorf("String = %q", s)
	}
	if s := Rename.String(); s != "rename" {
		t.Errorf("String = %q", s)
	}
}

// TestTools checks the schemas against Letta 0.16.8's parameter names,
// types and required lists.
func TestTools(t *testing.T) {
	type param struct{ name, typ string }
	letta := map[string]struct {
		params   []param
		required []string
	}{
		"memory_insert":       {[]param{{"label", "string"}, {"new_string", "string"}, {"insert_line", "integer"}}, []string{"label", "new_string"}},
		"memory_replace":      {[]param{{"label", "string"}, {"old_string", "string"}, {"new_string", "string"}}, []string{"label", "old_string", "new_string"}},
		"memory_rethink":      {[]param{{"label", "string"}, {"new_memory", "string"}}, []string{"label", "new_memory"}},
		"memory_finish_edits": {nil, []string{}},
		"core_memory_append":  {[]param{{"label", "string"}, {"content", "string"}}, []string{"label", "content"}},
		"core_memory_replace": {[]param{{"label", "string"}, {"old_content", "string"}, {"new_content", "string"}}, []string{"label", "old_content", "new_content"}},
		"memory": {[]param{{"command", "string"}, {"path", "string"}, {"file_text", "string"}, {"description", "string"},
			{"old_string", "string"}, {"new_string", "string"}, {"insert_line", "integer"}, {"insert_text", "string"},
			{"old_path", "string"}, {"new_path", "string"}}, []string{"command"}},
		"memory_apply_patch": {[]param{{"label", "string"}, {"patch", "string"}}, []string{"label", "patch"}},
	}
	tools := Tools()
	if len(tools) != len(letta) {
		t.Errorf("%d tools, want %d", len(tools), len(letta))
	}
	for _, tool := range tools {
		want, ok := letta[tool.Name]
		if !ok {
			t.Errorf("unexpected tool %q", tool.Name)
			continue
		}
		if !Is(tool.Name) {
			t.Errorf("Is(%q) = false", tool.Name)
		}
		if len(tool.Description) < 40 {
			t.Errorf("%s: description %q is too thin", tool.Name, tool.Description)
		}
		var schema struct {
			Type       string `json:"type"`
			Properties map[string]struct {
				Type        string   `json:"type"`
				Description string   `json:"description"`
				Enum        []string `json:"enum"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		dec := json.NewDecoder(strings.NewReader(string(tool.Parameters)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&schema); err != nil {
			t.Errorf("%s: parameters: %v", tool.Name, err)
			continue
		}
		if schema.Type != "object" {
			t.Errorf("%s: type %q", tool.Name, schema.Type)
		}
		if len(schema.Properties) != len(want.params) {
			t.Errorf("%s: %d properties, want %d", tool.Name, len(schema.Properties), len(want.params))
		}
		for _, p := range want.params {
			got, ok := schema.Properties[p.name]
			switch {
			case !ok:
				t.Errorf("%s: no parameter %s", tool.Name, p.name)
			case got.Type != p.typ:
				t.Errorf("%s.%s: type %q, want %q", tool.Name, p.name, got.Type, p.typ)
			case got.Description == "":
				t.Errorf("%s.%s: no description", tool.Name, p.name)
			}
		}
		if tool.Name == "memory" && !slices.Equal(schema.Properties["command"].Enum, memoryCommands) {
			t.Errorf("memory: command enum %v, want %v", schema.Properties["command"].Enum, memoryCommands)
		}
		if !slices.Equal(schema.Required, want.required) {
			t.Errorf("%s: required %v, want %v", tool.Name, schema.Required, want.required)
		}
	}
	for _, name := range []string{"send_message", "archival_memory_insert", "", "Memory"} {
		if Is(name) {
			t.Errorf("Is(%q) = true", name)
		}
	}
	// Tools returns a fresh slice each time.
	tools[0].Name = "changed"
	if Tools()[0].Name == "changed" {
		t.Error("Tools shares its result")
	}
}

func TestExpandTabs(t *testing.T) {
	// Expected values follow Python's str.expandtabs() (tab size 8).
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no tabs", "no tabs"},
		{"\t", "        "},
		{"a\tb", "a       b"},
		{"abcdefgh\tx", "abcdefgh        x"},
		{"abcdefg\tx", "abcdefg x"},
		{"ab\ncd\tx", "ab\ncd      x"},
		{"ab\rc\td", "ab\rc       d"},
		{"é\tx", "é       x"},
		{"\t\t", "                "},
	} {
		if got := expandTabs(tc.in); got != tc.want {
			t.Errorf("expandTabs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFindLines checks the linear-time line matcher against a direct
// search over random line lists drawn from a small alphabet, so that
// partial and overlapping matches are common.
func TestFindLines(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "", "a "}
	pick := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[rng.IntN(len(words))]
		}
		return out
	}
	for range 5000 {
		hay, needle := pick(rng.IntN(12)), pick(1+rng.IntN(4))
		var wantStarts []int
		for i := 0; i+len(needle) <= len(hay); i++ {
			if slices.Equal(hay[i:i+len(needle)], needle) {
				wantStarts = append(wantStarts, i)
			}
		}
		nums := lineNumbers{}
		starts, n := findLines(nums.of(hay), nums.of(needle))
		if n != len(wantStarts) || !slices.Equal(starts, wantStarts[:min(len(wantStarts), linesListMax)]) {
			t.Fatalf("findLines(%q, %q) = %v, %d; want %v", hay, needle, starts, n, wantStarts)
		}
	}
}

func TestOccurrenceLines(t *testing.T) {
	for _, tc := range []struct{ s, sub, want string }{
		{"x\nx\nx", "x", "1, 2, 3"},
		{"xx\nx", "x", "1, 2"},
		{"ab\nab", "b\na", "1"},
		{"a\nb\na\nb\na", "a\nb", "1, 3"},
		{strings.Repeat("z\n", 20), "z", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, …"},
	} {
		if got := occurrenceLines(tc.s, tc.sub); got != tc.want {
			t.Errorf("occurrenceLines(%q, %q) = %q, want %q", tc.s, tc.sub, got, tc.want)
		}
	}
}

// TestErrorKinds checks that each failure is an *Error whose kind
// errors.Is finds, and whose text carries no package prefix.
func TestErrorKinds(t *testing.T) {
	_, _, err := Apply("memory_replace", map[string]any{"label": "nobody", "old_string": "a", "new_string": "b"}, testBlocks(), Options{})
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrNoBlock {
		t.Fatalf("err = %#v", err)
	}
	if strings.HasPrefix(err.Error(), "blockedit:") {
		t.Errorf("message %q starts with the package name", err)
	}
	wrapped := fmt.Errorf("tool: %w", err)
	if !errors.Is(wrapped, ErrNoBlock) || errors.Is(wrapped, ErrReadOnly) {
		t.Error("errors.Is does not see through a wrap")
	}
}

func BenchmarkApplyPatch(b *testing.B) {
	var lines []string
	for i := range 5000 {
		lines = append(lines, fmt.Sprintf("line %d of the block", i))
	}
	blocks := []Block{{Label: "big", Value: strings.Join(lines, "\n"), Limit: 1 << 20}}
	patch := "@@\n line 2499 of the block\n-line 2500 of the block\n+line 2500, edited\n line 2501 of the block\n"
	args := map[string]any{"label": "big", "patch": patch}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Apply("memory_apply_patch", args, blocks, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryReplace(b *testing.B) {
	blocks := []Block{{Label: "big", Value: strings.Repeat("some text here\n", 5000) + "needle", Limit: 1 << 20}}
	args := map[string]any{"label": "big", "old_string": "needle", "new_string": "pin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Apply("memory_replace", args, blocks, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyPatchWorstCase measures the costliest patch the bounds
// allow: patchHunksMax hunks, each matched against a block at the largest
// character limit the agent allows (1 MiB characters), in 512 Ki lines.
func BenchmarkApplyPatchWorstCase(b *testing.B) {
	const lines = 1<<19 - 1024
	var value, patch strings.Builder
	for range lines - patchHunksMax {
		value.WriteString(".\n")
	}
	for i := range patchHunksMax {
		fmt.Fprintf(&value, "%x\n", i)
		fmt.Fprintf(&patch, "@@\n-%x\n+%x\n", i, i)
	}
	blocks := []Block{{Label: "big", Value: strings.TrimSuffix(value.String(), "\n"), Limit: 1 << 20}}
	args := map[string]any{"label": "big", "patch": patch.String()}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Apply("memory_apply_patch", args, blocks, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
