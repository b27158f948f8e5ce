package service_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

func passageIDs(ps []agent.Passage) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestArchivalMemory(t *testing.T) {
	sq, err := sqlite.Open(filepath.Join(t.TempDir(), "archival.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	for name, store := range map[string]storage.Store{"memory": memory.New(), "sqlite": sq} {
		t.Run(name, func(t *testing.T) { testArchivalMemory(t, store) })
	}
}

func testArchivalMemory(t *testing.T, store storage.Store) {
	e := newEnv(t, store, nil)
	ag := e.create(t, "archivist")
	texts := []string{
		"Ada's cat is called Pixel",
		"Ada works on compilers at a robotics company",
		"Ada prefers green tea over coffee",
		"The project deadline is the end of March",
	}
	var ids []string
	for i, text := range texts {
		p, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: text, Tags: []string{[]string{"pets", "work", "food", "work"}[i]}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Text != text || p.CreatedAt.IsZero() {
			t.Fatalf("inserted %+v", p)
		}
		ids = append(ids, p.ID)
		time.Sleep(time.Millisecond)
	}

	// Everything survives deactivation: passages, index and count.
	e.reload(t, ag.ID)
	got, err := e.svc.GetAgent(ctx, ag.ID)
	if err != nil || got.PassageCount != 4 {
		t.Fatalf("agent after reload: %+v, %v", got, err)
	}
	list, err := e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	wantSame(t, passageIDs(list), ids)
	list, _ = e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 2, Descending: true, After: ids[3]})
	wantSame(t, passageIDs(list), []string{ids[2], ids[1]})
	list, _ = e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10, Search: "ADA"})
	wantSame(t, passageIDs(list), ids[:3])

	res, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "what is the name of Ada's cat?"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != textRanking(store) || len(res.Results) == 0 || res.Results[0].Passage.ID != ids[0] {
		t.Fatalf("search = %+v", res)
	}
	res, _ = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "deadline compilers", Tags: []string{"work"}})
	if len(res.Results) != 2 {
		t.Fatalf("tagged search = %+v", res)
	}

	if err := e.svc.DeletePassage(ctx, ag.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	e.reload(t, ag.ID)
	if err := e.svc.DeletePassage(ctx, ag.ID, ids[0]); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	res, _ = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "cat Pixel"})
	if len(res.Results) != 0 {
		t.Fatalf("deleted passage still found: %+v", res)
	}
	list, _ = e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 10})
	wantSame(t, passageIDs(list), ids[1:])
	if got, _ := e.svc.GetAgent(ctx, ag.ID); got.PassageCount != 3 {
		t.Fatalf("PassageCount = %d", got.PassageCount)
	}

	// Deleting the agent takes its passages with it.
	if err := e.svc.DeleteAgent(ctx, ag.ID); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		func() error {
			_, err := e.svc.ListPassages(ctx, ag.ID, agent.ListPassagesRequest{Limit: 1})
			return err
		}(),
		func() error { _, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "x"}); return err }(),
		func() error {
			_, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "x"})
			return err
		}(),
		e.svc.DeletePassage(ctx, ag.ID, ids[1]),
	} {
		if !errors.Is(err, agent.ErrNotFound) {
			t.Fatalf("after agent delete: %v", err)
		}
	}
	tx, err := store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	space := agent.ActorID(ag.ID).KVPrefix()
	left, err := tx.Scan(ctx, storage.ScanOptions{Start: space, End: space.End(), Limit: 10})
	if err != nil || len(left) != 0 {
		t.Fatalf("agent's KV space after delete: %d keys, %v", len(left), err)
	}
}

// textRanking is the ranking a text query gets on store: its full-text
// engine's, or Kelpie's own BM25.
func textRanking(store storage.Store) string {
	if ts, ok := store.(storage.TextSearcher); ok {
		return ts.TextRanking()
	}
	return agent.RankingBM25
}

func wantSame(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestArchivalCosineThroughService(t *testing.T) {
	e := newEnv(t, nil, nil)
	ag := e.create(t, "vectors")
	for _, v := range [][]float32{{1, 0}, {0, 1}} {
		if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "v", Embedding: v}); err != nil {
			t.Fatal(err)
		}
	}
	e.reload(t, ag.ID)
	res, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "v", QueryEmbedding: []float32{0.1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != agent.RankingCosine || len(res.Results) != 2 || res.Results[0].Passage.Embedding[1] != 1 {
		t.Fatalf("cosine search = %+v", res)
	}
}

// TestArchivalSearchOfUnindexedAgent: an agent stored before passages
// were indexed for full text (no documents, PassagesIndexed unset) is
// still searched, by Kelpie's own ranking, until its archive is empty and
// refilled.
func TestArchivalSearchOfUnindexedAgent(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "legacy.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store, nil)
	ag := e.create(t, "legacy")
	p, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "the lighthouse keeper's cat"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "lighthouse"})
	if err != nil || res.Ranking != textRanking(store) || len(res.Results) != 1 {
		t.Fatalf("indexed search: %+v, %v", res, err)
	}

	// Make it look like an agent of an earlier Kelpie: the passage
	// rewritten without its document, the flag cleared.
	e.reload(t, ag.ID)
	tx, err := store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pk := append(agent.ActorID(ag.ID).KVPrefix(), agent.PassageKey(p.ID)...)
	v, err := tx.Get(ctx, pk)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := tx.Get(ctx, agent.ActorID(ag.ID).StateKey())
	if err != nil {
		t.Fatal(err)
	}
	legacy := strings.Replace(string(sv), `,"passages_indexed":true`, "", 1)
	if legacy == string(sv) {
		t.Fatalf("state has no passages_indexed flag: %s", sv)
	}
	if err := tx.Set(pk, v); err != nil {
		t.Fatal(err)
	}
	if err := tx.Set(agent.ActorID(ag.ID).StateKey(), []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	res, err = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "lighthouse"})
	if err != nil || res.Ranking != agent.RankingBM25 || len(res.Results) != 1 || res.Results[0].Passage.ID != p.ID {
		t.Fatalf("search of the unindexed agent: %+v, %v", res, err)
	}
	// Emptied and refilled, its archive is indexed again.
	if err := e.svc.DeletePassage(ctx, ag.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.InsertPassage(ctx, ag.ID, agent.InsertPassageRequest{Text: "a new lighthouse"}); err != nil {
		t.Fatal(err)
	}
	res, err = e.svc.SearchPassages(ctx, ag.ID, agent.SearchRequest{Query: "lighthouse"})
	if err != nil || res.Ranking != textRanking(store) || len(res.Results) != 1 {
		t.Fatalf("search after refilling: %+v, %v", res, err)
	}
}
