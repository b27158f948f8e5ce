package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// The providers' answers below follow the shapes of their API references;
// the handlers check the requests the same way.

// providerServer serves one provider's API at path, checking each request
// with check, which writes the answer.
func providerServer(t *testing.T, check func(t *testing.T, r *http.Request, body map[string]any) any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Method == http.MethodPost {
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Errorf("request body: %v", err)
			}
		}
		answer := check(t, r, body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// search runs web_search with args and returns the result.
func search(t *testing.T, s *Searcher, args string, env map[string]string) toolexec.Result {
	t.Helper()
	res, err := s.Run(context.Background(), toolexec.Call{ID: "call-1", Name: NameWebSearch, Arguments: []byte(args), Env: env})
	if err != nil {
		t.Fatalf("Run(%s): %v", args, err)
	}
	return res
}

// decodeOutput decodes a successful answer.
func decodeOutput(t *testing.T, res toolexec.Result) searchOutput {
	t.Helper()
	out := wantSuccess(t, res)
	var o searchOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("the answer is not the JSON expected: %v\n%s", err, out)
	}
	return o
}

// want compares a request field.
func want(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestSearchExa(t *testing.T) {
	srv := providerServer(t, func(t *testing.T, r *http.Request, body map[string]any) any {
		want(t, "method", r.Method, http.MethodPost)
		want(t, "path", r.URL.Path, "/search")
		want(t, "x-api-key", r.Header.Get("x-api-key"), "exa-test-key")
		want(t, "query", body["query"], "large language models")
		want(t, "numResults", body["numResults"], 3.0)
		want(t, "type", body["type"], "auto")
		want(t, "category", body["category"], "research paper")
		want(t, "includeDomains", body["includeDomains"], []any{"arxiv.org", "paperswithcode.com"})
		want(t, "excludeDomains", body["excludeDomains"], []any{"example.com"})
		want(t, "startPublishedDate", body["startPublishedDate"], "2025-01-01T00:00:00.000Z")
		want(t, "endPublishedDate", body["endPublishedDate"], "2025-03-31T23:59:59.999Z")
		want(t, "userLocation", body["userLocation"], "US")
		contents, _ := body["contents"].(map[string]any)
		want(t, "contents.text", contents["text"], map[string]any{"maxCharacters": float64(textCharsMax)})
		hl, _ := contents["highlights"].(map[string]any)
		want(t, "contents.highlights.query", hl["query"], "large language models")
		return map[string]any{
			"requestId":          "b5947044c4b78efa9552a7c89b306d95",
			"resolvedSearchType": "neural",
			"results": []any{
				map[string]any{
					"id": "https://arxiv.org/abs/2303.08774", "title": "GPT-4 Technical Report", "url": "https://arxiv.org/abs/2303.08774",
					"publishedDate": "2025-02-15T00:00:00.000Z", "author": "OpenAI",
					"text": "We report the development of GPT-4...", "highlights": []any{"GPT-4 is a large multimodal model."},
					"highlightScores": []any{0.46}, "summary": "A report on a model.",
				},
				map[string]any{
					"id": "x", "title": "Survey", "url": "https://www.paperswithcode.com/survey", "publishedDate": "2025-03-01T00:00:00.000Z",
					"author": nil, "text": "Text two", "highlights": []any{"h1", "h2", "h3", "h4"},
				},
			},
			"costDollars": map[string]any{"total": 0.005},
		}
	})
	s := NewSearcher(SearchConfig{Provider: ProviderExa, ExaAPIKey: "exa-test-key", ExaBaseURL: srv.URL + "/"})
	o := decodeOutput(t, search(t, s, `{"query":"large language models","num_results":3,"category":"research paper",
		"include_text":true,"include_domains":["arxiv.org","https://www.PapersWithCode.com/"],"exclude_domains":["example.com"],
		"start_published_date":"2025-01-01","end_published_date":"2025-03-31","user_location":"us"}`, nil))
	want(t, "provider", o.Provider, ProviderExa)
	want(t, "query", o.Query, "large language models")
	want(t, "ignored", o.Ignored, []string(nil))
	if len(o.Results) != 2 {
		t.Fatalf("%d results, want 2: %+v", len(o.Results), o.Results)
	}
	want(t, "result 0", o.Results[0], hit{Title: "GPT-4 Technical Report", URL: "https://arxiv.org/abs/2303.08774",
		PublishedDate: "2025-02-15T00:00:00.000Z", Author: "OpenAI", Snippet: "A report on a model.",
		Highlights: []string{"GPT-4 is a large multimodal model."}, Text: "We report the development of GPT-4..."})
	want(t, "result 1 highlights", o.Results[1].Highlights, []string{"h1", "h2", "h3"})
}

func TestSearchTavily(t *testing.T) {
	srv := providerServer(t, func(t *testing.T, r *http.Request, body map[string]any) any {
		want(t, "method", r.Method, http.MethodPost)
		want(t, "path", r.URL.Path, "/search")
		want(t, "Authorization", r.Header.Get("Authorization"), "Bearer tvly-test")
		want(t, "query", body["query"], "election results")
		want(t, "max_results", body["max_results"], float64(tavilyResultsMax))
		want(t, "topic", body["topic"], "news")
		want(t, "include_raw_content", body["include_raw_content"], false)
		want(t, "include_domains", body["include_domains"], []any{"apnews.com"})
		want(t, "start_date", body["start_date"], "2024-11-01")
		want(t, "end_date", body["end_date"], "2024-11-30")
		if _, ok := body["api_key"]; ok {
			t.Error("the key is sent in the body; Tavily takes it in the Authorization header")
		}
		return map[string]any{
			"query": "election results", "answer": nil, "images": []any{}, "follow_up_questions": nil,
			"results": []any{
				map[string]any{"title": "Results", "url": "https://apnews.com/article/1", "content": "The count is in.",
					"score": 0.91, "raw_content": "FULL TEXT", "published_date": "Tue, 05 Nov 2024 10:00:00 GMT"},
				map[string]any{"title": "Elsewhere", "url": "https://other.example/2", "content": "Not from the domain.", "score": 0.5},
			},
			"response_time": 1.09, "request_id": "123e4567-e89b-12d3-a456-426614174111",
		}
	})
	s := NewSearcher(SearchConfig{TavilyAPIKey: "tvly-test", TavilyBaseURL: srv.URL})
	o := decodeOutput(t, search(t, s, `{"query":"election results","num_results":50,"category":"news",
		"include_domains":["apnews.com"],"start_published_date":"2024-11-01T00:00:00Z","end_published_date":"2024-11-30",
		"user_location":"US","request_heartbeat":true}`, nil))
	want(t, "provider", o.Provider, ProviderTavily)
	want(t, "ignored", o.Ignored, []string{"user_location"})
	want(t, "results", o.Results, []hit{{Title: "Results", URL: "https://apnews.com/article/1",
		PublishedDate: "Tue, 05 Nov 2024 10:00:00 GMT", Snippet: "The count is in."}})
}

func TestSearchBrave(t *testing.T) {
	srv := providerServer(t, func(t *testing.T, r *http.Request, _ map[string]any) any {
		want(t, "method", r.Method, http.MethodGet)
		want(t, "path", r.URL.Path, "/res/v1/web/search")
		want(t, "X-Subscription-Token", r.Header.Get("X-Subscription-Token"), "brave-test")
		want(t, "Accept", r.Header.Get("Accept"), "application/json")
		q := r.URL.Query()
		want(t, "q", q.Get("q"), "go generics (site:go.dev OR site:golang.org) -site:reddit.com")
		want(t, "count", q.Get("count"), "5")
		want(t, "country", q.Get("country"), "DE")
		want(t, "freshness", q.Get("freshness"), "2024-01-01to2024-12-31")
		return map[string]any{
			"type":  "search",
			"query": map[string]any{"original": q.Get("q")},
			"web": map[string]any{"type": "search", "results": []any{
				map[string]any{"title": "Tutorial: <strong>Generics</strong>", "url": "https://go.dev/doc/tutorial/generics",
					"description": "An introduction to <strong>generics</strong> in Go &amp; more.", "page_age": "2024-03-01T00:00:00", "age": "March 1, 2024", "language": "en"},
				map[string]any{"title": "Thread", "url": "https://www.reddit.com/r/golang/1", "description": "Excluded.", "age": "1 day ago"},
				map[string]any{"title": "Blog", "url": "https://blog.golang.org/intro-generics", "description": "Subdomain.", "age": "2 years ago"},
			}},
		}
	})
	s := NewSearcher(SearchConfig{Provider: ProviderBrave, BraveAPIKey: "brave-test", BraveBaseURL: srv.URL})
	o := decodeOutput(t, search(t, s, `{"query":"go generics","num_results":5,"category":"github","include_text":true,
		"include_domains":["go.dev","golang.org"],"exclude_domains":["reddit.com"],
		"start_published_date":"2024-01-01","end_published_date":"2024-12-31","user_location":"de"}`, nil))
	want(t, "ignored", o.Ignored, []string{"category", "include_text"})
	want(t, "results", o.Results, []hit{
		{Title: "Tutorial: Generics", URL: "https://go.dev/doc/tutorial/generics", PublishedDate: "2024-03-01T00:00:00",
			Snippet: "An introduction to generics in Go & more."},
		{Title: "Blog", URL: "https://blog.golang.org/intro-generics", PublishedDate: "2 years ago", Snippet: "Subdomain."},
	})
}

func TestSearchSearXNG(t *testing.T) {
	srv := providerServer(t, func(t *testing.T, r *http.Request, _ map[string]any) any {
		want(t, "method", r.Method, http.MethodGet)
		want(t, "path", r.URL.Path, "/searx/search")
		q := r.URL.Query()
		want(t, "q", q.Get("q"), "kelp forests")
		want(t, "format", q.Get("format"), "json")
		want(t, "categories", q.Get("categories"), "news")
		var results []any
		for i := range 15 {
			results = append(results, map[string]any{"url": fmt.Sprintf("https://news.example/%d", i), "title": fmt.Sprintf("Story %d", i),
				"content": "About kelp.", "publishedDate": nil, "engine": "duckduckgo", "engines": []any{"duckduckgo"},
				"score": 1.0, "category": "news"})
		}
		return map[string]any{"query": "kelp forests", "number_of_results": 0, "results": results,
			"answers": []any{}, "corrections": []any{}, "infoboxes": []any{}, "suggestions": []any{}, "unresponsive_engines": []any{}}
	})
	s := NewSearcher(SearchConfig{SearXNGURL: srv.URL + "/searx/"})
	o := decodeOutput(t, search(t, s, `{"query":"kelp forests","num_results":4,"category":"news","start_published_date":"2024-01-01"}`, nil))
	want(t, "provider", o.Provider, ProviderSearXNG)
	want(t, "ignored", o.Ignored, []string{"start_published_date"})
	if len(o.Results) != 4 {
		t.Fatalf("%d results, want 4 (num_results)", len(o.Results))
	}
	want(t, "result 3", o.Results[3], hit{Title: "Story 3", URL: "https://news.example/3", Snippet: "About kelp."})
}

// TestSearchNoProvider: without a provider the tool answers with a tool
// error naming the settings.
func TestSearchNoProvider(t *testing.T) {
	s := NewSearcher(SearchConfig{})
	wantError(t, search(t, s, `{"query":"anything"}`, nil),
		"not set up", EnvSearchProvider, EnvExaAPIKey, EnvTavilyAPIKey, EnvBraveAPIKey, EnvSearXNGURL)
	s = NewSearcher(SearchConfig{Provider: ProviderBrave})
	wantError(t, search(t, s, `{"query":"anything"}`, nil), "brave needs BRAVE_API_KEY")
	s = NewSearcher(SearchConfig{ExaAPIKey: "a", BraveAPIKey: "b"})
	wantError(t, search(t, s, `{"query":"anything"}`, nil), EnvSearchProvider, "to choose")
}

// TestSearchKeyFromCallEnv: an agent's own key replaces the server's, and
// alone chooses the provider.
func TestSearchKeyFromCallEnv(t *testing.T) {
	srv := providerServer(t, func(t *testing.T, r *http.Request, _ map[string]any) any {
		want(t, "Authorization", r.Header.Get("Authorization"), "Bearer tvly-agent")
		return map[string]any{"query": "q", "results": []any{}}
	})
	s := NewSearcher(SearchConfig{TavilyBaseURL: srv.URL})
	o := decodeOutput(t, search(t, s, `{"query":"q"}`, map[string]string{EnvTavilyAPIKey: "tvly-agent"}))
	want(t, "provider", o.Provider, ProviderTavily)
	want(t, "results", o.Results, []hit{})
}

// TestSearchProviderErrors: a provider's refusal is a tool error quoting
// it, with a hint.
func TestSearchProviderErrors(t *testing.T) {
	exa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"requestId":"x","error":"Invalid API key"}`)
	}))
	defer exa.Close()
	s := NewSearcher(SearchConfig{ExaAPIKey: "bad", ExaBaseURL: exa.URL})
	wantError(t, search(t, s, `{"query":"q"}`, nil), "exa answered 401 Unauthorized: Invalid API key", "check EXA_API_KEY")

	searx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	defer searx.Close()
	s = NewSearcher(SearchConfig{SearXNGURL: searx.URL})
	wantError(t, search(t, s, `{"query":"q"}`, nil), "searxng answered 403 Forbidden", "search.formats")

	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>a login page</html>")
	}))
	defer notJSON.Close()
	s = NewSearcher(SearchConfig{BraveAPIKey: "k", BraveBaseURL: notJSON.URL})
	wantError(t, search(t, s, `{"query":"q"}`, nil), "brave answered 200 OK", "not the JSON expected")
}

// TestSearchTimeout: a provider that does not answer ends the search at
// the bound.
func TestSearchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := NewSearcher(SearchConfig{ExaAPIKey: "k", ExaBaseURL: srv.URL, Timeout: 200 * time.Millisecond})
	start := time.Now()
	wantError(t, search(t, s, `{"query":"q"}`, nil), "exa did not answer within 200ms")
	// Only the bound ends the search; the margin is wide (not a speed check).
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the search took %v with a bound of 200ms", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	s = NewSearcher(SearchConfig{ExaAPIKey: "k", ExaBaseURL: srv.URL})
	if _, err := s.Run(ctx, toolexec.Call{Name: NameWebSearch, Arguments: []byte(`{"query":"q"}`)}); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled ctx = %v, want context.Canceled", err)
	}
}

// TestSearchOutputBound: many long results are cut to the bound, and the
// answer says how many were left out.
func TestSearchOutputBound(t *testing.T) {
	var asked float64
	srv := providerServer(t, func(t *testing.T, r *http.Request, body map[string]any) any {
		asked, _ = body["numResults"].(float64)
		var results []any
		for i := range int(asked) {
			results = append(results, map[string]any{"title": strings.Repeat("T", 1000), "url": fmt.Sprintf("https://e.example/%d", i),
				"text": strings.Repeat("word ", 1200), "highlights": []any{strings.Repeat("h", 2000)}})
		}
		return map[string]any{"results": results}
	})
	const charsMax = 20000
	s := NewSearcher(SearchConfig{ExaAPIKey: "k", ExaBaseURL: srv.URL, OutputCharsMax: charsMax})
	res := search(t, s, `{"query":"q","num_results":500,"include_text":true}`, nil)
	if n := utf8.RuneCountInString(res.Return); n > charsMax {
		t.Errorf("answer has %d characters, bound %d", n, charsMax)
	}
	o := decodeOutput(t, res)
	want(t, "numResults asked", asked, float64(numResultsMax))
	if len(o.Results) == 0 || len(o.Results) >= numResultsMax {
		t.Fatalf("%d results kept", len(o.Results))
	}
	if !strings.Contains(o.Note, fmt.Sprintf("of %d results left out", numResultsMax)) {
		t.Errorf("note %q", o.Note)
	}
	r0 := o.Results[0]
	if utf8.RuneCountInString(r0.Text) != textCharsMax || utf8.RuneCountInString(r0.Title) != titleCharsMax ||
		utf8.RuneCountInString(r0.Highlights[0]) != highlightCharsMax {
		t.Errorf("fields not cut to their bounds: text %d, title %d, highlight %d",
			utf8.RuneCountInString(r0.Text), utf8.RuneCountInString(r0.Title), utf8.RuneCountInString(r0.Highlights[0]))
	}
}

// TestSearchArguments: bad arguments are tool errors that say what is
// wrong, and the provider is not asked.
func TestSearchArguments(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the provider was asked: %s", r.URL)
	}))
	defer srv.Close()
	s := NewSearcher(SearchConfig{ExaAPIKey: "k", ExaBaseURL: srv.URL})
	tests := []struct{ args, want string }{
		{`{}`, "query argument is required"},
		{`{"query":"   "}`, "query argument is required"},
		{`{"query":5}`, `argument "query" must be a string, not number`},
		{`{"query":"q","num_results":"5"}`, `argument "num_results" must be an integer, not string`},
		{`{"query":"q","num_results":2.5}`, `argument "num_results" must be an integer, not number 2.5`},
		{`{"query":"q","include_text":"yes"}`, `argument "include_text" must be a boolean (true or false), not string`},
		{`{"query":"q","include_domains":"arxiv.org"}`, `argument "include_domains" must be an array of strings, not string`},
		{`{"query":"q","include_domains":["a b.com"]}`, `include_domains: "a b.com" is not a domain`},
		{`{"query":"q","exclude_domains":[""]}`, `exclude_domains: "" is not a domain`},
		{`{"query":"q","category":"blog"}`, `category "blog" is not one of "company", "research paper"`},
		{`{"query":"q","start_published_date":"last week"}`, `start_published_date "last week" is not an ISO 8601 date`},
		{`{"query":"q","start_published_date":"2025-02-01","end_published_date":"2025-01-01"}`, "end_published_date is before start_published_date"},
		{`{"query":"q","user_location":"USA"}`, `user_location "USA" is not a two-letter country code`},
		{`{"query":"q","max_results":3}`, `unknown argument "max_results"; its arguments are query, num_results, category`},
		{`{"query":"` + strings.Repeat("q", queryCharsMax+1) + `"}`, "longer than 2000 characters"},
	}
	for _, tt := range tests {
		res := search(t, s, tt.args, nil)
		if res.Status != toolexec.StatusError || !strings.Contains(res.Return, tt.want) {
			t.Errorf("%.80s: got %s %q, want an error mentioning %q", tt.args, res.Status, res.Return, tt.want)
		}
	}
}

// TestSearchNumResultsClamped: num_results is clamped to 1..100 as Letta
// does.
func TestSearchNumResultsClamped(t *testing.T) {
	var asked []float64
	srv := providerServer(t, func(t *testing.T, r *http.Request, body map[string]any) any {
		asked = append(asked, body["numResults"].(float64))
		return map[string]any{"results": []any{}}
	})
	s := NewSearcher(SearchConfig{ExaAPIKey: "k", ExaBaseURL: srv.URL})
	for _, n := range []string{"0", "-3", "1", "500", "null"} {
		decodeOutput(t, search(t, s, `{"query":"q","num_results":`+n+`}`, nil))
	}
	want(t, "numResults", asked, []float64{1, 1, 1, 100, numResultsDefault})
}

func TestSearchConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name     string
		getenv   func(string) string
		provider Provider // ResolvedProvider's answer; "" for none
		errPart  string   // a part of SearchConfigFromEnv's error; "" for none
	}{
		{"nothing", env(), "", ""},
		{"exa key alone", env(EnvExaAPIKey, "e"), ProviderExa, ""},
		{"tavily key alone", env(EnvTavilyAPIKey, "t"), ProviderTavily, ""},
		{"brave key alone", env(EnvBraveAPIKey, "b"), ProviderBrave, ""},
		{"searxng url alone", env(EnvSearXNGURL, "http://127.0.0.1:8888"), ProviderSearXNG, ""},
		{"chosen among several", env(EnvSearchProvider, "Brave", EnvExaAPIKey, "e", EnvBraveAPIKey, "b"), ProviderBrave, ""},
		{"several, none chosen", env(EnvExaAPIKey, "e", EnvBraveAPIKey, "b"), "", "EXA_API_KEY and BRAVE_API_KEY are all set; set KELPIE_WEB_SEARCH_PROVIDER"},
		{"unknown provider", env(EnvSearchProvider, "google"), "", `unknown web search provider "google"`},
		{"chosen without key", env(EnvSearchProvider, "tavily"), "", "tavily needs TAVILY_API_KEY"},
		{"bad searxng url", env(EnvSearXNGURL, "searxng:8080"), "", "KELPIE_SEARXNG_URL"},
	}
	for _, tt := range tests {
		cfg, err := SearchConfigFromEnv(tt.getenv)
		switch {
		case tt.errPart == "" && err != nil:
			t.Errorf("%s: error %v", tt.name, err)
		case tt.errPart != "" && (err == nil || !strings.Contains(err.Error(), tt.errPart)):
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.errPart)
		}
		p, _ := cfg.ResolvedProvider()
		if p != tt.provider {
			t.Errorf("%s: provider %q, want %q", tt.name, p, tt.provider)
		}
	}

	cfg, err := SearchConfigFromEnv(env(EnvExaAPIKey, " e ", EnvExaBaseURL, "http://127.0.0.1:1", EnvTavilyBaseURL, "http://127.0.0.1:2", EnvBraveBaseURL, "http://127.0.0.1:3"))
	if err != nil {
		t.Fatal(err)
	}
	want(t, "config", cfg, SearchConfig{ExaAPIKey: "e", ExaBaseURL: "http://127.0.0.1:1", TavilyBaseURL: "http://127.0.0.1:2", BraveBaseURL: "http://127.0.0.1:3"})
}

func TestConfigFromEnv(t *testing.T) {
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{EnvFetchAllowPrivate: "true", EnvBraveAPIKey: "b"}[k]
	})
	if err != nil || !cfg.Fetch.AllowPrivate || cfg.Search.BraveAPIKey != "b" {
		t.Errorf("ConfigFromEnv = %+v, %v", cfg, err)
	}
	cfg, err = ConfigFromEnv(func(k string) string { return map[string]string{EnvFetchAllowPrivate: "maybe"}[k] })
	if err == nil || !strings.Contains(err.Error(), EnvFetchAllowPrivate) || cfg.Fetch.AllowPrivate {
		t.Errorf("a bad %s: %+v, %v", EnvFetchAllowPrivate, cfg, err)
	}
}
