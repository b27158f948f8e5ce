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
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// Test-only operations of testActor.
const (
	opTestTool = "test_tool" // ToolCall -> {result, status}
	opTestBulk = "test_bulk" // bulkRequest -> nothing
)

type bulkRequest struct {
	N      int    `json:"n"`
	Prefix string `json:"prefix"`
}

// testActor is the agent actor plus operations that run a built-in tool
// and insert many passages in one transaction.
type testActor struct{ Actor }

func (a *testActor) Invoke(ctx context.Context, c *actor.Context[State], op string, payload []byte) ([]byte, error) {
	switch op {
	case opTestTool:
		var tc ToolCall
		if err := decode(payload, &tc); err != nil {
			return nil, err
		}
		t := &turn{c: c, ag: c.State.Agent, ids: c.Runtime().Rand("ids")}
		result, status, _ := t.runTool(ctx, tc)
		return json.Marshal(map[string]string{"result": result, "status": status})
	case opTestBulk:
		var req bulkRequest
		if err := decode(payload, &req); err != nil {
			return nil, err
		}
		for i := range req.N {
			if _, err := insertPassage(c, &InsertPassageRequest{Text: fmt.Sprintf("%s %d", req.Prefix, i)}); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	return a.Actor.Invoke(ctx, c, op, payload)
}

type harness struct {
	t   *testing.T
	sys *actor.System
	id  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	r := rt.NewSystem()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: memory.New(), Logger: slog.New(slog.DiscardHandler)})
	if err := actor.Register[State](sys, Namespace, &testActor{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
	})
	h := &harness{t: t, sys: sys, id: rt.NewID(r.Rand("test"), "agent")}
	h.must(OpCreate.Name, CreateRequest{ID: h.id, Name: "archivist"}, nil)
	return h
}

func (h *harness) call(op string, in, out any) error {
	h.t.Helper()
	payload, err := json.Marshal(in)
	if err != nil {
		h.t.Fatal(err)
	}
	reply, err := h.sys.Invoke(context.Background(), ActorID(h.id), op, payload)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(reply, out); err != nil {
			h.t.Fatalf("decode %s reply: %v", op, err)
		}
	}
	return nil
}

func (h *harness) must(op string, in, out any) {
	h.t.Helper()
	if err := h.call(op, in, out); err != nil {
		h.t.Fatalf("%s: %v", op, err)
	}
}

func (h *harness) insert(text string, tags ...string) Passage {
	h.t.Helper()
	var p Passage
	h.must(OpArchivalInsert.Name, InsertPassageRequest{Text: text, Tags: tags}, &p)
	return p
}

func (h *harness) list(req ListPassagesRequest) []string {
	h.t.Helper()
	var ps []Passage
	h.must(OpArchivalList.Name, req, &ps)
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids
}

func (h *harness) count() uint64 {
	h.t.Helper()
	var ag Agent
	h.must(OpGet.Name, nil, &ag)
	return ag.PassageCount
}

func TestArchivalOps(t *testing.T) {
	h := newHarness(t)
	var ps []Passage
	for i := range 5 {
		ps = append(ps, h.insert(fmt.Sprintf("note %d about Paris", i), "n"))
	}
	if !strings.HasPrefix(ps[0].ID, "passage-") || len(ps[0].ID) != len("passage-")+36 || ps[0].Tags[0] != "n" {
		t.Fatalf("inserted %+v", ps[0])
	}
	if n := h.count(); n != 5 {
		t.Fatalf("PassageCount = %d", n)
	}
	id := func(i int) string { return ps[i].ID }
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10}), id(0), id(1), id(2), id(3), id(4))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 2, Descending: true}), id(4), id(3))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 2, After: id(1)}), id(2), id(3))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, Before: id(2)}), id(0), id(1))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, Descending: true, After: id(3)}), id(2), id(1), id(0))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, Descending: true, Before: id(3)}), id(4))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, After: id(0), Before: id(3)}), id(1), id(2))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, After: id(3), Before: id(1)}))
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, Search: "NOTE 3"}), id(3))

	// Backdated passages take their place in creation order.
	var old Passage
	h.must(OpArchivalInsert.Name, InsertPassageRequest{Text: "ancient", CreatedAt: ptrTime(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))}, &old)
	wantIDs(t, h.list(ListPassagesRequest{Limit: 1}), old.ID)

	h.must(OpArchivalDelete.Name, DeletePassageRequest{ID: id(2)}, nil)
	wantIDs(t, h.list(ListPassagesRequest{Limit: 10, After: old.ID}), id(0), id(1), id(3), id(4))
	if n := h.count(); n != 5 {
		t.Fatalf("PassageCount after insert+delete = %d", n)
	}
	for _, err := range []error{
		h.call(OpArchivalDelete.Name, DeletePassageRequest{ID: id(2)}, nil),
		h.call(OpArchivalList.Name, ListPassagesRequest{Limit: 1, After: id(2)}, nil),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted passage: err = %v, want ErrNotFound", err)
		}
	}

	var resp SearchResponse
	h.must(OpArchivalSearch.Name, SearchRequest{Query: "note 4 paris"}, &resp)
	if resp.Ranking != RankingBM25 || len(resp.Results) != 4 || resp.Results[0].Passage.ID != id(4) {
		t.Fatalf("search = %+v", resp)
	}
}

