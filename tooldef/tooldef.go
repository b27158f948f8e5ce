// Package tooldef defines tools as the model is offered them and as they
// are stored: the catalog of built-in tools (names, descriptions, JSON
// Schemas, whether a call ends the turn, whether it runs outside the
// actor) and the record of a custom tool, which the tools registry writes
// and agents read. It sits below both, so neither imports the other; the
// agent loop attaches the built-ins' behaviour (package agent), the
// executors run the external ones (packages web, sandbox, mcpclient).
package tooldef

import (
	"encoding/json"
	"slices"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/blockedit"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/toolschema"
)

// Built-in tool names (Letta's).
const (
	SendMessage          = "send_message"
	CoreMemoryAppend     = "core_memory_append"
	CoreMemoryReplace    = "core_memory_replace"
	ArchivalMemoryInsert = "archival_memory_insert"
	ArchivalMemorySearch = "archival_memory_search"
	ConversationSearch   = "conversation_search"
	MemoryInsert         = "memory_insert"
	MemoryReplace        = "memory_replace"
	MemoryRethink        = "memory_rethink"
	Memory               = "memory"
	MemoryApplyPatch     = "memory_apply_patch"
	MemoryFinishEdits    = "memory_finish_edits"
	FetchWebpage         = toolschema.NameFetchWebpage
	WebSearch            = toolschema.NameWebSearch
	RunCode              = toolschema.NameRunCode
)

// Kinds of tools that run outside the actor (Builtin.External, and the
// kind of a custom tool's calls).
const (
	// ExternalWeb: fetch_webpage and web_search.
	ExternalWeb = "web"
	// ExternalSandbox: run_code, and custom tools defined by source code,
	// run in the tool sandbox.
	ExternalSandbox = "sandbox"
	// ExternalMCP: custom tools an MCP server provides (tool_type
	// external_mcp), called on their server.
	ExternalMCP = "mcp"
)

// Builtin is a built-in tool's definition.
type Builtin struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the call's arguments.
	Parameters json.RawMessage
	// Terminal tools end the turn after they run.
	Terminal bool
	// External, if set, is the kind of a tool that runs outside the
	// actor; the agent loop runs the others itself.
	External string
}

// Tool describes b for the model.
func (b Builtin) Tool() llm.Tool {
	return llm.Tool{Name: b.Name, Description: b.Description, Parameters: b.Parameters}
}

// builtins is the catalog, by name.
var builtins = func() map[string]Builtin {
	m := map[string]Builtin{
		SendMessage: {Name: SendMessage, Terminal: true, Description: "Sends a message to the human user.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"message":{"type":"string","description":"Message contents. All unicode (including emojis) are supported."}},"required":["message"]}`)},
		ArchivalMemoryInsert: {Name: ArchivalMemoryInsert, Description: "Add to archival memory. Make sure to phrase the memory contents such that it can be easily queried later.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"content":{"type":"string","description":"Content to write to the memory. All unicode (including emojis) are supported."},"tags":{"type":"array","items":{"type":"string"},"description":"Optional list of tags to associate with this memory for better organization and filtering."}},"required":["content"]}`)},
		ArchivalMemorySearch: {Name: ArchivalMemorySearch, Description: "Search archival memory by meaning (embedding similarity) when the agent has an embedding model, otherwise by full-text (BM25) ranking, with optional tag and time filters.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"String to search for."},"tags":{"type":"array","items":{"type":"string"},"description":"Optional list of tags to filter search results. Only passages with these tags will be returned."},"tag_match_mode":{"type":"string","enum":["any","all"],"description":"How to match tags - 'any' to match passages with any of the tags, 'all' to match only passages with all tags. Defaults to 'any'."},"top_k":{"type":"integer","description":"Maximum number of results to return. Defaults to 10."},"start_datetime":{"type":"string","description":"Filter results to passages created on or after this ISO 8601 datetime."},"end_datetime":{"type":"string","description":"Filter results to passages created on or before this ISO 8601 datetime."}},"required":["query"]}`)},
		ConversationSearch: {Name: ConversationSearch, Description: "Search prior conversation history using case-insensitive string matching.",
			Parameters: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string","description":"String to search for."}},"required":["query"]}`)},
	}
	for _, t := range blockedit.Tools() {
		m[t.Name] = Builtin{Name: t.Name, Description: t.Description, Parameters: t.Parameters}
	}
	for _, t := range toolschema.Tools() {
		m[t.Name] = Builtin{Name: t.Name, Description: t.Description, Parameters: t.Parameters, External: ExternalWeb}
	}
	rc := toolschema.RunCodeTool()
	m[rc.Name] = Builtin{Name: rc.Name, Description: rc.Description, Parameters: rc.Parameters, External: ExternalSandbox}
	return m
}()

// Lookup returns the built-in tool named name.
func Lookup(name string) (Builtin, bool) {
	b, ok := builtins[name]
	return b, ok
}

// Names returns the names of every built-in tool, sorted.
func Names() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Schemas describes the named built-in tools for the model, in the given
// order; names of no built-in tool are left out.
func Schemas(names []string) []llm.Tool {
	out := make([]llm.Tool, 0, len(names))
	for _, n := range names {
		if b, ok := builtins[n]; ok {
			out = append(out, b.Tool())
		}
	}
	return out
}

// IsExternal reports whether the built-in tool name runs outside the actor.
func IsExternal(name string) bool {
	b, ok := builtins[name]
	return ok && b.External != ""
}

// TypeMCP is the tool_type of a custom tool an MCP server provides.
const TypeMCP = "external_mcp"

// MetadataBytesMax bounds a tool's metadata_, encoded.
const MetadataBytesMax = 64 << 10

// Key is the key of a custom tool's record, in the shared key space.
func Key(id string) []byte { return actor.SharedKey("tool", id) }
