package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
)

// Config configures a System. Zero durations and depths take the defaults.
type Config struct {
	// Runtime is the seam (required).
	Runtime rt.Runtime
	// Store holds actor state (required).
	Store storage.Store
	// MailboxDepthMax bounds queued invocations per actor; past it Invoke
	// returns ErrBusy.
	MailboxDepthMax int
	// InvokeTimeout bounds one invocation, commit included.
	InvokeTimeout time.Duration
	// IdleTimeout deactivates an actor that has had no message for this long.
	IdleTimeout time.Duration
	// Logger receives operational events; nil means slog.Default().
	Logger *slog.Logger
	// OnPanic is told of every invocation that panicked (a broken
	// invariant, a bug), with the panic's value and stack, after its
	// changes were rolled back; the caller gets ErrPanic. Nil logs it at
	// error. The simulator fails the seed.
	OnPanic func(id ID, value any, stack []byte)
	// CheckState asserts after every invocation that changed the state
	// that the state decodes back to what was encoded (a decode and an
	// encode more per commit: the simulator sets it).
	CheckState bool
	// ErrorHop, if set, transforms every error Invoke returns, as a hop
	// between nodes would: the simulator sends each through its wire
	// form (agent.WireError), so callers are shown to classify errors
	// only by what crosses the wire.
	ErrorHop func(error) error
	// Observer, if set, is told of activations, invocations and refused
	// messages (metrics, traces); nil observes nothing and costs nothing.
	Observer Observer
}

// Observer receives the System's lifecycle events. Its methods are called
// on the System's tasks, never with the System's lock held; they must be
// quick and must not call back into the System.
type Observer interface {
	// Activated reports a successful activation of id.
	Activated(id ID)
	// Deactivated reports that an activation of id ended.
	Deactivated(id ID)
	// Queued reports a message accepted for id, with the number of
	// messages then waiting in its mailbox, this one included.
	Queued(id ID, depth int)
	// Rejected reports a message refused with ErrBusy.
	Rejected(id ID)
	// Invoke reports that op starts running on id. It returns the context
	// the invocation runs with (it may carry a trace span) and end, called
	// with the invocation's outcome and its duration on the runtime's
	// clock.
	Invoke(ctx context.Context, id ID, op string) (context.Context, func(d time.Duration, err error))
}

// System hosts actors: it routes invocations to activations, activating
// on demand and deactivating idle actors.
type System struct {
	rt    rt.Runtime
	store storage.Store
	cfg   Config
	log   *slog.Logger

	mu       sync.Mutex // never held across a seam wait
	kinds    map[string]kind
	active   map[ID]*activation
	stopping bool
	stats    Stats
}

// Stats counts activation lifecycle events since the System started.
type Stats struct {
	// Activations counts successful activations.
	Activations uint64
	// Deactivations counts activations that ended, for any reason.
	Deactivations uint64
	// Invocations counts invocations that ran (successful or not).
	Invocations uint64
}

// NewSystem returns a System with no actor types registered.
func NewSystem(cfg Config) *System {
	if cfg.Runtime == nil || cfg.Store == nil {
		panic("actor.NewSystem: Runtime and Store are required")
	}
	if cfg.MailboxDepthMax <= 0 {
		cfg.MailboxDepthMax = DefaultMailboxDepthMax
	}
	if cfg.InvokeTimeout <= 0 {
		cfg.InvokeTimeout = DefaultInvokeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.OnPanic == nil {
		cfg.OnPanic = func(id ID, value any, stack []byte) {
			log.Error("actor: invocation panicked; its changes were rolled back", "actor", id.String(), "panic", fmt.Sprint(value), "stack", string(stack))
		}
	}
	return &System{
		rt: cfg.Runtime, store: cfg.Store, cfg: cfg, log: log,
		kinds: make(map[string]kind), active: make(map[ID]*activation),
	}
}

// Register installs actor type a for namespace. Registering a namespace
// twice is an error.
func Register[S any](s *System, namespace string, a Actor[S]) error {
	if err := (ID{Namespace: namespace, ID: "x"}).Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.kinds[namespace]; dup {
		return fmt.Errorf("actor: namespace %q already registered", namespace)
	}
	s.kinds[namespace] = &kindOf[S]{actor: a}
	return nil
}

// Invoke runs op on the actor id, activating it if needed, and returns its
// reply once the invocation's changes are durably committed. It returns
// ErrBusy if the mailbox is full, ErrTimeout if the invocation overran,
// ErrStopped during shutdown, or the actor's own error. If ctx ends first
// Invoke returns ctx.Err() and the invocation may or may not take effect.
func (s *System) Invoke(ctx context.Context, id ID, op string, payload []byte) ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	env := &envelope{id: id, ctx: ctx, op: op, payload: payload, reply: rt.NewFuture[[]byte](s.rt)}
	if err := s.dispatch(env); err != nil {
		if s.cfg.Observer != nil && errors.Is(err, ErrBusy) {
			s.cfg.Observer.Rejected(id)
		}
		return nil, s.hop(err)
	}
	if s.cfg.Observer != nil && env.depth > 0 {
		s.cfg.Observer.Queued(id, env.depth)
	}
	reply, err := env.reply.Wait(ctx)
	return reply, s.hop(err)
}

