package check

import (
	"strings"
	"testing"
)

// sharedFixture: block created [0,10] with "team"; agents a and b each
// append once after it; a client writes "P1" [100,110].
func sharedFixture() *SharedBlock {
	return &SharedBlock{
		ID:     "blk",
		Create: BlockWrite{Value: "team", Call: 0, Return: 10, Outcome: OK},
		Appends: []BlockAppend{
			{Token: "ta", Agent: "a", Issued: 20, Acked: 30, Logged: true},
			{Token: "tb", Agent: "b", Issued: 25, Acked: 40, Logged: true},
			{Token: "tx", Agent: "a", Issued: 50}, // never committed
		},
		Present: map[string]bool{"a": true, "b": true},
	}
}

func TestSharedBlockConsistentAccepts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(b *SharedBlock)
		final string
	}{
		{"both appends", nil, "team\nta\ntb"},
		{"concurrent appends in either order", nil, "team\ntb\nta"},
		{"a patch after both", func(b *SharedBlock) {
			b.Writes = []BlockWrite{{Value: "P1", Call: 100, Return: 110, Outcome: OK}}
		}, "P1"},
		{"a patch concurrent with an append", func(b *SharedBlock) {
			b.Writes = []BlockWrite{{Value: "P1", Call: 35, Return: 110, Outcome: OK}}
		}, "P1\ntb"},
		{"an unknown patch may or may not have applied", func(b *SharedBlock) {
			b.Writes = []BlockWrite{{Value: "P1", Call: 100, Outcome: Unknown}}
		}, "team\nta\ntb"},
		{"an append of an agent deleted before the end", func(b *SharedBlock) {
			b.Appends[2].Agent = "gone"
		}, "team\nta\ntb\ntx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sharedFixture()
			if tc.edit != nil {
				tc.edit(b)
			}
			b.Final = tc.final
			if err := SharedBlockConsistent(b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSharedBlockConsistentCatches(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(b *SharedBlock)
		final      string
	}{
		// The classic lost update: b read the block before a's append
		// committed and wrote its own value over it.
		{"lost update", "lost", nil, "team\ntb"},
		{"an append known only from the log is lost too", "lost", func(b *SharedBlock) {
			b.Appends[0].Acked = 0
		}, "team\ntb"},
		{"an acknowledged patch is overwritten", "acknowledged after it", func(b *SharedBlock) {
			b.Writes = []BlockWrite{{Value: "P1", Call: 100, Return: 110, Outcome: OK}, {Value: "P2", Call: 120, Return: 130, Outcome: OK}}
		}, "P1"},
		{"an append survives a later patch", "before the write of base", func(b *SharedBlock) {
			b.Writes = []BlockWrite{{Value: "P1", Call: 100, Return: 110, Outcome: OK}}
		}, "P1\nta\ntb"},
		{"an append applied twice", "twice", nil, "team\nta\ntb\nta"},
		{"a value nobody wrote", "no write", nil, "garbage\nta\ntb"},
		{"a token nobody issued", "no append", nil, "team\nta\ntb\nzz"},
		{"an append outside its step's transaction", "no committed step", nil, "team\nta\ntb\ntx"},
		{"out of real-time order", "follows", func(b *SharedBlock) {
			b.Appends[1].Issued, b.Appends[1].Acked = 35, 45 // b issued after a was acked
		}, "team\ntb\nta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sharedFixture()
			if tc.edit != nil {
				tc.edit(b)
			}
			b.Final = tc.final
			err := SharedBlockConsistent(b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCallsAnsweredBeforeNextMessage(t *testing.T) {
	ok := map[string]Final{"a": {Messages: []MessageRecord{
		{Seq: 0, Role: "user"},
		{Seq: 1, Role: "assistant", ToolCallIDs: []string{"c1", "c2"}},
		{Seq: 2, Role: "tool", ToolCallID: "c1"},
		// run paused for approval of c2; the approving send answers it
		{Seq: 3, Role: "tool", ToolCallID: "c2"},
		{Seq: 4, Role: "assistant"},
		{Seq: 5, Role: "user"},
	}}}
	if err := CallsAnsweredBeforeNextMessage(ok); err != nil {
		t.Fatal(err)
	}
	// A send accepted while c2 waits for approval.
	bad := map[string]Final{"a": {Messages: []MessageRecord{
		{Seq: 0, Role: "user"},
		{Seq: 1, Role: "assistant", ToolCallIDs: []string{"c1", "c2"}},
		{Seq: 2, Role: "tool", ToolCallID: "c1"},
		{Seq: 3, Role: "user"},
		{Seq: 4, Role: "tool", ToolCallID: "c2"},
	}}}
	if err := CallsAnsweredBeforeNextMessage(bad); err == nil || !strings.Contains(err.Error(), "unanswered") {
		t.Fatalf("err = %v", err)
	}
}

func TestSharedBlocksDeleted(t *testing.T) {
	del := func(o Outcome) *BlockWrite { return &BlockWrite{Call: 200, Return: 210, Outcome: o} }
	for _, tc := range []struct {
		name, want string
		edit       func(b *SharedBlock)
	}{
		{"gone after an acknowledged delete", "", func(b *SharedBlock) { b.Delete, b.Gone = del(OK), true }},
		{"gone after an unknown delete", "", func(b *SharedBlock) { b.Delete, b.Gone = del(Unknown), true }},
		{"there after an unknown delete", "", func(b *SharedBlock) { b.Delete, b.Final = del(Unknown), "team\nta\ntb" }},
		{"gone, never deleted", "no client deleted it", func(b *SharedBlock) { b.Gone = true }},
		{"there after an acknowledged delete", "still there", func(b *SharedBlock) { b.Delete, b.Final = del(OK), "team\nta\ntb" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sharedFixture()
			tc.edit(b)
			err := SharedBlocksConsistent([]*SharedBlock{b})
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	a, b := sharedFixture(), sharedFixture()
	a.Final, b.ID, b.Final = "team\nta\ntb", "blk2", "team\ntb\nta"
	if err := SharedBlocksConsistent([]*SharedBlock{a, b}); err == nil || !strings.Contains(err.Error(), "also in block") {
		t.Fatalf("an append in two generations: got %v", err)
	}
}

func TestCustomToolCallsResolved(t *testing.T) {
	unavailable := func(name string) string { return "gone: " + name }
	ok := []CustomToolCall{
		{Agent: "a", CallID: "c1", Name: "t", Issued: 10, Returned: true, Status: "success", Content: "looked up", Executed: []string{"crashed", "looked up"}},
		{Agent: "a", CallID: "c1a", Name: "t", Issued: 10, Returned: true, Status: "success", Content: "the client's", Approval: true},
		{Agent: "a", CallID: "c2", Name: "t", Issued: 10, GoneSince: 20, Returned: true, Status: "error", Content: "not now"},
		{Agent: "a", CallID: "c3", Name: "t", Issued: 30, GoneSince: 20, Returned: true, Status: "error", Content: "gone: t"},
	}
	if err := CustomToolCallsResolved(ok, unavailable); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []CustomToolCall{
		{Agent: "a", CallID: "c4", Name: "t", Issued: 30, GoneSince: 20, Returned: true, Status: "success", Content: "looked up"},
		{Agent: "a", CallID: "c5", Name: "t", Issued: 30, GoneSince: 20},
		{Agent: "a", CallID: "c6", Name: "t", Issued: 10, Returned: true, Status: "success", Content: "made up", Executed: []string{"looked up"}},
		{Agent: "a", CallID: "c7", Name: "t", Issued: 10, Returned: true, Status: "error", Content: "Error: t was not executed: no executor"},
	} {
		if err := CustomToolCallsResolved([]CustomToolCall{bad}, unavailable); err == nil {
			t.Errorf("%s: accepted", bad.CallID)
		}
	}
}
