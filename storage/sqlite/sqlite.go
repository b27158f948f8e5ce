// Package sqlite is Kelpie's embedded, default storage backend: one SQLite
// file (via the pure-Go driver modernc.org/sqlite) behind the shared
// optimistic transaction of package storage.
//
// # Layout
//
// Pairs live in one STRICT, WITHOUT ROWID table kv(key BLOB PRIMARY KEY,
// value BLOB NOT NULL, version INTEGER NOT NULL). SQLite orders BLOBs with
// memcmp and then by length, exactly as bytes.Compare does, so range scans
// need no collation and match every other backend. A meta table holds the
// last committed version, so versions keep growing across a close and
// reopen (and across processes); PRAGMA user_version records the schema
// version so later releases can migrate the file.
//
// # Full-text index
//
// Store implements storage.TextSearcher with SQLite's FTS5: a contentless
// FTS5 table (tokenizer 'porter unicode61') holds the documents written
// with Txn.SetWithText, and a table text_doc maps keys to their documents.
// The writer maintains both in the same SAVEPOINT as the pairs, so a
// document commits, rolls back and becomes durable with its key's value.
// Searches run on the read pool, ranked by BM25 (see text.go).
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: SQLite syncs the WAL
// before a COMMIT returns, so a commit this package acknowledges survives a
// process kill or a power loss. Open also syncs the parent directory when it
// creates the file.
//
// # Concurrency and group commit
//
// Reads (Get, Scan, SearchText) go to a pool of query-only connections; in WAL mode
// they read a consistent snapshot and never wait for the writer. All writes
// go through one writer goroutine that owns the single read-write
// connection. Commit hands its request to the writer over a channel and
// waits for the outcome. The writer takes every request waiting (up to
// batchRequestsMax requests or batchBytesMax bytes) into one SQLite
// transaction (BEGIN IMMEDIATE). For each request it opens a SAVEPOINT,
// validates the request with a reader bound to that transaction (so it sees
// the requests before it in the same batch), and either applies the writes
// under the next version and RELEASEs the savepoint, or rolls back to it and
// records ErrConflict or ErrFenced for that request alone. One COMMIT, and
// so one fsync, then makes the whole batch durable; only after it succeeds
// does any applied request learn that it committed. If the COMMIT fails,
// every applied request in the batch gets the error, and because the state
// of the file is then in doubt (a failed fsync cannot be retried) the store
// stops accepting commits until it is closed and opened again.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kelpie-ai/kelpie/storage"
)

// Tuning.
const (
	// busyTimeoutMillis is how long a connection waits for a lock another
	// connection (or process) holds before failing with SQLITE_BUSY.
	busyTimeoutMillis = 10_000
	// readConnsMin is the smallest read pool; the pool is
	// max(readConnsMin, GOMAXPROCS) connections.
	readConnsMin = 4
	// batchRequestsMax bounds the commit requests one SQLite transaction
	// (one fsync) carries.
	batchRequestsMax = 256
	// batchBytesMax bounds the keys, values and texts one batch writes;
	// the writer stops gathering requests once a batch reaches it (a
	// single request may exceed it, up to storage.TxnBytesMax).
	batchBytesMax = 64 << 20
	// dirPerm is the mode of directories Open creates.
	dirPerm = 0o750
)

// Store is a storage.Store and storage.Backend kept in one SQLite file.
// It is safe for concurrent use. Create it with Open; release it with
// Close.
type Store struct {
	path string

	readDB *sql.DB     // query-only pool for Get, Scan and SearchText
	reads  queries     // prepared on readDB
	text   textQueries // prepared on readDB
	w      *writer     // owned by the writer goroutine after Open
	closed atomic.Bool

	requests   chan *commitCall // unbuffered: a send is the hand-off
	quit       chan struct{}    // closed by Close
	writerDone chan struct{}    // closed when the writer goroutine exits
	closeOnce  sync.Once
	closeErr   error

	// failed is set (once) by the writer when a COMMIT fails; from then on
	// every commit returns it.
	failed atomic.Pointer[error]

	// Counters, for tests and diagnostics.
	started atomic.Uint64 // batches the writer has taken
	batches atomic.Uint64 // SQLite transactions committed (fsyncs)
	applied atomic.Uint64 // requests committed

	// observer, if set, is told of each commit and each batch.
	observer atomic.Pointer[storage.CommitObserver]
}

