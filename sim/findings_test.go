package sim

import (
	"testing"
)

// The fault-injection findings as tests, at the service layer, with the
// findings' fault types and rates. Each runs findingSeeds seeds, requires
// every seed to pass all checkers, requires its faults to have fired and
// some operations to have succeeded.

const findingSeeds = 100

func finding(t *testing.T, base Config, faults ...Fault) {
	t.Helper()
	fired := map[Fault]uint64{}
	ok, ops := 0, 0
	for seed := uint64(1); seed <= findingSeeds; seed++ {
		cfg := base
		cfg.Seed = seed
		res := Run(cfg)
		if res.Err != nil {
			t.Fatalf("%s\n%v\n(deterministic: go test -run '^%s$' ./sim/ replays it)", res.Summary(), res.Err, t.Name())
		}
		for f, st := range res.Faults {
			fired[f] += st.Fired
		}
		ok += res.OK
		ops += res.Ops
	}
	for _, f := range faults {
		if fired[f] == 0 {
			t.Errorf("%s never fired in %d seeds", f, findingSeeds)
		}
	}
	if ok == 0 {
		t.Errorf("no operation succeeded in %d seeds", findingSeeds)
	}
	t.Logf("%d seeds: %d ops, %d ok; fired %v", findingSeeds, ops, ok, fired)
}

func TestDeactivateDuringCreateCrash(t *testing.T) {
	// 20 agents created, each read back at once after a forced
	// deactivation, so the read comes from storage.
	finding(t, Config{
		Clients: 4, OpsPerClient: 5, Mix: Mix{Create: 1, Get: 1}, ForceDeactivate: true,
		Rules: []Rule{{Fault: CrashDuringTransaction, Probability: 0.5}},
	}, CrashDuringTransaction)
}

func TestUpdateWithForcedDeactivation(t *testing.T) {
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 1, Get: 2, Update: 4}, ForceDeactivate: true,
		Rules: []Rule{{Fault: CrashDuringTransaction, Probability: 0.3}},
	}, CrashDuringTransaction)
}

func TestCreateAgentCrashAfterWrite(t *testing.T) {
	finding(t, Config{
		Clients: 4, OpsPerClient: 10, Mix: Mix{Create: 3, Get: 2, List: 1},
		Rules: []Rule{{Fault: CrashAfterWrite, Probability: 0.3}},
	}, CrashAfterWrite)
}

func TestDeleteAgentAtomicityCrash(t *testing.T) {
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 2, Get: 2, Delete: 2, Send: 2, List: 1},
		Rules: []Rule{{Fault: CrashAfterWrite, Probability: 0.4}},
	}, CrashAfterWrite)
}

func TestUpdateAgentConcurrentWithFaults(t *testing.T) {
	// Eight clients updating few agents at once.
	finding(t, Config{
		Clients: 8, OpsPerClient: 10, Mix: Mix{Create: 1, Get: 2, Update: 6},
		Rules: []Rule{
			{Fault: CrashAfterWrite, Probability: 0.2},
			{Fault: StorageWriteFail, Probability: 0.2},
		},
	}, CrashAfterWrite, StorageWriteFail)
}

func TestAgentStateCorruption(t *testing.T) {
	// Reads after forced deactivation, so the state is really read back.
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 1, Get: 3, Update: 2}, ForceDeactivate: true,
		Rules: []Rule{{Fault: StorageCorruption, Probability: 0.3}},
	}, StorageCorruption)
}

func TestSendMessageCrashAfterLLM(t *testing.T) {
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 1, Get: 1, Send: 5},
		Rules: []Rule{{Fault: CrashAfterWrite, Probability: 0.3}},
	}, CrashAfterWrite)
}

func TestDeleteCrashBetweenClearAndDeactivate(t *testing.T) {
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 2, Get: 2, Delete: 3, Send: 1},
		Rules: []Rule{{Fault: CrashAfterWrite, Probability: 0.5}},
	}, CrashAfterWrite)
}

func TestDeleteThenRecreate(t *testing.T) {
	// Agents are deleted and new ones created under the same names.
	finding(t, Config{
		Clients: 4, OpsPerClient: 15, Mix: Mix{Create: 3, Get: 2, Delete: 3, List: 1},
		Rules: []Rule{{Fault: CrashAfterWrite, Probability: 0.3}},
	}, CrashAfterWrite)
}
