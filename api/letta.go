package api

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	toolreg "github.com/kelpie-ai/kelpie/tools"
)

// Letta's wire shapes (components/schemas of the Letta OpenAPI document),
// and the conversions from Kelpie's agent state.

// defaultContextWindow is reported in llm_config when the model's own
// window is unknown.
const defaultContextWindow = 128000

type llmConfig struct {
	Model             string  `json:"model"`
	ModelEndpointType string  `json:"model_endpoint_type"`
	ContextWindow     int     `json:"context_window"`
	Handle            *string `json:"handle"`
	ProviderName      *string `json:"provider_name"`
	Temperature       float64 `json:"temperature"`
	MaxTokens         *int    `json:"max_tokens"`
	ParallelToolCalls *bool   `json:"parallel_tool_calls"`
}

// modelSettingsWire is the part of Letta's model settings (the
// OpenAIModelSettings or AnthropicModelSettings variant, by provider_type)
// that an agent records.
type modelSettingsWire struct {
	ProviderType      string `json:"provider_type"`
	ParallelToolCalls bool   `json:"parallel_tool_calls"`
}

// secretWire is Letta's AgentEnvironmentVariable.
type secretWire struct {
	ID          string  `json:"id"`
	Key         string  `json:"key"`
	Value       string  `json:"value"`
	Description *string `json:"description"`
	AgentID     string  `json:"agent_id"`
}