// backendName names this backend to a storage.CommitObserver.
const backendName = "sqlite"

// SetCommitObserver has o told of every commit request and every batch
// (one SQLite transaction, one fsync) from now on; nil stops it.
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

// Open opens the SQLite store at path, creating the file, and any missing
// parent directories, if needed. The file is migrated to the current schema
// version; a file written by a newer schema, or one that is not a Kelpie
// store, is refused.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: sqlite: empty database path", storage.ErrInvalid)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resolve path %q: %w", path, err)
	}
	created, err := prepareFile(abs)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()

	w, err := openWriter(ctx, abs)
	if err != nil {
		return nil, err
	}
	if created {
		// The file's directory entry must be durable before any commit is
		// acknowledged. SQLite syncs the directory when it creates the WAL,
		// not when it creates the main file.
		if err := syncDir(filepath.Dir(abs)); err != nil {
			w.close()
			return nil, err
		}
	}

	readDB, err := sql.Open("sqlite", dsn(abs, "_query_only=1"))
	if err != nil {
		w.close()
		return nil, fmt.Errorf("sqlite: open read pool on %s: %w", abs, err)
	}
	readConns := max(readConnsMin, runtime.GOMAXPROCS(0))
	readDB.SetMaxOpenConns(readConns)
	readDB.SetMaxIdleConns(readConns)
	reads, err := prepareQueries(ctx, readDB)
	var text textQueries
	if err == nil {
		text, err = prepareTextQueries(ctx, readDB)
	}
	if err == nil {
		err = readDB.PingContext(ctx)
	}
	if err != nil {
		text.close()
		reads.close()
		readDB.Close()
		w.close()
		return nil, fmt.Errorf("sqlite: prepare read pool on %s: %w", abs, err)
	}

	s := &Store{
		path:       abs,
		readDB:     readDB,
		reads:      reads,
		text:       text,
		w:          w,
		requests:   make(chan *commitCall),
		quit:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	go s.writeLoop()
	return s, nil
}

// prepareFile creates abs's parent directories as needed and reports
// whether the database file does not exist yet (SQLite will create it).
// Every directory it creates is made durable in its parent.
func prepareFile(abs string) (created bool, err error) {
	dir := filepath.Dir(abs)
	// Find the deepest existing ancestor, so the new directories can be
	// synced into their parents afterwards.
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("sqlite: stat %s: %w", d, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) > 0 {
		if err := os.MkdirAll(dir, dirPerm); err != nil {
			return false, fmt.Errorf("sqlite: create directory %s: %w", dir, err)
		}
		for _, d := range missing {
			if err := syncDir(filepath.Dir(d)); err != nil {
				return false, err
			}
		}
	}
	switch fi, err := os.Stat(abs); {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("sqlite: stat %s: %w", abs, err)
	case fi.IsDir():
		return false, fmt.Errorf("%w: sqlite: %s is a directory", storage.ErrInvalid, abs)
	}
	return false, nil
}

// syncDir fsyncs a directory so the entries created in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sqlite: open directory %s for sync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sqlite: sync directory %s: %w", dir, err)
	}
	return nil
}

// Begin implements storage.Store: it starts an optimistic transaction
// whose reads go to the store and whose Commit goes through the writer.
func (s *Store) Begin(ctx context.Context) (*storage.Txn, error) {
	if s.closed.Load() {
		return nil, s.closedErr()
	}
	return storage.NewTxn(s), nil
}

