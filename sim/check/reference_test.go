package check

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// refState is a state of the reference model: the straightforward reading
// of the spec, in which an Unknown op takes effect at its linearization
// point (anywhere in [Call, ∞)) or not at all. An Unknown send that may
// have appended k >= 1 messages leaves the count at "Messages or more"
// (AtLeast), which the next observation makes exact.
type refState struct {
	Exists, Deleted bool
	Name            string
	Messages        uint64
	AtLeast         bool
}

func refStep(s refState, op *Op) []refState {
	unknown := op.Outcome == Unknown
	count := func(n uint64) bool {
		if s.AtLeast {
			return n >= s.Messages
		}
		return n == s.Messages
	}
	absent := func() []refState {
		if s.Exists {
			return nil
		}
		return []refState{s}
	}
	deleted := refState{Deleted: true}
	switch op.Kind {
	case KindCreate:
		created := refState{Exists: true, Name: op.Name}
		switch {
		case s.Exists || s.Deleted:
			if unknown {
				return []refState{s}
			}
			return nil
		case unknown:
			return []refState{s, created}
		}
		return []refState{created}
	case KindGet:
		switch {
		case !op.Found:
			return absent()
		case !s.Exists || s.Name != op.Name || !count(op.Messages):
			return nil
		}
		s.Messages, s.AtLeast = op.Messages, false
		return []refState{s}
	case KindUpdate:
		switch {
		case unknown:
			if !s.Exists {
				return []refState{s}
			}
			t := s
			t.Name = op.Name
			return []refState{s, t}
		case !op.Found:
			return absent()
		case !s.Exists:
			return nil
		}
		s.Name = op.Name
		return []refState{s}
	case KindDelete:
		switch {
		case unknown:
			if !s.Exists {
				return []refState{s}
			}
			return []refState{s, deleted}
		case !op.Found:
			return absent()
		case !s.Exists:
			return nil
		}
		return []refState{deleted}
	case KindSend:
		switch {
		case unknown:
			if s.Exists {
				s.AtLeast = true
			}
			return []refState{s}
		case !op.Found:
			return absent()
		case !s.Exists || !count(op.FirstSeq):
			return nil
		}
		s.Messages, s.AtLeast = op.FirstSeq+op.Messages, false
		return []refState{s}
	}
	return nil
}

var refModel = (&porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{refState{}} },
	Step: func(state, input, _ interface{}) []interface{} {
		var out []interface{}
		for _, s := range refStep(state.(refState), input.(*Op)) {
			out = append(out, s)
		}
		return out
	},
}).ToModel()

// mutate perturbs one op of h at random, to make near-valid histories.
func mutate(rng *rand.Rand, h *History) {
	var names []string
	var agentOps []int
	for i, op := range h.Ops {
		if op.Kind == KindList {
			continue
		}
		agentOps = append(agentOps, i)
		if op.Kind == KindUpdate || op.Kind == KindCreate {
			names = append(names, op.Name)
		}
	}
	if len(agentOps) == 0 {
		return
	}
	op := &h.Ops[agentOps[rng.IntN(len(agentOps))]]
	bump := func(n uint64) uint64 {
		if n > 0 && rng.IntN(2) == 0 {
			return n - 1
		}
		return n + 1
	}
	switch rng.IntN(6) {
	case 0:
		if op.Kind != KindCreate {
			op.Found = !op.Found
		}
	case 1:
		if op.Outcome == OK {
			op.Outcome, op.Return = Unknown, 0
		}
	case 2:
		if op.Outcome == OK {
			op.Outcome = Failed
		}
	case 3:
		op.Name = names[rng.IntN(len(names))]
	case 4:
		op.Messages = bump(op.Messages)
	case 5:
		op.FirstSeq = bump(op.FirstSeq)
	}
}

// TestAgainstReference checks, on many small random near-valid single-agent
// histories, that the model Linearizable uses (deferred effects, Unknown
// ops pinned to their calls) agrees with the reference model (Unknown ops
// applied where linearized, pending forever), and with itself unpinned.
func TestAgainstReference(t *testing.T) {
	const trials = 3000
	rng := rand.New(rand.NewPCG(11, 12))
	legal, illegal, ops, unknowns := 0, 0, 0, 0
	for trial := range trials {
		h, _ := generateWidth(uint64(trial), 1, 8+rng.IntN(16), 30, 200)
		for range rng.IntN(4) {
			mutate(rng, h)
		}
		_, idx := byAgent(h)
		all := idx["agent-00"]
		for _, i := range all {
			ops++
			if h.Ops[i].Outcome == Unknown {
				unknowns++
			}
		}
		check := func(m porcupine.Model, pin bool) porcupine.CheckResult {
			return porcupine.CheckOperationsTimeout(m, porcupineOps(h, all, pin), 10*time.Second)
		}
		ref, pinned, unpinned := check(refModel, false), check(agentModel, true), check(agentModel, false)
		if ref != pinned || ref != unpinned {
			var ops string
			for _, i := range all {
				ops += fmt.Sprintf("\n  #%d %v", i, h.Ops[i])
			}
			t.Fatalf("trial %d: reference %v, pinned %v, unpinned %v:%s", trial, ref, pinned, unpinned, ops)
		}
		if ref == porcupine.Ok {
			legal++
		} else {
			illegal++
		}
	}
	t.Logf("%d histories (%.1f agent ops, %.1f Unknown on average): %d linearizable, %d not; all models agree",
		trials, float64(ops)/trials, float64(unknowns)/trials, legal, illegal)
}
