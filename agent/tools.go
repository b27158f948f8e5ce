package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// Built-in tool names (Letta's).
const (
	ToolSendMessage          = tooldef.SendMessage
	ToolCoreMemoryAppend     = tooldef.CoreMemoryAppend
	ToolCoreMemoryReplace    = tooldef.CoreMemoryReplace
	ToolArchivalMemoryInsert = tooldef.ArchivalMemoryInsert
	ToolArchivalMemorySearch = tooldef.ArchivalMemorySearch
	ToolConversationSearch   = tooldef.ConversationSearch
	ToolMemoryInsert         = tooldef.MemoryInsert
	ToolMemoryReplace        = tooldef.MemoryReplace
	ToolMemoryRethink        = tooldef.MemoryRethink
)

// Tool result statuses.
const (
	ToolSuccess = "success"
	ToolError   = "error"
)

// toolSearchResultsMax bounds the results a search tool returns.
const toolSearchResultsMax = 10

// runFunc runs a built-in tool's call in the step.
type runFunc func(t *turn, ctx context.Context, args map[string]any) (string, error)

// builtin is a built-in tool: its definition and, for one the loop runs
// itself, how.
type builtin struct {
	tooldef.Builtin
	run runFunc
}

// builtins are the built-in tools by name: tooldef's catalog, with the
// behaviour of the tools the actor runs (builtinRuns, and the memory
// tools: memorytools.go).
var builtins = func() map[string]builtin {
	m := map[string]builtin{}
	for _, n := range tooldef.Names() {
		def, _ := tooldef.Lookup(n)
		m[n] = builtin{Builtin: def, run: builtinRuns[n]}
	}
	return m
}()

// builtinRuns runs the built-in tools other than the memory tools.
var builtinRuns = map[string]runFunc{
	ToolSendMessage: func(t *turn, _ context.Context, args map[string]any) (string, error) {
		if _, err := stringArg(args, "message"); err != nil {
			return "", err
		}
		return "Sent message successfully.", nil
	},
	ToolArchivalMemoryInsert: func(t *turn, _ context.Context, args map[string]any) (string, error) {
		content, err := stringArg(args, "content")
		if err != nil {
			return "", err
		}
		tags, err := stringsArg(args, "tags")
		if err != nil {
			return "", err
		}
		req := &InsertPassageRequest{Text: content, Tags: tags, EmbeddingModel: t.ag.Embedding}
		if PassageEmbeddable(content) { // otherwise the insert refuses the text
			if req.Embedding, err = t.embedding(); err != nil {
				return "", fmt.Errorf("%w; nothing was stored", err)
			}
		}
		_, err = insertPassage(t.c, req)
		return "", err
	},
	ToolArchivalMemorySearch: func(t *turn, ctx context.Context, args map[string]any) (string, error) {
		req, err := searchToolRequest(args)
		if err != nil {
			return "", err
		}
		if req.EmbeddingModel = t.ag.Embedding; QueryEmbeddable(req.Query) {
			if req.QueryEmbedding, err = t.embedding(); err != nil {
				return "", fmt.Errorf("%w; the search was not run", err)
			}
		}
		resp, err := searchPassages(ctx, t.c, req)
		if err != nil {
			return "", err
		}
		return searchToolResult(resp)
	},
	ToolConversationSearch: func(t *turn, ctx context.Context, args map[string]any) (string, error) {
		query, err := stringArg(args, "query")
		if err != nil {
			return "", err
		}
		kvs, err := t.c.Scan(ctx, storage.ScanOptions{Start: t.th.messagePrefix(), End: t.th.messagePrefix().End(), Reverse: true, Limit: storage.ScanLimitMax})
		if err != nil {
			return "", err
		}
		var hits []string
		for _, kv := range kvs {
			var m Message
			if err := json.Unmarshal(kv.Value, &m); err != nil {
				return "", fmt.Errorf("%w: message: %v", storage.ErrCorrupt, err)
			}
			if (m.Role == llm.RoleUser || m.Role == llm.RoleAssistant) && containsFold(m.Content, query) && len(hits) < toolSearchResultsMax {
				hits = append(hits, m.Role+": "+m.Content)
			}
		}
		return resultJSON(hits)
	},
}

// DefaultTools returns the tools an agent of the given type gets when its
// creator names none.
func DefaultTools(agentType string) []string {
	archival := []string{ToolArchivalMemoryInsert, ToolArchivalMemorySearch, ToolConversationSearch}
	switch agentType {
	case TypeMemGPT:
		return append([]string{ToolSendMessage, ToolCoreMemoryAppend, ToolCoreMemoryReplace}, archival...)
	case TypeMemGPTV2:
		return append([]string{ToolSendMessage, ToolMemoryInsert, ToolMemoryReplace, ToolMemoryRethink}, archival...)
	case TypeReact:
		return []string{ToolArchivalMemorySearch, ToolConversationSearch}
	}
	return append([]string{ToolMemoryInsert, ToolMemoryReplace, ToolMemoryRethink}, archival...)
}

// heartbeatParam is added to every tool of a memgpt_agent: the model asks
// for another step by setting it.
const heartbeatParam = "request_heartbeat"

