package sim

import (
	"context"
	"errors"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
)

// The workload's sends, the approvals that answer them, and the attaches
// that give a new agent the features' blocks and tools.

// attach applies up (attaching the shared block, the custom tool, or
// both) to agent id, and remembers the agent as attached to each unless
// the update definitely failed.
func (w *world) attach(r rt.Runtime, c int, id string, up agent.UpdateRequest) {
	op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
		_, err := svc.UpdateAgent(ctx, id, up)
		return err
	})
	if op.Outcome == check.Failed || op.Outcome == check.OK && !op.Found {
		return
	}
	if len(up.AttachBlocks) > 0 && w.shared.team != nil && up.AttachBlocks[0] == w.shared.team.ID {
		w.shared.teamAgents = append(w.shared.teamAgents, id)
	}
	if len(up.AttachCustomTools) > 0 && w.tools.tool != nil && up.AttachCustomTools[0] == w.tools.tool.id {
		w.tools.tool.agents = append(w.tools.tool.agents, id)
	}
}

// send is one recorded send. It returns the response of an OK send that
// found the agent (else nil) and the error the client saw.
func (w *world) send(r rt.Runtime, c int, target string, req agent.SendRequest) (*agent.SendResponse, error) {
	return w.sendIn(r, c, target, target, req)
}

// sendIn is send recorded under the history key key: the agent's ID, or
// the ID of the conversation req names.
func (w *world) sendIn(r rt.Runtime, c int, key, target string, req agent.SendRequest) (*agent.SendResponse, error) {
	resp, _, err := w.sendOn(r, nil, c, key, target, req)
	return resp, err
}

// sendOn is sendIn through server n (nil: one picked at random) that
// also returns the recorded operation.
func (w *world) sendOn(r rt.Runtime, n *server, c int, key, target string, req agent.SendRequest) (*agent.SendResponse, check.Op, error) {
	flying := w.conv.inFlight[target]
	if flying == nil {
		flying = make(map[string]int)
		w.conv.inFlight[target] = flying
	}
	for k, n := range flying {
		if k != key && n > 0 && req.ConversationID != "" {
			w.res.ConversationOverlaps++
			break
		}
	}
	flying[key]++
	defer func() { flying[key]-- }()
	var resp *agent.SendResponse
	if n == nil {
		n = w.pick()
	}
	op, err := w.callOn(r, n, c, check.Op{Kind: check.KindSend, Agent: key}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
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
		return nil, op, err
	}
	if len(req.Approvals) > 0 {
		w.res.ApprovalAnswers++
	}
	if resp.StopReason == agent.StopApproval {
		w.res.ApprovalStops++
	}
	w.shared.noteAppends(resp.Messages, op.Return)
	return resp, op, nil
}

// answer answers the agent's pending tool calls: approve, deny, or return
// a result, at random.
func (w *world) answer(r rt.Runtime, c int, target string) {
	w.answerIn(r, c, target, target, "")
}

// answerIn is answer in a conversation ("" for the agent's default one),
// recorded under the history key key.
func (w *world) answerIn(r rt.Runtime, c int, key, target, conversationID string) {
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
	w.sendIn(r, c, key, target, agent.SendRequest{ConversationID: conversationID, Approvals: []agent.Approval{a}})
}
