package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
)

// Run handling in the workload: deletes during a send's run, and the
// resumption of interrupted runs after restarts.
const (
	// deleteMidRunOneIn: of the Delete operations, 1/deleteMidRunOneIn
	// send to the agent and delete it while the send waits (deleteMidRun).
	deleteMidRunOneIn = 2
	// midRunDelayMax bounds the pause between that send and the delete;
	// the simulated model answers in 50 ms to 1 s.
	midRunDelayMax = 1500 * time.Millisecond
	// midRunAnswerMax bounds how long after the delete's answer the send
	// may still wait (check.SendsEndAfterDelete).
	midRunAnswerMax = 10 * time.Second
	// resumeWait is how long the restarted nodes have, with no client
	// request, to end the runs that crashes and the shutdown interrupted
	// (check.InterruptedRunsEnded); resumePoll is how often storage is
	// read meanwhile.
	resumeWait = 3 * time.Minute
	resumePoll = time.Second
	// recoverAttemptsMax bounds a booting node's attempts to read the
	// active runs index (service.RecoverRuns) through storage faults.
	recoverAttemptsMax = 30
)

// runWork is the workload's run handling: deletes during runs and the
// runs left at the end.
type runWork struct {
	*world
	// midRun are the deletes issued while a send to the agent waited
	// (deleteMidRun); runsAtEnd the runs in storage once the restarted
	// nodes had had resumeWait to end the interrupted ones.
	midRun    []check.DeleteDuringSend
	runsAtEnd []check.RunState
	// runsByAgent are the run IDs each agent in runsAtEnd lists from its
	// own ordering of runs, oldest first (check.RunIndexesAgree).
	runsByAgent map[string][]string
	// midRng draws deleteMidRun's choices, apart from the workload's.
	midRng rt.Rand
}

// checks are the run-handling invariants.
func (w *runWork) checks() []func() error {
	return []func() error{
		func() error {
			return check.InterruptedRunsEnded(w.runsAtEnd, func(st string) bool { return st == agent.RunRunning || st == agent.RunCreated }, resumeWait)
		},
		func() error { return check.SendsEndAfterDelete(w.midRun, midRunAnswerMax) },
		func() error { return check.RunIndexesAgree(w.runsAtEnd, w.runsByAgent) },
	}
}

// recoverRuns has a freshly booted node resume the interrupted runs, in
// a task of its own, retrying through storage faults.
func (n *server) recoverRuns() {
	nr, svc, ctx := n.node.Runtime(), n.svc, n.ctx
	nr.Go("recover runs", func() {
		for range recoverAttemptsMax {
			if _, err := svc.RecoverRuns(ctx); err == nil || ctx.Err() != nil {
				return
			}
			nr.Sleep(ctx, time.Second)
		}
	})
}

// deleteMidRun sends to the agent and, while the send waits for its run,
// deletes the agent through the same node; the send must then be
// answered promptly (check.SendsEndAfterDelete).
func (w *runWork) deleteMidRun(r rt.Runtime, c, i int, target string) {
	ctx := context.Background()
	n := w.servers[rt.Intn(w.midRng, len(w.servers))]
	sent := rt.NewEvent(r)
	var send check.Op
	content := fmt.Sprintf("doomed %d/%d%s%d%s%s", c, i, sentMarker, w.sim.Now().Sub(Epoch).Nanoseconds(), agentMarker, target)
	r.Go(fmt.Sprint("client", c, "-doomed-send"), func() {
		_, send, _ = w.sendOn(r, n, c, target, target, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: content}}})
		sent.Set()
	})
	r.Sleep(ctx, time.Duration(rt.Intn(w.midRng, int(midRunDelayMax/time.Millisecond)))*time.Millisecond)
	del, _ := w.callOn(r, n, c, check.Op{Kind: check.KindDelete, Agent: target}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
		return svc.DeleteAgent(ctx, target)
	})
	w.conv.cascadeDelete(del)
	if err := sent.Wait(ctx); err != nil {
		w.sim.Fail(err)
		return
	}
	w.res.DeletesMidRun++
	w.midRun = append(w.midRun, check.DeleteDuringSend{Send: send, Delete: del})
}

// awaitRunsEnded waits, up to resumeWait and with no request to any
// agent, for the runs in progress in storage to end, and keeps the runs
// read last for check.InterruptedRunsEnded. It reads runs as GET
// /v1/runs does: from committed storage, activating no agent.
func (w *runWork) awaitRunsEnded(r rt.Runtime) error {
	began := r.Now()
	interrupted := -1
	for {
		runs, err := w.listAllRuns(r, w.servers[0])
		if err != nil {
			return err
		}
		w.runsAtEnd = w.runsAtEnd[:0]
		running := 0
		for _, run := range runs {
			w.runsAtEnd = append(w.runsAtEnd, check.RunState{ID: run.ID, Agent: run.AgentID, Status: run.Status})
			if !run.Done() {
				running++
			}
		}
		if interrupted < 0 {
			interrupted = running
		}
		if running == 0 || r.Now().Sub(began) >= resumeWait {
			w.res.RunsResumed = interrupted - running
			return w.readRunsByAgent(r, w.servers[0])
		}
		r.Sleep(context.Background(), resumePoll)
	}
}

// listAllRuns reads every run, oldest first, a page at a time as GET
// /v1/runs pages them (after cursors), retrying each page.
func (w *runWork) listAllRuns(r rt.Runtime, n *server) ([]*agent.Run, error) {
	var runs []*agent.Run
	after := ""
	for {
		var page *service.RunPage
		var err error
		for attempt := 0; ; attempt++ {
			ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
			page, err = n.svc.ListRuns(ctx, service.RunQuery{After: after, Limit: service.ListLimitMax})
			cancel()
			if err == nil {
				break
			}
			if attempt == finalReadAttempts {
				return nil, fmt.Errorf("list runs with faults off: %w", err)
			}
			r.Sleep(context.Background(), resumePoll)
		}
		runs = append(runs, page.Runs...)
		if len(page.Runs) < service.ListLimitMax {
			return runs, nil
		}
		after = page.Runs[len(page.Runs)-1].ID
	}
}

// readRunsByAgent reads each agent's runs (those w.runsAtEnd lists) from
// the agent's own ordering, as GET /v1/runs?agent_id= does, for
// check.RunIndexesAgree.
func (w *runWork) readRunsByAgent(r rt.Runtime, n *server) error {
	w.runsByAgent = map[string][]string{}
	for _, run := range w.runsAtEnd {
		if _, done := w.runsByAgent[run.Agent]; done {
			continue
		}
		ids := []string{}
		after := ""
		for {
			var page *service.RunPage
			var err error
			for attempt := 0; ; attempt++ {
				ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
				page, err = n.svc.ListRuns(ctx, service.RunQuery{AgentIDs: []string{run.Agent}, After: after, Limit: service.ListLimitMax})
				cancel()
				if err == nil {
					break
				}
				if attempt == finalReadAttempts {
					return fmt.Errorf("list the runs of agent %s with faults off: %w", run.Agent, err)
				}
				r.Sleep(context.Background(), resumePoll)
			}
			for _, got := range page.Runs {
				ids = append(ids, got.ID)
			}
			if len(page.Runs) < service.ListLimitMax {
				break
			}
			after = page.Runs[len(page.Runs)-1].ID
		}
		w.runsByAgent[run.Agent] = ids
	}
	return nil
}
