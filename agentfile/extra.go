package agentfile

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// Extra holds the members of a JSON object that its type does not model,
// by name, as JSON. Decoding a File fills it (numbers keep their digits);
// Marshal writes it after the modelled members.
type Extra map[string]json.RawMessage

// NonEmpty reports the names of the members that hold something: not null,
// false, 0, "", [] or {}. They are the settings a reader that ignores
// Extra leaves unused.
func (e Extra) NonEmpty() []string {
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

// structInfo describes a struct type for decodeFile and encodeObject.
type structInfo struct {
	// fields maps the lower-cased JSON names of the fields (encoding/json
	// matches member names case-insensitively) to their indexes.
	fields map[string]int
	// extra is the index of the Extra field, -1 if there is none.
	extra int
}

// structInfos caches structInfo by type.
var structInfos sync.Map // reflect.Type -> *structInfo

func infoOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{fields: map[string]int{}, extra: -1}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == reflect.TypeFor[Extra]() {
			info.extra = i
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		info.fields[strings.ToLower(name)] = i
	}
	structInfos.Store(t, info)
	return info
}

// decodeFile decodes the JSON document doc into f, its members that the
// types do not model into their Extra: a decoding into the types, one
// into plain values (generic, numbers as json.Number so that they keep
// their digits), and a walk of both that files the members of the second
// the first has no field for. Decoding each object on its own (an
// UnmarshalJSON per type) would decode nested objects once per level.
func decodeFile(doc []byte, generic any, f *File) error {
	type plain File
	if err := json.Unmarshal(doc, (*plain)(f)); err != nil {
		return err
	}
	return fillExtra(reflect.ValueOf(f).Elem(), generic)
}

// decodeGeneric decodes doc into plain values with json.Number numbers,
// which must be all of doc.
func decodeGeneric(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var g any
	if err := dec.Decode(&g); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &json.SyntaxError{Offset: dec.InputOffset() + 1}
	}
	return g, nil
}

// fillExtra walks v (decoded from JSON) with g (the same JSON decoded
// into plain values) and sets the Extra of every struct to the members of
// g it has no field for.
func fillExtra(v reflect.Value, g any) error {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return fillExtra(v.Elem(), g)
		}
	case reflect.Slice:
		list, ok := g.([]any)
		if k := v.Type().Elem().Kind(); !ok || len(list) != v.Len() || (k != reflect.Struct && k != reflect.Pointer) {
			return nil
		}
		for i, e := range list {
			if err := fillExtra(v.Index(i), e); err != nil {
				return err
			}
		}
	case reflect.Struct:
		obj, ok := g.(map[string]any)
		if !ok {
			return nil
		}
		info := infoOf(v.Type())
		var extra Extra
		for k, e := range obj {
			if i, known := info.fields[strings.ToLower(k)]; known {
				if err := fillExtra(v.Field(i), e); err != nil {
					return err
				}
				continue
			}
			if info.extra < 0 {
				continue
			}
			raw, err := marshalCompact(e)
			if err != nil {
				return err
			}
			if extra == nil {
				extra = Extra{}
			}
			extra[k] = raw
		}
		if info.extra >= 0 {
			v.Field(info.extra).Set(reflect.ValueOf(extra))
		}
	}
	return nil
}

// UnmarshalJSON implements json.Unmarshaler: it decodes the file with the
// Extra of every part (see Parse, which also validates).
func (f *File) UnmarshalJSON(b []byte) error {
	g, err := decodeGeneric(b)
	if err != nil {
		return err
	}
	return decodeFile(b, g, f)
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

// encodeObject encodes plain and appends the members of extra that plain
// does not model, in name order.
func encodeObject[P any](plain P, extra Extra) ([]byte, error) {
	b, err := marshalCompact(plain)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	known := infoOf(reflect.TypeFor[P]()).fields
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if _, ok := known[strings.ToLower(k)]; !ok {
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

// The MarshalJSON methods of the types with an Extra. Each converts to a
// local type without methods and lets encodeObject do the work. They have
// no UnmarshalJSON: decoding a File fills every Extra of it (decodeFile).

// MarshalJSON implements json.Marshaler.
func (f File) MarshalJSON() ([]byte, error) {
	type plain File
	return encodeObject(plain(f), f.Extra)
}

// MarshalJSON implements json.Marshaler.
func (a Agent) MarshalJSON() ([]byte, error) {
	type plain Agent
	return encodeObject(plain(a), a.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c LLMConfig) MarshalJSON() ([]byte, error) {
	type plain LLMConfig
	return encodeObject(plain(c), c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c EmbeddingConfig) MarshalJSON() ([]byte, error) {
	type plain EmbeddingConfig
	return encodeObject(plain(c), c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (bl Block) MarshalJSON() ([]byte, error) {
	type plain Block
	return encodeObject(plain(bl), bl.Extra)
}

// MarshalJSON implements json.Marshaler.
func (t Tool) MarshalJSON() ([]byte, error) {
	type plain Tool
	return encodeObject(plain(t), t.Extra)
}

// MarshalJSON implements json.Marshaler.
func (m Message) MarshalJSON() ([]byte, error) {
	type plain Message
	return encodeObject(plain(m), m.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c ToolCall) MarshalJSON() ([]byte, error) {
	type plain ToolCall
	return encodeObject(plain(c), c.Extra)
}

// MarshalJSON implements json.Marshaler.
func (c FunctionCall) MarshalJSON() ([]byte, error) {
	type plain FunctionCall
	return encodeObject(plain(c), c.Extra)
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

// MarshalJSON implements json.Marshaler.
func (p ContentPart) MarshalJSON() ([]byte, error) {
	type plain ContentPart
	return encodeObject(plain(p), p.Extra)
}

// MarshalJSON implements json.Marshaler.
func (g Group) MarshalJSON() ([]byte, error) {
	type plain Group
	return encodeObject(plain(g), g.Extra)
}

// MarshalJSON implements json.Marshaler.
func (r FileRecord) MarshalJSON() ([]byte, error) {
	type plain FileRecord
	return encodeObject(plain(r), r.Extra)
}

// MarshalJSON implements json.Marshaler.
func (s Source) MarshalJSON() ([]byte, error) {
	type plain Source
	return encodeObject(plain(s), s.Extra)
}

// MarshalJSON implements json.Marshaler.
func (fa FileAgent) MarshalJSON() ([]byte, error) {
	type plain FileAgent
	return encodeObject(plain(fa), fa.Extra)
}

// MarshalJSON implements json.Marshaler.
func (m MCPServer) MarshalJSON() ([]byte, error) {
	type plain MCPServer
	return encodeObject(plain(m), m.Extra)
}

// MarshalJSON implements json.Marshaler.
func (s Skill) MarshalJSON() ([]byte, error) {
	type plain Skill
	return encodeObject(plain(s), s.Extra)
}
