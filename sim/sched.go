// Package sim is Kelpie's deterministic simulator. It binds the seam
// (rt.Runtime) to a single-threaded scheduler driven by one uint64 seed:
// tasks are goroutines, but a baton lets exactly one run at a time; the
// next task to run is drawn from the seeded random source; virtual time
// jumps to the next timer when nothing can run. The real actor runtime,
// agent service and storage code paths run inside it unchanged.
//
// Every decision — task chosen, time advanced, timer fired, fault fired —
// feeds a running trace hash, so two runs of one seed can be compared with
// a single number, and a failing seed replays bit-for-bit.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
)

// Epoch is virtual time zero: every simulation starts at this instant.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Limits of one simulation.
const (
	// stepsMax bounds scheduling decisions in one run: a livelock fails
	// the seed instead of hanging the test.
	stepsMax = 5_000_000
	// watchdogTimeout is the real time a task may hold the baton before
	// the watchdog fails the run (the task is blocked outside the seam).
	watchdogTimeout = 30 * time.Second
)

type taskState int

const (
	stateRunnable taskState = iota
	stateRunning
	stateBlocked
	stateDone
)

type wakeReason int

const (
	wakeNone wakeReason = iota
	wakeSignal
	wakeTimer
	wakeCtx
)

// task is one simulated task, backed by a goroutine that runs only while
// it holds the baton.
type task struct {
	id     int
	name   string
	node   *Node
	wake   chan struct{} // the baton is handed over on this channel
	exited chan struct{} // closed when the goroutine has finished
	state  taskState
	killed bool
	// selfExit: the task was killed by its own node's crash and must hand
	// the baton on when it has unwound.
	selfExit bool

	// While blocked:
	waitCtx context.Context
	waitSig *signal
	reason  wakeReason
}

// timer is a pending virtual-time event.
type timer struct {
	when    time.Time
	seq     uint64
	task    *task  // a sleeping task to wake, or
	fn      func() // a function to start as a new task
	node    *Node
	name    string
	stopped bool
}

// Sim is one simulation run.
type Sim struct {
	seed uint64

	mu            sync.Mutex
	now           time.Time
	nextID        int
	tasks         []*task // live tasks in creation order
	runnable      []*task
	blocked       []*task
	timers        []*timer // sorted by (when, seq)
	timerSeq      uint64
	current       *task
	streams       map[string]*stream
	trace         hash.Hash64
	steps         uint64
	switches      uint64
	log           []string // decision log, when recording
	record        bool
	failure       error
	finished      bool
	done          chan struct{}
	doneOnce      sync.Once
	watchdogAfter time.Duration
}

// New returns a simulation for seed. Call Run to execute it.
func New(seed uint64) *Sim {
	s := &Sim{seed: seed, now: Epoch, streams: make(map[string]*stream), trace: fnv.New64a(), done: make(chan struct{}), watchdogAfter: watchdogTimeout}
	s.note("seed", seed)
	return s
}

// Record makes the simulation keep a human-readable decision log (see Log).
func (s *Sim) Record() { s.record = true }

// Log returns the decision log kept since Record.
func (s *Sim) Log() []string { return s.log }

// Seed returns the simulation's seed.
func (s *Sim) Seed() uint64 { return s.seed }

// TraceHash returns the running hash of every decision so far.
func (s *Sim) TraceHash() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trace.Sum64()
}

// Steps returns the number of scheduling decisions so far.
func (s *Sim) Steps() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps
}

// Now returns the virtual time (without any node's clock skew).
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Run executes root as the first task and returns when it finishes, after
// stopping every task still alive. It returns the simulation's failure: a
// deadlock, a task blocked outside the seam, a livelock, a task's panic, or
// one reported with Fail.
func (s *Sim) Run(root func(r rt.Runtime)) error {
	main := &Node{sim: s, name: "main"}
	s.mu.Lock()
	t := s.newTask(main, "root")
	s.remove(&s.runnable, t)
	s.current = t
	t.state = stateRunning
	s.mu.Unlock()
	go s.taskMain(t, func() {
		root(main.Runtime())
		s.mu.Lock()
		s.finished = true
		s.mu.Unlock()
	})
	stopWatchdog := s.watchdog()
	t.wake <- struct{}{}
	<-s.done
	stopWatchdog()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure
}

