package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kelpie-ai/kelpie/storage"
)

// commitCall is one Commit waiting for the writer.
type commitCall struct {
	ctx  context.Context
	req  *storage.CommitRequest
	size int        // bytes of keys, values and texts written
	done chan error // buffered; receives the outcome once

	// Set by the writer while it runs the batch.
	err     error
	applied bool // validated and written inside the batch's transaction
}

// writer owns the single read-write connection. After Open only the
// writer goroutine uses it.
type writer struct {
	db   *sql.DB
	conn *sql.Conn
	ctx  context.Context // for the writer's own statements; never cancelled

	reads queries // reads inside the write transaction, for Validate

	begin, commit, rollback          *sql.Stmt
	savepoint, release, rollbackTo   *sql.Stmt
	lastVersion, setLastVersion      *sql.Stmt
	upsert, del, delRange, delFromOn *sql.Stmt

	// Full-text index maintenance (text.go).
	textScopeGet, textScopeAdd, textDocGet, textLast, textGap *sql.Stmt
	textMap, textPut, textDrop, textDropRange, textDropFrom   *sql.Stmt
}

// openWriter opens the write connection, sets its durability pragmas,
// migrates the schema and prepares the writer's statements.
func openWriter(ctx context.Context, abs string) (w *writer, err error) {
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	w = &writer{db: db, ctx: context.Background()}
	defer func() {
		if err != nil {
			w.close()
			err = fmt.Errorf("sqlite: open %s: %w", abs, err)
		}
	}()
	if w.conn, err = db.Conn(ctx); err != nil {
		return w, err
	}
	if _, err := identify(ctx, w.conn); err != nil {
		return w, err
	}
	if err := configureWriter(ctx, w.conn); err != nil {
		return w, err
	}
	if err := migrate(ctx, w.conn); err != nil {
		return w, err
	}
	if w.reads, err = prepareQueries(ctx, w.conn); err != nil {
		return w, err
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT request"},
		{&w.release, "RELEASE request"},
		{&w.rollbackTo, "ROLLBACK TO request"},
		{&w.lastVersion, "SELECT value FROM meta WHERE name = '" + lastVersionName + "'"},
		{&w.setLastVersion, "UPDATE meta SET value = ? WHERE name = '" + lastVersionName + "'"},
		{&w.upsert, "INSERT INTO kv (key, value, version) VALUES (?, ?, ?) " +
			"ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version"},
		{&w.del, "DELETE FROM kv WHERE key = ?"},
		{&w.delRange, "DELETE FROM kv WHERE key >= ? AND key < ?"},
		{&w.delFromOn, "DELETE FROM kv WHERE key >= ?"},
		{&w.textScopeGet, textScopeGetSQL},
		{&w.textScopeAdd, textScopeAddSQL},
		{&w.textDocGet, textDocGetSQL},
		{&w.textLast, textLastSQL},
		{&w.textGap, textGapSQL},
		{&w.textMap, textMapSQL},
		{&w.textPut, textPutSQL},
		{&w.textDrop, textDropSQL},
		{&w.textDropRange, textDropRangeSQL},
		{&w.textDropFrom, textDropFromSQL},
	} {
		if *p.st, err = w.conn.PrepareContext(ctx, p.sql); err != nil {
			return w, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
	}
	return w, nil
}

// close releases the writer's statements, connection and pool.
func (w *writer) close() error {
	w.reads.close()
	for _, st := range []*sql.Stmt{
		w.begin, w.commit, w.rollback, w.savepoint, w.release, w.rollbackTo,
		w.lastVersion, w.setLastVersion, w.upsert, w.del, w.delRange, w.delFromOn,
		w.textScopeGet, w.textScopeAdd, w.textDocGet, w.textLast, w.textGap,
		w.textMap, w.textPut, w.textDrop, w.textDropRange, w.textDropFrom,
	} {
		if st != nil {
			st.Close()
		}
	}
	var errConn error
	if w.conn != nil {
		errConn = w.conn.Close()
	}
	return errors.Join(errConn, w.db.Close())
}

// Get implements storage.Reader inside the write transaction, so Validate
// sees the requests applied earlier in the same batch.
func (w *writer) Get(_ context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	return w.reads.get(w.ctx, key)
}

// Scan implements storage.Reader inside the write transaction.
func (w *writer) Scan(_ context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if err := checkLimit(opts.Limit); err != nil {
		return nil, err
	}
	return w.reads.scan(w.ctx, opts)
}

func (w *writer) exec(st *sql.Stmt, args ...any) error {
	_, err := st.ExecContext(w.ctx, args...)
	return err
}

// apply writes req under version: range deletes first, then sets and
// deletes, each with its full-text document (text.go).
func (w *writer) apply(req *storage.CommitRequest, version storage.Version) error {
	for _, r := range req.RangeDeletes {
		start := r.Start
		if start == nil {
			start = []byte{} // the least key; nil would bind as NULL and match nothing
		}
		var err error
		if r.End == nil {
			err = w.exec(w.delFromOn, start)
		} else {
			err = w.exec(w.delRange, start, r.End)
		}
		if err == nil {
			err = w.dropTextRange(start, r.End)
		}
		if err != nil {
			return fmt.Errorf("delete range [%q, %q): %w", r.Start, r.End, err)
		}
	}
	for _, wr := range req.Writes {
		if wr.Delete {
			if err := w.exec(w.del, wr.Key); err != nil {
				return fmt.Errorf("delete %q: %w", wr.Key, err)
			}
		} else {
			value := wr.Value
			if value == nil {
				value = []byte{} // nil would bind as NULL
			}
			if err := w.exec(w.upsert, wr.Key, value, int64(version)); err != nil {
				return fmt.Errorf("set %q: %w", wr.Key, err)
			}
		}
		if err := w.applyText(wr); err != nil {
			return fmt.Errorf("full-text index of %q: %w", wr.Key, err)
		}
	}
	return nil
}

// writeLoop is the writer goroutine: it gathers the waiting requests into
// batches and runs each in one SQLite transaction, until Close.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	batch := make([]*commitCall, 0, batchRequestsMax)
	for {
		select {
		case c := <-s.requests:
			batch = append(batch[:0], c)
		case <-s.quit:
			return
		}
		size := batch[0].size
	gather:
		for len(batch) < batchRequestsMax && size < batchBytesMax {
			select {
			case c := <-s.requests:
				batch = append(batch, c)
				size += c.size
			default:
				break gather
			}
		}
		s.started.Add(1)
		o := s.observer.Load()
		var began time.Time
		if o != nil {
			began = time.Now()
		}
		synced := s.batches.Load()
		s.runBatch(batch)
		if o != nil && s.batches.Load() != synced {
			(*o).Batch(backendName, len(batch), time.Since(began))
		}
		for _, c := range batch {
			c.done <- c.err
		}
		clear(batch) // drop references to finished requests
	}
}