// hop passes an invocation's error through Config.ErrorHop.
func (s *System) hop(err error) error {
	if err == nil || s.cfg.ErrorHop == nil {
		return err
	}
	return s.cfg.ErrorHop(err)
}

// Deactivate deactivates id after the invocations already queued for it,
// running its OnDeactivate hook. Messages that arrive meanwhile wait and
// then go to a fresh activation. Deactivating an inactive actor does
// nothing. The error is the hook's; the actor is deactivated regardless.
func (s *System) Deactivate(ctx context.Context, id ID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	a := s.active[id]
	if a == nil || a.deactivating {
		s.mu.Unlock()
		if a != nil {
			return a.done.Wait(ctx)
		}
		return nil
	}
	env := &envelope{id: id, ctx: ctx, control: true, reply: rt.NewFuture[[]byte](s.rt)}
	err := a.mailbox.TryPush(env)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: deactivate %s", ErrBusy, id)
	}
	_, err = env.reply.Wait(ctx)
	return err
}

// Shutdown stops accepting invocations, lets every active actor finish the
// invocations already queued, deactivates them all and waits until they
// are gone or ctx ends.
func (s *System) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	var all []*activation
	for _, a := range s.active {
		all = append(all, a)
	}
	// Close in ID order, not map order: under the simulator the order of
	// wake-ups is part of the schedule and must not depend on hashing.
	slices.SortFunc(all, func(a, b *activation) int { return strings.Compare(a.id.String(), b.id.String()) })
	for _, a := range all {
		if !a.deactivating {
			a.deactivating = true
			a.mailbox.Close()
		}
	}
	s.mu.Unlock()
	for _, a := range all {
		if err := a.done.Wait(ctx); err != nil {
			return fmt.Errorf("actor: shutdown: %d actors still active: %w", s.ActiveCount(), err)
		}
	}
	return nil
}

// IsActive reports whether id has a live activation.
func (s *System) IsActive(id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[id] != nil
}

// ActiveCount returns the number of live activations.
func (s *System) ActiveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

// Stats returns lifecycle counters.
func (s *System) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// envelope is one queued message.
type envelope struct {
	id      ID
	ctx     context.Context
	op      string
	payload []byte
	control bool // a Deactivate request
	reply   *rt.Future[[]byte]
	depth   int // the mailbox's length once env was queued, when observed
}

// activation is one live incarnation of an actor.
type activation struct {
	id           ID
	inst         instance
	mailbox      *rt.Queue[*envelope]
	deactivating bool        // guarded by System.mu; no new messages enter the mailbox
	pending      []*envelope // guarded by System.mu; arrived while deactivating
	done         *rt.Event
}

// dispatch hands env to id's activation, creating one if needed.
func (s *System) dispatch(env *envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return ErrStopped
	}
	k, ok := s.kinds[env.id.Namespace]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, env.id.Namespace)
	}
	a := s.active[env.id]
	if a == nil {
		a = &activation{
			id:      env.id,
			inst:    k.newInstance(s, env.id),
			mailbox: rt.NewQueue[*envelope](s.rt, s.cfg.MailboxDepthMax),
			done:    rt.NewEvent(s.rt),
		}
		s.active[env.id] = a
		s.rt.Go("actor "+env.id.String(), func() { s.run(a) })
	}
	if a.deactivating {
		if len(a.pending) >= s.cfg.MailboxDepthMax {
			return fmt.Errorf("%w: %s is deactivating with %d messages waiting", ErrBusy, env.id, len(a.pending))
		}
		a.pending = append(a.pending, env)
		return nil
	}
	if err := a.mailbox.TryPush(env); err != nil {
		return fmt.Errorf("%w: %s has %d messages queued", ErrBusy, env.id, s.cfg.MailboxDepthMax)
	}
	if s.cfg.Observer != nil {
		env.depth = a.mailbox.Len()
	}
	return nil
}

