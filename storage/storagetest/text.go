package storagetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/storage"
)

// RunText runs the full-text suite against b, whose stores must implement
// storage.TextSearcher: every test fails, rather than skips, if they do
// not. Run calls it when b.Text is set.
//
// The suite asks only for what every full-text engine Kelpie uses agrees
// on: words are split on punctuation and matched case-insensitively,
// "running", "runs" and "run" share a stem, a term is a word (never query
// syntax), terms are OR'ed, more occurrences of a term rank a document
// higher, and identical documents tie and order by key.
func RunText(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Search", testTextSearch},
		{"Stemming", testTextStemming},
		{"TermsAreOred", testTextOr},
		{"Ranking", testTextRanking},
		{"RangeLimitAndTies", testTextRangeLimitTies},
		{"WritesDropDocuments", testTextDrops},
		{"DeleteRange", testTextDeleteRange},
		{"SameTxnOrder", testTextSameTxn},
		{"FailedCommitsIndexNothing", testTextFailedCommits},
		{"Validate", testTextValidate},
		{"SyntaxIsWords", testTextSyntax},
		{"Unicode", testTextUnicode},
		{"LargeDocument", testTextLarge},
		{"Churn", testTextChurn},
		{"Scopes", testTextScopes},
		{"ScopeMoves", testTextScopeMoves},
		{"ScopeDrops", testTextScopeDrops},
	}
	if b.Durable {
		tests = append(tests, struct {
			name string
			fn   func(t *testing.T, open Opener)
		}{"ReopenKeepsIndex", testTextReopen})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b.New(t)) })
	}
}

// textStore opens a store and fails the test if it has no full-text
// engine.
func textStore(t *testing.T, open Opener) (storage.Store, storage.TextSearcher) {
	t.Helper()
	s := openStore(t, open)
	tx := begin(t, s)
	defer tx.Rollback()
	ts, ok := storeSearcher(s)
	if !ok {
		t.Fatalf("%T does not implement storage.TextSearcher, but the full-text suite was run against it", s)
	}
	if _, _, err := tx.SearchText(context.Background(), storage.TextSearchOptions{Terms: []string{"probe"}, Limit: 1}); err != nil {
		t.Fatalf("Txn.SearchText on %T: %v", s, err)
	}
	if ts.TextRanking() == "" {
		t.Fatalf("%T: empty TextRanking", s)
	}
	return s, ts
}

// storeSearcher returns the store's full-text engine, if it has one. The
// stores under test are their own backends.
func storeSearcher(s storage.Store) (storage.TextSearcher, bool) {
	ts, ok := s.(storage.TextSearcher)
	return ts, ok
}

func mustSetText(t *testing.T, tx *storage.Txn, k, text string) {
	t.Helper()
	if err := tx.SetWithText([]byte(k), []byte("v:"+k), text); err != nil {
		t.Fatalf("set %q with text: %v", k, err)
	}
}

// mustSetScoped is mustSetText with the document in scope k[:scopeLen].
func mustSetScoped(t *testing.T, tx *storage.Txn, k string, scopeLen int, text string) {
	t.Helper()
	if err := tx.SetWithTextScoped([]byte(k), []byte("v:"+k), scopeLen, text); err != nil {
		t.Fatalf("set %q with text in scope %q: %v", k, k[:scopeLen], err)
	}
}

// scopedKeys returns the keys a search for terms in scope finds, best
// first.
func scopedKeys(t *testing.T, s storage.Store, scope string, terms ...string) []string {
	t.Helper()
	return hitKeys(search(t, s, storage.TextSearchOptions{Scope: []byte(scope), Terms: terms}))
}

// search runs a text search in a fresh transaction and returns the hits.
func search(t *testing.T, s storage.Store, opts storage.TextSearchOptions) []storage.TextHit {
	t.Helper()
	if opts.Limit == 0 {
		opts.Limit = 100
	}
	tx := begin(t, s)
	defer tx.Rollback()
	hits, ranking, err := tx.SearchText(context.Background(), opts)
	if err != nil {
		t.Fatalf("search %q in scope %q, [%q, %q): %v", opts.Terms, opts.Scope, opts.Start, opts.End, err)
	}
	if ranking == "" {
		t.Fatal("search returned an empty ranking name")
	}
	for i, h := range hits {
		if math.IsNaN(h.Score) || math.IsInf(h.Score, 0) {
			t.Fatalf("hit %q has score %v", h.Key, h.Score)
		}
		if i > 0 {
			prev := hits[i-1]
			if h.Score > prev.Score || (h.Score == prev.Score && string(h.Key) <= string(prev.Key)) {
				t.Fatalf("hits out of order: %q (%v) after %q (%v)", h.Key, h.Score, prev.Key, prev.Score)
			}
		}
	}
	return hits
}

