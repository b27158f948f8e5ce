// Package toolexec is the contract between the agent loop and whatever
// runs a tool outside the agent's actor: a sandboxed custom tool, run_code,
// an MCP server, a web fetch or search.
//
// The run driver executes a step's external tool calls after the model
// call and before the step is applied (prepare → model → execute → apply),
// so a slow tool never holds the actor. An Executor must honour ctx: when
// it is done (the run was cancelled, or the tool's time bound passed) the
// call stops and Run returns.
//
// Execution is at least once: a crash between a tool's execution and the
// commit of its step runs the tool again when the run resumes. Call.ID is
// the model's tool call ID, the same on every attempt, so a tool can
// deduplicate its side effects.
//
// This package has no dependencies inside the module; implementations live
// in packages of their own and the agent loop imports only this one.
package toolexec

import (
	"context"
	"encoding/json"
	"fmt"
)

// Result statuses (Letta's tool return statuses).
const (
	StatusSuccess = "success"
	StatusError   = "error"
)

// Call is one tool call to execute.
type Call struct {
	// ID is the model's tool call ID: stable across re-executions after a
	// crash, for deduplication.
	ID string
	// Name is the tool's name as the model called it.
	Name string
	// Arguments is the JSON object of arguments the model gave.
	Arguments json.RawMessage
	// AgentID and ToolID name the agent and the tool's record.
	AgentID string
	ToolID  string
	// Env is the environment the tool runs with: the tool's and the
	// agent's variables and secrets. Executors add nothing of their own
	// process environment.
	Env map[string]string
	// Source is the program of a tool defined by source code (custom
	// tools, run_code); nil for tools that are not.
	Source *Source
	// MCPServerID names the MCP server record of a tool an MCP server
	// provides (Name is then the server's tool name); "" for others.
	MCPServerID string
}

// Source is a tool's program.
type Source struct {
	// Language is "python", "javascript" or "typescript".
	Language string
	// Code is the source. For a custom tool it defines a function named
	// Call.Name (Entry, if set), which is called with the arguments as
	// keyword arguments (Python) or as one object (JavaScript).
	Code string
	// Entry names the function to call; "" means Call.Name. For run_code,
	// "" with Script set runs Code as a script.
	Entry string
	// Script runs Code as a whole program (run_code): there is no
	// function to call, and the result is what it printed.
	Script bool
	// Requirements are packages the code needs (pip requirement specifiers
	// for Python, npm package specifiers for JavaScript).
	Requirements []string
}

// Result is what a tool returned.
type Result struct {
	// Status is StatusSuccess or StatusError.
	Status string
	// Return is the tool's return value as text: a string as it is, any
	// other value as JSON; for an error, the message the model sees.
	Return string
	// Stdout and Stderr are what the tool printed, bounded by the
	// executor; empty for tools that print nothing.
	Stdout string
	Stderr string
}

// Executor runs tool calls. Run returns a Result for anything the tool
// itself did, failures included (StatusError: an exception, a non-zero
// exit, a limit, a server's error); an error return means the call could
// not be attempted at all or ctx ended it, and the loop turns it into a
// tool error the model sees.
type Executor interface {
	Run(ctx context.Context, call Call) (Result, error)
}

// Func adapts a function to Executor.
type Func func(ctx context.Context, call Call) (Result, error)

// Run calls f.
func (f Func) Run(ctx context.Context, call Call) (Result, error) { return f(ctx, call) }

// Errorf is a StatusError result with a formatted message.
func Errorf(format string, args ...any) Result {
	return Result{Status: StatusError, Return: fmt.Sprintf(format, args...)}
}
