package check

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const timeout = 5 * time.Second

// Builders for hand-written histories. Times are [call, ret].

func create(agent, name string, call, ret int64) Op {
	return Op{Kind: KindCreate, Agent: agent, Name: name, Call: call, Return: ret, Outcome: OK}
}

func get(agent, name string, msgs uint64, call, ret int64) Op {
	return Op{Kind: KindGet, Agent: agent, Name: name, Messages: msgs, Found: true, Call: call, Return: ret, Outcome: OK}
}

func update(agent, name string, call, ret int64) Op {
	return Op{Kind: KindUpdate, Agent: agent, Name: name, Found: true, Call: call, Return: ret, Outcome: OK}
}

func del(agent string, call, ret int64) Op {
	return Op{Kind: KindDelete, Agent: agent, Found: true, Call: call, Return: ret, Outcome: OK}
}

func send(agent string, first, n uint64, call, ret int64) Op {
	return Op{Kind: KindSend, Agent: agent, FirstSeq: first, Messages: n, Found: true, Call: call, Return: ret, Outcome: OK}
}

func list(call, ret int64, ids ...string) Op {
	return Op{Kind: KindList, Listed: ids, Call: call, Return: ret, Outcome: OK}
}

// notFound turns an OK op into a definite not-found answer.
func notFound(op Op) Op {
	op.Found, op.Name, op.Messages, op.FirstSeq = false, "", 0, 0
	return op
}

// unknown turns op into one with an unknown outcome (it never returned).
func unknown(op Op) Op {
	op.Outcome, op.Return = Unknown, 0
	return op
}

func failed(op Op) Op {
	op.Outcome = Failed
	return op
}

func hist(ops ...Op) *History {
	h := &History{}
	for i, op := range ops {
		op.Client = i
		h.Add(op)
	}
	return h
}

