// Package compaction decides when an agent's context window must be
// compacted and which of its messages a compaction evicts, and builds the
// request that asks a model for the summary that replaces them.
//
// Everything here is pure: the agent loop gives it the window as it sees
// it (token counts, roles, tool-call links) and does the storage and the
// model call itself. A plan never separates a tool call from its return,
// never evicts a call still waiting for its return (a pending approval),
// and always keeps the newest message.
package compaction

import (
	"fmt"
	"math"
)

// Modes (Letta's compaction_settings.mode). The self-compacting modes are
// planned as their plain counterparts: the summary always comes from a
// separate model call.
const (
	ModeSlidingWindow     = "sliding_window"
	ModeAll               = "all"
	ModeSelfSlidingWindow = "self_compact_sliding_window"
	ModeSelfAll           = "self_compact_all"
)

// Triggers (Letta's CompactionStats.trigger).
const (
	// TriggerPostStep: the previous step's prompt filled more than
	// Threshold of the window.
	TriggerPostStep = "post_step_context_check"
	// TriggerOverflow: the provider refused a request as over its window.
	TriggerOverflow = "context_window_exceeded"
	// TriggerManual: a client asked (summarize, compact).
	TriggerManual = "manual"
)

// Defaults, as Letta has them.
const (
	// Threshold is the fraction of the window a prompt may fill before
	// the window is compacted after the step.
	Threshold = 0.9
	// DefaultKeepFraction is the fraction of the window a sliding-window
	// compaction keeps (sliding_window_percentage).
	DefaultKeepFraction = 0.3
	// DefaultClipChars bounds a summary, in characters (clip_chars).
	DefaultClipChars = 50000
)

// Limits.
const (
	// summaryWindowFraction bounds a summary to this fraction of the
	// window, whatever clip_chars says, so that a summary never fills the
	// window it is meant to free.
	summaryWindowFraction = 0.1
	// summaryTokensMin is the least a summary may be clipped to.
	summaryTokensMin = 64
	// charsPerToken converts a token budget to characters when clipping.
	charsPerToken = 3
)

// Item is one message of the window as the planner sees it.
type Item struct {
	// Role is the chat role: "user", "assistant", "tool" or "system".
	Role string
	// Tokens is the message's size, framing included.
	Tokens int
	// Calls are the IDs of the tool calls an assistant message made.
	Calls []string
	// CallID is the call a tool message returns for.
	CallID string
}

// Settings are an agent's compaction settings, with defaults filled in.
type Settings struct {
	Mode string
	// Model is the summarizer's model handle ("" for the agent's).
	Model string
	// Prompt is the summarizer's instructions ("" for DefaultPrompt).
	Prompt string
	// KeepFraction is the fraction of the window a sliding-window
	// compaction keeps, in (0, 1).
	KeepFraction float64
	// ClipChars bounds the summary in characters (0: no bound of its own).
	ClipChars int
	// Acknowledge adds an assistant acknowledgement after the
	// instructions (Letta's prompt_acknowledgement).
	Acknowledge bool
}

// ParseSettings reads Letta's compaction_settings (already validated by
// the agent) and fills in the defaults.
func ParseSettings(m map[string]any) Settings {
	s := Settings{Mode: ModeSlidingWindow, KeepFraction: DefaultKeepFraction, ClipChars: DefaultClipChars}
	if v, ok := m["mode"].(string); ok && v != "" {
		s.Mode = v
	}
	if v, ok := m["model"].(string); ok {
		s.Model = v
	}
	if v, ok := m["prompt"].(string); ok {
		s.Prompt = v
	}
	if v, ok := m["prompt_acknowledgement"].(bool); ok {
		s.Acknowledge = v
	}
	if v, ok := m["sliding_window_percentage"].(float64); ok {
		// Letta's documents call it a percentage and its defaults are
		// fractions; accept both.
		if v > 1 {
			v /= 100
		}
		if v > 0 && v < 1 {
			s.KeepFraction = v
		}
	}
	if v, ok := m["clip_chars"]; ok {
		switch n := v.(type) {
		case nil:
			s.ClipChars = 0
		case float64:
			if n > 0 && n <= math.MaxInt32 {
				s.ClipChars = int(n)
			}
		}
	}
	return s
}

// all reports whether the mode evicts every message it can.
func (s Settings) all() bool { return s.Mode == ModeAll || s.Mode == ModeSelfAll }

// Budget is the size of what the model is sent besides the window's
// messages.
type Budget struct {
	// Limit is the model's context window, in tokens.
	Limit int
	// Fixed is the system prompt's and the tool definitions' tokens.
	Fixed int
	// Summary is the current summary's tokens (0 for none).
	Summary int
}

