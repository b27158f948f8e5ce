package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/kelpie-ai/kelpie/storage"
)

// Schema.
const (
	// schemaVersion is the PRAGMA user_version this package writes and
	// reads. Bump it, and add a step to migrations, when the schema
	// changes.
	schemaVersion = 3
	// applicationID marks the file as a Kelpie store (PRAGMA
	// application_id, "KLP1").
	applicationID = 0x4b4c5031
	// lastVersionName names the meta row holding the last committed
	// version.
	lastVersionName = "last_version"
)

// schemaV1 creates the tables of schema version 1. STRICT keeps every key
// and value a BLOB (a TEXT key would sort apart from the BLOBs); BLOBs
// compare with memcmp, which is bytes.Compare's order. It is frozen: a new
// file is created at version 1 and then migrated, like an old file.
var schemaV1 = []string{
	`CREATE TABLE kv (
		key     BLOB    NOT NULL PRIMARY KEY,
		value   BLOB    NOT NULL,
		version INTEGER NOT NULL
	) STRICT, WITHOUT ROWID`,
	`CREATE TABLE meta (
		name  TEXT    NOT NULL PRIMARY KEY,
		value INTEGER NOT NULL
	) STRICT, WITHOUT ROWID`,
	`INSERT INTO meta (name, value) VALUES ('` + lastVersionName + `', 0)`,
	fmt.Sprintf(`PRAGMA application_id = %d`, applicationID),
	`PRAGMA user_version = 1`,
}

// migrations[i] takes a file from schema version i+1 to i+2, inside the
// migration transaction; migrate then records the new version. The array's
// length makes a version bump without a migration a compile error.
var migrations = [schemaVersion - 1][]string{
	// 1 -> 2: the full-text index (see text.go). text_doc maps each
	// indexed key to the rowid of its document in text_fts; deleting a
	// mapping row deletes the document (trigger), so dropping the documents
	// of a key or a key range is one DELETE on text_doc. text_fts is
	// contentless (the text is not stored twice, only the index) with
	// contentless_delete so documents can be deleted and replaced.
	{
		`CREATE TABLE ` + textDocTable + ` (
			id  INTEGER PRIMARY KEY,
			key BLOB    NOT NULL UNIQUE
		) STRICT`,
		`CREATE VIRTUAL TABLE ` + textFTSTable + ` USING fts5(
			body,
			content = '',
			contentless_delete = 1,
			tokenize = 'porter unicode61'
		)`,
		`CREATE TRIGGER ` + textDocTable + `_delete AFTER DELETE ON ` + textDocTable + ` BEGIN
			DELETE FROM ` + textFTSTable + ` WHERE rowid = old.id;
		END`,
	},
	// 2 -> 3: document scopes (see text.go). text_scope numbers the
	// scopes; a document's rowid is its scope's number << 32 plus a
	// number within the scope. The empty scope (documents without one)
	// gets a number at least as high as every version-2 rowid >> 32, so
	// the version-2 documents, whose rowids were numbered from 1, are
	// all out of every real scope's range (in practice: the empty scope
	// is 0 and they are in its range).
	{
		`CREATE TABLE ` + textScopeTable + ` (
			id    INTEGER PRIMARY KEY,
			scope BLOB    NOT NULL UNIQUE
		) STRICT`,
		`INSERT INTO ` + textScopeTable + ` (id, scope) SELECT coalesce(max(id), 0) >> ` + textScopeShiftSQL + `, x'' FROM ` + textDocTable,
	},
}

// dsn returns the driver's data source name for the file at abs, with the
// busy timeout and any extra query parameters.
func dsn(abs string, params ...string) string {
	// A "file:" URI, so that no character of the path is taken for the
	// start of the query string; '%', '?' and '#' must be escaped in it.
	path := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(abs)
	q := append([]string{fmt.Sprintf("_busy_timeout=%d", busyTimeoutMillis)}, params...)
	return "file:" + path + "?" + strings.Join(q, "&")
}

// configureWriter sets the connection's durability pragmas and checks they
// took effect: WAL journaling, and a sync of the WAL at every COMMIT.
func configureWriter(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set journal_mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	for _, p := range []string{
		"PRAGMA synchronous = FULL",
		// macOS: make fsync a real barrier (F_FULLFSYNC); no-ops elsewhere.
		"PRAGMA fullfsync = ON",
		"PRAGMA checkpoint_fullfsync = ON",
	} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	var sync int
	if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if sync != 2 { // FULL
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", sync)
	}
	return nil
}

// identify reports whether the file is new and empty (fresh), or a Kelpie
// store this build can open; anything else is refused. Open calls it once
// before changing the journal mode, so a foreign file is left untouched,
// and migrate again inside its transaction.
func identify(ctx context.Context, conn *sql.Conn) (fresh bool, err error) {
	var version, appID, objects int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("read user_version: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return false, fmt.Errorf("read application_id: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return false, fmt.Errorf("read schema: %w", err)
	}
	switch {
	case version == 0 && appID == 0 && objects == 0:
		return true, nil
	case appID != applicationID:
		return false, fmt.Errorf("%w: not a Kelpie store (application_id %#x, user_version %d, %d schema objects)",
			storage.ErrCorrupt, appID, version, objects)
	case version > schemaVersion:
		return false, fmt.Errorf("schema version %d is newer than this build supports (%d); upgrade Kelpie", version, schemaVersion)
	case version < 1:
		return false, fmt.Errorf("%w: Kelpie store with schema version %d", storage.ErrCorrupt, version)
	}
	return false, nil
}

// migrate brings the file to schemaVersion in one transaction.
func migrate(ctx context.Context, conn *sql.Conn) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(ctx, "ROLLBACK")
			return
		}
		if _, cerr := conn.ExecContext(ctx, "COMMIT"); cerr != nil {
			err = fmt.Errorf("commit migration: %w", cerr)
			conn.ExecContext(ctx, "ROLLBACK")
		}
	}()
	fresh, err := identify(ctx, conn)
	if err != nil {
		return err
	}
	if fresh {
		for _, stmt := range schemaV1 {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
	}
	// The file is now at a schema version in 1..schemaVersion; bring it
	// up one step at a time.
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	for ; version < schemaVersion; version++ {
		for _, stmt := range migrations[version-1] {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate schema from version %d to %d: %w", version, version+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
			return fmt.Errorf("record schema version %d: %w", version+1, err)
		}
	}
	var last int64
	switch err := conn.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = ?", lastVersionName).Scan(&last); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: meta row %q missing", storage.ErrCorrupt, lastVersionName)
	case err != nil:
		return fmt.Errorf("read last version: %w", err)
	case last < 0:
		return fmt.Errorf("%w: last version %d", storage.ErrCorrupt, last)
	}
	return nil
}
