package check

import (
	"strings"
	"testing"
)

func TestContextWindowsValid(t *testing.T) {
	log := []MessageRecord{
		{ID: "m0", Seq: 0, Role: "user"},
		{ID: "m1", Seq: 1, Role: "assistant", ToolCallIDs: []string{"c1"}},
		{ID: "m2", Seq: 2, Role: "tool", ToolCallID: "c1"},
		{ID: "m3", Seq: 3, Role: "user"},
		{ID: "m4", Seq: 4, Role: "assistant"},
		{ID: "e5", Seq: 5, Role: "event"},
		{ID: "s6", Seq: 6, Role: "summary"},
		{ID: "m7", Seq: 7, Role: "user"},
	}
	good := Final{Messages: log, ContextStart: 3, Summary: &SummaryRecord{MessageID: "s6", Through: 3}}
	if err := ContextWindowsValid(map[string]Final{"a": good}); err != nil {
		t.Fatalf("a valid window: %v", err)
	}
	if err := ContextWindowsValid(map[string]Final{"a": {Messages: log[:5]}}); err != nil {
		t.Fatalf("an uncompacted log: %v", err)
	}
	for name, tc := range map[string]struct {
		f    Final
		want string
	}{
		"no summary":       {Final{Messages: log, ContextStart: 3}, "no summary covers them"},
		"summary short":    {Final{Messages: log, ContextStart: 3, Summary: &SummaryRecord{MessageID: "s6", Through: 1}}, "neither in view nor summarised"},
		"summary unlogged": {Final{Messages: log, ContextStart: 3, Summary: &SummaryRecord{MessageID: "s9", Through: 3}}, "not a summary message"},
		"orphan return":    {Final{Messages: log, ContextStart: 2, Summary: &SummaryRecord{MessageID: "s6", Through: 2}}, "starts with a tool return"},
		"past the end":     {Final{Messages: log, ContextStart: 9, Summary: &SummaryRecord{MessageID: "s6", Through: 9}}, "past the log's end"},
		"summary alone": {Final{Messages: append(append([]MessageRecord{}, log[:5]...), MessageRecord{ID: "s5", Seq: 5, Role: "summary"}),
			ContextStart: 3, Summary: &SummaryRecord{MessageID: "s5", Through: 3}}, "does not follow its compaction's event"},
	} {
		err := ContextWindowsValid(map[string]Final{"a": tc.f})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
