package mcpclient

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kelpie-ai/kelpie/mcpclient/mcptest"
	"github.com/kelpie-ai/kelpie/toolexec"
)

// The MCP reference test server, @modelcontextprotocol/server-everything,
// run with Node over each transport by package mcptest.

func TestEverything(t *testing.T) {
	node, index := mcptest.Everything(t)
	t.Run("stdio", func(t *testing.T) {
		p := newTestPool(t, Options{AllowStdio: true})
		s := Server{ID: "everything-stdio", Name: "everything", Config: ServerConfig{
			Type: TypeStdio, Command: node, Args: []string{index, "stdio"}, Env: map[string]string{"GREETING": "hi"},
		}}
		checkEverything(t, p, s)

		var env map[string]string
		if err := json.Unmarshal([]byte(mustCall(t, p, s, "get-env", `{}`).Return), &env); err != nil {
			t.Fatal(err)
		}
		// Nothing of this process's environment (HOME, PATH, ...).
		if want := map[string]string{"PATH": DefaultStdioPATH, "GREETING": "hi"}; !maps.Equal(env, want) {
			t.Fatalf("server environment = %v, want %v", env, want)
		}

		c := connOf(p, s.ID)
		if err := syscall.Kill(c.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pool noticed the dead server", func() bool { return !c.alive() })
		wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "Echo: back")
		wantConnects(t, p, 2)
	})
	for _, tc := range []struct {
		transport string
		typ       ServerType
	}{
		{mcptest.SSE, TypeSSE},
		{mcptest.StreamableHTTP, TypeStreamableHTTP},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			srv := mcptest.StartHTTP(t, tc.transport)
			p := newTestPool(t, Options{})
			s := Server{ID: "everything-" + tc.transport, Name: "everything", Config: ServerConfig{Type: tc.typ, ServerURL: srv.URL()}}
			checkEverything(t, p, s)

			// Kill the server; the pool notices the event stream end.
			c := connOf(p, s.ID)
			srv.Kill()
			eventually(t, "the pool noticed the dead server", func() bool { return !c.alive() })
			if _, err := callTool(t, p, s, "echo", `{"message":"anyone?"}`); err == nil {
				t.Fatal("call with the server down succeeded")
			}
			srv.Start()
			wantReturn(t, mustCall(t, p, s, "echo", `{"message":"back"}`), toolexec.StatusSuccess, "Echo: back")
			wantConnects(t, p, 3) // the failed attempt, and the one that worked
		})
	}
}

// checkEverything lists server-everything's tools and calls some, on one
// connection.
func checkEverything(t *testing.T, p *Pool, s Server) {
	t.Helper()
	tools, err := bounded(t, func() ([]Tool, error) { return p.ListTools(context.Background(), s) })
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(tools, func(tl Tool) bool { return tl.Name == "echo" })
	if i < 0 {
		t.Fatalf("no echo tool among %d", len(tools))
	}
	var schema struct {
		Type       string `json:"type"`
		Properties map[string]struct {
			Type string `json:"type"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(tools[i].InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if schema.Type != "object" || schema.Properties["message"].Type != "string" || !slices.Contains(schema.Required, "message") {
		t.Fatalf("echo input schema = %s", tools[i].InputSchema)
	}
	if a := tools[i].Annotations; a == nil || a.ReadOnlyHint == nil || !*a.ReadOnlyHint {
		t.Fatalf("echo annotations = %+v, want readOnlyHint", a)
	}
	if !slices.ContainsFunc(tools, func(tl Tool) bool { return tl.Name == "get-sum" }) {
		t.Fatal("no get-sum tool")
	}

	wantReturn(t, mustCall(t, p, s, "echo", `{"message":"hello"}`), toolexec.StatusSuccess, "Echo: hello")
	wantReturn(t, mustCall(t, p, s, "get-sum", `{"a":2,"b":3.5}`), toolexec.StatusSuccess, "The sum of 2 and 3.5 is 5.5.")
	weather := mustCall(t, p, s, "get-structured-content", `{"location":"Chicago"}`)
	if weather.Status != toolexec.StatusSuccess || !strings.Contains(weather.Return, "Light rain") {
		t.Fatalf("get-structured-content = %+v", weather)
	}
	image := mustCall(t, p, s, "get-tiny-image", `{}`)
	if !strings.Contains(image.Return, "[image: image/png, ") {
		t.Fatalf("get-tiny-image = %q, want the image described", image.Return)
	}
	// Bad arguments: the server's validation error, as an error result or
	// a JSON-RPC error, but not a lost connection.
	res, err := callTool(t, p, s, "get-sum", `{"a":"two"}`)
	if err == nil && res.Status != toolexec.StatusError || err != nil && !serverError(err) {
		t.Fatalf("get-sum with bad arguments = (%+v, %v)", res, err)
	}
	wantConnects(t, p, 1)
}
