package blockedit

import (
	"strings"
)

// The commands of the memory tool.
var memoryCommands = []string{"create", "str_replace", "insert", "delete", "rename"}

// memory is the omni tool: file-like commands over /memories/<label>.
func memory(e *edit, a argSet) (string, error) {
	argMax := e.opts.ArgBytesMax
	command, err := a.string("command", argMax)
	if err != nil {
		return "", err
	}
	switch command {
	case "create":
		path, err := a.string("path", argMax)
		if err != nil {
			return "", err
		}
		desc, err := a.string("description", argMax)
		if err != nil {
			return "", err
		}
		text, _, err := a.optString("file_text", argMax)
		if err != nil {
			return "", err
		}
		label := pathLabel(path)
		if label == "" {
			return "", errorf(ErrArgument, "path %s names no block; use /memories/<label>", quote(path))
		}
		if err := e.create(label, text, desc); err != nil {
			return "", err
		}
		return "Created memory block " + quote(label) + "; it is now part of your core memory.", nil

	case "str_replace":
		path, err := a.string("path", argMax)
		if err != nil {
			return "", err
		}
		oldS, err := a.aliased("old_string", "old_str", argMax)
		if err != nil {
			return "", err
		}
		newS, err := a.aliased("new_string", "new_str", argMax)
		if err != nil {
			return "", err
		}
		label, err := e.resolve(path)
		if err != nil {
			return "", err
		}
		return replaceOnce(e, label, oldS, newS)

	case "insert":
		path, err := a.string("path", argMax)
		if err != nil {
			return "", err
		}
		text, err := a.string("insert_text", argMax)
		if err != nil {
			return "", err
		}
		line, err := a.optInt("insert_line", -1)
		if err != nil {
			return "", err
		}
		label, err := e.resolve(path)
		if err != nil {
			return "", err
		}
		return insertLines(e, label, text, line, "insert_text")

	case "delete":
		path, err := a.string("path", argMax)
		if err != nil {
			return "", err
		}
		label, err := e.resolve(path)
		if err != nil {
			return "", err
		}
		if err := e.remove(label); err != nil {
			return "", err
		}
		return "Deleted memory block " + quote(label) + "; it is no longer part of your core memory.", nil

	case "rename":
		return memoryRename(e, a)
	}
	return "", errorf(ErrArgument, "unknown memory command %s; the commands are %s", quote(command), strings.Join(memoryCommands, ", "))
}

// memoryRename sets the description of the block at path (given path and
// description) and renames the block at old_path to new_path (given
// both), doing both when both pairs are given.
func memoryRename(e *edit, a argSet) (string, error) {
	argMax := e.opts.ArgBytesMax
	var given [4]string
	for i, name := range [...]string{"path", "description", "old_path", "new_path"} {
		s, _, err := a.optString(name, argMax)
		if err != nil {
			return "", err
		}
		given[i] = s
	}
	path, desc, oldPath, newPath := given[0], given[1], given[2], given[3]
	describe, rename := path != "" && desc != "", oldPath != "" && newPath != ""
	if !describe && !rename {
		return "", errorf(ErrArgument, "rename needs old_path and new_path to rename a block, or path and description to change a block's description")
	}
	var report []string
	if describe {
		label, err := e.resolve(path)
		if err != nil {
			return "", err
		}
		if err := e.describe(label, desc); err != nil {
			return "", err
		}
		report = append(report, "Updated the description of memory block "+quote(label)+".")
	}
	if rename {
		label, err := e.resolve(oldPath)
		if err != nil {
			return "", err
		}
		newLabel := pathLabel(newPath)
		if err := e.rename(label, newLabel); err != nil {
			return "", err
		}
		report = append(report, "Renamed memory block "+quote(label)+" to "+quote(newLabel)+".")
	}
	return strings.Join(report, " "), nil
}

// pathLabel returns the label a memory path names: the path without a
// leading "/memories/" and then without a leading "/", as Letta parses it.
func pathLabel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, "/memories/"), "/")
}

// resolve returns the label of the existing block a memory path names: the
// label as written or, failing that, with "/" replaced by "_" (the form
// some of Letta's commands look for).
func (e *edit) resolve(path string) (string, error) {
	label := pathLabel(path)
	if label == "" {
		return "", errorf(ErrArgument, "path %s names no block; use /memories/<label>", quote(path))
	}
	if indexOf(e.blocks, label) >= 0 {
		return label, nil
	}
	if u := strings.ReplaceAll(label, "/", "_"); indexOf(e.blocks, u) >= 0 {
		return u, nil
	}
	return "", e.noBlock(label)
}
