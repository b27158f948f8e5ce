package check

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Shared blocks. The workload attaches one standalone block to many agents.
// Their models edit it only by appending a line (memory_insert at the end,
// or core_memory_append), each append carrying
// a token no other append carries (and no newline); clients only replace
// its whole value (PATCH) with values no other write uses, none of them a
// token. So the value after any serial order of committed edits is
//
//	base ("\n" token)*
//
// where base is the value of the last whole-value write (or the value the
// block was created with) and the tokens are the appends committed after
// it, in commit order. SharedBlockConsistent checks the final value against
// that shape and the real-time bounds of every edit.

// BlockWrite is a write of a shared block's whole value: its creation or a
// client's update (PATCH).
type BlockWrite struct {
	Value        string
	Call, Return int64 // virtual time in ns; Return is ignored for Unknown
	Outcome      Outcome
}

// BlockAppend is one append the model issued to the shared block, whether
// or not it committed.
type BlockAppend struct {
	Token string
	Agent string // the agent whose model issued it
	// Issued is when the model answered with the call: its commit, if
	// any, is later.
	Issued int64
	// Acked is the Return of an OK send whose response shows the call
	// succeeded (its step committed before that); 0 if none did.
	Acked int64
	// Logged: the call succeeded in the agent's final message log (the
	// step that made it committed).
	Logged bool
}

// committed reports whether the append is known to have committed.
func (a *BlockAppend) committed() bool { return a.Logged || a.Acked > 0 }

// latest bounds when the append committed (if it did).
func (a *BlockAppend) latest() int64 {
	if a.Acked > 0 {
		return a.Acked
	}
	return math.MaxInt64
}

// SharedBlock is the recorded history of one shared block.
type SharedBlock struct {
	ID      string
	Create  BlockWrite    // the block's creation (Outcome OK)
	Writes  []BlockWrite  // clients' whole-value writes, any outcome
	Appends []BlockAppend // every append any model issued
	// Present holds the agents whose whole message log was read at the end.
	Present map[string]bool
	// Final is the block's value read at the end of the run.
	Final string
	// Delete, if set, is the client's deletion of the block: an attempt
	// that returned OK (the block was gone by its Return, whether that
	// attempt or an earlier Unknown one removed it), else the first one
	// that returned Unknown (it may have applied). Gone: the final read
	// found no block.
	Delete *BlockWrite
	Gone   bool
}

// Deleted reports whether the block's deletion was acknowledged (it was
// gone by Delete.Return).
func (b *SharedBlock) Deleted() bool { return b.Delete != nil && b.Delete.Outcome == OK }

// SharedBlocksConsistent checks the generations of the workload's shared
// block: each is SharedBlockConsistent, and no append is in two of them.
// A generation is deleted before the next is created, so an append
// committed after the next one was created is in it (or a later one).
func SharedBlocksConsistent(gens []*SharedBlock) error {
	in := map[string]string{} // token -> block whose final value holds it
	for _, b := range gens {
		if err := SharedBlockConsistent(b); err != nil {
			return err
		}
		if b.Gone {
			continue
		}
		for _, tok := range strings.Split(b.Final, "\n")[1:] {
			if other, ok := in[tok]; ok {
				return fmt.Errorf("shared block %s: append %q is also in block %s", b.ID, tok, other)
			}
			in[tok] = b.ID
		}
	}
	return nil
}

