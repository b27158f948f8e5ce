package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

type env struct {
	svc   *service.Service
	sys   *actor.System
	store storage.Store
}

func newEnv(t testing.TB, store storage.Store, model llm.Client) *env {
	t.Helper()
	r := rt.NewSystem()
	if store == nil {
		store = memory.New()
	}
	if model == nil {
		model = llmtest.Echo()
	}
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: slog.New(slog.DiscardHandler)})
	svc, err := service.New(r, store, sys, model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return &env{svc: svc, sys: sys, store: store}
}

var ctx = context.Background()

func human(value string) agent.BlockCreate {
	return agent.BlockCreate{Label: "human", Value: value, Limit: 100}
}

func (e *env) create(t testing.TB, name string) *agent.Agent {
	t.Helper()
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: name, Tags: []string{"t"}, Blocks: []agent.BlockCreate{human("likes tea"), {Label: "persona", Value: "helpful"}}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return ag
}

// reload deactivates the agent so the next read comes from storage.
func (e *env) reload(t *testing.T, id string) {
	t.Helper()
	if err := e.sys.Deactivate(ctx, agent.ActorID(id)); err != nil {
		t.Fatal(err)
	}
	if e.sys.IsActive(agent.ActorID(id)) {
		t.Fatal("still active after Deactivate")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateReturnsCommittedState(t *testing.T) {
	e := newEnv(t, nil, nil)
	ag := e.create(t, "alice")
	if !strings.HasPrefix(ag.ID, "agent-") || len(ag.ID) != len("agent-")+36 {
		t.Fatalf("id %q is not agent-<uuid>", ag.ID)
	}
	if ag.AgentType != agent.TypeLettaV1 || ag.System == "" || len(ag.Tools) == 0 {
		t.Fatalf("defaults not applied: %+v", ag)
	}
	if len(ag.Blocks) != 2 || ag.Blocks[0].Limit != 100 || ag.Blocks[1].Limit != agent.DefaultBlockLimitChars || !strings.HasPrefix(ag.Blocks[0].ID, "block-") {
		t.Fatalf("blocks = %+v", ag.Blocks)
	}
	e.reload(t, ag.ID)
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, ag) {
		t.Fatalf("stored state differs from the state create returned:\n%s\n%s", mustJSON(t, got), mustJSON(t, ag))
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, nil, nil)
	bad := []agent.CreateRequest{
		{AgentType: "gpt_agent"},
		{Blocks: []agent.BlockCreate{{Label: "a"}, {Label: "a"}}},
		{Blocks: []agent.BlockCreate{{Label: "a", Value: "12345", Limit: 4}}},
		{Blocks: []agent.BlockCreate{{Value: "no label"}}},
		{Name: strings.Repeat("n", agent.NameBytesMax+1)},
		{Tags: []string{" padded "}},
		{Tools: []string{"rm_rf"}},
	}
	for _, req := range bad {
		if _, err := e.svc.CreateAgent(ctx, req); !errors.Is(err, agent.ErrInvalid) {
			t.Errorf("create %+v: err = %v, want ErrInvalid", req, err)
		}
	}
	list, err := e.svc.ListAgents(ctx, service.ListOptions{})
	if err != nil || len(list) != 0 {
		t.Fatalf("rejected creates left %d agents (%v)", len(list), err)
	}
}

func TestUpdate(t *testing.T) {
	e := newEnv(t, nil, nil)
	ag := e.create(t, "bob")
	name, value := "robert", "likes coffee"
	tags := []string{"x", "y"}
	up, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Name: &name, Tags: &tags, Blocks: []agent.BlockUpdate{{Label: "human", Value: &value}}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != name || up.Block("human").Value != value || len(up.Tags) != 2 || !up.UpdatedAt.After(ag.UpdatedAt) && !up.UpdatedAt.Equal(ag.UpdatedAt) {
		t.Fatalf("update returned %+v", up)
	}
	e.reload(t, ag.ID)
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != mustJSON(t, up) {
		t.Fatal("stored state differs from the state update returned")
	}
	// A rejected update changes nothing, not even the valid parts.
	long := strings.Repeat("z", 101)
	other := "should not stick"
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Name: &other, Blocks: []agent.BlockUpdate{{Label: "human", Value: &long}}}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("over-limit block update: err = %v", err)
	}
	if _, err := e.svc.UpdateAgent(ctx, ag.ID, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: "nope", Value: &value}}}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("update of a missing block: err = %v", err)
	}
	got, _ = e.svc.GetAgent(ctx, ag.ID)
	if got.Name != name {
		t.Fatalf("rejected update leaked: name = %q", got.Name)
	}
	if _, err := e.svc.UpdateAgent(ctx, "agent-00000000-0000-4000-8000-000000000000", agent.UpdateRequest{Name: &name}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("update of a missing agent: err = %v", err)
	}
}

