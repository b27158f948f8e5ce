package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
)

// CreateRequest creates an agent. The caller chooses ID.
type CreateRequest struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	AgentType   string         `json:"agent_type,omitempty"`
	Description string         `json:"description,omitempty"`
	System      string         `json:"system,omitempty"`
	Model       string         `json:"model,omitempty"`
	Embedding   string         `json:"embedding,omitempty"`
	Tools       []string       `json:"tools"`
	Tags        []string       `json:"tags,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	Blocks      []BlockCreate  `json:"blocks,omitempty"`
	// Tools (above) names built-in tools: nil for the agent type's
	// defaults, empty for none. CustomToolIDs are the IDs of custom tools
	// (records of the tools registry) to attach by reference.
	CustomToolIDs []string `json:"custom_tool_ids,omitempty"`
	// CompactionSettings, ContextWindowLimit (0: none), ParallelToolCalls
	// and Secrets are the agent's settings (see Agent).
	CompactionSettings map[string]any `json:"compaction_settings,omitempty"`
	ContextWindowLimit int            `json:"context_window_limit,omitempty"`
	ParallelToolCalls  *bool          `json:"parallel_tool_calls,omitempty"`
	Secrets            []Secret       `json:"secrets,omitempty"`
	// InitialMessages are logged into the default conversation, in order,
	// by the transaction that creates the agent: user, assistant or system
	// messages with text, at most InitialMessagesMax.
	InitialMessages []InputMessage `json:"initial_messages,omitempty"`
	// SharedBlockIDs are standalone blocks to attach by reference, after
	// Blocks; an unknown one fails the create with ErrNotFound naming it.
	SharedBlockIDs []string `json:"shared_block_ids,omitempty"`
}

// BlockCreate is a core memory block to create with an agent.
type BlockCreate struct {
	Label       string `json:"label"`
	Value       string `json:"value"`
	Limit       int    `json:"limit,omitempty"`
	Description string `json:"description,omitempty"`
	ReadOnly    bool   `json:"read_only,omitempty"`
}

// UpdateRequest changes the fields that are non-nil.
type UpdateRequest struct {
	Name        *string         `json:"name,omitempty"`
	Description *string         `json:"description,omitempty"`
	System      *string         `json:"system,omitempty"`
	Model       *string         `json:"model,omitempty"`
	Tools       *[]string       `json:"tools,omitempty"`
	Tags        *[]string       `json:"tags,omitempty"`
	Metadata    *map[string]any `json:"metadata,omitempty"`
	Blocks      []BlockUpdate   `json:"blocks,omitempty"`
	// Embedding replaces the embedding model handle ("" for none). The
	// passages embedded with the previous model keep their vectors, which
	// cosine ranking then no longer compares with queries.
	Embedding *string `json:"embedding,omitempty"`
	// ApprovalRequired replaces the set of tools whose calls need approval.
	ApprovalRequired *[]string `json:"approval_required,omitempty"`
	// Tools (above) replaces the built-in tools, by name, and
	// CustomToolIDs the references to custom tools, by ID; either may
	// come without the other. A custom tool ID that the agent references
	// but that was deleted is dropped; any other unknown ID is ErrNotFound.
	CustomToolIDs *[]string `json:"custom_tool_ids,omitempty"`
	// AttachTools adds built-in tools by name, and AttachCustomTools
	// references to custom tools by ID; then DetachTools removes tools:
	// built-in ones by name, custom ones by ID or current name.
	// Attaching a tool that is attached already, or detaching one that is
	// not, changes nothing.
	AttachTools       []string `json:"attach_tools,omitempty"`
	AttachCustomTools []string `json:"attach_custom_tools,omitempty"`
	DetachTools       []string `json:"detach_tools,omitempty"`
	// DetachBlocks removes the blocks (private ones, or references to
	// shared ones) with these IDs; then AttachBlocks attaches the
	// standalone blocks with these IDs by reference (see SharedBlock).
	// Attaching a block that is attached already changes nothing.
	AttachBlocks []string `json:"attach_blocks,omitempty"`
	DetachBlocks []string `json:"detach_blocks,omitempty"`
	// CompactionSettings, ContextWindowLimit, ParallelToolCalls and
	// Secrets replace the agent's settings (see Agent). An empty
	// CompactionSettings or Secrets clears them.
	CompactionSettings *map[string]any `json:"compaction_settings,omitempty"`
	ContextWindowLimit *int            `json:"context_window_limit,omitempty"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls,omitempty"`
	Secrets            *[]Secret       `json:"secrets,omitempty"`
}

