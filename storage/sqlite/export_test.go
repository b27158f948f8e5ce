package sqlite

import "strconv"

func init() {
	if textScopeShiftSQL != strconv.Itoa(textScopeShift) {
		panic("textScopeShiftSQL is not textScopeShift")
	}
}

// Batches reports how many batches (SQLite transactions, so fsyncs) s has
// committed.
func Batches(s *Store) uint64 { return s.batches.Load() }

// BatchesStarted reports how many batches s's writer has taken.
func BatchesStarted(s *Store) uint64 { return s.started.Load() }

// Applied reports how many commit requests s has committed.
func Applied(s *Store) uint64 { return s.applied.Load() }

// WriterPragmas reads the write connection's journal mode and synchronous
// setting. Call it only while no commit is running.
func WriterPragmas(s *Store) (journalMode string, synchronous int, err error) {
	if err := s.w.conn.QueryRowContext(s.w.ctx, "PRAGMA journal_mode").Scan(&journalMode); err != nil {
		return "", 0, err
	}
	if err := s.w.conn.QueryRowContext(s.w.ctx, "PRAGMA synchronous").Scan(&synchronous); err != nil {
		return "", 0, err
	}
	return journalMode, synchronous, nil
}

// Path returns the absolute path of s's database file.
func Path(s *Store) string { return s.path }

// SchemaV1 is the statement list that created a version-1 file.
var SchemaV1 = schemaV1

// SchemaVersion is the version Open migrates files to.
const SchemaVersion = schemaVersion

// MigrationV1To2 is the statement list that took a file from version 1 to
// version 2.
var MigrationV1To2 = migrations[0]
