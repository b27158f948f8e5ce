package check

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrNotLinearizable is wrapped by the error Linearizable returns when an
// agent's operations have no linearization.
var ErrNotLinearizable = errors.New("not linearizable")

// ErrCheckTimeout is wrapped by the error Linearizable returns when the
// search for an agent hit its timeout. It is not a pass.
var ErrCheckTimeout = errors.New("linearizability check timed out")

// agentState is one possible state of one agent.
//
// # Unknown operations: deferred effects
//
// An Unknown update/delete/send may take effect at any single point after
// its call, or never. Applying it where porcupine linearizes it, with a
// branch for "no effect" and one for "took effect", is exact, but each
// Unknown op stays pending to the end of the history, and the search
// backtracks over every placement of every Unknown op: with n Unknown
// sends followed by n gets that each see the count grow by one, that
// model took 1.3s for n=15 and did not finish in 5s for n=20 (this model:
// under 1ms for n=25; see TestLateUnknownEffects).
//
// Instead, linearizing an Unknown op only records its effect as pending in
// the state; a later step fires a pending effect when, and only when, an
// observation needs it, and each effect fires at most once:
//
//   - PendingNames: the names of Unknown updates not yet applied (a
//     sorted multiset). An OK get that found the agent with a name other
//     than Name consumes one pending update with that name.
//   - PendingSends: the number of Unknown sends not yet applied. A pending
//     send appends an unknown number k >= 1 of messages, so Messages stays
//     exact: when an OK get reads a count m > Messages, or an OK send has
//     FirstSeq m > Messages, one pending send fires with k = m - Messages.
//   - PendingDelete: some Unknown delete is not yet applied. A not-found
//     answer while the agent exists fires it.
//
// Firing only what an observation needs loses nothing: a state with more
// pending effects and the same agent can do everything a state with fewer
// can (fire the rest later, or never), and firing two effects where one
// explains the observation (two updates, two sends with k summing to the
// jump) only removes options. So the model is deterministic (except for
// Unknown creates). Effects of Unknown ops on a deleted agent are dropped:
// IDs are never reused, so a deleted agent never exists again.
//
// For the same reason, recording an effect as pending earlier never
// hurts: a run with an extra pending effect steps wherever the run without
// it does, with the same agent and the extra effect still pending (or
// consumed in place of an identical one). So an Unknown op is best
// linearized as early as possible, i.e. at its call, and Linearizable
// gives it the interval [Call, Call]: a history is linearizable with the
// Unknown ops pinned to their calls iff it is with them pending forever
// ([Call, ∞)). The effect itself can still apply at any time after the
// call. Pinning matters for histories that are not linearizable: with
// [Call, ∞) porcupine must try every subset of the Unknown ops at every
// point before it can report a violation (with 50 Unknown ops in
// TestLateUnknownEffects it timed out; pinned, it answers at once).
//
// TestAgainstReference checks on thousands of small random histories that
// this model, pinned, agrees with the straightforward one (apply or skip
// the effect where the op is linearized, op pending until ∞).
//
// Unknown creates are never recorded (their ID is unknown); should one be,
// it is handled by branching at its linearization point instead, and it
// keeps the interval [Call, ∞).
//
// Deleted agents are canonical ({Deleted: true}, everything else zero) so
// that all deleted states are equal.
type agentState struct {
	Exists   bool
	Deleted  bool
	Name     string
	Messages uint64

	PendingNames  []string // sorted; never mutated once in a state
	PendingSends  int
	PendingDelete bool
}

func (s agentState) String() string {
	switch {
	case s.Deleted:
		return "deleted"
	case !s.Exists:
		return "absent" + s.pending()
	}
	return fmt.Sprintf("<name=%q messages=%d%s>", s.Name, s.Messages, s.pending())
}

func (s agentState) pending() string {
	var p []string
	if len(s.PendingNames) > 0 {
		p = append(p, fmt.Sprintf("updates %q", s.PendingNames))
	}
	if s.PendingSends > 0 {
		p = append(p, fmt.Sprintf("%d sends", s.PendingSends))
	}
	if s.PendingDelete {
		p = append(p, "a delete")
	}
	if len(p) == 0 {
		return ""
	}
	return "; pending: " + strings.Join(p, ", ")
}