// SharedBlockConsistent checks that the final value of b is the result of
// a serial order of its committed edits that respects real time, and that
// no acknowledged edit was lost. With base the first line of the final
// value and the tokens the remaining lines:
//
//  1. base is the value of the creation or of a write that returned OK or
//     Unknown (W below), and no write that returned OK was called after W
//     returned (an acknowledged write is the final base or is followed by
//     a later one);
//  2. every token is an append some model issued, and appears once (an
//     append is applied at most once, though the driver may retry it);
//  3. no token was acknowledged before W was called (W would have
//     replaced it);
//  4. tokens are in an order real time allows: if a precedes b, b was not
//     acknowledged before a was issued;
//  5. no committed append is missing unless it may have committed before
//     W: an append issued after W returned that committed (acknowledged by
//     a send, or successful in its agent's final log) must be a token —
//     two agents' appends never overwrite each other;
//  6. every token of an agent whose final log was read is a successful
//     call in that log: the block changes only in the transaction that
//     logs the step.
//
// A deleted block (Gone) has no final value to check: its deletion must
// have been called (Delete set), and appends acknowledged for it need not
// survive. A block whose deletion was acknowledged must be Gone.
func SharedBlockConsistent(b *SharedBlock) error {
	switch {
	case b.Gone && b.Delete == nil:
		return fmt.Errorf("shared block %s: gone at the end, but no client deleted it", b.ID)
	case b.Gone:
		return nil
	case b.Deleted():
		return fmt.Errorf("shared block %s: its deletion was acknowledged at %d, but it is still there at the end (value %q)", b.ID, b.Delete.Return, b.Final)
	}
	lines := strings.Split(b.Final, "\n")
	base, tail := lines[0], lines[1:]
	issued := make(map[string]*BlockAppend, len(b.Appends))
	for i := range b.Appends {
		a := &b.Appends[i]
		if _, dup := issued[a.Token]; dup {
			return fmt.Errorf("shared block %s: the workload issued token %q twice", b.ID, a.Token)
		}
		issued[a.Token] = a
	}
	// Candidate base writes: the value must be unique, but try each.
	cands := []BlockWrite{b.Create}
	for _, w := range b.Writes {
		if w.Outcome == OK || w.Outcome == Unknown {
			cands = append(cands, w)
		}
	}
	var firstErr error
	matched := false
	for _, w := range cands {
		if w.Value != base {
			continue
		}
		matched = true
		err := b.checkBase(w, tail, issued)
		if err == nil {
			return nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if !matched {
		return fmt.Errorf("shared block %s: final value starts with %q, which no write could have written (final value %q)", b.ID, base, b.Final)
	}
	return firstErr
}

func (b *SharedBlock) checkBase(w BlockWrite, tail []string, issued map[string]*BlockAppend) error {
	lo, hi := w.Call, w.Return
	if w.Outcome == Unknown {
		hi = math.MaxInt64
	}
	// 1.
	for _, q := range b.Writes {
		if q.Outcome == OK && q.Call > hi {
			return fmt.Errorf("shared block %s: final base %q (written [%d,%d]), but the write of %q [%d,%d] was acknowledged after it: an acknowledged update was lost",
				b.ID, w.Value, w.Call, w.Return, q.Value, q.Call, q.Return)
		}
	}
	inTail := make(map[string]int, len(tail))
	for i, tok := range tail {
		a := issued[tok]
		// 2.
		if a == nil {
			return fmt.Errorf("shared block %s: line %d of the final value, %q, is no append a model issued", b.ID, i+1, tok)
		}
		if j, dup := inTail[tok]; dup {
			return fmt.Errorf("shared block %s: append %q applied twice (lines %d and %d)", b.ID, tok, j+1, i+1)
		}
		inTail[tok] = i
		// 3.
		if a.latest() < lo {
			return fmt.Errorf("shared block %s: append %q was acknowledged at %d, before the write of base %q was called at %d, yet follows it",
				b.ID, tok, a.latest(), w.Value, lo)
		}
		// 6.
		if b.Present[a.Agent] && !a.Logged {
			return fmt.Errorf("shared block %s: append %q of agent %s is in the block, but no committed step of the agent's log made it", b.ID, tok, a.Agent)
		}
	}
	// 4.
	for i := range tail {
		for j := i + 1; j < len(tail); j++ {
			a, later := issued[tail[i]], issued[tail[j]]
			if later.latest() < a.Issued {
				return fmt.Errorf("shared block %s: append %q (acknowledged at %d) follows %q, which was issued only at %d", b.ID, later.Token, later.latest(), a.Token, a.Issued)
			}
		}
	}
	// 5.
	var lost []string
	for i := range b.Appends {
		a := &b.Appends[i]
		if _, ok := inTail[a.Token]; ok || !a.committed() || a.Issued <= hi {
			continue
		}
		lost = append(lost, fmt.Sprintf("%q (agent %s, issued at %d, acked at %d, logged %v)", a.Token, a.Agent, a.Issued, a.Acked, a.Logged))
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		return fmt.Errorf("shared block %s: %d committed append(s) lost: %s; base %q was written by [%d,%d] (final value %q)",
			b.ID, len(lost), strings.Join(lost, ", "), w.Value, w.Call, w.Return, b.Final)
	}
	return nil
}

// CallsAnsweredBeforeNextMessage checks every final message log: the
// tool calls of an assistant message are all answered (tool returns)
// before the next message that is not a tool return. A call that waits
// for approval is answered by the send that approves it, before that
// send's own messages; a send that is not such an answer is refused, so
// nothing else is logged while calls wait. Agents are checked in sorted
// ID order.
func CallsAnsweredBeforeNextMessage(final map[string]Final) error {
	ids := make([]string, 0, len(final))
	for id := range final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		msgs := final[id].Messages
		open := map[string]bool{}
		var opener int
		for i, m := range msgs {
			if m.ToolCallID != "" {
				delete(open, m.ToolCallID)
				continue
			}
			if len(open) > 0 {
				pending := make([]string, 0, len(open))
				for c := range open {
					pending = append(pending, c)
				}
				sort.Strings(pending)
				return fmt.Errorf("agent %s: message %d (seq %d, %s) logged while tool calls %v of message %d (seq %d) were unanswered",
					id, i, m.Seq, m.Role, pending, opener, msgs[opener].Seq)
			}
			for _, c := range m.ToolCallIDs {
				open[c] = true
			}
			opener = i
		}
	}
	return nil
}

// CustomToolCall is a call the model made to a custom tool, by the name
// the step's tool list offered it, as the agent's final log shows it.
type CustomToolCall struct {
	Agent, CallID, Name string
	// Issued is when the model answered with the call; the step applied
	// it later.
	Issued int64
	// GoneSince is when the name was known to be no tool's any more (a
	// rename away from it or the tool's deletion was acknowledged); 0 if
	// never.
	GoneSince int64
	// Returned: the log holds the call's tool return, with this status
	// and content.
	Returned        bool
	Status, Content string
	// Executed are the results the tool sandbox gave for this call (a
	// call may run more than once: a crash between its run and its step's
	// commit runs it again). Approval marks a call that waited for the
	// client, who may have given the result itself.
	Executed []string
	Approval bool
}

// CustomToolCallsResolved checks calls to custom tools whose name was
// gone before the model made them (so also when the step applied them):
// each must have been answered at once with the error unavailable(name)
// gives — not paused for the client, whose answer would read otherwise —
// and with status "error". Calls are checked in the given order.
func CustomToolCallsResolved(calls []CustomToolCall, unavailable func(name string) string) error {
	for _, c := range calls {
		// Whatever the name's fate, a successful return is one the
		// sandbox produced for this very call, and no call is left
		// unexecuted by a server that has a sandbox.
		if c.Returned && c.Status == "success" && !c.Approval && !slices.Contains(c.Executed, c.Content) {
			return fmt.Errorf("agent %s: call %s to custom tool %q returned %q, which the sandbox never produced for it (it produced %q)",
				c.Agent, c.CallID, c.Name, c.Content, c.Executed)
		}
		if c.Returned && strings.Contains(c.Content, "was not executed") {
			return fmt.Errorf("agent %s: call %s to custom tool %q was never executed: %q", c.Agent, c.CallID, c.Name, c.Content)
		}
		if c.GoneSince == 0 || c.GoneSince >= c.Issued {
			continue
		}
		want := unavailable(c.Name)
		if !c.Returned || c.Status != "error" || c.Content != want {
			return fmt.Errorf("agent %s: call %s to custom tool %q, made at %d after the name was gone (since %d), was answered %v with status %q and %q; want at once %q",
				c.Agent, c.CallID, c.Name, c.Issued, c.GoneSince, c.Returned, c.Status, c.Content, want)
		}
	}
	return nil
}