// run is an activation's task: activate, serve the mailbox one message at
// a time, deactivate.
func (s *System) run(a *activation) {
	defer a.done.Set()
	ctx := context.Background()
	if err := a.inst.activate(ctx); err != nil {
		s.log.Warn("actor activation failed", "actor", a.id.String(), "err", err)
		s.end(a, fmt.Errorf("activate %s: %w", a.id, err))
		return
	}
	s.mu.Lock()
	s.stats.Activations++
	s.mu.Unlock()
	obs := s.cfg.Observer
	if obs != nil {
		obs.Activated(a.id)
	}
	for {
		idleCtx, cancel := rt.WithTimeout(s.rt, ctx, s.cfg.IdleTimeout)
		env, err := a.mailbox.Recv(idleCtx)
		cancel()
		switch {
		case errors.Is(err, rt.ErrQueueClosed): // shutdown, queue drained
			s.deactivate(ctx, a, nil)
			return
		case err != nil: // idle
			s.mu.Lock()
			if a.mailbox.Len() > 0 {
				s.mu.Unlock()
				continue
			}
			a.deactivating = true
			a.mailbox.Close()
			s.mu.Unlock()
			s.deactivate(ctx, a, nil)
			return
		case env.control:
			s.mu.Lock()
			a.deactivating = true
			a.pending = append(a.mailbox.Drain(), a.pending...)
			s.mu.Unlock()
			s.deactivate(ctx, a, env)
			return
		}
		if err := env.ctx.Err(); err != nil {
			env.reply.Resolve(nil, err) // the caller gave up while queued
			continue
		}
		ictx, cancel := rt.WithTimeout(s.rt, env.ctx, s.cfg.InvokeTimeout)
		var out outcome
		if obs != nil {
			start := s.rt.Now()
			octx, end := obs.Invoke(ictx, a.id, env.op)
			out = a.inst.run(octx, env.op, env.payload)
			end(s.rt.Now().Sub(start), out.err)
		} else {
			out = a.inst.run(ictx, env.op, env.payload)
		}
		cancel()
		s.mu.Lock()
		s.stats.Invocations++
		s.mu.Unlock()
		// The AfterCommit hooks run before the reply: a caller that has
		// its answer knows what they did (a run's event is published, its
		// driver started).
		s.committed(a.id, out)
		env.reply.Resolve(out.reply, out.err)
		switch {
		case out.stale:
			// The commit's outcome is unknown or a newer activation exists:
			// memory can no longer be trusted. Leave without the hook; the
			// next message reloads from storage.
			s.log.Warn("actor activation ended after failed commit", "actor", a.id.String(), "err", out.err)
			s.end(a, nil)
			return
		case out.deactivate:
			s.mu.Lock()
			a.deactivating = true
			a.pending = append(a.mailbox.Drain(), a.pending...)
			s.mu.Unlock()
			s.deactivate(ctx, a, nil)
			return
		}
	}
}

// committed runs an invocation's after-commit hooks, if it committed.
func (s *System) committed(id ID, out outcome) {
	if out.err != nil {
		return
	}
	for _, fn := range out.after {
		fn()
	}
}

// deactivate runs the OnDeactivate hook, then ends the activation. If ctrl
// is a Deactivate request it is answered with the hook's error.
func (s *System) deactivate(ctx context.Context, a *activation, ctrl *envelope) {
	hctx, cancel := rt.WithTimeout(s.rt, ctx, s.cfg.InvokeTimeout)
	err := a.inst.deactivate(hctx)
	cancel()
	if err != nil {
		s.log.Warn("actor deactivation hook failed", "actor", a.id.String(), "err", err)
	}
	s.end(a, nil)
	if ctrl != nil {
		ctrl.reply.Resolve(nil, err)
	}
}

// end removes a from the directory. Messages still queued or waiting are
// failed with failErr if it is non-nil, and otherwise re-dispatched, in
// order, to a fresh activation.
func (s *System) end(a *activation, failErr error) {
	s.mu.Lock()
	if s.active[a.id] == a {
		delete(s.active, a.id)
	}
	a.deactivating = true
	left := append(a.mailbox.Drain(), a.pending...)
	a.pending = nil
	s.stats.Deactivations++
	s.mu.Unlock()
	if s.cfg.Observer != nil {
		s.cfg.Observer.Deactivated(a.id)
	}
	for _, env := range left {
		if env.control {
			env.reply.Resolve(nil, nil) // already deactivated
			continue
		}
		err := failErr
		if err == nil {
			err = s.dispatch(env)
		}
		if err != nil {
			env.reply.Resolve(nil, err)
		}
	}
}
