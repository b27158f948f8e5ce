package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/storage"
)

// Full-text index (storage.TextSearcher), schema version 3.
//
// Documents live in an FTS5 table, text_fts, tokenized with 'porter
// unicode61' (Unicode word splitting, case folding, diacritics removed,
// Porter stemming; no stopwords). The table is contentless: it holds the
// index, not the text. text_doc maps each indexed key to its document's
// rowid, and a trigger deletes the document when its mapping row goes, so
// dropping a key's or a range's documents is one DELETE on text_doc. The
// writer maintains both inside each request's SAVEPOINT, so the index
// commits, rolls back and fsyncs together with the pairs.
//
// Scopes are rowid ranges. text_scope numbers each scope ever written
// (never reused; the empty scope, for documents without one, has a row
// too), and a document's rowid is its scope's number << 32 plus a number
// within the scope, so a scope's documents are one contiguous rowid range.
// A scoped search gives FTS5 that range along with the MATCH, and FTS5
// seeks each term's posting list to the range's start and stops at its
// end, so only the scope's matches are joined to their keys, scored and
// sorted; no scope token or column enters the index or the BM25
// statistics, and a document's score is the same in a scoped and an
// unscoped search (BM25's IDF and average length are over the whole table
// either way). One cost still follows the whole table: to compute the
// IDF, bm25() counts each term's documents by walking its whole posting
// list, once per search (tens of nanoseconds a posting, against a join,
// a score and a sort per match without a scope).
//
// Why not a scope column: FTS5 cannot add a column to a table, and a
// contentless table cannot be rebuilt, so a column would have cost every
// version-2 document. Version-2 documents keep their rowids, numbered
// from 1, which lie in the empty scope's range (or in no scope's range at
// all; see the migration): they are found by unscoped searches only.

// Full-text objects and ranking.
const (
	// textDocTable maps keys to document rowids.
	textDocTable = "text_doc"
	// textFTSTable is the FTS5 index.
	textFTSTable = "text_fts"
	// textScopeTable numbers the scopes.
	textScopeTable = "text_scope"
	// textRanking is what TextRanking reports: scores are -bm25(), so
	// higher is better.
	textRanking = "sqlite-fts5-bm25"
)

// Scope numbering: a document's rowid is scope<<textScopeShift | n, with
// n in 1..textScopeDocsMax; scope numbers stay below textScopesMax, so
// rowids stay positive int64s.
const (
	textScopeShift    = 32
	textScopeShiftSQL = "32" // textScopeShift, in SQL text
	textScopeDocsMax  = 1<<textScopeShift - 1
	textScopesMax     = 1 << (63 - textScopeShift)
)

// The writer's full-text statements.
const (
	// textScopeGetSQL and textScopeAddSQL find and number a scope.
	textScopeGetSQL = `SELECT id FROM ` + textScopeTable + ` WHERE scope = ?`
	textScopeAddSQL = `INSERT INTO ` + textScopeTable + ` (scope) VALUES (?) RETURNING id`
	// textDocGetSQL returns the rowid of key's document.
	textDocGetSQL = `SELECT id FROM ` + textDocTable + ` WHERE key = ?`
	// textLastSQL returns the highest rowid in [?, ?], or NULL.
	textLastSQL = `SELECT max(id) FROM ` + textDocTable + ` WHERE id >= ? AND id <= ?`
	// textGapSQL returns a free rowid in [? + 1, ?], where ? is taken:
	// one past a taken rowid whose successor is free.
	textGapSQL = `SELECT a.id + 1 FROM ` + textDocTable + ` AS a WHERE a.id >= ? AND a.id < ? ` +
		`AND NOT EXISTS (SELECT 1 FROM ` + textDocTable + ` AS b WHERE b.id = a.id + 1) LIMIT 1`
	// textMapSQL maps key to a new rowid.
	textMapSQL = `INSERT INTO ` + textDocTable + ` (id, key) VALUES (?, ?)`
	// textPutSQL indexes (or re-indexes) a document under a rowid.
	textPutSQL = `INSERT OR REPLACE INTO ` + textFTSTable + ` (rowid, body) VALUES (?, ?)`
	// textDrop*SQL drop the documents of a key or a range (the trigger
	// deletes from text_fts).
	textDropSQL      = `DELETE FROM ` + textDocTable + ` WHERE key = ?`
	textDropRangeSQL = `DELETE FROM ` + textDocTable + ` WHERE key >= ? AND key < ?`
	textDropFromSQL  = `DELETE FROM ` + textDocTable + ` WHERE key >= ?`
)

