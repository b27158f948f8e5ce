package fakellm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Script is an ordered list of rules for the fake model. For each chat
// completion the first rule that matches and has uses left decides the
// reply; when none does, the default behaviour answers. Directives in the
// last user message win over the script.
//
// A script file is a JSON array of rules (or an object {"rules": [...]}):
//
//	[
//	  {"match": {"last_user_contains": "remember", "last_role": "user"},
//	   "reply": {"tool_calls": [{"name": "core_memory_append",
//	                             "arguments": {"label": "human", "content": "likes tea"}}]},
//	   "times": 1},
//	  {"match": {"last_role": "tool", "last_tool": "core_memory_append"},
//	   "reply": {"content": "Noted."}},
//	  {"match": {"last_user_contains": "flaky"}, "reply": {"error": {"status": 503}}, "times": 2}
//	]
//
// Unknown fields are errors, so that a typo does not silently disable a
// rule.
type Script struct {
	Rules []Rule `json:"rules"`
}

// Rule is one scripted reply.
type Rule struct {
	Match Match `json:"match"`
	Reply Reply `json:"reply"`
	// Times is how many requests the rule may answer; 0 means no limit.
	Times int `json:"times,omitempty"`
}

// Match selects requests; every condition given must hold, and an empty
// Match matches every request.
type Match struct {
	// LastUserContains: the last user message contains this text.
	LastUserContains string `json:"last_user_contains,omitempty"`
	// LastRole: the last message has this role (user, assistant, tool,
	// system or developer).
	LastRole string `json:"last_role,omitempty"`
	// HasTool: the request offers a tool of this name.
	HasTool string `json:"has_tool,omitempty"`
	// LastTool: the last message is the result of a call of this tool.
	LastTool string `json:"last_tool,omitempty"`
	// Model: the request names this model.
	Model string `json:"model,omitempty"`
}

// Reply is a scripted answer. Content and ToolCalls may be combined; an
// Error answers an HTTP error instead; Sleep delays the answer. A reply
// with only Sleep delays the default behaviour's answer.
type Reply struct {
	// Content is the text of the reply; "" with no tool calls is an empty
	// answer.
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
	Error     *Error     `json:"error,omitempty"`
	// Sleep is a delay such as "200ms" (at most 30s).
	Sleep string `json:"sleep,omitempty"`
}

// ToolCall is a scripted tool call. Arguments is a JSON object, or a
// JSON string holding the exact argument text to send (which may then be
// malformed on purpose); it defaults to {}.
type ToolCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Error is a scripted HTTP error, answered in OpenAI's error shape.
type Error struct {
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
}

// LoadScript reads and checks the script file at path.
func LoadScript(path string) (*Script, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseScript(b)
	if err != nil {
		return nil, fmt.Errorf("script %s: %w", path, err)
	}
	return s, nil
}