// BlockUpdate changes one existing block, found by label. For a shared
// block the change is to the block's record: every agent attached to it
// sees it.
type BlockUpdate struct {
	Label       string  `json:"label"`
	Value       *string `json:"value,omitempty"`
	Limit       *int    `json:"limit,omitempty"`
	Description *string `json:"description,omitempty"`
}

// Actor implements the agent actor type.
type Actor struct {
	// Events, if set, receives run progress after each commit.
	Events Events
	// Driver advances runs (see Driver); without one, runs start but never
	// step.
	Driver Driver
	// ContextWindow, if set, gives a model's context window in tokens, by
	// handle (0 if unknown: DefaultContextWindow). It runs inside
	// invocations, so it must not block.
	ContextWindow func(model string) int
}

var _ actor.Actor[State] = (*Actor)(nil)

func create(ctx context.Context, c *actor.Context[State], req *CreateRequest) (*Agent, error) {
	if c.State.Agent != nil {
		return nil, fmt.Errorf("%w: agent %s", ErrAlreadyExists, c.ID.ID)
	}
	if req.ID != c.ID.ID {
		return nil, invalidf("request id %q does not match actor %q", req.ID, c.ID.ID)
	}
	if err := checkText("name", req.Name, NameBytesMax); err != nil {
		return nil, err
	}
	if err := checkText("system", req.System, SystemBytesMax); err != nil {
		return nil, err
	}
	if err := checkText("description", req.Description, SystemBytesMax); err != nil {
		return nil, err
	}
	if err := checkTags(req.Tags); err != nil {
		return nil, err
	}
	if err := checkMetadata(req.Metadata); err != nil {
		return nil, err
	}
	if err := checkEmbeddingHandle(req.Embedding); err != nil {
		return nil, err
	}
	if err := CheckCompactionSettings(req.CompactionSettings); err != nil {
		return nil, err
	}
	if req.ContextWindowLimit != 0 {
		if err := checkContextWindowLimit(req.ContextWindowLimit); err != nil {
			return nil, err
		}
	}
	if err := checkSecrets(req.Secrets); err != nil {
		return nil, err
	}
	if err := checkInitialMessages(req.InitialMessages); err != nil {
		return nil, err
	}
	agentType := req.AgentType
	switch agentType {
	case "":
		agentType = TypeLettaV1
	case TypeLettaV1, TypeMemGPTV2, TypeMemGPT, TypeReact:
	default:
		return nil, invalidf("unknown agent_type %q", req.AgentType)
	}
	if len(req.Blocks) > BlocksMax {
		return nil, invalidf("%d memory blocks, over the limit of %d", len(req.Blocks), BlocksMax)
	}
	now := c.Now().UTC()
	ag := &Agent{
		ID: req.ID, Name: req.Name, AgentType: agentType, Description: req.Description,
		System: req.System, Model: req.Model, Embedding: req.Embedding,
		Tags: nonNil(slices.Clone(req.Tags)), Metadata: req.Metadata,
		Tools: req.Tools, Blocks: []Block{}, CreatedAt: now, UpdatedAt: now, PassagesIndexed: true, RunsOrdered: true,
		CompactionSettings: req.CompactionSettings, ContextWindowLimit: req.ContextWindowLimit,
		ParallelToolCalls: req.ParallelToolCalls, Secrets: slices.Clone(req.Secrets),
	}
	if ag.Name == "" {
		ag.Name = req.ID
	}
	if ag.System == "" {
		ag.System = DefaultSystemPrompt
	}
	if ag.Tools == nil {
		ag.Tools = DefaultTools(agentType)
	}
	if err := checkTools(ag.Tools); err != nil {
		return nil, err
	}
	if len(req.CustomToolIDs) > 0 {
		refs, err := changeCustomTools(ctx, c, nil, &UpdateRequest{CustomToolIDs: &req.CustomToolIDs})
		if err != nil {
			return nil, err
		}
		ag.CustomToolIDs = refs
	}
	ids := c.Runtime().Rand("ids")
	for _, bc := range req.Blocks {
		if bc.Label == "" {
			return nil, invalidf("memory block without a label")
		}
		if err := checkText("block label", bc.Label, BlockLabelBytesMax); err != nil {
			return nil, err
		}
		if ag.Block(bc.Label) != nil {
			return nil, invalidf("duplicate memory block label %q", bc.Label)
		}
		b := Block{ID: rt.NewID(ids, "block"), Label: bc.Label, Limit: bc.Limit, Description: bc.Description, ReadOnly: bc.ReadOnly}
		if b.Limit == 0 {
			b.Limit = DefaultBlockLimitChars
		}
		if b.Limit < 0 || b.Limit > BlockLimitCharsMax {
			return nil, invalidf("block %q limit %d outside 1..%d", b.Label, b.Limit, BlockLimitCharsMax)
		}
		if err := checkBlockValue(&b, bc.Value); err != nil {
			return nil, err
		}
		b.Value = bc.Value
		ag.Blocks = append(ag.Blocks, b)
	}
	if len(req.SharedBlockIDs) > 0 {
		blocks, _, err := updateBlocks(ctx, c, ag, &UpdateRequest{AttachBlocks: req.SharedBlockIDs})
		if err != nil {
			return nil, err
		}
		ag.Blocks = blocks
	}
	if err := c.SetIndex(ByCreatedKey(ag), nil); err != nil {
		return nil, err
	}
	if len(req.InitialMessages) > 0 {
		t := &turn{c: c, ag: ag, th: defaultThread(ag), ids: ids}
		for _, m := range req.InitialMessages {
			if err := t.append(Message{Role: m.Role, Content: m.Content, OTID: m.OTID}); err != nil {
				return nil, err
			}
		}
		ag.MessageCount = ag.NextSeq
	}
	c.State.Agent = ag
	return ag, nil
}