// Fail ends the simulation with err (the first failure wins) at the next
// scheduling decision.
func (s *Sim) Fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *Sim) failLocked(err error) {
	if s.failure == nil {
		s.failure = err
	}
}

// Failed reports whether the simulation has failed.
func (s *Sim) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failure != nil
}

// Rand returns the named stream, independent of every other name.
func (s *Sim) Rand(name string) rt.Rand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamLocked(name)
}

func (s *Sim) streamLocked(name string) *stream {
	if st, ok := s.streams[name]; ok {
		return st
	}
	var seed [32]byte
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, s.seed)
	h.Write([]byte(name))
	copy(seed[:], h.Sum(nil))
	st := &stream{r: rand.New(rand.NewChaCha8(seed))}
	s.streams[name] = st
	return st
}

// stream is a named random stream. Draws happen with the baton held, so
// their order is deterministic.
type stream struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (st *stream) Uint64() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.r.Uint64()
}

// note feeds a decision into the trace hash (and the log when recording).
// Callers hold s.mu.
func (s *Sim) note(kind string, vals ...any) {
	var b [8]byte
	s.trace.Write([]byte(kind))
	for _, v := range vals {
		switch v := v.(type) {
		case int:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			s.trace.Write(b[:])
		case uint64:
			binary.LittleEndian.PutUint64(b[:], v)
			s.trace.Write(b[:])
		case int64:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			s.trace.Write(b[:])
		case string:
			s.trace.Write([]byte(v))
		default:
			fmt.Fprint(s.trace, v)
		}
	}
	if s.record {
		s.log = append(s.log, fmt.Sprintf("%v %s %v", s.now.Sub(Epoch), kind, vals))
	}
}

// Note records an external decision (a fault fired, a message delivered)
// in the trace.
func (s *Sim) Note(kind string, vals ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.note(kind, vals...)
}

// newTask creates a runnable task. Callers hold s.mu.
func (s *Sim) newTask(n *Node, name string) *task {
	s.nextID++
	t := &task{id: s.nextID, name: name, node: n, wake: make(chan struct{}, 1), exited: make(chan struct{}), state: stateRunnable}
	s.tasks = append(s.tasks, t)
	s.runnable = append(s.runnable, t)
	s.note("spawn", t.id, name)
	return t
}

// spawn starts fn as a new task of node n.
func (s *Sim) spawn(n *Node, name string, fn func()) {
	s.mu.Lock()
	if n.crashed || (s.current != nil && s.current.killed) {
		s.mu.Unlock()
		return // a dead node starts nothing
	}
	t := s.newTask(n, name)
	s.mu.Unlock()
	go s.taskMain(t, fn)
}

// taskMain is a task's goroutine: wait for the baton, run, hand it on.
func (s *Sim) taskMain(t *task, fn func()) {
	defer close(t.exited)
	<-t.wake
	defer func() {
		s.mu.Lock()
		t.state = stateDone
		s.remove(&s.tasks, t)
		if t.killed && !t.selfExit {
			s.mu.Unlock()
			return // the killer holds the baton
		}
		s.switchLocked(t) // hand the baton on; this goroutine ends
	}()
	defer func() {
		if p := recover(); p != nil {
			s.Fail(fmt.Errorf("sim: task %q panicked: %v\n%s", t.name, p, stack()))
		}
	}()
	if t.killed {
		return
	}
	fn()
}

// park blocks the current task t until the scheduler hands it the baton
// again. Callers hold s.mu and have set t's state; park releases it.
func (s *Sim) park(t *task) {
	s.switchLocked(t)
	<-t.wake
	if t.killed {
		runtime.Goexit()
	}
}

// switchLocked picks the next task and hands it the baton. It releases
// s.mu. If the simulation is over it ends it instead.
func (s *Sim) switchLocked(from *task) {
	next := s.pickLocked()
	if next == nil {
		s.endLocked(from)
		return
	}
	s.current = next
	next.state = stateRunning
	s.switches++
	s.mu.Unlock()
	next.wake <- struct{}{} // if next == from, park receives it at once
}