// Search variants, indexed like scans: which key bounds are present, and
// whether the search is scoped.
const (
	searchHasStart = 1 << iota
	searchHasEnd
	searchScoped
	searchVariants
)

// textQueries are the prepared search statements of the read pool.
type textQueries struct {
	search [searchVariants]*sql.Stmt
}

// searchSQL returns the search statement for one variant. Its parameters
// are the scope if scoped, the FTS5 query, the present bounds, and the
// limit. Hits order by score, best first, then by key; keys compare with
// memcmp, which is bytes.Compare's order.
//
// A scoped search looks the scope up first (CROSS JOIN keeps text_scope
// the outer loop; an unknown scope finds no row and so no hits) and hands
// FTS5 the scope's rowid range, which FTS5 applies inside the index.
func searchSQL(variant int) string {
	var b strings.Builder
	b.WriteString(`SELECT d.key, -bm25(` + textFTSTable + `) AS score FROM `)
	if variant&searchScoped != 0 {
		b.WriteString(textScopeTable + ` AS s CROSS JOIN `)
	}
	b.WriteString(textFTSTable + ` JOIN ` + textDocTable + ` AS d ON d.id = ` + textFTSTable + `.rowid WHERE `)
	if variant&searchScoped != 0 {
		b.WriteString(`s.scope = ? AND ` + textFTSTable + `.rowid >= s.id << ` + textScopeShiftSQL +
			` AND ` + textFTSTable + `.rowid < (s.id + 1) << ` + textScopeShiftSQL + ` AND `)
	}
	b.WriteString(textFTSTable + ` MATCH ?`)
	if variant&searchHasStart != 0 {
		b.WriteString(" AND d.key >= ?")
	}
	if variant&searchHasEnd != 0 {
		b.WriteString(" AND d.key < ?")
	}
	b.WriteString(" ORDER BY score DESC, d.key ASC LIMIT ?")
	return b.String()
}

func prepareTextQueries(ctx context.Context, p preparer) (textQueries, error) {
	var q textQueries
	for i := range q.search {
		var err error
		if q.search[i], err = p.PrepareContext(ctx, searchSQL(i)); err != nil {
			q.close()
			return q, fmt.Errorf("prepare text search: %w", err)
		}
	}
	return q, nil
}

func (q *textQueries) close() {
	for _, st := range q.search {
		if st != nil {
			st.Close()
		}
	}
}

// matchQuery returns the FTS5 query matching any of terms. Each term is an
// FTS5 string (double quotes doubled), which FTS5 tokenizes like a
// document and matches as a phrase, so no term is ever read as query
// syntax (operators, prefixes, column filters); a term with no tokens, such
// as "*", matches nothing. NUL, which would end the query early, is a
// separator.
func matchQuery(terms []string) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(noNUL(t), `"`, `""`))
		b.WriteByte('"')
	}
	return b.String()
}

// noNUL replaces NUL bytes with spaces; both are separators to the
// tokenizer, but a NUL may truncate the string on its way through C.
func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", " ") }

