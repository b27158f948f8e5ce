package tools

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ParsePython derives a function schema {"name", "description",
// "parameters"} from Python source code, without running it. It reads the
// last top-level function — a line starting with `def` or `async def` at
// column 0; Letta, too, takes the last function the code defines:
//
//   - its name;
//   - each parameter, which must carry a type annotation: str, int, float,
//     bool, Any, dict (Dict, Mapping), list (List, Sequence, tuple, set)
//     optionally of one such type, Literal[...] of strings or numbers,
//     Optional[X], Union[...] and X | None. A parameter without a default
//     is required. self, cls, agent_state (which Letta injects), *args and
//     **kwargs are left out;
//   - its docstring: the text before the first section header ("Args:",
//     "Returns:", ...) is the description, and the Google-style entries of
//     an "Args:" (or "Arguments:", "Parameters:") section, "name (type):
//     text" or "name: text", describe the parameters.
//
// Anything else (no top-level def, a parameter without an annotation or
// with another type) is an error: the caller must then pass the schema.
// The scan does not know about top-level strings, so a `def` at column 0
// inside a module-level triple-quoted string counts as a function.
func ParsePython(src string) (map[string]any, error) {
	src = strings.ReplaceAll(src, "\r\n", "\n")
	name, open := lastDef(src)
	if name == "" {
		return nil, errors.New("no top-level function (a line starting with `def name(`) found")
	}
	params, end, err := scanGroup(src, open, ')')
	if err != nil {
		return nil, fmt.Errorf("function %s: %v", name, err)
	}
	// The header ends at the first ':' outside brackets (after any "-> T").
	_, bodyStart, err := scanGroup(src, end-1, ':')
	if err != nil {
		return nil, fmt.Errorf("function %s: no ':' ends its signature", name)
	}
	desc, argDocs := parseDocstring(docstring(src[bodyStart:]))
	props, required := map[string]any{}, []any{}
	for _, p := range splitTop(params, ',') {
		p = strings.TrimSpace(p)
		if p == "" || p == "/" || strings.HasPrefix(p, "*") {
			continue
		}
		pname, ann, hasDefault := p, "", false
		if i := indexTop(p, '='); i >= 0 {
			pname, hasDefault = p[:i], true
		}
		if i := indexTop(pname, ':'); i >= 0 {
			pname, ann = pname[:i], pname[i+1:]
		}
		pname = strings.TrimSpace(pname)
		if !identPattern.MatchString(pname) {
			return nil, fmt.Errorf("function %s: cannot read parameter %q", name, p)
		}
		if pname == "self" || pname == "cls" || pname == "agent_state" {
			continue
		}
		if strings.TrimSpace(ann) == "" {
			return nil, fmt.Errorf("parameter %q of %s has no type annotation", pname, name)
		}
		schema, err := typeSchema(ann)
		if err != nil {
			return nil, fmt.Errorf("parameter %q of %s: %v", pname, name, err)
		}
		if d := argDocs[pname]; d != "" {
			schema["description"] = d
		}
		props[pname] = schema
		if !hasDefault {
			required = append(required, pname)
		}
	}
	return map[string]any{
		"name": name, "description": desc,
		"parameters": map[string]any{"type": "object", "properties": props, "required": required},
	}, nil
}

var (
	defPattern   = regexp.MustCompile(`^(?:async[ \t]+)?def[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*\(`)
	identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	argPattern   = regexp.MustCompile(`^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$`)
)

// lastDef returns the name of the last top-level function of src and the
// offset of the '(' opening its parameters ("" if there is none).
func lastDef(src string) (name string, open int) {
	off := 0
	for _, line := range strings.SplitAfter(src, "\n") {
		if m := defPattern.FindStringSubmatchIndex(line); m != nil {
			name, open = line[m[2]:m[3]], off+m[1]-1
		}
		off += len(line)
	}
	return name, open
}

// scanGroup scans src from just after src[start] to the first stop byte
// outside brackets, strings and comments. It returns the text scanned
// (comments removed) and the offset after the stop byte.
func scanGroup(src string, start int, stop byte) (string, int, error) {
	var b strings.Builder
	depth := 0
	for i := start + 1; i < len(src); i++ {
		c := src[i]
		switch {
		case c == stop && depth == 0:
			return b.String(), i + 1, nil
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
			continue
		case c == '\'' || c == '"':
			j := skipString(src, i)
			b.WriteString(src[i:j])
			i = j - 1
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
			if depth < 0 {
				return "", 0, errors.New("unbalanced brackets")
			}
		}
		b.WriteByte(c)
	}
	return "", 0, fmt.Errorf("unbalanced brackets: no closing %q", stop)
}

// skipString returns the offset just after the string literal opening at
// src[i] (single or triple quoted; backslash escapes honoured).
func skipString(src string, i int) int {
	q := src[i : i+1]
	if strings.HasPrefix(src[i:], q+q+q) {
		q = q + q + q
	}
	for j := i + len(q); j < len(src); j++ {
		switch {
		case src[j] == '\\':
			j++
		case strings.HasPrefix(src[j:], q):
			return j + len(q)
		case len(q) == 1 && src[j] == '\n':
			return j
		}
	}
	return len(src)
}

// docstring returns the docstring that opens a function body, if any.
func docstring(body string) string {
	s := body
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if !strings.HasPrefix(s, "#") {
			break
		}
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i:]
		} else {
			return ""
		}
	}
	if len(s) > 1 && strings.IndexByte("rRuU", s[0]) >= 0 && (s[1] == '"' || s[1] == '\'') {
		s = s[1:] // a string prefix
	}
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return ""
	}
	end := skipString(s, 0)
	q := 1
	if end >= 6 && (strings.HasPrefix(s, `"""`) || strings.HasPrefix(s, `'''`)) {
		q = 3
	}
	if end-q < q {
		return ""
	}
	return s[q : end-q]
}

