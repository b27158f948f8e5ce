package agent

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// corpus builds passages created one minute apart, in order.
func corpus(texts ...string) []Passage {
	out := make([]Passage, len(texts))
	for i, s := range texts {
		out[i] = Passage{ID: fmt.Sprintf("passage-%02d", i), Text: s, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
	}
	return out
}

func search(t *testing.T, ps []Passage, req SearchRequest) ([]string, string) {
	t.Helper()
	resp, err := SearchPassages(ps, req)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, r := range resp.Results {
		ids = append(ids, r.Passage.ID)
		if i > 0 && r.Score > resp.Results[i-1].Score {
			t.Fatalf("results not sorted by score: %+v", resp.Results)
		}
	}
	return ids, resp.Ranking
}

func wantIDs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTokenize(t *testing.T) {
	got := Tokenize("The Cats' cities ARE running, class of 2024 — naïve Über-fast!")
	want := []string{"cat", "city", "running", "class", "2024", "naïve", "über", "fast"}
	if !slices.Equal(got, want) {
		t.Fatalf("Tokenize = %q, want %q", got, want)
	}
	if got := Tokenize("the of and, is it?"); got != nil {
		t.Fatalf("stopwords only: %q", got)
	}
	// Plural stemming matches singular queries against plural text.
	if !slices.Equal(Tokenize("dogs"), Tokenize("dog")) || !slices.Equal(Tokenize("berries"), Tokenize("berry")) {
		t.Fatal("plural stemming")
	}
}

func TestBM25RanksRelevantFirst(t *testing.T) {
	ps := corpus(
		"The user enjoys hiking in the mountains on weekends.",
		"The user's favourite food is sushi, especially salmon nigiri.",
		"The user has a dog named Rex; Rex the dog loves long walks and the dog park.",
		"Meeting notes: the quarterly budget review is on Tuesday.",
		"The user mentioned a cat once.",
	)
	ids, ranking := search(t, ps, SearchRequest{Query: "what is my dog called?"})
	if ranking != RankingBM25 {
		t.Fatalf("ranking %q", ranking)
	}
	wantIDs(t, ids, "passage-02") // only the passage with a query term
	ids, _ = search(t, ps, SearchRequest{Query: "sushi or hiking"})
	if len(ids) != 2 || !slices.Contains(ids, "passage-01") || !slices.Contains(ids, "passage-00") {
		t.Fatalf("two-term query = %v", ids)
	}
}

func TestBM25TermFrequencyAndRarity(t *testing.T) {
	ps := corpus(
		"apple banana",        // 00: common term once
		"apple apple banana",  // 01: common term twice
		"apple cherry banana", // 02: rare term once
		"banana",
		"banana",
	)
	// "cherry" is rarer than "apple", so one cherry beats two apples.
	ids, _ := search(t, ps, SearchRequest{Query: "apple cherry"})
	wantIDs(t, ids, "passage-02", "passage-01", "passage-00")

	// Length normalisation: the shorter passage with the same one match wins.
	ps = corpus("sushi", "sushi and a great many other unrelated words about lunch today")
	ids, _ = search(t, ps, SearchRequest{Query: "sushi"})
	wantIDs(t, ids, "passage-00", "passage-01")
}

func TestBM25Score(t *testing.T) {
	// Hand-computed: N=2, df(x)=1, idf=ln(1+(2-1+0.5)/(1+0.5))=ln 2;
	// lengths 1 and 3, avg 2; doc 0: tf=1, len=1.
	ps := corpus("x", "y y y")
	resp, err := SearchPassages(ps, SearchRequest{Query: "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := math.Log(2) * 1 * (1.2 + 1) / (1 + 1.2*(1-0.75+0.75*1.0/2))
	if len(resp.Results) != 1 || math.Abs(resp.Results[0].Score-want) > 1e-12 {
		t.Fatalf("score = %+v, want %v", resp.Results, want)
	}
}

func TestRecencyBreaksTies(t *testing.T) {
	ps := corpus("the deploy key rotates monthly", "unrelated", "the deploy key rotates monthly", "the deploy key rotates monthly")
	ids, _ := search(t, ps, SearchRequest{Query: "deploy key"})
	wantIDs(t, ids, "passage-03", "passage-02", "passage-00")
	// Feed order does not matter.
	slices.Reverse(ps)
	ids, _ = search(t, ps, SearchRequest{Query: "deploy key"})
	wantIDs(t, ids, "passage-03", "passage-02", "passage-00")
}

func TestTopK(t *testing.T) {
	var texts []string
	for range 30 {
		texts = append(texts, "coffee")
	}
	ps := corpus(texts...)
	ids, _ := search(t, ps, SearchRequest{Query: "coffee"})
	if len(ids) != DefaultSearchTopK || ids[0] != "passage-29" {
		t.Fatalf("default top_k: %v", ids)
	}
	ids, _ = search(t, ps, SearchRequest{Query: "coffee", TopK: 3})
	wantIDs(t, ids, "passage-29", "passage-28", "passage-27")
}

func TestTagFilters(t *testing.T) {
	ps := corpus("tea notes", "tea notes", "tea notes", "tea notes")
	ps[0].Tags = []string{"work"}
	ps[1].Tags = []string{"work", "urgent"}
	ps[2].Tags = []string{"urgent"}
	ids, _ := search(t, ps, SearchRequest{Query: "tea", Tags: []string{"work", "urgent"}})
	wantIDs(t, ids, "passage-02", "passage-01", "passage-00")
	ids, _ = search(t, ps, SearchRequest{Query: "tea", Tags: []string{"work", "urgent"}, TagMatchMode: TagMatchAll})
	wantIDs(t, ids, "passage-01")
	ids, _ = search(t, ps, SearchRequest{Query: "tea", Tags: []string{"home"}})
	wantIDs(t, ids)
}

func TestFiltersDoNotChangeCorpusStatistics(t *testing.T) {
	ps := corpus("rare word", "common", "common", "common")
	ps[0].Tags = []string{"a"}
	all, _ := SearchPassages(ps, SearchRequest{Query: "rare"})
	tagged, _ := SearchPassages(ps, SearchRequest{Query: "rare", Tags: []string{"a"}})
	if all.Results[0].Score != tagged.Results[0].Score {
		t.Fatalf("score changed by a filter: %v vs %v", all.Results[0].Score, tagged.Results[0].Score)
	}
}

func TestDateFilters(t *testing.T) {
	ps := corpus("log entry", "log entry", "log entry", "log entry") // t0, +1m, +2m, +3m
	at := func(m int) *time.Time { v := t0.Add(time.Duration(m) * time.Minute); return &v }
	ids, _ := search(t, ps, SearchRequest{Query: "log", StartDatetime: at(1)})
	wantIDs(t, ids, "passage-03", "passage-02", "passage-01") // start is inclusive
	ids, _ = search(t, ps, SearchRequest{Query: "log", EndDatetime: at(1)})
	wantIDs(t, ids, "passage-01", "passage-00") // end is inclusive
	ids, _ = search(t, ps, SearchRequest{Query: "log", StartDatetime: at(1), EndDatetime: at(2)})
	wantIDs(t, ids, "passage-02", "passage-01")
}

func TestRecencyWithoutTerms(t *testing.T) {
	ps := corpus("alpha", "beta", "gamma")
	ids, ranking := search(t, ps, SearchRequest{Query: "the"})
	if ranking != RankingRecency {
		t.Fatalf("ranking %q", ranking)
	}
	wantIDs(t, ids, "passage-02", "passage-01", "passage-00")
}

func TestCosineRanking(t *testing.T) {
	ps := corpus("north", "east", "north-east", "no embedding", "wrong dimension")
	ps[0].Embedding = []float32{1, 0}
	ps[1].Embedding = []float32{0, 1}
	ps[2].Embedding = []float32{1, 1}
	ps[4].Embedding = []float32{1, 0, 0}
	ids, ranking := search(t, ps, SearchRequest{Query: "anything", QueryEmbedding: []float32{0.9, 0.1}})
	if ranking != RankingCosine {
		t.Fatalf("ranking %q", ranking)
	}
	wantIDs(t, ids, "passage-00", "passage-02", "passage-01")
	resp, _ := SearchPassages(ps, SearchRequest{QueryEmbedding: []float32{2, 0}})
	if s := resp.Results[0].Score; math.Abs(s-1) > 1e-9 {
		t.Fatalf("cosine of parallel vectors = %v", s)
	}
	// Filters apply; with no comparable embedding left, BM25 takes over.
	ids, ranking = search(t, ps, SearchRequest{Query: "embedding", QueryEmbedding: []float32{1, 0}, EndDatetime: ptrTime(t0.Add(30 * time.Second))})
	if ranking != RankingCosine {
		t.Fatalf("ranking %q", ranking)
	}
	wantIDs(t, ids, "passage-00")
	ids, ranking = search(t, ps, SearchRequest{Query: "embedding", QueryEmbedding: []float32{1, 0, 0, 0}})
	if ranking != RankingBM25 {
		t.Fatalf("dimension mismatch: ranking %q", ranking)
	}
	wantIDs(t, ids, "passage-03")
}

func ptrTime(t time.Time) *time.Time { return &t }

func TestSearchValidation(t *testing.T) {
	for _, req := range []SearchRequest{
		{Query: "x", TagMatchMode: "some"},
		{Query: "x", TopK: SearchTopKMax + 1},
		{Query: "x", TopK: -1},
		{Query: strings.Repeat("q", SearchQueryBytesMax+1)},
		{Query: "x", StartDatetime: ptrTime(t0), EndDatetime: ptrTime(t0.Add(-time.Second))},
		{Query: "x", QueryEmbedding: []float32{float32(math.NaN())}},
		{Query: "x", Tags: []string{""}},
	} {
		if _, err := SearchPassages(nil, req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", req, err)
		}
	}
}

func TestSearchManyTermsIsBounded(t *testing.T) {
	var words []string
	for i := range 200 {
		words = append(words, fmt.Sprintf("w%d", i))
	}
	ps := corpus(strings.Join(words, " "))
	s := newSearcher(&SearchRequest{Query: strings.Join(words, " "), TopK: 1})
	if len(s.terms) != searchTermsMax {
		t.Fatalf("%d terms kept, want %d", len(s.terms), searchTermsMax)
	}
	s.add(&ps[0])
	if top, _ := s.rank(); len(top) != 1 {
		t.Fatal("no result")
	}
}
