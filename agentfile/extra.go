package agentfile

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Extra holds the members of a JSON object that its type does not model,
// by name, verbatim. Marshal writes them after the modelled members.
type Extra map[string]json.RawMessage

// Set reports the names of the members that hold something: not null,
// false, 0, "", [] or {}. They are the settings a reader that ignores
// Extra leaves unused.
func (e Extra) Set() []string {
	var out []string
	for k, v := range e {
		if !isEmptyJSON(v) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// isEmptyJSON reports whether v is null, false, zero, "" or an empty list
// or object.
func isEmptyJSON(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "null", "false", "0", `""`, "[]", "{}", "":
		return true
	default:
		var f float64
		if json.Unmarshal(v, &f) == nil && f == 0 {
			return true
		}
		var l []json.RawMessage
		if json.Unmarshal(v, &l) == nil && len(l) == 0 {
			return true
		}
		var m map[string]json.RawMessage
		return json.Unmarshal(v, &m) == nil && len(m) == 0
	}
}

// knownFields maps a struct type to the lower-cased JSON names of its
// fields (encoding/json matches member names case-insensitively).
var knownFields sync.Map // reflect.Type -> map[string]bool

func fieldsOf(t reflect.Type) map[string]bool {
	if v, ok := knownFields.Load(t); ok {
		return v.(map[string]bool)
	}
	m := map[string]bool{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		m[strings.ToLower(name)] = true
	}
	knownFields.Store(t, m)
	return m
}

// firstByte returns the first non-space byte of b, or 0.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// jsonKind names the kind of the JSON value b, as json.UnmarshalTypeError
// does.
func jsonKind(b []byte) string {
	switch firstByte(b) {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// decodeObject decodes the JSON object b into plain (a type without
// methods, so that this does not recurse) and the members plain does not
// model into extra. null leaves both unchanged.
func decodeObject[P any](b []byte, plain *P, extra *Extra) error {
	if firstByte(b) == 'n' {
		return nil
	}
	if err := json.Unmarshal(b, plain); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	known := fieldsOf(reflect.TypeFor[P]())
	for k := range all {
		if known[strings.ToLower(k)] {
			delete(all, k)
		}
	}
	if len(all) == 0 {
		all = nil
	}
	*extra = all
	return nil
}

// encodeObject encodes plain and appends the members of extra that plain
// does not model, in name order.
func encodeObject[P any](plain P, extra Extra) ([]byte, error) {
	b, err := marshalCompact(plain)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	known := fieldsOf(reflect.TypeFor[P]())
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !known[strings.ToLower(k)] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := bytes.NewBuffer(b[:len(b)-1]) // without the closing brace
	for _, k := range keys {
		if out.Len() > 1 {
			out.WriteByte(',')
		}
		name, err := marshalCompact(k)
		if err != nil {
			return nil, err
		}
		out.Write(name)
		out.WriteByte(':')
		v := extra[k]
		if !json.Valid(v) {
			return nil, &json.UnsupportedValueError{Str: "member " + k + " of Extra is not JSON"}
		}
		out.Write(v)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// marshalCompact encodes v as JSON without escaping <, > and & (system
// prompts are full of them).
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// The JSON methods of the types with an Extra. Each converts to a local
// type without methods and lets decodeObject and encodeObject do the work.

// UnmarshalJSON implements json.Unmarshaler.
func (f *File) UnmarshalJSON(b []byte) error {
	type plain File
	return decodeObject(b, (*plain)(f), &f.Extra)
}

// MarshalJSON implements json.Marshaler.
func (f File) MarshalJSON() ([]byte, error) {
	type plain File
	return encodeObject(plain(f), f.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Agent) UnmarshalJSON(b []byte) error {
	type plain Agent
	return decodeObject(b, (*plain)(a), &a.Extra)
}

// MarshalJSON implements json.Marshaler.
func (a Agent) MarshalJSON() ([]byte, error) {
	type plain Agent
	return encodeObject(plain(a), a.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *LLMConfig) UnmarshalJSON(b []byte) error {
	type plain LLMConfig
	return decodeObject(b, (*plain)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c LLMConfig) MarshalJSON() ([]byte, error) {
	type plain LLMConfig
	return encodeObject(plain(c), c.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *EmbeddingConfig) UnmarshalJSON(b []byte) error {
	type plain EmbeddingConfig
	return decodeObject(b, (*plain)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c EmbeddingConfig) MarshalJSON() ([]byte, error) {
	type plain EmbeddingConfig
	return encodeObject(plain(c), c.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (bl *Block) UnmarshalJSON(b []byte) error {
	type plain Block
	return decodeObject(b, (*plain)(bl), &bl.Extra)
}

// MarshalJSON implements json.Marshaler.
func (bl Block) MarshalJSON() ([]byte, error) {
	type plain Block
	return encodeObject(plain(bl), bl.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Tool) UnmarshalJSON(b []byte) error {
	type plain Tool
	return decodeObject(b, (*plain)(t), &t.Extra)
}

// MarshalJSON implements json.Marshaler.
func (t Tool) MarshalJSON() ([]byte, error) {
	type plain Tool
	return encodeObject(plain(t), t.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	return decodeObject(b, (*plain)(m), &m.Extra)
}

// MarshalJSON implements json.Marshaler.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message
	return encodeObject(plain(m), m.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *ToolCall) UnmarshalJSON(b []byte) error {
	type plain ToolCall
	return decodeObject(b, (*plain)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c ToolCall) MarshalJSON() ([]byte, error) {
	type plain ToolCall
	return encodeObject(plain(c), c.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *FunctionCall) UnmarshalJSON(b []byte) error {
	type plain FunctionCall
	return decodeObject(b, (*plain)(c), &c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c FunctionCall) MarshalJSON() ([]byte, error) {
	type plain FunctionCall
	return encodeObject(plain(c), c.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *ToolReturn) UnmarshalJSON(b []byte) error {
	type plain ToolReturn
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r ToolReturn) MarshalJSON() ([]byte, error) {
	type plain ToolReturn
	return encodeObject(plain(r), r.Extra)
}

// MarshalJSON implements json.Marshaler: no content is an empty list
// (content is required).
func (c Content) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("[]"), nil
	}
	return marshalCompact([]ContentPart(c))
}

// UnmarshalJSON implements json.Unmarshaler.
func (p *ContentPart) UnmarshalJSON(b []byte) error {
	type plain ContentPart
	return decodeObject(b, (*plain)(p), &p.Extra)
}

// MarshalJSON implements json.Marshaler.
func (p ContentPart) MarshalJSON() ([]byte, error) {
	type plain ContentPart
	return encodeObject(plain(p), p.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (g *Group) UnmarshalJSON(b []byte) error {
	type plain Group
	return decodeObject(b, (*plain)(g), &g.Extra)
}

// MarshalJSON implements json.Marshaler.
func (g Group) MarshalJSON() ([]byte, error) {
	type plain Group
	return encodeObject(plain(g), g.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *FileRecord) UnmarshalJSON(b []byte) error {
	type plain FileRecord
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r FileRecord) MarshalJSON() ([]byte, error) {
	type plain FileRecord
	return encodeObject(plain(r), r.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Source) UnmarshalJSON(b []byte) error {
	type plain Source
	return decodeObject(b, (*plain)(s), &s.Extra)
}

// MarshalJSON implements json.Marshaler.
func (s Source) MarshalJSON() ([]byte, error) {
	type plain Source
	return encodeObject(plain(s), s.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (fa *FileAgent) UnmarshalJSON(b []byte) error {
	type plain FileAgent
	return decodeObject(b, (*plain)(fa), &fa.Extra)
}

// MarshalJSON implements json.Marshaler.
func (fa FileAgent) MarshalJSON() ([]byte, error) {
	type plain FileAgent
	return encodeObject(plain(fa), fa.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *MCPServer) UnmarshalJSON(b []byte) error {
	type plain MCPServer
	return decodeObject(b, (*plain)(m), &m.Extra)
}

// MarshalJSON implements json.Marshaler.
func (m MCPServer) MarshalJSON() ([]byte, error) {
	type plain MCPServer
	return encodeObject(plain(m), m.Extra)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Skill) UnmarshalJSON(b []byte) error {
	type plain Skill
	return decodeObject(b, (*plain)(s), &s.Extra)
}

// MarshalJSON implements json.Marshaler.
func (s Skill) MarshalJSON() ([]byte, error) {
	type plain Skill
	return encodeObject(plain(s), s.Extra)
}
