package mcpclient

import (
	"errors"
	"fmt"
)

// Errors the pool's operations wrap; test for them with errors.Is. An
// error from a server's JSON-RPC answer (an unknown tool, bad arguments)
// is a *jsonrpc.Error of the SDK's jsonrpc package, for errors.As.
var (
	// ErrInvalidConfig: the server's configuration cannot be used.
	ErrInvalidConfig = errors.New("invalid MCP server configuration")
	// ErrStdioDisabled: the server is a stdio server, and the pool does
	// not run them (Options.AllowStdio is false).
	ErrStdioDisabled = errors.New("stdio MCP servers are disabled on this Kelpie server (they run arbitrary commands); use an sse or streamable_http server, or have the operator enable stdio servers")
	// ErrInvalidArguments: the tool arguments are not a JSON object.
	ErrInvalidArguments = errors.New("tool arguments must be a JSON object")
	// ErrTimeout: one of the pool's named timeouts (connectTimeout,
	// listTimeout, callTimeout) passed before the server answered.
	ErrTimeout = errors.New("MCP server did not answer in time")
	// ErrConnectionLost: the connection broke or the server's process
	// exited during the operation. The next operation reconnects.
	ErrConnectionLost = errors.New("connection to the MCP server was lost")
	// ErrClosed: the pool is closed, or the server was disconnected
	// while this operation was connecting to it.
	ErrClosed = errors.New("MCP connection pool is closed")
)

// Error is the error of a pool operation on one server.
type Error struct {
	// ServerID and ServerName name the server.
	ServerID   string
	ServerName string
	// Op is what failed: "connect", "list tools" or "call tool NAME".
	Op string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	name := e.ServerName
	if name == "" {
		name = e.ServerID
	}
	return fmt.Sprintf("mcp server %q: %s: %v", name, e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
