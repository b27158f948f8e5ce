package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
)

// The workload's shared block and approvals (see the constants in run.go
// and check.SharedBlockConsistent).

// createTeamAttempts bounds the attempts to create the shared block.
const createTeamAttempts = 20

// sharedInitial is the shared block's value at creation. Like the values
// clients write, it is one line and no token.
const sharedInitial = "team notes"

// createTeam creates the shared block before the clients start. If every
// attempt fails (a swarm seed with a high write-failure rate), the run goes
// on without it.
func (w *world) createTeam(r rt.Runtime) {
	for range createTeamAttempts {
		var sb *service.StandaloneBlock
		op, _ := w.invoke(r, -1, func(ctx context.Context, svc *service.Service) error {
			var err error
			sb, err = svc.CreateBlock(ctx, agent.Block{Label: SharedLabel, Value: sharedInitial, Limit: sharedBlockLimit})
			return err
		})
		if op.Outcome == check.OK {
			w.team = &check.SharedBlock{ID: sb.ID, Present: map[string]bool{},
				Create: check.BlockWrite{Value: sharedInitial, Call: op.Call, Return: op.Return, Outcome: check.OK}}
			return
		}
		r.Sleep(context.Background(), 100*time.Millisecond)
	}
}

// issued records an append to the shared block a model answered with
// (called by the simulated model, on the scheduler).
func (w *world) issued(token, agentID string) {
	if _, dup := w.appends[token]; dup {
		w.sim.Fail(fmt.Errorf("sim: the model issued append token %q twice", token))
		return
	}
	if w.team == nil {
		return
	}
	w.appends[token] = len(w.team.Appends)
	w.team.Appends = append(w.team.Appends, check.BlockAppend{Token: token, Agent: agentID, Issued: w.sim.Now().Sub(Epoch).Nanoseconds()})
}

// send is one recorded send. It returns the response of an OK send that
// found the agent (else nil) and the error the client saw.
func (w *world) send(r rt.Runtime, c int, target string, req agent.SendRequest) (*agent.SendResponse, error) {
	var resp *agent.SendResponse
	op, err := w.callErr(r, c, check.Op{Kind: check.KindSend, Agent: target}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
		var err error
		resp, err = svc.SendMessage(ctx, target, req)
		if err == nil && len(resp.Messages) > 0 {
			op.Messages = uint64(len(resp.Messages))
			op.FirstSeq = resp.Messages[0].Seq
		}
		return err
	})
	if op.Outcome != check.OK || !op.Found {
		if op.Outcome == check.Failed && len(req.Approvals) == 0 && errors.Is(err, agent.ErrApprovalPending) {
			w.res.ApprovalRefused++
		}
		return nil, err
	}
	if len(req.Approvals) > 0 {
		w.res.ApprovalAnswers++
	}
	if resp.StopReason == agent.StopApproval {
		w.res.ApprovalStops++
	}
	w.noteAppends(resp.Messages, op.Return)
	return resp, nil
}


// answer answers the agent's pending tool calls: approve, deny, or return
// a result, at random.
func (w *world) answer(r rt.Runtime, c int, target string) {
	var a agent.Approval
	switch rt.Intn(w.rng, 3) {
	case 0:
		a.Approve = true
	case 1:
		a.Reason = "not now"
	default:
		ret := "looked up: 42"
		a.Return = &ret
	}
	w.send(r, c, target, agent.SendRequest{Approvals: []agent.Approval{a}})
}

// noteAppends records the successful appends to the shared block among
// committed messages: acknowledged by an OK send that returned at acked,
// or (acked 0) read from a final message log.
func (w *world) noteAppends(msgs []agent.Message, acked int64) {
	if w.team == nil {
		return
	}
	calls := map[string]string{} // tool call ID -> token
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			if tc.Name != agent.ToolCoreMemoryAppend && tc.Name != agent.ToolMemoryInsert {
				continue
			}
			var args struct {
				Label   string `json:"label"`
				Content string `json:"content"`
				NewStr  string `json:"new_str"`
			}
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil && args.Label == SharedLabel {
				calls[tc.ID] = args.Content + args.NewStr
			}
		}
		tok, ok := calls[m.ToolCallID]
		if !ok || m.ToolStatus != agent.ToolSuccess {
			continue
		}
		i, ok := w.appends[tok]
		if !ok {
			w.sim.Fail(fmt.Errorf("sim: a committed append to the shared block carries token %q, which no model issued", tok))
			return
		}
		a := &w.team.Appends[i]
		if acked == 0 {
			a.Logged = true
		} else if a.Acked == 0 || acked < a.Acked {
			if a.Acked == 0 && !a.Logged {
				w.res.SharedAppends++
			}
			a.Acked = acked
		}
	}
}

// readTeam reads the shared block's final value (faults are off).
func (w *world) readTeam(r rt.Runtime) error {
	if w.team == nil {
		return nil
	}
	for _, a := range w.team.Appends {
		if a.Logged && a.Acked == 0 {
			w.res.SharedAppends++
		}
	}
	n := w.servers[0]
	var err error
	for range finalReadAttempts {
		ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
		var sb *service.StandaloneBlock
		sb, err = n.svc.GetBlock(ctx, w.team.ID)
		cancel()
		if err == nil {
			w.team.Final = sb.Value
			return nil
		}
		r.Sleep(context.Background(), time.Second)
	}
	return fmt.Errorf("final read of shared block %s: %w", w.team.ID, err)
}
