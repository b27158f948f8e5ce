// Package check holds the checkers the deterministic simulator runs over a
// recorded history of AgentService calls: a linearizability check of each
// agent's operations (with porcupine) and invariants over the history and
// the state read back at the end of the run.
//
// The package is pure logic: it does no I/O, starts no goroutines of its
// own (porcupine runs its search on one), and reads no clock or random
// source. It is fed a recorded history.
//
// # Recording conventions
//
// Each client operation is one [Op]. Its [Outcome] is how the client saw it:
//
//   - [OK]: the service answered. For get/update/delete/send, Found=false
//     records a definite "not found" answer.
//   - [Failed]: a definite failure that changed nothing (validation error,
//     ErrBusy, a model failure that rolled the turn back, ...).
//   - [Unknown]: the client cannot tell whether it took effect (timeout,
//     commit error, crash). Its Return is ignored: it is treated as never
//     having returned.
//
// The zero Outcome is invalid, so an Op whose outcome was never set is
// reported rather than silently taken as acknowledged.
//
// A create is recorded only once its agent ID is known, i.e. when it
// returned OK. Agent IDs are never reused.
//
// Lists: [ListsConsistent] assumes every recorded OK list is complete — it
// returned every agent the service had (one page, a limit larger than the
// number of agents ever created). The workload must not record truncated
// pages as lists.
package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Kind of operation.
type Kind string

// The kinds of operations.
const (
	KindCreate Kind = "create"
	KindGet    Kind = "get"
	KindUpdate Kind = "update"
	KindDelete Kind = "delete"
	KindSend   Kind = "send"
	KindList   Kind = "list"
	// KindPurge is the delete of the key's owner (an agent's delete, for
	// its conversations): found, it leaves the key deleted whether or not
	// the key still existed.
	KindPurge Kind = "purge"
)

// Outcome of an operation as the client saw it.
type Outcome int

// The outcomes. The zero value is invalid.
const (
	// OK: the service answered (Found tells "not found" answers apart).
	OK Outcome = iota + 1
	// Failed: a definite failure; nothing happened.
	Failed
	// Unknown: timed out, commit error, node crashed: the operation may
	// or may not have taken effect.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Op is one client operation on one agent (for "list" Agent is "").
type Op struct {
	Client       int
	Kind         Kind
	Agent        string // agent ID
	Call, Return int64  // virtual time in ns; Return is ignored for Unknown
	Outcome      Outcome

	// Inputs/outputs (only those relevant to the Kind are set):

	// Name is, for update, the new name; for create, the name given; for
	// an OK get that found the agent, the name read.
	Name string
	// Found is, for get/update/delete/send, false when the service said
	// "not found". An OK op with Found=false is a definite not-found.
	Found bool
	// Messages is, for an OK get that found the agent, the MessageCount
	// read; for an OK send, the number of messages the turn appended.
	Messages uint64
	// FirstSeq is, for an OK send, the sequence number of the first
	// message it appended.
	FirstSeq uint64
	// Listed is, for an OK list, the agent IDs returned.
	Listed []string
}

// History is a recorded run: every client operation, in any order.
type History struct {
	Ops []Op
}

// Add records op.
func (h *History) Add(op Op) {
	h.Ops = append(h.Ops, op)
}

// Final is an agent's state read back at the end of the run, after all
// faults stopped and the node restarted.
type Final struct {
	Name     string
	Messages []MessageRecord // the whole message log, in log order
	// ContextStart and Summary are the context window's start and its
	// summary of what came before (ContextWindowsValid).
	ContextStart uint64
	Summary      *SummaryRecord
}

// SummaryRecord is a conversation's summary, as its final state holds it.
type SummaryRecord struct {
	MessageID string
	Through   uint64
}

// MessageRecord is one message of a final message log.
type MessageRecord struct {
	ID          string
	Seq         uint64
	Role        string
	ToolCallIDs []string // on assistant messages: the IDs of the tool calls made
	ToolCallID  string   // on tool returns: the call answered
}

// acked reports whether op is an OK op that found its agent (for create:
// that returned OK).
func (op *Op) acked() bool {
	return op.Outcome == OK && (op.Found || op.Kind == KindCreate)
}

// String renders op briefly, e.g. `#3 c1 update("x") [100,200] -> ok`.
func (op Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d %s", op.Client, op.Kind)
	switch op.Kind {
	case KindCreate, KindUpdate:
		fmt.Fprintf(&b, "(%q)", op.Name)
	case KindList:
	default:
		b.WriteString("()")
	}
	if op.Outcome == Unknown {
		fmt.Fprintf(&b, " [%d,inf) -> unknown", op.Call)
		return b.String()
	}
	fmt.Fprintf(&b, " [%d,%d] -> ", op.Call, op.Return)
	switch {
	case op.Outcome != OK:
		b.WriteString(op.Outcome.String())
	case op.Kind == KindCreate:
		b.WriteString("ok")
	case op.Kind == KindList:
		fmt.Fprintf(&b, "%v", op.Listed)
	case !op.Found:
		b.WriteString("not found")
	case op.Kind == KindGet:
		fmt.Fprintf(&b, "{name=%q messages=%d}", op.Name, op.Messages)
	case op.Kind == KindSend:
		fmt.Fprintf(&b, "seq [%d,%d)", op.FirstSeq, op.FirstSeq+op.Messages)
	default:
		b.WriteString("ok")
	}
	return b.String()
}

// validate reports the first malformed op of h.
func validate(h *History) error {
	for i := range h.Ops {
		op := &h.Ops[i]
		switch op.Kind {
		case KindCreate, KindGet, KindUpdate, KindDelete, KindSend, KindPurge:
			if op.Agent == "" {
				return fmt.Errorf("op #%d (%s): no agent ID", i, op.Kind)
			}
		case KindList:
		default:
			return fmt.Errorf("op #%d: unknown kind %q", i, op.Kind)
		}
		switch op.Outcome {
		case OK, Failed:
			if op.Return < op.Call {
				return fmt.Errorf("op #%d (%v): returns before it is called", i, *op)
			}
		case Unknown:
		default:
			return fmt.Errorf("op #%d (%s on %s): invalid outcome %d", i, op.Kind, op.Agent, int(op.Outcome))
		}
	}
	return nil
}

// byAgent groups the indexes of h's agent ops (not lists) by agent, and
// returns the agents in order of first appearance.
func byAgent(h *History) (order []string, ops map[string][]int) {
	ops = make(map[string][]int)
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Kind == KindList {
			continue
		}
		if _, ok := ops[op.Agent]; !ok {
			order = append(order, op.Agent)
		}
		ops[op.Agent] = append(ops[op.Agent], i)
	}
	return order, ops
}

// agentOrder returns the agents of h in order of first appearance, then
// those only in final, sorted.
func agentOrder(order []string, final map[string]Final) []string {
	seen := make(map[string]bool, len(order))
	for _, a := range order {
		seen[a] = true
	}
	var extra []string
	for a := range final {
		if !seen[a] {
			extra = append(extra, a)
		}
	}
	sort.Strings(extra)
	return append(slices.Clip(order), extra...)
}
