package mcpclient

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Tool is a tool an MCP server offers: the fields of Letta's MCPTool.
type Tool struct {
	// Name is the tool's name, as calls name it.
	Name string `json:"name"`
	// Title is a display name; empty if the server gave none.
	Title string `json:"title,omitempty"`
	// Description says what the tool does, for the model.
	Description string `json:"description,omitempty"`
	// InputSchema is the JSON Schema of the tool's arguments (an object
	// schema; {"type":"object"} if the server gave none).
	InputSchema json.RawMessage `json:"inputSchema"`
	// OutputSchema is the JSON Schema of the tool's structured result;
	// nil if the server gave none.
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	// Annotations are the server's hints about the tool; nil if none.
	// They are hints from a server that may not be trusted.
	Annotations *ToolAnnotations `json:"annotations,omitempty"`
}

// ToolAnnotations are hints about a tool's behaviour (Letta's and MCP's
// ToolAnnotations). A nil hint was not given.
type ToolAnnotations struct {
	Title           string `json:"title,omitempty"`
	ReadOnlyHint    *bool  `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool  `json:"destructiveHint,omitempty"`
	IdempotentHint  *bool  `json:"idempotentHint,omitempty"`
	OpenWorldHint   *bool  `json:"openWorldHint,omitempty"`
}

// objectSchema is the input schema of a tool whose server gave none.
var objectSchema = json.RawMessage(`{"type":"object"}`)

// toolOf converts the SDK's tool.
func toolOf(t *mcp.Tool) (Tool, error) {
	out := Tool{Name: t.Name, Title: t.Title, Description: t.Description, InputSchema: objectSchema}
	if t.InputSchema != nil {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return Tool{}, fmt.Errorf("tool %q: input schema: %v", t.Name, err)
		}
		out.InputSchema = b
	}
	if t.OutputSchema != nil {
		b, err := json.Marshal(t.OutputSchema)
		if err != nil {
			return Tool{}, fmt.Errorf("tool %q: output schema: %v", t.Name, err)
		}
		out.OutputSchema = b
	}
	if a := t.Annotations; a != nil {
		// The SDK keeps only true for the two hints that default to false.
		ro, idem := a.ReadOnlyHint, a.IdempotentHint
		out.Annotations = &ToolAnnotations{
			Title:           a.Title,
			ReadOnlyHint:    &ro,
			DestructiveHint: a.DestructiveHint,
			IdempotentHint:  &idem,
			OpenWorldHint:   a.OpenWorldHint,
		}
	}
	return out, nil
}

// resultOf turns a tool's result into what the model sees: its text
// contents joined by newlines, other contents described in brackets, the
// structured content as JSON when there is no text, at most max bytes.
// A result the server marks isError has StatusError.
func resultOf(r *mcp.CallToolResult, max int) toolexec.Result {
	var parts []string
	text := false
	for _, c := range r.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			parts = append(parts, c.Text)
			text = true
		case *mcp.ImageContent:
			parts = append(parts, fmt.Sprintf("[image: %s, %d bytes]", orUnknown(c.MIMEType), len(c.Data)))
		case *mcp.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio: %s, %d bytes]", orUnknown(c.MIMEType), len(c.Data)))
		case *mcp.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource link: %s <%s>]", c.Name, c.URI))
		case *mcp.EmbeddedResource:
			parts = append(parts, describeResource(c.Resource))
		default:
			parts = append(parts, fmt.Sprintf("[content of type %T]", c))
		}
	}
	if !text && r.StructuredContent != nil {
		if b, err := json.Marshal(r.StructuredContent); err == nil {
			parts = append([]string{string(b)}, parts...)
		}
	}
	status := toolexec.StatusSuccess
	if r.IsError {
		status = toolexec.StatusError
	}
	return toolexec.Result{Status: status, Return: truncate(strings.Join(parts, "\n"), max)}
}

func describeResource(rc *mcp.ResourceContents) string {
	if rc == nil {
		return "[resource]"
	}
	size := len(rc.Blob)
	if rc.Text != "" {
		size = len(rc.Text)
	}
	return fmt.Sprintf("[resource: %s, %s, %d bytes]", rc.URI, orUnknown(rc.MIMEType), size)
}

func orUnknown(mimeType string) string {
	if mimeType == "" {
		return "unknown type"
	}
	return mimeType
}

// truncate cuts s to at most max bytes, at a rune boundary, saying so at
// the end.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := fmt.Sprintf("\n[truncated: the tool returned %d bytes; this is the first part]", len(s))
	cut := max - len(note)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}
