package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/compaction"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/tokens"
)

// Compaction. A conversation's context is bounded by its model's window.
// Its prompt is counted (tokens, corrected by the ratio of what the
// provider reported for the last step to Kelpie's count of it), and when
// a step's prompt would fill more than compaction.Threshold of the window,
// or the provider refused it as too long, or a client asks, the oldest
// messages are summarised and leave the context:
//
//  1. OpPrepare (or OpPlanCompaction, for a client) plans the cut with
//     package compaction and returns the summarizer's request instead of
//     the step's;
//  2. the driver calls the model outside the actor;
//  3. OpCompact logs the summary (and an event with the statistics) and
//     moves the conversation's ContextStart to the cut, in one commit.
//
// A plan is checked against the conversation when it is applied: if the
// window moved meanwhile, it is dropped and nothing changes. A failed
// summary changes nothing either. The evicted messages stay in the log.

// DefaultContextWindow is the context window, in tokens, of a model that
// neither the agent's settings nor Actor.ContextWindow give one for.
const DefaultContextWindow = 128000

// Summary is a conversation's summary of the messages out of its context.
type Summary struct {
	Text string `json:"text"`
	// MessageID names the summary message that logged it.
	MessageID string `json:"message_id,omitempty"`
	// Tokens is its size in the prompt.
	Tokens int `json:"tokens"`
	// Through is the sequence number it covers the log up to (exclusive):
	// the conversation's ContextStart when it was made.
	Through uint64 `json:"through"`
}

// CompactionStats describe one compaction (Letta's CompactionStats).
type CompactionStats struct {
	Trigger             string `json:"trigger"`
	Mode                string `json:"mode,omitempty"`
	ContextTokensBefore int    `json:"context_tokens_before"`
	ContextTokensAfter  int    `json:"context_tokens_after"`
	ContextWindow       int    `json:"context_window"`
	MessagesBefore      int    `json:"messages_count_before"`
	MessagesAfter       int    `json:"messages_count_after"`
}

// CompactionPlan is a planned compaction: what to summarise and where
// the context then starts.
type CompactionPlan struct {
	ConversationID string `json:"conversation_id,omitempty"`
	// RunID and Step name the run step the plan was made for ("" for a
	// client's compaction, which needs the conversation idle).
	RunID string `json:"run_id,omitempty"`
	Step  int    `json:"step,omitempty"`
	// From is the conversation's ContextStart when planned, and Cut the
	// sequence number of the first message kept.
	From uint64 `json:"from"`
	Cut  uint64 `json:"cut"`
	// Empty says there is nothing to compact (Cut == From).
	Empty bool `json:"empty,omitempty"`
	// Request asks the summarizer for the summary.
	Request llm.Request `json:"request"`
	// ClipChars bounds the summary.
	ClipChars int             `json:"clip_chars"`
	Stats     CompactionStats `json:"stats"`
	// Summary is the conversation's current summary, which the new one
	// replaces.
	Summary string `json:"summary,omitempty"`
}

// PlanCompactionRequest asks for a client's compaction of a conversation.
type PlanCompactionRequest struct {
	ConversationID string `json:"conversation_id,omitempty"`
	// Settings, if set, replace the agent's compaction settings for this
	// compaction.
	Settings map[string]any `json:"settings,omitempty"`
}

// CompactRequest applies a plan with the summarizer's answer.
type CompactRequest struct {
	Plan    CompactionPlan `json:"plan"`
	Summary string         `json:"summary"`
}

// CompactResult is what a compaction did.
type CompactResult struct {
	// Stale says the plan no longer matched the conversation: nothing
	// changed.
	Stale   bool   `json:"stale,omitempty"`
	Summary string `json:"summary"`
	// MessagesBefore and MessagesAfter count the context's messages
	// (summary included) before and after.
	MessagesBefore int       `json:"messages_before"`
	MessagesAfter  int       `json:"messages_after"`
	Messages       []Message `json:"messages,omitempty"`
}

// messageTokens counts m's size in the prompt.
func messageTokens(m *Message) int {
	n := tokens.PerMessage + tokens.Count(m.Content)
	for _, tc := range m.ToolCalls {
		n += tokens.PerMessage + tokens.Count(tc.Name) + tokens.Count(tc.Arguments)
	}
	return n
}

// items returns the planner's view of msgs.
func items(msgs []Message) []compaction.Item {
	out := make([]compaction.Item, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		it := compaction.Item{Role: m.Role, Tokens: m.Tokens, CallID: m.ToolCallID}
		if it.Tokens == 0 {
			it.Tokens = messageTokens(m)
		}
		for _, tc := range m.ToolCalls {
			it.Calls = append(it.Calls, tc.ID)
		}
		out[i] = it
	}
	return out
}

// toolsTokens counts the tool definitions' size in the prompt.
func toolsTokens(tools []llm.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	b, err := json.Marshal(tools)
	if err != nil {
		return 0
	}
	return tokens.Count(string(b))
}

