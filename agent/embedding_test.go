package agent

import (
	"errors"
	"strings"
	"testing"
)

func TestEmbeddingModelContract(t *testing.T) {
	h := newHarness(t)
	const model = "openai/text-embedding-3-small"
	e := model
	var ag Agent
	h.must(OpUpdate.Name, UpdateRequest{Embedding: &e}, &ag)
	if ag.Embedding != model {
		t.Fatalf("embedding = %q", ag.Embedding)
	}

	// Requests embedded with another model, or with none, are refused with
	// the agent's model named, and change nothing.
	var mismatch *EmbeddingModelError
	err := h.call(OpArchivalInsert.Name, InsertPassageRequest{Text: "x"}, nil)
	if !errors.As(err, &mismatch) || mismatch.Want != model || mismatch.Got != "" || !errors.Is(err, ErrEmbeddingModel) {
		t.Fatalf("insert without a vector = %v", err)
	}
	err = h.call(OpArchivalInsert.Name, InsertPassageRequest{Text: "x", Embedding: []float32{1}, EmbeddingModel: "openai/other"}, nil)
	if !errors.As(err, &mismatch) || mismatch.Got != "openai/other" {
		t.Fatalf("insert by another model = %v", err)
	}
	if err := h.call(OpArchivalInsert.Name, InsertPassageRequest{Text: "x", EmbeddingModel: model}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("insert naming the model without a vector = %v", err)
	}
	if err := h.call(OpArchivalSearch.Name, SearchRequest{Query: "x"}, nil); !errors.As(err, &mismatch) {
		t.Fatalf("search without the model = %v", err)
	}
	if h.count() != 0 {
		t.Fatal("a refused insert stored a passage")
	}

	var p Passage
	h.must(OpArchivalInsert.Name, InsertPassageRequest{Text: "a cat", Embedding: []float32{1, 0, 0}, EmbeddingModel: model}, &p)
	h.must(OpArchivalInsert.Name, InsertPassageRequest{Text: "a dog", Embedding: []float32{0, 1, 0}, EmbeddingModel: model}, nil)
	if p.EmbeddingModel != model || len(p.Embedding) != 3 {
		t.Fatalf("passage = %+v", p)
	}
	h.must(OpGet.Name, nil, &ag)
	if ag.EmbeddingDim != 3 {
		t.Fatalf("embedding_dim = %d", ag.EmbeddingDim)
	}
	var res SearchResponse
	h.must(OpArchivalSearch.Name, SearchRequest{Query: "feline", QueryEmbedding: []float32{0.9, 0.1, 0}, EmbeddingModel: model}, &res)
	if res.Ranking != RankingCosine || len(res.Results) != 2 || res.Results[0].Passage.ID != p.ID {
		t.Fatalf("cosine search = %+v", res)
	}

	// After a change of model, the old vectors are not compared with the
	// new model's queries: the search falls back to full-text ranking.
	e = "openai/text-embedding-3-large"
	ag = Agent{}
	h.must(OpUpdate.Name, UpdateRequest{Embedding: &e}, &ag)
	if ag.EmbeddingDim != 0 {
		t.Fatalf("embedding_dim kept across a model change: %d", ag.EmbeddingDim)
	}
	h.must(OpArchivalSearch.Name, SearchRequest{Query: "cat", QueryEmbedding: []float32{1, 0, 0}, EmbeddingModel: e}, &res)
	if res.Ranking == RankingCosine || len(res.Results) != 1 {
		t.Fatalf("search with the new model = %+v", res)
	}

	long := strings.Repeat("m", EmbeddingHandleBytesMax+1)
	if err := h.call(OpUpdate.Name, UpdateRequest{Embedding: &long}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("over-long handle: %v", err)
	}
}

func TestToolEmbeddingText(t *testing.T) {
	for _, tc := range []struct {
		name, args, want string
		ok               bool
	}{
		{ToolArchivalMemoryInsert, `{"content": "Ada likes cats"}`, "Ada likes cats", true},
		{ToolArchivalMemoryInsert, `{"content": ""}`, "", false},
		{ToolArchivalMemoryInsert, `{"content": 3}`, "", false},
		{ToolArchivalMemoryInsert, `{"content": "` + strings.Repeat("x", PassageBytesMax+1) + `"}`, "", false},
		{ToolArchivalMemorySearch, `{"query": "cats"}`, "cats", true},
		{ToolArchivalMemorySearch, `{"query": "  "}`, "", false},
		{ToolArchivalMemorySearch, `not json`, "", false},
		{ToolConversationSearch, `{"query": "cats"}`, "", false},
	} {
		got, ok := ToolEmbeddingText(tc.name, tc.args)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ToolEmbeddingText(%s, %.40s) = %q, %v", tc.name, tc.args, got, ok)
		}
	}
}

func TestToolEmbeddingsBounds(t *testing.T) {
	long := errors.New(strings.Repeat("é", toolEmbeddingErrorBytesMax))
	te := NewToolEmbeddingError(long)
	if len(te.Error) > toolEmbeddingErrorBytesMax || !strings.HasSuffix(te.Error, "…") {
		t.Fatalf("error of %d bytes", len(te.Error))
	}
	ok := &ToolEmbeddings{Model: "m", Calls: map[string]ToolEmbedding{"a": te, "b": {Vector: []float32{1}}}}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []*ToolEmbeddings{
		{Calls: map[string]ToolEmbedding{"a": {Error: strings.Repeat("x", toolEmbeddingErrorBytesMax+1)}}},
		{Calls: map[string]ToolEmbedding{"a": {Vector: make([]float32, EmbeddingDimsMax+1)}}},
	} {
		if err := bad.check(); !errors.Is(err, ErrInvalid) {
			t.Errorf("check = %v", err)
		}
	}
}
