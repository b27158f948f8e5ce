// Package agentfile reads and writes Letta's Agent File format (.af): a
// JSON document that carries one or more agents with their memory blocks,
// tools, message history, and the groups, files, sources and MCP servers
// they use (Letta's AgentFileSchema, the "v2" multi-entity format).
//
// Entities refer to each other by IDs local to the file ("agent-0",
// "tool-3", "message-12", …): an agent lists its tools in ToolIDs and its
// blocks in BlockIDs, and names the messages of its context window in
// InContextMessageIDs. Parse decodes a file (also one whose JSON was
// encoded twice, as a JSON string holding the document, as some published
// files are), bounds its size and counts, and checks those references
// (Validate). Marshal writes a file as Letta exports it: indented JSON.
//
// Decoding a File (Parse, or json.Unmarshal into a File) keeps in each
// part's Extra the members its type does not model, and writing the part
// writes them back, so a file read and written again loses nothing, and a
// reader can tell which of a file's settings it ignored.
//
// The package is pure: it knows the format, not Kelpie's agents.
package agentfile

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// Limits on a file. Parse rejects a file over any of them.
const (
	// FileBytesMax bounds the size of a file, as given to Parse.
	FileBytesMax = 32 << 20
	// AgentsMax bounds the agents of a file.
	AgentsMax = 64
	// EntitiesMax bounds each of a file's lists of groups, blocks, files,
	// sources, tools, MCP servers and skills.
	EntitiesMax = 4096
	// MessagesPerAgentMax bounds the messages of one agent.
	MessagesPerAgentMax = 100000
	// problemsMax bounds the problems one validation error lists.
	problemsMax = 20
)

// DefaultBlockLimit is a block's character limit when the file gives none
// (Letta's default for blocks in agent files).
const DefaultBlockLimit = 100000

// Message roles (Letta's MessageRole).
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
	RoleFunction  = "function"
	RoleApproval  = "approval"
	RoleSummary   = "summary"
)

// Content part types (Letta's LettaMessageContentUnion).
const (
	PartText              = "text"
	PartImage             = "image"
	PartToolCall          = "tool_call"
	PartToolReturn        = "tool_return"
	PartReasoning         = "reasoning"
	PartRedactedReasoning = "redacted_reasoning"
	PartOmittedReasoning  = "omitted_reasoning"
)

// Tool types (Letta's ToolType) that matter to readers; any other string
// is kept as is.
const (
	ToolCustom      = "custom"
	ToolExternalMCP = "external_mcp"
)

// File is an agent file (AgentFileSchema).
type File struct {
	Agents     []Agent      `json:"agents"`
	Groups     []Group      `json:"groups"`
	Blocks     []Block      `json:"blocks"`
	Files      []FileRecord `json:"files"`
	Sources    []Source     `json:"sources"`
	Tools      []Tool       `json:"tools"`
	MCPServers []MCPServer  `json:"mcp_servers"`
	Skills     []Skill      `json:"skills,omitempty"`
	// Metadata describes the export (Letta writes its schema revision).
	Metadata map[string]any `json:"metadata,omitempty"`
	// CreatedAt is when the file was exported (see ParseTime).
	CreatedAt *string `json:"created_at,omitempty"`
	// Extra holds the members this package does not model.
	Extra Extra `json:"-"`
}

