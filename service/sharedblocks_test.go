package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// appender is a model that answers a user message by appending its text
// to the block labelled label (core_memory_append), then ends the turn;
// it records every system prompt it is sent.
type appender struct {
	label   string
	mu      sync.Mutex
	prompts []string
	// during, if set, runs inside each model call that appends.
	during func()
}

func (m *appender) script() *llmtest.Script {
	return &llmtest.Script{Reply: func(_ context.Context, req llm.Request) (*llm.Response, error) {
		m.mu.Lock()
		m.prompts = append(m.prompts, req.Messages[0].Content)
		m.mu.Unlock()
		last := req.Messages[len(req.Messages)-1]
		if last.Role == llm.RoleTool {
			return llmtest.Text("ok"), nil
		}
		if m.during != nil {
			m.during()
		}
		return llmtest.Call(agent.ToolCoreMemoryAppend, map[string]any{"label": m.label, "content": last.Content}), nil
	}}
}

// lastPrompt returns the last system prompt that starts with system.
func (m *appender) lastPrompt(system string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.prompts) - 1; i >= 0; i-- {
		if strings.HasPrefix(m.prompts[i], system) {
			return m.prompts[i]
		}
	}
	return ""
}

// sharedEnv creates a standalone block "team" and two agents ("A", "B",
// their system prompts) that attach it and can call core_memory_append.
func sharedEnv(t *testing.T, store storage.Store, model llm.Client, value string, limit int) (*env, *service.StandaloneBlock, []*agent.Agent) {
	t.Helper()
	e := newEnv(t, store, model)
	b, err := e.svc.CreateBlock(ctx, agent.Block{Label: "team", Value: value, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	var ags []*agent.Agent
	for _, name := range []string{"A", "B"} {
		ag, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: name, System: "I am " + name,
			Tools: []string{agent.ToolCoreMemoryAppend, agent.ToolSendMessage}, Blocks: []agent.BlockCreate{human("private " + name)}})
		if err != nil {
			t.Fatal(err)
		}
		if ag, err = e.svc.AttachBlock(ctx, ag.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		if got := ag.Block("team"); got == nil || got.ID != b.ID || got.Value != value {
			t.Fatalf("attach: blocks %+v", ag.Blocks)
		}
		ags = append(ags, ag)
	}
	return e, b, ags
}

func send(t *testing.T, e *env, agentID, text string) *agent.SendResponse {
	t.Helper()
	resp, err := e.svc.SendMessage(ctx, agentID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: text}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func teamValue(t *testing.T, e *env, agentID string) string {
	t.Helper()
	ag, err := e.svc.GetAgent(ctx, agentID)
	if err != nil {
		t.Fatal(err)
	}
	b := ag.Block("team")
	if b == nil {
		t.Fatalf("agent %s has no team block: %+v", agentID, ag.Blocks)
	}
	return b.Value
}

// (a) and (d): an edit one agent makes with its memory tools is the
// block's value for the other agent's next step, its reads, and
// GET /v1/blocks/{id}; private blocks stay private.
func TestSharedBlockAgentEditSeenByOthers(t *testing.T) {
	m := &appender{label: "team"}
	e, b, ags := sharedEnv(t, nil, m.script(), "start", 1000)
	resp := send(t, e, ags[0].ID, "A was here")
	if ret := resp.Messages[2]; ret.ToolStatus != agent.ToolSuccess {
		t.Fatalf("append: %+v", ret)
	}
	if st := storedAgent(t, e, ags[0].ID); st.Block("team") == nil || !st.Block("team").Shared || st.Block("team").Value != "" {
		t.Fatalf("A's state holds more than a reference: %+v", st.Blocks)
	}
	want := "start\nA was here"
	if got, err := e.svc.GetBlock(ctx, b.ID); err != nil || got.Value != want {
		t.Fatalf("GET block = %+v, %v; want %q", got, err, want)
	}
	if got := teamValue(t, e, ags[1].ID); got != want {
		t.Fatalf("B sees %q, want %q", got, want)
	}
	send(t, e, ags[1].ID, "B too")
	if p := m.lastPrompt("I am B"); !strings.Contains(p, "<value>\n"+want+"\nB too\n</value>") || strings.Contains(p, "private A") {
		t.Fatalf("B's prompt lacks A's edit or shows A's private block:\n%s", p)
	}
	want += "\nB too"
	for _, ag := range ags {
		if got := teamValue(t, e, ag.ID); got != want {
			t.Fatalf("agent %s sees %q, want %q", ag.Name, got, want)
		}
		cw, err := e.svc.ContextWindow(ctx, ag.ID)
		if err != nil || !strings.Contains(cw.CoreMemory, want) {
			t.Fatalf("context window of %s: %v\n%s", ag.Name, err, cw.CoreMemory)
		}
	}
	list, err := e.svc.ListAgents(ctx, service.ListOptions{})
	if err != nil || len(list) != 2 || list[0].Block("team").Value != want || list[1].Block("team").Value != want {
		t.Fatalf("list: %v %+v", err, list)
	}
}

// Two agents append to the same block at the same time, many times: every
// acknowledged edit survives, in some order (no lost update).
func TestSharedBlockConcurrentEditsNoLostUpdate(t *testing.T) {
	const rounds = 15
	m := &appender{label: "team"}
	e, b, ags := sharedEnv(t, nil, m.script(), "", agent.BlockLimitCharsMax)
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for _, ag := range ags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				resp, err := e.svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: fmt.Sprintf("%s-%d", ag.Name, i)}}})
				if err == nil && resp.Messages[2].ToolStatus != agent.ToolSuccess {
					err = fmt.Errorf("append: %+v", resp.Messages[2])
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := e.svc.GetBlock(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(got.Value, "\n")
	if len(lines) != 2*rounds {
		t.Fatalf("block holds %d edits, want %d:\n%s", len(lines), 2*rounds, got.Value)
	}
	for _, ag := range ags {
		for i := range rounds {
			if !strings.Contains("\n"+got.Value+"\n", fmt.Sprintf("\n%s-%d\n", ag.Name, i)) {
				t.Fatalf("edit %s-%d was lost:\n%s", ag.Name, i, got.Value)
			}
		}
	}
}

// racingBackend is a memory store that, once armed, lands a rival write
// to a shared block just before the first commit of an actor invocation
// that writes the block: that commit must then fail with a conflict.
type racingBackend struct {
	*memory.Store
	key   []byte
	armed atomic.Bool
	rival func() error
	hits  atomic.Int32
}

func (r *racingBackend) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(r), nil
}

