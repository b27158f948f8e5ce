package agent

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
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

func TestCheckImported(t *testing.T) {
	call := func(ids ...string) Message {
		m := Message{Role: llm.RoleAssistant}
		for _, id := range ids {
			m.ToolCalls = append(m.ToolCalls, ToolCall{ID: id, Name: "f", Arguments: "{}"})
		}
		return m
	}
	ret := func(id string) Message {
		return Message{Role: llm.RoleTool, ToolCallID: id, ToolName: "f", ToolStatus: ToolSuccess}
	}
	user := Message{Role: llm.RoleUser, Content: "hi"}
	for _, c := range []struct {
		name string
		msgs []Message
		want string // "" for valid
	}{
		{"a turn", []Message{user, call("a", "b"), ret("b"), ret("a"), {Role: llm.RoleAssistant, Content: "ok"}}, ""},
		{"a call ID used again later", []Message{call("a"), ret("a"), user, call("a"), ret("a")}, ""},
		{"unanswered at the end", []Message{user, call("a")}, "not answered"},
		{"answered too late", []Message{call("a"), user, ret("a")}, "not answered"},
		{"return without call", []Message{user, ret("a")}, "did not make"},
		{"answered twice", []Message{call("a"), ret("a"), ret("a")}, "answered already"},
		{"two calls with one ID", []Message{call("a", "a"), ret("a"), ret("a")}, "two tool calls"},
		{"no call ID", []Message{call("")}, "needs an id"},
		{"bad status", []Message{call("a"), {Role: llm.RoleTool, ToolCallID: "a", ToolStatus: "meh"}}, "tool status"},
		{"bad role", []Message{{Role: "robot"}}, "role"},
		{"content too long", []Message{{Role: llm.RoleUser, Content: strings.Repeat("x", MessageBytesMax+1)}}, "over the limit"},
		{"otid too long", []Message{{Role: llm.RoleUser, OTID: strings.Repeat("o", otidBytesMax+1)}}, "otid"},
		{"too many", make([]Message, ImportMessagesMax+1), "over the limit"},
	} {
		err := checkImported(c.msgs)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want ErrInvalid with %q", c.name, err, c.want)
		}
	}
}

// opTestLog logs n user messages (a test-only operation of logActor).
const opTestLog = "test_log"

// logActor is the agent actor plus opTestLog.
type logActor struct{ Actor }

func (a *logActor) Invoke(ctx context.Context, c *actor.Context[State], op string, payload []byte) ([]byte, error) {
	if op != opTestLog {
		return a.Actor.Invoke(ctx, c, op, payload)
	}
	var n int
	if err := decode(payload, &n); err != nil {
		return nil, err
	}
	ag, ids := c.State.Agent, c.Runtime().Rand("ids")
	for range n {
		m := Message{ID: rt.NewID(ids, "message"), Seq: ag.NextSeq, Role: llm.RoleUser, Content: fmt.Sprint(ag.NextSeq), CreatedAt: c.Now()}
		b, _ := json.Marshal(&m)
		if err := c.Set(MessageKey(m.Seq), b); err != nil {
			return nil, err
		}
		ag.NextSeq++
	}
	ag.MessageCount = ag.NextSeq
	return nil, nil
}

