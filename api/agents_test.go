package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// server starts the API over an in-memory store and the given model.
func server(t *testing.T, model llm.Client) *httptest.Server {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, model)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, api.WithLogger(slog.New(slog.DiscardHandler))))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return srv
}

// call sends a request and returns the status and body.
func call(t *testing.T, srv *httptest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	return callWith(t, srv, method, path, body, nil)
}

// ok requires a 200 and returns the body.
func ok(t *testing.T, srv *httptest.Server, method, path string, body any) []byte {
	t.Helper()
	status, out := call(t, srv, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method, path, status, out)
	}
	return out
}

// fails requires status and a {"detail": "..."} body containing want.
func fails(t *testing.T, srv *httptest.Server, method, path string, body any, status int, want string) {
	t.Helper()
	got, out := call(t, srv, method, path, body)
	detail, err := errorDetail(out)
	if got != status || err != nil || !strings.Contains(detail, want) {
		t.Fatalf("%s %s = %d %s; want %d with detail containing %q", method, path, got, out, status, want)
	}
	if status == http.StatusUnprocessableEntity {
		conform(t, out, "HTTPValidationError", false)
	}
}

// errorDetail reads {"detail": "..."} or, for 422, FastAPI's
// {"detail": [{"msg": "..."}]}.
func errorDetail(body []byte) (string, error) {
	var e struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return "", err
	}
	var s string
	if json.Unmarshal(e.Detail, &s) == nil {
		return s, nil
	}
	var list []struct {
		Msg string `json:"msg"`
	}
	if err := json.Unmarshal(e.Detail, &list); err != nil || len(list) == 0 {
		return "", fmt.Errorf("detail is neither a string nor a list of errors: %s", e.Detail)
	}
	return list[0].Msg, nil
}

type agentJSON struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Tags   []string `json:"tags"`
	Blocks []struct {
		ID, Label, Value string
		Limit            int
	} `json:"blocks"`
	Tools []struct{ ID, Name string } `json:"tools"`
}

func decodeAs[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, body)
	}
	return v
}

func createAgent(t *testing.T, srv *httptest.Server, name string, tags ...string) agentJSON {
	t.Helper()
	body := ok(t, srv, "POST", "/v1/agents/", map[string]any{
		"name": name, "tags": tags, "model": "openai/gpt-4o-mini",
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: unknown", "limit": 200}, {"label": "persona", "value": "I am helpful."}},
	})
	conform(t, body, "AgentState", false)
	return decodeAs[agentJSON](t, body)
}

func TestAgentCRUD(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "alice", "x")
	if !strings.HasPrefix(a.ID, "agent-") || len(a.Blocks) != 2 || a.Blocks[0].Limit != 200 || len(a.Tools) == 0 {
		t.Fatalf("created %+v", a)
	}
	for _, path := range []string{"/v1/agents/" + a.ID, "/v1/agents/" + a.ID + "/"} {
		body := ok(t, srv, "GET", path, nil)
		conform(t, body, "AgentState", false)
		if got := decodeAs[agentJSON](t, body); got.ID != a.ID || got.Name != "alice" {
			t.Fatalf("GET %s = %+v", path, got)
		}
	}
	body := ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"name": "alicia", "tags": []string{"y"}})
	conform(t, body, "AgentState", false)
	if got := decodeAs[agentJSON](t, body); got.Name != "alicia" || len(got.Tags) != 1 || got.Tags[0] != "y" {
		t.Fatalf("PATCH returned %+v", got)
	}
	// Tool IDs round-trip: detach all but one tool by ID.
	keep := a.Tools[0]
	body = ok(t, srv, "PATCH", "/v1/agents/"+a.ID, map[string]any{"tool_ids": []string{keep.ID}})
	if got := decodeAs[agentJSON](t, body); len(got.Tools) != 1 || got.Tools[0].Name != keep.Name {
		t.Fatalf("tools after PATCH tool_ids = %+v", got.Tools)
	}
	ok(t, srv, "DELETE", "/v1/agents/"+a.ID, nil)
	fails(t, srv, "GET", "/v1/agents/"+a.ID, nil, 404, "not found")
	fails(t, srv, "DELETE", "/v1/agents/"+a.ID, nil, 404, "not found")
}