func update(ctx context.Context, c *actor.Context[State], req *UpdateRequest) (*Agent, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	// Validate everything before changing anything, so a rejected update
	// leaves no partial change even in memory.
	if req.Name != nil {
		if err := checkText("name", *req.Name, NameBytesMax); err != nil {
			return nil, err
		}
	}
	if req.System != nil {
		if err := checkText("system", *req.System, SystemBytesMax); err != nil {
			return nil, err
		}
	}
	if req.Description != nil {
		if err := checkText("description", *req.Description, SystemBytesMax); err != nil {
			return nil, err
		}
	}
	if req.Tags != nil {
		if err := checkTags(*req.Tags); err != nil {
			return nil, err
		}
	}
	if req.Metadata != nil {
		if err := checkMetadata(*req.Metadata); err != nil {
			return nil, err
		}
	}
	if req.Embedding != nil {
		if err := checkEmbeddingHandle(*req.Embedding); err != nil {
			return nil, err
		}
	}
	if req.CompactionSettings != nil {
		if err := CheckCompactionSettings(*req.CompactionSettings); err != nil {
			return nil, err
		}
	}
	if req.ContextWindowLimit != nil {
		if err := checkContextWindowLimit(*req.ContextWindowLimit); err != nil {
			return nil, err
		}
	}
	if req.Secrets != nil {
		if err := checkSecrets(*req.Secrets); err != nil {
			return nil, err
		}
	}
	toolNames, customTools, err := updateTools(ctx, c, ag, req)
	if err != nil {
		return nil, err
	}
	blocks, records, err := updateBlocks(ctx, c, ag, req)
	if err != nil {
		return nil, err
	}
	for _, rec := range records {
		if err := saveSharedBlock(c, rec); err != nil {
			return nil, err
		}
	}
	if req.Name != nil {
		ag.Name = *req.Name
	}
	if req.System != nil {
		ag.System = *req.System
	}
	if req.Description != nil {
		ag.Description = *req.Description
	}
	if req.Model != nil {
		ag.Model = *req.Model
	}
	if req.Embedding != nil && *req.Embedding != ag.Embedding {
		ag.Embedding, ag.EmbeddingDim = *req.Embedding, 0
	}
	if req.Tags != nil {
		ag.Tags = nonNil(slices.Clone(*req.Tags))
	}
	if req.Metadata != nil {
		ag.Metadata = *req.Metadata
	}
	ag.Tools, ag.CustomToolIDs = toolNames, customTools
	if req.ApprovalRequired != nil {
		ag.ApprovalRequired = slices.Clone(*req.ApprovalRequired)
	}
	if req.CompactionSettings != nil {
		ag.CompactionSettings = *req.CompactionSettings
		if len(ag.CompactionSettings) == 0 {
			ag.CompactionSettings = nil
		}
	}
	if req.ContextWindowLimit != nil {
		ag.ContextWindowLimit = *req.ContextWindowLimit
	}
	if req.ParallelToolCalls != nil {
		ag.ParallelToolCalls = req.ParallelToolCalls
	}
	if req.Secrets != nil {
		ag.Secrets = slices.Clone(*req.Secrets)
		if len(ag.Secrets) == 0 {
			ag.Secrets = nil
		}
	}
	ag.Blocks = blocks
	ag.UpdatedAt = c.Now().UTC()
	return ag, nil
}

