package check

import (
	"fmt"
	"sort"
	"strings"
)

// agentOps summarizes one agent's operations for the invariants.
type agentOps struct {
	creates        []*Op // OK creates (at most one, since IDs are not reused)
	updates        []*Op // OK updates that found the agent
	unknownUpdates []*Op
	deletes        []*Op // OK deletes that found the agent
	unknownDeletes []*Op
	sends          []*Op // OK sends that found the agent
	unknownSends   int
	maxRead        uint64 // largest MessageCount an OK get read
	read           bool   // some OK get found the agent
}

// mayBeDeleted reports whether some delete acknowledged or may have
// applied.
func (a *agentOps) mayBeDeleted() bool {
	return len(a.deletes) > 0 || len(a.unknownDeletes) > 0
}

func summarize(h *History) (order []string, agents map[string]*agentOps) {
	agents = make(map[string]*agentOps)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindList {
			continue
		}
		a := agents[op.Agent]
		if a == nil {
			a = &agentOps{}
			agents[op.Agent] = a
			order = append(order, op.Agent)
		}
		switch {
		case op.Outcome == Unknown:
			switch op.Kind {
			case KindUpdate:
				a.unknownUpdates = append(a.unknownUpdates, op)
			case KindDelete, KindPurge:
				a.unknownDeletes = append(a.unknownDeletes, op)
			case KindSend:
				a.unknownSends++
			}
		case op.acked():
			switch op.Kind {
			case KindCreate:
				a.creates = append(a.creates, op)
			case KindGet:
				a.read = true
				a.maxRead = max(a.maxRead, op.Messages)
			case KindUpdate:
				a.updates = append(a.updates, op)
			case KindDelete, KindPurge:
				a.deletes = append(a.deletes, op)
			case KindSend:
				a.sends = append(a.sends, op)
			}
		}
	}
	return order, agents
}

// AcknowledgedDurable checks the final state against acknowledged writes:
//
//   - an agent with an acknowledged delete (OK, found) is gone;
//   - an agent whose create returned OK is present, unless it has an
//     acknowledged or Unknown delete (then either is fine);
//   - a present agent's name is one that could have been written last:
//     the name of an acknowledged write (the create or an OK update) that
//     no other acknowledged write follows in real time, or of any Unknown
//     update (it may have applied at any point after its call). With no
//     Unknown update and non-overlapping updates, this is exactly "the
//     last acknowledged update's name".
//
// final maps agent ID to the state read at the end of the run (absent: not
// found). Agents only in final (e.g. from creates whose outcome was
// Unknown, so never recorded) are not checked. Message logs are checked by
// MessagesIntact.
func AcknowledgedDurable(h *History, final map[string]Final) error {
	if err := validate(h); err != nil {
		return err
	}
	order, agents := summarize(h)
	for _, id := range order {
		a := agents[id]
		f, present := final[id]
		if len(a.deletes) > 0 {
			if present {
				return fmt.Errorf("agent %s: delete acknowledged (%v) but the agent is still there", id, *a.deletes[0])
			}
			continue
		}
		if len(a.creates) == 0 {
			continue
		}
		if !present {
			if len(a.unknownDeletes) > 0 {
				continue
			}
			return fmt.Errorf("agent %s: create acknowledged (%v) but the agent is gone", id, *a.creates[0])
		}
		// The writes that could be last.
		writes := append(append([]*Op(nil), a.creates...), a.updates...)
		var names []string
		for _, w := range writes {
			last := true
			for _, o := range writes {
				if o.Call > w.Return {
					last = false
					break
				}
			}
			if last {
				names = append(names, w.Name)
			}
		}
		for _, u := range a.unknownUpdates {
			names = append(names, u.Name)
		}
		ok := false
		for _, n := range names {
			if n == f.Name {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("agent %s: final name %q, but the last acknowledged write set it to one of %q", id, f.Name, names)
		}
	}
	return nil
}

// MessagesIntact checks each agent's final message log against the
// history:
//
//   - sequence numbers are 0..n-1 in log order, with no gap or duplicate;
//   - every acknowledged send's range [FirstSeq, FirstSeq+Messages) is
//     present (FirstSeq+Messages <= n), and acknowledged ranges do not
//     overlap;
//   - the total count equals the log length: with no Unknown send, the
//     acknowledged sends account for exactly n messages; otherwise the
//     messages no acknowledged send accounts for form at most one
//     contiguous run per Unknown send (a turn appends atomically);
//   - no OK get read a MessageCount larger than n (messages it saw were
//     committed and must not vanish);
//   - an agent with acknowledged sends or reads that is absent must have a
//     delete that was acknowledged or may have applied.
func MessagesIntact(h *History, final map[string]Final) error {
	if err := validate(h); err != nil {
		return err
	}
	order, agents := summarize(h)
	for _, id := range agentOrder(order, final) {
		a := agents[id]
		if a == nil {
			a = &agentOps{}
		}
		f, present := final[id]
		if !present {
			if (len(a.sends) > 0 || (a.read && a.maxRead > 0)) && !a.mayBeDeleted() {
				return fmt.Errorf("agent %s: gone, with %d acknowledged sends and no delete", id, len(a.sends))
			}
			continue
		}
		n := uint64(len(f.Messages))
		for i, m := range f.Messages {
			if m.Seq == uint64(i) {
				continue
			}
			what := "a gap"
			if m.Seq < uint64(i) {
				what = "a duplicate or out-of-order sequence number"
			}
			return fmt.Errorf("agent %s: message %d of the log has seq %d: %s", id, i, m.Seq, what)
		}
		if a.read && a.maxRead > n {
			return fmt.Errorf("agent %s: a get read %d messages, the final log has %d", id, a.maxRead, n)
		}
		sends := append([]*Op(nil), a.sends...)
		sort.SliceStable(sends, func(i, j int) bool { return sends[i].FirstSeq < sends[j].FirstSeq })
		var covered, next uint64 // next: end of the covered prefix scanned so far
		runs := 0                // runs of messages no acknowledged send covers
		for i, s := range sends {
			end := s.FirstSeq + s.Messages
			if end > n {
				return fmt.Errorf("agent %s: acknowledged send %v lost: the final log has %d messages", id, *s, n)
			}
			if i > 0 && s.FirstSeq < next {
				return fmt.Errorf("agent %s: acknowledged sends overlap: %v and %v", id, *sends[i-1], *s)
			}
			if s.FirstSeq > next {
				runs++
			}
			covered += s.Messages
			next = max(next, end)
		}
		if n > next {
			runs++
		}
		if a.unknownSends == 0 && covered != n {
			return fmt.Errorf("agent %s: the final log has %d messages, acknowledged sends account for %d and no send had an unknown outcome", id, n, covered)
		}
		if runs > a.unknownSends {
			return fmt.Errorf("agent %s: %d runs of messages no acknowledged send appended, but only %d send(s) had an unknown outcome", id, runs, a.unknownSends)
		}
	}
	return nil
}

// ToolCallsAnswered checks every final message log: every tool call ID on
// an assistant message is issued once and has exactly one tool-return
// message (ToolCallID) later in the log; every tool return answers a call
// made earlier in the log. Agents are checked in sorted ID order.
func ToolCallsAnswered(final map[string]Final) error {
	ids := make([]string, 0, len(final))
	for id := range final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		msgs := final[id].Messages
		issued := make(map[string]int) // call ID -> index of the message that made it
		answered := make(map[string]bool)
		for i, m := range msgs {
			if m.ToolCallID != "" {
				at, ok := issued[m.ToolCallID]
				switch {
				case !ok:
					return fmt.Errorf("agent %s: message %d (seq %d) returns tool call %q, which no earlier message made", id, i, m.Seq, m.ToolCallID)
				case answered[m.ToolCallID]:
					return fmt.Errorf("agent %s: message %d (seq %d) answers tool call %q (made by message %d) a second time", id, i, m.Seq, m.ToolCallID, at)
				}
				answered[m.ToolCallID] = true
			}
			for _, c := range m.ToolCallIDs {
				if at, ok := issued[c]; ok {
					return fmt.Errorf("agent %s: message %d (seq %d) makes tool call %q again (first by message %d)", id, i, m.Seq, c, at)
				}
				issued[c] = i
			}
		}
		for i, m := range msgs {
			for _, c := range m.ToolCallIDs {
				if !answered[c] {
					return fmt.Errorf("agent %s: tool call %q of message %d (seq %d, %s) has no tool return", id, c, i, m.Seq, m.Role)
				}
			}
		}
	}
	return nil
}