// promptSize is a step's prompt as counted.
type promptSize struct {
	budget compaction.Budget
	items  []compaction.Item
	// estimate is Kelpie's count; corrected applies the provider's ratio.
	estimate, corrected int
}

// correction returns the factor by which th's counts are scaled: the
// provider's count of its last prompt over Kelpie's, bounded.
func correction(th *thread) float64 {
	if th.PromptTokens <= 0 || th.PromptEstimate <= 0 {
		return 1
	}
	return min(max(float64(th.PromptTokens)/float64(th.PromptEstimate), 0.5), 3)
}

// contextLimit is the context window of th's model for a step of run.
func (a *Actor) contextLimit(ag *Agent, th *thread, run *Run) int {
	if ag.ContextWindowLimit > 0 {
		return ag.ContextWindowLimit
	}
	model := th.model(ag)
	if run != nil && run.Model != "" {
		model = run.Model
	}
	if a.ContextWindow != nil {
		if n := a.ContextWindow(model); n > 0 {
			return n
		}
	}
	return DefaultContextWindow
}

// measure counts a prompt of system, th's summary, msgs and tools.
func measure(th *thread, limit int, system string, msgs []Message, tools []llm.Tool) promptSize {
	b := compaction.Budget{Limit: limit, Fixed: tokens.PerMessage + tokens.Count(system) + toolsTokens(tools)}
	if th.Summary != nil {
		b.Summary = th.Summary.Tokens
	}
	ps := promptSize{budget: b, items: items(msgs)}
	ps.estimate = b.Total(ps.items)
	ps.corrected = int(float64(ps.estimate) * correction(th))
	return ps
}

// planCompaction plans a compaction of th's window msgs (as measured by
// ps) with the agent's settings (or override): the cut, and the
// summarizer's request for model.
func (a *Actor) planCompaction(ag *Agent, th *thread, msgs []Message, ps promptSize, trigger, model string, override map[string]any) *CompactionPlan {
	raw := ag.CompactionSettings
	if override != nil {
		raw = override
	}
	s := compaction.ParseSettings(raw)
	scaled := ps.budget
	scaled.Fixed = int(float64(scaled.Fixed) * correction(th))
	scaled.Summary = int(float64(scaled.Summary) * correction(th))
	citems := make([]compaction.Item, len(ps.items))
	for i, it := range ps.items {
		it.Tokens = int(float64(it.Tokens) * correction(th))
		citems[i] = it
	}
	cut := compaction.Cut(citems, scaled, s)
	p := &CompactionPlan{ConversationID: th.id(), From: th.ContextStart, Cut: th.ContextStart, ClipChars: ps.budget.ClipChars(s),
		Stats: CompactionStats{Trigger: trigger, Mode: s.Mode, ContextTokensBefore: ps.corrected, ContextTokensAfter: cut.TokensAfter,
			ContextWindow: ps.budget.Limit, MessagesBefore: len(msgs), MessagesAfter: len(msgs) - cut.Evict}}
	if th.Summary != nil {
		p.Summary = th.Summary.Text
		p.Stats.MessagesBefore++
	}
	p.Stats.MessagesAfter++ // the new summary
	if cut.Evict == 0 {
		p.Empty = true
		return p
	}
	p.Cut = msgs[cut.Evict].Seq
	var lines []compaction.Line
	for _, m := range msgs[:cut.Evict] {
		if m.Content != "" || len(m.ToolCalls) == 0 {
			lines = append(lines, compaction.Line{Role: m.Role, Name: m.ToolName, Text: m.Content})
		}
		for _, tc := range m.ToolCalls {
			lines = append(lines, compaction.Line{Role: m.Role, Name: tc.Name, Text: tc.Arguments})
		}
	}
	if s.Model != "" {
		model = s.Model
	}
	// The summarizer's input is bounded by its own window (letta#3279):
	// room for the instructions and the summary, the rest for the
	// transcript, at a conservative three characters per token.
	sumLimit := DefaultContextWindow
	if a.ContextWindow != nil {
		if n := a.ContextWindow(model); n > 0 {
			sumLimit = n
		}
	}
	if s.Model == "" {
		sumLimit = ps.budget.Limit
	}
	inputChars := max(1000, (sumLimit*7/10-ps.budget.SummaryTokensMax())*3)
	sr := compaction.SummaryRequest(s, p.Summary, lines, inputChars)
	req := llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleSystem, Content: sr.System}, {Role: llm.RoleUser, Content: sr.User}}}
	if sr.Assistant != "" {
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, Content: sr.Assistant})
	}
	p.Request = req
	return p
}

