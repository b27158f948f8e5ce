package blockedit

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output in testdata/*.txt with the actual output")

// TestTranscripts runs the interaction transcripts in testdata/, in the
// manner of etcd-io/raft's interaction tests. A transcript is a list of
// cases, each a directive line, input lines, a "----" line and the
// expected output, which ends at a blank line. Blank lines and lines
// starting with '#' between cases are kept as they are. Text in input and
// output is written as lines starting "| " (a bare "|" for an empty line).
//
// Directives:
//
//	blocks [blocks_max=N] [label_bytes_max=N] [description_bytes_max=N] [default_limit=N]
//	    Replaces the blocks and options. Each input line
//	    `LABEL [limit=N] [read_only] [desc=JSON]` starts a block (LABEL bare
//	    or a JSON string), followed by its value as "|" lines.
//	call TOOL
//	    Calls TOOL. Each input line is `NAME = JSON` or `NAME:` followed by
//	    the string as "|" lines. Prints the changes and the result, or the
//	    error; on success the changes are applied to the blocks.
//	show
//	    Prints the blocks.
//
// Run with -rewrite to regenerate the expected output, then review the
// diff: the rewritten output is only as right as the code.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

// transcriptCase is one case of a transcript: lines [start, sep) are the
// directive and input, sep is the "----" line, (sep, end) the output.
type transcriptCase struct {
	start, sep, end int
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var cases []transcriptCase
	for i := 0; i < len(lines); {
		if l := lines[i]; l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		c := transcriptCase{start: i, sep: -1}
		for j := i + 1; j < len(lines); j++ {
			if lines[j] == "----" {
				c.sep = j
				break
			}
		}
		if c.sep < 0 {
			t.Fatalf("%s:%d: case without a ---- line", path, i+1)
		}
		c.end = c.sep + 1
		for c.end < len(lines) && lines[c.end] != "" {
			c.end++
		}
		cases = append(cases, c)
		i = c.end
	}

	h := &harness{}
	var out strings.Builder
	prev := 0
	for _, c := range cases {
		got := h.run(lines[c.start], lines[c.start+1:c.sep])
		want := strings.Join(lines[c.sep+1:c.end], "\n")
		if *rewrite {
			out.WriteString(strings.Join(lines[prev:c.sep+1], "\n") + "\n" + got + "\n")
			prev = c.end
			continue
		}
		if got != want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, c.start+1, lines[c.start], got, want)
		}
	}
	if *rewrite {
		if prev < len(lines) {
			out.WriteString(strings.Join(lines[prev:], "\n") + "\n")
		}
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// harness holds a transcript's blocks and options between cases.
type harness struct {
	blocks []Block
	opts   Options
}

func (h *harness) run(directive string, input []string) string {
	fields := strings.Fields(directive)
	switch fields[0] {
	case "blocks":
		return h.setBlocks(fields[1:], input)
	case "call":
		if len(fields) != 2 {
			return "usage: call TOOL"
		}
		return h.call(fields[1], input)
	case "show":
		return renderBlocks(h.blocks)
	}
	return "unknown directive " + strconv.Quote(fields[0])
}

func (h *harness) setBlocks(opts []string, input []string) string {
	h.blocks, h.opts = nil, Options{}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Sprintf("bad option %q", o)
		}
		switch k {
		case "blocks_max":
			h.opts.BlocksMax = n
		case "label_bytes_max":
			h.opts.LabelBytesMax = n
		case "description_bytes_max":
			h.opts.DescriptionBytesMax = n
		case "default_limit":
			h.opts.DefaultLimitChars = n
		default:
			return fmt.Sprintf("unknown option %q", k)
		}
	}
	for i := 0; i < len(input); {
		b, err := parseBlockHeader(input[i])
		if err != nil {
			return fmt.Sprintf("line %q: %v", input[i], err)
		}
		var value []string
		for i++; i < len(input) && strings.HasPrefix(input[i], "|"); i++ {
			value = append(value, pipeText(input[i]))
		}
		b.Value = strings.Join(value, "\n")
		h.blocks = append(h.blocks, b)
	}
	return "ok"
}

// parseBlockHeader parses `LABEL [limit=N] [read_only] [desc=JSON]`.
func parseBlockHeader(line string) (Block, error) {
	b := Block{Limit: 1000}
	label, rest, err := cutWord(line)
	if err != nil {
		return b, err
	}
	b.Label = label
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		var word string
		switch {
		case strings.HasPrefix(rest, "desc="):
			if word, rest, err = cutWord(rest[len("desc="):]); err != nil {
				return b, err
			}
			b.Description = word
		case strings.HasPrefix(rest, "read_only"):
			b.ReadOnly, rest = true, rest[len("read_only"):]
		case strings.HasPrefix(rest, "limit="):
			word, rest, _ = strings.Cut(rest[len("limit="):], " ")
			if b.Limit, err = strconv.Atoi(word); err != nil {
				return b, err
			}
		default:
			return b, fmt.Errorf("unexpected %q", rest)
		}
	}
	return b, nil
}

// cutWord cuts a bare word or a JSON string from the front of s.
func cutWord(s string) (word, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		word, rest, _ = strings.Cut(s, " ")
		return word, rest, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&word); err != nil {
		return "", "", err
	}
	return word, s[dec.InputOffset():], nil
}

// pipeText returns the text of a "| text" line.
func pipeText(l string) string {
	return strings.TrimPrefix(strings.TrimPrefix(l, "|"), " ")
}

func (h *harness) call(tool string, input []string) string {
	args := map[string]any{}
	for i := 0; i < len(input); {
		l := input[i]
		if name, ok := strings.CutSuffix(l, ":"); ok && !strings.Contains(name, " ") {
			var text []string
			for i++; i < len(input) && strings.HasPrefix(input[i], "|"); i++ {
				text = append(text, pipeText(input[i]))
			}
			args[name] = strings.Join(text, "\n")
			continue
		}
		name, raw, ok := strings.Cut(l, " = ")
		if !ok {
			return fmt.Sprintf("bad argument line %q: want NAME = JSON or NAME:", l)
		}
		var v any
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			return fmt.Sprintf("argument %s: %v", name, err)
		}
		args[name] = v
		i++
	}
	before := cloneBlocks(h.blocks)
	argsBefore := fmt.Sprint(args)
	changes, result, err := Apply(tool, args, h.blocks, h.opts)
	if !reflect.DeepEqual(before, h.blocks) || fmt.Sprint(args) != argsBefore {
		return "BUG: Apply modified its arguments"
	}
	if err != nil {
		if changes != nil {
			return "BUG: changes with an error"
		}
		return renderError(err)
	}
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(renderChange(c))
	}
	if result == "" {
		b.WriteString("result: (empty)")
	} else {
		b.WriteString("result:\n" + pipeLines(result))
	}
	next, err := ApplyChanges(h.blocks, changes)
	if err != nil {
		return "BUG: ApplyChanges: " + err.Error()
	}
	h.blocks = next
	return strings.TrimSuffix(b.String(), "\n")
}

func cloneBlocks(b []Block) []Block { return slices.Clone(b) }

// errKinds names the error kinds in transcripts.
var errKinds = []struct {
	err  error
	name string
}{
	{ErrUnknownTool, "unknown tool"}, {ErrArgument, "argument"}, {ErrNoBlock, "no block"},
	{ErrReadOnly, "read-only"}, {ErrLimit, "limit"}, {ErrNotFound, "not found"},
	{ErrAmbiguous, "ambiguous"}, {ErrLineNumbers, "line numbers"}, {ErrExists, "exists"},
	{ErrPatch, "patch"},
}

func renderError(err error) string {
	kind := "UNTYPED"
	for _, k := range errKinds {
		if errors.Is(err, k.err) {
			kind = k.name
			break
		}
	}
	return fmt.Sprintf("error (%s):\n%s", kind, strings.TrimSuffix(pipeLines(err.Error()), "\n"))
}

func renderChange(c Change) string {
	switch c.Kind {
	case Set:
		return fmt.Sprintf("set %q\n%s", c.Label, pipeLines(c.Value))
	case Describe:
		return fmt.Sprintf("describe %q desc=%q\n", c.Label, c.Description)
	case Create:
		return fmt.Sprintf("create %q limit=%d desc=%q\n%s", c.Label, c.Limit, c.Description, pipeLines(c.Value))
	case Delete:
		return fmt.Sprintf("delete %q\n", c.Label)
	case Rename:
		return fmt.Sprintf("rename %q -> %q\n", c.Label, c.NewLabel)
	}
	return fmt.Sprintf("BUG: change kind %d\n", c.Kind)
}

func renderBlocks(blocks []Block) string {
	if len(blocks) == 0 {
		return "(no blocks)"
	}
	var b strings.Builder
	for _, bl := range blocks {
		fmt.Fprintf(&b, "%q limit=%d", bl.Label, bl.Limit)
		if bl.ReadOnly {
			b.WriteString(" read_only")
		}
		if bl.Description != "" {
			fmt.Fprintf(&b, " desc=%q", bl.Description)
		}
		b.WriteString("\n" + pipeLines(bl.Value))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// pipeLines renders s as "| " lines, each ending in a newline; "" is no
// lines.
func pipeLines(s string) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l == "" {
			b.WriteString("|\n")
		} else {
			b.WriteString("| " + l + "\n")
		}
	}
	return b.String()
}