func newImportSystem(t *testing.T) (*actor.System, rt.Rand) {
	t.Helper()
	r := rt.NewSystem()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: memory.New(), Logger: slog.New(slog.DiscardHandler)})
	if err := actor.Register[State](sys, Namespace, &logActor{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	return sys, r.Rand("test")
}

func invoke(t *testing.T, sys *actor.System, id, op string, in, out any) error {
	t.Helper()
	payload, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := sys.Invoke(context.Background(), ActorID(id), op, payload)
	if err == nil && out != nil {
		err = json.Unmarshal(reply, out)
	}
	return err
}

func TestImportAndExport(t *testing.T) {
	sys, ids := newImportSystem(t)
	id := rt.NewID(ids, "agent")
	at := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	req := ImportRequest{
		Agent:       CreateRequest{ID: id, Name: "imported", Tools: []string{ToolConversationSearch}, Blocks: []BlockCreate{{Label: "human", Value: "v"}}},
		EmptySystem: true, ApprovalRequired: []string{ToolConversationSearch},
		Messages: []Message{
			{Role: llm.RoleUser, Content: "hello", OTID: "o1", CreatedAt: at},
			{Role: llm.RoleAssistant, ToolCalls: []ToolCall{{ID: "c1", Name: ToolConversationSearch, Arguments: "{}"}}},
			{Role: llm.RoleTool, ToolCallID: "c1", ToolName: ToolConversationSearch, ToolStatus: ToolError, Content: "no"},
			{ID: "message-ignored", Seq: 99, RunID: "run-ignored", Role: llm.RoleAssistant, Content: "bye"},
		},
	}
	var ag Agent
	if err := invoke(t, sys, id, OpImport.Name, req, &ag); err != nil {
		t.Fatal(err)
	}
	if ag.System != "" || ag.NextSeq != 4 || ag.MessageCount != 4 || len(ag.ApprovalRequired) != 1 || ag.Blocks[0].Value != "v" {
		t.Fatalf("imported %+v", ag)
	}
	if err := invoke(t, sys, id, OpImport.Name, req, nil); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("import again = %v", err)
	}
	if err := sys.Deactivate(context.Background(), ActorID(id)); err != nil {
		t.Fatal(err)
	}
	var ex Export
	if err := invoke(t, sys, id, OpExport.Name, ExportRequest{Messages: true}, &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Agent.Name != "imported" || len(ex.Messages) != 4 || len(ex.InContext) != 4 {
		t.Fatalf("export: %+v", ex)
	}
	for i, m := range ex.Messages {
		in := req.Messages[i]
		if m.Seq != uint64(i) || !strings.HasPrefix(m.ID, "message-") || m.ID == "message-ignored" || m.RunID != "" ||
			m.Role != in.Role || m.Content != in.Content || m.ToolStatus != in.ToolStatus || m.OTID != in.OTID || m.ID != ex.InContext[i] {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	if !ex.Messages[0].CreatedAt.Equal(at) || ex.Messages[1].CreatedAt.IsZero() {
		t.Fatalf("created at %v, %v", ex.Messages[0].CreatedAt, ex.Messages[1].CreatedAt)
	}
	var bare Export
	if err := invoke(t, sys, id, OpExport.Name, ExportRequest{}, &bare); err != nil || len(bare.Messages) != 0 || bare.Agent == nil {
		t.Fatalf("export without messages: %+v, %v", bare, err)
	}

	// A failed import leaves nothing.
	other := rt.NewID(ids, "agent")
	req.Agent.ID = other
	req.Messages = append(req.Messages, Message{Role: llm.RoleTool, ToolCallID: "zz", ToolStatus: ToolSuccess})
	if err := invoke(t, sys, other, OpImport.Name, req, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("import of a bad history = %v", err)
	}
	if err := invoke(t, sys, other, OpGet.Name, nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after a failed import: %v", err)
	}
	req.Messages = nil
	req.Agent.System = "not empty"
	if err := invoke(t, sys, other, OpImport.Name, req, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty_system with a system prompt = %v", err)
	}
}

// TestExportPages: an export reads a log longer than one scan.
func TestExportPages(t *testing.T) {
	sys, ids := newImportSystem(t)
	id := rt.NewID(ids, "agent")
	if err := invoke(t, sys, id, OpCreate.Name, CreateRequest{ID: id}, nil); err != nil {
		t.Fatal(err)
	}
	const perCall = 6000 // one write each, within a transaction's bound
	total := 0
	for total <= storage.ScanLimitMax {
		if err := invoke(t, sys, id, opTestLog, perCall, nil); err != nil {
			t.Fatal(err)
		}
		total += perCall
	}
	var ex Export
	if err := invoke(t, sys, id, OpExport.Name, ExportRequest{Messages: true}, &ex); err != nil {
		t.Fatal(err)
	}
	if len(ex.Messages) != total {
		t.Fatalf("exported %d of %d messages", len(ex.Messages), total)
	}
	for i, m := range ex.Messages {
		if m.Seq != uint64(i) {
			t.Fatalf("message %d has seq %d", i, m.Seq)
		}
	}
	if len(ex.InContext) != contextMessagesMax || ex.InContext[len(ex.InContext)-1] != ex.Messages[total-1].ID {
		t.Fatalf("in context: %d, last %v", len(ex.InContext), ex.InContext[len(ex.InContext)-1:])
	}
}
