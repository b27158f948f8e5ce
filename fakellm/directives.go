package fakellm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// directives are the instructions found in a user message.
type directives struct {
	tools    []toolCall
	reply    string
	hasReply bool
	err      *apiError
	sleep    time.Duration
	// text is the message without its directive lines, trimmed.
	text string
}

// decides reports whether the directives choose the reply themselves (a
// lone @sleep only delays it).
func (d *directives) decides() bool {
	return len(d.tools) > 0 || d.hasReply || d.err != nil
}

// parseDirectives reads the directive lines of a user message. A line is
// a directive when, after leading blanks, it starts with @tool, @reply,
// @error or @sleep followed by a blank or the end of the line; other
// lines are text. A malformed directive is an error.
func parseDirectives(msg string) (directives, error) {
	var d directives
	var text []string
	var replies []string
	for n, line := range strings.Split(msg, "\n") {
		trimmed := strings.TrimSpace(line)
		word, rest, _ := strings.Cut(trimmed, " ")
		if i := strings.IndexByte(word, '\t'); i >= 0 {
			word, rest = trimmed[:i], trimmed[i+1:]
		}
		rest = strings.TrimSpace(rest)
		where := fmt.Sprintf("line %d %q", n+1, trimmed)
		switch word {
		case "@tool":
			tc, err := parseToolDirective(rest)
			if err != nil {
				return d, fmt.Errorf("%s: %v; write @tool NAME {\"arg\": \"value\"}", where, err)
			}
			d.tools = append(d.tools, tc)
		case "@reply":
			d.hasReply = true
			replies = append(replies, rest)
		case "@error":
			status, message, _ := strings.Cut(rest, " ")
			code, err := strconv.Atoi(status)
			if err != nil || code < 400 || code > 599 {
				return d, fmt.Errorf("%s: want an HTTP status 400..599 and an optional message, as in @error 429 or @error 500 overloaded", where)
			}
			d.err = statusError(code, strings.TrimSpace(message))
		case "@sleep":
			dur, err := parseSleep(rest)
			if err != nil {
				return d, fmt.Errorf("%s: %v", where, err)
			}
			d.sleep = dur
		default:
			text = append(text, line)
		}
	}
	d.reply = strings.Join(replies, "\n")
	d.text = strings.TrimSpace(strings.Join(text, "\n"))
	return d, nil
}

// parseToolDirective parses "NAME [JSON object]".
func parseToolDirective(s string) (toolCall, error) {
	name, args, _ := strings.Cut(s, " ")
	if i := strings.IndexAny(name, "\t{"); i >= 0 {
		name, args = s[:i], s[i:]
	}
	if !toolNameRE.MatchString(name) {
		return toolCall{}, fmt.Errorf("tool name %q must be 1..64 letters, digits, _ or -", name)
	}
	args = strings.TrimSpace(args)
	if args == "" {
		return toolCall{name: name, arguments: "{}"}, nil
	}
	compact, err := compactObject([]byte(args))
	if err != nil {
		return toolCall{}, err
	}
	return toolCall{name: name, arguments: compact}, nil
}

// compactObject returns the JSON object in b without insignificant
// blanks, keys in their given order.
func compactObject(b []byte) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		if err == nil {
			err = fmt.Errorf("null")
		}
		return "", fmt.Errorf("arguments must be a JSON object: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", fmt.Errorf("arguments must be a JSON object: %v", err)
	}
	return buf.String(), nil
}

// parseSleep parses a delay: a Go duration ("200ms", "1.5s") or a number
// of milliseconds. Delays above MaxSleep are cut to it.
func parseSleep(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		ms, merr := strconv.ParseFloat(s, 64)
		if merr != nil || ms != ms { // ms != ms: NaN
			return 0, fmt.Errorf("sleep %q: want a duration such as 200ms or 1.5s (at most %v)", s, MaxSleep)
		}
		d = time.Duration(min(ms, float64(MaxSleep/time.Millisecond)) * float64(time.Millisecond))
	}
	if d < 0 {
		return 0, fmt.Errorf("sleep %q: negative", s)
	}
	return min(d, MaxSleep), nil
}
