package tools

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/errkind"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
	"github.com/kelpie-ai/kelpie/tooldef"
)

// Keys.

// ToolKey is the key of a custom tool: its record in the shared key
// space, which the agents that attach it read (tooldef.Key).
func ToolKey(id string) []byte { return tooldef.Key(id) }

// CountKey holds the number of custom tools.
func CountKey() []byte { return tuple.Pack("tools", "count") }

// ByNameKey is a custom tool's entry in the by-name index (value: its ID).
func ByNameKey(name string) []byte { return actor.IndexKey("tools_by_name", name) }

// ByCreatedKey is a custom tool's entry in the by-creation index (value:
// its name).
func ByCreatedKey(t *tooldef.CustomTool) []byte {
	return actor.IndexKey("tools_by_created", uint64(t.CreatedAt.UnixNano()), t.ID)
}

// ByCreatedPrefix is the prefix of every ByCreatedKey.
func ByCreatedPrefix() tuple.Key { return actor.IndexKey("tools_by_created") }

// attemptsMax bounds the retries of a transaction that met a conflict.
const attemptsMax = 5

// Registry reads and changes the custom tools in a store. It keeps no
// state of its own, so any number of them may share a store.
type Registry struct {
	rt    rt.Runtime
	store storage.Store
	ids   rt.Rand
}

// NewRegistry returns the registry in store; new IDs are drawn from ids.
func NewRegistry(r rt.Runtime, store storage.Store, ids rt.Rand) *Registry {
	return &Registry{rt: r, store: store, ids: ids}
}

// txn runs fn in a transaction and commits it, retrying on conflict. A
// commit that fails otherwise may or may not have applied.
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

func notFound(id string) error { return fmt.Errorf("%w: tool %s", errkind.ErrNotFound, id) }

func load(ctx context.Context, tx *storage.Txn, id string) (*tooldef.CustomTool, error) {
	v, err := tx.Get(ctx, ToolKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	var t tooldef.CustomTool
	if err := json.Unmarshal(v, &t); err != nil {
		return nil, fmt.Errorf("%w: tool %s: %v", storage.ErrCorrupt, id, err)
	}
	return &t, nil
}

func save(tx *storage.Txn, t *tooldef.CustomTool) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Set(ToolKey(t.ID), b)
}

// Custom is the registry's view of a custom tool record: tool_type
// custom, or the type it was stored with (external_mcp).
func Custom(t tooldef.CustomTool) Tool { return *custom(&t) }

func custom(t *tooldef.CustomTool) *Tool {
	typ := TypeCustom
	if t.ToolType != "" {
		typ = t.ToolType
	}
	return &Tool{CustomTool: *t, ToolType: typ}
}

// count reads the number of custom tools.
func count(ctx context.Context, tx *storage.Txn) (uint64, error) {
	v, err := tx.Get(ctx, CountKey())
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: tools count of %d bytes", storage.ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func setCount(tx *storage.Txn, n uint64) error {
	return tx.Set(CountKey(), binary.BigEndian.AppendUint64(nil, n))
}

