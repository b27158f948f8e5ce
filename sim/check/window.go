package check

import (
	"fmt"
	"sort"

	"github.com/kelpie-ai/kelpie/compaction"
)

// Roles of a compaction's messages (agent.RoleSummary, agent.RoleEvent).
const (
	roleSummary = "summary"
	roleEvent   = "event"
)

// ContextWindowsValid checks every final conversation's context window
// (agents' default conversations and the others alike):
//
//   - the window starts within the log, and the messages before it are
//     covered by the summary: a summary exists, covers the log exactly up
//     to the window's start, and is a summary message of the log;
//   - every summary message directly follows its compaction's event
//     message (a compaction commits both or neither);
//   - the window's messages (summaries and events aside) form a valid
//     model context: it does not start with a tool return, and every tool
//     return in it follows its call (compaction.CheckWindow).
//
// Conversations are checked in sorted ID order.
func ContextWindowsValid(final map[string]Final) error {
	ids := make([]string, 0, len(final))
	for id := range final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := final[id]
		var first, next uint64
		if n := len(f.Messages); n > 0 {
			first, next = f.Messages[0].Seq, f.Messages[n-1].Seq+1
		}
		if len(f.Messages) > 0 && f.ContextStart > next {
			return fmt.Errorf("%s: the context starts at seq %d, past the log's end (%d)", id, f.ContextStart, next)
		}
		if f.ContextStart > first && len(f.Messages) > 0 {
			if f.Summary == nil {
				return fmt.Errorf("%s: messages %d..%d are out of the context window and no summary covers them", id, first, f.ContextStart-1)
			}
			if f.Summary.Through != f.ContextStart {
				return fmt.Errorf("%s: the summary covers the log up to seq %d, the context starts at %d: messages between are neither in view nor summarised",
					id, f.Summary.Through, f.ContextStart)
			}
		}
		summaryFound := f.Summary == nil || f.Summary.MessageID == ""
		var window []compaction.Item
		for i, m := range f.Messages {
			if m.Role == roleSummary {
				if i == 0 || f.Messages[i-1].Role != roleEvent {
					return fmt.Errorf("%s: summary message %s (seq %d) does not follow its compaction's event", id, m.ID, m.Seq)
				}
				if f.Summary != nil && m.ID == f.Summary.MessageID {
					summaryFound = true
				}
			}
			if m.Seq < f.ContextStart || m.Role == roleSummary || m.Role == roleEvent {
				continue
			}
			window = append(window, compaction.Item{Role: m.Role, Calls: m.ToolCallIDs, CallID: m.ToolCallID})
		}
		if !summaryFound {
			return fmt.Errorf("%s: the summary names message %s, which is not a summary message of the log", id, f.Summary.MessageID)
		}
		if err := compaction.CheckWindow(window); err != nil {
			return fmt.Errorf("%s: context window from seq %d: %w", id, f.ContextStart, err)
		}
	}
	return nil
}
