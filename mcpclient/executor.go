package mcpclient

import (
	"context"
	"errors"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// Executor returns a toolexec.Executor that runs calls as tools of server
// s: Call.Name is the MCP tool's name and Call.Arguments its arguments.
// Call.Env is not used (MCP servers have their own configuration).
//
// Failures of the tool — the server's JSON-RPC error, callTimeout
// passing, the connection breaking during the call — are StatusError
// results the model sees; Run returns an error only when the call could
// not be made (the server unreachable or refused, bad arguments, the pool
// closed) or ctx ended it.
func (p *Pool) Executor(s Server) toolexec.Executor {
	return toolexec.Func(func(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
		res, err := p.CallTool(ctx, s, call.Name, call.Arguments)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return toolexec.Result{}, err
		}
		var e *Error
		if errors.As(err, &e) && e.Op != opConnect {
			if serverError(err) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrConnectionLost) {
				return toolexec.Result{Status: toolexec.StatusError, Return: err.Error()}, nil
			}
		}
		return toolexec.Result{}, err
	})
}