// withHeartbeat adds the request_heartbeat parameter to a tool schema.
func withHeartbeat(params json.RawMessage) json.RawMessage {
	var schema map[string]any
	if json.Unmarshal(params, &schema) != nil {
		return params
	}
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	props[heartbeatParam] = map[string]any{"type": "boolean",
		"description": "Request an immediate heartbeat after function execution. Set to true if you want to send a follow-up message or run a follow-up tool."}
	schema["properties"] = props
	out, err := json.Marshal(schema)
	if err != nil {
		return params
	}
	return out
}

// checkTools checks that every named tool is a built-in one (custom
// tools are referenced by ID, see checkCustomTools).
func checkTools(names []string) error {
	for _, n := range names {
		if _, ok := builtins[n]; !ok {
			return invalidf("unknown tool %q", n)
		}
	}
	return nil
}

// ToolSchemas describes the named built-in tools for the model, in the
// given order.
func ToolSchemas(names []string) []llm.Tool { return tooldef.Schemas(names) }

// runTool runs one tool call. Failures go back to the model as an error
// result; they do not fail the turn.
func (t *turn) runTool(ctx context.Context, tc ToolCall) (result, status string, terminal bool) {
	b, ok := builtins[tc.Name]
	if !ok || !slices.Contains(t.ag.Tools, tc.Name) {
		ct, err := t.customTool(ctx, tc.Name)
		if err != nil {
			t.fatal = err
			return "", ToolError, false
		}
		if ct == nil {
			return fmt.Sprintf("Error: tool %q is not available to this agent", tc.Name), ToolError, false
		}
		result, status = t.customResult(ct, tc)
		return result, status, false
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(tc.Arguments), &args); err != nil {
		return fmt.Sprintf("Error: arguments are not a JSON object: %v", err), ToolError, false
	}
	t.callID = tc.ID
	var out string
	var err error
	if b.External != "" {
		out, status = t.externalResult(tc)
		if status == ToolError {
			err = errors.New(strings.TrimPrefix(out, "Error: "))
		}
	} else {
		out, err = b.run(t, ctx, args)
	}
	if fatal := (*fatalError)(nil); errors.As(err, &fatal) && t.fatal == nil {
		t.fatal = fatal.err // the caller fails the invocation
	}
	status, terminal = ToolSuccess, b.Terminal
	if err != nil {
		out, status = "Error: "+err.Error(), ToolError
	}
	if t.ag.AgentType == TypeMemGPT {
		// memgpt_agent: the turn goes on only when the model asks for a
		// heartbeat, or to let it react to a failed call.
		heartbeat, _ := args[heartbeatParam].(bool)
		terminal = !heartbeat && status != ToolError
	}
	if out == "" {
		out = "None"
	}
	return out, status, terminal
}

// agentTools describes the agent's tools for the model: its built-in
// tools, then its custom tools as custom defines them (their current
// definitions, read in the invocation).
func agentTools(ag *Agent, custom []CustomTool) []llm.Tool {
	tools := ToolSchemas(ag.Tools)
	for i := range custom {
		tools = append(tools, custom[i].LLMTool())
	}
	if ag.AgentType == TypeMemGPT {
		for i := range tools {
			tools[i].Parameters = withHeartbeat(tools[i].Parameters)
		}
	}
	return tools
}

// writableBlock returns the block the call's label names, as the agent
// sees it now: a private block in the agent's state, or the current value
// of an attached shared block (read in the invocation's transaction).
func (t *turn) writableBlock(ctx context.Context, args map[string]any) (*Block, error) {
	label, err := stringArg(args, "label")
	if err != nil {
		return nil, err
	}
	v, _, err := ResolveBlocks(ctx, t.c.GetShared, t.ag)
	if err != nil {
		return nil, &fatalError{err}
	}
	b := v.Block(label)
	if b == nil {
		return nil, fmt.Errorf("no memory block labelled %q", label)
	}
	if b.ReadOnly {
		return nil, fmt.Errorf("memory block %q is read-only", label)
	}
	if own := t.th.isolated(label); own != nil {
		// The conversation's own copy: its record commits with the step.
		return own, nil
	}
	if !b.Shared {
		return t.ag.blockByID(b.ID), nil
	}
	return b, nil
}

// setBlock gives b a new value within its limit: in the agent's state for
// a private block, in the block's record for a shared one (read again
// here, so the write carries the record's other fields as this
// transaction sees them).
func (t *turn) setBlock(ctx context.Context, b *Block, value string) error {
	if err := checkBlockValue(b, value); err != nil {
		return err
	}
	if b.Shared {
		rec, err := LoadSharedBlock(ctx, t.c.GetShared, b.ID)
		if err != nil {
			return &fatalError{err}
		}
		rec.Value = value
		if err := saveSharedBlock(t.c, rec); err != nil {
			return &fatalError{err}
		}
	} else {
		b.Value = value
	}
	t.ag.UpdatedAt = t.c.Now().UTC()
	return nil
}

func stringArg(args map[string]any, name string) (string, error) {
	v, ok := args[name].(string)
	if !ok {
		return "", fmt.Errorf("argument %q must be a string", name)
	}
	return v, nil
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func resultJSON(v []string) (string, error) {
	if v == nil {
		v = []string{}
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// BuiltinTools returns the names of every built-in tool, sorted.
func BuiltinTools() []string { return tooldef.Names() }