// Agent is one agent of a file (Letta's AgentSchema for agent files).
// Pointers distinguish a member that is absent or null from one that is
// empty.
type Agent struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	AgentType string  `json:"agent_type,omitempty"`
	System    *string `json:"system"`
	// Description and Metadata are free-form.
	Description *string        `json:"description"`
	Metadata    map[string]any `json:"metadata"`
	Tags        []string       `json:"tags"`
	// MemoryBlocks are blocks given inline (rare in exports, which list
	// blocks in File.Blocks and reference them in BlockIDs).
	MemoryBlocks []Block `json:"memory_blocks"`
	// Tools names tools; ToolIDs references File.Tools.
	Tools   []string `json:"tools"`
	ToolIDs []string `json:"tool_ids"`
	// BlockIDs references File.Blocks, SourceIDs File.Sources.
	BlockIDs  []string `json:"block_ids"`
	SourceIDs []string `json:"source_ids"`
	// ToolRules constrain the order of tool calls; kept verbatim.
	ToolRules []json.RawMessage `json:"tool_rules"`
	// IncludeBaseTools asks for the agent type's default tools on top of
	// the listed ones (Letta's default when absent: true).
	IncludeBaseTools *bool `json:"include_base_tools,omitempty"`
	// LLMConfig and Model name the chat model, EmbeddingConfig and
	// Embedding the embedding model (see ModelHandle, EmbeddingHandle).
	LLMConfig       *LLMConfig       `json:"llm_config"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
	Model           *string          `json:"model"`
	Embedding       *string          `json:"embedding"`
	// ToolExecEnvVars and Secrets are the variables tools run with; an
	// export blanks their values.
	ToolExecEnvVars map[string]string `json:"tool_exec_environment_variables,omitempty"`
	Secrets         map[string]string `json:"secrets,omitempty"`
	// MessageBufferAutoclear makes the agent forget each exchange.
	MessageBufferAutoclear bool `json:"message_buffer_autoclear"`
	// Messages is the agent's message history, oldest first;
	// InContextMessageIDs names those in its context window, in order.
	InContextMessageIDs []string    `json:"in_context_message_ids"`
	Messages            []Message   `json:"messages"`
	FilesAgents         []FileAgent `json:"files_agents"`
	GroupIDs            []string    `json:"group_ids"`
	Extra               Extra       `json:"-"`
}

// LLMConfig is the part of Letta's LLMConfig that names the model.
type LLMConfig struct {
	Model             string  `json:"model"`
	ModelEndpointType string  `json:"model_endpoint_type"`
	ContextWindow     int     `json:"context_window"`
	Handle            *string `json:"handle"`
	Extra             Extra   `json:"-"`
}

// EmbeddingConfig is the part of Letta's EmbeddingConfig that names the
// model.
type EmbeddingConfig struct {
	EmbeddingEndpointType string  `json:"embedding_endpoint_type"`
	EmbeddingModel        string  `json:"embedding_model"`
	EmbeddingDim          int     `json:"embedding_dim"`
	Handle                *string `json:"handle"`
	Extra                 Extra   `json:"-"`
}

// Block is a memory block (BlockSchema; also CreateBlock, inline in an
// agent, which has no ID).
type Block struct {
	ID          string         `json:"id,omitempty"`
	Label       string         `json:"label"`
	Value       string         `json:"value"`
	Limit       *int           `json:"limit,omitempty"`
	Description *string        `json:"description"`
	ReadOnly    bool           `json:"read_only"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	Tags        []string       `json:"tags,omitempty"`
	Extra       Extra          `json:"-"`
}

// CharLimit returns the block's character limit: Limit, or
// DefaultBlockLimit if the file gives none.
func (b *Block) CharLimit() int {
	if b.Limit == nil {
		return DefaultBlockLimit
	}
	return *b.Limit
}

// Tool is a tool (ToolSchema): a built-in one, named, or a custom one with
// its source code and JSON schema.
type Tool struct {
	ID string `json:"id"`
	// ToolType is Letta's tool type; "" means ToolCustom.
	ToolType    string   `json:"tool_type,omitempty"`
	Name        string   `json:"name,omitempty"`
	Description *string  `json:"description"`
	SourceType  *string  `json:"source_type"`
	SourceCode  *string  `json:"source_code"`
	Tags        []string `json:"tags"`
	// JSONSchema is the function schema: name, description, parameters.
	JSONSchema              map[string]any `json:"json_schema"`
	ArgsJSONSchema          map[string]any `json:"args_json_schema"`
	ReturnCharLimit         *int           `json:"return_char_limit,omitempty"`
	DefaultRequiresApproval *bool          `json:"default_requires_approval"`
	Metadata                map[string]any `json:"metadata_"`
	Extra                   Extra          `json:"-"`
}

// Type returns the tool's type, ToolCustom if the file gives none.
func (t *Tool) Type() string {
	if t.ToolType == "" {
		return ToolCustom
	}
	return t.ToolType
}

// FunctionName returns the tool's name: Name, else its JSON schema's.
func (t *Tool) FunctionName() string {
	if t.Name != "" {
		return t.Name
	}
	n, _ := t.JSONSchema["name"].(string)
	return n
}

