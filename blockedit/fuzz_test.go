package blockedit

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzOpts keeps the fuzzed agents small, so that limits are often hit.
var fuzzOpts = Options{BlocksMax: 4, DefaultLimitChars: 40}

// fuzzBlocks returns the agent a fuzzed call runs on, its block "a"
// holding value (made valid UTF-8 and cut to the limit, as an agent's
// blocks always are).
func fuzzBlocks(value string) []Block {
	const limit = 64
	r := []rune(strings.ToValidUTF8(value, "?"))
	return []Block{
		{Label: "a", Value: string(r[:min(len(r), limit)]), Limit: limit},
		{Label: "ro", Value: "fixed\nlines", Limit: 64, ReadOnly: true},
		{Label: "b", Value: "one\ntwo\none", Limit: 32},
	}
}

// checkCall checks what every call must satisfy, whatever its input: an
// error is a typed *Error with no changes; a success's changes apply to
// the blocks, change no read-only block, and leave every value within its
// limit, every label unique and the blocks within BlocksMax.
func checkCall(t *testing.T, blocks []Block, changes []Change, result string, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || !slices.ContainsFunc(errKinds, func(k struct {
			err  error
			name string
		}) bool {
			return e.Kind == k.err
		}) {
			t.Fatalf("untyped error %#v", err)
		}
		if changes != nil || result != "" {
			t.Fatalf("error %v came with changes %+v / result %q", err, changes, result)
		}
		if e.Msg == "" {
			t.Fatal("empty error message")
		}
		return
	}
	after, aerr := ApplyChanges(blocks, changes)
	if aerr != nil {
		t.Fatalf("changes %+v do not apply: %v", changes, aerr)
	}
	for _, c := range changes {
		if i := indexOf(blocks, c.Label); i >= 0 && blocks[i].ReadOnly && c.Kind != Create {
			// A label may be re-created after a delete in the same patch,
			// but a read-only block can be neither deleted nor changed.
			t.Fatalf("change %+v touches read-only block %q", c, c.Label)
		}
	}
	if len(after) > fuzzOpts.BlocksMax && len(after) > len(blocks) {
		t.Fatalf("%d blocks, over BlocksMax %d", len(after), fuzzOpts.BlocksMax)
	}
	seen := map[string]bool{}
	for _, b := range after {
		if seen[b.Label] {
			t.Fatalf("label %q twice", b.Label)
		}
		seen[b.Label] = true
		if n := utf8.RuneCountInString(b.Value); n > b.Limit {
			t.Fatalf("block %q holds %d characters, over its limit %d", b.Label, n, b.Limit)
		}
		if !utf8.ValidString(b.Value) {
			t.Fatalf("block %q holds invalid UTF-8", b.Label)
		}
		if b.Label == "" || strings.TrimSpace(b.Label) != b.Label {
			t.Fatalf("bad label %q", b.Label)
		}
	}
	for _, b := range blocks {
		if b.ReadOnly {
			if i := indexOf(after, b.Label); i < 0 || !reflect.DeepEqual(after[i], b) {
				t.Fatalf("read-only block %q changed", b.Label)
			}
		}
	}
}

// FuzzApplyPatch fuzzes memory_apply_patch: it must never panic, and never
// store a value over a block's limit.
func FuzzApplyPatch(f *testing.F) {
	seeds := []struct{ value, label, patch string }{
		{"x\ny\nz", "a", "@@\n x\n-y\n+Y\n z\n"},
		{"x\ny", "a", "@@ -1 +1 @@\n-x\n+X\n@@\n+end"},
		{"", "a", "+first\n+second"},
		{"a\tb", "a", "-a\tb\n+c"},
		{"x", "ro", "-fixed\n+broken"},
		{"x", "b", "@@\n-one\n+1"},
		{"x", "", "*** Begin Patch\n*** Add Block: c\nDescription: C\n+1\n*** Update Block: b\n@@\n two\n-one\n+three\n*** Move to: bee\n*** Delete Block: a\n*** End Patch\n"},
		{"x", "", "*** Delete Block: a\n*** Add Block: a\n+again"},
		{"x", "", "*** Update Block: ro\n*** Move to: rw"},
		{"x", "", "*** Add Block: n\n" + strings.Repeat("+0123456789\n", 5)},
		{"x", "", "*** Move to: q"},
		{"x", "", "*** Update Block: a\n@@\n 1→ x"},
		{"--\n", "a", "@@\n---\n+++"},
	}
	for _, s := range seeds {
		f.Add(s.value, s.label, s.patch)
	}
	f.Fuzz(func(t *testing.T, value, label, patch string) {
		blocks := fuzzBlocks(value)
		args := map[string]any{"label": label, "patch": patch}
		changes, result, err := Apply(ToolMemoryApplyPatch, args, blocks, fuzzOpts)
		checkCall(t, blocks, changes, result, err)
	})
}

// FuzzApply fuzzes the other tools with arbitrary strings in their
// arguments.
func FuzzApply(f *testing.F) {
	f.Add(uint8(0), "a", "x\ny", "z", 1)
	f.Add(uint8(1), "a", "x", "y", 0)
	f.Add(uint8(6), "/memories/c", "create", "text", 0)
	f.Add(uint8(6), "/memories/a", "rename", "/memories/d", 0)
	f.Add(uint8(6), "/memories/b", "insert", "one", 3)
	f.Fuzz(func(t *testing.T, tool uint8, s1, s2, s3 string, n int) {
		names := []string{ToolMemoryInsert, ToolMemoryReplace, ToolMemoryRethink, ToolMemoryFinishEdits,
			ToolCoreMemoryAppend, ToolCoreMemoryReplace, ToolMemory}
		name := names[int(tool)%len(names)]
		args := map[string]any{
			"label": s1, "new_string": s2, "old_string": s3, "new_str": s2, "insert_line": float64(n),
			"new_memory": s2, "content": s2, "old_content": s3, "new_content": s2,
			"command": s2, "path": s1, "description": s3, "file_text": s3, "insert_text": s3,
			"old_path": s1, "new_path": s3,
		}
		blocks := fuzzBlocks(s2)
		changes, result, err := Apply(name, args, blocks, fuzzOpts)
		checkCall(t, blocks, changes, result, err)
	})
}
