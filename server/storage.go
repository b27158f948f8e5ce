package server

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Storage backends a StorageSpec may select.
const (
	// BackendSQLite is an embedded SQLite file, the default.
	BackendSQLite = "sqlite"
	// BackendPostgres is a PostgreSQL database, for many nodes.
	BackendPostgres = "postgres"
	// BackendMemory keeps everything in memory and loses it on exit; for
	// demos and tests.
	BackendMemory = "memory"
)

// DefaultDBFile is the SQLite file created in the data directory when no
// storage is specified.
const DefaultDBFile = "kelpie.db"

// ErrBadStorage reports a storage specification ParseStorage cannot use.
var ErrBadStorage = errors.New("invalid storage specification")

// StorageSpec is a parsed storage specification.
type StorageSpec struct {
	// Backend is BackendSQLite, BackendPostgres or BackendMemory.
	Backend string
	// Location is the SQLite file's path, the PostgreSQL connection URL,
	// or empty for memory.
	Location string
}

// String describes the spec for logs and error messages. A PostgreSQL
// password is redacted.
func (s StorageSpec) String() string {
	switch s.Backend {
	case BackendMemory:
		return "memory (not persisted)"
	case BackendPostgres:
		return "postgres " + redactURL(s.Location)
	default:
		return s.Backend + " " + s.Location
	}
}

// ParseStorage interprets a storage specification:
//
//   - "" selects SQLite at <dataDir>/kelpie.db;
//   - "memory" selects the in-memory store;
//   - "postgres://…" or "postgresql://…" selects PostgreSQL at that URL;
//   - "sqlite:<path>" or a bare path selects a SQLite file at path
//     (relative paths are relative to the working directory).
//
// Any other URL ("<scheme>://…") is refused with ErrBadStorage.
func ParseStorage(spec, dataDir string) (StorageSpec, error) {
	switch {
	case spec == "":
		if dataDir == "" {
			return StorageSpec{}, fmt.Errorf("%w: no storage given and the data directory is empty", ErrBadStorage)
		}
		return sqliteSpec(filepath.Join(dataDir, DefaultDBFile))
	case spec == BackendMemory:
		return StorageSpec{Backend: BackendMemory}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return StorageSpec{Backend: BackendPostgres, Location: spec}, nil
	case strings.HasPrefix(spec, "sqlite:"):
		path := strings.TrimPrefix(spec, "sqlite:")
		if path == "" {
			return StorageSpec{}, fmt.Errorf("%w: %q names no file; use sqlite:<path>", ErrBadStorage, spec)
		}
		if strings.HasPrefix(path, "//") {
			return StorageSpec{}, fmt.Errorf("%w: %q: use sqlite:<path> (for example sqlite:/var/lib/kelpie/kelpie.db), not a sqlite:// URL", ErrBadStorage, spec)
		}
		return sqliteSpec(path)
	case strings.Contains(spec, "://"):
		scheme, _, _ := strings.Cut(spec, "://")
		return StorageSpec{}, fmt.Errorf("%w: unsupported scheme %q", ErrBadStorage, scheme)
	default:
		return sqliteSpec(spec)
	}
}

// sqliteSpec resolves path to an absolute path that is not a directory.
func sqliteSpec(path string) (StorageSpec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return StorageSpec{}, fmt.Errorf("%w: resolve %q: %v", ErrBadStorage, path, err)
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return StorageSpec{}, fmt.Errorf("%w: %s is a directory; SQLite storage needs a file path", ErrBadStorage, abs)
	}
	return StorageSpec{Backend: BackendSQLite, Location: abs}, nil
}

// redactURL returns u with any password, in the user info or in a
// password query parameter, replaced by "xxxxx". A string that does not
// parse as a URL is hidden entirely, since it may hold a password where
// url.Parse cannot find it.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparseable URL)"
	}
	if q := p.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}
