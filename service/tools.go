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
// update committed. A custom tool's definition is copied into the agent:
// later edits to the tool reach the agent only when it is attached again.
// Attaching a tool that is attached already changes nothing (for a custom
// tool it refreshes the copy).
func (s *Service) AttachTool(ctx context.Context, agentID, toolID string) (*agent.Agent, error) {
	t, err := s.Tools().Get(ctx, toolID)
	if err != nil {
		return nil, err
	}
	var req agent.UpdateRequest
	if t.Builtin() {
		req.AttachTools = []string{t.Name}
	} else {
		req.AttachCustomTools = []agent.CustomTool{t.CustomTool}
	}
	return s.UpdateAgent(ctx, agentID, req)
}

// DetachTool detaches a tool from an agent, by ID: a built-in tool, or an
// attached copy of a custom tool (even one since deleted from the
// registry). Detaching a tool that is not attached changes nothing.
func (s *Service) DetachTool(ctx context.Context, agentID, toolID string) (*agent.Agent, error) {
	name := toolID // custom copies are matched by ID
	if n, ok := tools.BuiltinName(toolID); ok {
		name = n
	}
	return s.UpdateAgent(ctx, agentID, agent.UpdateRequest{DetachTools: []string{name}})
}

// ResolveTools maps the tool names and IDs of an agent's create or update
// request to tool names and copies of the custom tools among them (see
// tools.Registry.Resolve). For an update, agentID names the agent, whose
// attached copies stand in for custom tools since deleted from the
// registry; for a create it is empty.
func (s *Service) ResolveTools(ctx context.Context, agentID string, names, ids []string) ([]string, []agent.CustomTool, error) {
	reg := s.Tools()
	var attached []agent.CustomTool
	if agentID != "" {
		for _, id := range ids {
			if _, ok := tools.BuiltinName(id); ok {
				continue
			}
			if _, err := reg.Get(ctx, id); err != nil {
				// Not in the registry: maybe still attached to the agent.
				ag, err := s.GetAgent(ctx, agentID)
				if err != nil {
					return nil, nil, err
				}
				attached = ag.CustomTools
				break
			}
		}
	}
	return reg.Resolve(ctx, names, ids, attached)
}