func TestArchivalValidation(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		op string
		in any
	}{
		{OpArchivalInsert.Name, InsertPassageRequest{}},
		{OpArchivalInsert.Name, InsertPassageRequest{Text: strings.Repeat("x", PassageBytesMax+1)}},
		{OpArchivalInsert.Name, InsertPassageRequest{Text: "x", Tags: []string{" t"}}},
		{OpArchivalInsert.Name, InsertPassageRequest{Text: "x", CreatedAt: ptrTime(time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC))}},
		{OpArchivalInsert.Name, InsertPassageRequest{Text: "x", Embedding: make([]float32, EmbeddingDimsMax+1)}},
		{OpArchivalList.Name, ListPassagesRequest{}},
		{OpArchivalList.Name, ListPassagesRequest{Limit: PassagesPageMax + 1}},
		{OpArchivalSearch.Name, SearchRequest{Query: "x", TopK: SearchTopKMax + 1}},
	} {
		if err := h.call(tc.op, tc.in, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %+v: err = %v, want ErrInvalid", tc.op, tc.in, err)
		}
	}
	// Operations on a missing agent.
	h.must(OpDelete.Name, nil, nil)
	for _, op := range []string{OpArchivalInsert.Name, OpArchivalList.Name, OpArchivalSearch.Name, OpArchivalDelete.Name} {
		if err := h.call(op, map[string]any{"text": "x", "limit": 1, "query": "x", "id": "passage-x"}, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s on a deleted agent: err = %v", op, err)
		}
	}
}

// TestArchivalPaging crosses storage.ScanLimitMax in both the filtered list
// and the search scan.
func TestArchivalPaging(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 12k passages")
	}
	h := newHarness(t)
	for i := range 3 {
		h.must(opTestBulk, bulkRequest{N: 4000, Prefix: fmt.Sprintf("filler%d", i)}, nil)
	}
	needle := h.insert("the needle in the haystack")
	if n := h.count(); n != 12001 || n <= storage.ScanLimitMax {
		t.Fatalf("PassageCount = %d", n)
	}
	wantIDs(t, h.list(ListPassagesRequest{Limit: 5, Search: "needle"}), needle.ID)
	var resp SearchResponse
	h.must(OpArchivalSearch.Name, SearchRequest{Query: "haystack"}, &resp)
	if len(resp.Results) != 1 || resp.Results[0].Passage.ID != needle.ID {
		t.Fatalf("search = %+v", resp)
	}
	// Recency ranking over the whole corpus returns the newest.
	h.must(OpArchivalSearch.Name, SearchRequest{Query: "", TopK: 1}, &resp)
	if resp.Ranking != RankingRecency || resp.Results[0].Passage.ID != needle.ID {
		t.Fatalf("recency search = %+v", resp)
	}
}

func TestArchivalTools(t *testing.T) {
	h := newHarness(t)
	tool := func(name string, args map[string]any) (string, string) {
		t.Helper()
		b, _ := json.Marshal(args)
		var out map[string]string
		h.must(opTestTool, ToolCall{ID: "call-1", Name: name, Arguments: string(b)}, &out)
		return out["result"], out["status"]
	}
	if res, st := tool(ToolArchivalMemoryInsert, map[string]any{"content": "User's sister is called Maya", "tags": []string{"family"}}); st != ToolSuccess {
		t.Fatalf("insert: %s %s", st, res)
	}
	tool(ToolArchivalMemoryInsert, map[string]any{"content": "User likes jazz"})
	if n := h.count(); n != 2 {
		t.Fatalf("PassageCount = %d", n)
	}
	res, st := tool(ToolArchivalMemorySearch, map[string]any{"query": "sister name"})
	var hits []struct {
		Timestamp string   `json:"timestamp"`
		Content   string   `json:"content"`
		Tags      []string `json:"tags"`
	}
	if st != ToolSuccess || json.Unmarshal([]byte(res), &hits) != nil || len(hits) != 1 || hits[0].Content != "User's sister is called Maya" || hits[0].Tags[0] != "family" {
		t.Fatalf("search: %s %s", st, res)
	}
	if _, err := time.Parse(time.RFC3339, hits[0].Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", hits[0].Timestamp, err)
	}
	res, _ = tool(ToolArchivalMemorySearch, map[string]any{"query": "user", "tags": []string{"family"}, "top_k": 5, "start_datetime": "2000-01-01"})
	if !strings.Contains(res, "Maya") || strings.Contains(res, "jazz") {
		t.Fatalf("tag-filtered search: %s", res)
	}
	for _, args := range []map[string]any{
		{"content": ""},
		{"content": "x", "tags": "not-a-list"},
	} {
		if res, st := tool(ToolArchivalMemoryInsert, args); st != ToolError {
			t.Fatalf("insert %v: %s %s", args, st, res)
		}
	}
	for _, args := range []map[string]any{
		{"query": "x", "top_k": 1.5},
		{"query": "x", "start_datetime": "yesterday"},
		{"query": "x", "tag_match_mode": "most"},
	} {
		if res, st := tool(ToolArchivalMemorySearch, args); st != ToolError {
			t.Fatalf("search %v: %s %s", args, st, res)
		}
	}
}
