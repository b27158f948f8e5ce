package sim

import (
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/rt"
)

// sweepSeeds is the fixed seed set of the standard workload that every
// `go test ./...` runs.
const sweepSeeds = 300

func TestSeedsReplayBitForBit(t *testing.T) {
	byHash := map[uint64]uint64{}
	for seed := uint64(1); seed <= 20; seed++ {
		a, b := Run(StandardConfig(seed)), Run(StandardConfig(seed))
		if a.Trace != b.Trace || a.Summary() != b.Summary() {
			t.Fatalf("seed %d replayed differently:\n%s\n%s", seed, a.Summary(), b.Summary())
		}
		if other, dup := byHash[a.Trace]; dup {
			t.Fatalf("seeds %d and %d have the same trace %016x", other, seed, a.Trace)
		}
		byHash[a.Trace] = seed
	}
}

func TestStandardWorkloadSweep(t *testing.T) {
	sweep(t, StandardConfig, sweepSeeds)
}

func TestSwarmSweep(t *testing.T) {
	sweep(t, SwarmConfig, 100)
}

// sweepExtendMax bounds how far a sweep goes on past its seeds, as many
// times their number, while some fault has not fired: the rarest ones
// (StorageUnflushedLoss needs a crash between a commit and its fsync)
// fire in a few of every hundred swarm seeds, so any change to the
// schedule can move them out of a fixed range.
const sweepExtendMax = 4

func sweep(t *testing.T, configure func(uint64) Config, seeds uint64) {
	fired := map[Fault]uint64{}
	var ok, ops, crashes, midRun, resumed, compactions, summaryFaults int
	unfired := func() bool {
		for _, f := range swarmFaults {
			if fired[f] == 0 {
				return true
			}
		}
		return false
	}
	ran := uint64(0)
	for seed := uint64(1); seed <= seeds || (seed <= sweepExtendMax*seeds && unfired()); seed++ {
		ran = seed
		res := Run(configure(seed))
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		for f, st := range res.Faults {
			fired[f] += st.Fired
		}
		ok, ops, crashes = ok+res.OK, ops+res.Ops, crashes+res.Crashes
		midRun, resumed = midRun+res.DeletesMidRun, resumed+res.RunsResumed
		compactions, summaryFaults = compactions+res.Compactions, summaryFaults+res.SummaryFaults
	}
	// Compaction is in the workload: windows are compacted, and faults
	// hit the summarizer's calls too.
	if compactions == 0 || summaryFaults == 0 {
		t.Errorf("%d compactions in the final logs, %d faults in summarizer calls, in %d seeds", compactions, summaryFaults, ran)
	}
	for _, f := range swarmFaults {
		if fired[f] == 0 {
			t.Errorf("%s never fired in %d seeds", f, ran)
		}
	}
	if ok == 0 || crashes == 0 {
		t.Errorf("%d ok operations and %d node crashes in %d seeds", ok, crashes, ran)
	}
	t.Logf("%d seeds: %d ops, %d ok, %d crashes, %d deletes during a send, %d interrupted runs ended after the final restart, %d compactions (%d summarizer faults); fired %v",
		ran, ops, ok, crashes, midRun, resumed, compactions, summaryFaults, fired)
}

func TestRulesAreValidated(t *testing.T) {
	inj := NewInjector(New(1))
	for _, bad := range []Rule{
		{Fault: "Gremlins", Probability: 0.1},
		{Fault: StorageReadFail, Probability: 1.5},
		{Fault: StorageReadFail, Probability: 0.1, Ops: []Op{OpStorageCommit}},
		{Fault: LlmTimeout, Probability: 0.1, Ops: []Op{OpStorageGet}},
	} {
		if err := inj.Add(bad); err == nil {
			t.Errorf("rule %+v accepted", bad)
		}
	}
}

func TestRuleWindowsAndLimits(t *testing.T) {
	s := New(1)
	inj := NewInjector(s)
	inj.MustAdd(Rule{Fault: StorageWriteFail, Probability: 1, After: 3, MaxFires: 2})
	var fired []bool
	err := s.Run(func(r rt.Runtime) {
		for range 8 {
			_, ok := inj.Check(OpStorageCommit)
			fired = append(fired, ok)
		}
		if _, ok := inj.Check(OpStorageGet); ok {
			t.Error("a commit fault fired at a read")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{false, false, false, true, true, false, false, false}
	for i := range want {
		if fired[i] != want[i] {
			t.Fatalf("fired = %v, want %v", fired, want)
		}
	}
	if st := inj.Stats()[StorageWriteFail]; st.Fired != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestUnhandledFaultFailsTheRun(t *testing.T) {
	s := New(1)
	inj := NewInjector(s)
	err := s.Run(func(r rt.Runtime) {
		inj.Unhandled(OpStorageGet, LlmTimeout)
		r.Sleep(t.Context(), 0)
	})
	if err == nil || !strings.Contains(err.Error(), "cannot apply") {
		t.Fatalf("err = %v", err)
	}
}