// ListsConsistent checks every OK list against the creates and deletes
// around it. It assumes each recorded list is complete (the workload lists
// everything in one page; see the package documentation). For a list L:
//
//   - no agent appears twice;
//   - no listed agent had a delete that found it and returned OK strictly
//     before L was called;
//   - no listed agent's create was called strictly after L returned;
//   - every agent whose create returned OK strictly before L was called
//     is listed, unless a delete of it (OK and found, or Unknown) was
//     called no later than L returned.
//
// Intervals are closed, as in porcupine: equal times are concurrent.
func ListsConsistent(h *History) error {
	if err := validate(h); err != nil {
		return err
	}
	order, agents := summarize(h)
	for li := range h.Ops {
		l := &h.Ops[li]
		if l.Kind != KindList || l.Outcome != OK {
			continue
		}
		listed := make(map[string]bool, len(l.Listed))
		for _, id := range l.Listed {
			if listed[id] {
				return fmt.Errorf("list #%d %v: agent %s listed twice", li, *l, id)
			}
			listed[id] = true
			a := agents[id]
			if a == nil {
				continue
			}
			for _, d := range a.deletes {
				if d.Return < l.Call {
					return fmt.Errorf("list #%d %v: lists agent %s, deleted before it by %v", li, *l, id, *d)
				}
			}
			for _, c := range a.creates {
				if c.Call > l.Return {
					return fmt.Errorf("list #%d %v: lists agent %s, whose create %v was called after it", li, *l, id, *c)
				}
			}
		}
		for _, id := range order {
			a := agents[id]
			if listed[id] || strings.HasPrefix(id, "conv-") {
				continue // listed, or a conversation: lists name agents only
			}
			createdBefore := false
			for _, c := range a.creates {
				if c.Return < l.Call {
					createdBefore = true
				}
			}
			if !createdBefore {
				continue
			}
			excused := false
			for _, d := range append(append([]*Op(nil), a.deletes...), a.unknownDeletes...) {
				if d.Call <= l.Return {
					excused = true
					break
				}
			}
			if !excused {
				return fmt.Errorf("list #%d %v: misses agent %s, created before it by %v and not deleted", li, *l, id, *a.creates[0])
			}
		}
	}
	return nil
}
