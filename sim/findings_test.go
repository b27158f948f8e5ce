package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
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

// conflictCounter counts the commits that write a shared block and fail
// with storage.ErrConflict: evidence that edits really raced.
type conflictCounter struct {
	*Store
	n *int
}

func (c conflictCounter) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(c), nil
}

func (c conflictCounter) Commit(ctx context.Context, req *storage.CommitRequest) error {
	err := c.Store.Commit(ctx, req)
	if errors.Is(err, storage.ErrConflict) {
		for _, w := range req.Writes {
			if bytes.HasPrefix(w.Key, actor.SharedKey("block")) {
				*c.n++
				break
			}
		}
	}
	return err
}

// TestSharedBlockContention: agents append to one shared block at once
// while clients replace its value, with the standard faults. Every seed
// must pass (SharedBlockConsistent among the checks); edits must have
// raced (conflicting commits), appends and whole-value writes must have
// been acknowledged, and runs must have stopped for approval, refused a
// send meanwhile, and resumed when answered.
func TestSharedBlockContention(t *testing.T) {
	const seeds = 15
	var conflicts, appends, writes, stops, refused, answers, ok int
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := sharedBlockConfig(seed)
		cfg.Mix.PatchBlock = 1
		cfg.WrapStore = func(s *Store, _ rt.Runtime) storage.Store { return conflictCounter{Store: s, n: &conflicts} }
		res := Run(cfg)
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		appends, writes, ok = appends+res.SharedAppends, writes+res.SharedWrites, ok+res.OK
		stops, refused, answers = stops+res.ApprovalStops, refused+res.ApprovalRefused, answers+res.ApprovalAnswers
	}
	if conflicts == 0 || appends == 0 || writes == 0 || stops == 0 || refused == 0 || answers == 0 || ok == 0 {
		t.Errorf("%d seeds: %d conflicting shared-block commits, %d appends, %d block writes, %d approval stops, %d refused sends, %d answers, %d ok ops: each must be > 0",
			seeds, conflicts, appends, writes, stops, refused, answers, ok)
	}
	t.Logf("%d seeds: %d ok ops; shared block: %d conflicting commits, %d committed appends, %d acknowledged writes; approvals: %d stops, %d refused sends, %d answers",
		seeds, ok, conflicts, appends, writes, stops, refused, answers)
}

// TestSharedRecordsChange: the shared block is deleted (and the next
// generation created and attached) and the custom tool renamed, edited
// and deleted while agents use them, with the standard faults. Every
// seed must pass (SharedBlocksConsistent, no deleted block in a prompt
// or a read, CustomToolCallsResolved among the checks); deletions, edits
// and calls to the tool, some of them by a name already gone, must have
// happened.
func TestSharedRecordsChange(t *testing.T) {
	const seeds = 15
	var deletes, edits, toolDeletes, calls, stale, appends int
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := sharedBlockConfig(seed)
		cfg.Mix.PatchBlock = 6
		res := Run(cfg)
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		deletes, edits, toolDeletes = deletes+res.BlockDeletes, edits+res.ToolEdits, toolDeletes+res.ToolDeletes
		calls, stale, appends = calls+res.CustomToolCalls, stale+res.StaleToolCalls, appends+res.SharedAppends
	}
	if deletes == 0 || edits == 0 || toolDeletes == 0 || calls == 0 || stale == 0 || appends == 0 {
		t.Errorf("%d seeds: %d block deletions, %d tool edits, %d tool deletions, %d calls to the tool (%d by a gone name), %d committed appends: each must be > 0",
			seeds, deletes, edits, toolDeletes, calls, stale, appends)
	}
	t.Logf("%d seeds: %d block deletions, %d tool edits, %d tool deletions, %d calls to the tool (%d by a gone name), %d committed appends",
		seeds, deletes, edits, toolDeletes, calls, stale, appends)
}

// TestConversationsInWorkload: the standard workload creates
// conversations, logs messages in them, and sends to one conversation of
// an agent while another send to the same agent runs.
func TestConversationsInWorkload(t *testing.T) {
	const seeds = 15
	var convs, msgs, overlaps int
	for seed := uint64(1); seed <= seeds; seed++ {
		res := Run(StandardConfig(seed))
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		convs, msgs, overlaps = convs+res.Conversations, msgs+res.ConversationMessages, overlaps+res.ConversationOverlaps
	}
	if convs == 0 || msgs == 0 || overlaps == 0 {
		t.Errorf("%d seeds: %d conversations, %d messages in their logs, %d overlapping sends: each must be > 0", seeds, convs, msgs, overlaps)
	}
	t.Logf("%d seeds: %d conversations, %d messages in their logs, %d overlapping sends", seeds, convs, msgs, overlaps)
}
