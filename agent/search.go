package agent

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/storage"
)

// Archival search: pure functions, no storage. A searcher is fed every
// passage of an agent once (in any order) and then ranks the ones that pass
// the filters. (A text query on a store with a full-text engine does not
// come here: the engine's index ranks it; see searchIndexed.)
//
//   - BM25 (k1 = 1.2, b = 0.75, Lucene's always-positive IDF) over the
//     tokens of Tokenize. Corpus statistics (the passage count, document
//     frequencies, the mean length) are taken over every passage fed,
//     filtered or not: the filters select from the corpus, they do not
//     change how rare a word is in it. Only passages containing at least
//     one query term are results.
//   - Cosine similarity, when the request carries a query embedding and at
//     least one passage that passes the filters has an embedding of the same
//     dimension by the same model. Passages without a comparable embedding are then not
//     results (they cannot be scored on the same scale).
//   - Recency, when the query has no searchable term (empty, or only
//     stopwords) and no embedding: the newest passages that pass the
//     filters.
//
// Equal scores are broken by recency (newer first), then by ID, so the
// order is total and deterministic.
//
// Memory: the searcher keeps, per candidate, its ID, creation time, length
// and the counts of the (at most searchTermsMax) query terms — never the
// text — so ranking PassagesMax passages of PassageBytesMax each stays small.
// The caller fetches the top passages by ID afterwards.

// Rankings a search reports.
const (
	RankingBM25    = "bm25"
	RankingCosine  = "embedding-cosine"
	RankingRecency = "recency"
)

// Tag match modes (Letta's).
const (
	TagMatchAny = "any"
	TagMatchAll = "all"
)

// BM25 parameters.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// Search limits.
const (
	// DefaultSearchTopK is the number of results when the request does not say.
	DefaultSearchTopK = 10
	// SearchTopKMax bounds top_k.
	SearchTopKMax = 100
	// SearchQueryBytesMax bounds the query text.
	SearchQueryBytesMax = 16 << 10
	// EmbeddingDimsMax bounds the dimension of a passage or query embedding.
	EmbeddingDimsMax = 8192
	// searchTermsMax bounds the distinct query terms scored; later ones are
	// ignored.
	searchTermsMax = 64
)

// SearchRequest is an archival search (OpArchivalSearch).
type SearchRequest struct {
	Query string `json:"query"`
	// Tags, if any, keep only passages with any (TagMatchAny, the default)
	// or all (TagMatchAll) of them.
	Tags         []string `json:"tags,omitempty"`
	TagMatchMode string   `json:"tag_match_mode,omitempty"`
	// TopK bounds the results, 1..SearchTopKMax (0: DefaultSearchTopK).
	TopK int `json:"top_k,omitempty"`
	// StartDatetime and EndDatetime, if set, keep only passages created in
	// [StartDatetime, EndDatetime] (both inclusive).
	StartDatetime *time.Time `json:"start_datetime,omitempty"`
	EndDatetime   *time.Time `json:"end_datetime,omitempty"`
	// QueryEmbedding, if set, asks for cosine ranking against passage
	// embeddings.
	QueryEmbedding []float32 `json:"query_embedding,omitempty"`
	// EmbeddingModel is the model that computed QueryEmbedding: only
	// passages embedded by the same model are compared with it. The
	// archival search operation refuses a request whose EmbeddingModel is
	// not the agent's (EmbeddingModelError).
	EmbeddingModel string `json:"embedding_model,omitempty"`
}

// SearchResult is one ranked passage.
type SearchResult struct {
	Passage Passage `json:"passage"`
	// Score is the BM25 score, the storage engine's full-text score or the
	// cosine similarity; 0 for recency. Higher is better.
	Score float64 `json:"score"`
	// AgentID is the agent the passage belongs to (set by SearchStored).
	AgentID string `json:"agent_id,omitempty"`
}

// SearchResponse is the reply to OpArchivalSearch.
type SearchResponse struct {
	Results []SearchResult `json:"results"`
	// Ranking is RankingBM25, RankingCosine, RankingRecency, or the storage
	// engine's full-text ranking (storage.TextSearcher.TextRanking).
	Ranking string `json:"ranking"`
	// Partial is set when SearchStored stopped at StoredPassagesMax
	// passages before ranking all of them.
	Partial bool `json:"partial,omitempty"`
}

