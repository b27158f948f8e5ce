package main

import (
	"bytes"
	"testing"
)

// The stdio MCP switch: off by default, on with the flag or the
// environment variable, and the flag wins.
func TestServeMCPStdio(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want bool
	}{
		{nil, "", false},
		{nil, "1", true},
		{nil, "true", true},
		{nil, "no", false},
		{nil, "maybe", false}, // unreadable: off
		{[]string{"--mcp-stdio"}, "", true},
		{[]string{"--mcp-stdio=false"}, "1", false},
	} {
		env := envOf(map[string]string{envMCPStdio: tc.env})
		cmd := newServeCmd(&bytes.Buffer{}, env)
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		var f serveFlags
		f.mcpStdio, _ = cmd.Flags().GetBool("mcp-stdio")
		if got := serveConfig(cmd, f, env).MCPAllowStdio; got != tc.want {
			t.Errorf("%v with %s=%q: MCPAllowStdio = %v, want %v", tc.args, envMCPStdio, tc.env, got, tc.want)
		}
	}
}
