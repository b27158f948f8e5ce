package actor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

// notes is a test actor that keeps full-text documents in its KV space.
type notes struct{}

// notesOp is the payload of every notes op.
type notesOp struct {
	Key, Text  string
	Start, End *string // search bounds; nil: the space's start or end
	Terms      []string
}

// notesResult is what a search returns.
type notesResult struct {
	Keys    []string
	Ranking string
}

func (notes) Invoke(ctx context.Context, c *actor.Context[struct{}], op string, payload []byte) ([]byte, error) {
	var in notesOp
	if err := json.Unmarshal(payload, &in); err != nil {
		return nil, err
	}
	search := func() ([]byte, error) {
		opts := storage.TextSearchOptions{Terms: in.Terms, Limit: 100}
		if in.Start != nil {
			opts.Start = []byte(*in.Start)
		}
		if in.End != nil {
			opts.End = []byte(*in.End)
		}
		hits, ranking, err := c.SearchText(ctx, opts)
		if err != nil {
			return nil, err
		}
		out := notesResult{Keys: []string{}, Ranking: ranking}
		for _, h := range hits {
			out.Keys = append(out.Keys, string(h.Key))
		}
		return json.Marshal(out)
	}
	switch op {
	case "put":
		return nil, c.SetWithText([]byte(in.Key), []byte("value of "+in.Key), in.Text)
	case "plain":
		return nil, c.Set([]byte(in.Key), []byte("plain"))
	case "get":
		return c.Get(ctx, []byte(in.Key))
	case "search":
		return search()
	case "put-and-search": // an invocation does not see its own documents
		if err := c.SetWithText([]byte(in.Key), nil, in.Text); err != nil {
			return nil, err
		}
		return search()
	case "clear":
		return nil, c.Clear()
	}
	return nil, fmt.Errorf("unknown op %q", op)
}

