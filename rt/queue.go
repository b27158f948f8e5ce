package rt

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueFull is returned by Queue.TryPush when the queue holds its
// capacity.
var ErrQueueFull = errors.New("rt: queue full")

// ErrQueueClosed is returned by Queue operations after Close once the queue
// has drained.
var ErrQueueClosed = errors.New("rt: queue closed")

// Queue is a bounded FIFO that tasks wait on through the seam. Its mutex is
// never held across a wait, so it is safe under the simulator's scheduler.
type Queue[T any] struct {
	mu       sync.Mutex
	items    []T
	capacity int
	closed   bool
	notEmpty Signal
}

// NewQueue returns an empty queue holding at most capacity items.
func NewQueue[T any](r Runtime, capacity int) *Queue[T] {
	if capacity <= 0 {
		panic("rt.NewQueue: capacity must be positive")
	}
	return &Queue[T]{capacity: capacity, notEmpty: r.NewSignal()}
}

// TryPush appends v without blocking. It returns ErrQueueFull when the queue
// is at capacity and ErrQueueClosed after Close.
func (q *Queue[T]) TryPush(v T) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	if len(q.items) >= q.capacity {
		return ErrQueueFull
	}
	q.items = append(q.items, v)
	q.notEmpty.Notify()
	return nil
}

// Recv removes and returns the oldest item, waiting until one arrives, the
// queue is closed and empty (ErrQueueClosed), or ctx is done (ctx.Err()).
func (q *Queue[T]) Recv(ctx context.Context) (T, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			var zero T
			q.items[0] = zero
			q.items = q.items[1:]
			if len(q.items) > 0 {
				q.notEmpty.Notify() // pass the wake-up on to the next receiver
			}
			q.mu.Unlock()
			return v, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			var zero T
			return zero, ErrQueueClosed
		}
		if err := q.notEmpty.Wait(ctx); err != nil {
			var zero T
			return zero, err
		}
	}
}

// Len returns the number of queued items.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Close stops further pushes. Items already queued can still be received;
// once they are gone Recv returns ErrQueueClosed.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.notEmpty.Notify()
}

// Drain closes the queue and returns the items it still held.
func (q *Queue[T]) Drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	items := q.items
	q.items = nil
	q.notEmpty.Notify()
	return items
}

// Event is a one-shot latch: once Set, every Wait returns at once.
type Event struct {
	mu   sync.Mutex
	set  bool
	wake Signal
}

// NewEvent returns an unset event.
func NewEvent(r Runtime) *Event { return &Event{wake: r.NewSignal()} }

// Set releases every current and future waiter. Setting twice is harmless.
func (e *Event) Set() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.set = true
	e.wake.Notify()
}

// IsSet reports whether Set has been called.
func (e *Event) IsSet() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.set
}

// Wait blocks until the event is set or ctx is done (ctx.Err()).
func (e *Event) Wait(ctx context.Context) error {
	for {
		if e.IsSet() {
			e.wake.Notify() // wake the next waiter in turn
			return nil
		}
		if err := e.wake.Wait(ctx); err != nil {
			if e.IsSet() {
				return nil
			}
			return err
		}
	}
}

// Future carries one result from the task that produces it to the task
// that waits for it.
type Future[T any] struct {
	done *Event
	val  T
	err  error
}

// NewFuture returns an unresolved future.
func NewFuture[T any](r Runtime) *Future[T] { return &Future[T]{done: NewEvent(r)} }

// Resolve stores the result and wakes the waiters. Only the first call has
// an effect.
func (f *Future[T]) Resolve(v T, err error) {
	f.done.mu.Lock()
	if f.done.set {
		f.done.mu.Unlock()
		return
	}
	f.val, f.err = v, err
	f.done.set = true
	f.done.wake.Notify()
	f.done.mu.Unlock()
}

// Wait returns the result once resolved, or ctx.Err() if ctx is done first.
func (f *Future[T]) Wait(ctx context.Context) (T, error) {
	if err := f.done.Wait(ctx); err != nil {
		var zero T
		return zero, err
	}
	f.done.mu.Lock()
	defer f.done.mu.Unlock()
	return f.val, f.err
}