// ParseScript parses and checks a script: a JSON array of rules or an
// object {"rules": [...]}.
func ParseScript(b []byte) (*Script, error) {
	b = bytes.TrimSpace(b)
	var raws []json.RawMessage
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &raws); err != nil {
			return nil, fmt.Errorf("not a JSON array of rules: %v", err)
		}
	case len(b) > 0 && b[0] == '{':
		var top struct {
			Rules []json.RawMessage `json:"rules"`
		}
		if err := strictUnmarshal(b, &top); err != nil {
			return nil, fmt.Errorf(`not a JSON object {"rules": [...]}: %v`, err)
		}
		raws = top.Rules
	default:
		return nil, errors.New(`want a JSON array of rules, [{"match": {...}, "reply": {...}, "times": N}, ...]`)
	}
	s := &Script{Rules: make([]Rule, len(raws))}
	for i, raw := range raws {
		if err := strictUnmarshal(raw, &s.Rules[i]); err != nil {
			return nil, fmt.Errorf("rule %d: %v", i+1, err)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks the rules of a script built in code; ParseScript and
// LoadScript check theirs.
func (s *Script) Validate() error {
	for i := range s.Rules {
		if err := s.Rules[i].check(); err != nil {
			return fmt.Errorf("rule %d: %v", i+1, err)
		}
	}
	return nil
}

// strictUnmarshal decodes b into v, rejecting unknown fields.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// check validates r.
func (r *Rule) check() error {
	if r.Times < 0 {
		return fmt.Errorf("times %d: want 0 (no limit) or more", r.Times)
	}
	switch r.Match.LastRole {
	case "", roleUser, roleAssistant, roleTool, roleSystem, roleDeveloper:
	default:
		return fmt.Errorf("match.last_role %q: want user, assistant, tool, system or developer", r.Match.LastRole)
	}
	rep := &r.Reply
	if rep.Content == nil && len(rep.ToolCalls) == 0 && rep.Error == nil && rep.Sleep == "" {
		return errors.New(`reply is empty: give "content", "tool_calls", "error" or "sleep"`)
	}
	if rep.Error != nil && (rep.Content != nil || len(rep.ToolCalls) > 0) {
		return errors.New(`reply.error cannot be combined with "content" or "tool_calls"`)
	}
	if rep.Error != nil && (rep.Error.Status < 400 || rep.Error.Status > 599) {
		return fmt.Errorf("reply.error.status %d: want an HTTP status 400..599", rep.Error.Status)
	}
	if rep.Sleep != "" {
		if _, err := parseSleep(rep.Sleep); err != nil {
			return fmt.Errorf("reply.%v", err)
		}
	}
	for i := range rep.ToolCalls {
		tc := &rep.ToolCalls[i]
		if !toolNameRE.MatchString(tc.Name) {
			return fmt.Errorf("reply.tool_calls[%d].name %q: want 1..64 letters, digits, _ or -", i, tc.Name)
		}
		if _, err := scriptArguments(tc.Arguments); err != nil {
			return fmt.Errorf("reply.tool_calls[%d].arguments: %v", i, err)
		}
	}
	return nil
}

// scriptArguments returns the argument text of a scripted call.
func scriptArguments(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "{}", nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{':
		return compactObject(raw)
	}
	return "", errors.New("want a JSON object, or a string of raw argument text")
}

// matches reports whether m selects the request of c.
func (m *Match) matches(c *conversation) bool {
	return (m.LastUserContains == "" || strings.Contains(c.lastUserText(), m.LastUserContains)) &&
		(m.LastRole == "" || m.LastRole == c.last.Role) &&
		(m.HasTool == "" || c.req.offers(m.HasTool)) &&
		(m.LastTool == "" || m.LastTool == c.lastTool) &&
		(m.Model == "" || m.Model == c.req.Model)
}

// scripted returns the reply of the first matching rule with uses left,
// counting the use. delayOnly reports a rule that only delays the default
// reply.
func (s *Server) scripted(c *conversation) (r reply, delayOnly, ok bool) {
	if s.opts.Script == nil {
		return reply{}, false, false
	}
	rules := s.opts.Script.Rules
	s.mu.Lock()
	i := 0
	for ; i < len(rules); i++ {
		if (rules[i].Times == 0 || s.used[i] < rules[i].Times) && rules[i].Match.matches(c) {
			s.used[i]++
			break
		}
	}
	s.mu.Unlock()
	if i == len(rules) {
		return reply{}, false, false
	}
	rep := &rules[i].Reply
	r.source = fmt.Sprintf("script rule %d", i+1)
	if rep.Sleep != "" {
		r.sleep, _ = parseSleep(rep.Sleep)
	}
	if rep.Error != nil {
		r.err = statusError(rep.Error.Status, rep.Error.Message)
		return r, false, true
	}
	if rep.Content == nil && len(rep.ToolCalls) == 0 {
		return r, true, true
	}
	if rep.Content != nil {
		r.content = *rep.Content
	}
	for _, tc := range rep.ToolCalls {
		args, _ := scriptArguments(tc.Arguments) // checked when parsed
		r.toolCalls = append(r.toolCalls, toolCall{name: tc.Name, arguments: args})
	}
	return r, false, true
}

// Uses returns how many requests each script rule has answered so far.
func (s *Server) Uses() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.used...)
}
