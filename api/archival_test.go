package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

type passageJSON struct {
	ID        string   `json:"id"`
	Text      string   `json:"text"`
	Tags      []string `json:"tags"`
	CreatedAt string   `json:"created_at"`
}

type searchJSON struct {
	Results []struct {
		ID        string   `json:"id"`
		Timestamp string   `json:"timestamp"`
		Content   string   `json:"content"`
		Tags      []string `json:"tags"`
	} `json:"results"`
	Count int `json:"count"`
}

func insertPassage(t *testing.T, srv *httptest.Server, agentID string, body map[string]any) passageJSON {
	t.Helper()
	out := ok(t, srv, "POST", "/v1/agents/"+agentID+"/archival-memory", body)
	conform(t, out, "Passage", true)
	ps := decodeAs[[]passageJSON](t, out)
	if len(ps) != 1 {
		t.Fatalf("POST archival-memory returned %d passages", len(ps))
	}
	return ps[0]
}

// searchArchival runs a search and returns its body (validated against
// ArchivalMemorySearchResponse) and ranking header.
func searchArchival(t *testing.T, srv *httptest.Server, agentID string, params url.Values) (searchJSON, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + "/v1/agents/" + agentID + "/archival-memory/search?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search %v = %d %s", params, resp.StatusCode, body)
	}
	conform(t, body, "ArchivalMemorySearchResponse", false)
	return decodeAs[searchJSON](t, body), resp.Header.Get("X-Kelpie-Search-Ranking")
}

func TestArchivalMemoryAPI(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "librarian")
	base := "/v1/agents/" + a.ID + "/archival-memory"
	texts := []string{
		"The user's favourite colour is teal.",
		"The user is allergic to peanuts and shellfish.",
		"The user's dog Biscuit is a beagle; Biscuit loves the beach.",
		"Quarterly planning happens in the first week of April.",
	}
	tags := [][]string{{"prefs"}, {"health", "prefs"}, {"pets"}, nil}
	var ids []string
	for i, text := range texts {
		p := insertPassage(t, srv, a.ID, map[string]any{"text": text, "tags": tags[i]})
		if p.Text != text || !strings.HasPrefix(p.ID, "passage-") {
			t.Fatalf("inserted %+v", p)
		}
		ids = append(ids, p.ID)
	}
	backdated := insertPassage(t, srv, a.ID, map[string]any{"text": "An old memory about teal boats.", "created_at": "2020-05-01T10:00:00Z"})
	if !strings.HasPrefix(backdated.CreatedAt, "2020-05-01T10:00:00") {
		t.Fatalf("backdated created_at = %s", backdated.CreatedAt)
	}

	list := func(query string) []string {
		t.Helper()
		body := ok(t, srv, "GET", base+query, nil)
		conform(t, body, "Passage", true)
		var out []string
		for _, p := range decodeAs[[]passageJSON](t, body) {
			out = append(out, p.ID)
		}
		return out
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	eq(list(""), backdated.ID, ids[0], ids[1], ids[2], ids[3]) // oldest first by default
	eq(list("/"), backdated.ID, ids[0], ids[1], ids[2], ids[3])
	eq(list("?ascending=false&limit=2"), ids[3], ids[2])
	eq(list("?ascending=false&after="+ids[2]), ids[1], ids[0], backdated.ID)
	eq(list("?limit=2&after="+ids[0]), ids[1], ids[2])
	eq(list("?before="+ids[1]), backdated.ID, ids[0])
	eq(list("?search=USER%27S"), ids[0], ids[2])

	// Search ranks by BM25 and says so.
	res, ranking := searchArchival(t, srv, a.ID, url.Values{"query": {"what breed is my dog?"}})
	if ranking != "bm25" || res.Count != 1 || len(res.Results) != 1 || res.Results[0].ID != ids[2] || !strings.Contains(res.Results[0].Content, "beagle") {
		t.Fatalf("search = %+v (%s)", res, ranking)
	}
	// Both mention teal once; the shorter passage ranks first.
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"teal"}})
	if res.Count != 2 || res.Results[0].ID != backdated.ID || res.Results[1].ID != ids[0] {
		t.Fatalf("teal search = %+v", res)
	}
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"user"}, "tags": {"prefs", "pets"}, "top_k": {"2"}})
	// Three passages match the tags and mention "user" once; the two
	// shortest rank first.
	if res.Count != 2 || res.Results[0].ID != ids[1] || res.Results[1].ID != ids[0] {
		t.Fatalf("tagged search = %+v", res)
	}
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"user"}, "tags": {"prefs", "health"}, "tag_match_mode": {"all"}})
	if res.Count != 1 || res.Results[0].ID != ids[1] || len(res.Results[0].Tags) != 2 {
		t.Fatalf("all-tags search = %+v", res)
	}
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"teal"}, "end_datetime": {"2021-01-01"}})
	if res.Count != 1 || res.Results[0].ID != backdated.ID {
		t.Fatalf("dated search = %+v", res)
	}
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"teal"}, "start_datetime": {"2021-01-01T00:00:00Z"}})
	if res.Count != 1 || res.Results[0].ID != ids[0] {
		t.Fatalf("dated search = %+v", res)
	}
	res, ranking = searchArchival(t, srv, a.ID, url.Values{"query": {""}, "top_k": {"1"}})
	if ranking != "recency" || res.Count != 1 || res.Results[0].ID != ids[3] {
		t.Fatalf("empty query = %+v (%s)", res, ranking)
	}
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"zeppelin"}})
	if res.Count != 0 || res.Results == nil {
		t.Fatalf("no-hit search = %+v", res)
	}

	// Delete.
	body := ok(t, srv, "DELETE", base+"/"+ids[2], nil)
	if strings.TrimSpace(string(body)) != "null" {
		t.Fatalf("DELETE body %s", body)
	}
	fails(t, srv, "DELETE", base+"/"+ids[2], nil, 404, "not found")
	res, _ = searchArchival(t, srv, a.ID, url.Values{"query": {"dog beagle"}})
	if res.Count != 0 {
		t.Fatalf("deleted passage found: %+v", res)
	}
	eq(list(""), backdated.ID, ids[0], ids[1], ids[3])
}