// planClientCompaction serves OpPlanCompaction: a client's compaction of
// an idle conversation.
func (a *Actor) planClientCompaction(ctx context.Context, c *actor.Context[State], req *PlanCompactionRequest) (*CompactionPlan, error) {
	if err := CheckCompactionSettings(req.Settings); err != nil {
		return nil, err
	}
	th, err := loadThread(ctx, c, req.ConversationID)
	if err != nil {
		return nil, err
	}
	if th.ActiveRun != nil {
		return nil, &BusyError{RunID: th.ActiveRun.ID}
	}
	ag := c.State.Agent
	t := &turn{c: c, ag: ag, th: th}
	system, msgs, err := t.context(ctx)
	if err != nil {
		return nil, err
	}
	tools, err := t.stepTools(ctx)
	if err != nil {
		return nil, err
	}
	ps := measure(th, a.contextLimit(ag, th, nil), system, msgs, tools)
	return a.planCompaction(ag, th, msgs, ps, compaction.TriggerManual, th.model(ag), req.Settings), nil
}

// compact serves OpCompact: it logs the summary and moves the context's
// start, if the plan still matches the conversation.
func (a *Actor) compact(ctx context.Context, c *actor.Context[State], req *CompactRequest) (*CompactResult, error) {
	p := &req.Plan
	ag := c.State.Agent
	if ag == nil {
		return nil, fmt.Errorf("%w: agent %s", ErrNotFound, c.ID.ID)
	}
	var th *thread
	var run *Run
	var err error
	if p.RunID != "" {
		if th, run, err = activeStep(ctx, c, p.RunID, p.Step); err != nil || run == nil {
			return &CompactResult{Stale: true}, err
		}
	} else {
		if th, err = loadThread(ctx, c, p.ConversationID); err != nil {
			return nil, err
		}
		if th.ActiveRun != nil {
			return nil, &BusyError{RunID: th.ActiveRun.ID}
		}
	}
	if p.Empty || th.ContextStart != p.From || p.Cut <= p.From || p.Cut >= th.NextSeq {
		return &CompactResult{Stale: true}, nil
	}
	w, err := loadWindow(ctx, c, th)
	if err != nil {
		return nil, err
	}
	keep := -1
	for i, m := range w.msgs {
		if m.Seq == p.Cut {
			keep = i
			break
		}
	}
	if keep <= 0 || !compaction.CutValid(items(w.msgs), keep) {
		return &CompactResult{Stale: true}, nil
	}
	text := compaction.Clip(req.Summary, p.ClipChars)
	if text == "" {
		return nil, invalidf("the summarizer returned an empty summary")
	}
	if err := checkText("summary", text, MessageBytesMax); err != nil {
		return nil, err
	}
	before := len(w.msgs)
	if th.Summary != nil {
		before++
	}
	t := &turn{c: c, ag: ag, th: th, ids: c.Runtime().Rand("ids"), run: run}
	if run != nil {
		t.runID = run.ID
	}
	stats := p.Stats
	stats.MessagesBefore, stats.MessagesAfter = before, len(w.msgs)-keep+1
	if err := t.append(Message{Role: RoleEvent, Content: "compaction", Compaction: &stats}); err != nil {
		return nil, err
	}
	sm := Message{Role: RoleSummary, Content: text, Compaction: &stats}
	if err := t.append(sm); err != nil {
		return nil, err
	}
	logged := t.added[len(t.added)-1]
	// The window in memory follows: it starts at the cut.
	w.msgs, w.start = w.msgs[keep:], p.Cut
	th.ContextStart = p.Cut
	th.Summary = &Summary{Text: text, MessageID: logged.ID, Tokens: tokens.PerMessage + tokens.Count(compaction.SummaryMessage(text)), Through: p.Cut}
	if run != nil {
		run.EndSeq = th.NextSeq
		if err := saveRun(c, run); err != nil {
			return nil, err
		}
		a.publish(c, *run, t.added, nil)
	} else {
		th.MessageCount = th.NextSeq
	}
	if err := th.save(c); err != nil {
		return nil, err
	}
	return &CompactResult{Summary: text, MessagesBefore: before, MessagesAfter: stats.MessagesAfter, Messages: t.added}, nil
}

// summaryPrompt renders th's summary as the message before its window.
func summaryPrompt(th *thread) (llm.Message, bool) {
	if th.Summary == nil || strings.TrimSpace(th.Summary.Text) == "" {
		return llm.Message{}, false
	}
	return llm.Message{Role: llm.RoleUser, Content: compaction.SummaryMessage(th.Summary.Text)}, true
}

// fitHistory cuts the longest messages of a request (never the system
// prompt) by about excess tokens in all, so that a window that cannot be
// compacted further still fits: the log keeps them whole.
func fitHistory(history []llm.Message, excess int) []llm.Message {
	if excess <= 0 {
		return history
	}
	out := slices.Clone(history)
	for excess > 0 {
		longest, size := -1, 0
		for i := 1; i < len(out); i++ {
			if n := tokens.Count(out[i].Content); n > size {
				longest, size = i, n
			}
		}
		if longest < 0 || size <= fitTokensMin {
			return out
		}
		cut := min(excess, size-fitTokensMin)
		keep := (size - cut) * 3
		out[longest].Content = compaction.ClipMiddle(out[longest].Content, keep)
		excess -= cut
	}
	return out
}

// fitTokensMin is what fitHistory leaves of a message at least.
const fitTokensMin = 64
