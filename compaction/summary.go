package compaction

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// DefaultPrompt is the summarizer's instructions when the settings give
// none.
const DefaultPrompt = "You are summarizing the earlier part of a conversation between a user and an AI agent, " +
	"so that the agent can go on without it. Below are the previous summary, if there is one, and the " +
	"messages that are leaving the agent's view. Write one summary that replaces both. Keep: what the user " +
	"wants and has told the agent (names, facts, preferences, decisions), what the agent has done and found " +
	"(tool results that still matter), open questions and the next steps. Leave out greetings and chatter. " +
	"Write plain prose in the third person, as short as the content allows. Reply with the summary only."

// acknowledgement is the assistant turn Settings.Acknowledge adds.
const acknowledgement = "Understood. I will reply with the summary only."

// Line is one evicted message, rendered for the summarizer.
type Line struct {
	// Role is "user", "assistant", "tool" or "system".
	Role string
	// Name is the tool's name, for a tool call or return.
	Name string
	// Text is the message's text, or a tool call's arguments.
	Text string
}

// Limits of the summarizer's input.
const (
	// lineCharsMax bounds one message in the transcript; a longer one is
	// cut in the middle.
	lineCharsMax = 4000
)

// Request is the summarizer's input: instructions, and the transcript as
// one user message.
type Request struct {
	System string
	User   string
	// Assistant, if set, is an acknowledgement between the two.
	Assistant string
}

// SummaryRequest builds the summarizer's input from the previous summary
// and the evicted messages, oldest first, bounded to inputCharsMax
// characters (the newest lines are kept when it must cut; the previous
// summary is always kept).
func SummaryRequest(s Settings, previous string, lines []Line, inputCharsMax int) Request {
	prompt := s.Prompt
	if prompt == "" {
		prompt = DefaultPrompt
	}
	rendered := make([]string, 0, len(lines))
	for _, l := range lines {
		rendered = append(rendered, renderLine(l))
	}
	var b strings.Builder
	if previous != "" {
		b.WriteString("<previous_summary>\n")
		b.WriteString(previous)
		b.WriteString("\n</previous_summary>\n\n")
	}
	budget := inputCharsMax - utf8.RuneCountInString(b.String()) - 64
	first := len(rendered)
	if first > 0 && utf8.RuneCountInString(rendered[first-1]) > budget {
		// The newest line is kept whatever its size, cut to fit.
		rendered[first-1] = ClipMiddle(rendered[first-1], max(budget-64, 0))
	}
	for first > 0 && budget-utf8.RuneCountInString(rendered[first-1]) >= 0 {
		first--
		budget -= utf8.RuneCountInString(rendered[first]) + 1
	}
	b.WriteString("<messages>\n")
	if first > 0 {
		fmt.Fprintf(&b, "(%d older messages omitted)\n", first)
	}
	for _, r := range rendered[first:] {
		b.WriteString(r)
		b.WriteByte('\n')
	}
	b.WriteString("</messages>")
	req := Request{System: prompt, User: b.String()}
	if s.Acknowledge {
		req.Assistant = acknowledgement
	}
	return req
}

func renderLine(l Line) string {
	text := ClipMiddle(l.Text, lineCharsMax)
	switch {
	case l.Role == "tool":
		return fmt.Sprintf("[tool %s returned] %s", l.Name, text)
	case l.Name != "":
		return fmt.Sprintf("[assistant called %s] %s", l.Name, text)
	default:
		return fmt.Sprintf("[%s] %s", l.Role, text)
	}
}

// Clip bounds a summary to n characters, cutting at the end.
func Clip(summary string, n int) string {
	summary = strings.TrimSpace(summary)
	if n <= 0 || utf8.RuneCountInString(summary) <= n {
		return summary
	}
	const mark = " […]"
	keep := max(0, n-utf8.RuneCountInString(mark))
	i := 0
	for j := range summary {
		if keep == 0 {
			i = j
			break
		}
		keep--
	}
	return summary[:i] + mark
}

// ClipMiddle bounds s to n characters, cutting its middle.
func ClipMiddle(s string, n int) string {
	count := utf8.RuneCountInString(s)
	if count <= n {
		return s
	}
	r := []rune(s)
	head, tail := n/2, n/2
	return fmt.Sprintf("%s […%d characters cut…] %s", string(r[:head]), count-head-tail, string(r[count-tail:]))
}

// SummaryMessage is how the summary is put before the window's messages,
// as a user message (every provider accepts one there).
func SummaryMessage(summary string) string {
	return "Note: earlier messages of this conversation are out of view to keep the context window within its limit. " +
		"Summary of them:\n" + summary
}
