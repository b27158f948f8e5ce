package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// Custom tools by reference. A custom tool (package tools, the registry)
// is a record in the shared key space, the single source of truth for its
// name, description, schemas and settings. An agent that attaches it
// keeps only its ID (Agent.CustomToolIDs); every use of the agent's tools
// — the tool list a step offers the model (OpPrepare), the resolution of
// the model's calls (OpApply, and the answers to pending calls), the
// agent's tools as the API returns them, the context window — reads the
// records' current definitions inside the invocation's transaction.
// Agents never write tool records. A reference whose record is gone (the
// tool was deleted) is treated as detached: reads leave it out, and the
// agent's next change to its tools (attach, detach, replace) drops it
// from the state.

// CustomToolKey is the key of a custom tool's record (the registry's; see
// package tools).
func CustomToolKey(id string) []byte { return tooldef.Key(id) }

// LoadCustomTool reads a custom tool's record; ErrNotFound if there is
// none.
func LoadCustomTool(ctx context.Context, get Getter, id string) (*CustomTool, error) {
	return loadShared[CustomTool](ctx, get, CustomToolKey(id), "tool "+id)
}

// loadCustomTools reads the records of the custom tools with the given
// IDs, in order. A deleted tool is left out and its ID returned in
// missing; so is a tool whose current name is a built-in's or that of an
// earlier one in the list (names are unique in the registry, but reads
// outside a validated transaction may see two renames half done).
func loadCustomTools(ctx context.Context, get Getter, ids []string) (defs []CustomTool, missing []string, err error) {
	defs = make([]CustomTool, 0, len(ids))
	for _, id := range ids {
		t, err := LoadCustomTool(ctx, get, id)
		if errors.Is(err, ErrNotFound) {
			missing = append(missing, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if _, builtin := builtins[t.Name]; builtin || slices.ContainsFunc(defs, func(o CustomTool) bool { return o.Name == t.Name }) {
			continue
		}
		defs = append(defs, *t)
	}
	return defs, missing, nil
}

// ResolveTools returns a copy of ag whose custom tools are current:
// CustomTools holds the current definitions of the referenced tools,
// CustomToolIDs their IDs, and Tools the built-in tools' names followed by
// the custom tools' current names. References whose record is gone are
// left out and their IDs returned in missing. ag is not changed.
func ResolveTools(ctx context.Context, get Getter, ag *Agent) (view *Agent, missing []string, err error) {
	defs, missing, err := loadCustomTools(ctx, get, ag.CustomToolIDs)
	if err != nil {
		return nil, nil, err
	}
	cp := *ag
	cp.Tools = slices.Clone(ag.Tools)
	cp.CustomToolIDs = make([]string, 0, len(defs))
	for _, d := range defs {
		cp.Tools = append(cp.Tools, d.Name)
		cp.CustomToolIDs = append(cp.CustomToolIDs, d.ID)
	}
	cp.CustomTools = nil
	if len(defs) > 0 {
		cp.CustomTools = defs
	}
	if len(cp.CustomToolIDs) == 0 {
		cp.CustomToolIDs = nil
	}
	return &cp, missing, nil
}

// Resolve returns a copy of ag as replies and lists show it: its shared
// blocks and custom tools read from their records (ResolveBlocks,
// ResolveTools). ag is not changed.
func Resolve(ctx context.Context, get Getter, ag *Agent) (*Agent, error) {
	v, _, err := ResolveBlocks(ctx, get, ag)
	if err != nil {
		return nil, err
	}
	v, _, err = ResolveTools(ctx, get, v)
	return v, err
}

// customTools returns the current definitions of the agent's custom
// tools, read in the invocation's transaction on first use and kept for
// the rest of the invocation, so a step's calls are resolved against one
// reading.
func (t *turn) customTools(ctx context.Context) ([]CustomTool, error) {
	if t.custom == nil {
		defs, _, err := loadCustomTools(ctx, t.c.GetShared, t.ag.CustomToolIDs)
		if err != nil {
			return nil, err
		}
		t.custom = &defs
	}
	return *t.custom, nil
}

// customTool returns the agent's custom tool currently named name, or nil
// (a tool renamed or deleted since the model was offered it is no longer
// found by its old name).
func (t *turn) customTool(ctx context.Context, name string) (*CustomTool, error) {
	defs, err := t.customTools(ctx)
	if err != nil {
		return nil, err
	}
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i], nil
		}
	}
	return nil, nil
}

// checkCustomTools checks an agent's custom tools after a change, given
// by their current definitions: within CustomToolsMax, no name twice or a
// built-in's, and the definitions offered to the model (CustomToolsBytes)
// within CustomToolsBytesMax unless they were over it already (wasBytes,
// the size before the change) and the change does not add to them: tools
// that grew past the bound through edits can still be detached.
func checkCustomTools(defs []CustomTool, wasBytes int) error {
	if len(defs) > CustomToolsMax {
		return invalidf("%d custom tools, over the limit of %d", len(defs), CustomToolsMax)
	}
	for i, ct := range defs {
		if _, ok := builtins[ct.Name]; ok || ct.Name == "" {
			return invalidf("custom tool %s is unnamed or has a built-in tool's name %q", ct.ID, ct.Name)
		}
		if slices.ContainsFunc(defs[:i], func(o CustomTool) bool { return o.Name == ct.Name }) {
			return invalidf("two custom tools named %q", ct.Name)
		}
	}
	if n := CustomToolsBytes(defs); n > CustomToolsBytesMax && n > wasBytes {
		return invalidf("the custom tools' definitions for the model take %d bytes, over the limit of %d; detach some or shorten their descriptions and schemas", n, CustomToolsBytesMax)
	}
	return nil
}

// CustomToolsBytes is the size of the custom tools' definitions as the
// model is offered them: the sum of their names', descriptions' and
// serialized parameter schemas' lengths.
func CustomToolsBytes(defs []CustomTool) int {
	n := 0
	for i := range defs {
		lt := defs[i].LLMTool()
		n += len(lt.Name) + len(lt.Description) + len(lt.Parameters)
	}
	return n
}

// ErrToolsTooLarge: the custom tools' definitions a step would offer the
// model are over CustomToolsBytesMax (the tools grew after they were
// attached). The run fails with this error rather than send them.
var ErrToolsTooLarge = errors.New("agent: custom tool definitions over the size limit")

// stepTools returns the tools a step offers the model: the built-in tools,
// then the custom tools' current definitions. It fails with
// ErrToolsTooLarge if those are over CustomToolsBytesMax.
func (t *turn) stepTools(ctx context.Context) ([]llm.Tool, error) {
	defs, err := t.customTools(ctx)
	if err != nil {
		return nil, err
	}
	if n := CustomToolsBytes(defs); n > CustomToolsBytesMax {
		return nil, fmt.Errorf("%w: the custom tools' definitions take %d bytes, over the limit of %d; detach some or shorten their descriptions and schemas",
			ErrToolsTooLarge, n, CustomToolsBytesMax)
	}
	return agentTools(t.ag, defs), nil
}
