// Package postgres is the PostgreSQL storage backend: one table of
// (key BYTEA PRIMARY KEY, value BYTEA, version BIGINT, has_text BOOLEAN)
// and a sequence that numbers commits, shared by every process that opens
// the same database, plus the full-text index's table (text.go).
//
// Reads (Get, Scan) run as single statements outside any transaction. A
// commit is one SERIALIZABLE transaction: it re-runs the storage
// transaction's reads through that transaction (CommitRequest.Validate),
// takes one number from the sequence, and applies the range deletes and
// then the writes in one batched round trip. PostgreSQL's serialization
// failures and deadlocks surface as storage.ErrConflict, so several nodes
// may commit to one database concurrently and still see a single,
// serializable history. bytea compares byte-wise (memcmp, then length),
// which is the order of bytes.Compare, so scans return Go's key order.
//
// Versions are never reused, survive restarts and grow strictly for each
// key. Across different keys they follow the order in which commits drew
// them from the sequence: two commits in flight at once may become visible
// in the opposite order to their versions.
//
// Store implements storage.TextSearcher with PostgreSQL's full-text
// search: documents written with Txn.SetWithText are stored as tsvectors
// (to_tsvector('english', ...)) under a GIN index, in the same commit
// transaction as the pairs, and searches rank with ts_rank_cd (see
// text.go).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kelpie-ai/kelpie/storage"
)

// SchemaVersion is the version of the table layout this package creates
// and understands. Open refuses a database whose recorded schema version is
// newer, and migrates one that is older. Version 2 added the full-text
// table, version 3 document scopes.
const SchemaVersion = 3

// Object names. They are unqualified, so a search_path in the connection
// URL selects the schema they live in.
const (
	kvTable    = "kelpie_kv"
	seqName    = "kelpie_version"
	metaTable  = "kelpie_meta"
	schemaKey  = "schema_version"
	lockID     = int64(0x6b656c7069650001) // "kelpie" + 1: the schema-migration advisory lock
	cleanupTTL = 5 * time.Second           // bound on rollbacks run after the caller's ctx is done
)

// Store is a storage.Store and storage.Backend backed by a PostgreSQL
// database. It is safe for concurrent use; many Stores, in one process or
// many, may share one database.
type Store struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
	// afterValidate, if set (by tests), runs inside Commit between a
	// successful validation and the writes.
	afterValidate func()
	// observer, if set, is told of each commit.
	observer atomic.Pointer[storage.CommitObserver]
}

// backendName names this backend to a storage.CommitObserver.
const backendName = "postgres"

// SetCommitObserver has o told of every commit from now on (each one
// transaction, synchronously durable, so also one batch of one request);
// nil stops it.
func (s *Store) SetCommitObserver(o storage.CommitObserver) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&o)
}

var (
	_ storage.Store        = (*Store)(nil)
	_ storage.Backend      = (*Store)(nil)
	_ storage.TextSearcher = (*Store)(nil)
)

// Open connects to the database at url (a postgres:// URL or key=value
// connection string, as pgx accepts) and creates the schema if it is
// absent. Creating the schema is idempotent and serialized by an advisory
// lock, so several processes may Open the same database at once.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{pool: pool}, nil
}