func TestDeleteRemovesEverythingAtomically(t *testing.T) {
	e := newEnv(t, nil, nil)
	keep := e.create(t, "keep")
	ag := e.create(t, "doomed")
	if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteAgent(ctx, ag.ID); err != nil {
		t.Fatal(err)
	}
	// Not found at once, whether or not the actor has deactivated yet…
	if _, err := e.svc.GetAgent(ctx, ag.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("get after delete: err = %v, want ErrNotFound", err)
	}
	if err := e.svc.DeleteAgent(ctx, ag.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("second delete: err = %v, want ErrNotFound", err)
	}
	// …and nothing of it is left in storage.
	tx, _ := e.store.Begin(ctx)
	defer tx.Rollback()
	root := agent.ActorID(ag.ID).KVPrefix()
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: root, End: root.End(), Limit: 100})
	if err != nil || len(kvs) != 0 {
		t.Fatalf("%d KV entries left after delete (%v)", len(kvs), err)
	}
	if _, err := tx.Get(ctx, agent.ActorID(ag.ID).StateKey()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("state left after delete: %v", err)
	}
	list, err := e.svc.ListAgents(ctx, service.ListOptions{})
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Fatalf("list after delete = %v, %v", list, err)
	}
	e.reload(t, ag.ID)
	if _, err := e.svc.GetAgent(ctx, ag.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("get after delete and reload: err = %v", err)
	}
}

func TestListAgents(t *testing.T) {
	e := newEnv(t, nil, nil)
	var ids []string
	for i := range 7 {
		ids = append(ids, e.create(t, fmt.Sprint("a", i)).ID)
		time.Sleep(time.Millisecond) // distinct creation times
	}
	page := func(opts service.ListOptions) []string {
		t.Helper()
		list, err := e.svc.ListAgents(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range list {
			out = append(out, a.ID)
		}
		return out
	}
	if got := page(service.ListOptions{}); mustJSON(t, got) != mustJSON(t, ids) {
		t.Fatalf("ascending list = %v, want %v", got, ids)
	}
	if got := page(service.ListOptions{Limit: 3, After: ids[2]}); mustJSON(t, got) != mustJSON(t, ids[3:6]) {
		t.Fatalf("page after %s = %v", ids[2], got)
	}
	if got := page(service.ListOptions{Limit: 2, After: ids[4], Descending: true}); mustJSON(t, got) != mustJSON(t, []string{ids[3], ids[2]}) {
		t.Fatalf("descending page = %v", got)
	}
	for _, bad := range []int{-1, service.ListLimitMax + 1} {
		if _, err := e.svc.ListAgents(ctx, service.ListOptions{Limit: bad}); !errors.Is(err, agent.ErrInvalid) {
			t.Errorf("limit %d: err = %v", bad, err)
		}
	}
	if _, err := e.svc.ListAgents(ctx, service.ListOptions{After: "agent-missing"}); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("unknown cursor: err = %v", err)
	}
}

func TestSendMessageEchoes(t *testing.T) {
	e := newEnv(t, nil, nil)
	ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPTV2})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "ping", OTID: "otid-1"}}})
	if err != nil {
		t.Fatal(err)
	}
	var roles []string
	for _, m := range resp.Messages {
		roles = append(roles, m.Role)
	}
	// user, assistant(send_message call), tool return; send_message ends the turn.
	if strings.Join(roles, ",") != "user,assistant,tool" || resp.StopReason != agent.StopEndTurn {
		t.Fatalf("turn = %v stop=%s", roles, resp.StopReason)
	}
	if !strings.Contains(resp.Messages[1].ToolCalls[0].Arguments, "echo: ping") || resp.Messages[2].ToolStatus != agent.ToolSuccess {
		t.Fatalf("echo turn = %+v", resp.Messages)
	}
	if resp.Usage.StepCount != 1 || resp.Usage.TotalTokens != 15 {
		t.Fatalf("usage = %+v", resp.Usage)
	}
	// A second turn returns only its own messages, and the log holds both.
	resp2, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "pong"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp2.Messages) != 3 || resp2.Messages[0].Seq != 3 {
		t.Fatalf("second turn = %+v", resp2.Messages)
	}
	e.reload(t, ag.ID)
	log, err := e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 6 || log[0].Content != "ping" || log[0].OTID != "otid-1" || log[3].Content != "pong" {
		t.Fatalf("log after reload = %+v", log)
	}
	for i, m := range log {
		if m.Seq != uint64(i) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
	// Cursor paging by message ID, both directions.
	page, err := e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{AfterID: log[1].ID, BeforeID: log[5].ID, Limit: 10})
	if err != nil || len(page) != 3 || page[0].Seq != 2 || page[2].Seq != 4 {
		t.Fatalf("page after %s before %s = %+v, %v", log[1].ID, log[5].ID, page, err)
	}
	page, err = e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{Descending: true, Limit: 2})
	if err != nil || len(page) != 2 || page[0].Seq != 5 || page[1].Seq != 4 {
		t.Fatalf("newest two = %+v, %v", page, err)
	}
	if _, err := e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{AfterID: "message-nope", Limit: 2}); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

