package check

import (
	"fmt"
	"strings"
	"time"
)

// RunState is a run as committed storage shows it, read without
// activating its agent.
type RunState struct {
	ID, Agent, Status string
}

// InterruptedRunsEnded checks that every run had ended (finished, failed
// or cancelled) once the nodes had restarted and run for a while with no
// client request: the runs a crash or a shutdown interrupted must be
// resumed or failed by the nodes themselves, not left in progress until
// a request happens to touch their agents. runs are the runs read from
// storage at the end of that while; running names the statuses of runs
// in progress.
func InterruptedRunsEnded(runs []RunState, running func(status string) bool, waited time.Duration) error {
	var stuck []string
	for _, r := range runs {
		if running(r.Status) {
			stuck = append(stuck, fmt.Sprintf("%s of agent %s (%s)", r.ID, r.Agent, r.Status))
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("invariant: %d runs still in progress %v after the restart with no client request (interrupted runs must be resumed or failed): %s",
			len(stuck), waited, strings.Join(stuck, ", "))
	}
	return nil
}

// DeleteDuringSend is a send and a delete of the send's agent that a
// client issued while the send waited for its run.
type DeleteDuringSend struct {
	Send, Delete Op
}

// SendsEndAfterDelete checks that every send whose agent a delete
// removed while it waited was answered within bound of the delete's
// answer (a "not found" answer, its run's end, or any other), instead of
// waiting for a run that nobody drives any more. Pairs whose delete did
// not find the agent, or did not answer before the send, check nothing.
func SendsEndAfterDelete(pairs []DeleteDuringSend, bound time.Duration) error {
	for _, p := range pairs {
		if p.Delete.Outcome != OK || !p.Delete.Found || p.Delete.Return >= p.Send.Return {
			continue
		}
		if late := time.Duration(p.Send.Return - p.Delete.Return); late > bound {
			return fmt.Errorf("invariant: a send to agent %s (called at %v, outcome %v) was answered %v after a delete of its agent returned at %v; want within %v",
				p.Send.Agent, time.Duration(p.Send.Call), p.Send.Outcome, late, time.Duration(p.Delete.Return), bound)
		}
	}
	return nil
}

// RunIndexesAgree checks the two orderings of runs against each other:
// each agent's own ordering (byAgent: the run IDs listed for that agent,
// oldest first) lists exactly the runs the index of all runs lists for it
// (all, oldest first), in the same order. Both are written by the
// transaction that records a run and read from committed storage.
func RunIndexesAgree(all []RunState, byAgent map[string][]string) error {
	fromAll := map[string][]string{}
	for _, r := range all {
		fromAll[r.Agent] = append(fromAll[r.Agent], r.ID)
	}
	for agentID, ids := range byAgent {
		want := fromAll[agentID]
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			return fmt.Errorf("invariant: agent %s's own ordering lists %d runs %v; the index of all runs lists %d %v",
				agentID, len(ids), ids, len(want), want)
		}
	}
	for agentID, want := range fromAll {
		if _, ok := byAgent[agentID]; !ok {
			return fmt.Errorf("invariant: agent %s has %d runs in the index of all runs and none read from its own ordering", agentID, len(want))
		}
	}
	return nil
}