// pickLocked chooses the next task to run, advancing virtual time while
// nothing is runnable. It returns nil when the simulation must end.
func (s *Sim) pickLocked() *task {
	for {
		if s.failure != nil || s.finished {
			return nil
		}
		s.steps++
		if s.steps > stepsMax {
			s.failLocked(fmt.Errorf("sim: livelock: %d scheduling steps without finishing (tasks: %s)", stepsMax, s.describeLocked()))
			return nil
		}
		// Waiters whose context ended can run.
		for i := 0; i < len(s.blocked); {
			t := s.blocked[i]
			if t.waitCtx != nil && t.waitCtx.Err() != nil {
				s.unblockLocked(t, wakeCtx)
				continue
			}
			i++
		}
		if len(s.runnable) > 0 {
			i := int(s.streamLocked("sched").r.Uint64() % uint64(len(s.runnable)))
			t := s.runnable[i]
			s.runnable = slices.Delete(s.runnable, i, i+1)
			s.note("run", t.id)
			return t
		}
		if !s.fireTimersLocked() {
			s.failLocked(fmt.Errorf("sim: deadlock: no task can run and no timer is pending (tasks: %s)", s.describeLocked()))
			return nil
		}
	}
}

// fireTimersLocked advances time to the earliest pending timer and fires
// every timer due then. It reports whether there was one.
func (s *Sim) fireTimersLocked() bool {
	for len(s.timers) > 0 && s.timers[0].stopped {
		s.timers = s.timers[1:]
	}
	if len(s.timers) == 0 {
		return false
	}
	if when := s.timers[0].when; when.After(s.now) {
		s.now = when
		s.note("time", s.now.Sub(Epoch).Nanoseconds())
	}
	for len(s.timers) > 0 && !s.timers[0].when.After(s.now) {
		tm := s.timers[0]
		s.timers = s.timers[1:]
		if tm.stopped {
			continue
		}
		tm.stopped = true
		s.note("timer", tm.seq)
		switch {
		case tm.task != nil:
			if tm.task.state == stateBlocked {
				s.unblockLocked(tm.task, wakeTimer)
			}
		case tm.node.crashed:
		default:
			t := s.newTask(tm.node, tm.name)
			go s.taskMain(t, tm.fn)
		}
	}
	return true
}

func (s *Sim) addTimerLocked(tm *timer) {
	s.timerSeq++
	tm.seq = s.timerSeq
	i := sort.Search(len(s.timers), func(i int) bool {
		return s.timers[i].when.After(tm.when) // equal times keep creation order
	})
	s.timers = slices.Insert(s.timers, i, tm)
}

func (s *Sim) unblockLocked(t *task, why wakeReason) {
	s.remove(&s.blocked, t)
	if t.waitSig != nil {
		s.remove(&t.waitSig.waiters, t)
	}
	t.waitSig, t.waitCtx = nil, nil
	t.reason = why
	t.state = stateRunnable
	s.runnable = append(s.runnable, t)
}

// block marks the current task blocked and parks it. Callers hold s.mu.
func (s *Sim) block(t *task, ctx context.Context) wakeReason {
	t.state = stateBlocked
	t.waitCtx = ctx
	t.reason = wakeNone
	s.blocked = append(s.blocked, t)
	s.park(t)
	return t.reason
}

// currentLocked returns the task holding the baton. A killed task (one
// unwinding after a crash or the end of the run) exits instead.
func (s *Sim) currentLocked() *task {
	t := s.current
	if t == nil {
		s.mu.Unlock()
		panic("sim: seam call outside a simulated task")
	}
	if t.killed {
		s.mu.Unlock()
		runtime.Goexit()
	}
	return t
}

// yield lets the scheduler run any runnable task (possibly the caller).
func (s *Sim) yield() {
	s.mu.Lock()
	t := s.currentLocked()
	t.state = stateRunnable
	s.runnable = append(s.runnable, t)
	s.park(t)
}

// sleep blocks the current task for d of virtual time or until ctx ends.
func (s *Sim) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		s.yield()
		return ctx.Err()
	}
	s.mu.Lock()
	t := s.currentLocked()
	tm := &timer{when: s.now.Add(d), task: t}
	s.addTimerLocked(tm)
	if s.block(t, ctx) == wakeCtx {
		s.mu.Lock()
		tm.stopped = true
		s.mu.Unlock()
		return ctx.Err()
	}
	return nil
}