// updateBlocks returns the agent's blocks after req's detaches, attaches
// and block updates, and the shared block records the updates changed,
// without changing ag or writing anything. References to deleted shared
// blocks are dropped; the others get their block's current label.
func updateBlocks(ctx context.Context, c *actor.Context[State], ag *Agent, req *UpdateRequest) ([]Block, []*SharedBlock, error) {
	if len(req.DetachBlocks)+len(req.AttachBlocks)+len(req.Blocks) == 0 {
		return ag.Blocks, nil, nil
	}
	cur, missing, err := ResolveBlocks(ctx, c.GetShared, ag)
	if err != nil {
		return nil, nil, err
	}
	// blocks is the state to store (private blocks and references) and
	// views what each looks like now, index for index.
	blocks := make([]Block, 0, len(ag.Blocks))
	views := make([]Block, 0, len(ag.Blocks))
	for _, b := range ag.Blocks {
		if slices.Contains(missing, b.ID) {
			continue
		}
		if b.Shared {
			views = append(views, *cur.blockByID(b.ID))
			blocks = append(blocks, Block{ID: b.ID, Label: cur.blockByID(b.ID).Label, Shared: true})
		} else {
			views = append(views, b)
			blocks = append(blocks, b)
		}
	}
	for _, id := range req.DetachBlocks {
		i := slices.IndexFunc(blocks, func(b Block) bool { return b.ID == id })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: block %s is not attached to agent %s", ErrNotFound, id, ag.ID)
		}
		blocks, views = slices.Delete(blocks, i, i+1), slices.Delete(views, i, i+1)
	}
	for _, id := range req.AttachBlocks {
		if slices.ContainsFunc(blocks, func(x Block) bool { return x.ID == id }) {
			continue // attaching twice is a no-op
		}
		rec, err := LoadSharedBlock(ctx, c.GetShared, id)
		if err != nil {
			return nil, nil, err
		}
		if slices.ContainsFunc(views, func(x Block) bool { return x.Label == rec.Label }) {
			return nil, nil, invalidf("agent %s already has a memory block labelled %q", ag.ID, rec.Label)
		}
		v := rec.Block
		v.Shared = true
		blocks = append(blocks, Block{ID: id, Label: rec.Label, Shared: true})
		views = append(views, v)
	}
	if len(blocks) > BlocksMax {
		return nil, nil, invalidf("%d memory blocks, over the limit of %d", len(blocks), BlocksMax)
	}
	var records []*SharedBlock
	for _, bu := range req.Blocks {
		i := slices.IndexFunc(views, func(b Block) bool { return b.Label == bu.Label })
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: memory block %q", ErrNotFound, bu.Label)
		}
		b := &views[i]
		if bu.Limit != nil {
			if *bu.Limit <= 0 || *bu.Limit > BlockLimitCharsMax {
				return nil, nil, invalidf("block %q limit %d outside 1..%d", b.Label, *bu.Limit, BlockLimitCharsMax)
			}
			b.Limit = *bu.Limit
		}
		if bu.Description != nil {
			b.Description = *bu.Description
		}
		value := b.Value
		if bu.Value != nil {
			value = *bu.Value
		}
		if err := checkBlockValue(b, value); err != nil {
			return nil, nil, err
		}
		b.Value = value
		if !b.Shared {
			blocks[i] = *b
			continue
		}
		rec, err := LoadSharedBlock(ctx, c.GetShared, b.ID)
		if err != nil {
			return nil, nil, err
		}
		rec.Value, rec.Limit, rec.Description = b.Value, b.Limit, b.Description
		if j := slices.IndexFunc(records, func(r *SharedBlock) bool { return r.ID == rec.ID }); j >= 0 {
			records[j] = rec
		} else {
			records = append(records, rec)
		}
	}
	return blocks, records, nil
}

