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

func sweep(t *testing.T, configure func(uint64) Config, seeds uint64) {
	fired := map[Fault]uint64{}
	var ok, ops, crashes, compactions, summaryFaults int
	for seed := uint64(1); seed <= seeds; seed++ {
		res := Run(configure(seed))
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		for f, st := range res.Faults {
			fired[f] += st.Fired
		}
		ok, ops, crashes = ok+res.OK, ops+res.Ops, crashes+res.Crashes
		compactions, summaryFaults = compactions+res.Compactions, summaryFaults+res.SummaryFaults
	}
	// Compaction is in the workload: windows are compacted, and faults
	// hit the summarizer's calls too.
	if compactions == 0 || summaryFaults == 0 {
		t.Errorf("%d compactions in the final logs, %d faults in summarizer calls, in %d seeds", compactions, summaryFaults, seeds)
	}
	for _, f := range swarmFaults {
		if fired[f] == 0 {
			t.Errorf("%s never fired in %d seeds", f, seeds)
		}
	}
	if ok == 0 || crashes == 0 {
		t.Errorf("%d ok operations and %d node crashes in %d seeds", ok, crashes, seeds)
	}
	t.Logf("%d seeds: %d ops, %d ok, %d crashes, %d compactions (%d summarizer faults); fired %v", seeds, ops, ok, crashes, compactions, summaryFaults, fired)
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