func notesSystem(t *testing.T, store storage.Store) *actor.System {
	t.Helper()
	sys := actor.NewSystem(actor.Config{Store: store, Runtime: rt.NewSystem(), Logger: slog.New(slog.DiscardHandler)})
	if err := actor.Register[struct{}](sys, "notes", notes{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sys.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sys
}

func notesInvoke(t *testing.T, sys *actor.System, who, op string, in notesOp) ([]byte, error) {
	t.Helper()
	payload, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return sys.Invoke(context.Background(), actor.ID{Namespace: "notes", ID: who}, op, payload)
}

func notesDo(t *testing.T, sys *actor.System, who, op string, in notesOp) []byte {
	t.Helper()
	out, err := notesInvoke(t, sys, who, op, in)
	if err != nil {
		t.Fatalf("%s %s %+v: %v", who, op, in, err)
	}
	return out
}

func notesSearch(t *testing.T, sys *actor.System, who, op string, in notesOp) notesResult {
	t.Helper()
	var res notesResult
	if err := json.Unmarshal(notesDo(t, sys, who, op, in), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestContextText: documents written through a Context are searched
// within the actor's own KV space, with relative bounds and keys, commit
// with the invocation, and go with Set and Clear.
func TestContextText(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "kelpie.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sys := notesSystem(t, s)
	for _, who := range []string{"a", "b"} {
		for _, k := range []string{"n/1", "n/2", "n/3", "o/1"} {
			notesDo(t, sys, who, "put", notesOp{Key: k, Text: "a zebra note by " + who})
		}
	}
	if v := notesDo(t, sys, "a", "get", notesOp{Key: "n/1"}); string(v) != "value of n/1" {
		t.Fatalf("value set with text = %q", v)
	}
	str := func(s string) *string { return &s }
	cases := []struct {
		in   notesOp
		want []string
	}{
		{notesOp{Terms: []string{"zebra"}}, []string{"n/1", "n/2", "n/3", "o/1"}},
		{notesOp{Terms: []string{"b"}}, []string{}}, // only actor b's documents have the word
		{notesOp{Terms: []string{"zebra"}, Start: str("n/"), End: str("n0")}, []string{"n/1", "n/2", "n/3"}},
		{notesOp{Terms: []string{"zebra"}, Start: str("n/2")}, []string{"n/2", "n/3", "o/1"}},
		{notesOp{Terms: []string{"zebra"}, End: str("n/2")}, []string{"n/1"}},
	}
	for _, c := range cases {
		res := notesSearch(t, sys, "a", "search", c.in)
		if !slices.Equal(res.Keys, c.want) {
			t.Errorf("search %+v in a = %q, want %q", c.in, res.Keys, c.want)
		}
		if res.Ranking != s.TextRanking() {
			t.Errorf("ranking %q, want %q", res.Ranking, s.TextRanking())
		}
	}
	if _, err := notesInvoke(t, sys, "a", "search", notesOp{Terms: []string{"zebra"}, Start: str("n/2"), End: str("n/1")}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("inverted relative range: err = %v, want ErrInvalid", err)
	}

	// An invocation's own documents are not searchable until it commits.
	res := notesSearch(t, sys, "a", "put-and-search", notesOp{Key: "new", Text: "giraffe", Terms: []string{"giraffe"}})
	if len(res.Keys) != 0 {
		t.Fatalf("own uncommitted document found: %q", res.Keys)
	}
	if got := notesSearch(t, sys, "a", "search", notesOp{Terms: []string{"giraffe"}}).Keys; !slices.Equal(got, []string{"new"}) {
		t.Fatalf("committed document = %q", got)
	}

	// A plain Set drops a document; Clear drops them all, for one actor only.
	notesDo(t, sys, "a", "plain", notesOp{Key: "n/1"})
	if got := notesSearch(t, sys, "a", "search", notesOp{Terms: []string{"zebra"}}).Keys; !slices.Equal(got, []string{"n/2", "n/3", "o/1"}) {
		t.Fatalf("after a plain set of n/1 = %q", got)
	}
	notesDo(t, sys, "a", "clear", notesOp{})
	if got := notesSearch(t, sys, "a", "search", notesOp{Terms: []string{"zebra", "giraffe"}}).Keys; len(got) != 0 {
		t.Fatalf("after clear = %q", got)
	}
	if got := notesSearch(t, sys, "b", "search", notesOp{Terms: []string{"zebra"}}).Keys; len(got) != 4 {
		t.Fatalf("another actor's documents after clear = %q", got)
	}
}

// TestContextTextUnsupported: on a store without a full-text engine the
// text is ignored and searches fail with errors.ErrUnsupported.
func TestContextTextUnsupported(t *testing.T) {
	sys := notesSystem(t, memory.New())
	notesDo(t, sys, "a", "put", notesOp{Key: "k", Text: "zebra"})
	if v := notesDo(t, sys, "a", "get", notesOp{Key: "k"}); string(v) != "value of k" {
		t.Fatalf("value set with text = %q", v)
	}
	if _, err := notesInvoke(t, sys, "a", "search", notesOp{Terms: []string{"zebra"}}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("search on memory: err = %v, want ErrUnsupported", err)
	}
}

// TestContextTextScoped: each actor's documents are indexed in the scope
// of its KV space and its searches look in that scope only, so two
// actors whose documents all match never see each other's, whatever
// bounds they pass.
func TestContextTextScoped(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "kelpie.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sys := notesSystem(t, s)
	// "a" and "ab": IDs where one is a prefix of the other.
	actors := []string{"a", "ab", "b"}
	for _, who := range actors {
		for i := range 3 {
			notesDo(t, sys, who, "put", notesOp{Key: fmt.Sprintf("%s/%d", who, i), Text: "a zebra note"})
		}
	}
	for _, who := range actors {
		want := []string{who + "/0", who + "/1", who + "/2"}
		for _, in := range []notesOp{
			{Terms: []string{"zebra"}},
			{Terms: []string{"zebra", "note"}},
			{Terms: []string{"zebra"}, Start: new(""), End: new("\xff\xff\xff")},
		} {
			if got := notesSearch(t, sys, who, "search", in).Keys; !slices.Equal(got, want) {
				t.Errorf("search %+v by %q = %q, want %q", in, who, got, want)
			}
		}
	}
	// In the store, each actor's documents are in the scope of its KV
	// prefix, and an unscoped search finds them all.
	for _, who := range actors {
		prefix := actor.ID{Namespace: "notes", ID: who}.KVPrefix()
		hits, err := s.SearchText(ctx, storage.TextSearchOptions{Scope: prefix, Terms: []string{"zebra"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) != 3 {
			t.Errorf("scope of %q holds %d documents, want 3", who, len(hits))
		}
		for _, h := range hits {
			if string(h.Key[:len(prefix)]) != string(prefix) {
				t.Errorf("scope of %q holds %q", who, h.Key)
			}
		}
	}
	if hits, err := s.SearchText(ctx, storage.TextSearchOptions{Terms: []string{"zebra"}, Limit: 100}); err != nil || len(hits) != 3*len(actors) {
		t.Fatalf("unscoped search: %d hits, %v; want %d", len(hits), err, 3*len(actors))
	}
	// A document in an actor's space without the scope is not the
	// actor's to find.
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.SetWithText(append(actor.ID{Namespace: "notes", ID: "a"}.KVPrefix(), "raw"...), nil, "zebra"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := notesSearch(t, sys, "a", "search", notesOp{Terms: []string{"zebra"}}).Keys; !slices.Equal(got, []string{"a/0", "a/1", "a/2"}) {
		t.Fatalf("search by a after an unscoped document in its space = %q", got)
	}
}
