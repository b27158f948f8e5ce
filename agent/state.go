// Package agent is the agent actor: an agent's state (configuration and
// core memory blocks), its message log and archival passages (separate
// keys in the actor's KV space), the operations on them, and the agent
// loop that calls the model and runs its memory tools.
//
// Everything here runs inside one actor invocation, so each operation's
// changes — state, messages, passages and the agents-by-creation-time index
// — commit in one transaction, and the reply carries the state that
// transaction committed.
package agent

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/errkind"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// Namespace is the actor namespace of agents.
const Namespace = "agents"

// Limits, enforced at creation and update; over a limit the request fails
// with ErrInvalid and nothing changes.
const (
	// NameBytesMax bounds an agent's name.
	NameBytesMax = 256
	// SystemBytesMax bounds the system prompt.
	SystemBytesMax = 64 << 10
	// BlocksMax bounds the number of core memory blocks.
	BlocksMax = 64
	// BlockLabelBytesMax bounds a block label.
	BlockLabelBytesMax = 128
	// BlockLimitCharsMax bounds a block's character limit.
	BlockLimitCharsMax = 1 << 20
	// DefaultBlockLimitChars is a block's limit when none is given (Letta's default).
	DefaultBlockLimitChars = 20000
	// TagsMax bounds the number of tags.
	TagsMax = 64
	// TagBytesMax bounds one tag.
	TagBytesMax = 256
	// MetadataBytesMax bounds the serialized metadata.
	MetadataBytesMax = 64 << 10
	// MessageBytesMax bounds one message's text.
	MessageBytesMax = 1 << 20
	// MessagesPerSendMax bounds the messages in one send.
	MessagesPerSendMax = 64
	// DefaultMaxSteps bounds model calls in one turn when the request does not say.
	DefaultMaxSteps = 10
	// MaxStepsMax bounds the max_steps a request may ask for.
	MaxStepsMax = 100
	// contextMessagesMax bounds the history sent to the model.
	contextMessagesMax = 100
	// PassageBytesMax bounds one archival passage.
	PassageBytesMax = 64 << 10
	// CustomToolsMax bounds the custom tools attached to one agent.
	CustomToolsMax = 64
	// CustomToolsBytesMax bounds the definitions of an agent's custom
	// tools as the model is offered them (CustomToolsBytes): checked when
	// tools are attached, and again at each step, which fails the run
	// (ErrToolsTooLarge) if the tools have since grown past it.
	CustomToolsBytesMax = 2 << 20
)

// Agent types (Letta's).
const (
	TypeLettaV1  = "letta_v1_agent"
	TypeMemGPTV2 = "memgpt_v2_agent"
	TypeMemGPT   = "memgpt_agent"
	TypeReact    = "react_agent"
)

// Typed errors. The service maps them to API errors.
var (
	// ErrNotFound: the agent (or block) does not exist.
	ErrNotFound = errkind.ErrNotFound
	// ErrAlreadyExists: create for an ID that is taken.
	ErrAlreadyExists = errkind.ErrAlreadyExists
	// ErrInvalid: the request is malformed or over a limit.
	ErrInvalid = errkind.ErrInvalid
)

