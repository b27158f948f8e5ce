// Package rt is the seam between Kelpie and the world: time, timers,
// sleeping, starting tasks, seeded randomness (from which IDs are drawn) and
// the blocking primitives tasks wait on.
//
// Code that the simulator drives (the actor runtime, the agent service, the
// agent actor, the in-memory storage) reaches time, randomness and
// concurrency only through a Runtime. Production binds it to the operating
// system with [NewSystem]; the simulator binds it to a single-threaded,
// seeded scheduler. Callers never know which binding they run under.
//
// The rules a caller follows:
//   - start tasks with Runtime.Go, never a bare go statement;
//   - read the clock with Runtime.Now, wait with Runtime.Sleep, and bound
//     waits with WithTimeout (never context.WithTimeout, whose timer the
//     simulator cannot see);
//   - block only in Signal.Wait, Event.Wait, Queue.Recv or Sleep, and never
//     hold a sync.Mutex across one of them;
//   - draw random numbers and IDs from Runtime.Rand.
package rt

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Runtime is the seam: everything in Kelpie that touches time, randomness or
// task scheduling goes through it.
type Runtime interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks the calling task for d, or until ctx is done, in which
	// case it returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc arranges for f to run in its own task after d. The returned
	// stop function cancels the call if it has not started and reports
	// whether it did so.
	AfterFunc(d time.Duration, name string, f func()) (stop func() bool)
	// Go starts fn as a new task. The name identifies it in traces and in
	// the simulator's watchdog reports.
	Go(name string, fn func())
	// NewSignal returns a Signal bound to this runtime.
	NewSignal() Signal
	// Rand returns the random stream with the given name. Under the
	// simulator each name is an independent stream derived from the seed,
	// so extra draws from one stream do not shift another.
	Rand(name string) Rand
}

// Rand is a source of random numbers safe for concurrent use.
type Rand interface {
	// Uint64 returns a uniformly distributed 64-bit value.
	Uint64() uint64
}

// Signal is a wake-up with a single pending token: Notify wakes one waiter,
// or, when nobody waits, lets the next Wait return at once. Several Notify
// calls with nobody waiting collapse into one token.
type Signal interface {
	// Notify wakes one waiter or leaves a token for the next one.
	Notify()
	// Wait blocks until a token is available or ctx is done, in which case
	// it returns ctx.Err().
	Wait(ctx context.Context) error
}

// WithTimeout returns a copy of parent that is cancelled with
// context.DeadlineExceeded after d of the runtime's time, or when cancel is
// called, or when parent is done. Code the simulator drives uses it in place
// of context.WithTimeout.
func WithTimeout(r Runtime, parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := r.AfterFunc(d, "rt.timeout", func() { cancel(context.DeadlineExceeded) })
	return &timeoutCtx{Context: ctx}, func() {
		stop()
		cancel(context.Canceled)
	}
}

// timeoutCtx reports context.DeadlineExceeded as its error when the timer
// fired, as a context from context.WithTimeout would.
type timeoutCtx struct{ context.Context }

func (c *timeoutCtx) Err() error {
	if c.Context.Err() == nil {
		return nil
	}
	if cause := context.Cause(c.Context); errors.Is(cause, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return c.Context.Err()
}

// NewID returns "<prefix>-<uuid4>" with the UUID drawn from r, the form
// Letta uses for every object ID (agent-…, message-…, block-…).
func NewID(r Rand, prefix string) string {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Intn returns a uniformly distributed value in [0, n). It panics if n <= 0.
func Intn(r Rand, n int) int {
	if n <= 0 {
		panic("rt.Intn: n <= 0")
	}
	return int(r.Uint64() % uint64(n))
}