func TestLinearizable(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		ops  []Op
	}{
		{"empty", true, nil},
		{"create then get", true, []Op{
			create("a", "x", 0, 10), get("a", "x", 0, 20, 30),
		}},
		{"get misses acknowledged create", false, []Op{
			create("a", "x", 0, 10), notFound(get("a", "", 0, 20, 30)),
		}},
		{"not-found get concurrent with create", true, []Op{
			create("a", "x", 0, 10), notFound(get("a", "", 0, 5, 30)), get("a", "x", 0, 6, 31),
		}},
		{"get before create says not found", true, []Op{
			notFound(get("a", "", 0, 0, 5)), create("a", "x", 10, 20), get("a", "x", 0, 30, 40),
		}},
		{"get found before create was called", false, []Op{
			get("a", "x", 0, 0, 5), create("a", "x", 10, 20),
		}},
		{"stale name after acknowledged update", false, []Op{
			create("a", "x", 0, 10), update("a", "y", 20, 30), get("a", "x", 0, 40, 50),
		}},
		{"concurrent update and get reads old", true, []Op{
			create("a", "x", 0, 10), update("a", "y", 20, 40), get("a", "x", 0, 30, 50),
		}},
		{"concurrent update and get reads new", true, []Op{
			create("a", "x", 0, 10), update("a", "y", 20, 40), get("a", "y", 0, 30, 50),
		}},
		{"concurrent reads see new then old", false, []Op{
			create("a", "x", 0, 10), update("a", "y", 20, 100),
			get("a", "y", 0, 30, 40), get("a", "x", 0, 50, 60),
		}},
		{"failed update has no effect", true, []Op{
			create("a", "x", 0, 10), failed(update("a", "z", 20, 30)), get("a", "x", 0, 40, 50),
		}},
		{"failed update seen", false, []Op{
			create("a", "x", 0, 10), failed(update("a", "z", 20, 30)), get("a", "z", 0, 40, 50),
		}},
		{"unknown update appears later", true, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 20, 0)),
			get("a", "x", 0, 30, 40), get("a", "y", 0, 50, 60), get("a", "y", 0, 70, 80),
		}},
		{"unknown update never appears", true, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 20, 0)),
			get("a", "x", 0, 30, 40), get("a", "x", 0, 50, 60),
		}},
		{"unknown update appears then reverts", false, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 20, 0)),
			get("a", "y", 0, 30, 40), get("a", "x", 0, 50, 60),
		}},
		{"unknown update seen before it was called", false, []Op{
			create("a", "x", 0, 10), get("a", "y", 0, 20, 30), unknown(update("a", "y", 40, 0)),
		}},
		{"two unknown updates, both orders", true, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 20, 0)), unknown(update("a", "z", 21, 0)),
			get("a", "y", 0, 30, 40), get("a", "z", 0, 50, 60), get("a", "z", 0, 70, 80),
		}},
		{"unknown send then get shows growth", true, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), unknown(send("a", 0, 0, 40, 0)),
			get("a", "x", 5, 50, 60), send("a", 5, 3, 70, 80), get("a", "x", 8, 90, 100),
		}},
		{"unknown send that did not apply", true, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), unknown(send("a", 0, 0, 40, 0)),
			get("a", "x", 2, 50, 60), send("a", 2, 1, 70, 80),
		}},
		{"unknown send resolved then contradicted", false, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), unknown(send("a", 0, 0, 40, 0)),
			get("a", "x", 5, 50, 60), get("a", "x", 4, 70, 80),
		}},
		{"messages shrink below acknowledged send", false, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), unknown(send("a", 0, 0, 40, 0)),
			get("a", "x", 1, 50, 60),
		}},
		{"unknown send applied after a later ok send", true, []Op{
			create("a", "x", 0, 10), unknown(send("a", 0, 0, 15, 0)), send("a", 0, 2, 20, 30),
			get("a", "x", 4, 50, 60),
		}},
		{"send first seq skips", false, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), send("a", 3, 1, 40, 50),
		}},
		{"send first seq repeats", false, []Op{
			create("a", "x", 0, 10), send("a", 0, 2, 20, 30), send("a", 1, 1, 40, 50),
		}},
		{"concurrent sends", true, []Op{
			create("a", "x", 0, 10), send("a", 2, 1, 20, 40), send("a", 0, 2, 21, 41), get("a", "x", 3, 50, 60),
		}},
		{"successful get after delete", false, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), get("a", "x", 0, 40, 50),
		}},
		{"not found after delete", true, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), notFound(get("a", "", 0, 40, 50)),
			notFound(update("a", "y", 60, 70)), notFound(send("a", 0, 0, 80, 90)), notFound(del("a", 100, 110)),
		}},
		{"update of deleted agent acknowledged", false, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), update("a", "y", 40, 50),
		}},
		{"unknown delete then found", true, []Op{
			create("a", "x", 0, 10), unknown(del("a", 20, 0)), get("a", "x", 0, 30, 40),
			notFound(get("a", "", 0, 50, 60)),
		}},
		{"unknown delete, then resurrection", false, []Op{
			create("a", "x", 0, 10), unknown(del("a", 20, 0)), notFound(get("a", "", 0, 30, 40)),
			get("a", "x", 0, 50, 60),
		}},
		{"unknown send explains one jump only", false, []Op{
			create("a", "x", 0, 10), unknown(send("a", 0, 0, 15, 0)), get("a", "x", 2, 20, 30),
			send("a", 2, 1, 40, 50), get("a", "x", 5, 60, 70),
		}},
		{"unknown update applies once", false, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 15, 0)), get("a", "y", 0, 20, 30),
			update("a", "z", 40, 50), get("a", "y", 0, 60, 70),
		}},
		{"unknown update with a repeated name applies once each", true, []Op{
			create("a", "x", 0, 10), unknown(update("a", "y", 15, 0)), unknown(update("a", "y", 16, 0)),
			get("a", "y", 0, 20, 30), update("a", "z", 40, 50), get("a", "y", 0, 60, 70),
		}},
		{"unknown ops on a deleted agent", true, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), unknown(update("a", "y", 40, 0)),
			unknown(send("a", 0, 0, 41, 0)), unknown(del("a", 42, 0)), notFound(get("a", "", 0, 50, 60)),
		}},
		{"unknown delete applies late", true, []Op{
			create("a", "x", 0, 10), unknown(del("a", 15, 0)), get("a", "x", 0, 20, 30),
			send("a", 0, 1, 40, 50), notFound(send("a", 0, 0, 60, 70)),
		}},
		{"unknown create, seen", true, []Op{
			unknown(create("a", "x", 0, 0)), get("a", "x", 0, 20, 30),
		}},
		{"unknown create, never seen", true, []Op{
			unknown(create("a", "x", 0, 0)), notFound(get("a", "", 0, 20, 30)),
		}},
		{"unknown get is ignored", true, []Op{
			create("a", "x", 0, 10), unknown(get("a", "nonsense", 99, 20, 0)),
		}},
		{"other agent is independent", true, []Op{
			create("a", "x", 0, 10), create("b", "y", 5, 15), get("a", "x", 0, 20, 30), get("b", "y", 0, 20, 30),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Linearizable(hist(c.ops...), timeout)
			switch {
			case c.ok && err != nil:
				t.Fatalf("want linearizable, got %v", err)
			case !c.ok && err == nil:
				t.Fatalf("want a violation, got none")
			case !c.ok && !errors.Is(err, ErrNotLinearizable):
				t.Fatalf("want ErrNotLinearizable, got %v", err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

func TestLinearizableNamesFirstBadAgent(t *testing.T) {
	h := hist(
		create("good", "x", 0, 10), get("good", "x", 0, 20, 30),
		create("bad", "x", 0, 10), update("bad", "y", 20, 30), get("bad", "x", 0, 40, 50),
		create("worse", "x", 0, 10), notFound(get("worse", "", 0, 20, 30)),
	)
	err := Linearizable(h, timeout)
	if err == nil || !strings.HasPrefix(err.Error(), "agent bad:") {
		t.Fatalf("want an error naming agent bad first, got %v", err)
	}
	if !strings.Contains(err.Error(), `get() [40,50] -> {name="x" messages=0}`) {
		t.Errorf("want the offending get rendered, got %v", err)
	}
}

// TestLateUnknownEffects: Unknown ops whose effects show up late, one at a
// time. Placing each Unknown op's effect by search is exponential here;
// deferred effects (see agentState) make it immediate.
func TestLateUnknownEffects(t *testing.T) {
	const n = 25
	ops := []Op{create("a", "x", 0, 10)}
	for i := range n {
		ops = append(ops, unknown(send("a", 0, 0, int64(20+i), 0)))
		ops = append(ops, unknown(update("a", fmt.Sprintf("n%d", i), int64(20+i), 0)))
	}
	for i := range n {
		ops = append(ops, get("a", fmt.Sprintf("n%d", i), uint64(i+1), int64(1000+100*i), int64(1050+100*i)))
	}
	start := time.Now()
	if err := Linearizable(hist(ops...), timeout); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d ops with %d unknown: linearizable in %v", len(ops), 2*n, time.Since(start))
	// One more growth than there are Unknown sends: illegal.
	ops = append(ops, get("a", "n24", n+1, 5000, 5100))
	if err := Linearizable(hist(ops...), timeout); !errors.Is(err, ErrNotLinearizable) {
		t.Fatalf("want ErrNotLinearizable, got %v", err)
	}
}

func TestLinearizableTimeout(t *testing.T) {
	// 30 concurrent updates with distinct names and then a get that reads
	// a name none of them wrote: proving it illegal means trying every
	// subset of the updates.
	ops := []Op{create("a", "x", 0, 10)}
	for i := range 30 {
		ops = append(ops, update("a", fmt.Sprintf("n%d", i), int64(20+i), 1000))
	}
	ops = append(ops, get("a", "nope", 0, 1100, 1200))
	start := time.Now()
	err := Linearizable(hist(ops...), 50*time.Millisecond)
	if !errors.Is(err, ErrCheckTimeout) {
		t.Fatalf("want ErrCheckTimeout, got %v", err)
	}
	t.Logf("%v (after %v)", err, time.Since(start))
}

func TestInvalidOps(t *testing.T) {
	for _, h := range []*History{
		{Ops: []Op{{Kind: KindGet, Agent: "a", Call: 0, Return: 1}}},              // zero outcome
		{Ops: []Op{{Kind: "frobnicate", Agent: "a", Outcome: OK}}},                // bad kind
		{Ops: []Op{{Kind: KindGet, Outcome: OK}}},                                 // no agent
		{Ops: []Op{{Kind: KindGet, Agent: "a", Outcome: OK, Call: 5, Return: 1}}}, // returns before call
	} {
		if err := Linearizable(h, timeout); err == nil {
			t.Errorf("%+v: want an error", h.Ops[0])
		}
		if err := ListsConsistent(h); err == nil {
			t.Errorf("%+v: want an error from ListsConsistent", h.Ops[0])
		}
	}
}

// msgs builds a log of n plain messages with seqs 0..n-1.
func msgs(n int) []MessageRecord {
	out := make([]MessageRecord, n)
	for i := range out {
		out[i] = MessageRecord{Seq: uint64(i), Role: "user"}
	}
	return out
}

func TestAcknowledgedDurable(t *testing.T) {
	cases := []struct {
		name  string
		ok    bool
		ops   []Op
		final map[string]Final
	}{
		{"created agent present", true,
			[]Op{create("a", "x", 0, 10)},
			map[string]Final{"a": {Name: "x"}}},
		{"created agent lost", false,
			[]Op{create("a", "x", 0, 10)},
			map[string]Final{}},
		{"deleted agent gone", true,
			[]Op{create("a", "x", 0, 10), del("a", 20, 30)},
			map[string]Final{}},
		{"deleted agent still there", false,
			[]Op{create("a", "x", 0, 10), del("a", 20, 30)},
			map[string]Final{"a": {Name: "x"}}},
		{"unknown delete applied", true,
			[]Op{create("a", "x", 0, 10), unknown(del("a", 20, 0))},
			map[string]Final{}},
		{"unknown delete not applied", true,
			[]Op{create("a", "x", 0, 10), unknown(del("a", 20, 0))},
			map[string]Final{"a": {Name: "x"}}},
		{"failed delete does not excuse loss", false,
			[]Op{create("a", "x", 0, 10), failed(del("a", 20, 30))},
			map[string]Final{}},
		{"last update's name", true,
			[]Op{create("a", "x", 0, 10), update("a", "y", 20, 30), update("a", "z", 40, 50)},
			map[string]Final{"a": {Name: "z"}}},
		{"acknowledged update lost", false,
			[]Op{create("a", "x", 0, 10), update("a", "y", 20, 30), update("a", "z", 40, 50)},
			map[string]Final{"a": {Name: "y"}}},
		{"concurrent updates, either wins", true,
			[]Op{create("a", "x", 0, 10), update("a", "y", 20, 50), update("a", "z", 30, 60)},
			map[string]Final{"a": {Name: "y"}}},
		{"unknown update applied", true,
			[]Op{create("a", "x", 0, 10), update("a", "y", 20, 30), unknown(update("a", "u", 40, 0))},
			map[string]Final{"a": {Name: "u"}}},
		{"unknown update not applied", true,
			[]Op{create("a", "x", 0, 10), update("a", "y", 20, 30), unknown(update("a", "u", 40, 0))},
			map[string]Final{"a": {Name: "y"}}},
		{"failed update applied", false,
			[]Op{create("a", "x", 0, 10), failed(update("a", "f", 20, 30))},
			map[string]Final{"a": {Name: "f"}}},
		{"agent from an unrecorded create", true,
			nil,
			map[string]Final{"ghost": {Name: "g"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := AcknowledgedDurable(hist(c.ops...), c.final)
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v, got %v", c.ok, err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

func TestMessagesIntact(t *testing.T) {
	base := []Op{create("a", "x", 0, 10), send("a", 0, 2, 20, 30), send("a", 2, 3, 40, 50)}
	gapped := msgs(5)
	gapped[3].Seq = 4
	gapped[4].Seq = 5
	dup := msgs(5)
	dup[3].Seq = 2
	cases := []struct {
		name  string
		ok    bool
		ops   []Op
		final map[string]Final
	}{
		{"all acknowledged messages present", true, base,
			map[string]Final{"a": {Name: "x", Messages: msgs(5)}}},
		{"lost acknowledged message", false, base,
			map[string]Final{"a": {Name: "x", Messages: msgs(4)}}},
		{"phantom message without unknown send", false, base,
			map[string]Final{"a": {Name: "x", Messages: msgs(6)}}},
		{"gap in sequence numbers", false, base,
			map[string]Final{"a": {Name: "x", Messages: gapped}}},
		{"duplicate sequence number", false, base,
			map[string]Final{"a": {Name: "x", Messages: dup}}},
		{"unknown send applied", true,
			append(append([]Op(nil), base...), unknown(send("a", 0, 0, 60, 0))),
			map[string]Final{"a": {Name: "x", Messages: msgs(8)}}},
		{"unknown send not applied", true,
			append(append([]Op(nil), base...), unknown(send("a", 0, 0, 60, 0))),
			map[string]Final{"a": {Name: "x", Messages: msgs(5)}}},
		{"unknown send applied between acknowledged ones", true,
			[]Op{create("a", "x", 0, 10), send("a", 0, 2, 20, 30), unknown(send("a", 0, 0, 35, 0)), send("a", 4, 1, 40, 50)},
			map[string]Final{"a": {Name: "x", Messages: msgs(5)}}},
		{"two unaccounted runs, one unknown send", false,
			[]Op{create("a", "x", 0, 10), unknown(send("a", 0, 0, 15, 0)), send("a", 1, 2, 20, 30)},
			map[string]Final{"a": {Name: "x", Messages: msgs(4)}}},
		{"overlapping acknowledged sends", false,
			[]Op{create("a", "x", 0, 10), send("a", 0, 2, 20, 30), send("a", 1, 2, 40, 50), unknown(send("a", 0, 0, 60, 0))},
			map[string]Final{"a": {Name: "x", Messages: msgs(3)}}},
		{"get read more than the final log", false,
			[]Op{create("a", "x", 0, 10), unknown(send("a", 0, 0, 15, 0)), get("a", "x", 3, 20, 30)},
			map[string]Final{"a": {Name: "x", Messages: msgs(2)}}},
		{"agent with acknowledged messages gone", false, base,
			map[string]Final{}},
		{"deleted agent's messages gone", true,
			append(append([]Op(nil), base...), del("a", 60, 70)),
			map[string]Final{}},
		{"failed send appended nothing", true,
			append(append([]Op(nil), base...), failed(send("a", 0, 0, 60, 70))),
			map[string]Final{"a": {Name: "x", Messages: msgs(5)}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := MessagesIntact(hist(c.ops...), c.final)
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v, got %v", c.ok, err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

func TestToolCallsAnswered(t *testing.T) {
	u := MessageRecord{Role: "user"}
	call := func(ids ...string) MessageRecord { return MessageRecord{Role: "assistant", ToolCallIDs: ids} }
	ret := func(id string) MessageRecord { return MessageRecord{Role: "tool", ToolCallID: id} }
	asst := MessageRecord{Role: "assistant"}
	log := func(ms ...MessageRecord) map[string]Final {
		for i := range ms {
			ms[i].Seq = uint64(i)
		}
		return map[string]Final{"a": {Name: "x", Messages: ms}}
	}
	cases := []struct {
		name  string
		ok    bool
		final map[string]Final
	}{
		{"no tool calls", true, log(u, asst)},
		{"answered", true, log(u, call("t1", "t2"), ret("t1"), ret("t2"), asst, u, call("t3"), ret("t3"))},
		{"tool call without return", false, log(u, call("t1", "t2"), ret("t1"), asst)},
		{"last turn's call unanswered", false, log(u, call("t1"))},
		{"answered twice", false, log(u, call("t1"), ret("t1"), ret("t1"))},
		{"return before call", false, log(u, ret("t1"), call("t1"))},
		{"orphan return", false, log(u, ret("zz"))},
		{"call id reused", false, log(u, call("t1"), ret("t1"), call("t1"), ret("t1"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ToolCallsAnswered(c.final)
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v, got %v", c.ok, err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

func TestListsConsistent(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		ops  []Op
	}{
		{"lists created agents", true, []Op{
			create("a", "x", 0, 10), create("b", "y", 0, 10), list(20, 30, "a", "b"),
		}},
		{"missing agent created before", false, []Op{
			create("a", "x", 0, 10), create("b", "y", 0, 10), list(20, 30, "a"),
		}},
		{"concurrent create may be missing", true, []Op{
			create("a", "x", 0, 10), create("b", "y", 15, 25), list(20, 30, "a"),
		}},
		{"concurrent create may be present", true, []Op{
			create("a", "x", 0, 10), create("b", "y", 15, 25), list(20, 30, "a", "b"),
		}},
		{"listed before its create was called", false, []Op{
			list(0, 10, "a"), create("a", "x", 20, 30),
		}},
		{"lists agent deleted before", false, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), list(40, 50, "a"),
		}},
		{"deleted agent not listed", true, []Op{
			create("a", "x", 0, 10), del("a", 20, 30), list(40, 50),
		}},
		{"concurrent delete, either way", true, []Op{
			create("a", "x", 0, 10), create("b", "y", 0, 10), del("a", 20, 50), del("b", 20, 50),
			list(40, 60, "a"),
		}},
		{"unknown delete excuses absence", true, []Op{
			create("a", "x", 0, 10), unknown(del("a", 20, 0)), list(40, 50),
		}},
		{"unknown delete does not forbid presence", true, []Op{
			create("a", "x", 0, 10), unknown(del("a", 20, 0)), list(40, 50, "a"),
		}},
		{"failed delete does not excuse absence", false, []Op{
			create("a", "x", 0, 10), failed(del("a", 20, 30)), list(40, 50),
		}},
		{"listed twice", false, []Op{
			create("a", "x", 0, 10), list(20, 30, "a", "a"),
		}},
		{"failed and unknown lists are not checked", true, []Op{
			create("a", "x", 0, 10), failed(list(20, 30)), unknown(list(20, 30)),
		}},
		{"agent from an unrecorded create", true, []Op{
			create("a", "x", 0, 10), list(20, 30, "a", "ghost"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ListsConsistent(hist(c.ops...))
			if (err == nil) != c.ok {
				t.Fatalf("ok=%v, got %v", c.ok, err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
}

// genAgent is the generator's true state of one agent.
type genAgent struct {
	id      string
	exists  bool
	name    string
	log     []MessageRecord
	created bool
}

// generate builds a valid history of nops operations on up to nagents
// agents. Operations are applied one at a time to a true state, at
// strictly increasing linearization points; each op's interval is drawn
// around its point, so ops overlap as with concurrent clients. As in a
// real workload, there are 16 clients, each with one op in flight at a
// time (a client gives up on an Unknown op after a while), and an agent is
// only addressed once its create has returned (its ID is not known
// before). Some ops fail or have unknown outcomes (unknownPct percent); an
// Unknown op takes effect half the time.
func generate(seed uint64, nagents, nops, unknownPct int) (*History, map[string]Final) {
	return generateWidth(seed, nagents, nops, unknownPct, 3000)
}

// generateWidth is generate with intervals reaching up to width ns either
// side of the linearization point (which are ~55ns apart).
func generateWidth(seed uint64, nagents, nops, unknownPct int, width int64) (*History, map[string]Final) {
	const clients = 16
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := &History{}
	var agents []*genAgent
	created := make(map[*genAgent]int64) // create's return time
	var busy [clients]int64              // when each client is free again
	var now int64 = 1000
	toolID := 0
	outcome := func() Outcome {
		switch r := rng.IntN(100); {
		case r < 7:
			return Failed
		case r < 7+unknownPct:
			return Unknown
		}
		return OK
	}
	turn := func(a *genAgent) uint64 {
		k := 1 + rng.IntN(4)
		add := func(m MessageRecord) {
			m.Seq = uint64(len(a.log))
			a.log = append(a.log, m)
		}
		add(MessageRecord{Role: "user"})
		if k >= 2 {
			if k == 2 {
				add(MessageRecord{Role: "assistant"})
			} else {
				toolID++
				id := fmt.Sprintf("tc-%d", toolID)
				add(MessageRecord{Role: "assistant", ToolCallIDs: []string{id}})
				add(MessageRecord{Role: "tool", ToolCallID: id})
				if k == 4 {
					add(MessageRecord{Role: "assistant"})
				}
			}
		}
		return uint64(k)
	}
	for len(h.Ops) < nops {
		now += 10 + rng.Int64N(90)
		c := rng.IntN(clients)
		if busy[c] >= now {
			continue
		}
		call := max(busy[c]+1, now-rng.Int64N(width))
		ret := now + rng.Int64N(width)
		busy[c] = ret
		op := Op{Client: c, Call: call, Return: ret, Outcome: OK}
		var known []*genAgent
		for _, a := range agents {
			if created[a] < call {
				known = append(known, a)
			}
		}
		if len(agents) < nagents && (len(known) == 0 || rng.IntN(100) < 5) {
			a := &genAgent{id: fmt.Sprintf("agent-%02d", len(agents)), exists: true, created: true}
			a.name = fmt.Sprintf("n%d", rng.IntN(1000))
			agents = append(agents, a)
			created[a] = ret
			op.Kind, op.Agent, op.Name = KindCreate, a.id, a.name
			h.Add(op)
			continue
		}
		if len(known) == 0 || rng.IntN(100) < 3 {
			op.Kind = KindList
			for _, a := range agents {
				if a.exists {
					op.Listed = append(op.Listed, a.id)
				}
			}
			h.Add(op)
			continue
		}
		a := known[rng.IntN(len(known))]
		op.Agent = a.id
		op.Outcome = outcome()
		applies := op.Outcome == OK || (op.Outcome == Unknown && rng.IntN(2) == 0)
		switch r := rng.IntN(100); {
		case r < 35:
			op.Kind = KindGet
			op.Found = a.exists
			if a.exists {
				op.Name, op.Messages = a.name, uint64(len(a.log))
			}
		case r < 55:
			op.Kind = KindUpdate
			op.Name = fmt.Sprintf("n%d", rng.IntN(1000))
			op.Found = a.exists
			if applies && a.exists {
				a.name = op.Name
			}
		case r < 99:
			op.Kind = KindSend
			op.Found = a.exists
			if applies && a.exists {
				op.FirstSeq = uint64(len(a.log))
				op.Messages = turn(a)
			}
		default:
			op.Kind = KindDelete
			op.Found = a.exists
			if applies && a.exists {
				a.exists, a.name, a.log = false, "", nil
			}
		}
		if op.Outcome == Unknown {
			op.Return = 0
		}
		h.Add(op)
	}
	final := make(map[string]Final)
	for _, a := range agents {
		if a.exists {
			final[a.id] = Final{Name: a.name, Messages: a.log}
		}
	}
	return h, final
}

func checkAll(h *History, final map[string]Final) error {
	if err := Linearizable(h, 10*time.Second); err != nil {
		return err
	}
	if err := AcknowledgedDurable(h, final); err != nil {
		return err
	}
	if err := MessagesIntact(h, final); err != nil {
		return err
	}
	if err := ToolCallsAnswered(final); err != nil {
		return err
	}
	return ListsConsistent(h)
}

func TestGeneratedHistories(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		h, final := generate(seed, 40, 2000, 8)
		unknowns := 0
		for _, op := range h.Ops {
			if op.Outcome == Unknown {
				unknowns++
			}
		}
		start := time.Now()
		err := checkAll(h, final)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("seed %d: valid history rejected: %v", seed, err)
		}
		t.Logf("seed %d: %d ops (%d unknown) on %d agents, %d surviving: all checks passed in %v",
			seed, len(h.Ops), unknowns, 40, len(final), elapsed)
	}
}

// TestGeneratedMutations corrupts valid generated histories in ways each
// checker must catch.
func TestGeneratedMutations(t *testing.T) {
	// Without unknown outcomes, so that every mutation below is
	// detectable (an unknown send can excuse a shifted FirstSeq or a
	// missing message; unknown ops are covered by the hand-built cases).
	h, final := generate(7, 40, 2000, 0)
	lastOK := func(kind Kind, found bool) int {
		for i := len(h.Ops) - 1; i >= 0; i-- {
			op := &h.Ops[i]
			if op.Kind == kind && op.Outcome == OK && op.Found == found {
				if _, alive := final[op.Agent]; alive {
					return i
				}
			}
		}
		t.Fatalf("no OK %s", kind)
		return -1
	}
	clone := func() *History {
		c := &History{Ops: append([]Op(nil), h.Ops...)}
		return c
	}

	t.Run("stale name read", func(t *testing.T) {
		c := clone()
		i := lastOK(KindGet, true)
		c.Ops[i].Name += "-stale"
		if err := Linearizable(c, timeout); !errors.Is(err, ErrNotLinearizable) {
			t.Fatalf("want ErrNotLinearizable, got %v", err)
		}
	})
	t.Run("send seq skips", func(t *testing.T) {
		c := clone()
		c.Ops[lastOK(KindSend, true)].FirstSeq += 100
		if err := Linearizable(c, timeout); !errors.Is(err, ErrNotLinearizable) {
			t.Fatalf("want ErrNotLinearizable, got %v", err)
		}
	})
	t.Run("lost message", func(t *testing.T) {
		i := lastOK(KindSend, true)
		f := final[h.Ops[i].Agent]
		lost := map[string]Final{}
		for k, v := range final {
			lost[k] = v
		}
		lost[h.Ops[i].Agent] = Final{Name: f.Name, Messages: f.Messages[:len(f.Messages)-1]}
		if err := MessagesIntact(h, lost); err == nil {
			t.Fatal("want a violation")
		}
	})
	t.Run("lost agent", func(t *testing.T) {
		i := lastOK(KindSend, true)
		lost := map[string]Final{}
		for k, v := range final {
			if k != h.Ops[i].Agent {
				lost[k] = v
			}
		}
		if err := AcknowledgedDurable(h, lost); err == nil {
			t.Fatal("want a violation")
		}
	})
}

func TestRunIndexesAgree(t *testing.T) {
	all := []RunState{{ID: "r1", Agent: "a"}, {ID: "r2", Agent: "b"}, {ID: "r3", Agent: "a"}}
	if err := RunIndexesAgree(all, map[string][]string{"a": {"r1", "r3"}, "b": {"r2"}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string][]string{
		{"a": {"r1"}, "b": {"r2"}},             // a run missing from the agent's ordering
		{"a": {"r3", "r1"}, "b": {"r2"}},       // out of order
		{"a": {"r1", "r3"}, "b": {"r2", "r9"}}, // an entry the index of all runs lacks
		{"a": {"r1", "r3"}},                    // an agent not read
	} {
		if err := RunIndexesAgree(all, bad); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}