// searchKeys returns the keys search finds for terms, best first.
func searchKeys(t *testing.T, s storage.Store, terms ...string) []string {
	t.Helper()
	return hitKeys(search(t, s, storage.TextSearchOptions{Terms: terms}))
}

func hitKeys(hits []storage.TextHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = string(h.Key)
	}
	return out
}

// sorted returns keys in ascending order, for results whose ranking the
// test does not pin down.
func sorted(keys []string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return keys
}

func wantKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

func testTextSearch(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "doc/1", "The quick brown fox jumps over the lazy dog")
		mustSetText(t, tx, "doc/2", "A zebra grazes in the savanna")
		mustSetText(t, tx, "doc/3", "")
		mustSet(t, tx, "plain", "zebra without a document")
	})
	wantKeys(t, "search zebra", searchKeys(t, s, "zebra"), []string{"doc/2"})
	wantKeys(t, "search ZEBRA (case-insensitive)", searchKeys(t, s, "ZEBRA"), []string{"doc/2"})
	wantKeys(t, "search fox", searchKeys(t, s, "fox"), []string{"doc/1"})
	wantKeys(t, "search absent word", searchKeys(t, s, "unicorn"), nil)
	// The value written with the document is an ordinary value.
	if v, ok := get(t, s, "doc/2"); !ok || v != "v:doc/2" {
		t.Fatalf("value of a key set with text = %q, %v", v, ok)
	}
}

func testTextStemming(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "running", "The dogs were running in the park")
		mustSetText(t, tx, "runs", "She runs every morning")
		mustSetText(t, tx, "other", "Nothing to see here")
	})
	for _, term := range []string{"run", "runs", "running"} {
		wantKeys(t, "search "+term, sorted(searchKeys(t, s, term)), []string{"running", "runs"})
	}
}

func testTextOr(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "a", "apple orchard")
		mustSetText(t, tx, "b", "banana plantation")
		mustSetText(t, tx, "c", "cherry blossom")
	})
	wantKeys(t, "apple OR banana OR durian", sorted(searchKeys(t, s, "apple", "banana", "durian")), []string{"a", "b"})
	wantKeys(t, "durian OR cherry", searchKeys(t, s, "durian", "cherry"), []string{"c"})
	// A document matching several terms appears once.
	wantKeys(t, "apple OR orchard", searchKeys(t, s, "apple", "orchard"), []string{"a"})
}

func testTextRanking(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		// Filler keeps "zebra" rare (some rankings discount a term found
		// in most documents).
		for i, f := range []string{"apple banana cherry date elder", "fig grape honeydew kiwi lemon",
			"mango nectarine orange papaya quince", "raspberry strawberry tangerine ugli vanilla",
			"watermelon apple grape lemon mango", "banana cherry fig kiwi orange"} {
			mustSetText(t, tx, fmt.Sprintf("filler/%d", i), f)
		}
		// Same length; "a-few" has the term once, "b-many" three times. The
		// keys sort the other way round from the expected ranking.
		mustSetText(t, tx, "a-few", "zebra apple banana cherry date")
		mustSetText(t, tx, "b-many", "zebra zebra zebra apple banana")
	})
	hits := search(t, s, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 10})
	wantKeys(t, "ranking by occurrences", hitKeys(hits), []string{"b-many", "a-few"})
	if !(hits[0].Score > hits[1].Score) {
		t.Fatalf("scores %v and %v: more occurrences must score strictly higher", hits[0].Score, hits[1].Score)
	}
}

func testTextRangeLimitTies(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	keys := []string{"a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "b/2", "c/1"}
	commit(t, s, func(tx *storage.Txn) {
		// Written out of key order; identical documents tie.
		for _, k := range slices.Backward(keys) {
			mustSetText(t, tx, k, "identical zebra document")
		}
	})
	all := search(t, s, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 100})
	wantKeys(t, "all ties in key order", hitKeys(all), keys)
	for _, h := range all[1:] {
		if h.Score != all[0].Score {
			t.Fatalf("identical documents scored %v and %v", all[0].Score, h.Score)
		}
	}
	cases := []struct {
		opts storage.TextSearchOptions
		want []string
	}{
		{storage.TextSearchOptions{Start: []byte("b/"), End: storage.PrefixEnd([]byte("b/"))}, []string{"b/1", "b/2"}},
		{storage.TextSearchOptions{Start: []byte("a/3"), End: []byte("b/2")}, []string{"a/3", "a/4", "a/5", "b/1"}},
		{storage.TextSearchOptions{Start: []byte("b/2")}, []string{"b/2", "c/1"}},
		{storage.TextSearchOptions{End: []byte("a/3")}, []string{"a/1", "a/2"}},
		{storage.TextSearchOptions{Start: []byte("d")}, nil},
		{storage.TextSearchOptions{Limit: 3}, []string{"a/1", "a/2", "a/3"}},
		{storage.TextSearchOptions{Start: []byte("a/"), End: []byte("a0"), Limit: 2}, []string{"a/1", "a/2"}},
		{storage.TextSearchOptions{Start: []byte("a/5"), Limit: 1}, []string{"a/5"}},
	}
	for _, c := range cases {
		c.opts.Terms = []string{"zebra"}
		wantKeys(t, fmt.Sprintf("search [%q, %q) limit %d", c.opts.Start, c.opts.End, c.opts.Limit),
			hitKeys(search(t, s, c.opts)), c.want)
	}
}

