package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
)

// callWith sends a request with extra headers and returns the status and
// body.
func callWith(t *testing.T, srv *httptest.Server, method, path string, body any, header map[string]string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

type stepJSON struct {
	ID          string   `json:"id"`
	RunID       string   `json:"run_id"`
	AgentID     string   `json:"agent_id"`
	Model       *string  `json:"model"`
	ModelHandle *string  `json:"model_handle"`
	Feedback    *string  `json:"feedback"`
	Tags        []string `json:"tags"`
	Status      string   `json:"status"`
}

func stepList(t *testing.T, srv *httptest.Server, query string) []string {
	t.Helper()
	body := ok(t, srv, "GET", "/v1/steps?"+query, nil)
	conform(t, body, "Step", true)
	var ids []string
	for _, st := range decodeAs[[]stepJSON](t, body) {
		ids = append(ids, st.ID)
	}
	return ids
}

// sendText sends one user message and returns the run's steps, oldest
// first.
func sendText(t *testing.T, srv *httptest.Server, agentID, text string) []string {
	t.Helper()
	body := ok(t, srv, "POST", "/v1/agents/"+agentID+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}})
	var resp struct {
		Usage struct {
			RunIDs []string `json:"run_ids"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || len(resp.Usage.RunIDs) != 1 {
		t.Fatalf("send: %s", body)
	}
	steps := decodeAs[[]stepJSON](t, ok(t, srv, "GET", "/v1/runs/"+resp.Usage.RunIDs[0]+"/steps?order=asc", nil))
	var ids []string
	for _, st := range steps {
		ids = append(ids, st.ID)
	}
	return ids
}

func TestListStepsAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a, b := createAgent(t, srv, "stepper"), createAgent(t, srv, "other")
	stepsA := sendText(t, srv, a.ID, "one")
	stepsB := sendText(t, srv, b.ID, "two")
	stepsA2 := sendText(t, srv, a.ID, "three")
	all := slices.Concat(stepsA, stepsB, stepsA2)
	ofA := slices.Concat(stepsA, stepsA2)

	if got := stepList(t, srv, "order=asc"); !slices.Equal(got, all) {
		t.Fatalf("every step, oldest first = %v, want %v", got, all)
	}
	newest := slices.Clone(all)
	slices.Reverse(newest)
	if got := stepList(t, srv, ""); !slices.Equal(got, newest) {
		t.Fatalf("default order (desc) = %v", got)
	}
	if got := stepList(t, srv, "order=asc&agent_id="+a.ID); !slices.Equal(got, ofA) {
		t.Fatalf("agent a's steps = %v, want %v", got, ofA)
	}
	if got := stepList(t, srv, "order=asc&limit=1&after="+all[0]); !slices.Equal(got, all[1:2]) {
		t.Fatalf("limit=1 after the first = %v", got)
	}
	if got := stepList(t, srv, "order=asc&limit=1&before="+all[len(all)-1]); !slices.Equal(got, all[len(all)-2:len(all)-1]) {
		t.Fatalf("limit=1 before the last = %v", got)
	}
	for _, model := range []string{"gpt-4o-mini", "openai/gpt-4o-mini"} {
		if got := stepList(t, srv, "order=asc&model="+url.QueryEscape(model)); !slices.Equal(got, all) {
			t.Fatalf("model=%s: %v", model, got)
		}
	}
	for _, q := range []string{"model=claude", "start_date=2999-01-01T00:00:00Z", "end_date=2000-01-01", "trace_ids=abc", "project_id=p", "agent_id=agent-00000000-0000-4000-8000-000000000000", "feedback=positive", "has_feedback=true", "tags=x"} {
		if got := stepList(t, srv, q); len(got) != 0 {
			t.Fatalf("%s matched %v", q, got)
		}
	}
	if got := stepList(t, srv, "has_feedback=false&start_date=2000-01-01T00:00:00%2B02:00"); len(got) != len(all) {
		t.Fatalf("has_feedback=false since 2000 = %v", got)
	}

	st := decodeAs[stepJSON](t, ok(t, srv, "GET", "/v1/steps/"+all[0], nil))
	if st.AgentID != a.ID || st.Model == nil || *st.Model != "gpt-4o-mini" || st.ModelHandle == nil || *st.ModelHandle != "openai/gpt-4o-mini" || st.Feedback != nil {
		t.Fatalf("step = %+v", st)
	}

	for _, q := range []string{"order_by=updated_at", "order=sideways", "feedback=meh", "has_feedback=maybe", "start_date=yesterday", "end_date=2025-13-01", "limit=0", "limit=x"} {
		fails(t, srv, "GET", "/v1/steps?"+q, nil, 422, "")
	}
	fails(t, srv, "GET", "/v1/steps?after=step-00000000-0000-4000-8000-000000000000", nil, 404, "not found")
}

func TestStepFeedbackMetricsTraceAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "rated")
	steps := sendText(t, srv, a.ID, "hello")
	id := steps[0]
	path := "/v1/steps/" + id

	body := ok(t, srv, "PATCH", path+"/feedback", map[string]any{"feedback": "positive", "tags": []string{"helpful", "short"}})
	conform(t, body, "Step", false)
	if st := decodeAs[stepJSON](t, body); st.ID != id || st.Feedback == nil || *st.Feedback != "positive" || !slices.Equal(st.Tags, []string{"helpful", "short"}) {
		t.Fatalf("after feedback: %s", body)
	}
	body = ok(t, srv, "GET", path, nil)
	conform(t, body, "Step", false)
	if st := decodeAs[stepJSON](t, body); st.Feedback == nil || *st.Feedback != "positive" {
		t.Fatalf("GET after feedback: %s", body)
	}
	for _, q := range []string{"feedback=positive", "has_feedback=true", "tags=short", "tags=nope&tags=helpful"} {
		if got := stepList(t, srv, q); !slices.Equal(got, []string{id}) {
			t.Fatalf("%s: %v", q, got)
		}
	}
	if got := stepList(t, srv, "feedback=negative"); len(got) != 0 {
		t.Fatalf("feedback=negative: %v", got)
	}
	// As in Letta, a body without feedback clears it and keeps the tags.
	body = ok(t, srv, "PATCH", path+"/feedback", map[string]any{"tags": nil})
	if st := decodeAs[stepJSON](t, body); st.Feedback != nil || len(st.Tags) != 2 {
		t.Fatalf("cleared: %s", body)
	}
	ok(t, srv, "PATCH", path+"/feedback", map[string]any{"feedback": "negative"})
	if got := stepList(t, srv, "feedback=negative"); !slices.Equal(got, []string{id}) {
		t.Fatalf("feedback=negative: %v", got)
	}
	fails(t, srv, "PATCH", path+"/feedback", map[string]any{"feedback": "meh"}, 422, "Input should be 'positive' or 'negative'")
	fails(t, srv, "PATCH", path+"/feedback", map[string]any{"feedback": "positive", "tags": []string{" padded "}}, 422, "tag")
	fails(t, srv, "PATCH", path+"/feedback", "", 422, "Field required")
	fails(t, srv, "PATCH", path+"/feedback", "[1]", 422, "invalid JSON")
	fails(t, srv, "PATCH", "/v1/steps/step-00000000-0000-4000-8000-000000000000/feedback", map[string]any{"feedback": "positive"}, 404, "not found")
	fails(t, srv, "PATCH", "/v1/steps/nope/feedback", map[string]any{}, 422, "not a valid step ID")

	body = ok(t, srv, "GET", path+"/metrics", nil)
	conform(t, body, "StepMetrics", false)
	var m struct {
		ID                string `json:"id"`
		AgentID           string `json:"agent_id"`
		RunID             string `json:"run_id"`
		StepStartNs       int64  `json:"step_start_ns"`
		LLMRequestStartNs int64  `json:"llm_request_start_ns"`
		LLMRequestNs      *int64 `json:"llm_request_ns"`
		ToolExecutionNs   *int64 `json:"tool_execution_ns"`
		StepNs            *int64 `json:"step_ns"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID != id || m.AgentID != a.ID || m.RunID == "" || m.StepStartNs <= 0 ||
		m.LLMRequestStartNs < m.StepStartNs || m.LLMRequestNs == nil || m.StepNs == nil || m.ToolExecutionNs == nil || *m.StepNs < *m.LLMRequestNs {
		t.Fatalf("metrics = %s (%v)", body, err)
	}
	fails(t, srv, "GET", "/v1/steps/step-00000000-0000-4000-8000-000000000000/metrics", nil, 404, "not found")

	// No provider traces are kept: null, as Letta answers with tracing off.
	for _, p := range []string{path, "/v1/steps/step-00000000-0000-4000-8000-000000000000"} {
		if body := ok(t, srv, "GET", p+"/trace", nil); string(body) != "null" {
			t.Fatalf("trace of %s = %s", p, body)
		}
	}
	fails(t, srv, "GET", "/v1/steps/bogus/trace", nil, 422, "not a valid step ID")
}

// TestStepMessagesAPI checks the step's messages are the run's.
func TestStepMessagesAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "msgs")
	steps := sendText(t, srv, a.ID, "hi")
	body := ok(t, srv, "GET", "/v1/steps/"+steps[0]+"/messages", nil)
	conform(t, body, "LettaMessageUnion", true)
	if !strings.Contains(string(body), "echo: hi") {
		t.Fatalf("step messages: %s", body)
	}
}
