package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/service"
)

// Steps (Letta's /v1/steps): one record per model call.
//
//	GET   /v1/runs/{run_id}/steps        a run's steps, paged
//	GET   /v1/steps                      list_steps, across agents (see listSteps)
//	GET   /v1/steps/{step_id}            a step
//	GET   /v1/steps/{step_id}/messages   the messages the step logged
//	GET   /v1/steps/{step_id}/metrics    its timings (StepMetrics)
//	GET   /v1/steps/{step_id}/trace      null: no provider traces are kept
//	PATCH /v1/steps/{step_id}/feedback   rate the step
func (h *handler) stepRoutes() {
	h.route("GET /v1/runs/{run_id}/steps", h.runSteps)
	h.route("GET /v1/steps", h.listSteps)
	h.route("GET /v1/steps/{step_id}", h.getStep)
	h.route("GET /v1/steps/{step_id}/messages", h.stepMessages)
	h.route("GET /v1/steps/{step_id}/metrics", h.stepMetrics)
	h.route("GET /v1/steps/{step_id}/trace", h.stepTrace)
	h.route("PATCH /v1/steps/{step_id}/feedback", h.stepFeedback)
}

// stepWire is Letta's Step.
type stepWire struct {
	ID               string   `json:"id"`
	RunID            string   `json:"run_id"`
	AgentID          string   `json:"agent_id"`
	Model            *string  `json:"model"`
	ModelHandle      *string  `json:"model_handle"`
	ProviderName     *string  `json:"provider_name"`
	CompletionTokens int      `json:"completion_tokens"`
	PromptTokens     int      `json:"prompt_tokens"`
	TotalTokens      int      `json:"total_tokens"`
	StopReason       *string  `json:"stop_reason"`
	Status           string   `json:"status"`
	Tags             []string `json:"tags"`
	Feedback         *string  `json:"feedback"`
	TraceID          *string  `json:"trace_id"`
	ProjectID        *string  `json:"project_id"`
	Messages         []any    `json:"messages"`
	ErrorData        any      `json:"error_data"`
}

// toStepWire renders a step. As in Letta, model is the model's name and
// model_handle the handle the agent names it by.
func toStepWire(st *agent.Step) stepWire {
	w := stepWire{ID: st.ID, RunID: st.RunID, AgentID: st.AgentID, Model: optional(service.ModelName(st.Model)), ModelHandle: optional(st.Model),
		CompletionTokens: st.CompletionTokens, PromptTokens: st.PromptTokens, TotalTokens: st.TotalTokens,
		StopReason: optional(st.StopReason), Status: st.Status, Tags: nonNilStrings(st.Tags), Feedback: optional(st.Feedback), Messages: []any{}}
	if provider, _, ok := strings.Cut(st.Model, "/"); ok {
		w.ProviderName = &provider
	}
	if st.Error != "" {
		w.ErrorData = map[string]any{"message": st.Error}
	}
	return w
}

func toStepWires(steps []agent.Step) []stepWire {
	out := make([]stepWire, 0, len(steps))
	for i := range steps {
		out = append(out, toStepWire(&steps[i]))
	}
	return out
}