func testTextDrops(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) {
		for _, k := range []string{"k1", "k2", "k3", "k4"} {
			mustSetText(t, tx, k, "zebra "+k)
		}
	})
	wantKeys(t, "before", searchKeys(t, s, "zebra"), []string{"k1", "k2", "k3", "k4"})
	commit(t, s, func(tx *storage.Txn) {
		mustSet(t, tx, "k1", "plain set drops the document")
		if err := tx.Delete([]byte("k2")); err != nil {
			t.Fatal(err)
		}
		mustSetText(t, tx, "k3", "giraffe") // a new document replaces the old
		mustSet(t, tx, "never-indexed", "x")
		if err := tx.Delete([]byte("never-existed")); err != nil {
			t.Fatal(err)
		}
	})
	wantKeys(t, "zebra after set, delete and replace", searchKeys(t, s, "zebra"), []string{"k4"})
	wantKeys(t, "giraffe after replace", searchKeys(t, s, "giraffe"), []string{"k3"})
	if v, ok := get(t, s, "k1"); !ok || v != "plain set drops the document" {
		t.Fatalf("k1 = %q, %v", v, ok)
	}
	// Re-indexing a dropped key works.
	commit(t, s, func(tx *storage.Txn) { mustSetText(t, tx, "k1", "zebra again") })
	wantKeys(t, "zebra after re-indexing k1", searchKeys(t, s, "zebra"), []string{"k1", "k4"})
	// A read-modify-write that keeps the value but not the text drops it.
	tx := begin(t, s)
	v, err := tx.Get(ctx, []byte("k4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Set([]byte("k4"), v); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "zebra after re-setting k4 without text", searchKeys(t, s, "zebra"), []string{"k1"})
}

func testTextDeleteRange(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		for _, k := range []string{"a", "r/1", "r/2", "r/3", "r0", "s/1", "t/1"} {
			mustSetText(t, tx, k, "zebra")
		}
	})
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("r/"), storage.PrefixEnd([]byte("r/"))); err != nil {
			t.Fatal(err)
		}
	})
	wantKeys(t, "after deleting [r/, r0)", searchKeys(t, s, "zebra"), []string{"a", "r0", "s/1", "t/1"})
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("s"), nil); err != nil {
			t.Fatal(err)
		}
	})
	wantKeys(t, "after deleting [s, end)", searchKeys(t, s, "zebra"), []string{"a", "r0"})
}

// testTextSameTxn checks the index follows the order of one transaction's
// writes: its last write to a key wins, and range deletes apply before
// sets.
func testTextSameTxn(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "p/1", "zebra old")
		mustSetText(t, tx, "p/2", "zebra old")
	})
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("p/"), storage.PrefixEnd([]byte("p/"))); err != nil {
			t.Fatal(err)
		}
		mustSetText(t, tx, "p/2", "zebra new") // after the range delete: kept
		mustSetText(t, tx, "q", "zebra then plain")
		mustSet(t, tx, "q", "plain") // the last write has no text
		mustSet(t, tx, "r", "plain")
		mustSetText(t, tx, "r", "zebra last") // the last write has text
	})
	wantKeys(t, "after one transaction's writes", searchKeys(t, s, "zebra"), []string{"p/2", "r"})
	wantKeys(t, "old text gone", searchKeys(t, s, "old"), nil)
}

