// Package mcpclient is Kelpie's client side of the Model Context Protocol:
// connections to the MCP servers users configure, over the three
// transports Letta offers (stdio, sse and streamable_http), on the
// official Go SDK.
//
// A Pool keeps one connection per server, reused across calls and made
// again when it breaks or when the server's configuration changes. Its
// operations, ListTools and CallTool, are bounded by named timeouts
// (connectTimeout, listTimeout, callTimeout) and by their context: a
// server that hangs or dies gives an error promptly, never a stuck call.
// stdio servers are child processes, run only when Options.AllowStdio
// says so, with no environment but what their configuration gives and a
// minimal PATH; Close ends them.
//
// Pool.Executor adapts one server's tools to toolexec.Executor, the
// contract of the agent loop's external tools.
package mcpclient