// updateTools returns the agent's built-in tool names and custom tool
// references after req, without changing ag or writing anything.
// References to deleted custom tools are dropped.
func updateTools(ctx context.Context, c *actor.Context[State], ag *Agent, req *UpdateRequest) ([]string, []string, error) {
	if req.Tools == nil && req.CustomToolIDs == nil && len(req.AttachTools)+len(req.AttachCustomTools)+len(req.DetachTools) == 0 {
		return ag.Tools, ag.CustomToolIDs, nil
	}
	names := slices.Clone(ag.Tools)
	if req.Tools != nil {
		names = nonNil(slices.Clone(*req.Tools))
	}
	for _, n := range req.AttachTools {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(req.DetachTools, n) })
	if err := checkTools(names); err != nil {
		return nil, nil, err
	}
	refs, err := changeCustomTools(ctx, c, ag.CustomToolIDs, req)
	if err != nil {
		return nil, nil, err
	}
	return names, refs, nil
}

// changeCustomTools returns the custom tool references that follow from
// refs (the agent's) and req's CustomToolIDs, AttachCustomTools and
// DetachTools, checked against the tools' current definitions
// (checkCustomTools). It reads the tools' records in the invocation's
// transaction, so the result holds against a concurrent change to them
// (which makes the commit conflict); it writes nothing.
func changeCustomTools(ctx context.Context, c *actor.Context[State], refs []string, req *UpdateRequest) ([]string, error) {
	defs, missing, err := loadCustomTools(ctx, c.GetShared, refs)
	if err != nil {
		return nil, err
	}
	wasBytes := CustomToolsBytes(defs)
	// add appends the tool with the given ID unless it is there already.
	// A deleted tool is ErrNotFound, unless it is one of the agent's own
	// dangling references (detached by its deletion).
	add := func(id string) error {
		if slices.ContainsFunc(defs, func(d CustomTool) bool { return d.ID == id }) {
			return nil
		}
		t, err := LoadCustomTool(ctx, c.GetShared, id)
		if errors.Is(err, ErrNotFound) && slices.Contains(missing, id) {
			return nil
		}
		if err != nil {
			return err
		}
		defs = append(defs, *t)
		return nil
	}
	if req.CustomToolIDs != nil {
		keep := defs
		defs = nil
		for _, id := range *req.CustomToolIDs {
			if i := slices.IndexFunc(keep, func(d CustomTool) bool { return d.ID == id }); i >= 0 {
				if !slices.ContainsFunc(defs, func(d CustomTool) bool { return d.ID == id }) {
					defs = append(defs, keep[i])
				}
				continue
			}
			if err := add(id); err != nil {
				return nil, err
			}
		}
	}
	for _, id := range req.AttachCustomTools {
		if err := add(id); err != nil {
			return nil, err
		}
	}
	defs = slices.DeleteFunc(defs, func(d CustomTool) bool {
		return slices.Contains(req.DetachTools, d.ID) || slices.Contains(req.DetachTools, d.Name)
	})
	if err := checkCustomTools(defs, wasBytes); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(defs))
	for _, d := range defs {
		out = append(out, d.ID)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

// remove deletes the agent's state, messages, passages and index entry in
// one transaction, then asks for deactivation. Until then the (now empty)
// in-memory state already answers "not found".
func remove(ctx context.Context, c *actor.Context[State]) error {
	ag := c.State.Agent
	if ag == nil {
		return fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if err := removeConversations(ctx, c); err != nil {
		return err
	}
	// Its runs in progress end with it.
	if ag.ActiveRun != nil {
		if err := c.DeleteIndex(ActiveRunKey(ag.ActiveRun.ID)); err != nil {
			return err
		}
	}
	for _, r := range ag.ConversationRuns {
		if err := c.DeleteIndex(ActiveRunKey(r.RunID)); err != nil {
			return err
		}
	}
	if err := c.DeleteIndex(ByCreatedKey(ag)); err != nil {
		return err
	}
	if err := c.Clear(); err != nil {
		return err
	}
	c.DeactivateAfter()
	return nil
}

func decode(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return invalidf("decode request: %v", err)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