func testTextFailedCommits(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "x", "0"); mustSetText(t, tx, "kept", "walrus kept") })

	// Uncommitted documents are visible to no search, not even the
	// writing transaction's own.
	tx := begin(t, s)
	mustSetText(t, tx, "pending", "zebra pending")
	if hits, _, err := tx.SearchText(ctx, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 10}); err != nil || len(hits) != 0 {
		t.Fatalf("own uncommitted document: hits %v, err %v", hitKeys(hits), err)
	}
	wantKeys(t, "another transaction's uncommitted document", searchKeys(t, s, "zebra"), nil)
	tx.Rollback()
	wantKeys(t, "rolled-back document", searchKeys(t, s, "zebra"), nil)

	// A conflict indexes nothing and drops nothing.
	tx = begin(t, s)
	if _, err := tx.Get(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	mustSetText(t, tx, "conflicted", "zebra conflicted")
	mustSet(t, tx, "kept", "would drop the document")
	commit(t, s, func(tx *storage.Txn) { mustSet(t, tx, "x", "1") })
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after a concurrent write: err = %v, want ErrConflict", err)
	}
	wantKeys(t, "after a conflict", searchKeys(t, s, "zebra"), nil)
	wantKeys(t, "document kept after a conflict", searchKeys(t, s, "walrus"), []string{"kept"})

	// So does a fenced commit.
	tx = begin(t, s)
	tx.Fence([]byte("epoch"), 1)
	mustSetText(t, tx, "fenced", "zebra fenced")
	if err := tx.DeleteRange([]byte("kept"), nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrFenced) {
		t.Fatalf("commit under an absent fence: err = %v, want ErrFenced", err)
	}
	wantKeys(t, "after a fenced commit", searchKeys(t, s, "zebra"), nil)
	wantKeys(t, "document kept after a fenced commit", searchKeys(t, s, "walrus"), []string{"kept"})
}

func testTextValidate(t *testing.T, open Opener) {
	s, ts := textStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) { mustSetText(t, tx, "k", "zebra") })
	tooMany := make([]string, storage.TextTermsMax+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("t%d", i)
	}
	maxTerms := slices.Clone(tooMany[:storage.TextTermsMax])
	maxTerms[len(maxTerms)-1] = "zebra"
	longest := strings.Repeat("z", storage.TextTermBytesMax)
	bad := []struct {
		name string
		opts storage.TextSearchOptions
	}{
		{"limit 0", storage.TextSearchOptions{Terms: []string{"zebra"}}},
		{"negative limit", storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: -1}},
		{"limit over max", storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: storage.TextHitsMax + 1}},
		{"no terms", storage.TextSearchOptions{Limit: 1}},
		{"too many terms", storage.TextSearchOptions{Terms: tooMany, Limit: 1}},
		{"empty term", storage.TextSearchOptions{Terms: []string{"zebra", ""}, Limit: 1}},
		{"long term", storage.TextSearchOptions{Terms: []string{longest + "z"}, Limit: 1}},
		{"invalid UTF-8", storage.TextSearchOptions{Terms: []string{"zeb\xffra"}, Limit: 1}},
		{"inverted range", storage.TextSearchOptions{Start: []byte("b"), End: []byte("a"), Terms: []string{"zebra"}, Limit: 1}},
		{"empty range", storage.TextSearchOptions{Start: []byte("a"), End: []byte("a"), Terms: []string{"zebra"}, Limit: 1}},
		{"scope over max", storage.TextSearchOptions{Scope: make([]byte, storage.KeyBytesMax+1), Terms: []string{"zebra"}, Limit: 1}},
	}
	for _, c := range bad {
		tx := begin(t, s)
		if _, _, err := tx.SearchText(ctx, c.opts); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Txn.SearchText, %s: err = %v, want ErrInvalid", c.name, err)
		}
		tx.Rollback()
		if _, err := ts.SearchText(ctx, c.opts); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("backend SearchText, %s: err = %v, want ErrInvalid", c.name, err)
		}
	}
	// The bounds themselves are accepted.
	wantKeys(t, "maximum terms", hitKeys(search(t, s, storage.TextSearchOptions{Terms: maxTerms, Limit: storage.TextHitsMax})), []string{"k"})
	wantKeys(t, "longest term", hitKeys(search(t, s, storage.TextSearchOptions{Terms: []string{longest}, Limit: 1})), nil)
	wantKeys(t, "longest scope", hitKeys(search(t, s, storage.TextSearchOptions{Scope: make([]byte, storage.KeyBytesMax), Terms: []string{"zebra"}})), nil)
	if hits, err := ts.SearchText(ctx, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 1}); err != nil || len(hits) != 1 {
		t.Fatalf("backend SearchText: %v, %v", hitKeys(hits), err)
	}

	// A finished transaction does not search.
	tx := begin(t, s)
	tx.Rollback()
	if _, _, err := tx.SearchText(ctx, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 1}); !errors.Is(err, storage.ErrTxnDone) {
		t.Errorf("search after rollback: err = %v, want ErrTxnDone", err)
	}
	// Documents are bounded and UTF-8.
	tx = begin(t, s)
	defer tx.Rollback()
	if err := tx.SetWithText([]byte("k"), nil, "zeb\xffra"); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("text not UTF-8: err = %v, want ErrInvalid", err)
	}
	if err := tx.SetWithText([]byte("k"), nil, strings.Repeat("z", storage.TextBytesMax+1)); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("text over max: err = %v, want ErrTooLarge", err)
	}
	if err := tx.SetWithText(nil, nil, "zebra"); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("empty key: err = %v, want ErrInvalid", err)
	}
	// A scope is a prefix of the key: 0..len(key) bytes.
	for _, n := range []int{-1, 2, 100} {
		if err := tx.SetWithTextScoped([]byte("k"), nil, n, "zebra"); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("scope length %d for a 1-byte key: err = %v, want ErrInvalid", n, err)
		}
	}
	if err := tx.SetWithTextScoped(nil, nil, 0, "zebra"); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("scoped, empty key: err = %v, want ErrInvalid", err)
	}
}

