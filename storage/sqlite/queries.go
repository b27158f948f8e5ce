package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/kelpie-ai/kelpie/storage"
)

// preparer is what prepares statements: the read pool (*sql.DB) or the
// writer's connection (*sql.Conn).
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Scan variants, indexed by scanIndex.
const (
	scanHasStart = 1 << iota
	scanHasEnd
	scanReverse
	scanVariants
)

// queries are the prepared read statements of one connection or pool.
type queries struct {
	getStmt   *sql.Stmt
	scanStmts [scanVariants]*sql.Stmt
}

// scanSQL returns the statement for one scan variant. Keys are BLOBs and
// compared with memcmp (no COLLATE), which is bytes.Compare's order; a
// missing bound is left out of the WHERE clause so SQLite can still range
// over the primary key.
func scanSQL(variant int) string {
	var b strings.Builder
	b.WriteString("SELECT key, value, version FROM kv")
	var conds []string
	if variant&scanHasStart != 0 {
		conds = append(conds, "key >= ?")
	}
	if variant&scanHasEnd != 0 {
		conds = append(conds, "key < ?")
	}
	if len(conds) > 0 {
		b.WriteString(" WHERE " + strings.Join(conds, " AND "))
	}
	if variant&scanReverse != 0 {
		b.WriteString(" ORDER BY key DESC")
	} else {
		b.WriteString(" ORDER BY key ASC")
	}
	b.WriteString(" LIMIT ?")
	return b.String()
}

func prepareQueries(ctx context.Context, p preparer) (queries, error) {
	var q queries
	var err error
	if q.getStmt, err = p.PrepareContext(ctx, "SELECT value, version FROM kv WHERE key = ?"); err != nil {
		return q, fmt.Errorf("prepare get: %w", err)
	}
	for i := range q.scanStmts {
		if q.scanStmts[i], err = p.PrepareContext(ctx, scanSQL(i)); err != nil {
			q.close()
			return q, fmt.Errorf("prepare scan: %w", err)
		}
	}
	return q, nil
}

func (q *queries) close() {
	if q.getStmt != nil {
		q.getStmt.Close()
	}
	for _, st := range q.scanStmts {
		if st != nil {
			st.Close()
		}
	}
}

func (q *queries) get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	var value []byte
	var version int64
	switch err := q.getStmt.QueryRowContext(ctx, key).Scan(&value, &version); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, 0, false, nil
	case err != nil:
		return nil, 0, false, err
	}
	ver, err := checkVersion(key, version)
	if err != nil {
		return nil, 0, false, err
	}
	if value == nil {
		value = []byte{} // the driver reads an empty BLOB as nil
	}
	return value, ver, true, nil
}

func (q *queries) scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	variant := 0
	args := make([]any, 0, 3)
	if opts.Start != nil {
		variant |= scanHasStart
		args = append(args, opts.Start)
	}
	if opts.End != nil {
		variant |= scanHasEnd
		args = append(args, opts.End)
	}
	if opts.Reverse {
		variant |= scanReverse
	}
	args = append(args, opts.Limit)
	rows, err := q.scanStmts[variant].QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]storage.VersionedKV, 0, min(opts.Limit, 64))
	for rows.Next() {
		var kv storage.VersionedKV
		var version int64
		if err := rows.Scan(&kv.Key, &kv.Value, &version); err != nil {
			return nil, err
		}
		if kv.Version, err = checkVersion(kv.Key, version); err != nil {
			return nil, err
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkVersion rejects a stored version that cannot have been written: 0
// means "absent" to the transaction logic, so trusting it would hide
// conflicts.
func checkVersion(key []byte, v int64) (storage.Version, error) {
	if v <= 0 {
		return 0, fmt.Errorf("%w: key %q has stored version %d", storage.ErrCorrupt, key, v)
	}
	return storage.Version(v), nil
}
