package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/storage"
)

// Full-text index (storage.TextSearcher), schema version 2.
//
// Documents live in an FTS5 table, text_fts, tokenized with 'porter
// unicode61' (Unicode word splitting, case folding, diacritics removed,
// Porter stemming; no stopwords). The table is contentless: it holds the
// index, not the text. text_doc maps each indexed key to its document's
// rowid, and a trigger deletes the document when its mapping row goes, so
// dropping a key's or a range's documents is one DELETE on text_doc. The
// writer maintains both inside each request's SAVEPOINT, so the index
// commits, rolls back and fsyncs together with the pairs.

// Full-text objects and ranking.
const (
	// textDocTable maps keys to document rowids.
	textDocTable = "text_doc"
	// textFTSTable is the FTS5 index.
	textFTSTable = "text_fts"
	// textRanking is what TextRanking reports: scores are -bm25(), so
	// higher is better.
	textRanking = "sqlite-fts5-bm25"
)

// The writer's full-text statements.
const (
	// textMapSQL returns the rowid of key's document, allocating one if
	// key has none.
	textMapSQL = `INSERT INTO ` + textDocTable + ` (key) VALUES (?) ` +
		`ON CONFLICT (key) DO UPDATE SET key = excluded.key RETURNING id`
	// textPutSQL indexes (or re-indexes) a document under a rowid.
	textPutSQL = `INSERT OR REPLACE INTO ` + textFTSTable + ` (rowid, body) VALUES (?, ?)`
	// textDrop*SQL drop the documents of a key or a range (the trigger
	// deletes from text_fts).
	textDropSQL      = `DELETE FROM ` + textDocTable + ` WHERE key = ?`
	textDropRangeSQL = `DELETE FROM ` + textDocTable + ` WHERE key >= ? AND key < ?`
	textDropFromSQL  = `DELETE FROM ` + textDocTable + ` WHERE key >= ?`
)

// Search variants, indexed like scans: which key bounds are present.
const (
	searchHasStart = 1 << iota
	searchHasEnd
	searchVariants
)

// textQueries are the prepared search statements of the read pool.
type textQueries struct {
	search [searchVariants]*sql.Stmt
}

// searchSQL returns the search statement for one variant. Its parameters
// are the FTS5 query, the present bounds, and the limit. Hits order by
// score, best first, then by key; keys compare with memcmp, which is
// bytes.Compare's order.
func searchSQL(variant int) string {
	var b strings.Builder
	b.WriteString(`SELECT d.key, -bm25(` + textFTSTable + `) AS score FROM ` + textFTSTable +
		` JOIN ` + textDocTable + ` AS d ON d.id = ` + textFTSTable + `.rowid WHERE ` + textFTSTable + ` MATCH ?`)
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
	args := make([]any, 0, 4)
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
// opts.Terms, by descending -bm25 score and then by key, from one
// consistent snapshot of the latest committed state.
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
// key written by wr: a set with Text indexes it, anything else drops the
// key's document.
func (w *writer) applyText(wr storage.Write) error {
	if wr.Delete || wr.Text == nil {
		return w.exec(w.textDrop, wr.Key)
	}
	var id int64
	if err := w.textMap.QueryRowContext(w.ctx, wr.Key).Scan(&id); err != nil {
		return fmt.Errorf("map document: %w", err)
	}
	if err := w.exec(w.textPut, id, noNUL(*wr.Text)); err != nil {
		return fmt.Errorf("index document: %w", err)
	}
	return nil
}

// dropTextRange drops the documents of the keys in [start, end); a nil
// end means every key from start on.
func (w *writer) dropTextRange(start, end []byte) error {
	if end == nil {
		return w.exec(w.textDropFrom, start)
	}
	return w.exec(w.textDropRange, start, end)
}
