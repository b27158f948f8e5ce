package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

func TestMessageSearchText(t *testing.T) {
	call := Message{Role: "assistant", Content: "thinking", ToolCalls: []ToolCall{
		{Name: ToolSendMessage, Arguments: `{"message":"hello there"}`},
		{Name: ToolArchivalMemorySearch, Arguments: `{"query":"otters"}`},
	}}
	sent := Message{Role: "tool", ToolName: ToolSendMessage, ToolStatus: ToolSuccess, Content: "Sent message successfully."}
	found := Message{Role: "tool", ToolName: ToolArchivalMemorySearch, ToolStatus: ToolSuccess, Content: "otters hold hands"}
	for _, tc := range []struct {
		m        Message
		textOnly bool
		want     string
	}{
		{Message{Role: "user", Content: "hi"}, true, "hi"},
		{Message{Role: "system", Content: "be kind"}, false, "be kind"},
		{call, false, "thinking\nhello there\narchival_memory_search {\"query\":\"otters\"}"},
		{call, true, "thinking\nhello there"},
		{sent, false, ""},
		{found, false, "otters hold hands"},
		{found, true, ""},
	} {
		if got := MessageSearchText(&tc.m, tc.textOnly); got != tc.want {
			t.Errorf("MessageSearchText(%+v, %v) = %q, want %q", tc.m, tc.textOnly, got, tc.want)
		}
	}
}

// storeMessages writes messages into agents' default logs as the actor
// lays them out, with each agent's creation-index entry.
func storeMessages(t *testing.T, store storage.Store, agents []*Agent, perAgent int, text func(agent, i int) string) {
	t.Helper()
	ctx := context.Background()
	for a, ag := range agents {
		tx, err := store.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Set(ByCreatedKey(ag), nil); err != nil {
			t.Fatal(err)
		}
		for i := range perAgent {
			m := Message{ID: fmt.Sprintf("message-%04d-%05d", a, i), Seq: uint64(i), Role: "user", Content: text(a, i),
				CreatedAt: ag.CreatedAt.Add(time.Duration(i) * time.Millisecond)}
			b, err := json.Marshal(&m)
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Set(append(bytes.Clone(ActorID(ag.ID).KVPrefix()), MessageKey(m.Seq)...), b); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func searchStored(t *testing.T, store storage.Store, req MessageSearchRequest) *MessageSearchResponse {
	t.Helper()
	tx, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	resp, err := SearchStoredMessages(context.Background(), tx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func testAgent(i int) *Agent {
	return &Agent{ID: fmt.Sprintf("agent-00000000-0000-4000-8000-%012d", i), CreatedAt: t0.Add(time.Duration(i) * time.Hour)}
}

// A log longer than MessageSearchLogMax is read from its newest end, and
// the answer says it is partial.
func TestSearchStoredMessagesLogBound(t *testing.T) {
	store := memory.New()
	defer store.Close()
	long, short := testAgent(1), testAgent(2)
	storeMessages(t, store, []*Agent{long}, MessageSearchLogMax+1, func(_, i int) string { return fmt.Sprintf("needle %d", i) })
	storeMessages(t, store, []*Agent{short}, 10, func(_, i int) string { return "needle" })

	resp := searchStored(t, store, MessageSearchRequest{Query: "needles", AgentID: long.ID, Limit: MessageSearchLimitMax})
	if !resp.Partial || !resp.Ranked || len(resp.Results) != MessageSearchLimitMax {
		t.Fatalf("partial %v, ranked %v, %d results", resp.Partial, resp.Ranked, len(resp.Results))
	}
	if first := resp.Results[0].Message.ID; first != fmt.Sprintf("message-0000-%05d", MessageSearchLogMax) {
		t.Fatalf("best result %s; want the newest message", first)
	}
	// The oldest entry is past the bound: a search for its own words
	// does not reach it.
	if resp := searchStored(t, store, MessageSearchRequest{Query: "needle 0", AgentID: long.ID, Limit: 1}); resp.Results[0].Matches != 1 || !resp.Partial {
		t.Fatalf("the entry past the bound was read: %+v", resp.Results[0])
	}
	if resp := searchStored(t, store, MessageSearchRequest{Query: "needle", AgentID: short.ID}); resp.Partial || len(resp.Results) != 10 {
		t.Fatalf("a short log: partial %v, %d results", resp.Partial, len(resp.Results))
	}
}

// A search across agents reads the newest MessageSearchAgentsMax agents.
func TestSearchStoredMessagesAgentBound(t *testing.T) {
	store := memory.New()
	defer store.Close()
	agents := make([]*Agent, MessageSearchAgentsMax+1)
	for i := range agents {
		agents[i] = testAgent(i)
	}
	storeMessages(t, store, agents, 1, func(a, _ int) string { return fmt.Sprintf("agent%d says hello", a) })

	resp := searchStored(t, store, MessageSearchRequest{Query: "agent0 hello", Limit: 1})
	if !resp.Partial || len(resp.Results) != 1 || resp.Results[0].Matches != 1 || resp.Results[0].AgentID != agents[len(agents)-1].ID {
		t.Fatalf("partial %v, results %+v; want the newest agent's message, agent 0 unread", resp.Partial, resp.Results)
	}
	resp = searchStored(t, store, MessageSearchRequest{Query: "agent1 hello", Limit: 1})
	if resp.Results[0].Matches != 2 || resp.Results[0].AgentID != agents[1].ID {
		t.Fatalf("agent 1 is within the bound: %+v", resp.Results)
	}
}

func TestSearchStoredMessagesInvalid(t *testing.T) {
	store := memory.New()
	defer store.Close()
	tx, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, req := range []MessageSearchRequest{
		{Limit: MessageSearchLimitMax + 1},
		{Limit: -1},
		{Roles: []string{"robot"}},
		{ConversationID: "conv-1"},
		{Query: string(make([]byte, SearchQueryBytesMax+1))},
	} {
		if _, err := SearchStoredMessages(context.Background(), tx, req); !errors.Is(err, ErrInvalid) {
			t.Errorf("SearchStoredMessages(%+v) = %v, want ErrInvalid", req, err)
		}
	}
}
