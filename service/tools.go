package service

import (
	"context"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/tools"
)

// Tools returns the tools registry (package tools) in the service's
// store. New tool IDs come from the service's "ids" stream.
func (s *Service) Tools() *tools.Registry { return s.tools }

// AttachTool attaches a tool to an agent and returns the state that
// update committed. A custom tool is attached by reference: the agent
// reads the tool's record whenever it uses its tools, so later edits to
// the tool reach it (see agent.ResolveTools). Attaching a tool that is
// attached already changes nothing; an unknown tool is agent.ErrNotFound.
func (s *Service) AttachTool(ctx context.Context, agentID, toolID string) (*agent.Agent, error) {
	var req agent.UpdateRequest
	if name, ok := tools.BuiltinName(toolID); ok {
		req.AttachTools = []string{name}
	} else {
		req.AttachCustomTools = []string{toolID}
	}
	return s.UpdateAgent(ctx, agentID, req)
}

// DetachTool detaches a tool from an agent, by ID: a built-in tool, or a
// custom tool (even one since deleted from the registry, whose dangling
// reference the update drops anyway). Detaching a tool that is not
// attached changes nothing.
func (s *Service) DetachTool(ctx context.Context, agentID, toolID string) (*agent.Agent, error) {
	name := toolID // custom tools are detached by ID
	if n, ok := tools.BuiltinName(toolID); ok {
		name = n
	}
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{DetachTools: []string{name}})
}

// ResolveTools maps the tool names and IDs of an agent's create or update
// request to the names of its built-in tools and the IDs of its custom
// tools (see tools.Registry.Resolve); the agent checks the custom tools'
// records itself, in its invocation.
func (s *Service) ResolveTools(ctx context.Context, names, ids []string) (builtinNames, customIDs []string, err error) {
	return s.Tools().Resolve(ctx, names, ids)
}
