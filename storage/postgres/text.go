package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/storage"
)

// Full-text index (storage.TextSearcher), schema version 3.
//
// kelpie_text holds each indexed key's document as to_tsvector('english',
// text) rows under a GIN index: English stemming and stopwords. Each row
// also holds the document's scope (NULL for none), under a partial btree
// index of the scoped rows, so a scoped search finds the scope's rows
// through that index and tests only them against the query (or, when the
// planner prefers, ANDs the two indexes' bitmaps); documents written
// before version 3 have no scope. A tsvector
// is limited to 1 MiB, which a storage.TextBytesMax document of distinct
// words can exceed, so a document longer than textChunkBytes is split at
// whitespace into several rows (chunk 0, 1, ...), each far below the limit;
// a phrase that straddles a cut is not found.
//
// The pairs with a document have kelpie_kv.has_text set, and row triggers
// that fire only for those delete a pair's document when the pair is
// overwritten or deleted (one at a time or by a range delete). Commit sets
// has_text with each value and inserts the rows of its new documents, in
// its own transaction, so the index commits and rolls back with the pairs;
// a commit without documents never reads the text table, and so takes no
// SERIALIZABLE predicate locks on it that could make concurrent commits
// conflict.
//
// A search ORs one phraseto_tsquery per term: the term is parsed as
// document text, never as tsquery syntax, and a term of several words
// matches them as a phrase (as an FTS5 string does). A term that is all
// stopwords or punctuation contributes nothing and matches nothing. A
// document's score is the sum over its chunks of ts_rank_cd with
// normalization 1 (divided by 1 + the log of the chunk's length), which
// has no corpus statistics, so scoped and unscoped searches score a
// document alike.

// Full-text objects, configuration and bounds.
const (
	// textTable holds the documents.
	textTable = "kelpie_text"
	// textDropFunc is the trigger function deleting a pair's document;
	// its triggers are named after it.
	textDropFunc = "kelpie_text_drop"
	// textRanking is what TextRanking reports.
	textRanking = "postgres-ts-rank-cd"
	// textChunkBytes bounds the text of one row. The tsvector of n bytes
	// of text measures at most a few times n (about 2.6n for adversarial
	// input), far below PostgreSQL's 1 MiB tsvector limit.
	textChunkBytes = 64 << 10
	// textInsertSQL inserts documents' rows: $1 keys, $2 chunk numbers,
	// $3 texts, $4 scopes (NULL for none), in parallel arrays.
	textInsertSQL = `INSERT INTO ` + textTable + ` (key, chunk, doc, scope)
		SELECT k, c, to_tsvector('english', t), s
		FROM unnest($1::bytea[], $2::smallint[], $3::text[], $4::bytea[]) AS d(k, c, t, s)`
)

// textRows are the rows of the documents one commit writes, as parallel
// arrays for textInsertSQL.
type textRows struct {
	keys   [][]byte
	chunks []int16
	texts  []string
	scopes [][]byte // nil elements are NULL
}

// add appends the rows of key's document, in scope key[:scopeLen] (none
// if scopeLen is 0).
func (r *textRows) add(key []byte, scopeLen int, text string) {
	var scope []byte
	if scopeLen > 0 {
		scope = key[:scopeLen:scopeLen]
	}
	for i, c := range chunkText(noNUL(text)) {
		r.keys = append(r.keys, key)
		r.chunks = append(r.chunks, int16(i))
		r.texts = append(r.texts, c)
		r.scopes = append(r.scopes, scope)
	}
}

// chunkText splits text into pieces of at most textChunkBytes, cutting at
// the last ASCII whitespace of each piece's second half, or failing that
// at a rune boundary. Each piece but the last is at least half the bound,
// so a storage.TextBytesMax document has at most 2*TextBytesMax/
// textChunkBytes+1 pieces.
func chunkText(text string) []string {
	var out []string
	for len(text) > textChunkBytes {
		cut := strings.LastIndexAny(text[textChunkBytes/2:textChunkBytes+1], " \t\n\r\f\v")
		if cut >= 0 {
			cut += textChunkBytes / 2
		} else {
			cut = textChunkBytes
			for cut > 0 && !utf8.RuneStart(text[cut]) {
				cut--
			}
		}
		out = append(out, text[:cut])
		text = text[cut:]
	}
	return append(out, text)
}

// noNUL replaces NUL bytes, which PostgreSQL text cannot hold, with
// spaces (a separator to the parser, as NUL is to other engines).
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", " ") }

// searchSQL returns the search statement and its arguments for validated
// options.
func searchSQL(opts storage.TextSearchOptions) (string, []any) {
	args := make([]any, 0, len(opts.Terms)+3)
	var q strings.Builder
	for i, t := range opts.Terms {
		if i > 0 {
			q.WriteString(" || ")
		}
		args = append(args, noNUL(t))
		fmt.Fprintf(&q, "phraseto_tsquery('english', $%d)", len(args))
	}
	var b strings.Builder
	b.WriteString(`SELECT key, sum(ts_rank_cd(doc, query.q, 1))::float8 AS score FROM ` + textTable +
		`, (SELECT ` + q.String() + ` AS q) AS query WHERE doc @@ query.q`)
	if len(opts.Scope) > 0 {
		args = append(args, opts.Scope)
		fmt.Fprintf(&b, " AND scope = $%d", len(args))
	}
	if opts.Start != nil {
		args = append(args, opts.Start)
		fmt.Fprintf(&b, " AND key >= $%d", len(args))
	}
	if opts.End != nil {
		args = append(args, opts.End)
		fmt.Fprintf(&b, " AND key < $%d", len(args))
	}
	args = append(args, int64(opts.Limit))
	fmt.Fprintf(&b, " GROUP BY key ORDER BY score DESC, key LIMIT $%d", len(args))
	return b.String(), args
}

// SearchText implements storage.TextSearcher: it returns the keys in
// [opts.Start, opts.End) whose committed document matches any of
// opts.Terms, and is in scope opts.Scope if set, by descending ts_rank_cd
// score and then by key.
func (s *Store) SearchText(ctx context.Context, opts storage.TextSearchOptions) ([]storage.TextHit, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	query, args := searchSQL(opts)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.wrap("text search", err)
	}
	defer rows.Close()
	hits := make([]storage.TextHit, 0, min(opts.Limit, 64))
	for rows.Next() {
		var h storage.TextHit
		if err := rows.Scan(&h.Key, &h.Score); err != nil {
			return nil, s.wrap("text search", err)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("text search", err)
	}
	return hits, nil
}

// TextRanking implements storage.TextSearcher.
func (s *Store) TextRanking() string { return textRanking }