// Agent is an agent's configuration and core memory: the actor's state
// blob. Messages and passages live in separate keys.
//
// Tools names the agent's tools: in the state, the built-in tools only
// (custom tools are referenced by CustomToolIDs); in replies (Resolve),
// the built-in tools followed by the custom tools' current names.
type Agent struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	AgentType   string         `json:"agent_type"`
	Description string         `json:"description,omitempty"`
	System      string         `json:"system"`
	Model       string         `json:"model,omitempty"`
	Embedding   string         `json:"embedding,omitempty"`
	Tools       []string       `json:"tools"`
	Tags        []string       `json:"tags"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	Blocks      []Block        `json:"blocks"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	// Thread is the default conversation's message log and run state.
	// Other conversations keep theirs in their own records (Conversation).
	Thread
	// ApprovalRequired names the tools whose calls wait for a client's
	// approval before they run.
	ApprovalRequired []string `json:"approval_required,omitempty"`
	// ConversationRuns are the active runs of the agent's conversations
	// other than the default one (at most ConversationRunsMax), so that an
	// activation resumes them without reading every conversation.
	ConversationRuns []ConversationRun `json:"conversation_runs,omitempty"`
	// ConversationCount is the number of conversations besides the
	// default one.
	ConversationCount int `json:"conversation_count,omitempty"`
	// PassageCount is the number of archival passages.
	PassageCount uint64 `json:"passage_count"`
	// PassagesIndexed says every passage was written with its full-text
	// document in the actor's scope (archival.go), so a store's full-text
	// index answers text searches. It is set at create, and at the first
	// insert into an empty archive; an agent stored by an earlier Kelpie,
	// whose passages the index lacks, keeps ranking them itself.
	PassagesIndexed bool `json:"passages_indexed,omitempty"`
	// RunsOrdered says every run of the agent has its entry in the agent's
	// ordering of its runs (AgentRunKey), so one agent's runs are listed
	// from it. It is set at create; an agent stored by an earlier Kelpie
	// gets it from OpOrderRuns, which orders its runs a batch at a time.
	RunsOrdered bool `json:"runs_ordered,omitempty"`
	// RunsOrderCursor is the last run ID (in run-record key order) that
	// OpOrderRuns ordered so far, while RunsOrdered is false.
	RunsOrderCursor string `json:"runs_order_cursor,omitempty"`
	// EmbeddingDim is the dimension of the vectors that the model named
	// by Embedding (the handle of the model that embeds the agent's
	// passages and queries; "" for none: full-text search) returned for
	// the last passage embedded; 0 until then.
	EmbeddingDim int `json:"embedding_dim,omitempty"`
	// CustomToolIDs are the agent's references to the custom tools
	// attached to it, in attach order: the IDs of tool records in the
	// shared key space (CustomToolKey), read whenever the agent uses its
	// tools (see ResolveTools). Deleted tools' IDs linger until the next
	// change to the agent's tools.
	CustomToolIDs []string `json:"custom_tool_ids,omitempty"`
	// CustomTools are the current definitions of the custom tools, in
	// replies only (ResolveTools); the state holds references alone.
	CustomTools []CustomTool `json:"custom_tools,omitempty"`
	// CompactionSettings are Letta's compaction settings as the client
	// gave them (CheckCompactionSettings); nil for none. Kelpie keeps
	// them for clients; its own context management does not read them.
	CompactionSettings map[string]any `json:"compaction_settings,omitempty"`
	// ContextWindowLimit is the context window, in tokens, the client set
	// for the agent's model (reported as its llm_config's); 0 for the
	// model's own.
	ContextWindowLimit int `json:"context_window_limit,omitempty"`
	// ParallelToolCalls records whether the client lets the model call
	// several tools in one step; nil if it did not say. Every call a model
	// makes is run either way.
	ParallelToolCalls *bool `json:"parallel_tool_calls,omitempty"`
	// Secrets are the environment variables of the agent's tool
	// executions, by key (see Secret).
	Secrets []Secret `json:"secrets,omitempty"`
}

// Thread is one conversation's message log and run state: the agent's
// default conversation (embedded in Agent) or another one (embedded in
// Conversation).
type Thread struct {
	// NextSeq is the sequence number the next logged message gets.
	NextSeq uint64 `json:"next_seq"`
	// MessageCount is the number of messages of finished runs: NextSeq
	// while no run is active, the active run's first sequence number while
	// one is. A turn's messages thus become countable all at once.
	MessageCount uint64 `json:"message_count"`
	// ActiveRun is the run in progress, if any; one at a time.
	ActiveRun *Run `json:"active_run,omitempty"`
	// PendingApproval holds the tool calls a finished run left waiting for
	// approval (or, for client-side tools, for the client's result).
	PendingApproval *PendingApproval `json:"pending_approval,omitempty"`
	// LastStopReason and LastRunCompletion describe the last finished run.
	LastStopReason    string     `json:"last_stop_reason,omitempty"`
	LastRunCompletion *time.Time `json:"last_run_completion,omitempty"`
	// LastRunID names the conversation's most recent run.
	LastRunID string `json:"last_run_id,omitempty"`
	// ContextStart is the sequence number of the oldest message in the
	// model's context; the messages before it were compacted into
	// Summary (compact.go).
	ContextStart uint64 `json:"context_start,omitempty"`
	// Summary summarises the messages before ContextStart; nil if none
	// were compacted. (Its JSON name is not "summary": a Conversation,
	// which embeds Thread, has a summary of its own.)
	Summary *Summary `json:"context_summary,omitempty"`
	// PromptTokens is the prompt size the provider reported for the
	// conversation's last step, and PromptEstimate Kelpie's count of the
	// same prompt; their ratio corrects the next counts (0: no step yet).
	PromptTokens   int `json:"prompt_tokens,omitempty"`
	PromptEstimate int `json:"prompt_estimate,omitempty"`
}