func (s agentState) equal(t agentState) bool {
	return s.Exists == t.Exists && s.Deleted == t.Deleted && s.Name == t.Name &&
		s.Messages == t.Messages && s.PendingSends == t.PendingSends &&
		s.PendingDelete == t.PendingDelete && slices.Equal(s.PendingNames, t.PendingNames)
}

var deletedState = agentState{Deleted: true}

// absent returns s made compatible with a not-found answer: s itself if
// the agent does not exist, the deleted state if a pending delete can
// fire, or false.
func (s agentState) absent() (agentState, bool) {
	switch {
	case !s.Exists:
		return s, true
	case s.PendingDelete:
		return deletedState, true
	}
	return s, false
}

// reachCount returns s with Messages == m, firing one pending send if the
// count must grow, or false.
func (s agentState) reachCount(m uint64) (agentState, bool) {
	switch {
	case m == s.Messages:
		return s, true
	case m > s.Messages && s.PendingSends > 0:
		s.Messages = m
		s.PendingSends--
		return s, true
	}
	return s, false
}

// step is the step of the agent model: the states op may leave when
// applied to s, or none if op's outcome is impossible in s. It returns at
// most one state, except for an Unknown create.
//
// Failed ops and Unknown gets are never passed here (see Linearizable);
// they are handled anyway as no-ops.
func step(s agentState, op *Op) []agentState {
	one := func(t agentState, ok bool) []agentState {
		if !ok {
			return nil
		}
		return []agentState{t}
	}
	if op.Outcome == Failed || (op.Outcome == Unknown && op.Kind == KindGet) {
		return []agentState{s}
	}
	if op.Kind == KindCreate {
		if s.Exists || s.Deleted {
			return one(s, op.Outcome == Unknown)
		}
		created := s
		created.Exists, created.Name, created.Messages = true, op.Name, 0
		if op.Outcome == Unknown {
			return []agentState{s, created}
		}
		return []agentState{created}
	}
	if op.Outcome == Unknown {
		switch {
		case s.Deleted:
		case op.Kind == KindUpdate:
			i, _ := slices.BinarySearch(s.PendingNames, op.Name)
			s.PendingNames = slices.Insert(slices.Clone(s.PendingNames), i, op.Name)
		case op.Kind == KindSend:
			s.PendingSends++
		case op.Kind == KindDelete || op.Kind == KindPurge:
			s.PendingDelete = true
		}
		return []agentState{s}
	}
	// OK.
	if !op.Found {
		return one(s.absent())
	}
	if op.Kind == KindPurge {
		return []agentState{deletedState} // gone now, whether or not it was there
	}
	if !s.Exists {
		return nil
	}
	switch op.Kind {
	case KindGet:
		if s.Name != op.Name {
			i, ok := slices.BinarySearch(s.PendingNames, op.Name)
			if !ok {
				return nil
			}
			s.Name = op.Name
			s.PendingNames = slices.Delete(slices.Clone(s.PendingNames), i, i+1)
			if len(s.PendingNames) == 0 {
				s.PendingNames = nil
			}
		}
		return one(s.reachCount(op.Messages))
	case KindUpdate:
		s.Name = op.Name
		return []agentState{s}
	case KindDelete:
		return []agentState{deletedState}
	case KindSend:
		t, ok := s.reachCount(op.FirstSeq)
		t.Messages += op.Messages
		return one(t, ok)
	}
	return nil
}

func hashState(s agentState) uint64 {
	h := fnv.New64a()
	var b [18]byte
	if s.Exists {
		b[0] |= 1
	}
	if s.Deleted {
		b[0] |= 2
	}
	if s.PendingDelete {
		b[0] |= 4
	}
	b[1] = byte(s.PendingSends)
	for i := range 8 {
		b[2+i] = byte(s.Messages >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(s.Name))
	for _, n := range s.PendingNames {
		h.Write([]byte{0})
		h.Write([]byte(n))
	}
	return h.Sum64()
}

// agentModel is the per-agent model: porcupine's power-set construction
// over step, so a porcupine state is a set of possible agentStates.
var agentModel = (&porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{agentState{}} },
	Step: func(state, input, _ interface{}) []interface{} {
		next := step(state.(agentState), input.(*Op))
		out := make([]interface{}, len(next))
		for i, s := range next {
			out[i] = s
		}
		return out
	},
	Equal: func(a, b interface{}) bool { return a.(agentState).equal(b.(agentState)) },
	Hash:  func(s interface{}) uint64 { return hashState(s.(agentState)) },
	DescribeOperation: func(input, _ interface{}) string {
		return input.(*Op).String()
	},
	DescribeState: func(s interface{}) string { return s.(agentState).String() },
}).ToModel()

