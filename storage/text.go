package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Full-text index.
//
// A set may carry a text document (Txn.SetWithText). A backend that
// implements TextSearcher indexes the document under the set's key, in the
// same atomic commit as the value, and keeps the index equal to
//
//	{key: text | the key's latest write was a SetWithText}
//
// so a plain Set of the key, a Delete, or a DeleteRange covering it drops
// its document, and a commit that fails (conflict, fence, error) indexes
// nothing. A backend without a full-text engine ignores Write.Text; callers
// detect that through errors.ErrUnsupported from Txn.SearchText and fall
// back to ranking the values themselves.
//
// Scopes. A document may belong to a scope, a prefix of its key given by
// its length (Txn.SetWithTextScoped; Txn.SetWithText writes no scope). A
// search with TextSearchOptions.Scope set looks only at the documents whose
// scope equals it, and a backend finds them through an index of the scope,
// so the search matches, ranks and sorts the scope's documents only, where
// a search restricted by Start and End alone may match the terms across the
// whole index and filter by key afterwards. (Corpus-wide ranking
// statistics, such as BM25's document frequencies, may still cost a pass
// over each term's postings.) Scopes partition the documents; they do not
// nest: a document in scope "a/b/" is not in scope "a/", and a document
// without a scope is in none, so only unscoped searches find it. Rewriting
// a key with another scope (or none) moves its document. Think of a scope
// as the tenant or owner of the documents under it, e.g. one actor's key
// space. Documents indexed before a backend supported scopes have none.

// Full-text limits.
const (
	// TextBytesMax bounds one text document.
	TextBytesMax = 1 << 20
	// TextTermsMax bounds the terms of one text search.
	TextTermsMax = 64
	// TextTermBytesMax bounds one search term.
	TextTermBytesMax = 256
	// TextHitsMax bounds the hits one text search returns.
	TextHitsMax = ScanLimitMax
)

// TextSearcher is implemented by backends with a full-text engine.
type TextSearcher interface {
	// SearchText returns the keys in [opts.Start, opts.End) whose
	// committed document matches any of opts.Terms, and is in scope
	// opts.Scope if that is set, best first (ties by key, ascending), at
	// most opts.Limit of them. A document's score does not depend on
	// opts.Scope, Start or End. Terms are words; the
	// backend applies its own tokenizer, stemming and stopwords to them and
	// to the documents, so a term that is a stopword to the backend may
	// match nothing.
	SearchText(ctx context.Context, opts TextSearchOptions) ([]TextHit, error)
	// TextRanking names the ranking function, e.g. "sqlite-fts5-bm25".
	TextRanking() string
}

// TextSearchOptions is one full-text query.
type TextSearchOptions struct {
	// Scope, if not empty, restricts the search to the documents whose
	// scope equals it (see the top of text.go); at most KeyBytesMax bytes.
	Scope []byte
	// Start and End bound the keys searched, as in ScanOptions; with a
	// Scope they apply within it.
	Start, End []byte
	// Terms are OR'ed: a document matching any one is a hit.
	// 1..TextTermsMax terms, each 1..TextTermBytesMax bytes of UTF-8.
	Terms []string
	// Limit is the most hits to return, 1..TextHitsMax.
	Limit int
}

// Validate checks the options; backends call it first.
func (o TextSearchOptions) Validate() error {
	if o.Start != nil && o.End != nil && bytes.Compare(o.Start, o.End) >= 0 {
		return fmt.Errorf("%w: empty or inverted range", ErrInvalid)
	}
	if len(o.Scope) > KeyBytesMax {
		return fmt.Errorf("%w: text search scope of %d bytes exceeds %d", ErrInvalid, len(o.Scope), KeyBytesMax)
	}
	if o.Limit < 1 || o.Limit > TextHitsMax {
		return fmt.Errorf("%w: text search limit %d outside 1..%d", ErrInvalid, o.Limit, TextHitsMax)
	}
	if len(o.Terms) == 0 || len(o.Terms) > TextTermsMax {
		return fmt.Errorf("%w: text search has %d terms, want 1..%d", ErrInvalid, len(o.Terms), TextTermsMax)
	}
	for _, t := range o.Terms {
		if t == "" || len(t) > TextTermBytesMax || !utf8.ValidString(t) {
			return fmt.Errorf("%w: text search term %q: want 1..%d bytes of UTF-8", ErrInvalid, t, TextTermBytesMax)
		}
	}
	return nil
}

// TextHit is one matching key and its relevance; higher is better.
type TextHit struct {
	Key   []byte
	Score float64
}

// SetWithText buffers key=value and indexes text as the key's document,
// without a scope (see the top of text.go). text counts toward
// TxnBytesMax.
func (t *Txn) SetWithText(key, value []byte, text string) error {
	return t.SetWithTextScoped(key, value, 0, text)
}

// SetWithTextScoped is SetWithText with the document in scope
// key[:scopeLen]; scopeLen 0 means no scope, and scopeLen must be in
// 0..len(key) (else ErrInvalid).
func (t *Txn) SetWithTextScoped(key, value []byte, scopeLen int, text string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if scopeLen < 0 || scopeLen > len(key) {
		return fmt.Errorf("%w: text scope length %d for key %q of %d bytes", ErrInvalid, scopeLen, key, len(key))
	}
	if len(value) > ValueBytesMax {
		return fmt.Errorf("%w: value of %d bytes for key %q exceeds %d", ErrTooLarge, len(value), key, ValueBytesMax)
	}
	if len(text) > TextBytesMax {
		return fmt.Errorf("%w: text of %d bytes for key %q exceeds %d", ErrTooLarge, len(text), key, TextBytesMax)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("%w: text for key %q is not UTF-8", ErrInvalid, key)
	}
	if value == nil {
		value = []byte{}
	}
	return t.buffer(&Write{Key: bytes.Clone(key), Value: bytes.Clone(value), Text: &text, TextScope: scopeLen})
}

// SearchText runs a full-text query against the committed index of the
// transaction's backend, with the backend's ranking name. It sees neither
// the transaction's own buffered writes nor a consistent snapshot with its
// other reads, and is not validated at commit: search results are a hint
// to read, not a read. Without a full-text engine it returns
// errors.ErrUnsupported.
func (t *Txn) SearchText(ctx context.Context, opts TextSearchOptions) ([]TextHit, string, error) {
	ts, ok := t.backend.(TextSearcher)
	if !ok {
		return nil, "", fmt.Errorf("storage: full-text search: %w", errors.ErrUnsupported)
	}
	if err := opts.Validate(); err != nil {
		return nil, "", err
	}
	t.mu.Lock()
	done := t.done
	t.mu.Unlock()
	if done {
		return nil, "", ErrTxnDone
	}
	hits, err := ts.SearchText(ctx, opts)
	return hits, ts.TextRanking(), err
}
