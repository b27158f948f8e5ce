// Package mcpservers is the registry of the MCP servers users configure:
// records with an ID "mcp_server-<uuid4>", a unique name and the
// configuration (mcpclient.ServerConfig) Kelpie connects with. It also
// masks a configuration's secrets for display (Mask).
//
// stdio servers are arbitrary commands run as Kelpie's user: the registry
// refuses to record one unless the operator enabled them
// (Options.AllowStdio).
//
// Storage layout (keys are storage/tuple tuples):
//
//	("mcp", "server", id)             the server, JSON (Server)
//	("i", "mcp_servers_by_name", name) id
//
// Every change writes the record and its index entry in one storage
// transaction, retried on conflict, so names stay unique.
package mcpservers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/mcpclient"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Limits.
const (
	// ServersMax bounds the number of servers.
	ServersMax = 1000
	// nameBytesMax bounds a server's name.
	nameBytesMax = 256
	// attemptsMax bounds the retries of a transaction that met a conflict.
	attemptsMax = 5
)

// IDPrefix is the prefix of server IDs (Letta's).
const IDPrefix = "mcp_server"

// Server is one configured MCP server.
type Server struct {
	ID        string                 `json:"id"`
	Name      string                 `json:"server_name"`
	Config    mcpclient.ServerConfig `json:"config"`
	CreatedAt time.Time              `json:"created_at"`
	UpdatedAt time.Time              `json:"updated_at"`
}

// Client is s as the connection pool wants it.
func (s *Server) Client() mcpclient.Server {
	return mcpclient.Server{ID: s.ID, Name: s.Name, Config: s.Config}
}

// Options configure a Registry.
type Options struct {
	// AllowStdio lets users record stdio servers.
	AllowStdio bool
}

// Registry reads and changes the MCP server records in a store. It keeps
// no state of its own.
type Registry struct {
	rt    rt.Runtime
	store storage.Store
	ids   rt.Rand
	opts  Options
}

// New returns the registry in store; new IDs are drawn from ids.
func New(r rt.Runtime, store storage.Store, ids rt.Rand, opts Options) *Registry {
	return &Registry{rt: r, store: store, ids: ids, opts: opts}
}

func serverKey(id string) []byte   { return tuple.Pack("mcp", "server", id) }
func serverPrefix() tuple.Key      { return tuple.Pack("mcp", "server") }
func byNameKey(name string) []byte { return actor.IndexKey("mcp_servers_by_name", name) }
func notFound(what string) error   { return fmt.Errorf("%w: MCP server %s", agent.ErrNotFound, what) }
func invalidf(f string, a ...any) error {
	return fmt.Errorf("%w: %s", agent.ErrInvalid, fmt.Sprintf(f, a...))
}

// Check validates a server's name and configuration as Create does.
func (r *Registry) Check(name string, cfg mcpclient.ServerConfig) error {
	if strings.TrimSpace(name) == "" {
		return invalidf("server_name is required")
	}
	if len(name) > nameBytesMax || !utf8.ValidString(name) || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == '/' }) {
		return invalidf("server_name %q: want up to %d bytes of text without control characters or slashes", name, nameBytesMax)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", agent.ErrInvalid, err)
	}
	if cfg.Type == mcpclient.TypeStdio && !r.opts.AllowStdio {
		return fmt.Errorf("%w: %w", agent.ErrInvalid, mcpclient.ErrStdioDisabled)
	}
	return nil
}

func (r *Registry) txn(ctx context.Context, fn func(tx *storage.Txn) error) error {
	for attempt := 1; ; attempt++ {
		tx, err := r.store.Begin(ctx)
		if err != nil {
			return err
		}
		err = fn(tx)
		if err == nil {
			err = tx.Commit(ctx)
		}
		tx.Rollback()
		if err == nil || attempt == attemptsMax || !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
}

func load(ctx context.Context, tx *storage.Txn, id string) (*Server, error) {
	v, err := tx.Get(ctx, serverKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	var s Server
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("%w: MCP server %s: %v", storage.ErrCorrupt, id, err)
	}
	return &s, nil
}

func save(tx *storage.Txn, s *Server) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return tx.Set(serverKey(s.ID), b)
}

