package sim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
)

// Conversations in the workload. Conversation operations (Mix.Conversation)
// create a conversation of a known agent (isolating its "human" block with
// probability 1/isolateOneIn), send to a known conversation (most often,
// so that two conversations of one agent run at once), read one, or
// delete one. Each conversation is its own key in the history: its
// creates, sends, gets and deletes are checked for linearizability, and
// its final log for lost, duplicated or unanswered messages, exactly as an
// agent's are. Deleting an agent deletes its conversations, so an agent's
// delete is recorded for each of its conversations too.
const (
	// Of the conversation operations: 1/convCreateOneIn create one,
	// 1/convDeleteOneIn delete one, 1/convGetOneIn read one; the rest
	// send to one.
	convCreateOneIn = 4
	convDeleteOneIn = 12
	convGetOneIn    = 6
	isolateOneIn    = 2
)

// conversationWork is the workload's conversations; their histories and
// final logs are checked with the agents' (see verify).
type conversationWork struct {
	*world
	// convs are the conversations whose create was acknowledged, and
	// inFlight counts each agent's sends in progress, by history key.
	convs    []simConversation
	inFlight map[string]map[string]int
}

// simConversation is a conversation whose create was acknowledged.
type simConversation struct {
	id, agent string
}

// conversationOp runs one conversation operation.
func (w *conversationWork) conversationOp(r rt.Runtime, c, i int) {
	if len(w.known) == 0 {
		return
	}
	roll := rt.Intn(w.rng, convCreateOneIn*convDeleteOneIn*convGetOneIn)
	if len(w.convs) == 0 || roll%convCreateOneIn == 0 {
		w.createConversation(r, c)
		return
	}
	conv := w.convs[rt.Intn(w.rng, len(w.convs))]
	switch {
	case roll%convDeleteOneIn == 1:
		w.call(r, c, check.Op{Kind: check.KindDelete, Agent: conv.id}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
			return svc.DeleteConversation(ctx, conv.id)
		})
	case roll%convGetOneIn == 1:
		w.getConversation(r, c, conv)
	default:
		// The marker names the conversation, not the agent: the shared
		// block's appends made in it are then looked for in its own log.
		content := fmt.Sprintf("conversation hello from %d/%d%s%s%d%s%s", c, i, w.filler(), sentMarker, w.sim.Now().Sub(Epoch).Nanoseconds(), agentMarker, conv.id)
		req := agent.SendRequest{ConversationID: conv.id, Messages: []agent.InputMessage{{Role: "user", Content: content}}}
		resp, err := w.sendIn(r, c, conv.id, conv.agent, req)
		switch {
		case resp != nil && resp.StopReason == agent.StopApproval && rt.Intn(w.rng, 2) == 0:
			w.answerIn(r, c, conv.id, conv.agent, conv.id)
		case errors.Is(err, agent.ErrApprovalPending):
			w.answerIn(r, c, conv.id, conv.agent, conv.id)
		}
	}
}

// createConversation creates a conversation of a known agent. Only an
// acknowledged create is recorded: an unacknowledged one's ID is unknown,
// so no client ever uses it.
func (w *conversationWork) createConversation(r rt.Runtime, c int) {
	target := w.known[rt.Intn(w.rng, len(w.known))]
	req := agent.CreateConversationRequest{}
	if rt.Intn(w.rng, isolateOneIn) == 0 {
		req.IsolatedBlockLabels = []string{"human"}
	}
	var conv *agent.Conversation
	op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
		var err error
		conv, err = svc.CreateConversation(ctx, target, req)
		return err
	})
	if op.Outcome != check.OK || !op.Found {
		return
	}
	w.hist.Add(check.Op{Client: c, Kind: check.KindCreate, Agent: conv.ID, Call: op.Call, Return: op.Return, Outcome: check.OK, Found: true})
	w.convs = append(w.convs, simConversation{id: conv.ID, agent: target})
	w.res.Conversations++
}

func (w *conversationWork) getConversation(r rt.Runtime, c int, conv simConversation) (check.Op, *agent.Conversation) {
	var got *agent.Conversation
	op := w.call(r, c, check.Op{Kind: check.KindGet, Agent: conv.id}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
		var err error
		got, err = svc.GetConversation(ctx, conv.id)
		if err == nil {
			op.Messages = got.MessageCount
		}
		return err
	})
	return op, got
}

// cascadeDelete records an agent's delete for each of its conversations,
// which go with it.
func (w *conversationWork) cascadeDelete(op check.Op) {
	for _, conv := range w.convs {
		if conv.agent == op.Agent {
			d := op
			d.Kind, d.Agent = check.KindPurge, conv.id
			w.hist.Add(d)
		}
	}
}

// readConversations reads every known conversation after the faults
// stopped, as readFinal reads agents.
func (w *conversationWork) readConversations(r rt.Runtime, final map[string]check.Final) error {
	convs := append([]simConversation(nil), w.convs...)
	sort.Slice(convs, func(i, j int) bool { return convs[i].id < convs[j].id })
	for _, conv := range convs {
		var op check.Op
		var got *agent.Conversation
		for attempt := 0; attempt < finalReadAttempts; attempt++ {
			op, got = w.getConversation(r, -1, conv)
			if op.Outcome != check.OK || !op.Found || (got.ActiveRun == nil && got.PendingApproval == nil) {
				break
			}
			if got.ActiveRun == nil {
				w.answerIn(r, -1, conv.id, conv.agent, conv.id)
				continue
			}
			r.Sleep(context.Background(), time.Second)
		}
		if op.Outcome != check.OK {
			return fmt.Errorf("final read of conversation %s failed with faults off: outcome %v", conv.id, op.Outcome)
		}
		if !op.Found {
			continue
		}
		if got.ActiveRun != nil || got.PendingApproval != nil {
			return fmt.Errorf("final read of conversation %s: still running or waiting for approval after %d attempts with faults off", conv.id, finalReadAttempts)
		}
		f := windowOf(&got.Thread)
		n := w.servers[0]
		for start := uint64(0); ; {
			ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
			page, err := n.svc.ListMessages(ctx, conv.agent, agent.ListMessagesRequest{ConversationID: conv.id, Start: start, Limit: agent.MessagesPageMax})
			cancel()
			if err != nil {
				return fmt.Errorf("final message list of conversation %s: %w", conv.id, err)
			}
			w.shared.noteAppends(page, 0)
			w.tools.noteCustomCalls(page)
			for _, m := range page {
				if m.ConversationID != conv.id {
					return fmt.Errorf("conversation %s: its log holds message %s of conversation %q", conv.id, m.ID, m.ConversationID)
				}
				rec := check.MessageRecord{ID: m.ID, Seq: m.Seq, Role: m.Role, ToolCallID: m.ToolCallID}
				for _, tc := range m.ToolCalls {
					rec.ToolCallIDs = append(rec.ToolCallIDs, tc.ID)
				}
				f.Messages = append(f.Messages, rec)
			}
			if len(page) < agent.MessagesPageMax {
				break
			}
			start = page[len(page)-1].Seq + 1
		}
		final[conv.id] = f
		w.shared.present[conv.id] = true
		w.res.ConversationMessages += len(f.Messages)
	}
	return nil
}
