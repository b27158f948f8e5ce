package service_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

// TestSearchAllPassages searches across agents: the SQLite store answers
// from its FTS5 index, the memory store by ranking every passage in Go.
func TestSearchAllPassages(t *testing.T) {
	sq, err := sqlite.Open(filepath.Join(t.TempDir(), "passages.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	for name, store := range map[string]storage.Store{"memory": memory.New(), "sqlite": sq} {
		t.Run(name, func(t *testing.T) { testSearchAllPassages(t, store) })
	}
}

func testSearchAllPassages(t *testing.T, store storage.Store) {
	e := newEnv(t, store, nil)
	ada, bob, gone := e.create(t, "ada"), e.create(t, "bob"), e.create(t, "gone")
	insert := func(agentID, text string, tags ...string) string {
		t.Helper()
		p, err := e.svc.InsertPassage(ctx, agentID, agent.InsertPassageRequest{Text: text, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct creation times for the recency order
		return p.ID
	}
	adaCat := insert(ada.ID, "Ada's cat Pixel sleeps on the keyboard; the cat is grey, a cat of habit", "pets")
	insert(ada.ID, "Ada works on compilers", "work")
	bobCat := insert(bob.ID, "Bob once met a cat", "pets")
	bobTea := insert(bob.ID, "Bob drinks green tea", "food")
	insert(gone.ID, "a cat that belongs to an agent about to be deleted")
	if err := e.svc.DeleteAgent(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}

	res, err := e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "cat"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != textRanking(store) {
		t.Fatalf("ranking %q, want %q", res.Ranking, textRanking(store))
	}
	// Two "cat"s in a passage of similar length outrank one; the deleted
	// agent's passage is gone with it.
	if len(res.Results) != 2 || res.Results[0].Passage.ID != adaCat || res.Results[1].Passage.ID != bobCat {
		t.Fatalf("results %+v", res.Results)
	}
	if res.Results[0].AgentID != ada.ID || res.Results[1].AgentID != bob.ID || res.Results[0].Score <= res.Results[1].Score {
		t.Fatalf("agents/scores %+v", res.Results)
	}

	// Filters apply across agents; TopK bounds the results.
	res, _ = e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "cat tea", Tags: []string{"food"}})
	if len(res.Results) != 1 || res.Results[0].Passage.ID != bobTea {
		t.Fatalf("tagged results %+v", res.Results)
	}
	res, _ = e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "cat tea Bob", TopK: 1})
	if len(res.Results) != 1 {
		t.Fatalf("top 1: %+v", res.Results)
	}

	// With an agent, only its passages; results still name it.
	res, err = e.svc.SearchAllPassages(ctx, bob.ID, agent.SearchRequest{Query: "cat"})
	if err != nil || len(res.Results) != 1 || res.Results[0].Passage.ID != bobCat || res.Results[0].AgentID != bob.ID {
		t.Fatalf("bob's search %+v, %v", res, err)
	}

	// A query of stopwords only lists the newest passages.
	res, _ = e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "the of", TopK: 2})
	if res.Ranking != agent.RankingRecency || len(res.Results) != 2 || res.Results[0].Passage.ID != bobTea {
		t.Fatalf("recency %+v", res)
	}
}

// TestSearchAllPassagesByEmbedding: with a default embedding model, a
// search across agents ranks the passages that model embedded by cosine
// similarity; an agent with another model's vectors is not compared.
func TestSearchAllPassagesByEmbedding(t *testing.T) {
	e, emb := newEmbedEnv(t, nil, nil, service.WithDefaultEmbedding(conceptModel))
	a, b := e.create(t, "a"), e.create(t, "b")
	plain, err := e.svc.CreateAgent(ctx, agent.CreateRequest{Name: "plain", Embedding: "fake/other-model"})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(agentID, text string) string {
		t.Helper()
		p, err := e.svc.InsertPassage(ctx, agentID, agent.InsertPassageRequest{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	cat := insert(a.ID, catPassages[0])
	dog := insert(b.ID, catPassages[1])
	insert(b.ID, catPassages[2])
	insert(plain.ID, "a kitten")
	calls := len(emb.callLog())

	res, err := e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "feline", TopK: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ranking != agent.RankingCosine || len(res.Results) != 2 || res.Results[0].Passage.ID != cat || res.Results[0].AgentID != a.ID {
		t.Fatalf("feline across agents = %+v", res)
	}
	for _, r := range res.Results {
		if r.AgentID == plain.ID {
			t.Fatalf("a passage of another embedding model was ranked: %+v", r)
		}
	}
	res, _ = e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "puppy", TopK: 1})
	if len(res.Results) != 1 || res.Results[0].Passage.ID != dog {
		t.Fatalf("puppy across agents = %+v", res)
	}
	if got := len(emb.callLog()) - calls; got != 2 {
		t.Fatalf("%d embedding calls for two searches", got)
	}

	emb.setFail(errors.New("embedder down"))
	if _, err := e.svc.SearchAllPassages(ctx, "", agent.SearchRequest{Query: "feline"}); err == nil {
		t.Fatal("search with a failing embedder succeeded")
	}
}