// run runs one validated full-text query.
func (q *textQueries) run(ctx context.Context, opts storage.TextSearchOptions) ([]storage.TextHit, error) {
	variant := 0
	args := make([]any, 0, 5)
	if len(opts.Scope) > 0 {
		variant |= searchScoped
		args = append(args, opts.Scope)
	}
	args = append(args, matchQuery(opts.Terms))
	if opts.Start != nil {
		variant |= searchHasStart
		args = append(args, opts.Start)
	}
	if opts.End != nil {
		variant |= searchHasEnd
		args = append(args, opts.End)
	}
	args = append(args, opts.Limit)
	rows, err := q.search[variant].QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	hits := make([]storage.TextHit, 0, min(opts.Limit, 64))
	for rows.Next() {
		var h storage.TextHit
		if err := rows.Scan(&h.Key, &h.Score); err != nil {
			return nil, err
		}
		if len(h.Key) == 0 {
			return nil, fmt.Errorf("%w: full-text document with an empty key", storage.ErrCorrupt)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return hits, nil
}

// SearchText implements storage.TextSearcher: it returns the keys in
// [opts.Start, opts.End) whose committed document matches any of
// opts.Terms, and is in scope opts.Scope if set, by descending -bm25 score
// and then by key, from one consistent snapshot of the latest committed
// state.
func (s *Store) SearchText(ctx context.Context, opts storage.TextSearchOptions) ([]storage.TextHit, error) {
	if s.closed.Load() {
		return nil, s.closedErr()
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	hits, err := s.text.run(ctx, opts)
	if err != nil {
		return nil, s.readErr(fmt.Sprintf("text search [%q, %q)", opts.Start, opts.End), err)
	}
	return hits, nil
}

// TextRanking implements storage.TextSearcher.
func (s *Store) TextRanking() string { return textRanking }

// applyText keeps the full-text index equal to the latest text of each
// key written by wr: a set with Text indexes it in its scope, anything
// else drops the key's document.
func (w *writer) applyText(wr storage.Write) error {
	if wr.Delete || wr.Text == nil {
		return w.exec(w.textDrop, wr.Key)
	}
	if wr.TextScope < 0 || wr.TextScope > len(wr.Key) {
		return fmt.Errorf("%w: text scope length %d for a key of %d bytes", storage.ErrInvalid, wr.TextScope, len(wr.Key))
	}
	scope, err := w.textScope(wr.Key[:wr.TextScope:wr.TextScope])
	if err != nil {
		return err
	}
	first, last := scope<<textScopeShift, scope<<textScopeShift|textScopeDocsMax
	var id int64
	switch err := w.textDocGet.QueryRowContext(w.ctx, wr.Key).Scan(&id); {
	case err == nil && id >= first && id <= last:
		// Same scope: re-index under the same rowid.
		if err := w.exec(w.textPut, id, noNUL(*wr.Text)); err != nil {
			return fmt.Errorf("index document: %w", err)
		}
		return nil
	case err == nil:
		// Another scope: drop the document, and index it anew below.
		if err := w.exec(w.textDrop, wr.Key); err != nil {
			return fmt.Errorf("move document: %w", err)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("find document: %w", err)
	}
	if id, err = w.textNewID(first, last); err != nil {
		return err
	}
	if err := w.exec(w.textMap, id, wr.Key); err != nil {
		return fmt.Errorf("map document: %w", err)
	}
	if err := w.exec(w.textPut, id, noNUL(*wr.Text)); err != nil {
		return fmt.Errorf("index document: %w", err)
	}
	return nil
}

// textScope returns scope's number, numbering it if it is new. The empty
// scope always has one (the migration to version 3 numbers it).
func (w *writer) textScope(scope []byte) (int64, error) {
	var id int64
	err := w.textScopeGet.QueryRowContext(w.ctx, scope).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = w.textScopeAdd.QueryRowContext(w.ctx, scope).Scan(&id)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("number scope %q: %w", scope, err)
	case id < 0 || id >= textScopesMax:
		return 0, fmt.Errorf("%w: scope %q numbered %d, outside 0..%d", storage.ErrTooLarge, scope, id, textScopesMax-1)
	}
	return id, nil
}

// textNewID returns a free rowid in [first+1, last]: one past the
// highest taken, or, once the highest is last, the first gap.
func (w *writer) textNewID(first, last int64) (int64, error) {
	var top sql.NullInt64
	if err := w.textLast.QueryRowContext(w.ctx, first, last).Scan(&top); err != nil {
		return 0, fmt.Errorf("allocate document: %w", err)
	}
	switch {
	case !top.Valid || top.Int64 < first+1:
		return first + 1, nil
	case top.Int64 < last:
		return top.Int64 + 1, nil
	}
	// The scope's last rowid is taken: reuse a freed one.
	var id int64
	err := w.textLast.QueryRowContext(w.ctx, first+1, first+1).Scan(&top)
	switch {
	case err != nil:
	case !top.Valid:
		return first + 1, nil
	default:
		err = w.textGap.QueryRowContext(w.ctx, first+1, last).Scan(&id)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%w: scope has %d documents", storage.ErrTooLarge, textScopeDocsMax)
	case err != nil:
		return 0, fmt.Errorf("allocate document: %w", err)
	}
	return id, nil
}

// dropTextRange drops the documents of the keys in [start, end); a nil
// end means every key from start on.
func (w *writer) dropTextRange(start, end []byte) error {
	if end == nil {
		return w.exec(w.textDropFrom, start)
	}
	return w.exec(w.textDropRange, start, end)
}