// checkSearch validates req and fills in defaults.
func checkSearch(req *SearchRequest) error {
	if err := checkText("query", req.Query, SearchQueryBytesMax); err != nil {
		return err
	}
	if err := checkTags(req.Tags); err != nil {
		return err
	}
	switch req.TagMatchMode {
	case "":
		req.TagMatchMode = TagMatchAny
	case TagMatchAny, TagMatchAll:
	default:
		return invalidf("tag_match_mode %q: must be %q or %q", req.TagMatchMode, TagMatchAny, TagMatchAll)
	}
	if req.TopK == 0 {
		req.TopK = DefaultSearchTopK
	}
	if req.TopK < 0 || req.TopK > SearchTopKMax {
		return invalidf("top_k %d outside 1..%d", req.TopK, SearchTopKMax)
	}
	if req.StartDatetime != nil && req.EndDatetime != nil && req.EndDatetime.Before(*req.StartDatetime) {
		return invalidf("end_datetime is before start_datetime")
	}
	return checkEmbedding("query_embedding", req.QueryEmbedding)
}

func checkEmbedding(field string, v []float32) error {
	if len(v) > EmbeddingDimsMax {
		return invalidf("%s has %d dimensions, over the limit of %d", field, len(v), EmbeddingDimsMax)
	}
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return invalidf("%s has a non-finite value", field)
		}
	}
	return nil
}

// stopwords are dropped by Tokenize: frequent English function words.
var stopwords = map[string]bool{}

func init() {
	for _, w := range []string{
		"a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at",
		"be", "been", "but", "by", "can", "could", "did", "do", "does", "for", "from",
		"had", "has", "have", "he", "her", "him", "his", "how", "i", "if", "in", "into",
		"is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our", "she", "so",
		"than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
		"those", "to", "too", "us", "was", "we", "were", "what", "when", "where", "which",
		"who", "why", "will", "with", "would", "you", "your",
	} {
		stopwords[w] = true
	}
}

// Tokenize splits s into search terms: lowercased runs of letters and
// digits, without stopwords, with a plural "s" (and "ies") stemmed.
func Tokenize(s string) []string {
	var out []string
	forEachToken(s, nil, func(tok []byte) { out = append(out, string(tok)) })
	return out
}

// forEachToken calls fn with each term of s. The slice fn gets is reused
// between calls. buf, if given, is a scratch buffer to reuse; the (possibly
// grown) buffer is returned for the next call.
func forEachToken(s string, buf []byte, fn func([]byte)) []byte {
	tok := buf[:0]
	flush := func() {
		if len(tok) == 0 {
			return
		}
		if !stopwords[string(tok)] {
			fn(stem(tok))
		}
		tok = tok[:0]
	}
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			tok = utf8.AppendRune(tok, unicode.ToLower(r))
			continue
		}
		flush()
	}
	flush()
	return tok
}

// queryWords returns the words of query for a storage engine's full-text
// index: lowercased runs of letters and digits, without stopwords, not
// stemmed (the engine stems), distinct, in order, at most
// storage.TextTermsMax of them; words over storage.TextTermBytesMax bytes
// are dropped.
func queryWords(query string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(query, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		w = strings.ToLower(w)
		if stopwords[w] || len(w) > storage.TextTermBytesMax || slices.Contains(out, w) {
			continue
		}
		if out = append(out, w); len(out) == storage.TextTermsMax {
			break
		}
	}
	return out
}

// stem removes a plural ending: "cats" → "cat", "cities" → "city"; words
// ending in "ss", "us" or "is", and short words, are kept.
func stem(t []byte) []byte {
	n := len(t)
	if n <= 3 || t[n-1] != 's' {
		return t
	}
	switch t[n-2] {
	case 's', 'u', 'i':
		return t
	case 'e':
		if n > 4 && t[n-3] == 'i' {
			return append(t[:n-3], 'y')
		}
	}
	return t[:n-1]
}

// candidate is a passage that passed the filters.
type candidate struct {
	id      string
	agent   string // the passage's agent, if known (SearchStored)
	created time.Time
	length  int
	tf      []int32 // per query term (BM25)
	cosine  float64
	hasVec  bool
}

// searcher ranks the passages fed to it.
type searcher struct {
	req   *SearchRequest
	terms map[string]int // query term -> index
	qnorm float64        // norm of the query embedding

	n        int   // passages fed (the corpus)
	totalLen int64 // sum of their lengths
	df       []int // per query term: passages containing it
	cands    []candidate
	vecCands int    // candidates with a comparable embedding
	agent    string // the agent of the passages being fed, if known
	buf      []byte
	tf       []int32
}

// newSearcher starts a search; req must have passed checkSearch.
func newSearcher(req *SearchRequest) *searcher {
	s := &searcher{req: req, terms: map[string]int{}}
	forEachToken(req.Query, nil, func(tok []byte) {
		if _, ok := s.terms[string(tok)]; !ok && len(s.terms) < searchTermsMax {
			s.terms[string(tok)] = len(s.terms)
		}
	})
	s.df = make([]int, len(s.terms))
	s.tf = make([]int32, len(s.terms))
	if len(req.QueryEmbedding) > 0 {
		s.qnorm = norm(req.QueryEmbedding)
	}
	return s
}