// migrate creates the schema, or brings an older one up to SchemaVersion,
// under a transaction-scoped advisory lock. A database whose recorded
// version is newer is refused before anything is changed.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: create schema: %w", err)
	}
	defer rollback(tx)
	// Version 1, and the meta row recording a fresh database's version.
	// CREATE ... IF NOT EXISTS leaves an existing database as it is.
	stmts := []string{
		`SELECT pg_advisory_xact_lock($1)`,
		`CREATE TABLE IF NOT EXISTS ` + kvTable + ` (
			key     BYTEA  PRIMARY KEY,
			value   BYTEA  NOT NULL,
			version BIGINT NOT NULL
		)`,
		`CREATE SEQUENCE IF NOT EXISTS ` + seqName + ` AS BIGINT MINVALUE 1 START WITH 1`,
		`CREATE TABLE IF NOT EXISTS ` + metaTable + ` (
			name  TEXT   PRIMARY KEY,
			value BIGINT NOT NULL
		)`,
		`INSERT INTO ` + metaTable + ` (name, value) VALUES ('` + schemaKey + `', 1) ON CONFLICT (name) DO NOTHING`,
	}
	args := [][]any{{lockID}, nil, nil, nil, nil}
	for i, q := range stmts {
		if _, err := tx.Exec(ctx, q, args[i]...); err != nil {
			return fmt.Errorf("postgres: create schema: %w", err)
		}
	}
	var have int64
	if err := tx.QueryRow(ctx, `SELECT value FROM `+metaTable+` WHERE name = '`+schemaKey+`'`).Scan(&have); err != nil {
		return fmt.Errorf("postgres: read schema version: %w", err)
	}
	if have > SchemaVersion {
		return fmt.Errorf("postgres: database schema version %d is newer than this binary supports (%d)", have, SchemaVersion)
	}
	if have < 1 {
		return fmt.Errorf("%w: postgres: database schema version %d", storage.ErrCorrupt, have)
	}
	for ; have < SchemaVersion; have++ {
		for _, q := range migrations[have-1] {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("postgres: migrate schema from version %d to %d: %w", have, have+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE `+metaTable+` SET value = $1 WHERE name = '`+schemaKey+`'`, have+1); err != nil {
			return fmt.Errorf("postgres: record schema version %d: %w", have+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: create schema: %w", err)
	}
	return nil
}

// migrations[i] takes the schema from version i+1 to i+2; migrate records
// the new version after it. The array's length makes a version bump
// without a migration a compile error.
var migrations = [SchemaVersion - 1][]string{
	// 1 -> 2: the full-text index (text.go). has_text marks the pairs
	// that have a document; row triggers, which fire only for those,
	// delete a pair's document when the pair is overwritten or deleted.
	{
		`ALTER TABLE ` + kvTable + ` ADD COLUMN has_text BOOLEAN NOT NULL DEFAULT false`,
		`CREATE TABLE ` + textTable + ` (
			key   BYTEA    NOT NULL,
			chunk SMALLINT NOT NULL,
			doc   TSVECTOR NOT NULL,
			PRIMARY KEY (key, chunk)
		)`,
		`CREATE INDEX ` + textTable + `_doc ON ` + textTable + ` USING GIN (doc)`,
		// SET search_path FROM CURRENT: the function finds the table in
		// the schema it was created in, whatever the caller's search_path.
		`CREATE FUNCTION ` + textDropFunc + `() RETURNS trigger LANGUAGE plpgsql
			SET search_path FROM CURRENT AS $$
		BEGIN
			DELETE FROM ` + textTable + ` WHERE key = OLD.key;
			RETURN NULL;
		END
		$$`,
		`CREATE TRIGGER ` + textDropFunc + `_on_update AFTER UPDATE ON ` + kvTable + `
			FOR EACH ROW WHEN (OLD.has_text) EXECUTE FUNCTION ` + textDropFunc + `()`,
		`CREATE TRIGGER ` + textDropFunc + `_on_delete AFTER DELETE ON ` + kvTable + `
			FOR EACH ROW WHEN (OLD.has_text) EXECUTE FUNCTION ` + textDropFunc + `()`,
	},
	// 2 -> 3: document scopes (text.go). Existing documents get none
	// (NULL), and the partial index leaves them out.
	{
		`ALTER TABLE ` + textTable + ` ADD COLUMN scope BYTEA`,
		`CREATE INDEX ` + textTable + `_scope ON ` + textTable + ` (scope) WHERE scope IS NOT NULL`,
	},
}

// Begin implements storage.Store.
func (s *Store) Begin(ctx context.Context) (*storage.Txn, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	return storage.NewTxn(s), nil
}

// Close implements storage.Store and storage.Backend. It waits for
// operations in flight to return their connections; later operations fail
// with storage.ErrClosed. Closing twice is not an error.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Get implements storage.Reader. It reads the latest committed value.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	if s.closed.Load() {
		return nil, 0, false, storage.ErrClosed
	}
	v, ver, found, err := get(ctx, s.pool, key)
	if err != nil {
		return nil, 0, false, s.wrap("get", err)
	}
	return v, ver, found, nil
}

// Scan implements storage.Reader. It reads the latest committed values.
func (s *Store) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	out, err := scan(ctx, s.pool, opts)
	if err != nil {
		return nil, s.wrap("scan", err)
	}
	return out, nil
}

// Commit implements storage.Backend: in one SERIALIZABLE transaction it
// validates req through that transaction and, if req has writes, applies
// its range deletes and then its writes under one new version from the
// shared sequence. A serialization failure or deadlock is reported as
// storage.ErrConflict; ErrConflict and ErrFenced from validation are
// returned unchanged.
func (s *Store) Commit(ctx context.Context, req *storage.CommitRequest) (err error) {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if len(req.Reads) == 0 && len(req.Scans) == 0 && len(req.Fences) == 0 && !req.HasWrites() {
		return nil // nothing to check, nothing to write
	}
	if o := s.observer.Load(); o != nil {
		began := time.Now()
		done := (*o).Commit(ctx, backendName)
		defer func() {
			done(err)
			if err == nil {
				(*o).Batch(backendName, 1, time.Since(began))
			}
		}()
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return s.wrap("commit: begin", err)
	}
	defer rollback(tx)
	if err := req.Validate(ctx, txReader{tx}); err != nil {
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrFenced) {
			return err
		}
		return s.wrap("commit: validate", err)
	}
	if s.afterValidate != nil {
		s.afterValidate()
	}
	if req.HasWrites() {
		if err := apply(ctx, tx, req); err != nil {
			return s.wrap("commit: apply", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// apply sends the version bump, the range deletes and the writes as one
// batch (one round trip once the statements are prepared).
func apply(ctx context.Context, tx pgx.Tx, req *storage.CommitRequest) error {
	b := &pgx.Batch{}
	// The transaction's one version; the upsert below reads it back with
	// currval, which is private to this connection.
	b.Queue(`SELECT nextval('` + seqName + `')`)
	// Deleting or overwriting a pair with a document deletes the document
	// (the triggers of migration 1 -> 2), so only new documents are written
	// here, and a commit without documents never touches the text table.
	for _, r := range req.RangeDeletes {
		start := r.Start
		if start == nil {
			start = []byte{} // the least key; NULL would match nothing
		}
		if r.End == nil {
			b.Queue(`DELETE FROM `+kvTable+` WHERE key >= $1`, start)
		} else {
			b.Queue(`DELETE FROM `+kvTable+` WHERE key >= $1 AND key < $2`, start, r.End)
		}
	}
	var delKeys, setKeys, setVals [][]byte
	var setText []bool
	var docs textRows
	for _, w := range req.Writes {
		if w.Delete {
			delKeys = append(delKeys, w.Key)
			continue
		}
		value := w.Value
		if value == nil {
			value = []byte{}
		}
		setKeys, setVals, setText = append(setKeys, w.Key), append(setVals, value), append(setText, w.Text != nil)
		if w.Text != nil {
			if w.TextScope < 0 || w.TextScope > len(w.Key) {
				return fmt.Errorf("%w: text scope length %d for a key of %d bytes", storage.ErrInvalid, w.TextScope, len(w.Key))
			}
			docs.add(w.Key, w.TextScope, *w.Text)
		}
	}
	if len(delKeys) > 0 {
		b.Queue(`DELETE FROM `+kvTable+` WHERE key = ANY($1::bytea[])`, delKeys)
	}
	if len(setKeys) > 0 {
		b.Queue(`INSERT INTO `+kvTable+` (key, value, version, has_text)
			SELECT k, v, currval('`+seqName+`'), t FROM unnest($1::bytea[], $2::bytea[], $3::boolean[]) AS w(k, v, t)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, has_text = excluded.has_text`,
			setKeys, setVals, setText)
	}
	if len(docs.keys) > 0 {
		b.Queue(textInsertSQL, docs.keys, docs.chunks, docs.texts, docs.scopes)
	}
	return tx.SendBatch(ctx, b).Close()
}

// rollback ends tx if it is still open. It runs after the caller's context
// may have been cancelled, so it uses its own short deadline.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTTL)
	defer cancel()
	_ = tx.Rollback(ctx) // pgx.ErrTxClosed after a commit; other errors close the connection
}

// wrap classifies a database error: serialization failures and deadlocks
// become storage.ErrConflict, and any error after Close wraps
// storage.ErrClosed.
func (s *Store) wrap(op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && isConflict(pgErr.Code) {
		return fmt.Errorf("%w: postgres: %s: %w", storage.ErrConflict, op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("%w: postgres: %s: %w", storage.ErrClosed, op, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isConflict reports whether SQLSTATE code means "retry the transaction":
// serialization_failure or deadlock_detected.
func isConflict(code string) bool {
	return code == "40001" || code == "40P01"
}

// querier is what reads need: a pool, or the commit's transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// txReader is the storage.Reader Validate uses: it reads through the
// commit's SERIALIZABLE transaction.
type txReader struct{ tx pgx.Tx }

func (r txReader) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	return get(ctx, r.tx, key)
}

func (r txReader) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	return scan(ctx, r.tx, opts)
}

func get(ctx context.Context, q querier, key []byte) ([]byte, storage.Version, bool, error) {
	var (
		value   []byte
		version int64
	)
	err := q.QueryRow(ctx, `SELECT value, version FROM `+kvTable+` WHERE key = $1`, key).Scan(&value, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	if value == nil {
		value = []byte{}
	}
	return value, storage.Version(version), true, nil
}

func scan(ctx context.Context, q querier, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if opts.Limit <= 0 {
		return nil, fmt.Errorf("%w: scan limit %d must be positive", storage.ErrInvalid, opts.Limit)
	}
	if opts.Limit > storage.ScanLimitMax {
		return nil, fmt.Errorf("%w: scan limit %d exceeds %d", storage.ErrTooLarge, opts.Limit, storage.ScanLimitMax)
	}
	var (
		sb   strings.Builder
		args []any
		cond []string
	)
	sb.WriteString(`SELECT key, value, version FROM ` + kvTable)
	if opts.Start != nil {
		args = append(args, opts.Start)
		cond = append(cond, fmt.Sprintf("key >= $%d", len(args)))
	}
	if opts.End != nil {
		args = append(args, opts.End)
		cond = append(cond, fmt.Sprintf("key < $%d", len(args)))
	}
	if len(cond) > 0 {
		sb.WriteString(" WHERE " + strings.Join(cond, " AND "))
	}
	if opts.Reverse {
		sb.WriteString(" ORDER BY key DESC")
	} else {
		sb.WriteString(" ORDER BY key")
	}
	args = append(args, int64(opts.Limit))
	fmt.Fprintf(&sb, " LIMIT $%d", len(args))

	rows, err := q.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]storage.VersionedKV, 0, min(opts.Limit, 64))
	for rows.Next() {
		var (
			kv      storage.VersionedKV
			version int64
		)
		if err := rows.Scan(&kv.Key, &kv.Value, &version); err != nil {
			return nil, err
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		kv.Version = storage.Version(version)
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
