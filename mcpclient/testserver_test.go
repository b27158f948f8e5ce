package mcpclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The test binary doubles as a stdio MCP server: run with testServerEnv
// set, TestMain serves instead of testing.
const testServerEnv = "MCPCLIENT_TEST_SERVER"

func TestMain(m *testing.M) {
	switch os.Getenv(testServerEnv) {
	case "":
		os.Exit(m.Run())
	case "stdio":
		err := newTestServer(nil).Run(context.Background(), &mcp.StdioTransport{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	case "deaf":
		runDeafServer()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", testServerEnv, os.Getenv(testServerEnv))
		os.Exit(2)
	}
}

// testHooks are what the test server does where the transport matters.
type testHooks struct {
	// die makes the server go away in the middle of a call (default: the
	// process exits).
	die func()
	// stop, when closed, ends calls of "hang" the client's cancellation
	// did not reach (so that an HTTP server can shut down).
	stop chan struct{}
}

// newTestServer is a small MCP server written with the SDK's server side.
func newTestServer(h *testHooks) *mcp.Server {
	if h == nil {
		h = &testHooks{}
	}
	if h.die == nil {
		h.die = func() {
			fmt.Fprintln(os.Stderr, "test server: dying on purpose")
			os.Exit(3)
		}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "kelpie-test", Version: "1"}, nil)
	object := func(props map[string]any, required ...string) map[string]any {
		m := map[string]any{"type": "object", "properties": props}
		if len(required) > 0 {
			m["required"] = required
		}
		return m
	}
	str := map[string]any{"type": "string"}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	args := func(req *mcp.CallToolRequest, v any) error {
		return json.Unmarshal(req.Params.Arguments, v)
	}

	s.AddTool(&mcp.Tool{Name: "echo", Description: "Echoes its message.", InputSchema: object(map[string]any{"message": str}, "message"),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a struct{ Message string }
			if err := args(req, &a); err != nil {
				return nil, err
			}
			return text("echo: " + a.Message), nil
		})
	s.AddTool(&mcp.Tool{Name: "hang", Description: "Never answers (until cancelled).", InputSchema: object(nil)},
		func(ctx context.Context, _ *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-h.stop:
				return nil, errors.New("server shutting down")
			}
		})
	s.AddTool(&mcp.Tool{Name: "die", Description: "The server goes away mid-call.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			h.die()
			return text("survived"), nil // to no one: the connection is gone
		})
	s.AddTool(&mcp.Tool{Name: "env", Description: "Returns the environment.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			b, _ := json.Marshal(os.Environ())
			return text(string(b)), nil
		})
	s.AddTool(&mcp.Tool{Name: "pid", Description: "Returns the process ID.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text(fmt.Sprint(os.Getpid())), nil
		})
	s.AddTool(&mcp.Tool{Name: "spawn", Description: "Starts a child that sleeps; returns its PID.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			cmd := exec.Command("sleep", "60")
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			go cmd.Wait()
			return text(fmt.Sprint(cmd.Process.Pid)), nil
		})
	s.AddTool(&mcp.Tool{Name: "big", Description: "Returns n bytes of text.", InputSchema: object(map[string]any{"n": map[string]any{"type": "integer"}})},
		func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a struct{ N int }
			if err := args(req, &a); err != nil {
				return nil, err
			}
			return text(strings.Repeat("x", a.N)), nil
		})
	s.AddTool(&mcp.Tool{Name: "weather", Description: "Structured content and no text.", InputSchema: object(nil),
		OutputSchema: object(map[string]any{"temperature": map[string]any{"type": "number"}})},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{StructuredContent: map[string]any{"temperature": 21.5}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "picture", Description: "Text and an image.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{
				&mcp.TextContent{Text: "a picture:"},
				&mcp.ImageContent{MIMEType: "image/png", Data: []byte("\x89PNG....")},
			}}, nil
		})
	s.AddTool(&mcp.Tool{Name: "fail", Description: "A tool error.", InputSchema: object(nil)},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "it went wrong"}}}, nil
		})
	return s
}

// runDeafServer is a hand-written stdio server that completes the MCP
// handshake and then stops reading its input, as a hung server does: a
// large request then fills the pipe, and the client's write blocks.
func runDeafServer() {
	in := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			os.Exit(0)
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			os.Exit(1)
		}
		switch {
		case msg.Method == "notifications/initialized":
			time.Sleep(time.Hour) // deaf from now on
		case msg.Method == "initialize":
			out.Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": map[string]any{
				"protocolVersion": msg.Params.ProtocolVersion,
				"capabilities":    map[string]any{"tools": map[string]any{}},
				"serverInfo":      map[string]any{"name": "deaf", "version": "1"},
			}})
		case len(msg.ID) > 0:
			out.Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "error": map[string]any{
				"code": -32601, "message": "method not found",
			}})
		}
	}
}
