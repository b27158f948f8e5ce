package mcpclient

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestResultOf(t *testing.T) {
	size := int64(5)
	for _, tc := range []struct {
		name string
		res  *mcp.CallToolResult
		want toolexec.Result
	}{
		{"texts joined", &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "a"}, &mcp.TextContent{Text: "b"}}},
			toolexec.Result{Status: toolexec.StatusSuccess, Return: "a\nb"}},
		{"error", &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "bad"}}},
			toolexec.Result{Status: toolexec.StatusError, Return: "bad"}},
		{"structured, no text", &mcp.CallToolResult{StructuredContent: map[string]any{"b": 1, "a": []int{2}}},
			toolexec.Result{Status: toolexec.StatusSuccess, Return: `{"a":[2],"b":1}`}},
		{"text wins over structured", &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "t"}}, StructuredContent: map[string]any{"a": 1}},
			toolexec.Result{Status: toolexec.StatusSuccess, Return: "t"}},
		{"structured and an image", &mcp.CallToolResult{Content: []mcp.Content{&mcp.ImageContent{MIMEType: "image/png", Data: []byte("123")}}, StructuredContent: 7},
			toolexec.Result{Status: toolexec.StatusSuccess, Return: "7\n[image: image/png, 3 bytes]"}},
		{"other contents described", &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.AudioContent{Data: []byte("12")},
			&mcp.ResourceLink{Name: "doc", URI: "file:///doc", Size: &size},
			&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: "mem://x", MIMEType: "text/plain", Text: "hello"}},
		}}, toolexec.Result{Status: toolexec.StatusSuccess, Return: "[audio: unknown type, 2 bytes]\n[resource link: doc <file:///doc>]\n[resource: mem://x, text/plain, 5 bytes]"}},
		{"empty", &mcp.CallToolResult{}, toolexec.Result{Status: toolexec.StatusSuccess}},
	} {
		if got := resultOf(tc.res, 1000); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("short", 300); got != "short" {
		t.Fatalf("truncate(short) = %q", got)
	}
	s := strings.Repeat("é", 1000) // 2000 bytes
	got := truncate(s, 301)
	if len(got) > 301 || !utf8.ValidString(got) || !strings.HasSuffix(got, "[truncated: the tool returned 2000 bytes; this is the first part]") {
		t.Fatalf("truncate = %d bytes %q", len(got), got)
	}
}