// Message is one message of an agent's history (MessageSchema).
type Message struct {
	ID   string `json:"id"`
	Type string `json:"type,omitempty"`
	Role string `json:"role"`
	// Content is the message's text and other parts.
	Content Content `json:"content"`
	// Name is, on a tool message, the tool's name.
	Name    *string `json:"name"`
	OTID    *string `json:"otid"`
	Model   *string `json:"model"`
	AgentID *string `json:"agent_id"`
	// ToolCalls are an assistant message's tool calls.
	ToolCalls []ToolCall `json:"tool_calls"`
	// ToolCallID and ToolReturns are a tool message's answer(s).
	ToolCallID  *string      `json:"tool_call_id"`
	ToolReturns []ToolReturn `json:"tool_returns"`
	// CreatedAt is when the message was created (see ParseTime).
	CreatedAt string `json:"created_at,omitempty"`
	Extra     Extra  `json:"-"`
}

// ToolCall is a model's call of a tool (an OpenAI function tool call).
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
	Extra    Extra        `json:"-"`
}

// FunctionCall is the function a ToolCall calls, with its arguments as a
// JSON string.
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Extra     Extra  `json:"-"`
}

// ToolReturn is the result of one tool call.
type ToolReturn struct {
	ToolCallID *string  `json:"tool_call_id"`
	Status     string   `json:"status"`
	Stdout     []string `json:"stdout"`
	Stderr     []string `json:"stderr"`
	// FuncResponse is the function's answer: a string or content parts.
	FuncResponse json.RawMessage `json:"func_response,omitempty"`
	Extra        Extra           `json:"-"`
}

// Response returns the text of the function's answer ("" if none).
func (r *ToolReturn) Response() string {
	if len(r.FuncResponse) == 0 {
		return ""
	}
	var c Content
	if json.Unmarshal(r.FuncResponse, &c) != nil {
		return ""
	}
	return c.Text()
}

// Content is a message's content: a list of parts. It reads a plain JSON
// string as one text part, and null as no parts.
type Content []ContentPart

// ContentPart is one part of a message's content. Text holds a text part's
// text, Reasoning a reasoning part's; other members stay in Extra.
type ContentPart struct {
	Type      string  `json:"type"`
	Text      *string `json:"text,omitempty"`
	Reasoning *string `json:"reasoning,omitempty"`
	IsNative  *bool   `json:"is_native,omitempty"`
	Signature *string `json:"signature,omitempty"`
	Extra     Extra   `json:"-"`
}

// TextPart returns a text part holding s.
func TextPart(s string) ContentPart { return ContentPart{Type: PartText, Text: &s} }

// UnmarshalJSON implements json.Unmarshaler.
func (c *Content) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n':
		*c = nil
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Content{TextPart(s)}
		return nil
	case '[':
	default:
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[Content]()}
	}
	var parts []ContentPart
	if err := json.Unmarshal(b, &parts); err != nil {
		return err
	}
	*c = parts
	return nil
}

// Text returns the text parts' text, joined by newlines.
func (c Content) Text() string { return c.join(PartText) }

// Reasoning returns the reasoning parts' text, joined by newlines.
func (c Content) Reasoning() string { return c.join(PartReasoning) }

func (c Content) join(partType string) string {
	var out []string
	for _, p := range c {
		if p.Type != partType {
			continue
		}
		switch {
		case p.Text != nil && partType == PartText:
			out = append(out, *p.Text)
		case p.Reasoning != nil && partType == PartReasoning:
			out = append(out, *p.Reasoning)
		}
	}
	return strings.Join(out, "\n")
}

// Group is a multi-agent group (GroupSchema).
type Group struct {
	ID             string          `json:"id"`
	AgentIDs       []string        `json:"agent_ids"`
	Description    string          `json:"description"`
	ManagerConfig  json.RawMessage `json:"manager_config,omitempty"`
	ProjectID      *string         `json:"project_id,omitempty"`
	SharedBlockIDs []string        `json:"shared_block_ids"`
	Hidden         *bool           `json:"hidden,omitempty"`
	Extra          Extra           `json:"-"`
}