// Get returns the tool with the given ID, built-in or custom.
func (r *Registry) Get(ctx context.Context, id string) (*Tool, error) {
	if name, ok := BuiltinName(id); ok {
		t := builtinNamed(name)
		return &t, nil
	}
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	t, err := load(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	return custom(t), nil
}

// GetByName returns the tool with the given name, built-in or custom.
func (r *Registry) GetByName(ctx context.Context, name string) (*Tool, error) {
	if IsBuiltinName(name) {
		t := builtinNamed(name)
		return &t, nil
	}
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	id, err := tx.Get(ctx, ByNameKey(name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: no tool is named %q", errkind.ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	t, err := load(ctx, tx, string(id))
	if err != nil {
		return nil, err
	}
	return custom(t), nil
}

func builtinNamed(name string) Tool {
	return Builtin(tooldef.Schemas([]string{name})[0])
}

// Create adds a custom tool. Its name must be free: a name taken by
// another tool, built-in or custom, is errkind.ErrAlreadyExists.
func (r *Registry) Create(ctx context.Context, spec Spec) (*Tool, error) {
	t, err := build(spec)
	if err != nil {
		return nil, err
	}
	if IsBuiltinName(t.Name) {
		return nil, fmt.Errorf("%w: the name %q belongs to a built-in tool", errkind.ErrAlreadyExists, t.Name)
	}
	t.ID = rt.NewID(r.ids, "tool")
	t.CreatedAt = r.rt.Now().UTC()
	t.UpdatedAt = t.CreatedAt
	err = r.txn(ctx, func(tx *storage.Txn) error {
		id, err := tx.Get(ctx, ByNameKey(t.Name))
		if err == nil {
			return fmt.Errorf("%w: a tool named %q exists already (%s)", errkind.ErrAlreadyExists, t.Name, id)
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return insert(ctx, tx, t)
	})
	if err != nil {
		return nil, err
	}
	return custom(t), nil
}

// insert writes a new custom tool, its index entries and the new count.
func insert(ctx context.Context, tx *storage.Txn, t *tooldef.CustomTool) error {
	n, err := count(ctx, tx)
	if err != nil {
		return err
	}
	if n >= ToolsMax {
		return invalidf("the registry holds %d tools, its limit; delete some first", n)
	}
	if err := save(tx, t); err != nil {
		return err
	}
	if err := tx.Set(ByNameKey(t.Name), []byte(t.ID)); err != nil {
		return err
	}
	if err := tx.Set(ByCreatedKey(t), []byte(t.Name)); err != nil {
		return err
	}
	return setCount(tx, n+1)
}

// Upsert creates a custom tool, or replaces the definition of the one
// with the same name (which keeps its ID and creation time). created
// reports which.
func (r *Registry) Upsert(ctx context.Context, spec Spec) (tool *Tool, created bool, err error) {
	t, err := build(spec)
	if err != nil {
		return nil, false, err
	}
	if IsBuiltinName(t.Name) {
		return nil, false, fmt.Errorf("%w: %q is a built-in tool", ErrReadOnly, t.Name)
	}
	newID, now := rt.NewID(r.ids, "tool"), r.rt.Now().UTC()
	err = r.txn(ctx, func(tx *storage.Txn) error {
		t.UpdatedAt = now
		id, err := tx.Get(ctx, ByNameKey(t.Name))
		if errors.Is(err, storage.ErrNotFound) {
			t.ID, t.CreatedAt, created = newID, now, true
			return insert(ctx, tx, t)
		}
		if err != nil {
			return err
		}
		old, err := load(ctx, tx, string(id))
		if err != nil {
			return err
		}
		t.ID, t.CreatedAt, created = old.ID, old.CreatedAt, false
		return save(tx, t)
	})
	if err != nil {
		return nil, false, err
	}
	return custom(t), created, nil
}

// Update changes a custom tool. If its name changes (through a new
// json_schema or source code), the new name must be free.
func (r *Registry) Update(ctx context.Context, id string, p Patch) (*Tool, error) {
	if name, ok := BuiltinName(id); ok {
		return nil, fmt.Errorf("%w: %s is the built-in tool %s", ErrReadOnly, id, name)
	}
	var out *tooldef.CustomTool
	err := r.txn(ctx, func(tx *storage.Txn) error {
		old, err := load(ctx, tx, id)
		if err != nil {
			return err
		}
		t, err := build(apply(old, p))
		if err != nil {
			return err
		}
		t.ID, t.CreatedAt, t.UpdatedAt, t.ToolType = old.ID, old.CreatedAt, r.rt.Now().UTC(), old.ToolType
		if t.Name != old.Name {
			if IsBuiltinName(t.Name) {
				return fmt.Errorf("%w: the name %q belongs to a built-in tool", errkind.ErrAlreadyExists, t.Name)
			}
			other, err := tx.Get(ctx, ByNameKey(t.Name))
			if err == nil {
				return fmt.Errorf("%w: a tool named %q exists already (%s)", errkind.ErrAlreadyExists, t.Name, other)
			}
			if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			if err := tx.Delete(ByNameKey(old.Name)); err != nil {
				return err
			}
			if err := tx.Set(ByNameKey(t.Name), []byte(t.ID)); err != nil {
				return err
			}
			if err := tx.Set(ByCreatedKey(t), []byte(t.Name)); err != nil {
				return err
			}
		}
		out = t
		return save(tx, t)
	})
	if err != nil {
		return nil, err
	}
	return custom(out), nil
}

// Delete removes a custom tool, which detaches it from every agent: they
// read their tools from the registry, skip the missing one from then on,
// and drop their reference to it at their next change of tools.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if name, ok := BuiltinName(id); ok {
		return fmt.Errorf("%w: %s is the built-in tool %s", ErrReadOnly, id, name)
	}
	return r.txn(ctx, func(tx *storage.Txn) error {
		t, err := load(ctx, tx, id)
		if err != nil {
			return err
		}
		n, err := count(ctx, tx)
		if err != nil {
			return err
		}
		for _, k := range [][]byte{ToolKey(id), ByNameKey(t.Name), ByCreatedKey(t)} {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return setCount(tx, max(n, 1)-1)
	})
}

// Query selects tools: every non-empty filter must match. Paging (After,
// Before, Limit, Descending) applies to List; Count ignores it.
type Query struct {
	Name   string
	Names  []string
	IDs    []string
	Search string // a case-insensitive substring of the name
	Types  []string
	// ExcludeTypes drops tools of these types.
	ExcludeTypes []string
	// OnlyLetta keeps the built-in tools (types "letta_…"); ExcludeLetta
	// drops them.
	OnlyLetta, ExcludeLetta bool

	// After and Before are tool IDs: the page starts after After and ends
	// before Before, in the listing order.
	After, Before string
	// Limit bounds the page (0: no bound).
	Limit int
	// Descending lists newest first. Built-in tools count as created
	// first, in name order.
	Descending bool
}

// match reports whether the tool passes the filters.
func (q *Query) match(id, name, toolType string) bool {
	switch {
	case q.Name != "" && name != q.Name,
		len(q.Names) > 0 && !slices.Contains(q.Names, name),
		len(q.IDs) > 0 && !slices.Contains(q.IDs, id),
		q.Search != "" && !strings.Contains(strings.ToLower(name), strings.ToLower(q.Search)),
		len(q.Types) > 0 && !slices.Contains(q.Types, toolType),
		slices.Contains(q.ExcludeTypes, toolType),
		q.OnlyLetta && !strings.HasPrefix(toolType, "letta_"),
		q.ExcludeLetta && strings.HasPrefix(toolType, "letta_"):
		return false
	}
	return true
}

// entry is one tool of a listing.
type entry struct {
	id, name, toolType string
}

// page orders entries (given oldest first), places the cursors, filters
// and bounds the page; the cursors need not pass the filters.
func (q *Query) page(entries []entry) ([]entry, error) {
	if q.Descending {
		slices.Reverse(entries)
	}
	lo, hi := 0, len(entries)
	for _, c := range []struct {
		id    string
		after bool
	}{{q.After, true}, {q.Before, false}} {
		if c.id == "" {
			continue
		}
		i := slices.IndexFunc(entries, func(e entry) bool { return e.id == c.id })
		if i < 0 {
			return nil, fmt.Errorf("%w: cursor tool %s", errkind.ErrNotFound, c.id)
		}
		if c.after {
			lo = max(lo, i+1)
		} else {
			hi = min(hi, i)
		}
	}
	var out []entry
	if lo < hi {
		for _, e := range entries[lo:hi] {
			if q.match(e.id, e.name, e.toolType) {
				out = append(out, e)
			}
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		if q.Before != "" && q.After == "" {
			out = out[len(out)-q.Limit:] // the ones just before the cursor
		} else {
			out = out[:q.Limit]
		}
	}
	return out, nil
}

// Select pages through tools already loaded (an agent's), ordered as the
// registry lists them.
func Select(all []Tool, q Query) ([]Tool, error) {
	sorted := slices.Clone(all)
	slices.SortStableFunc(sorted, compare)
	entries := make([]entry, len(sorted))
	byID := map[string]Tool{}
	for i, t := range sorted {
		entries[i] = entry{t.ID, t.Name, t.ToolType}
		byID[t.ID] = t
	}
	picked, err := q.page(entries)
	if err != nil {
		return nil, err
	}
	out := make([]Tool, 0, len(picked))
	for _, e := range picked {
		out = append(out, byID[e.id])
	}
	return out, nil
}

// compare orders tools as listings do: by creation, built-ins (created
// at the zero time) by name, then custom tools by creation time and ID.
func compare(a, b Tool) int {
	ab, bb := a.Builtin(), b.Builtin()
	switch {
	case ab && bb:
		return strings.Compare(a.Name, b.Name)
	case ab != bb:
		if ab {
			return -1
		}
		return 1
	}
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// entries reads the built-in and custom tools, oldest first. The index
// does not say a custom tool's type; when q filters by type, the records
// are read to tell MCP tools (external_mcp) from the others.
func (r *Registry) entries(ctx context.Context, tx *storage.Txn, q *Query) ([]entry, error) {
	var out []entry
	for _, n := range tooldef.Names() { // sorted by name
		out = append(out, entry{BuiltinID(n), n, builtinNamed(n).ToolType})
	}
	prefix := ByCreatedPrefix()
	kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: prefix, End: prefix.End(), Limit: ToolsMax})
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		elems, err := tuple.Unpack(kv.Key[len(prefix):])
		if err != nil || len(elems) != 2 {
			return nil, fmt.Errorf("%w: tools index key %q", storage.ErrCorrupt, kv.Key)
		}
		id, _ := elems[1].(string)
		e := entry{id, string(kv.Value), TypeCustom}
		if len(q.Types) > 0 || len(q.ExcludeTypes) > 0 {
			t, err := load(ctx, tx, id)
			if err != nil && !errors.Is(err, errkind.ErrNotFound) {
				return nil, err
			}
			if t != nil {
				e.toolType = custom(t).ToolType
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// List returns a page of tools, built-in and custom. It reads the index
// and the tools in one transaction and validates it, so the page is a
// consistent snapshot.
func (r *Registry) List(ctx context.Context, q Query) ([]Tool, error) {
	if q.Limit < 0 || q.Limit > ListLimitMax {
		return nil, invalidf("limit %d outside 1..%d", q.Limit, ListLimitMax)
	}
	if q.Limit == 0 {
		q.Limit = ListLimitMax
	}
	var out []Tool
	err := r.txn(ctx, func(tx *storage.Txn) error {
		all, err := r.entries(ctx, tx, &q)
		if err != nil {
			return err
		}
		page, err := q.page(all)
		if err != nil {
			return err
		}
		out = make([]Tool, 0, len(page))
		for _, e := range page {
			if _, builtin := BuiltinName(e.id); builtin {
				out = append(out, builtinNamed(e.name))
				continue
			}
			t, err := load(ctx, tx, e.id)
			if errors.Is(err, errkind.ErrNotFound) {
				// Index and tool are written together: the commit would
				// fail validation; start again.
				return fmt.Errorf("%w: tool %s deleted during the list", storage.ErrConflict, e.id)
			}
			if err != nil {
				return err
			}
			out = append(out, *custom(t))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Count returns the number of tools, built-in and custom, that pass q's
// filters.
func (r *Registry) Count(ctx context.Context, q Query) (int, error) {
	tx, err := r.store.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	all, err := r.entries(ctx, tx, &q)
	if err != nil {
		return 0, err
	}
	q.After, q.Before, q.Limit = "", "", 0
	page, err := q.page(all)
	return len(page), err
}

// Resolve maps Letta tool names and IDs, as a create or an update of an
// agent names its tools, to the names of the built-in tools and the IDs
// of the custom tools among them (agent.CreateRequest.Tools and
// CustomToolIDs), each once. A name that is neither built-in nor
// registered is passed on with the built-in names (the agent rejects it
// as unknown); custom tool IDs are passed on unchecked (the agent reads
// each tool's record in its own transaction, and rejects an unknown one).
func (r *Registry) Resolve(ctx context.Context, names, ids []string) (builtinNames, customIDs []string, err error) {
	addName := func(n string) {
		if !slices.Contains(builtinNames, n) {
			builtinNames = append(builtinNames, n)
		}
	}
	addID := func(id string) {
		if !slices.Contains(customIDs, id) {
			customIDs = append(customIDs, id)
		}
	}
	for _, n := range names {
		if IsBuiltinName(n) {
			addName(n)
			continue
		}
		t, err := r.GetByName(ctx, n)
		switch {
		case errors.Is(err, errkind.ErrNotFound):
			addName(n)
		case err != nil:
			return nil, nil, err
		default:
			addID(t.ID)
		}
	}
	for _, id := range ids {
		if n, ok := BuiltinName(id); ok {
			addName(n)
		} else {
			addID(id)
		}
	}
	return builtinNames, customIDs, nil
}