// testTextSyntax searches with terms full of the query syntax of FTS5 and
// PostgreSQL tsquery: none may fail, and each is read as the words in it.
func testTextSyntax(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "hello", "hello world, we are near the harbour")
		mustSetText(t, tx, "other", "an unrelated document about ships")
	})
	// Single words wrapped in syntax: each finds the document.
	for _, term := range []string{
		`hello`, `"hello"`, `""hello""`, `"hello`, `hello"`, `'hello'`, `hello*`, `*hello`, `hello:*`, `hello:`,
		`:hello`, `hello&`, `&hello`, `|hello`, `hello|`, `!hello`, `!!hello`, `(hello`, `hello)`,
		`(hello)`, `-hello`, `+hello`, `^hello`, `{hello}`, `[hello]`, `hello;`, `hello\`, `\hello`,
		`hello<->`, "hello\x00", "\x00hello", `NEAR`, `near`, `harbour`, `HELLO`,
	} {
		wantKeys(t, fmt.Sprintf("term %q", term), searchKeys(t, s, term), []string{"hello"})
	}
	// Several words, or none: no error; these may or may not match
	// (a phrase to one engine, an AND to another, stopwords to a third).
	for _, term := range []string{
		`hello world`, `hello OR ships`, `hello AND ships`, `NOT hello`, `hello NOT world`, `NEAR(hello world)`,
		`NEAR(hello world, 2)`, `hello + world`, `hello -world`, `col:hello`, `body:hello`, `{body}: hello`,
		`hello & !world`, `hello | ships`, `hello <-> world`, `hello <2> world`, `(hello | ships) & !x`,
		`'hello':* & world`, `hello*world`, `<hello>`, `NEAR/2`, `hello:A`, "hel\x00lo", `a:b`, `x-ray`, `AND`, `OR`, `NOT`,
	} {
		search(t, s, storage.TextSearchOptions{Terms: []string{term}})
	}
	// No words at all: nothing matches, alone or beside a real term.
	for _, term := range []string{`*`, `"`, `""`, `"""`, `(`, `)`, `:`, `&`, `|`, `!`, `-`, `^`, `:*`, `<->`, " ", "\x00", `'`, `\`} {
		wantKeys(t, fmt.Sprintf("term %q", term), searchKeys(t, s, term), nil)
		wantKeys(t, fmt.Sprintf("terms %q and ships", term), searchKeys(t, s, term, "ships"), []string{"other"})
	}
	// Stopwords to some engines, words to others: no error.
	search(t, s, storage.TextSearchOptions{Terms: []string{"the", "a", "we", "are"}})
}

func testTextUnicode(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "de", "Die Überstraße führt zum Café")
		mustSetText(t, tx, "ja", "東京タワー は 高い")
		mustSetText(t, tx, "el", "ο λόγος και η πράξη")
		mustSetText(t, tx, "nul", "alpha\x00omega")
	})
	for term, want := range map[string]string{
		"überstraße": "de", "ÜBERSTRASSE": "", "CAFÉ": "de", "café": "de",
		"東京タワー": "ja", "高い": "ja",
		"λόγος": "el", "ΠΡΆΞΗ": "el",
		"omega": "nul", "alpha": "nul",
	} {
		if want == "" {
			search(t, s, storage.TextSearchOptions{Terms: []string{term}}) // engines differ on ß; no error
			continue
		}
		wantKeys(t, fmt.Sprintf("term %q", term), searchKeys(t, s, term), []string{want})
	}
}