// CustomTool is a user-defined tool (see tooldef.CustomTool).
type CustomTool = tooldef.CustomTool

// Block is one core memory block, compiled into the system prompt.
type Block struct {
	ID          string `json:"id"`
	Label       string `json:"label"`
	Value       string `json:"value"`
	Limit       int    `json:"limit"`
	Description string `json:"description,omitempty"`
	ReadOnly    bool   `json:"read_only,omitempty"`
	// Shared marks a standalone block attached to the agent (see
	// SharedBlock). In the agent's state such a block is a reference:
	// only ID and Label (as at the last update) mean anything, and reads
	// take the rest from the block's record (ResolveBlocks).
	Shared bool `json:"shared,omitempty"`
}

// State is the agent actor's state. Agent is nil until the agent is
// created and again after it is deleted.
type State struct {
	Agent *Agent `json:"agent,omitempty"`
	// windows are the conversations' context windows the activation
	// holds decoded, by conversation ID (context.go); never stored.
	windows map[string]*window
}

// Roles of logged messages besides the chat roles (llm.RoleUser, …).
const (
	// RoleSummary marks a compaction's summary of the messages it
	// evicted (shown as Letta's summary_message).
	RoleSummary = "summary"
	// RoleEvent marks a compaction's event (Letta's event_message): its
	// statistics, never shown to the model.
	RoleEvent = "event"
)

// Message is one entry of the message log.
type Message struct {
	ID         string     `json:"id"`
	Seq        uint64     `json:"seq"`
	Role       string     `json:"role"`
	Content    string     `json:"content,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	// ToolStatus is "success" or "error" on a tool return.
	ToolStatus string `json:"tool_status,omitempty"`
	OTID       string `json:"otid,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	// ConversationID names the conversation the message belongs to; ""
	// for the agent's default one.
	ConversationID string    `json:"conversation_id,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// Tokens is the message's size in the model's context (tokens.Count
	// of its text and calls, with the message framing), counted when it
	// is logged; 0 for messages logged before Kelpie counted them.
	Tokens int `json:"tokens,omitempty"`
	// Compaction, on a summary or event message, describes the
	// compaction that logged it.
	Compaction *CompactionStats `json:"compaction,omitempty"`
}

// ToolCall is a call the model made, as logged.
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	// Approval marks a call that waited for the client's approval or result.
	Approval bool `json:"approval,omitempty"`
}

// PendingApproval is a set of tool calls waiting for the client.
type PendingApproval struct {
	RunID string     `json:"run_id"`
	Calls []ToolCall `json:"calls"`
	// ClientTools are the run's client-side tools, still offered to the
	// model when the loop resumes.
	ClientTools []llm.Tool `json:"client_tools,omitempty"`
}

// Approval is a client's answer to one pending tool call: approve it (the
// server runs it), deny it, or — for a client-side tool — give its result.
type Approval struct {
	ToolCallID string `json:"tool_call_id"`
	Approve    bool   `json:"approve"`
	Reason     string `json:"reason,omitempty"`
	// Return, when set, is the result of a call the client ran itself.
	Return *string `json:"return,omitempty"`
	// Status of a client's result: "success" or "error".
	Status string `json:"status,omitempty"`
}

// Passage is one archival memory entry.
type Passage struct {
	ID        string    `json:"id"`
	Text      string    `json:"text"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Embedding is the passage's embedding vector, if one was computed.
	Embedding []float32 `json:"embedding,omitempty"`
	// EmbeddingModel is the handle of the model that computed Embedding.
	EmbeddingModel string `json:"embedding_model,omitempty"`
}

// Keys within an agent's KV space.

// MessageKey is the key of the message with sequence number seq.
func MessageKey(seq uint64) []byte { return tuple.Pack("m", seq) }

// MessagePrefix is the prefix of every message key.
func MessagePrefix() tuple.Key { return tuple.Pack("m") }

// MessageIDKey maps a message ID to its sequence number.
func MessageIDKey(id string) []byte { return tuple.Pack("mi", id) }

// MessageLogKey is the key of message seq of a conversation's log: the
// default conversation's ("") or another one's.
func MessageLogKey(conversationID string, seq uint64) []byte {
	if conversationID == "" {
		return MessageKey(seq)
	}
	return ConversationMessageKey(conversationID, seq)
}