// memoryScript makes the model append to a block, then end its turn.
func memoryScript(label, content string) *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		if req.Messages[len(req.Messages)-1].Role == llm.RoleTool {
			return llmtest.Text("noted"), nil
		}
		return llmtest.Call(agent.ToolMemoryInsert, map[string]any{"label": label, "new_str": content}), nil
	}}
}

func TestSendMessageEditsMemory(t *testing.T) {
	e := newEnv(t, nil, memoryScript("human", "name is Ada"))
	ag := e.create(t, "mem")
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "I'm Ada"}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason != agent.StopEndTurn || resp.Usage.StepCount != 2 {
		t.Fatalf("stop=%s steps=%d", resp.StopReason, resp.Usage.StepCount)
	}
	e.reload(t, ag.ID)
	got, _ := e.svc.GetAgent(ctx, ag.ID)
	if v := got.Block("human").Value; v != "likes tea\nname is Ada" {
		t.Fatalf("human block = %q", v)
	}
}

func TestBlockLimitIsAToolError(t *testing.T) {
	e := newEnv(t, nil, memoryScript("human", strings.Repeat("x", 200)))
	ag := e.create(t, "full")
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "remember this"}}})
	if err != nil {
		t.Fatal(err)
	}
	ret := resp.Messages[2]
	if ret.Role != llm.RoleTool || ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, "limit of 100") {
		t.Fatalf("tool return = %+v", ret)
	}
	got, _ := e.svc.GetAgent(ctx, ag.ID)
	if got.Block("human").Value != "likes tea" {
		t.Fatalf("over-limit append changed the block: %q", got.Block("human").Value)
	}
}

func TestMaxSteps(t *testing.T) {
	loop := &llmtest.Script{Reply: func(context.Context, llm.Request) (*llm.Response, error) {
		return llmtest.Call(agent.ToolConversationSearch, map[string]any{"query": "x"}), nil
	}}
	e := newEnv(t, nil, loop)
	ag := e.create(t, "loopy")
	resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "go"}}, MaxSteps: 3})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StopReason != agent.StopMaxSteps || resp.Usage.StepCount != 3 || loop.Calls() != 3 {
		t.Fatalf("stop=%s steps=%d calls=%d", resp.StopReason, resp.Usage.StepCount, loop.Calls())
	}
}

func TestSendFailureLogsNothing(t *testing.T) {
	e := newEnv(t, nil, llm.Unconfigured{})
	ag := e.create(t, "nollm")
	if _, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}}); !errors.Is(err, llm.ErrNotConfigured) {
		t.Fatalf("err = %v, want ErrNotConfigured", err)
	}
	log, err := e.svc.ListMessages(ctx, ag.ID, agent.ListMessagesRequest{Limit: 10})
	if err != nil || len(log) != 0 {
		t.Fatalf("failed turn left %d messages (%v)", len(log), err)
	}
	// Validation, with a model configured.
	e = newEnv(t, nil, nil)
	ag = e.create(t, "valid")
	for _, bad := range []agent.SendRequest{{}, {Messages: []agent.InputMessage{{Role: "assistant", Content: "x"}}}} {
		if _, err := e.svc.SendMessage(ctx, ag.ID, bad); !errors.Is(err, agent.ErrInvalid) {
			t.Errorf("send %+v: err = %v", bad, err)
		}
	}
	if _, err := e.svc.SendMessage(ctx, "agent-nope", agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "x"}}}); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("send to missing agent: err = %v", err)
	}
	if _, err := e.svc.GetAgent(ctx, "bad/id"); !errors.Is(err, agent.ErrNotFound) {
		t.Errorf("malformed id: err = %v", err)
	}
}

func TestUnknownAgentWritesNothing(t *testing.T) {
	e := newEnv(t, nil, nil)
	id := "agent-00000000-0000-4000-8000-000000000001"
	if _, err := e.svc.GetAgent(ctx, id); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if e.sys.IsActive(agent.ActorID(id)) {
		t.Fatal("a request for an unknown agent activated it")
	}
	tx, _ := e.store.Begin(ctx)
	defer tx.Rollback()
	if _, err := tx.Get(ctx, agent.ActorID(id).EpochKey()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a request for an unknown agent wrote its epoch: %v", err)
	}
}
