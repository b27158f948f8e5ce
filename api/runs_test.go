package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

type runJSON struct {
	ID         string `json:"id"`
	AgentID    string `json:"agent_id"`
	Status     string `json:"status"`
	StopReason string `json:"stop_reason"`
}

func waitRun(t *testing.T, srv interface{}, get func() runJSON) runJSON {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		run := get()
		if run.Status != "running" && run.Status != "created" {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s still %s", run.ID, run.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAsyncRun(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "async")
	body := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages/async", map[string]any{"messages": []map[string]any{{"role": "user", "content": "later"}}})
	conform(t, body, "Run", false)
	run := decodeAs[runJSON](t, body)
	if !strings.HasPrefix(run.ID, "run-") || run.AgentID != a.ID {
		t.Fatalf("run = %s", body)
	}
	done := waitRun(t, srv, func() runJSON {
		b := ok(t, srv, "GET", "/v1/runs/"+run.ID, nil)
		conform(t, b, "Run", false)
		return decodeAs[runJSON](t, b)
	})
	if done.Status != "completed" || done.StopReason != "end_turn" {
		t.Fatalf("finished run = %+v", done)
	}
	msgs := ok(t, srv, "GET", "/v1/runs/"+run.ID+"/messages", nil)
	conform(t, msgs, "LettaMessageUnion", true)
	if !strings.Contains(string(msgs), `"later"`) {
		t.Fatalf("run messages lack the input: %s", msgs)
	}
	conform(t, ok(t, srv, "GET", "/v1/runs/"+run.ID+"/usage", nil), "UsageStatistics", false)
	list := ok(t, srv, "GET", "/v1/runs?agent_id="+a.ID, nil)
	conform(t, list, "Run", true)
	if got := decodeAs[[]runJSON](t, list); len(got) != 1 || got[0].ID != run.ID {
		t.Fatalf("runs = %s", list)
	}
	fails(t, srv, "GET", "/v1/runs/run-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
	fails(t, srv, "GET", "/v1/runs/bogus", nil, 422, "not a valid run ID")
}

// gate is a model that blocks every call until released.
func gate() (*llmtest.Script, chan struct{}) {
	release := make(chan struct{})
	return &llmtest.Script{Reply: func(ctx context.Context, req llm.Request) (*llm.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return llmtest.Text("finally"), nil
	}}, release
}

func TestBusyAgentAndCancel(t *testing.T) {
	model, release := gate()
	srv := server(t, model)
	a := createAgent(t, srv, "busy")
	body := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages/async", map[string]any{"messages": []map[string]any{{"role": "user", "content": "one"}}})
	run := decodeAs[runJSON](t, body)
	// While the run is active, a second send is refused with its run ID.
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "two"}}}, 409, run.ID)
	cancelled := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages/cancel", map[string]any{})
	if !strings.Contains(string(cancelled), run.ID) {
		t.Fatalf("cancel answered %s", cancelled)
	}
	close(release)
	got := decodeAs[runJSON](t, ok(t, srv, "GET", "/v1/runs/"+run.ID, nil))
	if got.Status != "cancelled" || got.StopReason != "cancelled" {
		t.Fatalf("run after cancel = %+v", got)
	}
	// The agent takes messages again.
	body = ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "three"}}})
	conform(t, body, "LettaResponse", false)
}

func TestOTIDDeduplication(t *testing.T) {
	model := llmtest.Echo()
	srv := server(t, model)
	a := createAgent(t, srv, "dedup")
	send := map[string]any{"messages": []map[string]any{{"role": "user", "content": "once", "otid": "otid-42"}}}
	first := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", send)
	calls := model.Calls()
	second := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", send)
	if model.Calls() != calls {
		t.Fatalf("a retried message ran the model again (%d calls, then %d)", calls, model.Calls())
	}
	conform(t, second, "LettaResponse", false)
	if string(first) != string(second) {
		t.Fatalf("retry answered differently:\n%s\n%s", first, second)
	}
	log := ok(t, srv, "GET", "/v1/agents/"+a.ID+"/messages", nil)
	if strings.Count(string(log), `"once"`) != 1 {
		t.Fatalf("the retried message was logged twice: %s", log)
	}
}