func (h *handler) runSteps(w http.ResponseWriter, r *http.Request) {
	run, ok := h.run(w, r)
	if !ok {
		return
	}
	steps, err := h.svc.RunSteps(r.Context(), run.AgentID, run.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, ok := pageOf(w, r, toStepWires(steps), func(s stepWire) string { return s.ID }, 100, service.ListLimitMax, false)
	if ok {
		writeJSON(w, http.StatusOK, out)
	}
}

// listSteps answers GET /v1/steps (Letta's list_steps), read from committed
// storage without activating agents (service.ListSteps):
//
//   - agent_id, model (the model's name or its handle), feedback,
//     has_feedback, tags (any of), start_date/end_date (ISO 8601, both
//     exclusive as in Letta), before/after (step IDs), limit (default 50,
//     at most service.ListLimitMax), order (default desc), order_by
//     (only created_at) filter and page the list.
//   - trace_ids and project_id are honoured as Letta honours them, by
//     equality: Kelpie records no trace ID or project on steps, so a
//     request naming any matches no step and answers [].
//   - The X-Project header is ignored, as Letta's server ignores it (its
//     cloud middleware reads it).
//
// Letta's router accepts tags but does not filter by them; Kelpie does.
// When a filter is so selective that service.StepsExaminedMax steps are
// read before the page fills, the page is returned as filled so far with
// the header X-Kelpie-Partial: true.
func (h *handler) listSteps(w http.ResponseWriter, r *http.Request) {
	limit, ok := listLimit(w, r, 50, service.ListLimitMax)
	if !ok {
		return
	}
	desc, ok := orderDescending(w, r, true)
	if !ok {
		return
	}
	if _, ok := queryLiteral(w, r, "order_by", "created_at"); !ok {
		return
	}
	feedback, ok := queryLiteral(w, r, "feedback", agent.FeedbackPositive, agent.FeedbackNegative)
	if !ok {
		return
	}
	q := r.URL.Query()
	var hasFeedback *bool
	if _, present := q["has_feedback"]; present {
		v, ok := queryBool(w, r, "has_feedback", false)
		if !ok {
			return
		}
		hasFeedback = &v
	}
	var start, end time.Time
	for _, d := range []struct {
		name string
		to   *time.Time
	}{{"start_date", &start}, {"end_date", &end}} {
		t, ok := queryTime(w, r, d.name)
		if !ok {
			return
		}
		if t != nil {
			*d.to = *t
		}
	}
	if len(q["trace_ids"]) > 0 || q.Get("project_id") != "" {
		writeJSON(w, http.StatusOK, []stepWire{})
		return
	}
	page, err := h.svc.ListSteps(r.Context(), service.StepQuery{
		AgentID: q.Get("agent_id"), After: q.Get("after"), Before: q.Get("before"), Start: start, End: end,
		Model: q.Get("model"), Feedback: feedback, HasFeedback: hasFeedback, Tags: q["tags"], Descending: desc, Limit: limit,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if page.Partial {
		w.Header().Set("X-Kelpie-Partial", "true")
	}
	writeJSON(w, http.StatusOK, toStepWires(page.Steps))
}

func (h *handler) step(w http.ResponseWriter, r *http.Request) (*agent.Step, bool) {
	id, ok := pathID(w, r, "step_id", "step")
	if !ok {
		return nil, false
	}
	st, err := h.svc.GetStep(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return st, true
}

func (h *handler) getStep(w http.ResponseWriter, r *http.Request) {
	if st, ok := h.step(w, r); ok {
		writeJSON(w, http.StatusOK, toStepWire(st))
	}
}

func (h *handler) stepMessages(w http.ResponseWriter, r *http.Request) {
	st, ok := h.step(w, r)
	if !ok {
		return
	}
	msgs, err := h.svc.StepMessages(r.Context(), st)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toLettaMessages(msgs))
}

// stepMetricsWire is Letta's StepMetrics.
type stepMetricsWire struct {
	ID                string  `json:"id"`
	ProviderID        *string `json:"provider_id"`
	RunID             string  `json:"run_id"`
	AgentID           string  `json:"agent_id"`
	StepStartNs       int64   `json:"step_start_ns"`
	LLMRequestStartNs int64   `json:"llm_request_start_ns"`
	LLMRequestNs      *int64  `json:"llm_request_ns"`
	ToolExecutionNs   *int64  `json:"tool_execution_ns"`
	StepNs            *int64  `json:"step_ns"`
	BaseTemplateID    *string `json:"base_template_id"`
	TemplateID        *string `json:"template_id"`
	ProjectID         *string `json:"project_id"`
}

// stepMetrics answers GET /v1/steps/{step_id}/metrics: the timings the run
// driver measured (start of the step and of its model request, the model
// request's duration, the time its tool calls took, the whole step). A
// step recorded without them answers 404, as Letta answers for a step
// with no metrics row.
func (h *handler) stepMetrics(w http.ResponseWriter, r *http.Request) {
	st, ok := h.step(w, r)
	if !ok {
		return
	}
	m := st.Metrics
	if m == nil {
		writeError(w, http.StatusNotFound, "Step metrics not found")
		return
	}
	writeJSON(w, http.StatusOK, stepMetricsWire{ID: st.ID, RunID: st.RunID, AgentID: st.AgentID,
		StepStartNs: m.StepStartNs, LLMRequestStartNs: m.LLMRequestStartNs, LLMRequestNs: m.LLMRequestNs,
		ToolExecutionNs: m.ToolExecutionNs, StepNs: m.StepNs})
}

// stepTrace answers GET /v1/steps/{step_id}/trace with null: Kelpie keeps
// no provider traces, and Letta answers null whenever provider tracing is
// off, without looking the step up.
func (h *handler) stepTrace(w http.ResponseWriter, r *http.Request) {
	if _, ok := pathID(w, r, "step_id", "step"); ok {
		writeJSON(w, http.StatusOK, nil)
	}
}

// stepFeedback answers PATCH /v1/steps/{step_id}/feedback (Letta's
// ModifyFeedbackRequest): feedback replaces the step's feedback — null or
// absent clears it — and tags, when not empty, replace its tags. The body
// is required.
func (h *handler) stepFeedback(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "step_id", "step")
	if !ok {
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, requestBytesMax))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", requestBytesMax))
		} else {
			writeError(w, http.StatusBadRequest, "could not read request body: "+err.Error())
		}
		return
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		writeFieldError(w, []any{"body"}, "Field required", "missing")
		return
	}
	var body struct {
		Feedback *string  `json:"feedback"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
		return
	}
	req := agent.StepFeedbackRequest{StepID: id, Tags: body.Tags}
	if body.Feedback != nil {
		if *body.Feedback != agent.FeedbackPositive && *body.Feedback != agent.FeedbackNegative {
			writeFieldError(w, []any{"body", "feedback"}, literalMsg([]string{agent.FeedbackPositive, agent.FeedbackNegative}), "enum")
			return
		}
		req.Feedback = *body.Feedback
	}
	st, err := h.svc.SetStepFeedback(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toStepWire(st))
}
