package api

import (
	"net/http"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/service"
)

// runRoutes registers the run endpoints: asynchronous sends, cancellation,
// and run lookups.
func (h *handler) runRoutes() {
	h.route("POST /v1/agents/{agent_id}/messages/async", h.sendAsync)
	h.route("POST /v1/agents/{agent_id}/messages/cancel", h.cancelRun)
	h.route("POST /v1/agents/{agent_id}/messages/stream", h.streamMessage)
	h.route("PATCH /v1/agents/{agent_id}/tools/approval/{tool_name}", h.setToolApproval)
	h.route("GET /v1/runs", h.listRuns)
	h.route("GET /v1/runs/{run_id}", h.getRun)
	h.route("GET /v1/runs/{run_id}/messages", h.runMessages)
	h.route("GET /v1/runs/{run_id}/usage", h.runUsage)
	h.stepRoutes()
}

// runWire is Letta's Run.
type runWire struct {
	ID             string         `json:"id"`
	AgentID        string         `json:"agent_id"`
	ConversationID *string        `json:"conversation_id"`
	Status         string         `json:"status"`
	CreatedAt      string         `json:"created_at"`
	CompletedAt    *string        `json:"completed_at"`
	Background     bool           `json:"background"`
	StopReason     *string        `json:"stop_reason"`
	Metadata       map[string]any `json:"metadata"`
	RequestConfig  any            `json:"request_config"`
}

func toRunWire(r *agent.Run) runWire {
	w := runWire{ID: r.ID, AgentID: r.AgentID, ConversationID: optional(r.ConversationID), Status: r.Status, CreatedAt: timeString(r.CreatedAt),
		Background: r.Background, StopReason: optional(r.StopReason), Metadata: map[string]any{}}
	if r.CompletedAt != nil {
		w.CompletedAt = ptr(timeString(*r.CompletedAt))
	}
	if r.Error != "" {
		w.Metadata["error"] = r.Error
	}
	return w
}

// sendAsync answers POST …/messages/async: start a run and return it.
func (h *handler) sendAsync(w http.ResponseWriter, r *http.Request) {
	id, send, ok := h.sendRequest(w, r)
	if !ok {
		return
	}
	send.Background = true
	res, err := h.svc.StartRun(r.Context(), id, send)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toRunWire(&res.Run))
}

// cancelRun answers POST …/messages/cancel: cancel the agent's active run
// (if run_ids is given, only when it is one of them).
func (h *handler) cancelRun(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req struct {
		RunIDs []string `json:"run_ids"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	out := map[string]any{}
	targets := req.RunIDs
	if len(targets) == 0 {
		targets = []string{""}
	}
	for _, runID := range targets {
		run, err := h.svc.CancelRun(r.Context(), id, runID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if run != nil {
			out[run.ID] = "cancelled"
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// listRuns answers GET /v1/runs: newest first by default, filtered
// (agent_id/agent_ids, statuses, active, background, stop_reason,
// conversation_id) and paged (order or the deprecated ascending, after,
// before, limit) from the runs indexes, every run reachable. When a filter
// is so selective that service.RunsExaminedMax index entries are read
// before the page fills, the page is returned as filled so far with the
// header X-Kelpie-Partial: true.
func (h *handler) listRuns(w http.ResponseWriter, r *http.Request) {
	limit, ok := listLimit(w, r, 100, service.ListLimitMax)
	if !ok {
		return
	}
	q := r.URL.Query()
	desc := true
	if !q.Has("order") && q.Has("ascending") {
		asc, ok := queryBool(w, r, "ascending", false)
		if !ok {
			return
		}
		desc = !asc
	} else if desc, ok = orderDescending(w, r, true); !ok {
		return
	}
	if _, ok := queryLiteral(w, r, "order_by", "created_at"); !ok {
		return
	}
	active, ok := queryBool(w, r, "active", false)
	if !ok {
		return
	}
	query := service.RunQuery{
		AgentIDs: append(q["agent_ids"], q["agent_id"]...), After: q.Get("after"), Before: q.Get("before"),
		Statuses: q["statuses"], Active: active, StopReason: q.Get("stop_reason"), Descending: desc, Limit: limit,
	}
	if q.Get("background") != "" {
		b, ok := queryBool(w, r, "background", false)
		if !ok {
			return
		}
		query.Background = &b
	}
	if q.Has("conversation_id") {
		c := q.Get("conversation_id")
		if c == agent.ConversationDefault {
			c = ""
		}
		query.ConversationID = &c
	}
	page, err := h.svc.ListRuns(r.Context(), query)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if page.Partial {
		w.Header().Set("X-Kelpie-Partial", "true")
	}
	out := make([]runWire, 0, len(page.Runs))
	for _, run := range page.Runs {
		out = append(out, toRunWire(run))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) (*agent.Run, bool) {
	runID, ok := pathID(w, r, "run_id", "run")
	if !ok {
		return nil, false
	}
	run, err := h.svc.GetRun(r.Context(), runID)
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	return run, true
}

func (h *handler) getRun(w http.ResponseWriter, r *http.Request) {
	if run, ok := h.run(w, r); ok {
		writeJSON(w, http.StatusOK, toRunWire(run))
	}
}

func (h *handler) runMessages(w http.ResponseWriter, r *http.Request) {
	run, ok := h.run(w, r)
	if !ok {
		return
	}
	msgs, err := h.svc.RunMessages(r.Context(), run.AgentID, run.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, ok := pageOf(w, r, toLettaMessages(msgs), func(m lettaMessage) string { return m.ID }, messagesPageDefault, agent.MessagesPageMax, true)
	if ok {
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *handler) runUsage(w http.ResponseWriter, r *http.Request) {
	run, ok := h.run(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"completion_tokens": run.Usage.CompletionTokens, "prompt_tokens": run.Usage.PromptTokens,
		"total_tokens": run.Usage.TotalTokens,
	})
}