// Create records a server. Its name must be free.
func (r *Registry) Create(ctx context.Context, name string, cfg mcpclient.ServerConfig) (*Server, error) {
	if err := r.Check(name, cfg); err != nil {
		return nil, err
	}
	now := r.rt.Now().UTC()
	s := &Server{ID: rt.NewID(r.ids, IDPrefix), Name: name, Config: cfg, CreatedAt: now, UpdatedAt: now}
	err := r.txn(ctx, func(tx *storage.Txn) error {
		if id, err := tx.Get(ctx, byNameKey(name)); err == nil {
			return fmt.Errorf("%w: an MCP server named %q exists already (%s)", agent.ErrAlreadyExists, name, id)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: serverPrefix(), End: serverPrefix().End(), Limit: ServersMax})
		if err != nil {
			return err
		}
		if len(kvs) >= ServersMax {
			return invalidf("there are %d MCP servers, the limit; delete some first", len(kvs))
		}
		if err := save(tx, s); err != nil {
			return err
		}
		return tx.Set(byNameKey(name), []byte(s.ID))
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Get returns the server with the given ID.
func (r *Registry) Get(ctx context.Context, id string) (*Server, error) {
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return load(ctx, tx, id)
}

// GetByName returns the server with the given name.
func (r *Registry) GetByName(ctx context.Context, name string) (*Server, error) {
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	id, err := tx.Get(ctx, byNameKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(fmt.Sprintf("named %q", name))
	}
	if err != nil {
		return nil, err
	}
	return load(ctx, tx, string(id))
}

// List returns every server, oldest first.
func (r *Registry) List(ctx context.Context) ([]Server, error) {
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: serverPrefix(), End: serverPrefix().End(), Limit: ServersMax})
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(kvs))
	for _, kv := range kvs {
		var s Server
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return nil, fmt.Errorf("%w: MCP server record %q: %v", storage.ErrCorrupt, kv.Key, err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Server) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Update changes the server with the given ID: change edits a copy of
// its record (name and config), which must then be valid; a new name
// must be free.
func (r *Registry) Update(ctx context.Context, id string, change func(s *Server) error) (*Server, error) {
	var out *Server
	err := r.txn(ctx, func(tx *storage.Txn) error {
		old, err := load(ctx, tx, id)
		if err != nil {
			return err
		}
		s := *old
		if err := change(&s); err != nil {
			return err
		}
		s.ID, s.CreatedAt, s.UpdatedAt = old.ID, old.CreatedAt, r.rt.Now().UTC()
		if err := r.Check(s.Name, s.Config); err != nil {
			return err
		}
		if s.Name != old.Name {
			if other, err := tx.Get(ctx, byNameKey(s.Name)); err == nil {
				return fmt.Errorf("%w: an MCP server named %q exists already (%s)", agent.ErrAlreadyExists, s.Name, other)
			} else if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if err := tx.Delete(byNameKey(old.Name)); err != nil {
				return err
			}
			if err := tx.Set(byNameKey(s.Name), []byte(s.ID)); err != nil {
				return err
			}
		}
		out = &s
		return save(tx, &s)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes the server with the given ID and returns its record.
// Its tools' records are the caller's to delete.
func (r *Registry) Delete(ctx context.Context, id string) (*Server, error) {
	var out *Server
	err := r.txn(ctx, func(tx *storage.Txn) error {
		s, err := load(ctx, tx, id)
		if err != nil {
			return err
		}
		out = s
		if err := tx.Delete(serverKey(id)); err != nil {
			return err
		}
		return tx.Delete(byNameKey(s.Name))
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maskKeep is how many trailing characters of a long secret Mask shows.
const maskKeep = 4

// maskedMin is the shortest secret of which Mask shows anything.
const maskedMin = 16

// MaskSecret hides a secret for display: "****" and, for a long one, its
// last few characters, so a user can tell two tokens apart.
func MaskSecret(v string) string {
	if v == "" {
		return ""
	}
	if utf8.RuneCountInString(v) < maskedMin {
		return "****"
	}
	r := []rune(v)
	return "****" + string(r[len(r)-maskKeep:])
}

// Mask returns cfg with its secrets hidden (MaskSecret): the auth token,
// the custom headers' values and the stdio environment's values.
func Mask(cfg mcpclient.ServerConfig) mcpclient.ServerConfig {
	cfg.AuthToken = MaskSecret(cfg.AuthToken)
	cfg.CustomHeaders = maskMap(cfg.CustomHeaders)
	cfg.Env = maskMap(cfg.Env)
	return cfg
}

func maskMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = MaskSecret(v)
	}
	return out
}

// Unmask returns the secret of an update: v, unless v is the masked
// form of old (a client sending back what a GET showed), which keeps old.
func Unmask(v, old string) string {
	if old != "" && v == MaskSecret(old) {
		return old
	}
	return v
}

// UnmaskMap is Unmask for each value of m with a key in old.
func UnmaskMap(m, old map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = Unmask(v, old[k])
	}
	return out
}