// runBatch validates and applies batch in one transaction and sets each
// request's err. Requests rejected by validation keep ErrConflict or
// ErrFenced whatever happens to the rest of the batch: nothing of theirs
// was written.
func (s *Store) runBatch(batch []*commitCall) {
	if errp := s.failed.Load(); errp != nil {
		for _, c := range batch {
			c.err = *errp
		}
		return
	}
	w := s.w
	fail := func(err error) {
		for _, c := range batch {
			if c.err == nil {
				c.err = err
			}
		}
	}
	if err := w.exec(w.begin); err != nil {
		fail(fmt.Errorf("sqlite: begin batch on %s: %w", s.path, err))
		return
	}
	abort := func(err error) {
		fail(err)
		if rerr := w.exec(w.rollback); rerr != nil {
			s.poison(fmt.Errorf("rollback after %v: %w", err, rerr))
		}
	}
	var base int64
	if err := w.lastVersion.QueryRowContext(w.ctx).Scan(&base); err != nil {
		abort(fmt.Errorf("sqlite: read last version on %s: %w", s.path, err))
		return
	}
	if base < 0 {
		abort(fmt.Errorf("%w: sqlite store %s: last version %d", storage.ErrCorrupt, s.path, base))
		return
	}
	next := storage.Version(base)
	applied := 0
	for _, c := range batch {
		if err := s.runRequest(c, &next); err != nil {
			abort(err)
			return
		}
		if c.applied {
			applied++
		}
	}
	if next != storage.Version(base) {
		if err := w.exec(w.setLastVersion, int64(next)); err != nil {
			abort(fmt.Errorf("sqlite: record last version %d on %s: %w", next, s.path, err))
			return
		}
	}
	if err := w.exec(w.commit); err != nil {
		// SQLite may or may not have rolled back; make sure it has. The
		// requests' outcome is unknown and the file's durability in doubt.
		w.exec(w.rollback)
		err = fmt.Errorf("sqlite: commit batch of %d requests on %s: %w", len(batch), s.path, err)
		fail(err)
		s.poison(err)
		return
	}
	s.batches.Add(1)
	s.applied.Add(uint64(applied))
}

// runRequest runs one request of a batch inside its own savepoint. A
// validation failure (ErrConflict, ErrFenced) is the request's own outcome
// and goes in c.err; a returned error aborts the whole batch.
func (s *Store) runRequest(c *commitCall, next *storage.Version) error {
	w := s.w
	if err := w.exec(w.savepoint); err != nil {
		return fmt.Errorf("sqlite: savepoint on %s: %w", s.path, err)
	}
	verr := c.req.Validate(context.WithoutCancel(c.ctx), w)
	if verr != nil {
		if !errors.Is(verr, storage.ErrConflict) && !errors.Is(verr, storage.ErrFenced) {
			return fmt.Errorf("sqlite: validate on %s: %w", s.path, verr)
		}
		if err := w.exec(w.rollbackTo); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint on %s: %w", s.path, err)
		}
		if err := w.exec(w.release); err != nil {
			return fmt.Errorf("sqlite: release savepoint on %s: %w", s.path, err)
		}
		c.err = verr
		return nil
	}
	if c.req.HasWrites() {
		if *next >= math.MaxInt64 { // SQLite integers are signed
			return fmt.Errorf("sqlite: version space exhausted on %s", s.path)
		}
		*next++
		if err := w.apply(c.req, *next); err != nil {
			return fmt.Errorf("sqlite: apply on %s: %w", s.path, err)
		}
	}
	if err := w.exec(w.release); err != nil {
		return fmt.Errorf("sqlite: release savepoint on %s: %w", s.path, err)
	}
	c.applied = true
	return nil
}

// poison stops the store accepting commits: after a failed COMMIT (or a
// failed ROLLBACK) the connection's and the file's state are in doubt.
func (s *Store) poison(cause error) {
	err := fmt.Errorf("%w: sqlite store %s stopped accepting commits after a failed write transaction; reopen it: %w",
		storage.ErrClosed, s.path, cause)
	s.failed.CompareAndSwap(nil, &err)
}
