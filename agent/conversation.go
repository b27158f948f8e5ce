package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Conversations. An agent has its default conversation (its own Thread,
// in the actor's state, logging under ("m", seq)) and any number of
// others, each a record in the actor's KV space with its own message log
// (("cm", conversationID, seq)), its own in-context window, its own
// pending approval and at most one active run. Memory blocks are the
// agent's, shared by every conversation, except the labels a
// conversation isolates: it keeps copies of those (Conversation
// IsolatedBlocks), which its runs' prompts show and its memory tools edit.
//
// Everything lives in the agent's actor, under one fence, so an edit of a
// block by two conversations is serialised by the actor and none is lost.
// Model calls happen outside the actor (the run driver), so two
// conversations' runs progress at the same time.
//
// In this package the default conversation's ID is ""; the API calls it
// "default" (ConversationDefault).

// ConversationDefault is the API's name of an agent's default conversation.
const ConversationDefault = "default"

// Conversation limits.
const (
	// ConversationsMax bounds an agent's conversations (besides the
	// default one). It equals storage.ScanLimitMax, so deleting an agent
	// reads all of them in one scan.
	ConversationsMax = 10000
	// ConversationRunsMax bounds the conversations of one agent that have
	// a run in progress at once; a send over it is refused as busy.
	ConversationRunsMax = 64
	// conversationSummaryBytesMax bounds a conversation's summary.
	conversationSummaryBytesMax = 16 << 10
	// ConversationsPageMax bounds one page of ListConversations.
	ConversationsPageMax = 1000
)

// Conversation is a conversation other than the agent's default one.
type Conversation struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	Summary string `json:"summary,omitempty"`
	// Model, if set, is the model handle this conversation's runs use
	// instead of the agent's.
	Model string `json:"model,omitempty"`
	// IsolatedBlocks are the conversation's own copies of the agent's
	// blocks it isolates, by label: private blocks with their own IDs.
	IsolatedBlocks []Block `json:"isolated_blocks,omitempty"`
	Thread
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	LastMessageAt *time.Time `json:"last_message_at,omitempty"`
	// ForkedFrom names the conversation this one was forked from ("" for
	// the default one, or none).
	ForkedFrom string `json:"forked_from,omitempty"`
	// InContextMessageIDs are the IDs of the messages in the
	// conversation's context window, oldest first (replies only).
	InContextMessageIDs []string `json:"in_context_message_ids,omitempty"`
}

// ConversationRun names a conversation's active run (Agent.ConversationRuns).
type ConversationRun struct {
	ConversationID string `json:"conversation_id"`
	RunID          string `json:"run_id"`
}

// Keys in the agent's KV space.

// ConversationKey is the key of a conversation's record.
func ConversationKey(id string) []byte { return tuple.Pack("c", id) }

// conversationPrefix is the prefix of every conversation record.
func conversationPrefix() tuple.Key { return tuple.Pack("c") }

// conversationOrderKey orders an agent's conversations by creation.
func conversationOrderKey(c *Conversation) []byte {
	return tuple.Pack("co", uint64(c.CreatedAt.UnixNano()), c.ID)
}

// conversationOrderPrefix is the prefix of every conversationOrderKey.
func conversationOrderPrefix() tuple.Key { return tuple.Pack("co") }

// conversationMessagePrefix is the prefix of the message keys of a
// conversation other than the default one.
func conversationMessagePrefix(conversationID string) tuple.Key {
	return tuple.Pack("cm", conversationID)
}

// ConversationMessageKey is the key of message seq of a conversation
// other than the default one.
func ConversationMessageKey(conversationID string, seq uint64) []byte {
	return tuple.Pack("cm", conversationID, seq)
}

// Global indexes.

// ConversationAgentKey maps a conversation ID to its agent (value: the
// agent ID).
func ConversationAgentKey(id string) []byte { return actor.IndexKey("conversation_agent", id) }

// ConversationsIndex is the index of every agent's conversations by
// creation time (value: the agent ID).
const ConversationsIndex = "conversations_by_created"

// ConversationIndexKey is a conversation's entry in ConversationsIndex.
func ConversationIndexKey(c *Conversation) []byte {
	return actor.IndexKey(ConversationsIndex, uint64(c.CreatedAt.UnixNano()), c.ID)
}

