package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
)

// The workload's shared block and approvals (see the constants in run.go
// and check.SharedBlockConsistent).

// sharedBlockWork is the workload's shared block: its generations, the
// agents attached to each, and the appends the models issued to it.
type sharedBlockWork struct {
	*world
	// team is the current generation of the shared block (nil if none:
	// its create failed, or it is being replaced); teams holds every
	// generation, teamAgents the agents the current one may be attached
	// to. appendList holds every append to the shared block any model
	// issued, appends indexes it by token; present holds the agents whose
	// final log was read.
	team       *check.SharedBlock
	teams      []*check.SharedBlock
	teamAgents []string
	replacing  bool
	appendList []check.BlockAppend
	appends    map[string]int
	present    map[string]bool
}

// checks are the shared block's invariants.
func (w *sharedBlockWork) checks() []func() error {
	return []func() error{func() error { return check.SharedBlocksConsistent(w.teams) }}
}

// createTeamAttempts bounds the attempts to create the shared block.
const createTeamAttempts = 20

// sharedInitial is the shared block's value at creation. Like the values
// clients write, it is one line and no token.
const sharedInitial = "team notes"

// createTeam creates a generation of the shared block: before the clients
// start, and after a client deleted the previous one (replaceTeam). If
// every attempt fails (a swarm seed with a high write-failure rate), the
// run goes on without it. Each generation has its own description, which
// the prompt shows (see prompted), and initial value.
func (w *sharedBlockWork) createTeam(r rt.Runtime, c int) {
	gen := len(w.teams) + 1
	value, desc := sharedInitial, fmt.Sprintf("%s%d", generationPrefix, gen)
	if gen > 1 {
		value = fmt.Sprintf("%s %d", sharedInitial, gen)
	}
	for range createTeamAttempts {
		var sb *service.StandaloneBlock
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			var err error
			sb, err = svc.CreateBlock(ctx, agent.Block{Label: SharedLabel, Value: value, Limit: sharedBlockLimit, Description: desc})
			return err
		})
		if op.Outcome == check.OK {
			w.team = &check.SharedBlock{ID: sb.ID, Present: w.present,
				Create: check.BlockWrite{Value: value, Call: op.Call, Return: op.Return, Outcome: check.OK}}
			w.teams = append(w.teams, w.team)
			return
		}
		r.Sleep(context.Background(), 100*time.Millisecond)
	}
}

// generationPrefix begins the description of each generation of the
// shared block, followed by its number (1 for the first).
const generationPrefix = "team generation "

// replaceTeam deletes the shared block, then creates the next generation
// and attaches it to the agents the deleted one was attached to. The
// deletion is retried until it is acknowledged; if it never is, the
// block stays the current one (perhaps deleted: Delete records that).
func (w *sharedBlockWork) replaceTeam(r rt.Runtime, c int) {
	g := w.team
	if g == nil || w.replacing {
		return
	}
	w.replacing = true
	defer func() { w.replacing = false }()
	for range deleteTeamAttempts {
		op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
			return svc.DeleteBlock(ctx, g.ID)
		})
		d := check.BlockWrite{Call: op.Call, Return: op.Return, Outcome: op.Outcome}
		switch {
		case op.Outcome == check.OK:
			g.Delete = &d // gone now, by this attempt or an earlier one
		case op.Outcome == check.Unknown && g.Delete == nil:
			g.Delete = &d
		}
		if g.Deleted() {
			break
		}
		r.Sleep(context.Background(), 100*time.Millisecond)
	}
	if !g.Deleted() {
		return
	}
	w.res.BlockDeletes++
	w.team = nil // no attaches or writes to a deleted block meanwhile
	agents := w.teamAgents
	w.teamAgents = nil
	w.createTeam(r, c)
	if w.team == nil {
		return
	}
	for _, id := range agents {
		w.attach(r, c, id, agent.UpdateRequest{AttachBlocks: []string{w.team.ID}})
	}
}

// deleteTeamAttempts bounds the attempts to delete the shared block.
const deleteTeamAttempts = 5

