package sim

import (
	"context"
	"runtime"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
)

// Node is a simulated machine: a group of tasks that crash together, with
// its own clock skew. Its Runtime is the rt.Runtime its code runs on.
type Node struct {
	sim     *Sim
	name    string
	crashed bool
	skew    time.Duration
}

// NewNode returns a node named name (names must be unique in one run).
func (s *Sim) NewNode(name string) *Node { return &Node{sim: s, name: name} }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// Runtime returns the seam bound to this node.
func (n *Node) Runtime() rt.Runtime { return nodeRuntime{n} }

// Crashed reports whether the node is down.
func (n *Node) Crashed() bool {
	n.sim.mu.Lock()
	defer n.sim.mu.Unlock()
	return n.crashed
}

// Crash stops every task of the node wherever it is: each exits inside
// its current seam call, and nothing of the node runs again until
// Restart. If the caller is one of the node's tasks it exits too, so
// Crash does not return to it.
func (n *Node) Crash() {
	s := n.sim
	s.mu.Lock()
	n.crashed = true
	s.note("crash", n.name)
	cur := s.current
	var victims []*task
	for _, t := range s.tasks {
		if t.node == n && t != cur {
			victims = append(victims, t)
		}
	}
	s.mu.Unlock()
	for _, t := range victims {
		s.kill(t)
	}
	if cur != nil && cur.node == n {
		s.mu.Lock()
		cur.killed = true
		cur.selfExit = true
		s.mu.Unlock()
		runtime.Goexit()
	}
}

// Restart brings a crashed node back: tasks may be started on it again.
// The caller rebuilds the node's software from durable state.
func (n *Node) Restart() {
	s := n.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	n.crashed = false
	s.note("restart", n.name)
}

// SkewClock shifts the node's clock by d (ClockSkew and ClockJump faults).
// Timers keep running on true virtual time.
func (n *Node) SkewClock(d time.Duration) {
	s := n.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	n.skew += d
	s.note("skew", n.name, int64(d))
}

type nodeRuntime struct{ n *Node }

func (r nodeRuntime) Now() time.Time {
	s := r.n.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now.Add(r.n.skew)
}

func (r nodeRuntime) Sleep(ctx context.Context, d time.Duration) error {
	return r.n.sim.sleep(ctx, d)
}

func (r nodeRuntime) AfterFunc(d time.Duration, name string, f func()) func() bool {
	return r.n.sim.afterFunc(r.n, d, name, f)
}

func (r nodeRuntime) Go(name string, fn func()) { r.n.sim.spawn(r.n, name, fn) }

func (r nodeRuntime) NewSignal() rt.Signal { return &signal{sim: r.n.sim} }

func (r nodeRuntime) Rand(name string) rt.Rand { return r.n.sim.Rand(r.n.name + "/" + name) }

// Yield lets other tasks run before the caller continues: a scheduling
// point for simulated I/O.
func (n *Node) Yield() { n.sim.yield() }

// currentNode returns the node of the task holding the baton.
func (s *Sim) currentNode() *Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return nil
	}
	return s.current.node
}