// Close implements storage.Store. It stops accepting commits (they fail
// with storage.ErrClosed), waits for the batch in progress to finish, and
// closes the database; the last connection to close checkpoints the WAL.
// Calling Close again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.quit)
		<-s.writerDone
		s.text.close()
		s.reads.close()
		errRead := s.readDB.Close()
		errWrite := s.w.close()
		if err := errors.Join(errWrite, errRead); err != nil {
			s.closeErr = fmt.Errorf("sqlite: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

func (s *Store) closedErr() error {
	return fmt.Errorf("%w: sqlite store %s", storage.ErrClosed, s.path)
}

// readErr wraps an error from the read pool, reporting ErrClosed if the
// store was closed underneath the read.
func (s *Store) readErr(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%w: sqlite store %s: %s: %v", storage.ErrClosed, s.path, op, err)
	}
	return fmt.Errorf("sqlite: %s on %s: %w", op, s.path, err)
}

// Get implements storage.Reader: it returns key's value and version from
// the latest committed state.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, storage.Version, bool, error) {
	if s.closed.Load() {
		return nil, 0, false, s.closedErr()
	}
	v, ver, found, err := s.reads.get(ctx, key)
	if err != nil {
		return nil, 0, false, s.readErr(fmt.Sprintf("get %q", key), err)
	}
	return v, ver, found, nil
}

// Scan implements storage.Reader: it returns at most opts.Limit pairs in
// [opts.Start, opts.End), ascending or (opts.Reverse) descending, from one
// consistent snapshot of the latest committed state.
func (s *Store) Scan(ctx context.Context, opts storage.ScanOptions) ([]storage.VersionedKV, error) {
	if s.closed.Load() {
		return nil, s.closedErr()
	}
	if err := checkLimit(opts.Limit); err != nil {
		return nil, err
	}
	kvs, err := s.reads.scan(ctx, opts)
	if err != nil {
		return nil, s.readErr(fmt.Sprintf("scan [%q, %q)", opts.Start, opts.End), err)
	}
	return kvs, nil
}

// Commit implements storage.Backend. It queues req for the writer
// goroutine and waits for the outcome. While the request is queued,
// cancelling ctx abandons it (nothing is written); once the writer has
// taken it, Commit waits for the writer's decision whatever ctx does. On
// success the writes are durable. ErrConflict and ErrFenced come back from
// validation unchanged (wrapped by nothing); any other error means the
// outcome is unknown.
func (s *Store) Commit(ctx context.Context, req *storage.CommitRequest) (err error) {
	if o := s.observer.Load(); o != nil {
		done := (*o).Commit(ctx, backendName)
		defer func() { done(err) }()
	}
	if s.closed.Load() {
		return s.closedErr()
	}
	if errp := s.failed.Load(); errp != nil {
		return *errp
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: commit not queued: %w", context.Cause(ctx))
	}
	c := &commitCall{ctx: ctx, req: req, size: requestBytes(req), done: make(chan error, 1)}
	select {
	case s.requests <- c:
	case <-s.quit:
		return s.closedErr()
	case <-ctx.Done():
		return fmt.Errorf("sqlite: commit abandoned while queued: %w", context.Cause(ctx))
	}
	return <-c.done
}

func requestBytes(req *storage.CommitRequest) int {
	n := 0
	for _, w := range req.Writes {
		n += len(w.Key) + len(w.Value)
		if w.Text != nil {
			n += len(*w.Text)
		}
	}
	for _, r := range req.RangeDeletes {
		n += len(r.Start) + len(r.End)
	}
	return n
}

func checkLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("%w: scan limit %d must be positive", storage.ErrInvalid, limit)
	}
	if limit > storage.ScanLimitMax {
		return fmt.Errorf("%w: scan limit %d exceeds %d", storage.ErrTooLarge, limit, storage.ScanLimitMax)
	}
	return nil
}
