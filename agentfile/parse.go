package agentfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Errors of Parse and Validate. Each error they return wraps one of these;
// its message says what is wrong and where.
var (
	// ErrTooLarge: the file is over FileBytesMax.
	ErrTooLarge = errors.New("agentfile: file too large")
	// ErrSyntax: the file is not JSON (or a JSON string holding JSON).
	ErrSyntax = errors.New("agentfile: not JSON")
	// ErrNotAgentFile: the JSON is not an agent file: no "agents" list.
	ErrNotAgentFile = errors.New("agentfile: not an agent file")
	// ErrInvalid: the file does not fit the format or breaks a limit or a
	// reference between its entities.
	ErrInvalid = errors.New("agentfile: invalid agent file")
)

// utf8BOM is the byte order mark some editors put before JSON.
var utf8BOM = []byte("\xef\xbb\xbf")

// Parse decodes and validates an agent file. It accepts the document
// itself or, as some published files are, a JSON string whose content is
// the document (JSON encoded twice); a UTF-8 byte order mark before it is
// ignored.
func Parse(data []byte) (*File, error) {
	if len(data) > FileBytesMax {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), FileBytesMax)
	}
	doc := bytes.TrimPrefix(data, utf8BOM)
	if firstByte(doc) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrSyntax)
	}
	g, err := decodeGeneric(doc)
	if err != nil {
		return nil, syntaxError(doc, err, "")
	}
	if inner, ok := g.(string); ok {
		doc = []byte(inner)
		if g, err = decodeGeneric(doc); err != nil {
			return nil, syntaxError(doc, err, "in the JSON string the file holds: ")
		}
		if _, ok := g.(string); ok {
			return nil, fmt.Errorf("%w: the file is a JSON string holding another JSON string; an agent file may be encoded twice at most", ErrSyntax)
		}
	}
	top, ok := g.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the file is JSON but not an object with an \"agents\" list", ErrNotAgentFile)
	}
	if _, ok := top["agents"].([]any); !ok {
		return nil, fmt.Errorf("%w: it has no \"agents\" list (the legacy single-agent format of Letta before 0.7 is not supported: export the agent again from a current Letta)", ErrNotAgentFile)
	}
	var f File
	if err := decodeFile(doc, g, &f); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, locate(doc, err))
	}
	if err := Validate(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// syntaxError describes a JSON syntax error with its line and column.
func syntaxError(doc []byte, err error, where string) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(doc, se.Offset)
		return fmt.Errorf("%w: %sline %d, column %d: %v", ErrSyntax, where, line, col, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		line, col := position(doc, int64(len(doc))+1)
		return fmt.Errorf("%w: %sthe JSON ends early, at line %d, column %d: is the file cut short?", ErrSyntax, where, line, col)
	}
	return fmt.Errorf("%w: %s%v", ErrSyntax, where, err)
}

// position converts the offset of a json.SyntaxError (the bytes read
// up to and including the offending one) into the offending byte's
// 1-based line and column.
func position(doc []byte, offset int64) (line, col int) {
	at := min(max(offset-1, 0), int64(len(doc)))
	before := doc[:at]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(at) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// locate finds the element of the file's lists that failed to decode, to
// say where the problem is: "agents[0].messages[3]: …".
func locate(doc []byte, err error) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(doc, &top) != nil {
		return describe(err)
	}
	lists := []struct {
		name string
		elem func() any
	}{
		{"agents", func() any { return new(Agent) }},
		{"groups", func() any { return new(Group) }},
		{"blocks", func() any { return new(Block) }},
		{"files", func() any { return new(FileRecord) }},
		{"sources", func() any { return new(Source) }},
		{"tools", func() any { return new(Tool) }},
		{"mcp_servers", func() any { return new(MCPServer) }},
		{"skills", func() any { return new(Skill) }},
	}
	for _, l := range lists {
		var elems []json.RawMessage
		if json.Unmarshal(top[l.name], &elems) != nil {
			if firstByte(top[l.name]) != 0 && firstByte(top[l.name]) != 'n' {
				return fmt.Sprintf("%s: expected a list", l.name)
			}
			continue
		}
		for i, raw := range elems {
			if err := json.Unmarshal(raw, l.elem()); err != nil {
				where := fmt.Sprintf("%s[%d]", l.name, i)
				if l.name == "agents" {
					if j, merr := locateMessage(raw); merr != nil {
						where, err = fmt.Sprintf("%s.messages[%d]", where, j), merr
					}
				}
				return where + ": " + describe(err)
			}
		}
	}
	return describe(err)
}

// locateMessage finds the message of an agent that fails to decode, and
// its error; nil if none does.
func locateMessage(agent json.RawMessage) (int, error) {
	var a struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if json.Unmarshal(agent, &a) != nil {
		return 0, nil
	}
	for i, raw := range a.Messages {
		if err := json.Unmarshal(raw, new(Message)); err != nil {
			return i, err
		}
	}
	return 0, nil
}

// describe words a decoding error without Go's type names.
func describe(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if i := strings.IndexByte(field, '.'); i >= 0 && strings.HasPrefix(field, "plain") {
			field = field[i+1:]
		}
		if field == "" {
			return fmt.Sprintf("expected %s, found a JSON %s", kindName(te.Type), te.Value)
		}
		return fmt.Sprintf("%s: expected %s, found a JSON %s", field, kindName(te.Type), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// kindName names what a Go type holds in JSON terms.
func kindName(t reflect.Type) string {
	switch t {
	case nil:
		return "a value"
	case reflect.TypeFor[Content]():
		return "a string or a list of content parts"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a JSON value"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return kindName(t.Elem())
	}
	return "a value"
}

// Marshal encodes f as Letta writes agent files: JSON indented by two
// spaces, with <, > and & as they are.
func Marshal(f *File) ([]byte, error) {
	b, err := marshalCompact(f)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