// MessageAgentIndex is the global index from a message ID to where the
// message is logged: its agent, conversation and sequence number. Every
// logged message gets its entry in the transaction that logs it. Entries
// outlive their messages (an agent's deletion, a reset of its log, a
// conversation's deletion remove the messages, not the entries), so a
// reader must check that the message is still at the place named.
// Messages logged before the index existed have no entry.
const MessageAgentIndex = "message_agent"

// MessageAgentKey is a message's entry in MessageAgentIndex; its value is
// MessageAgentValue.
func MessageAgentKey(messageID string) []byte { return actor.IndexKey(MessageAgentIndex, messageID) }

// MessageAgentValue is the value of a message's MessageAgentKey entry.
func MessageAgentValue(agentID, conversationID string, seq uint64) []byte {
	return tuple.Pack(agentID, conversationID, seq)
}

// ParseMessageAgent decodes a MessageAgentValue.
func ParseMessageAgent(v []byte) (agentID, conversationID string, seq uint64, err error) {
	elems, err := tuple.Unpack(v)
	if err == nil && len(elems) == 3 {
		var ok1, ok2, ok3 bool
		agentID, ok1 = elems[0].(string)
		conversationID, ok2 = elems[1].(string)
		seq, ok3 = elems[2].(uint64)
		if ok1 && ok2 && ok3 {
			return agentID, conversationID, seq, nil
		}
	}
	return "", "", 0, fmt.Errorf("%w: message index value %q", storage.ErrCorrupt, v)
}

// PassageKey is the key of an archival passage.
func PassageKey(id string) []byte { return tuple.Pack("p", id) }

// PassagePrefix is the prefix of every passage key.
func PassagePrefix() tuple.Key { return tuple.Pack("p") }

// ActorID returns the actor ID of the agent with the given ID.
func ActorID(agentID string) actor.ID { return actor.ID{Namespace: Namespace, ID: agentID} }

// ByCreatedIndex is the name of the agents-by-creation-time index.
const ByCreatedIndex = "agents_by_created"

// ByCreatedKey is the index entry of an agent: (created nanoseconds, id).
func ByCreatedKey(a *Agent) []byte {
	return actor.IndexKey(ByCreatedIndex, uint64(a.CreatedAt.UnixNano()), a.ID)
}

// ByCreatedPrefix is the prefix of every ByCreatedKey.
func ByCreatedPrefix() tuple.Key { return actor.IndexKey(ByCreatedIndex) }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

func checkText(field, s string, bytesMax int) error {
	if len(s) > bytesMax {
		return invalidf("%s is %d bytes, over the limit of %d", field, len(s), bytesMax)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

func checkTags(tags []string) error {
	if len(tags) > TagsMax {
		return invalidf("%d tags, over the limit of %d", len(tags), TagsMax)
	}
	for _, t := range tags {
		if t == "" || strings.TrimSpace(t) != t {
			return invalidf("tag %q is empty or has surrounding spaces", t)
		}
		if err := checkText("tag", t, TagBytesMax); err != nil {
			return err
		}
	}
	return nil
}

func checkMetadata(m map[string]any) error {
	if m == nil {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return invalidf("metadata: %v", err)
	}
	if len(b) > MetadataBytesMax {
		return invalidf("metadata is %d bytes, over the limit of %d", len(b), MetadataBytesMax)
	}
	return nil
}

// CheckBlock validates a block's label, limit and value.
func CheckBlock(b *Block) error {
	if b.Label == "" {
		return invalidf("memory block without a label")
	}
	if err := checkText("block label", b.Label, BlockLabelBytesMax); err != nil {
		return err
	}
	if b.Limit == 0 {
		b.Limit = DefaultBlockLimitChars
	}
	if b.Limit < 0 || b.Limit > BlockLimitCharsMax {
		return invalidf("block %q limit %d outside 1..%d", b.Label, b.Limit, BlockLimitCharsMax)
	}
	return checkBlockValue(b, b.Value)
}

// checkBlockValue enforces a block's character limit.
func checkBlockValue(b *Block, value string) error {
	if n := utf8.RuneCountInString(value); n > b.Limit {
		return invalidf("block %q would hold %d characters, over its limit of %d", b.Label, n, b.Limit)
	}
	return checkText("block value", value, 4*BlockLimitCharsMax)
}

// Block returns the block with label, or nil.
func (a *Agent) Block(label string) *Block {
	for i := range a.Blocks {
		if a.Blocks[i].Label == label {
			return &a.Blocks[i]
		}
	}
	return nil
}
