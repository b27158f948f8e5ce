package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
)

// Search across agents:
//
//	POST /v1/passages/search  PassageSearchRequest -> [PassageSearchResult]
//
// With agent_id it is that agent's archival search; without, every agent's
// passages are searched (service.SearchAllPassages). Kelpie has no
// archives, so an archive_id alone names nothing: 404. Each result's
// metadata carries "agent_id" and "ranking" (as X-Kelpie-Search-Ranking
// does for the per-agent search: the storage engine's full-text ranking,
// "bm25", "embedding-cosine" or "recency"), and "partial": true when the
// search stopped at agent.StoredPassagesMax passages.

// passagesSearchLimitDefault and passagesSearchLimitMax bound results
// (Letta's default and maximum).
const (
	passagesSearchLimitDefault = 50
	passagesSearchLimitMax     = 100
)

// passageSearchRequest is Letta's PassageSearchRequest.
type passageSearchRequest struct {
	Query        *string  `json:"query"`
	AgentID      *string  `json:"agent_id"`
	ArchiveID    *string  `json:"archive_id"`
	Tags         []string `json:"tags"`
	TagMatchMode *string  `json:"tag_match_mode"`
	Limit        *int     `json:"limit"`
	StartDate    *string  `json:"start_date"`
	EndDate      *string  `json:"end_date"`
}

// passageSearchResultWire is Letta's PassageSearchResult.
type passageSearchResultWire struct {
	Passage  passageWire    `json:"passage"`
	Score    float64        `json:"score"`
	Metadata map[string]any `json:"metadata"`
}

func (h *handler) passagesRoutes() {
	h.route("POST /v1/passages/search", h.searchAllPassages)
}

// searchAllPassages answers POST /v1/passages/search.
func (h *handler) searchAllPassages(w http.ResponseWriter, r *http.Request) {
	var req passageSearchRequest
	if !decodeBody(w, r, &req) {
		return
	}
	in := agent.SearchRequest{Tags: req.Tags, TopK: passagesSearchLimitDefault}
	if req.Query != nil {
		in.Query = *req.Query
	}
	if req.TagMatchMode != nil {
		if m := *req.TagMatchMode; m != agent.TagMatchAny && m != agent.TagMatchAll {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("tag_match_mode must be %q or %q", agent.TagMatchAny, agent.TagMatchAll))
			return
		}
		in.TagMatchMode = *req.TagMatchMode
	}
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > passagesSearchLimitMax {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("limit must be an integer in 1..%d", passagesSearchLimitMax))
			return
		}
		in.TopK = *req.Limit
	}
	for _, d := range []struct {
		name string
		src  *string
		dst  **time.Time
	}{{"start_date", req.StartDate, &in.StartDatetime}, {"end_date", req.EndDate, &in.EndDatetime}} {
		if d.src == nil {
			continue
		}
		t, err := agent.ParseDatetime(*d.src)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("%s: %v", d.name, err))
			return
		}
		*d.dst = &t
	}
	agentID := ""
	if req.AgentID != nil {
		agentID = *req.AgentID
		if !validID(agentID, "agent") {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("agent_id %q is not an agent ID (agent-<uuid4>)", agentID))
			return
		}
	} else if req.ArchiveID != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("archive %s not found: Kelpie has no archives; search an agent's passages with agent_id", *req.ArchiveID))
		return
	}
	resp, err := h.svc.SearchAllPassages(r.Context(), agentID, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]passageSearchResultWire, 0, len(resp.Results))
	for i := range resp.Results {
		res := &resp.Results[i]
		meta := map[string]any{"agent_id": res.AgentID, "ranking": resp.Ranking}
		if resp.Partial {
			meta["partial"] = true
		}
		out = append(out, passageSearchResultWire{Passage: toPassageWire(&res.Passage), Score: res.Score, Metadata: meta})
	}
	w.Header().Set(searchRankingHeader, resp.Ranking)
	writeJSON(w, http.StatusOK, out)
}