func (r *racingBackend) Commit(ctx context.Context, req *storage.CommitRequest) error {
	if len(req.Fences) > 0 && r.armed.Load() {
		for _, w := range req.Writes {
			if bytes.Equal(w.Key, r.key) && r.armed.CompareAndSwap(true, false) {
				if err := r.rival(); err != nil {
					return err
				}
				err := r.Store.Commit(ctx, req)
				if errors.Is(err, storage.ErrConflict) {
					r.hits.Add(1)
				}
				return err
			}
		}
	}
	return r.Store.Commit(ctx, req)
}

// An agent's edit that races with a rival write to the block between its
// read and its commit conflicts, lands nothing, and is applied again to
// the new value without another model call: both edits survive.
func TestSharedBlockConflictingApplyRetries(t *testing.T) {
	inner := memory.New()
	rb := &racingBackend{Store: inner}
	model := &appender{label: "team"}
	script := model.script()
	e, b, ags := sharedEnv(t, rb, script, "start", 1000)
	rb.key = agent.SharedBlockKey(b.ID)
	rb.rival = func() error {
		tx, err := inner.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		rec, err := agent.LoadSharedBlock(ctx, tx.Get, b.ID)
		if err != nil {
			return err
		}
		rec.Value += "\nrival"
		v, err := agent.EncodeSharedBlock(rec)
		if err != nil {
			return err
		}
		if err := tx.Set(agent.SharedBlockKey(b.ID), v); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	rb.armed.Store(true)
	calls := script.Calls()
	resp := send(t, e, ags[0].ID, "mine")
	if rb.hits.Load() != 1 {
		t.Fatalf("the rival write caused %d conflicts, want 1", rb.hits.Load())
	}
	if n := script.Calls() - calls; n != 2 {
		t.Fatalf("%d model calls, want 2 (the conflicting step is applied again, not re-asked)", n)
	}
	if ret := resp.Messages[2]; ret.ToolStatus != agent.ToolSuccess || len(resp.Messages) != 4 {
		t.Fatalf("messages: %+v", resp.Messages)
	}
	want := "start\nrival\nmine"
	for _, ag := range ags {
		if got := teamValue(t, e, ag.ID); got != want {
			t.Fatalf("agent %s sees %q, want %q", ag.Name, got, want)
		}
	}
}

// (b): PATCH /v1/blocks changes what every attached agent sees, from its
// next step on — also a change made while a step's model call runs: the
// step's edit applies to the new value.
func TestSharedBlockUpdateSeenByAgents(t *testing.T) {
	m := &appender{label: "team"}
	e, b, ags := sharedEnv(t, nil, m.script(), "start", 1000)
	if _, err := e.svc.UpdateBlock(ctx, b.ID, agent.BlockUpdate{Value: ptrTo("patched")}, nil); err != nil {
		t.Fatal(err)
	}
	send(t, e, ags[0].ID, "A1")
	if p := m.lastPrompt("I am A"); !strings.Contains(p, "<value>\npatched\nA1\n</value>") {
		t.Fatalf("A's prompt lacks the patched value:\n%s", p)
	}
	m.during = func() {
		m.during = nil
		if _, err := e.svc.UpdateBlock(ctx, b.ID, agent.BlockUpdate{Value: ptrTo("mid-step")}, nil); err != nil {
			t.Error(err)
		}
	}
	send(t, e, ags[1].ID, "B1")
	if got := teamValue(t, e, ags[0].ID); got != "mid-step\nB1" {
		t.Fatalf("A sees %q, want the mid-step patch and B's edit", got)
	}
	// A label change is the block's too.
	if _, err := e.svc.UpdateBlock(ctx, b.ID, agent.BlockUpdate{}, ptrTo("crew")); err != nil {
		t.Fatal(err)
	}
	ag, err := e.svc.GetAgent(ctx, ags[1].ID)
	if err != nil || ag.Block("crew") == nil || ag.Block("team") != nil {
		t.Fatalf("after relabel: %v %+v", err, ag)
	}
}

// (c) and limits: updating a shared block through one agent changes it
// for all; an edit over the block's limit fails as a tool error, and
// changes nothing.
func TestSharedBlockUpdateThroughAgent(t *testing.T) {
	m := &appender{label: "team"}
	e, b, ags := sharedEnv(t, nil, m.script(), "start", 20)
	up, err := e.svc.UpdateAgent(ctx, ags[0].ID, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: "team", Value: ptrTo("via A"), Description: ptrTo("d")}}})
	if err != nil || up.Block("team").Value != "via A" {
		t.Fatalf("update: %v %+v", err, up)
	}
	if got, err := e.svc.GetBlock(ctx, b.ID); err != nil || got.Value != "via A" || got.Description != "d" || got.Limit != 20 {
		t.Fatalf("block after update through A: %+v %v", got, err)
	}
	if got := teamValue(t, e, ags[1].ID); got != "via A" {
		t.Fatalf("B sees %q", got)
	}
	if _, err := e.svc.UpdateAgent(ctx, ags[1].ID, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: "team", Value: ptrTo(strings.Repeat("x", 21))}}}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("over-limit update: %v", err)
	}
	resp := send(t, e, ags[1].ID, "this is far too long to fit")
	if ret := resp.Messages[2]; ret.ToolStatus != agent.ToolError || !strings.Contains(ret.Content, "over its limit of 20") {
		t.Fatalf("over-limit append: %+v", ret)
	}
	if got, _ := e.svc.GetBlock(ctx, b.ID); got.Value != "via A" {
		t.Fatalf("over-limit append changed the block: %q", got.Value)
	}
}