// generation returns the generation of the shared block with the given
// description, or nil.
func (w *sharedBlockWork) generation(desc string) *check.SharedBlock {
	n, err := strconv.Atoi(strings.TrimPrefix(desc, generationPrefix))
	if err != nil || !strings.HasPrefix(desc, generationPrefix) || n < 1 || n > len(w.teams) {
		return nil
	}
	return w.teams[n-1]
}

// deletedBefore returns the generation of the shared block with this ID
// if its deletion was acknowledged before t, else nil.
func (w *sharedBlockWork) deletedBefore(id string, t int64) *check.SharedBlock {
	for _, g := range w.teams {
		if g.ID == id && g.Deleted() && g.Delete.Return < t {
			return g
		}
	}
	return nil
}

// checkBlocksSeen fails the run if an agent read by a GetAgent called at
// call shows a shared block whose deletion was acknowledged before then.
func (w *sharedBlockWork) checkBlocksSeen(ag *agent.Agent, call int64) {
	for _, b := range ag.Blocks {
		if g := w.deletedBefore(b.ID, call); b.Shared && g != nil {
			w.sim.Fail(fmt.Errorf("agent %s read at %d shows shared block %s (%q), whose deletion was acknowledged at %d",
				ag.ID, call, b.ID, b.Description, g.Delete.Return))
			return
		}
	}
}

// prompted checks the system prompt of a step that answers a user message
// sent at sent: it must not show a generation of the shared block whose
// deletion was acknowledged before the message was sent (the step was
// prepared after that). Called by the simulated model, on the scheduler.
func (w *sharedBlockWork) prompted(agentID string, sent int64, system string) {
	open := "\n<" + SharedLabel + ">\n<description>\n"
	i := strings.Index(system, open)
	if i < 0 {
		return
	}
	desc := system[i+len(open):]
	if j := strings.Index(desc, "\n</description>"); j >= 0 {
		desc = desc[:j]
	}
	g := w.generation(desc)
	if g == nil {
		w.sim.Fail(fmt.Errorf("agent %s: the prompt shows a %q block described %q, no generation of the shared block", agentID, SharedLabel, desc))
		return
	}
	if g.Deleted() && g.Delete.Return < sent {
		w.sim.Fail(fmt.Errorf("agent %s: the prompt of a step answering a message sent at %d shows shared block %s (%q), whose deletion was acknowledged at %d",
			agentID, sent, g.ID, desc, g.Delete.Return))
	}
}

// issued records an append to the shared block a model answered with
// (called by the simulated model, on the scheduler).
func (w *sharedBlockWork) issued(token, agentID string) {
	if _, dup := w.appends[token]; dup {
		w.sim.Fail(fmt.Errorf("sim: the model issued append token %q twice", token))
		return
	}
	if len(w.teams) == 0 {
		return
	}
	w.appends[token] = len(w.appendList)
	w.appendList = append(w.appendList, check.BlockAppend{Token: token, Agent: agentID, Issued: w.sim.Now().Sub(Epoch).Nanoseconds()})
}

// noteAppends records the successful appends to the shared block among
// committed messages: acknowledged by an OK send that returned at acked,
// or (acked 0) read from a final message log.
func (w *sharedBlockWork) noteAppends(msgs []agent.Message, acked int64) {
	if len(w.teams) == 0 {
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
		a := &w.appendList[i]
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

// readTeam reads the final value of every generation of the shared block
// (faults are off) and gives each the history of appends.
func (w *sharedBlockWork) readTeam(r rt.Runtime) error {
	for _, a := range w.appendList {
		if a.Logged && a.Acked == 0 {
			w.res.SharedAppends++
		}
	}
	n := w.servers[0]
	for _, g := range w.teams {
		g.Appends, g.Present = w.appendList, w.present
		var err error
		for range finalReadAttempts {
			ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
			var sb *service.StandaloneBlock
			sb, err = n.svc.GetBlock(ctx, g.ID)
			cancel()
			if errors.Is(err, agent.ErrNotFound) {
				g.Gone, err = true, nil
			} else if err == nil {
				g.Final = sb.Value
			}
			if err == nil {
				break
			}
			r.Sleep(context.Background(), time.Second)
		}
		if err != nil {
			return fmt.Errorf("final read of shared block %s: %w", g.ID, err)
		}
	}
	return nil
}
