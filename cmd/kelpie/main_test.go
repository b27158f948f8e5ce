package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/server"
)

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr, noEnv)
		if want := "kelpie " + api.Version + "\n"; code != 0 || stdout.String() != want {
			t.Errorf("kelpie %v: exit %d, stdout %q, stderr %q; want 0, %q", args, code, stdout.String(), stderr.String(), want)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"nonsense"}, {"serve", "--bogus"}, {"serve", "extra"}, {"version", "extra"}} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr, noEnv)
		if code != 2 || !strings.Contains(stderr.String(), "kelpie --help") {
			t.Errorf("kelpie %v: exit %d, stderr %q; want exit 2 and a pointer to --help", args, code, stderr.String())
		}
	}
}

func TestServeConfigPrecedence(t *testing.T) {
	env := map[string]string{
		envAddr:    "127.0.0.1:9999",
		envDataDir: "/env/data",
		envStorage: "memory",
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want server.Config
	}{
		{"defaults", nil, nil, server.Config{Addr: server.DefaultAddr, DataDir: server.DefaultDataDir}},
		{"env", nil, env, server.Config{Addr: "127.0.0.1:9999", DataDir: "/env/data", Storage: "memory"}},
		{"flags beat env", []string{"--addr", "127.0.0.1:1", "--data-dir", "/flag", "--storage", "sqlite:/x.db"}, env,
			server.Config{Addr: "127.0.0.1:1", DataDir: "/flag", Storage: "sqlite:/x.db"}},
		{"flag equal to its default still beats env", []string{"--addr", server.DefaultAddr}, env,
			server.Config{Addr: server.DefaultAddr, DataDir: "/env/data", Storage: "memory"}},
		{"empty env is unset", nil, map[string]string{envAddr: "", envStorage: ""},
			server.Config{Addr: server.DefaultAddr, DataDir: server.DefaultDataDir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			var stderr bytes.Buffer
			cmd := newServeCmd(&stderr, getenv)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			var f serveFlags
			f.addr, _ = cmd.Flags().GetString("addr")
			f.dataDir, _ = cmd.Flags().GetString("data-dir")
			f.storage, _ = cmd.Flags().GetString("storage")
			got := serveConfig(cmd, f, getenv)
			if got.Addr != tc.want.Addr || got.DataDir != tc.want.DataDir || got.Storage != tc.want.Storage {
				t.Errorf("got {%q %q %q}, want {%q %q %q}", got.Addr, got.DataDir, got.Storage,
					tc.want.Addr, tc.want.DataDir, tc.want.Storage)
			}
		})
	}
}

// TestServeStartupErrors checks that startup failures exit 1 with advice
// naming the flag to change.
func TestServeStartupErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"data dir is a file", []string{"--data-dir", notADir}, []string{"cannot open storage", "--data-dir"}},
		{"unsupported storage", []string{"--storage", "mysql://db"}, []string{"unsupported scheme", "--storage"}},
		{"bad postgres url", []string{"--storage", "postgres://u:secret@localhost:notaport/db"},
			[]string{"cannot open storage", "postgres://user:password@host:5432/dbname"}},
		{"bad address", []string{"--addr", "nonsense"}, []string{"cannot listen on nonsense", "host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)
			code := run(args, &stdout, &stderr, noEnv)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "secret") {
				t.Errorf("stderr leaks the password:\n%s", stderr.String())
			}
		})
	}
}

func noEnv(string) string { return "" }