// testTextLarge indexes the largest document allowed, of distinct random
// words (the hardest case for an index sized by distinct words), and
// finds words from its start and its very end.
func testTextLarge(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.Grow(storage.TextBytesMax)
	b.WriteString("firstword ")
	const last = " lastword"
	for b.Len() < storage.TextBytesMax-len(last)-8 {
		for range 5 {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
		b.WriteByte(' ')
	}
	b.WriteString(last)
	text := b.String()
	if len(text) > storage.TextBytesMax {
		t.Fatalf("generated %d bytes", len(text))
	}
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "big", text)
		mustSetText(t, tx, "small", "lastword")
	})
	wantKeys(t, "first word of the largest document", searchKeys(t, s, "firstword"), []string{"big"})
	wantKeys(t, "last word of the largest document", sorted(searchKeys(t, s, "lastword")), []string{"big", "small"})
	commit(t, s, func(tx *storage.Txn) { mustSetText(t, tx, "big", "replaced") })
	wantKeys(t, "largest document replaced", searchKeys(t, s, "firstword", "lastword"), []string{"small"})
}

// testTextChurn replays random sets with and without text, in random
// scopes, deletes and range deletes over a few keys against a model of
// the index, so documents are replaced, moved between scopes, dropped and
// re-created many times over.
func testTextChurn(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	r := rand.New(rand.NewPCG(9, 10))
	const keys, rounds = 6, 150
	type doc struct {
		word  string
		scope string // "" for none
	}
	model := map[string]doc{} // key -> its document's one word and scope
	word := func(i int) string { return "w" + benchWord(uint64(i)) }
	// A key kN's document has no scope, scope "k" (shared by all keys) or
	// scope "kN" (its own).
	scopes := []string{"k"}
	for i := range keys {
		scopes = append(scopes, fmt.Sprintf("k%d", i))
	}
	check := func(round int) {
		t.Helper()
		for w := range round + 1 {
			var want []string
			for k, d := range model {
				if d.word == word(w) {
					want = append(want, k)
				}
			}
			slices.Sort(want)
			wantKeys(t, fmt.Sprintf("round %d, word %d", round, w), sorted(searchKeys(t, s, word(w))), want)
		}
		for _, sc := range scopes {
			var want []string
			for k, d := range model {
				if d.scope == sc {
					want = append(want, k)
				}
			}
			slices.Sort(want)
			wantKeys(t, fmt.Sprintf("round %d, scope %q", round, sc), sorted(scopedKeys(t, s, sc, "churn")), want)
		}
	}
	for round := range rounds {
		commit(t, s, func(tx *storage.Txn) {
			for range 1 + r.IntN(3) {
				k := fmt.Sprintf("k%d", r.IntN(keys))
				switch op := r.IntN(10); {
				case op < 5:
					n := r.IntN(3) // scope length: none, "k" or k
					mustSetScoped(t, tx, k, n, "churn "+word(round))
					model[k] = doc{word(round), k[:n]}
				case op < 7:
					mustSet(t, tx, k, "plain")
					delete(model, k)
				case op < 9:
					if err := tx.Delete([]byte(k)); err != nil {
						t.Fatal(err)
					}
					delete(model, k)
				default:
					end := fmt.Sprintf("k%d", r.IntN(keys)+1)
					if end <= k {
						continue
					}
					if err := tx.DeleteRange([]byte(k), []byte(end)); err != nil {
						t.Fatal(err)
					}
					for mk := range model {
						if mk >= k && mk < end {
							delete(model, mk)
						}
					}
				}
			}
		})
		if round%10 == 9 || round == rounds-1 {
			check(round)
		}
	}
	wantKeys(t, "common word", sorted(searchKeys(t, s, "churn")), sorted(slices.Collect(maps.Keys(model))))
}

