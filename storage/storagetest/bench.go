package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/storage"
)

// Full-text benchmark corpus: documents of textBenchWords words each,
// drawn with a Zipf distribution from a vocabulary of textBenchVocab
// words, textBenchPerScope of them under each key prefix (think: one
// agent's passages), which is also their scope. BenchmarkTextSearch
// loads textBenchDocs documents (textBenchDocs/textBenchPerScope scopes),
// then grows the corpus to textBenchDocsMore with new scopes.
const (
	textBenchDocs     = 10_000
	textBenchDocsMore = 50_000
	textBenchPerScope = 100
	textBenchWords    = 50
	textBenchVocab    = 20_000
	textBenchPerTxn   = 1000
	textBenchLimit    = 10
)

// benchWord is the vocabulary's i-th word: letters only, so no engine
// stems two of them together or drops one as a number.
func benchWord(i uint64) string {
	var b strings.Builder
	b.WriteString("w")
	for {
		b.WriteByte(byte('a' + i%26))
		i /= 26
		if i == 0 {
			return b.String() + "x"
		}
	}
}

// benchText returns a document of n words drawn from z.
func benchText(z *rand.Zipf, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(benchWord(z.Uint64()))
	}
	return b.String()
}

// benchKey is document doc's key; its scope is the key's first
// benchScopeLen bytes, "bench/NNN/".
func benchKey(doc int) []byte {
	const scopes = textBenchDocs / textBenchPerScope
	scope := doc % scopes // the first textBenchDocs documents: round robin
	if doc >= textBenchDocs {
		scope = scopes + (doc-textBenchDocs)/textBenchPerScope
	}
	return fmt.Appendf(nil, "bench/%03d/%06d", scope, doc)
}

const benchScopeLen = len("bench/000/")

// BenchmarkTextSearch loads the benchmark corpus into s, whose backend
// must implement storage.TextSearcher, and measures two-term searches with
// limit 10 at two corpus sizes, 10k documents in 100 scopes and 50k in
// 500: over the whole corpus ("all"), within one key prefix of 100
// documents by key range ("prefix"), by scope ("scope"), and by scope and
// half its key range ("scope+range"). The prefix searched is the same 100
// documents at both sizes, so "prefix" and "scope" show how a search
// confined to them grows with the rest of the corpus. It reports the hits
// the unlimited search would return (at most storage.TextHitsMax), as
// matches/op.
//
// If s has a method Settle(context.Context) error, it is called after each
// load, before measuring: e.g. a PostgreSQL test store gathers planner
// statistics, as autovacuum does soon after a bulk load in production.
func BenchmarkTextSearch(b *testing.B, s storage.Store) {
	ctx := context.Background()
	ts, ok := s.(storage.TextSearcher)
	if !ok {
		b.Fatalf("%T does not implement storage.TextSearcher", s)
	}
	r := rand.New(rand.NewPCG(5, 6))
	z := rand.NewZipf(r, 1.1, 1, textBenchVocab-1)
	load := func(from, to int) {
		for start := from; start < to; start += textBenchPerTxn {
			tx, err := s.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for d := start; d < min(start+textBenchPerTxn, to); d++ {
				if err := tx.SetWithTextScoped(benchKey(d), []byte("v"), benchScopeLen, benchText(z, textBenchWords)); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	// A common word (rank 20, in about a fifth of the documents) and a
	// rarer one (rank 300, in about one in seventy).
	terms := []string{benchWord(20), benchWord(300)}
	prefix := []byte("bench/042/")
	half := []byte("bench/042/005000") // about half the prefix's keys
	loaded := 0
	for _, size := range []struct {
		name string
		docs int
	}{{"10k", textBenchDocs}, {"50k", textBenchDocsMore}} {
		load(loaded, size.docs)
		loaded = size.docs
		if st, ok := s.(interface{ Settle(context.Context) error }); ok {
			if err := st.Settle(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range []struct {
			name              string
			scope, start, end []byte
		}{
			{"all", nil, nil, nil},
			{"prefix", nil, prefix, storage.PrefixEnd(prefix)},
			{"scope", prefix, nil, nil},
			{"scope+range", prefix, half, storage.PrefixEnd(prefix)},
		} {
			b.Run(size.name+"/"+c.name, func(b *testing.B) {
				opts := storage.TextSearchOptions{Scope: c.scope, Start: c.start, End: c.end, Terms: terms, Limit: storage.TextHitsMax}
				all, err := ts.SearchText(ctx, opts)
				if err != nil {
					b.Fatal(err)
				}
				opts.Limit = textBenchLimit
				b.ReportAllocs()
				for b.Loop() {
					hits, err := ts.SearchText(ctx, opts)
					if err != nil {
						b.Fatal(err)
					}
					if len(hits) != min(len(all), textBenchLimit) {
						b.Fatalf("%d hits, want %d", len(hits), min(len(all), textBenchLimit))
					}
				}
				b.ReportMetric(float64(len(all)), "matches/op")
			})
		}
	}
}

// BenchmarkCommitText measures one-key commits to s with a 100-byte value:
// a plain Set ("plain"), and a SetWithText of a 50-word document ("text").
func BenchmarkCommitText(b *testing.B, s storage.Store) {
	ctx := context.Background()
	value := []byte(strings.Repeat("v", 100))
	z := rand.NewZipf(rand.New(rand.NewPCG(7, 8)), 1.1, 1, textBenchVocab-1)
	texts := make([]string, 1024)
	for i := range texts {
		texts[i] = benchText(z, textBenchWords)
	}
	for _, withText := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "text"}[withText]
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				tx, err := s.Begin(ctx)
				if err != nil {
					b.Fatal(err)
				}
				key := fmt.Appendf(nil, "commit/%s/%09d", name, i)
				if withText {
					err = tx.SetWithText(key, value, texts[i%len(texts)])
				} else {
					err = tx.Set(key, value)
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
