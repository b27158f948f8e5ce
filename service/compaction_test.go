package service_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
)

// windowModel is a model with a context window: it counts a request at
// one token per perToken bytes, refuses one over window as OpenAI does,
// and reports its count as usage. Summarizer requests (no tools, a system
// prompt about summarising) get a short summary; others an echo, or a
// conversation_search call for a user message starting "search:".
type windowModel struct {
	window, perToken int
	failSummaries    bool

	mu         sync.Mutex
	largest    int // the largest request it accepted, in its tokens
	overflows  int
	summaries  int
	lastSearch string // the last conversation_search result it saw
}

func (m *windowModel) size(req llm.Request) int {
	n := 0
	for _, msg := range req.Messages {
		n += len(msg.Content) + 16
		for _, tc := range msg.ToolCalls {
			n += len(tc.Name) + len(tc.Arguments)
		}
	}
	for _, t := range req.Tools {
		n += len(t.Name) + len(t.Description) + 200
	}
	return n / m.perToken
}

func (m *windowModel) Complete(_ context.Context, req llm.Request) (*llm.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.size(req)
	if n > m.window {
		m.overflows++
		return nil, &llm.APIError{Provider: "test", Status: 400, Type: "context_length_exceeded", Message: fmt.Sprintf("%d tokens > %d", n, m.window)}
	}
	m.largest = max(m.largest, n)
	usage := llm.Usage{PromptTokens: n, CompletionTokens: 5, TotalTokens: n + 5}
	if len(req.Tools) == 0 && strings.Contains(strings.ToLower(req.Messages[0].Content), "summar") {
		if m.failSummaries {
			return nil, &llm.APIError{Provider: "test", Status: 503, Message: "summarizer down"}
		}
		m.summaries++
		return &llm.Response{Message: llm.Message{Role: llm.RoleAssistant, Content: fmt.Sprintf("summary %d of %d characters", m.summaries, len(req.Messages[1].Content))}, Usage: usage}, nil
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role == llm.RoleTool {
		if last.Name == agent.ToolConversationSearch {
			m.lastSearch = last.Content
		}
		resp := llmtest.Text("done")
		resp.Usage = usage
		return resp, nil
	}
	var resp *llm.Response
	if q, ok := strings.CutPrefix(last.Content, "search:"); ok {
		resp = llmtest.Call(agent.ToolConversationSearch, map[string]any{"query": q})
	} else {
		resp = llmtest.Call(agent.ToolSendMessage, map[string]any{"message": "ok"})
	}
	resp.Usage = usage
	return resp, nil
}

// windowAgent creates an agent with a context window of window tokens.
func windowAgent(t *testing.T, m llm.Client, window int) (*env, string) {
	t.Helper()
	e := newEnv(t, nil, m)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "w", Blocks: []agent.BlockCreate{human("Name: Ada")},
		Tools: []string{agent.ToolSendMessage, agent.ToolConversationSearch}, ContextWindowLimit: window})
	if err != nil {
		t.Fatal(err)
	}
	return e, ag.ID
}

// A long conversation in a small window: every turn completes, the model
// is never sent more than its window, summaries replace the evicted
// messages, and conversation_search still finds them.
func TestCompactionKeepsConversationGoing(t *testing.T) {
	m := &windowModel{window: 3000, perToken: 3}
	e, id := windowAgent(t, m, 3000)
	say(t, e, id, "my favourite colour is vermilion")
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 20) // ~540 bytes
	for i := range 80 {
		resp := say(t, e, id, fmt.Sprintf("turn %d: %s", i, filler))
		if resp.StopReason != agent.StopEndTurn {
			t.Fatalf("turn %d stopped with %s", i, resp.StopReason)
		}
	}
	cw, err := e.svc.ContextWindow(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.summaries < 3 || cw.Summary == "" || !strings.Contains(cw.Summary, "summary") {
		t.Fatalf("%d summaries, context summary %q", m.summaries, cw.Summary)
	}
	// The model counts about as Kelpie does: compaction after the steps
	// kept every request within the window, without a refusal.
	if m.overflows > 0 || m.largest > m.window || cw.Total > cw.Limit {
		t.Fatalf("%d refusals, largest request %d tokens, context %d tokens; window %d", m.overflows, m.largest, cw.Total, m.window)
	}
	for _, msg := range cw.Messages {
		if strings.Contains(msg.Content, "vermilion") {
			t.Fatal("the first message is still in context after 80 turns")
		}
	}
	resp := say(t, e, id, "search:vermilion")
	if resp.StopReason != agent.StopEndTurn || !strings.Contains(m.lastSearch, "vermilion") {
		t.Fatalf("conversation_search after compaction: stop %s, result %q", resp.StopReason, m.lastSearch)
	}
	// The log kept everything: the first message, the summaries, the events.
	msgs, err := e.svc.ListMessages(ctx, id, agent.ListMessagesRequest{Limit: agent.MessagesPageMax})
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]int{}
	for _, msg := range msgs {
		roles[msg.Role]++
	}
	if !strings.Contains(msgs[0].Content, "vermilion") || roles[agent.RoleSummary] != m.summaries || roles[agent.RoleEvent] != m.summaries {
		t.Fatalf("log: first %q, roles %v, %d summaries", msgs[0].Content, roles, m.summaries)
	}
}