// secretID is the stable ID of an agent's secret: "agent-env-" and a UUID
// derived from the agent's ID and the secret's key.
func secretID(agentID, key string) string {
	h := sha256.Sum256([]byte("kelpie secret " + agentID + "\x00" + key))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("agent-env-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// toSecretWires renders an agent's secrets.
func toSecretWires(a *agent.Agent) []secretWire {
	out := make([]secretWire, 0, len(a.Secrets))
	for _, s := range a.Secrets {
		out = append(out, secretWire{ID: secretID(a.ID, s.Key), Key: s.Key, Value: s.Value, Description: optional(s.Description), AgentID: a.ID})
	}
	return out
}

type memoryWire struct {
	AgentType      string      `json:"agent_type"`
	Blocks         []blockWire `json:"blocks"`
	FileBlocks     []any       `json:"file_blocks"`
	PromptTemplate string      `json:"prompt_template"`
}

type blockWire struct {
	ID          string         `json:"id"`
	Label       string         `json:"label"`
	Value       string         `json:"value"`
	Limit       int            `json:"limit"`
	Description *string        `json:"description"`
	ReadOnly    bool           `json:"read_only"`
	IsTemplate  bool           `json:"is_template"`
	Metadata    map[string]any `json:"metadata"`
	Tags        []string       `json:"tags"`
}

type toolWire struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	ToolType       string           `json:"tool_type"`
	Description    string           `json:"description"`
	SourceType     string           `json:"source_type"`
	Tags           []string         `json:"tags"`
	JSONSchema     map[string]any   `json:"json_schema"`
	ReturnCharLim  int              `json:"return_char_limit"`
	Metadata       map[string]any   `json:"metadata_"`
	RequiresApprov *bool            `json:"default_requires_approval"`
	SourceCode     *string          `json:"source_code,omitempty"`
	ArgsJSONSchema map[string]any   `json:"args_json_schema,omitempty"`
	PipRequire     []pipRequirement `json:"pip_requirements,omitempty"`
}

type agentWire struct {
	ID                     string         `json:"id"`
	Name                   string         `json:"name"`
	System                 string         `json:"system"`
	AgentType              string         `json:"agent_type"`
	LLMConfig              llmConfig      `json:"llm_config"`
	EmbeddingConfig        any            `json:"embedding_config"`
	Model                  *string        `json:"model"`
	Embedding              *string        `json:"embedding"`
	Description            *string        `json:"description"`
	Metadata               map[string]any `json:"metadata"`
	Memory                 memoryWire     `json:"memory"`
	Blocks                 []blockWire    `json:"blocks"`
	Tools                  []toolWire     `json:"tools"`
	Sources                []any          `json:"sources"`
	Tags                   []string       `json:"tags"`
	ToolRules              []any          `json:"tool_rules"`
	IdentityIDs            []string       `json:"identity_ids"`
	Identities             []any          `json:"identities"`
	ToolExecEnvVars        []secretWire   `json:"tool_exec_environment_variables"`
	Secrets                []secretWire   `json:"secrets"`
	CompactionSettings     map[string]any `json:"compaction_settings"`
	ModelSettings          any            `json:"model_settings"`
	MessageBufferAutoclear bool           `json:"message_buffer_autoclear"`
	CreatedAt              string         `json:"created_at"`
	UpdatedAt              string         `json:"updated_at"`
}

func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func toBlockWire(b agent.Block) blockWire {
	return blockWire{ID: b.ID, Label: b.Label, Value: b.Value, Limit: b.Limit, Description: optional(b.Description),
		ReadOnly: b.ReadOnly, Metadata: map[string]any{}, Tags: []string{}}
}

// builtinToolID is the stable ID of a built-in tool: "tool-" and a UUID
// derived from its name, the same on every server.
func builtinToolID(name string) string { return toolreg.BuiltinID(name) }

// builtinToolName maps a built-in tool ID back to its name.
func builtinToolName(id string) (string, bool) { return toolreg.BuiltinName(id) }

func toToolWire(t llm.Tool) toolWire { return toTool(toolreg.Builtin(t)) }

// toAgentWire renders an agent as Letta's AgentState.
func toAgentWire(a *agent.Agent) agentWire {
	blocks := make([]blockWire, 0, len(a.Blocks))
	for _, b := range a.Blocks {
		blocks = append(blocks, toBlockWire(b))
	}
	tools := make([]toolWire, 0, len(a.Tools))
	for _, t := range agent.ToolSchemas(a.Tools) {
		tools = append(tools, toToolWire(t))
	}
	tools = append(tools, customToolWires(a)...)
	cfg := llmConfig{Model: a.Model, ModelEndpointType: "openai", ContextWindow: contextWindow(a.ContextWindowLimit), Temperature: 0.7,
		ParallelToolCalls: a.ParallelToolCalls}
	if provider, model, ok := strings.Cut(a.Model, "/"); ok {
		cfg.Model, cfg.Handle, cfg.ProviderName = model, &a.Model, &provider
		if provider == "anthropic" {
			cfg.ModelEndpointType = "anthropic"
		}
	}
	var modelSettings any
	if a.ParallelToolCalls != nil {
		modelSettings = modelSettingsWire{ProviderType: cfg.ModelEndpointType, ParallelToolCalls: *a.ParallelToolCalls}
	}
	metadata := a.Metadata
	if metadata == nil {
		metadata = map[string]any{}
	}
	return agentWire{
		ID: a.ID, Name: a.Name, System: a.System, AgentType: a.AgentType, LLMConfig: cfg,
		Model: optional(a.Model), Embedding: optional(a.Embedding), Description: optional(a.Description),
		EmbeddingConfig: embeddingConfig(a.Embedding, a.EmbeddingDim), Metadata: metadata,
		Memory: memoryWire{AgentType: a.AgentType, Blocks: blocks, FileBlocks: []any{}},
		Blocks: blocks, Tools: tools, Sources: []any{}, Tags: nonNilStrings(a.Tags), ToolRules: []any{},
		IdentityIDs: []string{}, Identities: []any{}, ToolExecEnvVars: []secretWire{}, Secrets: []secretWire{},
		CompactionSettings: a.CompactionSettings, ModelSettings: modelSettings,
		CreatedAt: timeString(a.CreatedAt), UpdatedAt: timeString(a.UpdatedAt),
	}
}

// contextWindow is the context window an agent's llm_config reports: its
// limit if the client set one, defaultContextWindow otherwise.
func contextWindow(limit int) int {
	if limit > 0 {
		return limit
	}
	return defaultContextWindow
}

// agentWire renders a as toAgentWire does, with the context window the
// service assumes for its model (the provider's list, or the configured
// default) when the client set none.
func (h *handler) agentWire(a *agent.Agent) agentWire {
	w := toAgentWire(a)
	if a.ContextWindowLimit == 0 && h.svc != nil {
		w.LLMConfig.ContextWindow = h.svc.ModelContextWindow(a.Model)
	}
	return w
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Letta messages (the LettaMessageUnion, discriminated by message_type).

type lettaMessage struct {
	ID          string        `json:"id"`
	Date        string        `json:"date"`
	MessageType string        `json:"message_type"`
	OTID        *string       `json:"otid"`
	SeqID       *uint64       `json:"seq_id,omitempty"`
	RunID       *string       `json:"run_id"`
	Content     *string       `json:"content,omitempty"`
	Reasoning   *string       `json:"reasoning,omitempty"`
	ToolCall    *toolCallWire `json:"tool_call,omitempty"`
	ToolReturn  *string       `json:"tool_return,omitempty"`
	Status      string        `json:"status,omitempty"`
	ToolCallID  string        `json:"tool_call_id,omitempty"`
	// Summary and CompactionStats are a summary_message's; EventType and
	// EventData an event_message's.
	Summary         *string          `json:"summary,omitempty"`
	CompactionStats *compactionStats `json:"compaction_stats,omitempty"`
	EventType       string           `json:"event_type,omitempty"`
	EventData       *compactionStats `json:"event_data,omitempty"`
}

// compactionStats is Letta's CompactionStats.
type compactionStats struct {
	Trigger             string `json:"trigger"`
	ContextTokensBefore int    `json:"context_tokens_before"`
	ContextTokensAfter  int    `json:"context_tokens_after"`
	ContextWindow       int    `json:"context_window"`
	MessagesCountBefore int    `json:"messages_count_before"`
	MessagesCountAfter  int    `json:"messages_count_after"`
}

func toCompactionStats(s *agent.CompactionStats) *compactionStats {
	if s == nil {
		return nil
	}
	return &compactionStats{Trigger: s.Trigger, ContextTokensBefore: s.ContextTokensBefore, ContextTokensAfter: s.ContextTokensAfter,
		ContextWindow: s.ContextWindow, MessagesCountBefore: s.MessagesBefore, MessagesCountAfter: s.MessagesAfter}
}

type toolCallWire struct {
	Name       string `json:"name"`
	Arguments  string `json:"arguments"`
	ToolCallID string `json:"tool_call_id"`
}

// toLettaMessages renders the log entries as the messages Letta clients
// see: a send_message call becomes an assistant_message and its return is
// hidden; other tool calls and returns appear as such; text an assistant
// writes beside tool calls is reasoning.
func toLettaMessages(msgs []agent.Message) []lettaMessage {
	out := make([]lettaMessage, 0, len(msgs))
	for _, m := range msgs {
		base := lettaMessage{ID: m.ID, Date: timeString(m.CreatedAt), OTID: optional(m.OTID), RunID: optional(m.RunID)}
		seq := wireSeq(m.Seq)
		base.SeqID = &seq
		switch m.Role {
		case llm.RoleUser:
			u := base
			u.MessageType, u.Content = "user_message", ptr(m.Content)
			out = append(out, u)
		case llm.RoleSystem:
			u := base
			u.MessageType, u.Content = "system_message", ptr(m.Content)
			out = append(out, u)
		case agent.RoleSummary:
			u := base
			u.MessageType, u.Summary, u.CompactionStats = "summary_message", ptr(m.Content), toCompactionStats(m.Compaction)
			out = append(out, u)
		case agent.RoleEvent:
			u := base
			u.MessageType, u.EventType, u.EventData = "event_message", "compaction", toCompactionStats(m.Compaction)
			if u.EventData == nil {
				u.EventData = &compactionStats{}
			}
			out = append(out, u)
		case llm.RoleAssistant:
			if len(m.ToolCalls) == 0 {
				a := base
				a.MessageType, a.Content = "assistant_message", ptr(m.Content)
				out = append(out, a)
				continue
			}
			if m.Content != "" {
				r := base
				r.MessageType, r.Reasoning = "reasoning_message", ptr(m.Content)
				out = append(out, r)
			}
			for _, tc := range m.ToolCalls {
				if tc.Name == agent.ToolSendMessage {
					var args struct {
						Message string `json:"message"`
					}
					if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
						a := base
						a.MessageType, a.Content = "assistant_message", ptr(args.Message)
						out = append(out, a)
						continue
					}
				}
				c := base
				c.MessageType = "tool_call_message"
				if tc.Approval {
					c.MessageType = "approval_request_message"
				}
				c.ToolCall = &toolCallWire{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
				out = append(out, c)
			}
		case llm.RoleTool:
			if m.ToolName == agent.ToolSendMessage && m.ToolStatus == agent.ToolSuccess {
				continue // shown as the assistant message
			}
			r := base
			r.MessageType, r.ToolReturn, r.Status, r.ToolCallID = "tool_return_message", ptr(m.Content), m.ToolStatus, m.ToolCallID
			out = append(out, r)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// wireSeq is a logged message's seq_id on the wire: its sequence number
// in the agent's log plus one. Letta's seq_ids start at 1, so that the
// default starting_after, 0, resumes a stream from its start; the log
// numbers from 0.
func wireSeq(seq uint64) uint64 { return seq + 1 }

type stopReasonWire struct {
	MessageType string `json:"message_type"`
	StopReason  string `json:"stop_reason"`
}

type usageWire struct {
	MessageType      string   `json:"message_type"`
	CompletionTokens int      `json:"completion_tokens"`
	PromptTokens     int      `json:"prompt_tokens"`
	TotalTokens      int      `json:"total_tokens"`
	StepCount        int      `json:"step_count"`
	RunIDs           []string `json:"run_ids"`
}

type lettaResponse struct {
	Messages   []lettaMessage `json:"messages"`
	StopReason stopReasonWire `json:"stop_reason"`
	Usage      usageWire      `json:"usage"`
}

func toLettaResponse(r *agent.SendResponse) lettaResponse {
	return lettaResponse{
		Messages:   toLettaMessages(r.Messages),
		StopReason: stopReasonWire{MessageType: "stop_reason", StopReason: r.StopReason},
		Usage: usageWire{MessageType: "usage_statistics", CompletionTokens: r.Usage.CompletionTokens,
			PromptTokens: r.Usage.PromptTokens, TotalTokens: r.Usage.TotalTokens, StepCount: r.Usage.StepCount, RunIDs: nonNilStrings(optionalList(r.RunID))},
	}
}

func optionalList(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