// afterFunc starts f as a task of node n after d.
func (s *Sim) afterFunc(n *Node, d time.Duration, name string, f func()) func() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	tm := &timer{when: s.now.Add(max(d, 0)), fn: f, node: n, name: name}
	s.addTimerLocked(tm)
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if tm.stopped {
			return false
		}
		tm.stopped = true
		return true
	}
}

// endLocked stops every remaining task and ends the run. It releases
// s.mu. from is the task that was giving up the baton; if it is still
// alive it exits too.
func (s *Sim) endLocked(from *task) {
	s.current = nil
	rest := slices.Clone(s.tasks)
	s.mu.Unlock()
	for _, t := range rest {
		if t != from {
			s.kill(t)
		}
	}
	s.mu.Lock()
	alive := from.state != stateDone
	if alive {
		from.killed = true
		s.current = from
	}
	s.mu.Unlock()
	s.closeDone()
	if alive {
		from.wake <- struct{}{} // park wakes, sees killed, exits
	}
}

func (s *Sim) closeDone() { s.doneOnce.Do(func() { close(s.done) }) }

// kill stops a parked task: it wakes inside its seam call and exits,
// running its deferred calls, whose seam waits exit at once. The killer
// waits, so the dying task effectively holds the baton while it unwinds.
func (s *Sim) kill(t *task) {
	s.mu.Lock()
	if t.state == stateDone || t.state == stateRunning {
		s.mu.Unlock()
		return
	}
	t.killed = true
	s.remove(&s.runnable, t)
	s.remove(&s.blocked, t)
	if t.waitSig != nil {
		s.remove(&t.waitSig.waiters, t)
	}
	prev := s.current
	s.current = t
	s.mu.Unlock()
	t.wake <- struct{}{}
	<-t.exited
	s.mu.Lock()
	s.current = prev
	s.mu.Unlock()
}

// watchdog fails the run when a task keeps the baton without reaching
// the seam for watchdogTimeout of real time.
func (s *Sim) watchdog() (stop func()) {
	quit := make(chan struct{})
	go func() {
		tick := time.NewTicker(s.watchdogAfter / 3)
		defer tick.Stop()
		var last uint64
		idle := 0
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			s.mu.Lock()
			if s.switches == last && s.current != nil {
				idle++
			} else {
				idle, last = 0, s.switches
			}
			if idle >= 3 {
				s.failLocked(fmt.Errorf("sim: watchdog: task %q held the baton for %v without a seam call: it is blocked outside the seam (a raw channel, a mutex held across a wait, or real I/O)\n%s",
					s.current.name, s.watchdogAfter, stack()))
				s.mu.Unlock()
				s.closeDone()
				return
			}
			s.mu.Unlock()
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }) }
}

func (s *Sim) describeLocked() string {
	var parts []string
	for _, t := range s.tasks {
		parts = append(parts, fmt.Sprintf("%s#%d", t.name, t.id))
	}
	return strings.Join(parts, ", ")
}

func (s *Sim) remove(list *[]*task, t *task) {
	if i := slices.Index(*list, t); i >= 0 {
		*list = slices.Delete(*list, i, i+1)
	}
}

func stack() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// signal is the simulator's rt.Signal.
type signal struct {
	sim     *Sim
	token   bool
	waiters []*task
}

func (g *signal) Notify() {
	s := g.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(g.waiters) > 0 {
		s.unblockLocked(g.waiters[0], wakeSignal)
		return
	}
	g.token = true
}

func (g *signal) Wait(ctx context.Context) error {
	s := g.sim
	s.mu.Lock()
	t := s.currentLocked()
	if g.token {
		g.token = false
		s.mu.Unlock()
		s.yield() // let others interleave; the token is ours
		return nil
	}
	if err := ctx.Err(); err != nil {
		s.mu.Unlock()
		return err
	}
	t.waitSig = g
	g.waiters = append(g.waiters, t)
	if s.block(t, ctx) == wakeCtx {
		return ctx.Err()
	}
	return nil
}