// testTextScopes: a scoped search finds only the documents whose scope
// equals it (not those in a longer or shorter scope, nor those without
// one), with the scores an unscoped search gives them; Start, End and
// Limit apply within the scope; unscoped searches find every document.
func testTextScopes(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		mustSetScoped(t, tx, "a/1", 2, "zebra one")
		mustSetScoped(t, tx, "a/2", 2, "zebra zebra two")
		mustSetScoped(t, tx, "a/3", 2, "giraffe three")
		mustSetScoped(t, tx, "b/1", 2, "zebra four")
		mustSetScoped(t, tx, "a/b/1", 4, "zebra nested")
		mustSetScoped(t, tx, "whole", 5, "zebra whole key") // the scope is the key
		mustSetText(t, tx, "a/4", "zebra unscoped")         // under a/, but in no scope
		mustSetScoped(t, tx, "c/1", 0, "zebra unscoped too")
	})
	all := search(t, s, storage.TextSearchOptions{Terms: []string{"zebra"}})
	wantKeys(t, "unscoped", sorted(hitKeys(all)), []string{"a/1", "a/2", "a/4", "a/b/1", "b/1", "c/1", "whole"})
	score := map[string]float64{}
	for _, h := range all {
		score[string(h.Key)] = h.Score
	}
	for _, c := range []struct {
		scope string
		want  []string
	}{
		{"a/", []string{"a/2", "a/1"}}, // two occurrences rank first
		{"a/b/", []string{"a/b/1"}},
		{"b/", []string{"b/1"}},
		{"whole", []string{"whole"}},
		{"a", nil},       // a prefix of scopes, not one
		{"a/b", nil},     // likewise
		{"c/", nil},      // its documents have no scope
		{"unknown", nil}, // never written
		{"\x00", nil},
	} {
		hits := search(t, s, storage.TextSearchOptions{Scope: []byte(c.scope), Terms: []string{"zebra"}})
		wantKeys(t, fmt.Sprintf("scope %q", c.scope), hitKeys(hits), c.want)
		for _, h := range hits {
			if want := score[string(h.Key)]; math.Abs(h.Score-want) > 1e-9*math.Abs(want) {
				t.Errorf("scope %q: %q scores %v, unscoped %v", c.scope, h.Key, h.Score, want)
			}
		}
	}
	wantKeys(t, "scope a/, giraffe", scopedKeys(t, s, "a/", "giraffe"), []string{"a/3"})
	wantKeys(t, "scope b/, giraffe", scopedKeys(t, s, "b/", "giraffe"), nil)
	wantKeys(t, "scope a/, two terms", sorted(scopedKeys(t, s, "a/", "giraffe", "one")), []string{"a/1", "a/3"})
	for _, c := range []struct {
		opts storage.TextSearchOptions
		want []string
	}{
		{storage.TextSearchOptions{Start: []byte("a/2")}, []string{"a/2"}},
		{storage.TextSearchOptions{End: []byte("a/2")}, []string{"a/1"}},
		{storage.TextSearchOptions{Start: []byte("a/1"), End: []byte("a/3")}, []string{"a/2", "a/1"}},
		{storage.TextSearchOptions{Start: []byte("a/3")}, nil},
		{storage.TextSearchOptions{Start: []byte("b/"), End: []byte("c/")}, nil},
		{storage.TextSearchOptions{Limit: 1}, []string{"a/2"}},
	} {
		c.opts.Scope, c.opts.Terms = []byte("a/"), []string{"zebra"}
		wantKeys(t, fmt.Sprintf("scope a/, [%q, %q) limit %d", c.opts.Start, c.opts.End, c.opts.Limit),
			hitKeys(search(t, s, c.opts)), c.want)
	}
}

// testTextScopeMoves rewrites documents in another scope, in none, and
// in the same one: each is found in its latest scope only.
func testTextScopeMoves(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	commit(t, s, func(tx *storage.Txn) {
		for _, k := range []string{"a/1", "a/2", "a/3", "a/4"} {
			mustSetScoped(t, tx, k, 2, "zebra "+k)
		}
		mustSetText(t, tx, "a/5", "zebra a/5")
	})
	wantKeys(t, "before", scopedKeys(t, s, "a/", "zebra"), []string{"a/1", "a/2", "a/3", "a/4"})
	commit(t, s, func(tx *storage.Txn) {
		mustSetScoped(t, tx, "a/1", 1, "zebra moved to a")     // a shorter scope
		mustSetScoped(t, tx, "a/2", 3, "zebra moved to a/2")   // a longer one
		mustSetText(t, tx, "a/3", "zebra moved out")           // none
		mustSetScoped(t, tx, "a/4", 2, "giraffe same scope")   // the same, new text
		mustSetScoped(t, tx, "a/5", 2, "zebra moved in to a/") // from none
	})
	wantKeys(t, "scope a/", scopedKeys(t, s, "a/", "zebra"), []string{"a/5"})
	wantKeys(t, "scope a/, giraffe", scopedKeys(t, s, "a/", "giraffe"), []string{"a/4"})
	wantKeys(t, "scope a", scopedKeys(t, s, "a", "zebra"), []string{"a/1"})
	wantKeys(t, "scope a/2", scopedKeys(t, s, "a/2", "zebra"), []string{"a/2"})
	wantKeys(t, "unscoped", sorted(searchKeys(t, s, "zebra")), []string{"a/1", "a/2", "a/3", "a/5"})
	wantKeys(t, "old text of a/4", searchKeys(t, s, "a/4"), nil)
	// Moving back and forth within one transaction: the last write wins.
	commit(t, s, func(tx *storage.Txn) {
		mustSetScoped(t, tx, "a/1", 2, "zebra back")
		mustSetScoped(t, tx, "a/1", 1, "zebra elephant")
		mustSetScoped(t, tx, "a/3", 1, "zebra in")
		mustSetScoped(t, tx, "a/3", 2, "zebra back in a/")
	})
	wantKeys(t, "scope a/ after one transaction", sorted(scopedKeys(t, s, "a/", "zebra")), []string{"a/3", "a/5"})
	wantKeys(t, "scope a after one transaction", scopedKeys(t, s, "a", "zebra"), []string{"a/1"})
	wantKeys(t, "a/1's text", searchKeys(t, s, "elephant"), []string{"a/1"})
}