// FileRecord is a file of a source (FileSchema), with its content.
type FileRecord struct {
	ID                   string  `json:"id"`
	SourceID             string  `json:"source_id"`
	FileName             *string `json:"file_name,omitempty"`
	OriginalFileName     *string `json:"original_file_name,omitempty"`
	FilePath             *string `json:"file_path,omitempty"`
	FileType             *string `json:"file_type,omitempty"`
	FileSize             *int64  `json:"file_size,omitempty"`
	FileCreationDate     *string `json:"file_creation_date,omitempty"`
	FileLastModifiedDate *string `json:"file_last_modified_date,omitempty"`
	ProcessingStatus     string  `json:"processing_status,omitempty"`
	ErrorMessage         *string `json:"error_message,omitempty"`
	TotalChunks          *int    `json:"total_chunks,omitempty"`
	ChunksEmbedded       *int    `json:"chunks_embedded,omitempty"`
	Content              *string `json:"content,omitempty"`
	Extra                Extra   `json:"-"`
}

// Source is a data source (folder) of files (SourceSchema).
type Source struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Description        *string          `json:"description,omitempty"`
	Instructions       *string          `json:"instructions,omitempty"`
	Metadata           map[string]any   `json:"metadata,omitempty"`
	Embedding          *string          `json:"embedding,omitempty"`
	EmbeddingChunkSize *int             `json:"embedding_chunk_size,omitempty"`
	EmbeddingConfig    *EmbeddingConfig `json:"embedding_config,omitempty"`
	Extra              Extra            `json:"-"`
}

// FileAgent is a file attached to an agent (FileAgentSchema).
type FileAgent struct {
	ID             string  `json:"id"`
	AgentID        string  `json:"agent_id"`
	FileID         string  `json:"file_id"`
	SourceID       string  `json:"source_id"`
	FileName       string  `json:"file_name"`
	IsOpen         bool    `json:"is_open"`
	VisibleContent *string `json:"visible_content,omitempty"`
	LastAccessedAt *string `json:"last_accessed_at,omitempty"`
	StartLine      *int    `json:"start_line,omitempty"`
	EndLine        *int    `json:"end_line,omitempty"`
	Extra          Extra   `json:"-"`
}

// MCPServer is an MCP server the tools use (MCPServerSchema), its
// credentials removed.
type MCPServer struct {
	ID          string         `json:"id"`
	ServerType  string         `json:"server_type"`
	ServerName  string         `json:"server_name"`
	ServerURL   *string        `json:"server_url,omitempty"`
	StdioConfig map[string]any `json:"stdio_config,omitempty"`
	Metadata    map[string]any `json:"metadata_,omitempty"`
	Extra       Extra          `json:"-"`
}

// Skill is a skill packaged with the agents (SkillSchema): its files by
// path.
type Skill struct {
	Name      string            `json:"name"`
	Files     map[string]string `json:"files,omitempty"`
	SourceURL *string           `json:"source_url,omitempty"`
	Extra     Extra             `json:"-"`
}

// ModelHandle returns the agent's chat model as a "provider/model" handle:
// Model, else LLMConfig's handle, else its endpoint type and model; "" if
// the file names none.
func (a *Agent) ModelHandle() string {
	if a.Model != nil && *a.Model != "" {
		return *a.Model
	}
	c := a.LLMConfig
	switch {
	case c == nil:
		return ""
	case c.Handle != nil && *c.Handle != "":
		return *c.Handle
	case c.Model != "" && c.ModelEndpointType != "":
		return c.ModelEndpointType + "/" + c.Model
	}
	return c.Model
}

// EmbeddingHandle returns the agent's embedding model as a
// "provider/model" handle, as ModelHandle does the chat model's.
func (a *Agent) EmbeddingHandle() string {
	if a.Embedding != nil && *a.Embedding != "" {
		return *a.Embedding
	}
	c := a.EmbeddingConfig
	switch {
	case c == nil:
		return ""
	case c.Handle != nil && *c.Handle != "":
		return *c.Handle
	case c.EmbeddingModel != "" && c.EmbeddingEndpointType != "":
		return c.EmbeddingEndpointType + "/" + c.EmbeddingModel
	}
	return c.EmbeddingModel
}

// timeLayouts are the forms of timestamps found in agent files: RFC 3339,
// and Python's isoformat without a zone (read as UTC) or with a space.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ParseTime parses a timestamp of an agent file. A time without a zone is
// UTC.
func ParseTime(s string) (time.Time, error) {
	var err error
	for _, layout := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// FormatTime formats t as agent files write timestamps (RFC 3339, UTC).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