func TestArchivalMemoryAPIErrors(t *testing.T) {
	srv := server(t, llmtest.Echo())
	a := createAgent(t, srv, "strict")
	base := "/v1/agents/" + a.ID + "/archival-memory"
	missing := "/v1/agents/agent-00000000-0000-4000-8000-000000000000/archival-memory"
	absentPassage := "passage-00000000-0000-4000-8000-000000000000"

	// Malformed IDs: 422.
	fails(t, srv, "GET", "/v1/agents/nope/archival-memory", nil, 422, "not a valid agent ID")
	fails(t, srv, "POST", "/v1/agents/nope/archival-memory", map[string]any{"text": "x"}, 422, "not a valid agent ID")
	fails(t, srv, "GET", "/v1/agents/nope/archival-memory/search?query=x", nil, 422, "not a valid agent ID")
	fails(t, srv, "DELETE", base+"/not-a-passage", nil, 422, "not a valid passage ID")
	fails(t, srv, "DELETE", base+"/message-00000000-0000-4000-8000-000000000000", nil, 422, "not a valid passage ID")

	// Unknown agent or passage: 404.
	fails(t, srv, "GET", missing, nil, 404, "not found")
	fails(t, srv, "POST", missing, map[string]any{"text": "x"}, 404, "not found")
	fails(t, srv, "GET", missing+"/search?query=x", nil, 404, "not found")
	fails(t, srv, "DELETE", missing+"/"+absentPassage, nil, 404, "not found")
	fails(t, srv, "DELETE", base+"/"+absentPassage, nil, 404, "not found")
	fails(t, srv, "GET", base+"?after="+absentPassage, nil, 404, "not found")

	// Bad requests: 422.
	fails(t, srv, "POST", base, map[string]any{}, 422, "text is required")
	fails(t, srv, "POST", base, map[string]any{"text": ""}, 422, "empty")
	fails(t, srv, "POST", base, map[string]any{"text": strings.Repeat("x", 64<<10+1)}, 422, "over the limit")
	fails(t, srv, "POST", base, map[string]any{"text": "x", "created_at": "last week"}, 422, "created_at")
	fails(t, srv, "POST", base, map[string]any{"text": "x", "tags": []string{""}}, 422, "tag")
	fails(t, srv, "POST", base, "{not json", 422, "invalid JSON")
	fails(t, srv, "GET", base+"?limit=0", nil, 422, "limit")
	fails(t, srv, "GET", base+"?ascending=maybe", nil, 422, "ascending")
	fails(t, srv, "GET", base+"/search", nil, 422, "query is required")
	fails(t, srv, "GET", base+"/search?query=x&top_k=0", nil, 422, "top_k")
	fails(t, srv, "GET", base+"/search?query=x&top_k=many", nil, 422, "top_k")
	fails(t, srv, "GET", base+"/search?query=x&tag_match_mode=some", nil, 422, "tag_match_mode")
	fails(t, srv, "GET", base+"/search?query=x&start_datetime=soon", nil, 422, "start_datetime")
	fails(t, srv, "GET", base+"/search?query=x&start_datetime=2025-02-01&end_datetime=2025-01-01", nil, 422, "before")

	// Wrong methods: 405.
	fails(t, srv, "PUT", base, nil, 405, "Method Not Allowed")
	fails(t, srv, "GET", base+"/"+absentPassage, nil, 405, "Method Not Allowed")

	// An agent's passages go with it.
	insertPassage(t, srv, a.ID, map[string]any{"text": "ephemeral"})
	ok(t, srv, "DELETE", "/v1/agents/"+a.ID, nil)
	fails(t, srv, "GET", base, nil, 404, "not found")
}

// TestArchivalSchemasBite shows the archival schemas reject wrong shapes:
// in particular Passage forbids extra fields, which is why the ranking is
// a header and scores are not in the body.
func TestArchivalSchemasBite(t *testing.T) {
	for ref, bad := range map[string]string{
		"Passage":                      `{"id": "passage-0123abcd", "text": "x", "embedding": null, "embedding_config": null, "score": 1.5}`,
		"ArchivalMemorySearchResponse": `{"results": []}`,
		"ArchivalMemorySearchResult":   `{"id": "passage-1", "content": "x"}`,
	} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		if schema(t, ref).Validate(inst) == nil {
			t.Errorf("%s accepted %s", ref, bad)
		}
	}
}
