package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

type conversationJSON struct {
	ID                  string   `json:"id"`
	AgentID             string   `json:"agent_id"`
	Summary             *string  `json:"summary"`
	InContextMessageIDs []string `json:"in_context_message_ids"`
	IsolatedBlockIDs    []string `json:"isolated_block_ids"`
	Model               *string  `json:"model"`
}

// holdModel is a model that holds each call whose last user message starts
// with "hold" until released, and otherwise obeys lines "tool NAME {json}"
// or echoes; it counts calls in flight.
type holdModel struct {
	mu       sync.Mutex
	inFlight int
	maxIn    int
	release  chan struct{}
}

func newHoldModel() *holdModel { return &holdModel{release: make(chan struct{})} }

func (g *holdModel) script() *llmtest.Script {
	return &llmtest.Script{Reply: func(ctx context.Context, req llm.Request) (*llm.Response, error) {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == llm.RoleTool {
			return llmtest.Text("done"), nil
		}
		if strings.HasPrefix(last.Content, "hold") {
			g.mu.Lock()
			g.inFlight++
			g.maxIn = max(g.maxIn, g.inFlight)
			g.mu.Unlock()
			defer func() {
				g.mu.Lock()
				g.inFlight--
				g.mu.Unlock()
			}()
			select {
			case <-g.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if name, args, ok := strings.Cut(strings.TrimPrefix(last.Content, "tool "), " "); ok && strings.HasPrefix(last.Content, "tool ") {
			var a map[string]any
			if err := json.Unmarshal([]byte(args), &a); err != nil {
				return nil, err
			}
			return llmtest.Call(name, a), nil
		}
		return llmtest.Call("send_message", map[string]any{"message": "echo: " + last.Content}), nil
	}}
}

// waitInFlight waits until n calls are held at once.
func (g *holdModel) waitInFlight(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		in := g.inFlight
		g.mu.Unlock()
		if in >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never %d model calls in flight at once", n)
}

func TestConversations(t *testing.T) {
	g := newHoldModel()
	srv := server(t, g.script())
	body := ok(t, srv, "POST", "/v1/agents", map[string]any{"name": "multi", "agent_type": "memgpt_v2_agent",
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: unknown"}, {"label": "persona", "value": "helpful"}}})
	agentID := decodeAs[agentJSON](t, body).ID

	create := func(body any) conversationJSON {
		t.Helper()
		out := ok(t, srv, "POST", "/v1/conversations/?agent_id="+agentID, body)
		conform(t, out, "Conversation", false)
		return decodeAs[conversationJSON](t, out)
	}
	a := create(map[string]any{"summary": "alpha talk", "isolated_block_labels": []string{"human"}})
	b := create(nil)
	if !strings.HasPrefix(a.ID, "conv-") || a.AgentID != agentID || len(a.IsolatedBlockIDs) != 1 || len(b.IsolatedBlockIDs) != 0 || a.ID == b.ID {
		t.Fatalf("created %+v and %+v", a, b)
	}
	fails(t, srv, "POST", "/v1/conversations/?agent_id="+agentID, map[string]any{"isolated_block_labels": []string{"nope"}}, 404, "nope")
	fails(t, srv, "POST", "/v1/conversations/", nil, 422, "agent_id")

	send := func(conv, text string) (int, []byte) {
		return call(t, srv, "POST", "/v1/conversations/"+conv+"/messages", map[string]any{"streaming": false,
			"messages": []map[string]any{{"role": "user", "content": text}}})
	}

	// Two conversations of one agent run at the same time; a second send
	// to a busy one is refused naming its run.
	var wg sync.WaitGroup
	results := make([]int, 2)
	for i, conv := range []string{a.ID, b.ID} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = send(conv, "hold "+conv)
		}()
	}
	g.waitInFlight(t, 2)
	status, out := send(a.ID, "again")
	if status != http.StatusConflict || !strings.Contains(string(out), "run-") {
		t.Fatalf("send to a busy conversation = %d %s; want 409 naming the run", status, out)
	}
	runs := ok(t, srv, "GET", "/v1/runs?active=true&conversation_id="+a.ID, nil)
	var active []map[string]any
	if err := json.Unmarshal(runs, &active); err != nil || len(active) != 1 || active[0]["conversation_id"] != a.ID {
		t.Fatalf("active runs of %s: %s", a.ID, runs)
	}
	close(g.release)
	wg.Wait()
	if results[0] != 200 || results[1] != 200 || g.maxIn < 2 {
		t.Fatalf("concurrent sends = %v, max in flight %d", results, g.maxIn)
	}

	// Each conversation has its own log.
	msgs := func(conv string) string {
		t.Helper()
		out := ok(t, srv, "GET", "/v1/conversations/"+conv+"/messages?order=asc&agent_id="+agentID, nil)
		conform(t, out, "LettaMessageUnion", true)
		return string(out)
	}
	if ma, mb := msgs(a.ID), msgs(b.ID); !strings.Contains(ma, "hold "+a.ID) || strings.Contains(ma, "hold "+b.ID) ||
		!strings.Contains(mb, "hold "+b.ID) || strings.Contains(mb, "hold "+a.ID) {
		t.Fatalf("logs mixed:\nA: %s\nB: %s", ma, mb)
	}
	if d := msgs("default"); strings.Contains(d, "hold") {
		t.Fatalf("default conversation shows other conversations' messages: %s", d)
	}
	if out := ok(t, srv, "GET", "/v1/agents/"+agentID+"/messages?conversation_id="+b.ID, nil); !strings.Contains(string(out), "hold "+b.ID) {
		t.Fatalf("agent messages by conversation_id: %s", out)
	}

	// The isolated block is the conversation's own; other blocks are shared.
	if status, out := send(a.ID, `tool memory_rethink {"label": "human", "new_memory": "Name: Ada (alpha only)"}`); status != 200 {
		t.Fatalf("memory edit in A = %d %s", status, out)
	}
	if status, out := send(b.ID, `tool memory_insert {"label": "persona", "new_str": "likes tea"}`); status != 200 {
		t.Fatalf("memory edit in B = %d %s", status, out)
	}
	prompt := func(conv string) string {
		t.Helper()
		var s string
		if err := json.Unmarshal(ok(t, srv, "POST", "/v1/conversations/"+conv+"/recompile?agent_id="+agentID, nil), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if pa, pb, pd := prompt(a.ID), prompt(b.ID), prompt("default"); !strings.Contains(pa, "alpha only") || strings.Contains(pb, "alpha only") ||
		strings.Contains(pd, "alpha only") || !strings.Contains(pa, "likes tea") || !strings.Contains(pd, "likes tea") {
		t.Fatalf("prompts:\nA: %s\nB: %s\ndefault: %s", pa, pb, pd)
	}
	ag := ok(t, srv, "GET", "/v1/agents/"+agentID+"/core-memory/blocks/human", nil)
	if strings.Contains(string(ag), "alpha only") {
		t.Fatalf("the agent's own block changed: %s", ag)
	}

	// Fork copies the in-context messages and the isolated block.
	out = ok(t, srv, "POST", "/v1/conversations/"+a.ID+"/fork", nil)
	conform(t, out, "Conversation", false)
	fork := decodeAs[conversationJSON](t, out)
	if fork.ID == a.ID || len(fork.IsolatedBlockIDs) != 1 || fork.IsolatedBlockIDs[0] == a.IsolatedBlockIDs[0] || !strings.Contains(msgs(fork.ID), "hold "+a.ID) {
		t.Fatalf("fork %+v", fork)
	}
	if !strings.Contains(prompt(fork.ID), "alpha only") {
		t.Fatal("fork lost the isolated block's value")
	}
	got := decodeAs[conversationJSON](t, ok(t, srv, "GET", "/v1/conversations/"+a.ID, nil))
	if len(got.InContextMessageIDs) == 0 || *got.Summary != "alpha talk" {
		t.Fatalf("get %+v", got)
	}

	// List, filter, update, delete.
	list := ok(t, srv, "GET", "/v1/conversations/?agent_id="+agentID+"&order=asc", nil)
	conform(t, list, "Conversation", true)
	var all []conversationJSON
	if err := json.Unmarshal(list, &all); err != nil || len(all) != 3 || all[0].ID != a.ID || all[2].ID != fork.ID {
		t.Fatalf("list: %s", list)
	}
	if l := ok(t, srv, "GET", "/v1/conversations/?summary_search=ALPHA", nil); strings.Count(string(l), `"id"`) != 2 {
		t.Fatalf("summary search across agents: %s", l)
	}
	if l := ok(t, srv, "GET", fmt.Sprintf("/v1/conversations/?agent_id=%s&order=asc&after=%s&limit=1", agentID, a.ID), nil); !strings.Contains(string(l), b.ID) || strings.Contains(string(l), fork.ID) {
		t.Fatalf("page after A: %s", l)
	}
	upd := decodeAs[conversationJSON](t, ok(t, srv, "PATCH", "/v1/conversations/"+b.ID, map[string]any{"summary": "beta"}))
	if upd.Summary == nil || *upd.Summary != "beta" {
		t.Fatalf("update %+v", upd)
	}
	ok(t, srv, "DELETE", "/v1/conversations/"+b.ID, nil)
	fails(t, srv, "GET", "/v1/conversations/"+b.ID, nil, 404, b.ID)
	fails(t, srv, "POST", "/v1/conversations/"+b.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}}, 404, b.ID)

	// Streaming sends (the default) and resuming the last run's stream.
	status, _, events := postSSE(t, srv, "/v1/conversations/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "streamed"}}})
	if status != 200 {
		t.Fatalf("stream status %d", status)
	}
	checkStream(t, events)
	_, _, events = postSSE(t, srv, "/v1/conversations/"+a.ID+"/stream", map[string]any{})
	if m := checkStream(t, events); m[0]["content"] != "streamed" {
		t.Fatalf("resumed stream starts with %v", m[0])
	}
	// Cancel with nothing running answers an empty map.
	if out := ok(t, srv, "POST", "/v1/conversations/"+a.ID+"/cancel", nil); string(out) != "{}" {
		t.Fatalf("cancel idle = %s", out)
	}
	// Deleting the agent takes its conversations.
	ok(t, srv, "DELETE", "/v1/agents/"+agentID, nil)
	fails(t, srv, "GET", "/v1/conversations/"+a.ID, nil, 404, "")
	if l := ok(t, srv, "GET", "/v1/conversations/", nil); string(l) != "[]" {
		t.Fatalf("conversations of a deleted agent listed: %s", l)
	}
}
