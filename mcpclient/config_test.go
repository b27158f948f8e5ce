package mcpclient

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestServerConfigJSONIsLettas(t *testing.T) {
	// Bodies of Letta's CreateStdioMCPServer and CreateStreamableHTTPMCPServer.
	for _, body := range []string{
		`{"mcp_server_type":"stdio","command":"npx","args":["-y","server"],"env":{"K":"v"}}`,
		`{"mcp_server_type":"streamable_http","server_url":"https://example.test/mcp","auth_header":"X-Key","auth_token":"t","custom_headers":{"X-A":"b"}}`,
	} {
		var c ServerConfig
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != body {
			t.Fatalf("round trip:\n got %s\nwant %s", out, body)
		}
	}
}

func TestServerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  ServerConfig
		want string // in the error; "" for valid
	}{
		{ServerConfig{Type: TypeStdio, Command: "server"}, ""},
		{ServerConfig{Type: TypeSSE, ServerURL: "http://127.0.0.1:1/sse"}, ""},
		{ServerConfig{}, "mcp_server_type is missing"},
		{ServerConfig{Type: "websocket"}, `unknown mcp_server_type "websocket"`},
		{ServerConfig{Type: TypeStdio, Command: "  "}, "needs a command"},
		{ServerConfig{Type: TypeStdio, Command: "x", Args: []string{"a\x00"}}, "argument 0 contains a NUL"},
		{ServerConfig{Type: TypeStdio, Command: "x", Env: map[string]string{"A=B": "c"}}, `"A=B" is empty or contains '='`},
		{ServerConfig{Type: TypeStreamableHTTP, ServerURL: "ftp://h/x"}, "must be an http or https URL"},
		{ServerConfig{Type: TypeStreamableHTTP, ServerURL: "http:///x"}, "has no host"},
		{ServerConfig{Type: TypeSSE, ServerURL: "http://h", AuthHeader: "Bad Header"}, "not a valid HTTP header name"},
		{ServerConfig{Type: TypeSSE, ServerURL: "http://h", AuthToken: "t\r\nX-Evil: 1"}, "auth_token contains a control character"},
		{ServerConfig{Type: TypeSSE, ServerURL: "http://h", CustomHeaders: map[string]string{"X": "\n"}}, "custom header X contains a control"},
		{ServerConfig{Type: TypeStdio, Command: "x", Args: []string{strings.Repeat("a", configBytesMax)}}, "more than the 65536 allowed"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("%+v: err = %v, want ErrInvalidConfig saying %q", tc.cfg, err, tc.want)
		}
	}
}

func TestServerConfigHeaders(t *testing.T) {
	for _, tc := range []struct {
		cfg        ServerConfig
		name, want string
	}{
		{ServerConfig{AuthToken: "abc"}, "Authorization", "Bearer abc"},
		{ServerConfig{AuthToken: "Bearer abc"}, "Authorization", "Bearer abc"},
		{ServerConfig{AuthHeader: "X-Api-Key", AuthToken: "abc"}, "X-Api-Key", "abc"},
		{ServerConfig{AuthHeader: "Authorization", AuthToken: "Token abc"}, "Authorization", "Token abc"},
		{ServerConfig{AuthHeader: "Authorization", AuthToken: "abc", CustomHeaders: map[string]string{"authorization": "custom"}}, "Authorization", "abc"},
		{ServerConfig{AuthHeader: "X-Api-Key", CustomHeaders: map[string]string{"X-A": "1"}}, "X-A", "1"},
	} {
		h := tc.cfg.headers()
		if got := h.Get(tc.name); got != tc.want || len(h.Values(tc.name)) != 1 {
			t.Errorf("%+v: %s = %q, want %q", tc.cfg, tc.name, h.Values(tc.name), tc.want)
		}
	}
	if h := (ServerConfig{AuthHeader: "X-Api-Key"}).headers(); len(h) != 0 {
		t.Errorf("a header name without a token sent %v", h)
	}
}

func TestServerConfigHash(t *testing.T) {
	a := ServerConfig{Type: TypeStdio, Command: "x", Env: map[string]string{"A": "1", "B": "2", "C": "3"}}
	b := ServerConfig{Type: TypeStdio, Command: "x", Env: map[string]string{"C": "3", "B": "2", "A": "1"}}
	if a.hash() != b.hash() {
		t.Fatal("equal configs hash differently")
	}
	b.Env["C"] = "4"
	if a.hash() == b.hash() {
		t.Fatal("a changed env kept the hash")
	}
	c := ServerConfig{Type: TypeStreamableHTTP, ServerURL: "http://h", AuthToken: "1"}
	d := c
	d.AuthToken = "2"
	if c.hash() == d.hash() {
		t.Fatal("a changed token kept the hash")
	}
}