// thread is the conversation an operation works on, as its invocation
// sees it: the agent's default conversation, or a conversation record,
// read from the actor's KV space and written back by save.
type thread struct {
	*Thread
	conv *Conversation // nil: the default conversation
}

// id is the conversation's ID, "" for the default one.
func (th *thread) id() string {
	if th.conv == nil {
		return ""
	}
	return th.conv.ID
}

// messageKey is the key of the conversation's message seq.
func (th *thread) messageKey(seq uint64) []byte { return MessageLogKey(th.id(), seq) }

// messagePrefix is the prefix of the conversation's message keys.
func (th *thread) messagePrefix() tuple.Key {
	if th.conv == nil {
		return MessagePrefix()
	}
	return conversationMessagePrefix(th.conv.ID)
}

// messageIndexValue is what MessageIDKey maps a message of this
// conversation to: its sequence number, and the conversation's ID for
// conversations other than the default one.
func (th *thread) messageIndexValue(seq uint64) []byte {
	if th.conv == nil {
		return tuple.Pack(seq)
	}
	return tuple.Pack(seq, th.conv.ID)
}

// save writes the conversation's record in the invocation's transaction.
// The default conversation is part of the actor's state, which commits
// by itself.
func (th *thread) save(c *actor.Context[State]) error {
	if th.conv == nil {
		return nil
	}
	return saveConversation(c, th.conv)
}

// blocks returns ag's resolved blocks as this conversation sees them: its
// isolated copies instead of the agent's blocks with their labels.
func (th *thread) blocks(v *Agent) *Agent {
	if th.conv == nil || len(th.conv.IsolatedBlocks) == 0 {
		return v
	}
	cp := *v
	cp.Blocks = slices.Clone(v.Blocks)
	for i := range cp.Blocks {
		if b := th.isolated(cp.Blocks[i].Label); b != nil {
			cp.Blocks[i] = *b
		}
	}
	return &cp
}

// isolated returns the conversation's own copy of the block with label,
// or nil.
func (th *thread) isolated(label string) *Block {
	if th.conv == nil {
		return nil
	}
	for i := range th.conv.IsolatedBlocks {
		if th.conv.IsolatedBlocks[i].Label == label {
			return &th.conv.IsolatedBlocks[i]
		}
	}
	return nil
}

// defaultThread is the agent's default conversation.
func defaultThread(ag *Agent) *thread { return &thread{Thread: &ag.Thread} }

