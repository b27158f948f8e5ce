package api_test

import (
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// TestResumeAfterFirstMessage: seq_ids start at 1, as Letta's do, so
// resuming after the very first message of an agent's log skips it, and
// the default starting_after (0) replays from the start.
func TestResumeAfterFirstMessage(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "resumer")
	runID := decodeAs[struct {
		Usage struct {
			RunIDs []string `json:"run_ids"`
		} `json:"usage"`
	}](t, ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "first"}}})).Usage.RunIDs[0]
	logged := decodeAs[[]struct {
		MessageType string `json:"message_type"`
		SeqID       int64  `json:"seq_id"`
	}](t, ok(t, srv, "GET", "/v1/runs/"+runID+"/messages?order=asc", nil))
	if len(logged) < 2 || logged[0].MessageType != "user_message" || logged[0].SeqID != 1 {
		t.Fatalf("the first logged message should have seq_id 1: %+v", logged)
	}
	for _, tc := range []struct {
		after     int64
		firstType string
	}{{0, "user_message"}, {-3, "user_message"}, {1, logged[1].MessageType}} {
		_, _, events := postSSE(t, srv, "/v1/runs/"+runID+"/stream", map[string]any{"starting_after": tc.after})
		msgs := checkStream(t, events)
		if msgs[0]["message_type"] != tc.firstType || int64(msgs[0]["seq_id"].(float64)) <= tc.after {
			t.Fatalf("starting_after=%d: the stream starts with %v", tc.after, msgs[0])
		}
	}
}
