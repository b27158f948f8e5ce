// Package actor is Kelpie's virtual-actor runtime.
//
// An actor is addressed by an ID and exists conceptually forever; the
// runtime activates it on the first message (claiming a new epoch in
// storage and loading its state), runs one invocation at a time from a
// bounded mailbox, commits each invocation's changes (state, buffered KV
// writes, secondary-index entries) in one storage transaction fenced by the
// activation's epoch, and deactivates it when it has been idle for a while,
// when asked to, or at shutdown.
//
// Failure rules: an invocation that returns an error, panics, times out or
// whose commit fails leaves no trace in memory (state rolls back to the
// last committed value). A commit whose outcome is unknown, or that was
// fenced because a newer activation exists, also ends the activation, so
// the next message reloads the truth from storage.
//
// All time, tasks and blocking go through rt.Runtime, so the simulator can
// drive the runtime deterministically.
package actor

import (
	"context"
	"errors"
	"time"

	"github.com/kelpie-ai/kelpie/storage"
)

// Typed errors returned by System methods. Test with errors.Is.
var (
	// ErrInvalidID: the actor ID is malformed.
	ErrInvalidID = errors.New("actor: invalid id")
	// ErrUnknownType: no actor type is registered for the namespace.
	ErrUnknownType = errors.New("actor: unknown actor type")
	// ErrBusy: the actor's mailbox is full; retry later.
	ErrBusy = errors.New("actor: mailbox full")
	// ErrTimeout: the invocation did not finish within the invocation
	// timeout; its changes were rolled back.
	ErrTimeout = errors.New("actor: invocation timed out")
	// ErrStopped: the runtime is shutting down or stopped.
	ErrStopped = errors.New("actor: runtime stopped")
	// ErrFenced: a newer activation of the actor exists; this activation's
	// commit was refused. It is storage.ErrFenced.
	ErrFenced = storage.ErrFenced
	// ErrPanic: the actor's code panicked; its changes were rolled back.
	ErrPanic = errors.New("actor: invocation panicked")
)

// Defaults for Config fields left zero.
const (
	// DefaultMailboxDepthMax is the default bound on queued invocations per actor.
	DefaultMailboxDepthMax = 256
	// DefaultInvokeTimeout is the default bound on one invocation. Agent
	// turns call LLMs, so it is generous.
	DefaultInvokeTimeout = 10 * time.Minute
	// DefaultIdleTimeout is how long an actor stays active without messages.
	DefaultIdleTimeout = 10 * time.Minute
	// activateAttemptsMax bounds retries of the epoch claim on conflict.
	activateAttemptsMax = 8
)

// Actor is an actor type's behaviour; S is its state, serialized with
// encoding/json. One Actor value serves every activation of its namespace:
// everything per-actor lives in S or in the actor's KV space.
type Actor[S any] interface {
	// Invoke handles one operation. It may change c.State and buffer KV and
	// index writes through c; they commit atomically when Invoke returns nil
	// and roll back otherwise. The reply is returned to the caller only
	// after the commit is durable.
	Invoke(ctx context.Context, c *Context[S], op string, payload []byte) ([]byte, error)
}

// Activator is implemented by actor types that act on activation; changes
// commit like an invocation's. An error fails the activation.
type Activator[S any] interface {
	OnActivate(ctx context.Context, c *Context[S]) error
}

// Deactivator is implemented by actor types that act on deactivation;
// changes commit like an invocation's, but a failure only gets logged: the
// actor is deactivated regardless.
type Deactivator[S any] interface {
	OnDeactivate(ctx context.Context, c *Context[S]) error
}