func TestModelFailureIsLLMAPIError(t *testing.T) {
	failing := &llmtest.Script{Reply: func(context.Context, llm.Request) (*llm.Response, error) {
		return nil, &llm.APIError{Provider: "openai", Status: 429, Message: "slow down"}
	}}
	srv := server(t, failing)
	a := createAgent(t, srv, "ratelimited")
	fails(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, http.StatusTooManyRequests, "llm_api_error")
	// The run is recorded as failed and the agent is free again.
	runs := decodeAs[[]runJSON](t, ok(t, srv, "GET", "/v1/runs?agent_id="+a.ID, nil))
	if len(runs) != 1 || runs[0].Status != "failed" || runs[0].StopReason != "llm_api_error" {
		t.Fatalf("runs = %+v", runs)
	}
}

func TestRunSteps(t *testing.T) {
	srv := server(t, callThenText("memory_insert", map[string]any{"label": "human", "new_str": "x"}))
	a := createAgent(t, srv, "steps")
	body := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "go"}}})
	resp := decodeAs[struct {
		Usage struct {
			RunIDs []string `json:"run_ids"`
		} `json:"usage"`
	}](t, body)
	if len(resp.Usage.RunIDs) != 1 {
		t.Fatalf("usage run_ids: %s", body)
	}
	runID := resp.Usage.RunIDs[0]
	steps := ok(t, srv, "GET", "/v1/runs/"+runID+"/steps?order=asc", nil)
	conform(t, steps, "Step", true)
	list := decodeAs[[]struct {
		ID          string `json:"id"`
		Status      string `json:"status"`
		TotalTokens int    `json:"total_tokens"`
	}](t, steps)
	if len(list) != 2 || list[0].Status != "success" || list[0].TotalTokens == 0 {
		t.Fatalf("steps = %s", steps)
	}
	conform(t, ok(t, srv, "GET", "/v1/steps/"+list[0].ID, nil), "Step", false)
	msgs := ok(t, srv, "GET", "/v1/steps/"+list[0].ID+"/messages", nil)
	conform(t, msgs, "LettaMessageUnion", true)
	if !strings.Contains(string(msgs), "tool_call_message") || !strings.Contains(string(msgs), "tool_return_message") {
		t.Fatalf("step 1 messages: %s", msgs)
	}
	fails(t, srv, "GET", "/v1/steps/step-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
}

// TestListRunsPastAThousand: GET /v1/runs reaches every run of an agent
// with 1,100 of them, paging in both orders with after cursors, and with
// before cursors back again.
func TestListRunsPastAThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 runs")
	}
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "busy")
	var want []string
	for range 1100 {
		body := ok(t, srv, "POST", "/v1/agents/"+a.ID+"/messages/async", map[string]any{"messages": []map[string]any{{"role": "user", "content": "go"}}})
		run := decodeAs[runJSON](t, body)
		waitRun(t, srv, func() runJSON { return decodeAs[runJSON](t, ok(t, srv, "GET", "/v1/runs/"+run.ID, nil)) })
		want = append(want, run.ID)
	}
	for _, base := range []string{"/v1/runs?limit=300", "/v1/runs?limit=1000&agent_id=" + a.ID} {
		for _, order := range []string{"asc", "desc"} {
			var got []string
			cursor := ""
			for page := 0; page < 10; page++ {
				list := decodeAs[[]runJSON](t, ok(t, srv, "GET", base+"&order="+order+cursor, nil))
				if len(list) == 0 {
					break
				}
				for _, r := range list {
					got = append(got, r.ID)
				}
				cursor = "&after=" + list[len(list)-1].ID
			}
			exp := slices.Clone(want)
			if order == "desc" {
				slices.Reverse(exp)
			}
			if !slices.Equal(got, exp) {
				t.Fatalf("%s order=%s: %d runs listed, want %d", base, order, len(got), len(exp))
			}
			// Back from the last run with before cursors.
			var back []string
			cursor = "&before=" + got[len(got)-1]
			for page := 0; page < 10; page++ {
				list := decodeAs[[]runJSON](t, ok(t, srv, "GET", base+"&order="+order+cursor, nil))
				if len(list) == 0 {
					break
				}
				ids := make([]string, len(list))
				for i, r := range list {
					ids[i] = r.ID
				}
				back = append(ids, back...)
				cursor = "&before=" + list[0].ID
			}
			if !slices.Equal(back, exp[:len(exp)-1]) {
				t.Fatalf("%s order=%s with before cursors: %d runs listed, want %d", base, order, len(back), len(exp)-1)
			}
		}
	}
	fails(t, srv, "GET", "/v1/runs?after=run-00000000-0000-4000-8000-000000000000", nil, 404, "run-00000000-0000-4000-8000-000000000000")
}