// filtered reports whether the request has tag or date filters.
func (req *SearchRequest) filtered() bool {
	return len(req.Tags) > 0 || req.StartDatetime != nil || req.EndDatetime != nil
}

// keep reports whether p passes the tag and date filters.
func (req *SearchRequest) keep(p *Passage) bool {
	if req.StartDatetime != nil && p.CreatedAt.Before(*req.StartDatetime) {
		return false
	}
	if req.EndDatetime != nil && p.CreatedAt.After(*req.EndDatetime) {
		return false
	}
	if len(req.Tags) == 0 {
		return true
	}
	hits := 0
	for _, t := range req.Tags {
		if slices.Contains(p.Tags, t) {
			hits++
		}
	}
	if req.TagMatchMode == TagMatchAll {
		return hits == len(req.Tags)
	}
	return hits > 0
}

// add feeds one passage of the corpus.
func (s *searcher) add(p *Passage) {
	clear(s.tf)
	length := 0
	s.buf = forEachToken(p.Text, s.buf, func(tok []byte) {
		length++
		if i, ok := s.terms[string(tok)]; ok {
			s.tf[i]++
		}
	})
	s.n++
	s.totalLen += int64(length)
	matched := false
	for i, f := range s.tf {
		if f > 0 {
			s.df[i]++
			matched = true
		}
	}
	if !s.req.keep(p) {
		return
	}
	c := candidate{id: p.ID, agent: s.agent, created: p.CreatedAt, length: length}
	if s.qnorm > 0 && len(p.Embedding) == len(s.req.QueryEmbedding) && p.EmbeddingModel == s.req.EmbeddingModel {
		if pn := norm(p.Embedding); pn > 0 {
			c.cosine = dot(p.Embedding, s.req.QueryEmbedding) / (pn * s.qnorm)
			c.hasVec = true
			s.vecCands++
		}
	}
	if matched {
		c.tf = slices.Clone(s.tf)
	}
	if matched || c.hasVec || len(s.terms) == 0 {
		s.cands = append(s.cands, c)
	}
}

// scored is one ranked result, before its passage is fetched.
type scored struct {
	id      string
	agent   string
	created time.Time
	score   float64
}

// rank returns the top results, best first, and the ranking used.
func (s *searcher) rank() ([]scored, string) {
	var out []scored
	ranking := RankingBM25
	switch {
	case s.vecCands > 0:
		ranking = RankingCosine
		for _, c := range s.cands {
			if c.hasVec {
				out = append(out, scored{c.id, c.agent, c.created, c.cosine})
			}
		}
	case len(s.terms) == 0:
		ranking = RankingRecency
		for _, c := range s.cands {
			out = append(out, scored{c.id, c.agent, c.created, 0})
		}
	default:
		avg := 0.0
		if s.n > 0 {
			avg = float64(s.totalLen) / float64(s.n)
		}
		idf := make([]float64, len(s.df))
		for i, df := range s.df {
			idf[i] = math.Log(1 + (float64(s.n)-float64(df)+0.5)/(float64(df)+0.5))
		}
		for _, c := range s.cands {
			if c.tf == nil {
				continue
			}
			out = append(out, scored{c.id, c.agent, c.created, bm25(c.tf, c.length, avg, idf)})
		}
	}
	slices.SortFunc(out, func(a, b scored) int {
		if a.score != b.score {
			return cmp.Compare(b.score, a.score)
		}
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(out) > s.req.TopK {
		out = out[:s.req.TopK]
	}
	return out, ranking
}

// bm25 scores one document: the sum over query terms of
// idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avg)).
func bm25(tf []int32, length int, avg float64, idf []float64) float64 {
	norm := bm25K1 * (1 - bm25B)
	if avg > 0 {
		norm += bm25K1 * bm25B * float64(length) / avg
	}
	score := 0.0
	for i, f := range tf {
		if f == 0 {
			continue
		}
		ff := float64(f)
		score += idf[i] * ff * (bm25K1 + 1) / (ff + norm)
	}
	return score
}

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func norm(v []float32) float64 { return math.Sqrt(dot(v, v)) }

// SearchPassages ranks passages in memory with the same rules as the
// archival search operation (the operation streams them from storage
// instead). req is validated and defaulted as the operation does.
func SearchPassages(passages []Passage, req SearchRequest) (*SearchResponse, error) {
	if err := checkSearch(&req); err != nil {
		return nil, err
	}
	s := newSearcher(&req)
	byID := make(map[string]*Passage, len(passages))
	for i := range passages {
		s.add(&passages[i])
		byID[passages[i].ID] = &passages[i]
	}
	top, ranking := s.rank()
	resp := &SearchResponse{Results: make([]SearchResult, 0, len(top)), Ranking: ranking}
	for _, r := range top {
		resp.Results = append(resp.Results, SearchResult{Passage: *byID[r.id], Score: r.score})
	}
	return resp, nil
}
