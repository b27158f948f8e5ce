package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testTimeout bounds each blocking step of these tests.
const testTimeout = 30 * time.Second

func quietConfig(cfg Config) Config {
	cfg.Logger = slog.New(slog.DiscardHandler)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	return cfg
}

func TestParseStorage(t *testing.T) {
	dir := t.TempDir()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec, dataDir string
		want          StorageSpec
		bad           bool
	}{
		{"", dir, StorageSpec{BackendSQLite, filepath.Join(dir, DefaultDBFile)}, false},
		{"", "rel", StorageSpec{BackendSQLite, filepath.Join(cwd, "rel", DefaultDBFile)}, false},
		{"", "", StorageSpec{}, true},
		{"memory", "", StorageSpec{BackendMemory, ""}, false},
		{"postgres://u:p@h:5432/db", dir, StorageSpec{BackendPostgres, "postgres://u:p@h:5432/db"}, false},
		{"postgresql://h/db", dir, StorageSpec{BackendPostgres, "postgresql://h/db"}, false},
		{"sqlite:/var/k.db", dir, StorageSpec{BackendSQLite, "/var/k.db"}, false},
		{"sqlite:k.db", dir, StorageSpec{BackendSQLite, filepath.Join(cwd, "k.db")}, false},
		{"/srv/k.db", dir, StorageSpec{BackendSQLite, "/srv/k.db"}, false},
		{"sqlite:", dir, StorageSpec{}, true},
		{"sqlite:///x.db", dir, StorageSpec{}, true},
		{"mysql://h/db", dir, StorageSpec{}, true},
		{dir, dir, StorageSpec{}, true}, // a directory, not a file
	}
	for _, tc := range tests {
		got, err := ParseStorage(tc.spec, tc.dataDir)
		if tc.bad {
			if !errors.Is(err, ErrBadStorage) {
				t.Errorf("ParseStorage(%q, %q) = %v, %v; want ErrBadStorage", tc.spec, tc.dataDir, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseStorage(%q, %q) = %v, %v; want %v", tc.spec, tc.dataDir, got, err, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":              "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=secret&x=1": "postgres://u@h/db?password=xxxxx&x=1",
		"postgres://u:secret@h:notaport/db":     "(unparseable URL)",
		"postgres://h/db?sslmode=disable":       "postgres://h/db?sslmode=disable",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
		if got := (StorageSpec{BackendPostgres, in}).String(); strings.Contains(got, "secret") {
			t.Errorf("StorageSpec.String() = %q leaks the password", got)
		}
	}
}

// TestStartShutdown starts a node on each embedded backend, checks it
// serves, and shuts it down.
func TestStartShutdown(t *testing.T) {
	for _, storage := range []string{"", "memory"} {
		t.Run("storage="+storage, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			s, err := Start(ctx, quietConfig(Config{DataDir: dataDir, Storage: storage}))
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			res, err := (&http.Client{Timeout: testTimeout}).Get("http://" + s.Addr() + "/v1/health")
			if err != nil {
				t.Fatalf("GET health: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) {
				t.Errorf("health: %d %s", res.StatusCode, body)
			}
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}
			select {
			case <-s.Done():
			default:
				t.Error("Done not closed after Shutdown")
			}
			if err := s.Err(); err != nil {
				t.Errorf("Err after Shutdown = %v, want nil", err)
			}
			if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
				t.Error("still accepting connections after Shutdown")
			}
			_, statErr := os.Stat(filepath.Join(dataDir, DefaultDBFile))
			if storage == "" && statErr != nil {
				t.Errorf("SQLite file: %v", statErr)
			}
			if storage == "memory" && !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("memory storage touched the data dir: %v", statErr)
			}
		})
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, quietConfig(Config{Storage: "memory"})) }()
	time.Sleep(100 * time.Millisecond) // let it start; Run must stop either way
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after a clean stop", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestStartPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dataDir := filepath.Join(t.TempDir(), "data")
	s, err := Start(context.Background(), quietConfig(Config{Addr: ln.Addr().String(), DataDir: dataDir}))
	var le *ListenError
	if !errors.As(err, &le) || !errors.Is(err, syscall.EADDRINUSE) {
		if s != nil {
			s.Shutdown(context.Background())
		}
		t.Fatalf("Start on a taken port = %v, want a ListenError wrapping EADDRINUSE", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir after failed start: %v; want it not created", err)
	}
}

func TestStartBadPostgresURL(t *testing.T) {
	_, err := Start(context.Background(), quietConfig(Config{Storage: "postgres://u:secret@h:notaport/db"}))
	var se *StorageError
	if !errors.As(err, &se) || se.Spec.Backend != BackendPostgres {
		t.Fatalf("Start = %v, want a postgres StorageError", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}