func TestAgentErrors(t *testing.T) {
	srv := server(t, llmtest.Echo())
	fails(t, srv, "GET", "/v1/agents/not-an-id", nil, 422, "not a valid agent ID")
	fails(t, srv, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
	fails(t, srv, "POST", "/v1/agents", "{not json", 422, "invalid JSON")
	fails(t, srv, "POST", "/v1/agents", map[string]any{"agent_type": "gpt_agent"}, 422, "unknown agent_type")
	fails(t, srv, "POST", "/v1/agents", map[string]any{"tool_ids": []string{"tool-00000000-0000-4000-8000-000000000000"}}, 404, "tool")
	fails(t, srv, "POST", "/v1/agents", map[string]any{"memory_blocks": []map[string]any{{"label": "h", "value": "toolong", "limit": 3}}}, 422, "limit")
	fails(t, srv, "POST", "/v1/agents", strings.Repeat(" ", 9<<20), 413, "exceeds")
	fails(t, srv, "PUT", "/v1/agents", nil, 405, "Method Not Allowed")
	fails(t, srv, "GET", "/v1/agents?limit=0", nil, 422, "limit")
	fails(t, srv, "GET", "/v1/agents?order=sideways", nil, 422, "order")
}

func TestListAgents(t *testing.T) {
	srv := server(t, llmtest.Echo())
	var ids []string
	for i, tags := range [][]string{{"red"}, {"red", "blue"}, {"blue"}, nil} {
		ids = append(ids, createAgent(t, srv, []string{"ann", "bob", "cat", "annie"}[i], tags...).ID)
		time.Sleep(2 * time.Millisecond)
	}
	list := func(query string) []string {
		t.Helper()
		body := ok(t, srv, "GET", "/v1/agents/"+query, nil)
		conform(t, body, "AgentState", true)
		var out []string
		for _, a := range decodeAs[[]agentJSON](t, body) {
			out = append(out, a.ID)
		}
		return out
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	eq(list(""), ids[3], ids[2], ids[1], ids[0]) // newest first
	eq(list("?order=asc"), ids...)
	eq(list("?order=asc&limit=2&after="+ids[0]), ids[1], ids[2])
	eq(list("?limit=2&before="+ids[0]), ids[2], ids[1])
	eq(list("?tags=red&order=asc"), ids[0], ids[1])
	eq(list("?tags=red&tags=blue&match_all_tags=true"), ids[1])
	eq(list("?name=ann"), ids[0])
	eq(list("?query_text=ANN&order=asc"), ids[0], ids[3])
}

func TestCoreMemoryBlocks(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "mem")
	base := "/v1/agents/" + a.ID + "/core-memory/blocks"
	conform(t, ok(t, srv, "GET", base, nil), "BlockResponse", true)
	body := ok(t, srv, "GET", base+"/human", nil)
	conform(t, body, "BlockResponse", false)
	body = ok(t, srv, "PATCH", base+"/human", map[string]any{"value": "Name: Ada"})
	conform(t, body, "BlockResponse", false)
	if got := decodeAs[struct{ Value string }](t, body); got.Value != "Name: Ada" {
		t.Fatalf("patched block = %s", body)
	}
	fails(t, srv, "PATCH", base+"/human", map[string]any{"value": strings.Repeat("x", 201)}, 422, "limit of 200")
	fails(t, srv, "GET", base+"/nope", nil, 404, "nope")
	fails(t, srv, "PATCH", base+"/nope", map[string]any{"value": "x"}, 404, "nope")
}

func TestSendAndListMessages(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "chat")
	path := "/v1/agents/" + a.ID + "/messages"
	body := ok(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi there", "otid": "o-1"}}})
	conform(t, body, "LettaResponse", false)
	resp := decodeAs[struct {
		Messages []struct {
			MessageType string `json:"message_type"`
			Content     string `json:"content"`
		} `json:"messages"`
		StopReason struct {
			StopReason string `json:"stop_reason"`
		} `json:"stop_reason"`
		Usage struct {
			StepCount int `json:"step_count"`
		} `json:"usage"`
	}](t, body)
	var kinds []string
	for _, m := range resp.Messages {
		kinds = append(kinds, m.MessageType)
	}
	// letta_v1_agent has no send_message: the echo script's call fails as a
	// tool error, then it answers in text.
	if resp.StopReason.StopReason != "end_turn" || kinds[0] != "user_message" || resp.Usage.StepCount == 0 {
		t.Fatalf("response %s", body)
	}
	// Content as a list of parts.
	ok(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "text", "text": "part one"}}}}})
	body = ok(t, srv, "GET", path+"?order=asc", nil)
	conform(t, body, "LettaMessageUnion", true)
	msgs := decodeAs[[]struct {
		ID          string `json:"id"`
		MessageType string `json:"message_type"`
		Content     string `json:"content"`
	}](t, body)
	if len(msgs) < 4 || msgs[0].Content != "hi there" {
		t.Fatalf("log = %s", body)
	}
	newest := decodeAs[[]struct {
		ID string `json:"id"`
	}](t, ok(t, srv, "GET", path+"?limit=1", nil))
	if len(newest) != 1 || newest[0].ID != msgs[len(msgs)-1].ID {
		t.Fatalf("newest = %v, want %s", newest, msgs[len(msgs)-1].ID)
	}
	after := decodeAs[[]struct {
		ID string `json:"id"`
	}](t, ok(t, srv, "GET", path+"?order=asc&limit=1&after="+msgs[0].ID, nil))
	if len(after) != 1 || after[0].ID == msgs[0].ID {
		t.Fatalf("page after first = %v", after)
	}
	fails(t, srv, "POST", path, map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image", "url": "x"}}}}}, 422, "image")
	fails(t, srv, "POST", path, map[string]any{"messages": []any{}}, 422, "1..")
}

func TestSendWithoutProvider(t *testing.T) {
	srv := server(t, llm.Unconfigured{})
	a := createAgent(t, srv, "nollm")
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, 400, "OPENAI_API_KEY")
}
