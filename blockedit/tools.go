package blockedit

import (
	"fmt"
	"slices"
	"strings"
)

// The tools' names (Letta's).
const (
	ToolMemoryInsert      = "memory_insert"
	ToolMemoryReplace     = "memory_replace"
	ToolMemoryRethink     = "memory_rethink"
	ToolMemoryFinishEdits = "memory_finish_edits"
	ToolCoreMemoryAppend  = "core_memory_append"
	ToolCoreMemoryReplace = "core_memory_replace"
	ToolMemory            = "memory"
	ToolMemoryApplyPatch  = "memory_apply_patch"
)

var tools = map[string]func(*edit, argSet) (string, error){
	ToolMemoryInsert:      memoryInsert,
	ToolMemoryReplace:     memoryReplace,
	ToolMemoryRethink:     memoryRethink,
	ToolMemoryFinishEdits: func(*edit, argSet) (string, error) { return "", nil },
	ToolCoreMemoryAppend:  coreMemoryAppend,
	ToolCoreMemoryReplace: coreMemoryReplace,
	ToolMemory:            memory,
	ToolMemoryApplyPatch:  memoryApplyPatch,
}

func memoryInsert(e *edit, a argSet) (string, error) {
	label, err := a.string("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	text, err := a.aliased("new_string", "new_str", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	line, err := a.optInt("insert_line", -1)
	if err != nil {
		return "", err
	}
	return insertLines(e, label, text, line, "new_string")
}

func memoryReplace(e *edit, a argSet) (string, error) {
	label, err := a.string("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	oldS, err := a.aliased("old_string", "old_str", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	newS, err := a.aliased("new_string", "new_str", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	return replaceOnce(e, label, oldS, newS)
}

func memoryRethink(e *edit, a argSet) (string, error) {
	label, err := a.string("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	value, err := a.string("new_memory", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	if _, err := e.writable(label); err != nil {
		return "", err
	}
	if err := checkLineNumbers("new_memory", value); err != nil {
		return "", err
	}
	return value, e.set(label, value)
}

func coreMemoryAppend(e *edit, a argSet) (string, error) {
	label, err := a.string("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	content, err := a.string("content", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	b, err := e.writable(label)
	if err != nil {
		return "", err
	}
	value := content
	if b.Value != "" {
		value = b.Value + "\n" + content
	}
	return value, e.set(label, value)
}

func coreMemoryReplace(e *edit, a argSet) (string, error) {
	label, err := a.string("label", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	oldC, err := a.string("old_content", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	newC, err := a.string("new_content", e.opts.ArgBytesMax)
	if err != nil {
		return "", err
	}
	b, err := e.writable(label)
	if err != nil {
		return "", err
	}
	if oldC == "" {
		return "", errorf(ErrArgument, "old_content is empty; give the exact text to replace")
	}
	if !strings.Contains(b.Value, oldC) {
		return "", errorf(ErrNotFound, "old_content %s does not occur in memory block %s; it must match exactly, white space included", quote(oldC), quote(label))
	}
	value := strings.ReplaceAll(b.Value, oldC, newC)
	return value, e.set(label, value)
}

// replaceOnce replaces the one occurrence of oldS in block label by newS
// (memory_replace, memory str_replace) and returns the new value.
func replaceOnce(e *edit, label, oldS, newS string) (string, error) {
	b, err := e.writable(label)
	if err != nil {
		return "", err
	}
	if err := checkLineNumbers("old_string", oldS); err != nil {
		return "", err
	}
	if err := checkLineNumbers("new_string", newS); err != nil {
		return "", err
	}
	if oldS == "" {
		return "", errorf(ErrArgument, "old_string is empty; give the exact text to replace (to add text, use memory_insert)")
	}
	value, oldS, newS := expandTabs(b.Value), expandTabs(oldS), expandTabs(newS)
	switch n := strings.Count(value, oldS); n {
	case 0:
		return "", errorf(ErrNotFound, "no replacement was made: old_string %s does not occur in memory block %s; it must match the block exactly, white space included", quote(oldS), quote(label))
	case 1:
	default:
		return "", errorf(ErrAmbiguous, "no replacement was made: old_string %s occurs %d times in memory block %s (starting on lines %s); include more of the surrounding text so that it occurs once", quote(oldS), n, quote(label), occurrenceLines(value, oldS))
	}
	value = strings.Replace(value, oldS, newS, 1)
	return value, e.set(label, value)
}

// occurrenceLines lists the 1-based lines on which the non-overlapping
// occurrences of sub in s start, each line once, the first linesListMax
// of them.
func occurrenceLines(s, sub string) string {
	var lines []string
	line, pos := 1, 0
	for len(lines) < linesListMax {
		i := strings.Index(s[pos:], sub)
		if i < 0 {
			return strings.Join(lines, ", ")
		}
		line += strings.Count(s[pos:pos+i], "\n")
		if l := fmt.Sprint(line); len(lines) == 0 || lines[len(lines)-1] != l {
			lines = append(lines, l)
		}
		line += strings.Count(sub, "\n")
		pos += i + len(sub)
	}
	return strings.Join(lines, ", ") + ", …"
}

// insertLines inserts text as lines after line line of block label
// (memory_insert, memory insert) and returns the new value. argName names
// the text in messages.
func insertLines(e *edit, label, text string, line int, argName string) (string, error) {
	b, err := e.writable(label)
	if err != nil {
		return "", err
	}
	if err := checkLineNumbers(argName, text); err != nil {
		return "", err
	}
	value, text := expandTabs(b.Value), expandTabs(text)
	var lines []string // an empty block has no lines
	if value != "" {
		lines = strings.Split(value, "\n")
	}
	// Letta counts an empty block as one empty line, so 1 is in range
	// there too; it inserts at the top like 0.
	top := max(len(lines), 1)
	switch {
	case line == -1:
		line = len(lines)
	case line < 0 || line > top:
		return "", errorf(ErrArgument, "insert_line %d is out of range for memory block %s: use 0 (before the first line) to %d (after the last), or -1 for the end", line, quote(label), top)
	}
	line = min(line, len(lines))
	value = strings.Join(slices.Insert(lines, line, strings.Split(text, "\n")...), "\n")
	return value, e.set(label, value)
}