// Total returns the tokens of a request with these fixed parts and the
// window items.
func (b Budget) Total(items []Item) int {
	n := b.Fixed + b.Summary
	for _, it := range items {
		n += it.Tokens
	}
	return n
}

// Over reports whether a prompt of n tokens fills more than Threshold of
// the window.
func (b Budget) Over(n int) bool { return float64(n) > Threshold*float64(b.Limit) }

// SummaryTokensMax is the largest summary a window of b's limit takes.
func (b Budget) SummaryTokensMax() int {
	return max(summaryTokensMin, int(summaryWindowFraction*float64(b.Limit)))
}

// ClipChars is the bound, in characters, on a summary for this window:
// the settings' clip_chars, and never more than SummaryTokensMax.
func (b Budget) ClipChars(s Settings) int {
	n := b.SummaryTokensMax() * charsPerToken
	if s.ClipChars > 0 {
		n = min(n, s.ClipChars)
	}
	return n
}

// Plan is what a compaction evicts.
type Plan struct {
	// Evict is the number of window items evicted, oldest first; 0 when
	// nothing can be.
	Evict int
	// TokensBefore and TokensAfter are the prompt's estimated size with
	// the window as it is and without the evicted items (before the new
	// summary, which replaces the current one).
	TokensBefore, TokensAfter int
}

// Cut plans a compaction of the window items under b: in sliding-window
// mode it evicts the fewest oldest items that leave at most the settings'
// KeepFraction of the messages' tokens (counted up to what the window
// holds besides the fixed parts); in "all" mode, everything it can. It evicts only at a valid
// cut (CutValid), and keeps at least the newest item. Evict is 0 when no
// valid cut evicts anything.
func Cut(items []Item, b Budget, s Settings) Plan {
	p := Plan{TokensBefore: b.Total(items)}
	cuts := validCuts(items)
	if len(cuts) == 0 {
		p.TokensAfter = p.TokensBefore
		return p
	}
	choice := cuts[len(cuts)-1] // the most that can go
	if !s.all() {
		// Keep KeepFraction of the messages' tokens, counted up to the
		// window (a window barely used keeps that share of what is there).
		msgs := b.Total(items) - b.Fixed - b.Summary
		goal := int(s.KeepFraction * float64(min(msgs, b.Limit-b.Fixed)))
		kept, evicted := msgs, 0
		for _, c := range cuts {
			for ; evicted < c; evicted++ {
				kept -= items[evicted].Tokens
			}
			if kept <= goal {
				choice = c
				break
			}
		}
	}
	p.Evict = choice
	p.TokensAfter = b.Total(items[choice:]) - b.Summary
	return p
}

// validCuts returns, in increasing order, every n in 1..len(items)-1 at
// which evicting items[:n] is valid (CutValid), in one pass.
func validCuts(items []Item) []int {
	var out []int
	open := map[string]bool{} // calls in items[:n] without a return there
	for n := 1; n < len(items); n++ {
		it := items[n-1]
		for _, id := range it.Calls {
			open[id] = true
		}
		if it.Role == "tool" {
			delete(open, it.CallID)
		}
		if len(open) == 0 && items[n].Role != "tool" {
			out = append(out, n)
		}
	}
	return out
}

// CutValid reports whether the window may start at items[n]: the first
// kept item is not a tool return (its call would be evicted), and no
// evicted assistant message has a call whose return is kept or missing
// (a call waiting for approval or still running). Cutting before a user
// message is preferred but not required: a long chain of tool steps can
// be cut between two steps.
func CutValid(items []Item, n int) bool {
	if n <= 0 || n >= len(items) {
		return false
	}
	if items[n].Role == "tool" {
		return false
	}
	returned := map[string]bool{}
	for _, it := range items[:n] {
		if it.Role == "tool" && it.CallID != "" {
			returned[it.CallID] = true
		}
	}
	for _, it := range items[:n] {
		for _, id := range it.Calls {
			if !returned[id] {
				return false
			}
		}
	}
	return true
}

// CheckWindow reports what is wrong with a window, or nil: it must not
// start with a tool return, and every tool return in it must follow the
// call it answers within the window. The simulator checks every window
// it sees with it.
func CheckWindow(items []Item) error {
	calls := map[string]bool{}
	for i, it := range items {
		switch {
		case it.Role == "tool" && i == 0:
			return fmt.Errorf("compaction: the window starts with a tool return (call %q)", it.CallID)
		case it.Role == "tool" && !calls[it.CallID]:
			return fmt.Errorf("compaction: tool return %d (call %q) has no call before it in the window", i, it.CallID)
		}
		for _, id := range it.Calls {
			calls[id] = true
		}
	}
	return nil
}