// Linearizable checks every agent's operations (create/get/update/delete/
// send) against the agent model with porcupine, one agent at a time in
// order of first appearance, and returns nil or an error naming the first
// non-linearizable agent with a short rendering of its operations.
//
// Failed operations and Unknown gets are left out of porcupine's input:
// they changed nothing, so they linearize anywhere. An Unknown
// update/delete/send never returned, but the porcupine operation only
// records its effect as pending, to be applied at most once, at any later
// point, or never; that operation is pinned to [Call, Call], which is
// equivalent to [Call, ∞) and much cheaper to search (see agentState for
// this representation and the argument, including an unknown number of
// appended messages). An Unknown create gets [Call, math.MaxInt64].
//
// timeout bounds porcupine's search for each agent (0: no bound). Hitting
// it is an error wrapping ErrCheckTimeout, not a pass. A violation wraps
// ErrNotLinearizable.
func Linearizable(h *History, timeout time.Duration) error {
	if err := validate(h); err != nil {
		return err
	}
	order, idx := byAgent(h)
	for _, agent := range order {
		ops := porcupineOps(h, idx[agent], true)
		switch porcupine.CheckOperationsTimeout(agentModel, ops, timeout) {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			return fmt.Errorf("agent %s: %w after %v (%d ops); not a pass", agent, ErrCheckTimeout, timeout, len(ops))
		}
		return fmt.Errorf("agent %s: %w:\n%s", agent, ErrNotLinearizable, explain(h, ops, timeout))
	}
	return nil
}

// porcupineOps converts the ops h.Ops[i], i in idx, to porcupine's input,
// leaving out Failed ops and Unknown gets. With pin, Unknown ops other
// than creates get the interval [Call, Call]; otherwise [Call, ∞).
func porcupineOps(h *History, idx []int, pin bool) []porcupine.Operation {
	var ops []porcupine.Operation
	for _, i := range idx {
		op := &h.Ops[i]
		if op.Outcome == Failed || (op.Outcome == Unknown && op.Kind == KindGet) {
			continue
		}
		ret := op.Return
		switch {
		case op.Outcome != Unknown:
		case pin && op.Kind != KindCreate:
			ret = op.Call
		default:
			ret = math.MaxInt64
		}
		ops = append(ops, porcupine.Operation{
			ClientId: op.Client,
			Input:    op,
			Call:     op.Call,
			Return:   ret,
			Metadata: i,
		})
	}
	return ops
}

// explain renders a non-linearizable agent history: the end of the longest
// linearization porcupine found, the state it leads to, and the earliest
// operations it could not place.
func explain(h *History, ops []porcupine.Operation, timeout time.Duration) string {
	const tail, head = 6, 10
	_, info := porcupine.CheckOperationsVerbose(agentModel, ops, timeout)
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %d ops; longest linearizable prefix has %d", len(ops), len(longest))
	state := agentModel.Init()
	placed := make(map[int]bool)
	for _, o := range longest {
		_, state = agentModel.Step(state, o.Input, o.Output)
		placed[o.Metadata.(int)] = true
	}
	fmt.Fprintf(&b, ", leading to %s\n", agentModel.DescribeState(state))
	if skip := len(longest) - tail; skip > 0 {
		fmt.Fprintf(&b, "  ... %d earlier ops\n", skip)
		longest = longest[skip:]
	}
	for _, o := range longest {
		i := o.Metadata.(int)
		fmt.Fprintf(&b, "  #%d %v\n", i, h.Ops[i])
	}
	var rest []int
	for _, o := range ops {
		if i := o.Metadata.(int); !placed[i] {
			rest = append(rest, i)
		}
	}
	sort.Slice(rest, func(a, b int) bool {
		oa, ob := &h.Ops[rest[a]], &h.Ops[rest[b]]
		if oa.Call != ob.Call {
			return oa.Call < ob.Call
		}
		return rest[a] < rest[b]
	})
	b.WriteString("  cannot be placed next (by call time):\n")
	for n, i := range rest {
		if n == head {
			fmt.Fprintf(&b, "  ... and %d more\n", len(rest)-head)
			break
		}
		fmt.Fprintf(&b, "  #%d %v\n", i, h.Ops[i])
	}
	return strings.TrimRight(b.String(), "\n")
}