// (e) and deletes: detaching removes the reference only; deleting a block
// detaches it from every agent; deleting an agent leaves its blocks.
func TestSharedBlockDetachAndDelete(t *testing.T) {
	m := &appender{label: "team"}
	e, b, ags := sharedEnv(t, nil, m.script(), "start", 1000)
	ag, err := e.svc.DetachBlock(ctx, ags[0].ID, b.ID)
	if err != nil || ag.Block("team") != nil || ag.Block("human") == nil {
		t.Fatalf("detach: %v %+v", err, ag)
	}
	if got, err := e.svc.GetBlock(ctx, b.ID); err != nil || got.Value != "start" {
		t.Fatalf("block after detach: %+v %v", got, err)
	}
	if got := teamValue(t, e, ags[1].ID); got != "start" {
		t.Fatalf("B sees %q after A detached", got)
	}
	resp := send(t, e, ags[0].ID, "after detach")
	if ret := resp.Messages[2]; ret.ToolStatus != agent.ToolError {
		t.Fatalf("A edited a detached block: %+v", ret)
	}
	if got, _ := e.svc.GetBlock(ctx, b.ID); got.Value != "start" {
		t.Fatalf("block changed by a detached agent: %q", got.Value)
	}

	if err := e.svc.DeleteBlock(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if ag, err := e.svc.GetAgent(ctx, ags[1].ID); err != nil || ag.Block("team") != nil || len(ag.Blocks) != 1 {
		t.Fatalf("B after the block's delete: %v %+v", err, ag)
	}
	send(t, e, ags[1].ID, "after delete")
	if p := m.lastPrompt("I am B"); strings.Contains(p, "<team>") || !strings.Contains(p, "<human>") {
		t.Fatalf("B's prompt after delete:\n%s", p)
	}
	// The next change to B's blocks drops the dangling reference; the
	// block can no longer be attached.
	if _, err := e.svc.UpdateAgent(ctx, ags[1].ID, agent.UpdateRequest{Blocks: []agent.BlockUpdate{{Label: "human", Value: ptrTo("x")}}}); err != nil {
		t.Fatal(err)
	}
	if st := storedAgent(t, e, ags[1].ID); len(st.Blocks) != 1 || st.Blocks[0].Label != "human" {
		t.Fatalf("stored state of B still references the deleted block: %+v", st.Blocks)
	}
	if _, err := e.svc.AttachBlock(ctx, ags[1].ID, b.ID); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("attach of a deleted block: %v", err)
	}

	b2, err := e.svc.CreateBlock(ctx, agent.Block{Label: "kept", Value: "v"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AttachBlock(ctx, ags[1].ID, b2.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteAgent(ctx, ags[1].ID); err != nil {
		t.Fatal(err)
	}
	if got, err := e.svc.GetBlock(ctx, b2.ID); err != nil || got.Value != "v" {
		t.Fatalf("block after its agent's delete: %+v %v", got, err)
	}
}

// Shared blocks count toward BlocksMax, and a label an agent already has
// cannot be attached.
func TestSharedBlockBounds(t *testing.T) {
	e := newEnv(t, nil, nil)
	var blocks []agent.BlockCreate
	for i := range agent.BlocksMax {
		blocks = append(blocks, agent.BlockCreate{Label: fmt.Sprintf("b%d", i)})
	}
	full, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.CreateBlock(ctx, agent.Block{Label: "extra"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AttachBlock(ctx, full.ID, b.ID); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("attach over BlocksMax: %v", err)
	}
	dup, err := e.svc.CreateBlock(ctx, agent.Block{Label: "b0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DetachBlock(ctx, full.ID, full.Blocks[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AttachBlock(ctx, full.ID, dup.ID); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("attach of a taken label: %v", err)
	}
	if ag, err := e.svc.AttachBlock(ctx, full.ID, b.ID); err != nil || len(ag.Blocks) != agent.BlocksMax {
		t.Fatalf("attach after a detach: %v", err)
	}
}

// storedAgent reads the agent's committed state from storage.
func storedAgent(t *testing.T, e *env, id string) *agent.Agent {
	t.Helper()
	tx, err := e.store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	raw, err := tx.Get(ctx, agent.ActorID(id).StateKey())
	var st agent.State
	if err != nil || json.Unmarshal(raw, &st) != nil || st.Agent == nil {
		t.Fatalf("stored state of %s: %v %s", id, err, raw)
	}
	return st.Agent
}