// A provider that counts more than Kelpie does refuses the request; the
// step is compacted and sent again, and the run completes.
func TestCompactionAfterProviderOverflow(t *testing.T) {
	// One token per byte: about four times Kelpie's count.
	m := &windowModel{window: 6000, perToken: 1}
	e, id := windowAgent(t, m, 6000)
	for i := range 30 {
		if resp := say(t, e, id, fmt.Sprintf("turn %d %s", i, strings.Repeat("word ", 60))); resp.StopReason != agent.StopEndTurn {
			t.Fatalf("turn %d: %s", i, resp.StopReason)
		}
	}
	if m.overflows == 0 || m.summaries == 0 {
		t.Fatalf("%d overflows, %d summaries: the reactive path did not run", m.overflows, m.summaries)
	}
	// After the first refusal, Kelpie's counts are scaled by the
	// provider's: refusals stay rare.
	if m.overflows > 3 {
		t.Fatalf("%d overflows in 30 turns", m.overflows)
	}
}

// A failing summarizer changes nothing: the window stays, the turns go on.
func TestCompactionSummarizerFailure(t *testing.T) {
	m := &windowModel{window: 1 << 20, perToken: 3, failSummaries: true}
	e, id := windowAgent(t, m, 2500)
	for i := range 12 {
		say(t, e, id, fmt.Sprintf("turn %d %s", i, strings.Repeat("word ", 80)))
	}
	cw, err := e.svc.ContextWindow(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cw.Summary != "" || !strings.Contains(cw.Messages[0].Content, "turn 0") {
		t.Fatalf("after failed summaries: summary %q, first in context %q", cw.Summary, cw.Messages[0].Content)
	}
}

// A client's compaction (summarize, compact) of an idle conversation.
func TestCompactOnRequest(t *testing.T) {
	m := &windowModel{window: 1 << 20, perToken: 3}
	e, id := windowAgent(t, m, 0)
	if _, err := e.svc.Compact(ctx, id, "", nil); !errors.Is(err, service.ErrNothingToCompact) {
		t.Fatalf("compact of an empty conversation: %v", err)
	}
	for i := range 6 {
		say(t, e, id, fmt.Sprintf("message %d", i))
	}
	out, err := e.svc.Compact(ctx, id, "", map[string]any{"mode": "all"})
	if err != nil {
		t.Fatal(err)
	}
	// Six turns of user, assistant, tool return: 18 messages; "all"
	// keeps the newest turn's start onwards... at least the last message.
	if out.MessagesBefore != 18 || out.MessagesAfter >= out.MessagesBefore || !strings.HasPrefix(out.Summary, "summary 1") {
		t.Fatalf("compact: %+v", out)
	}
	cw, err := e.svc.ContextWindow(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cw.Summary, out.Summary) || len(cw.Messages)+1 != out.MessagesAfter {
		t.Fatalf("context after compact: summary %q, %d messages; result %+v", cw.Summary, len(cw.Messages), out)
	}
	if _, err := e.svc.Compact(ctx, id, "", map[string]any{"mode": "nope"}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("bad settings: %v", err)
	}
}

// A system prompt that alone overflows the window stops the run with
// Letta's reason, before any model call.
func TestSystemPromptOverflowStopsRun(t *testing.T) {
	m := &windowModel{window: 1 << 20, perToken: 3}
	e, id := windowAgent(t, m, 200)
	_, err := e.svc.SendMessage(ctx, id, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}})
	var re *service.RunError
	if !errors.As(err, &re) || re.Run.StopReason != agent.StopContextOverflowSystem || !strings.Contains(re.Run.Error, "context window of 200") {
		t.Fatalf("send: %v", err)
	}
}

// A conversation other than the default one is compacted on its own,
// and keeps its compaction summary beside its own summary (the two must
// not share a JSON name: the simulator found that they did).
func TestCompactConversation(t *testing.T) {
	m := &windowModel{window: 1 << 20, perToken: 3}
	e, id := windowAgent(t, m, 0)
	conv, err := e.svc.CreateConversation(ctx, id, agent.CreateConversationRequest{Summary: "kelp chat"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := e.svc.SendMessage(ctx, id, agent.SendRequest{ConversationID: conv.ID,
			Messages: []agent.InputMessage{{Role: "user", Content: fmt.Sprintf("message %d", i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := e.svc.Compact(ctx, id, conv.ID, map[string]any{"mode": "all"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetConversation(ctx, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Summary != "kelp chat" || got.Thread.Summary == nil || got.Thread.Summary.Text != out.Summary || got.ContextStart == 0 {
		t.Fatalf("conversation after compact: summary %q, context summary %+v, context start %d", got.Summary, got.Thread.Summary, got.ContextStart)
	}
	// The default conversation is untouched.
	if cw, err := e.svc.ContextWindow(ctx, id); err != nil || cw.Summary != "" {
		t.Fatalf("default conversation: %v, summary %q", err, cw.Summary)
	}
}
