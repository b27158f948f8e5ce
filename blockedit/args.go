package blockedit

import (
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// argSet is a call's arguments, as decoded from JSON. A null argument
// counts as absent.
type argSet map[string]any

// jsonType names v's JSON type, for messages.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, json.Number, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "of an unexpected type"
}

// optString returns the string argument name and whether it was given.
func (a argSet) optString(name string, bytesMax int) (string, bool, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, errorf(ErrArgument, "argument %s must be a string, but it is %s", name, jsonType(v))
	}
	if len(s) > bytesMax {
		return "", false, errorf(ErrLimit, "argument %s is %d bytes, over the limit of %d", name, len(s), bytesMax)
	}
	if !utf8.ValidString(s) {
		return "", false, errorf(ErrArgument, "argument %s is not valid UTF-8", name)
	}
	return s, true, nil
}

// string returns the required string argument name.
func (a argSet) string(name string, bytesMax int) (string, error) {
	s, ok, err := a.optString(name, bytesMax)
	if err == nil && !ok {
		err = errorf(ErrArgument, "argument %s is required", name)
	}
	return s, err
}

// optAliased returns the string argument name, or its older name old.
// Both given with different values is an error.
func (a argSet) optAliased(name, old string, bytesMax int) (string, bool, error) {
	s, ok, err := a.optString(name, bytesMax)
	if err != nil {
		return "", false, err
	}
	o, oldOK, err := a.optString(old, bytesMax)
	if err != nil {
		return "", false, err
	}
	switch {
	case ok && oldOK && s != o:
		return "", false, errorf(ErrArgument, "arguments %s and %s (its older name) are both given, with different values; give only %s", name, old, name)
	case oldOK:
		return o, true, nil
	}
	return s, ok, nil
}

// aliased returns the required string argument name, or its older name.
func (a argSet) aliased(name, old string, bytesMax int) (string, error) {
	s, ok, err := a.optAliased(name, old, bytesMax)
	if err == nil && !ok {
		err = errorf(ErrArgument, "argument %s is required", name)
	}
	return s, err
}

// optInt returns the integer argument name, or def when it is absent. A
// whole number in a float or a string of digits is accepted.
func (a argSet) optInt(name string, def int) (int, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return def, nil
	}
	bad := func() (int, error) {
		return 0, errorf(ErrArgument, "argument %s must be a whole number, but it is %s", name, describeValue(v))
	}
	switch n := v.(type) {
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			return bad()
		}
		return int(n), nil
	case int:
		return n, nil
	case int64:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return bad()
		}
		return int(n), nil
	case json.Number:
		i, err := strconv.ParseInt(string(n), 10, 32)
		if err != nil {
			return bad()
		}
		return int(i), nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 32)
		if err != nil {
			return bad()
		}
		return int(i), nil
	}
	return bad()
}

func describeValue(v any) string {
	switch n := v.(type) {
	case float64:
		return strconv.FormatFloat(n, 'g', -1, 64)
	case json.Number:
		return string(n)
	case string:
		return quote(n)
	}
	return jsonType(v)
}

// Line-number artifacts of a numbered memory view. Letta shows a block as
// lines "1→ text" under a banner, and refuses edits that carry either back.
var (
	// lineNumberPrefix matches "12→" at the start of a line (Letta's
	// current form) or "Line 12: " (its older form).
	lineNumberPrefix = regexp.MustCompile(`(?m)^(?:[ \t]*[0-9]+→|Line [0-9]+: )`)
	// lineNumberBanner is the distinctive part of Letta's banner.
	lineNumberBanner = "# NOTE: Line numbers shown below"
)

// checkLineNumbers refuses text, the argument name, if it carries the
// line-number prefixes or banner of a numbered view.
func checkLineNumbers(name, text string) error {
	if loc := lineNumberPrefix.FindStringIndex(text); loc != nil {
		return errorf(ErrLineNumbers, "%s contains a line-number prefix (%s); line numbers are only for display: pass the text without them", name, quote(text[loc[0]:loc[1]]))
	}
	if strings.Contains(text, lineNumberBanner) {
		return errorf(ErrLineNumbers, "%s contains the line-number note that heads a numbered memory view; pass only the block's own text", name)
	}
	return nil
}

// expandTabs replaces each tab with spaces up to the next multiple of 8
// columns, a column being a character and a line ending at '\n' or '\r'
// (Python's str.expandtabs, which Letta applies before matching).
func expandTabs(s string) string {
	if !strings.Contains(s, "\t") {
		return s
	}
	const tabSize = 8
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	col := 0
	for _, r := range s {
		switch r {
		case '\t':
			n := tabSize - col%tabSize
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case '\n', '\r':
			b.WriteRune(r)
			col = 0
		default:
			b.WriteRune(r)
			col++
		}
	}
	return b.String()
}
