package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/agent"
)

// Archival memory (Letta's "passages" of an agent):
//
//	GET    /v1/agents/{agent_id}/archival-memory              list, oldest first by default
//	POST   /v1/agents/{agent_id}/archival-memory              insert (CreateArchivalMemory) -> [Passage]
//	GET    /v1/agents/{agent_id}/archival-memory/search       ranked search -> ArchivalMemorySearchResponse
//	DELETE /v1/agents/{agent_id}/archival-memory/{memory_id}  delete -> null
//
// An agent with an embedding model (its "embedding" handle, or the
// server's default: kelpie serve --embedding-model) has every passage
// embedded by that model when it is inserted, and each search query
// embedded too; search then ranks by cosine similarity over the passages
// that model embedded, and a passage's embedding and embedding_config say
// which model made its vector. A failed embedding call fails the insert or
// the search with the provider's status (llm_api_error), storing nothing.
// An agent without an embedding model stores no vectors, and search ranks
// by full-text relevance: the storage engine's full-text index when it has
// one, else BM25 over the passage text. Letta's response has no field for
// the ranking, so it is reported in the response header
// X-Kelpie-Search-Ranking: "embedding-cosine", "bm25" (or the storage
// engine's full-text ranking), or "recency" when the query has no
// searchable word (only stopwords, or empty) and the newest passages that
// pass the filters are returned.

// searchRankingHeader names the ranking a search used.
const searchRankingHeader = "X-Kelpie-Search-Ranking"

// passagesPageDefault is the page size of GET …/archival-memory (Letta's).
const passagesPageDefault = 100

// archivalRoutes registers the archival-memory endpoints.
func (h *handler) archivalRoutes() {
	h.route("GET /v1/agents/{agent_id}/archival-memory", h.listPassages)
	h.route("POST /v1/agents/{agent_id}/archival-memory", h.createPassage)
	h.route("GET /v1/agents/{agent_id}/archival-memory/search", h.searchArchival)
	h.route("DELETE /v1/agents/{agent_id}/archival-memory/{memory_id}", h.deletePassage)
}

// passageWire is Letta's Passage. Its schema forbids other fields.
type passageWire struct {
	ID              string         `json:"id"`
	Text            string         `json:"text"`
	Embedding       []float32      `json:"embedding"`
	EmbeddingConfig any            `json:"embedding_config"`
	CreatedAt       string         `json:"created_at"`
	UpdatedAt       string         `json:"updated_at"`
	Tags            []string       `json:"tags"`
	Metadata        map[string]any `json:"metadata"`
	IsDeleted       bool           `json:"is_deleted"`
	ArchiveID       *string        `json:"archive_id"`
	FileID          *string        `json:"file_id"`
}

func toPassageWire(p *agent.Passage) passageWire {
	return passageWire{
		ID: p.ID, Text: p.Text, Embedding: p.Embedding, CreatedAt: timeString(p.CreatedAt), UpdatedAt: timeString(p.CreatedAt),
		Tags: nonNilStrings(p.Tags), Metadata: map[string]any{}, EmbeddingConfig: passageEmbeddingConfig(p),
	}
}

// searchResultWire is Letta's ArchivalMemorySearchResult; timestamp is
// RFC 3339 in UTC.
type searchResultWire struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
}

// searchResponseWire is Letta's ArchivalMemorySearchResponse.
type searchResponseWire struct {
	Results []searchResultWire `json:"results"`
	Count   int                `json:"count"`
}

// queryBool parses an optional boolean query parameter the way FastAPI
// does; a malformed value answers 422.
func queryBool(w http.ResponseWriter, r *http.Request, name string, def bool) (bool, bool) {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "":
		return def, true
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	writeQueryError(w, name, fmt.Sprintf("%s must be a boolean", name))
	return false, false
}

// queryTime parses an optional datetime query parameter; a malformed
// value answers 422.
func queryTime(w http.ResponseWriter, r *http.Request, name string) (*time.Time, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil, true
	}
	t, err := agent.ParseDatetime(s)
	if err != nil {
		writeQueryError(w, name, fmt.Sprintf("%s: %v", name, err))
		return nil, false
	}
	return &t, true
}

// listPassages answers GET …/archival-memory: oldest first unless
// ascending=false, paged with after/before passage-ID cursors (in the
// listing order), filtered by search (a case-insensitive substring).
func (h *handler) listPassages(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	limit, ok := listLimit(w, r, passagesPageDefault, agent.PassagesPageMax)
	if !ok {
		return
	}
	asc, ok := queryBool(w, r, "ascending", true)
	if !ok {
		return
	}
	q := r.URL.Query()
	ps, err := h.svc.ListPassages(r.Context(), id, agent.ListPassagesRequest{
		After: q.Get("after"), Before: q.Get("before"), Limit: limit, Descending: !asc, Search: q.Get("search"),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]passageWire, 0, len(ps))
	for i := range ps {
		out = append(out, toPassageWire(&ps[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// createArchivalMemory is Letta's CreateArchivalMemory.
type createArchivalMemory struct {
	Text      *string  `json:"text"`
	Tags      []string `json:"tags"`
	CreatedAt *string  `json:"created_at"`
}

// createPassage answers POST …/archival-memory with the passages created:
// always one (Kelpie does not split text into chunks).
func (h *handler) createPassage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	var req createArchivalMemory
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Text == nil {
		writeError(w, http.StatusUnprocessableEntity, "text is required")
		return
	}
	in := agent.InsertPassageRequest{Text: *req.Text, Tags: req.Tags}
	if req.CreatedAt != nil {
		t, err := agent.ParseDatetime(*req.CreatedAt)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "created_at: "+err.Error())
			return
		}
		in.CreatedAt = &t
	}
	p, err := h.svc.InsertPassage(r.Context(), id, in)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []passageWire{toPassageWire(p)})
}

// searchArchival answers GET …/archival-memory/search. The ranking used is
// in the X-Kelpie-Search-Ranking header (see the top of this file).
func (h *handler) searchArchival(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	q := r.URL.Query()
	if !q.Has("query") {
		writeFieldError(w, []any{"query", "query"}, "query is required", "missing")
		return
	}
	req := agent.SearchRequest{Query: q.Get("query"), Tags: q["tags"], TagMatchMode: q.Get("tag_match_mode")}
	if s := q.Get("top_k"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > agent.SearchTopKMax {
			writeQueryError(w, "top_k", fmt.Sprintf("top_k must be an integer in 1..%d", agent.SearchTopKMax))
			return
		}
		req.TopK = n
	}
	if req.StartDatetime, ok = queryTime(w, r, "start_datetime"); !ok {
		return
	}
	if req.EndDatetime, ok = queryTime(w, r, "end_datetime"); !ok {
		return
	}
	resp, err := h.svc.SearchPassages(r.Context(), id, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := searchResponseWire{Results: make([]searchResultWire, 0, len(resp.Results))}
	for _, res := range resp.Results {
		out.Results = append(out.Results, searchResultWire{
			ID: res.Passage.ID, Timestamp: timeString(res.Passage.CreatedAt), Content: res.Passage.Text, Tags: nonNilStrings(res.Passage.Tags),
		})
	}
	out.Count = len(out.Results)
	w.Header().Set(searchRankingHeader, resp.Ranking)
	writeJSON(w, http.StatusOK, out)
}

// deletePassage answers DELETE …/archival-memory/{memory_id} with null,
// as Letta does.
func (h *handler) deletePassage(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	pid, ok := pathID(w, r, "memory_id", "passage")
	if !ok {
		return
	}
	if err := h.svc.DeletePassage(r.Context(), id, pid); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}