// sectionHeaders are the docstring section headers that end the
// description.
var sectionHeaders = map[string]bool{
	"args:": true, "arguments:": true, "parameters:": true, "params:": true, "returns:": true, "return:": true,
	"raises:": true, "yields:": true, "examples:": true, "example:": true, "notes:": true, "note:": true,
}

// parseDocstring splits a docstring into its description and the
// descriptions of the parameters its Args section lists.
func parseDocstring(doc string) (string, map[string]string) {
	lines := strings.Split(doc, "\n")
	args := map[string]string{}
	var desc []string
	section, sectionIndent, entryIndent, last := "", 0, -1, ""
	for _, line := range lines {
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		if sectionHeaders[strings.ToLower(trimmed)] {
			section, sectionIndent, entryIndent, last = strings.ToLower(trimmed), indent, -1, ""
			continue
		}
		switch {
		case section == "":
			desc = append(desc, trimmed)
		case trimmed == "":
		case indent <= sectionIndent:
			section = "other" // unindented text ends the section
		case section == "args:" || section == "arguments:" || section == "parameters:" || section == "params:":
			if m := argPattern.FindStringSubmatch(trimmed); m != nil && (entryIndent < 0 || indent <= entryIndent) {
				entryIndent, last = indent, m[1]
				args[last] = m[2]
			} else if last != "" {
				args[last] = strings.TrimSpace(args[last] + " " + trimmed)
			}
		}
	}
	return strings.TrimSpace(strings.Join(desc, "\n")), args
}

// splitTop splits s at sep outside brackets and strings.
func splitTop(s string, sep byte) []string {
	var out []string
	for {
		i := indexTop(s, sep)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

// indexTop returns the index of the first c in s outside brackets and
// strings, or -1.
func indexTop(s string, c byte) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			i = skipString(s, i) - 1
			continue
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
		if s[i] == c && depth == 0 {
			return i
		}
	}
	return -1
}

// typeSchema maps a Python type annotation to a JSON Schema.
func typeSchema(ann string) (map[string]any, error) {
	ann = strings.TrimSpace(strings.ReplaceAll(ann, "typing.", ""))
	if len(ann) >= 2 && (ann[0] == '\'' || ann[0] == '"') && ann[len(ann)-1] == ann[0] {
		ann = strings.TrimSpace(ann[1 : len(ann)-1]) // a forward reference
	}
	if parts := splitTop(ann, '|'); len(parts) > 1 {
		return unionSchema(parts)
	}
	base, inner := ann, ""
	if i := strings.IndexByte(ann, '['); i > 0 && strings.HasSuffix(ann, "]") {
		base, inner = strings.TrimSpace(ann[:i]), ann[i+1:len(ann)-1]
	}
	switch base {
	case "str":
		return map[string]any{"type": "string"}, nil
	case "int":
		return map[string]any{"type": "integer"}, nil
	case "float":
		return map[string]any{"type": "number"}, nil
	case "bool":
		return map[string]any{"type": "boolean"}, nil
	case "Any", "object":
		return map[string]any{}, nil
	case "dict", "Dict", "Mapping", "MutableMapping":
		return map[string]any{"type": "object"}, nil
	case "list", "List", "Sequence", "tuple", "Tuple", "set", "Set", "frozenset", "FrozenSet", "Iterable":
		out := map[string]any{"type": "array"}
		args := splitTop(inner, ',')
		if len(args) == 2 && strings.TrimSpace(args[1]) == "..." {
			args = args[:1] // tuple[T, ...]
		}
		if inner != "" && len(args) == 1 {
			items, err := typeSchema(args[0])
			if err != nil {
				return nil, err
			}
			out["items"] = items
		}
		return out, nil
	case "Optional":
		return typeSchema(inner)
	case "Union":
		return unionSchema(splitTop(inner, ','))
	case "Literal":
		return literalSchema(inner)
	}
	return nil, fmt.Errorf("unsupported type annotation %q", ann)
}

// unionSchema maps the members of a union; None makes no difference to
// the schema (required-ness comes from the default).
func unionSchema(parts []string) (map[string]any, error) {
	var members []any
	for _, p := range parts {
		if strings.TrimSpace(p) == "None" {
			continue
		}
		s, err := typeSchema(p)
		if err != nil {
			return nil, err
		}
		members = append(members, s)
	}
	switch len(members) {
	case 0:
		return nil, errors.New("a union of None alone")
	case 1:
		return members[0].(map[string]any), nil
	}
	return map[string]any{"anyOf": members}, nil
}

// literalSchema maps Literal[...] of strings, numbers or booleans to an
// enum.
func literalSchema(inner string) (map[string]any, error) {
	var values []any
	kinds := map[string]bool{}
	for _, v := range splitTop(inner, ',') {
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0]:
			values, kinds["string"] = append(values, v[1:len(v)-1]), true
		case v == "True" || v == "False":
			values, kinds["boolean"] = append(values, v == "True"), true
		default:
			if n, err := strconv.ParseInt(v, 0, 64); err == nil {
				values, kinds["integer"] = append(values, n), true
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				values, kinds["number"] = append(values, f), true
			} else {
				return nil, fmt.Errorf("unsupported Literal value %q", v)
			}
		}
	}
	if len(values) == 0 {
		return nil, errors.New("empty Literal")
	}
	out := map[string]any{"enum": values}
	if len(kinds) == 1 {
		for k := range kinds {
			out["type"] = k
		}
	}
	return out, nil
}
