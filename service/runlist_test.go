package service_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// countingStore is a memory store that counts the pairs its scans return.
type countingStore struct {
	*memory.Store
	scanned atomic.Int64
}

func (s *countingStore) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(s), nil
}

func (s *countingStore) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	kvs, err := s.Store.Scan(ctx, opts)
	s.scanned.Add(int64(len(kvs)))
	return kvs, err
}

// pageAll lists every run of q a page at a time with after cursors,
// checking that no page scans much more than it returns.
func pageAll(t *testing.T, e *env, store *countingStore, q service.RunQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		before := store.scanned.Load()
		page, err := e.svc.ListRuns(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if scanned := store.scanned.Load() - before; scanned > int64(q.Limit)+16 {
			t.Fatalf("a page of %d runs scanned %d pairs: not a page of the index", len(page.Runs), scanned)
		}
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
		}
		if len(page.Runs) < q.Limit {
			return ids
		}
		q.After = page.Runs[len(page.Runs)-1].ID
	}
}

// TestListRunsPagesPastAThousand: an agent with 1,100 runs (and another
// agent's runs around them) lists all of them, in both orders, across
// agents and for one agent, a page of the index at a time.
func TestListRunsPagesPastAThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 runs")
	}
	store := &countingStore{Store: memory.New()}
	e := newEnv(t, store, replyText(0))
	a, b := e.create(t, "many"), e.create(t, "few")
	var all, ofA []string
	for i := range 1100 {
		id := a.ID
		if i%100 == 0 {
			id = b.ID
			all = append(all, e.send(t, id, "b").RunID)
		}
		run := e.send(t, a.ID, "a").RunID
		all, ofA = append(all, run), append(ofA, run)
	}
	e.reload(t, a.ID)
	e.reload(t, b.ID)
	for _, c := range []struct {
		name string
		q    service.RunQuery
		want []string
	}{
		{"all", service.RunQuery{Limit: 100}, all},
		{"agent", service.RunQuery{AgentIDs: []string{a.ID}, Limit: 100}, ofA},
		{"all, pages of 1000", service.RunQuery{Limit: service.ListLimitMax}, all},
	} {
		for _, desc := range []bool{false, true} {
			q := c.q
			q.Descending = desc
			got := pageAll(t, e, store, q)
			want := slices.Clone(c.want)
			if desc {
				slices.Reverse(want)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s, descending %v: listed %d runs, want %d (first %v)", c.name, desc, len(got), len(want), got[:min(3, len(got))])
			}
		}
	}
	// A before cursor gives the page nearest it.
	page, err := e.svc.ListRuns(ctx, service.RunQuery{AgentIDs: []string{a.ID}, Before: ofA[50], Limit: 10})
	if err != nil || len(page.Runs) != 10 || page.Runs[0].ID != ofA[40] || page.Runs[9].ID != ofA[49] {
		t.Fatalf("before: %v", err)
	}
	if e.sys.IsActive(agent.ActorID(a.ID)) {
		t.Fatal("listing runs activated the agent")
	}
}

// TestListRunsOrdersLegacyAgent: an agent stored before runs had their
// per-agent ordering (no "rc" entries, no runs_ordered) lists all its runs
// after the upgrade, and the ordering is written once.
func TestListRunsOrdersLegacyAgent(t *testing.T) {
	e := newEnv(t, nil, replyText(0))
	a := e.create(t, "legacy")
	var want []string
	for range 5 {
		want = append(want, e.send(t, a.ID, "hi").RunID)
	}
	e.reload(t, a.ID)
	// Make it as an earlier Kelpie stored it.
	tx, err := e.store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	aid := agent.ActorID(a.ID)
	prefix := append(aid.KVPrefix(), agent.AgentRunsPrefix()...)
	end := append(aid.KVPrefix(), agent.AgentRunsPrefix().End()...)
	if err := tx.DeleteRange(prefix, end); err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Get(ctx, aid.StateKey())
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	delete(st["agent"], "runs_ordered")
	raw, _ = json.Marshal(st)
	if err := tx.Set(aid.StateKey(), raw); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := e.svc.ListRuns(ctx, service.RunQuery{AgentIDs: []string{a.ID}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Runs {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("legacy agent lists %v, want %v", got, want)
	}
	ag, err := e.svc.GetAgent(ctx, a.ID)
	if err != nil || !ag.RunsOrdered {
		t.Fatalf("after the first list: runs_ordered %v (%v)", ag != nil && ag.RunsOrdered, err)
	}
}
