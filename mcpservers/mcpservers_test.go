package mcpservers

import (
	"context"
	"errors"
	"testing"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

func newRegistry(t *testing.T, opts Options) *Registry {
	t.Helper()
	r := rt.NewSystem()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	return New(r, store, r.Rand("mcp"), opts)
}

var httpConfig = mcpclient.ServerConfig{Type: mcpclient.TypeStreamableHTTP, ServerURL: "http://127.0.0.1:1/mcp", AuthToken: "a-long-secret-token"}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t, Options{})
	a, err := reg.Create(ctx, "a", httpConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, "a", httpConfig); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("second server named a: %v, want ErrAlreadyExists", err)
	}
	b, err := reg.Create(ctx, "b", httpConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Update(ctx, b.ID, func(s *Server) error { s.Name = "a"; return nil }); !errors.Is(err, agent.ErrAlreadyExists) {
		t.Fatalf("renaming b to a: %v, want ErrAlreadyExists", err)
	}
	if _, err := reg.Update(ctx, b.ID, func(s *Server) error { s.Name = "c"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.GetByName(ctx, "c"); err != nil || got.ID != b.ID {
		t.Fatalf("GetByName(c) = %+v, %v", got, err)
	}
	if _, err := reg.GetByName(ctx, "b"); !errors.Is(err, agent.ErrNotFound) {
		t.Fatalf("GetByName(b) after the rename: %v", err)
	}
	if _, err := reg.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	all, err := reg.List(ctx)
	if err != nil || len(all) != 1 || all[0].Name != "c" || all[0].Config.AuthToken != httpConfig.AuthToken {
		t.Fatalf("List = %+v, %v", all, err)
	}
	if _, err := reg.Create(ctx, "a", mcpclient.ServerConfig{Type: "ftp"}); !errors.Is(err, agent.ErrInvalid) {
		t.Fatalf("unknown type: %v, want ErrInvalid", err)
	}
}

func TestStdioRefused(t *testing.T) {
	cfg := mcpclient.ServerConfig{Type: mcpclient.TypeStdio, Command: "/bin/true"}
	if _, err := newRegistry(t, Options{}).Create(context.Background(), "local", cfg); !errors.Is(err, agent.ErrInvalid) || !errors.Is(err, mcpclient.ErrStdioDisabled) {
		t.Fatalf("stdio server with stdio disabled: %v", err)
	}
	if _, err := newRegistry(t, Options{AllowStdio: true}).Create(context.Background(), "local", cfg); err != nil {
		t.Fatalf("stdio server with stdio enabled: %v", err)
	}
}

func TestMask(t *testing.T) {
	cfg := Mask(mcpclient.ServerConfig{AuthToken: "a-long-secret-token", CustomHeaders: map[string]string{"X": "short"}, Env: map[string]string{"K": "another-long-secret"}})
	if cfg.AuthToken != "****oken" || cfg.CustomHeaders["X"] != "****" || cfg.Env["K"] != "****cret" {
		t.Fatalf("Mask = %+v", cfg)
	}
	if got := Unmask("****oken", "a-long-secret-token"); got != "a-long-secret-token" {
		t.Fatalf("Unmask of the masked value = %q", got)
	}
	if got := Unmask("new-token", "a-long-secret-token"); got != "new-token" {
		t.Fatalf("Unmask of a new value = %q", got)
	}
}