// testTextScopeDrops: a plain set, a delete and a range delete drop
// scoped documents as they drop others, and a dropped key re-indexes in
// any scope.
func testTextScopeDrops(t *testing.T, open Opener) {
	s, _ := textStore(t, open)
	ctx := context.Background()
	commit(t, s, func(tx *storage.Txn) {
		for i := range 6 {
			mustSetScoped(t, tx, fmt.Sprintf("s/%d", i), 2, "zebra")
		}
	})
	commit(t, s, func(tx *storage.Txn) {
		mustSet(t, tx, "s/0", "plain")
		if err := tx.Delete([]byte("s/1")); err != nil {
			t.Fatal(err)
		}
		if err := tx.DeleteRange([]byte("s/4"), nil); err != nil {
			t.Fatal(err)
		}
	})
	wantKeys(t, "scope s/ after drops", scopedKeys(t, s, "s/", "zebra"), []string{"s/2", "s/3"})
	wantKeys(t, "unscoped after drops", searchKeys(t, s, "zebra"), []string{"s/2", "s/3"})
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("s/"), []byte("s/3")); err != nil {
			t.Fatal(err)
		}
		mustSetScoped(t, tx, "s/0", 2, "zebra")
		mustSetScoped(t, tx, "s/1", 3, "zebra")
	})
	wantKeys(t, "scope s/ after re-indexing", scopedKeys(t, s, "s/", "zebra"), []string{"s/0", "s/3"})
	wantKeys(t, "scope s/1", scopedKeys(t, s, "s/1", "zebra"), []string{"s/1"})
	// A failed commit moves nothing.
	tx := begin(t, s)
	if _, err := tx.Get(ctx, []byte("s/3")); err != nil {
		t.Fatal(err)
	}
	mustSetScoped(t, tx, "s/3", 0, "zebra unscoped")
	commit(t, s, func(tx *storage.Txn) { mustSetScoped(t, tx, "s/3", 2, "zebra") })
	if err := tx.Commit(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("commit after a concurrent write: err = %v, want ErrConflict", err)
	}
	wantKeys(t, "scope s/ after a conflict", scopedKeys(t, s, "s/", "zebra"), []string{"s/0", "s/3"})
}

func testTextReopen(t *testing.T, open Opener) {
	s := open(t)
	if _, ok := storeSearcher(s); !ok {
		s.Close()
		t.Fatalf("%T does not implement storage.TextSearcher, but the full-text suite was run against it", s)
	}
	commit(t, s, func(tx *storage.Txn) {
		for i := range 20 {
			mustSetText(t, tx, fmt.Sprintf("d/%02d", i), fmt.Sprintf("zebra number %d", i))
		}
	})
	commit(t, s, func(tx *storage.Txn) {
		if err := tx.DeleteRange([]byte("d/10"), nil); err != nil {
			t.Fatal(err)
		}
		mustSet(t, tx, "d/00", "plain")
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = textStore(t, open)
	want := make([]string, 0, 9)
	for i := 1; i < 10; i++ {
		want = append(want, fmt.Sprintf("d/%02d", i))
	}
	wantKeys(t, "after reopen", sorted(searchKeys(t, s, "zebra")), want)
	commit(t, s, func(tx *storage.Txn) { mustSetText(t, tx, "d/00", "zebra again") })
	wantKeys(t, "indexed after reopen", sorted(searchKeys(t, s, "zebra")), append([]string{"d/00"}, want...))
}

// testTextUnsupported runs against backends without a full-text engine:
// they ignore documents, and searches fail with errors.ErrUnsupported.
func testTextUnsupported(t *testing.T, open Opener) {
	s := openStore(t, open)
	if _, ok := storeSearcher(s); ok {
		t.Fatalf("%T implements storage.TextSearcher: set Backend.Text to run the full-text suite", s)
	}
	commit(t, s, func(tx *storage.Txn) {
		mustSetText(t, tx, "k", "zebra")
		mustSetScoped(t, tx, "k2", 1, "zebra")
	})
	for _, k := range []string{"k", "k2"} {
		if v, ok := get(t, s, k); !ok || v != "v:"+k {
			t.Fatalf("value set with text = %q, %v", v, ok)
		}
	}
	tx := begin(t, s)
	defer tx.Rollback()
	if _, ranking, err := tx.SearchText(context.Background(), storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 1}); !errors.Is(err, errors.ErrUnsupported) || ranking != "" {
		t.Fatalf("search without a full-text engine: ranking %q, err = %v, want ErrUnsupported", ranking, err)
	}
}
