package actor

import (
	"fmt"

	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// Limits on actor identifiers.
const (
	// namespaceBytesMax bounds ID.Namespace.
	namespaceBytesMax = 64
	// idBytesMax bounds ID.ID.
	idBytesMax = 128
)

// ID names one virtual actor: a namespace (the actor type, such as
// "agents") and an identifier unique within it.
type ID struct {
	Namespace string
	ID        string
}

// String returns "namespace/id".
func (id ID) String() string { return id.Namespace + "/" + id.ID }

// Validate reports whether id is well formed: a namespace of 1–64 bytes of
// [a-z0-9_] and an identifier of 1–128 bytes of [A-Za-z0-9_.:-].
func (id ID) Validate() error {
	if err := checkChars(id.Namespace, namespaceBytesMax, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}); err != nil {
		return fmt.Errorf("%w: namespace %q: %v", ErrInvalidID, id.Namespace, err)
	}
	if err := checkChars(id.ID, idBytesMax, func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == ':'
	}); err != nil {
		return fmt.Errorf("%w: id %q: %v", ErrInvalidID, id.ID, err)
	}
	return nil
}

func checkChars(s string, max int, ok func(byte) bool) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > max {
		return fmt.Errorf("%d bytes exceeds %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return fmt.Errorf("character %q not allowed", s[i])
		}
	}
	return nil
}

// Storage layout. Everything an actor owns lives under ("a", ns, id):
// its activation epoch (the fence), its state blob and its KV space.
// Secondary indexes live under ("i", …) and are written in the same
// transaction as the state they index. Shared entities, which no single
// actor owns (standalone memory blocks that several agents attach), live
// under ("s", kind, …): any invocation may read and write them inside its
// transaction (Context.GetShared, Context.SetShared), and so may code
// outside the actors, each change validated against the others by the
// store's optimistic concurrency control.

// prefix returns the root of id's keys.
func (id ID) prefix() tuple.Key { return tuple.Pack("a", id.Namespace, id.ID) }

// EpochKey returns the key holding id's activation epoch.
func (id ID) EpochKey() tuple.Key { return id.prefix().AppendString("epoch") }

// StateKey returns the key holding id's serialized state.
func (id ID) StateKey() tuple.Key { return id.prefix().AppendString("state") }

// KVPrefix returns the root of id's key-value space.
func (id ID) KVPrefix() tuple.Key { return id.prefix().AppendString("kv") }

// IndexPrefix returns the root of every secondary index; IndexKey keys
// always start with it.
func IndexPrefix() tuple.Key { return tuple.Pack("i") }

// IndexKey returns the key of an entry in the named secondary index.
func IndexKey(index string, elems ...any) tuple.Key {
	return append(tuple.Pack("i", index), tuple.Pack(elems...)...)
}

// SharedPrefix returns the root of the shared key space; SharedKey keys
// always start with it.
func SharedPrefix() tuple.Key { return tuple.Pack("s") }

// SharedKey returns the key of a shared entity of the given kind (such as
// "block") and identity.
func SharedKey(kind string, elems ...any) tuple.Key {
	return append(tuple.Pack("s", kind), tuple.Pack(elems...)...)
}
