package mcpclient

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ServerType is how Kelpie reaches an MCP server: Letta's MCPServerType.
type ServerType string

// Server types.
const (
	// TypeStdio runs the server as a child process and speaks to it over
	// its standard input and output.
	TypeStdio ServerType = "stdio"
	// TypeSSE is the HTTP+SSE transport of protocol version 2024-11-05: a
	// long-lived GET event stream and POSTs to the endpoint it names.
	TypeSSE ServerType = "sse"
	// TypeStreamableHTTP is the streamable HTTP transport (2025-03-26 and
	// later): POSTs to one endpoint, answered with JSON or an event stream.
	TypeStreamableHTTP ServerType = "streamable_http"
)

// configBytesMax bounds a server configuration, measured as its JSON.
const configBytesMax = 64 << 10

// ServerConfig is how to reach one MCP server. Its fields and JSON names
// are those of Letta's CreateStdioMCPServer, CreateSSEMCPServer and
// CreateStreamableHTTPMCPServer (and of StdioServerConfig, SSEServerConfig
// and StreamableHTTPServerConfig, which name the type field "type"); a
// field that does not belong to Type is ignored.
type ServerConfig struct {
	// Type selects the transport.
	Type ServerType `json:"mcp_server_type"`

	// Command is the program to run (stdio). A name without a slash is
	// looked up in the child's PATH, not Kelpie's.
	Command string `json:"command,omitempty"`
	// Args are the program's arguments (stdio).
	Args []string `json:"args,omitempty"`
	// Env is the child's whole environment (stdio), apart from PATH,
	// which is Options.StdioPATH unless Env sets it. Nothing of Kelpie's
	// own environment is passed on.
	Env map[string]string `json:"env,omitempty"`

	// ServerURL is the endpoint (sse: the event stream's URL;
	// streamable_http: the MCP endpoint), http or https.
	ServerURL string `json:"server_url,omitempty"`
	// AuthHeader names the header that carries AuthToken, such as
	// "Authorization". If it is empty and AuthToken is set, the token is
	// sent as "Authorization: Bearer <token>" (Letta sends nothing then).
	AuthHeader string `json:"auth_header,omitempty"`
	// AuthToken is the header's value, sent as given when AuthHeader is
	// set (so include a "Bearer " prefix if the server wants one).
	AuthToken string `json:"auth_token,omitempty"`
	// CustomHeaders are sent with every request to the server's origin.
	// The auth header, if any, overrides a custom header of the same name.
	CustomHeaders map[string]string `json:"custom_headers,omitempty"`
}

// Server is one configured MCP server: the unit the pool connects to.
type Server struct {
	// ID identifies the server (Letta's mcp_server id). The pool keeps
	// one connection per ID, and replaces it when Config changes.
	ID string
	// Name is the server's name (Letta's server_name), used in messages.
	Name string
	// Config is how to reach it.
	Config ServerConfig
}

// label names s in error messages: its name, or its ID.
func (s Server) label() string {
	if s.Name != "" {
		return s.Name
	}
	return s.ID
}

// Validate reports whether c is a usable configuration, with an error
// wrapping ErrInvalidConfig that says what to fix. It does not contact
// the server, and it does not check whether stdio servers are allowed.
func (c ServerConfig) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, err)
	}
	return nil
}

func (c ServerConfig) validate() error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if len(b) > configBytesMax {
		return fmt.Errorf("configuration is %d bytes of JSON, more than the %d allowed", len(b), configBytesMax)
	}
	switch c.Type {
	case TypeStdio:
		if strings.TrimSpace(c.Command) == "" {
			return fmt.Errorf("a stdio server needs a command")
		}
		if strings.ContainsRune(c.Command, 0) {
			return fmt.Errorf("command contains a NUL byte")
		}
		for i, a := range c.Args {
			if strings.ContainsRune(a, 0) {
				return fmt.Errorf("argument %d contains a NUL byte", i)
			}
		}
		for k, v := range c.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return fmt.Errorf("environment variable name %q is empty or contains '=' or NUL", k)
			}
			if strings.ContainsRune(v, 0) {
				return fmt.Errorf("environment variable %s contains a NUL byte", k)
			}
		}
		return nil
	case TypeSSE, TypeStreamableHTTP:
		u, err := url.Parse(c.ServerURL)
		if err != nil {
			return fmt.Errorf("server_url: %v", err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("server_url %q must be an http or https URL", c.ServerURL)
		}
		if u.Host == "" {
			return fmt.Errorf("server_url %q has no host", c.ServerURL)
		}
		if c.AuthHeader != "" && !validHeaderName(c.AuthHeader) {
			return fmt.Errorf("auth_header %q is not a valid HTTP header name", c.AuthHeader)
		}
		if !validHeaderValue(c.AuthToken) {
			return fmt.Errorf("auth_token contains a control character")
		}
		for k, v := range c.CustomHeaders {
			if !validHeaderName(k) {
				return fmt.Errorf("custom header name %q is not a valid HTTP header name", k)
			}
			if !validHeaderValue(v) {
				return fmt.Errorf("custom header %s contains a control character", k)
			}
		}
		return nil
	case "":
		return fmt.Errorf("mcp_server_type is missing (want %q, %q or %q)", TypeStdio, TypeSSE, TypeStreamableHTTP)
	default:
		return fmt.Errorf("unknown mcp_server_type %q (want %q, %q or %q)", c.Type, TypeStdio, TypeSSE, TypeStreamableHTTP)
	}
}

// hash is a digest of c: equal configurations have equal hashes, and a
// changed one (a new token, another argument) a different hash. JSON
// encodes maps with sorted keys, so the encoding is canonical.
func (c ServerConfig) hash() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: strings, slices and maps of strings
		panic(fmt.Sprintf("mcpclient: encoding a server config: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// headers are the HTTP headers sent to an sse or streamable_http server.
func (c ServerConfig) headers() http.Header {
	h := make(http.Header, len(c.CustomHeaders)+1)
	for k, v := range c.CustomHeaders {
		h.Set(k, v)
	}
	switch {
	case c.AuthHeader != "" && c.AuthToken != "":
		h.Set(c.AuthHeader, c.AuthToken)
	case c.AuthToken != "":
		h.Set("Authorization", bearer(c.AuthToken))
	}
	return h
}

// bearer is token as an Authorization value: with "Bearer " in front
// unless it already has it.
func bearer(token string) string {
	if len(token) > len("Bearer ") && strings.EqualFold(token[:len("Bearer ")], "Bearer ") {
		return token
	}
	return "Bearer " + token
}

// validHeaderName reports whether s is an HTTP token (RFC 9110 5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