// loadThread returns the conversation with the given ID ("" for the
// default one).
func loadThread(ctx context.Context, c *actor.Context[State], id string) (*thread, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	if id == "" || id == ConversationDefault {
		return defaultThread(ag), nil
	}
	conv, err := loadConversation(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return &thread{Thread: &conv.Thread, conv: conv}, nil
}

// runThread returns the conversation whose active run is runID, or nil
// if no conversation has that run in progress.
func runThread(ctx context.Context, c *actor.Context[State], runID string) (*thread, error) {
	ag := c.State.Agent
	if ag == nil {
		return nil, nil
	}
	if ag.ActiveRun != nil && ag.ActiveRun.ID == runID {
		return defaultThread(ag), nil
	}
	i := slices.IndexFunc(ag.ConversationRuns, func(r ConversationRun) bool { return r.RunID == runID })
	if i < 0 {
		return nil, nil
	}
	th, err := loadThread(ctx, c, ag.ConversationRuns[i].ConversationID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil || th.ActiveRun == nil || th.ActiveRun.ID != runID {
		return nil, err
	}
	return th, nil
}

func loadConversation(ctx context.Context, c *actor.Context[State], id string) (*Conversation, error) {
	v, err := c.Get(ctx, ConversationKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: conversation %s of agent %s", ErrNotFound, id, c.ID.ID)
	}
	if err != nil {
		return nil, err
	}
	var conv Conversation
	if err := json.Unmarshal(v, &conv); err != nil {
		return nil, fmt.Errorf("%w: conversation %s: %v", storage.ErrCorrupt, id, err)
	}
	return &conv, nil
}

func saveConversation(c *actor.Context[State], conv *Conversation) error {
	rec := *conv
	rec.InContextMessageIDs = nil
	b, err := json.Marshal(&rec)
	if err != nil {
		return err
	}
	return c.Set(ConversationKey(conv.ID), b)
}

// CreateConversationRequest creates a conversation; the caller chooses ID.
type CreateConversationRequest struct {
	ID      string `json:"id"`
	Summary string `json:"summary,omitempty"`
	Model   string `json:"model,omitempty"`
	// IsolatedBlockLabels name the agent's blocks the conversation gets
	// its own copies of.
	IsolatedBlockLabels []string `json:"isolated_block_labels,omitempty"`
}

// ConversationRequest names a conversation ("" or "default": the
// agent's default one, where an operation allows it).
type ConversationRequest struct {
	ConversationID string `json:"conversation_id"`
}

// UpdateConversationRequest changes the fields that are non-nil.
type UpdateConversationRequest struct {
	ConversationID string  `json:"conversation_id"`
	Summary        *string `json:"summary,omitempty"`
	Model          *string `json:"model,omitempty"`
}

// ForkConversationRequest copies a conversation ("" for the default one)
// into a new one with ID: its summary, model, isolated blocks (as new
// copies) and the messages in its context window (as new messages).
type ForkConversationRequest struct {
	ConversationID string `json:"conversation_id"`
	ID             string `json:"id"`
}

// ListConversationsRequest pages through the agent's conversations in
// creation order.
type ListConversationsRequest struct {
	// After, if set, is the ID of the conversation the page starts after.
	After      string `json:"after,omitempty"`
	Descending bool   `json:"descending,omitempty"`
	Limit      int    `json:"limit"`
	// SummarySearch keeps conversations whose summary contains it
	// (case-insensitive).
	SummarySearch string `json:"summary_search,omitempty"`
}

// CompiledPrompt is a conversation's system prompt as its next step
// would send it.
type CompiledPrompt struct {
	System string `json:"system"`
}

// compileConversation gives the system prompt compiled from the blocks
// the conversation sees.
func compileConversation(ctx context.Context, c *actor.Context[State], id string) (*CompiledPrompt, error) {
	th, err := loadThread(ctx, c, id)
	if err != nil {
		return nil, err
	}
	v, _, err := ResolveBlocks(ctx, c.GetShared, c.State.Agent)
	if err != nil {
		return nil, err
	}
	return &CompiledPrompt{System: CompileSystemPrompt(th.blocks(v))}, nil
}

// withContextIDs fills a reply's InContextMessageIDs.
func withContextIDs(ctx context.Context, c *actor.Context[State]) func(*Conversation, error) (*Conversation, error) {
	return func(conv *Conversation, err error) (*Conversation, error) {
		if err != nil {
			return nil, err
		}
		msgs, err := inContext(ctx, c, &thread{Thread: &conv.Thread, conv: conv})
		if err != nil {
			return nil, err
		}
		conv.InContextMessageIDs = make([]string, len(msgs))
		for i, m := range msgs {
			conv.InContextMessageIDs[i] = m.ID
		}
		return conv, nil
	}
}

func checkConversationFields(summary, model string) error {
	if err := checkText("summary", summary, conversationSummaryBytesMax); err != nil {
		return err
	}
	return checkText("model", model, NameBytesMax)
}

// newConversation validates req and builds the record, counting it
// against ConversationsMax.
func newConversation(ctx context.Context, c *actor.Context[State], id, summary, model string) (*Conversation, error) {
	ag := c.State.Agent
	if id == "" || len(id) > 128 || id == ConversationDefault {
		return nil, invalidf("conversation id %q", id)
	}
	if err := checkConversationFields(summary, model); err != nil {
		return nil, err
	}
	if _, err := c.Get(ctx, ConversationKey(id)); err == nil {
		return nil, fmt.Errorf("%w: conversation %s", ErrAlreadyExists, id)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if ag.ConversationCount >= ConversationsMax {
		return nil, invalidf("agent %s has %d conversations, the limit; delete some first", ag.ID, ag.ConversationCount)
	}
	now := c.Now().UTC()
	return &Conversation{ID: id, AgentID: ag.ID, Summary: summary, Model: model, CreatedAt: now, UpdatedAt: now}, nil
}

// insertConversation writes a new conversation with its indexes.
func insertConversation(c *actor.Context[State], conv *Conversation) (*Conversation, error) {
	if err := saveConversation(c, conv); err != nil {
		return nil, err
	}
	if err := c.Set(conversationOrderKey(conv), []byte(conv.ID)); err != nil {
		return nil, err
	}
	if err := c.SetIndex(ConversationAgentKey(conv.ID), []byte(conv.AgentID)); err != nil {
		return nil, err
	}
	if err := c.SetIndex(ConversationIndexKey(conv), []byte(conv.AgentID)); err != nil {
		return nil, err
	}
	c.State.Agent.ConversationCount++
	return conv, nil
}

func createConversation(ctx context.Context, c *actor.Context[State], req *CreateConversationRequest) (*Conversation, error) {
	conv, err := newConversation(ctx, c, req.ID, req.Summary, req.Model)
	if err != nil {
		return nil, err
	}
	if len(req.IsolatedBlockLabels) > 0 {
		v, _, err := ResolveBlocks(ctx, c.GetShared, c.State.Agent)
		if err != nil {
			return nil, err
		}
		ids := c.Runtime().Rand("ids")
		for _, label := range req.IsolatedBlockLabels {
			if slices.ContainsFunc(conv.IsolatedBlocks, func(b Block) bool { return b.Label == label }) {
				continue
			}
			b := v.Block(label)
			if b == nil {
				return nil, fmt.Errorf("%w: agent %s has no memory block labelled %q to isolate", ErrNotFound, v.ID, label)
			}
			cp := *b
			cp.ID, cp.Shared = rt.NewID(ids, "block"), false
			conv.IsolatedBlocks = append(conv.IsolatedBlocks, cp)
		}
	}
	return insertConversation(c, conv)
}

func updateConversation(ctx context.Context, c *actor.Context[State], req *UpdateConversationRequest) (*Conversation, error) {
	conv, err := loadConversation(ctx, c, req.ConversationID)
	if err != nil {
		return nil, err
	}
	if req.Summary != nil {
		conv.Summary = *req.Summary
	}
	if req.Model != nil {
		conv.Model = *req.Model
	}
	if err := checkConversationFields(conv.Summary, conv.Model); err != nil {
		return nil, err
	}
	conv.UpdatedAt = c.Now().UTC()
	return conv, saveConversation(c, conv)
}

// deleteConversation removes a conversation and its message log. One
// with a run in progress is refused (cancel it first).
func deleteConversation(ctx context.Context, c *actor.Context[State], id string) error {
	if id == "" || id == ConversationDefault {
		return invalidf("the default conversation cannot be deleted (reset the agent's messages instead)")
	}
	conv, err := loadConversation(ctx, c, id)
	if err != nil {
		return err
	}
	if conv.ActiveRun != nil {
		return &BusyError{RunID: conv.ActiveRun.ID}
	}
	th := &thread{Thread: &conv.Thread, conv: conv}
	if err := c.DeleteRange(th.messagePrefix(), th.messagePrefix().End()); err != nil {
		return err
	}
	// The message IDs' index entries go with their messages.
	for _, k := range [][]byte{ConversationKey(id), conversationOrderKey(conv)} {
		if err := c.Delete(k); err != nil {
			return err
		}
	}
	if err := c.DeleteIndex(ConversationAgentKey(id)); err != nil {
		return err
	}
	if err := c.DeleteIndex(ConversationIndexKey(conv)); err != nil {
		return err
	}
	ag := c.State.Agent
	if ag.ConversationCount > 0 {
		ag.ConversationCount--
	}
	return nil
}

func forkConversation(ctx context.Context, c *actor.Context[State], req *ForkConversationRequest) (*Conversation, error) {
	src, err := loadThread(ctx, c, req.ConversationID)
	if err != nil {
		return nil, err
	}
	var summary, model string
	if src.conv != nil {
		summary, model = src.conv.Summary, src.conv.Model
	}
	conv, err := newConversation(ctx, c, req.ID, summary, model)
	if err != nil {
		return nil, err
	}
	conv.ForkedFrom = src.id()
	ids := c.Runtime().Rand("ids")
	if src.conv != nil {
		for _, b := range src.conv.IsolatedBlocks {
			b.ID = rt.NewID(ids, "block")
			conv.IsolatedBlocks = append(conv.IsolatedBlocks, b)
		}
	}
	msgs, err := inContext(ctx, c, src)
	if err != nil {
		return nil, err
	}
	// The run in progress, and calls waiting for approval, stay with the
	// source: the fork's log never ends in unanswered calls.
	for i, m := range msgs {
		if (src.ActiveRun != nil && m.RunID == src.ActiveRun.ID) || (src.PendingApproval != nil && m.RunID == src.PendingApproval.RunID) {
			msgs = msgs[:i]
			break
		}
	}
	th := &thread{Thread: &conv.Thread, conv: conv}
	t := &turn{c: c, ag: c.State.Agent, th: th, ids: ids}
	if src.Summary != nil {
		// The fork sees what its source sees: the summary too.
		if err := t.append(Message{Role: RoleSummary, Content: src.Summary.Text}); err != nil {
			return nil, err
		}
		th.Summary = &Summary{Text: src.Summary.Text, MessageID: t.added[0].ID, Tokens: src.Summary.Tokens}
	}
	for _, m := range msgs {
		m.RunID = ""
		if err := t.append(m); err != nil {
			return nil, err
		}
	}
	conv.MessageCount = conv.NextSeq
	return insertConversation(c, conv)
}

func listConversations(ctx context.Context, c *actor.Context[State], req *ListConversationsRequest) ([]Conversation, error) {
	if req.Limit <= 0 || req.Limit > ConversationsPageMax {
		return nil, invalidf("limit %d outside 1..%d", req.Limit, ConversationsPageMax)
	}
	start, end := conversationOrderPrefix(), conversationOrderPrefix().End()
	if req.After != "" {
		cur, err := loadConversation(ctx, c, req.After)
		if err != nil {
			return nil, err
		}
		if req.Descending {
			end = conversationOrderKey(cur)
		} else {
			start = tuple.Key(conversationOrderKey(cur)).End()
		}
	}
	out := []Conversation{}
	search := strings.ToLower(req.SummarySearch)
	for len(out) < req.Limit {
		kvs, err := c.Scan(ctx, storage.ScanOptions{Start: start, End: end, Reverse: req.Descending, Limit: min(storage.ScanLimitMax, 2*req.Limit)})
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			conv, err := loadConversation(ctx, c, string(kv.Value))
			if err != nil {
				return nil, err
			}
			if search != "" && !strings.Contains(strings.ToLower(conv.Summary), search) {
				continue
			}
			if conv, err = withContextIDs(ctx, c)(conv, nil); err != nil {
				return nil, err
			}
			if out = append(out, *conv); len(out) == req.Limit {
				break
			}
		}
		if len(kvs) < min(storage.ScanLimitMax, 2*req.Limit) {
			break
		}
		last := kvs[len(kvs)-1].Key
		if req.Descending {
			end = last
		} else {
			start = tuple.Key(last).End()
		}
	}
	return out, nil
}

// removeConversations deletes the global index entries of every
// conversation of the agent being deleted (its KV space goes with it).
func removeConversations(ctx context.Context, c *actor.Context[State]) error {
	kvs, err := c.Scan(ctx, storage.ScanOptions{Start: conversationPrefix(), End: conversationPrefix().End(), Limit: storage.ScanLimitMax})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		var conv Conversation
		if err := json.Unmarshal(kv.Value, &conv); err != nil {
			return fmt.Errorf("%w: conversation %q: %v", storage.ErrCorrupt, kv.Key, err)
		}
		if err := c.DeleteIndex(ConversationAgentKey(conv.ID)); err != nil {
			return err
		}
		if err := c.DeleteIndex(ConversationIndexKey(&conv)); err != nil {
			return err
		}
	}
	return nil
}

// model is the model handle a conversation's runs use.
func (th *thread) model(ag *Agent) string {
	if th.conv != nil && th.conv.Model != "" {
		return th.conv.Model
	}
	return ag.Model
}
