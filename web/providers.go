package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Each provider turns a query into its API's request, and its answer into
// hits. The request shapes follow the providers' public API references:
//
//	Exa      POST {base}/search, header x-api-key, JSON body (camelCase)
//	Tavily   POST {base}/search, header Authorization: Bearer KEY, JSON body
//	Brave    GET  {base}/res/v1/web/search?q=…, header X-Subscription-Token
//	SearXNG  GET  {base}/search?q=…&format=json
//
// A provider returns the names of the arguments it cannot apply, so the
// model knows which filters did not take.

// Per-provider result bounds: the most results one request asks for.
const (
	tavilyResultsMax = 20
	braveResultsMax  = 20
)

// baseURL is an override or the default, without a trailing slash.
func baseURL(override, def string) string {
	if override == "" {
		override = def
	}
	return strings.TrimRight(override, "/")
}

// postJSON builds a JSON POST.
func postJSON(ctx context.Context, endpoint string, body any) (*http.Request, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// exaRequest is the body of Exa's /search.
type exaRequest struct {
	Query              string      `json:"query"`
	Type               string      `json:"type"`
	NumResults         int         `json:"numResults"`
	Category           string      `json:"category,omitempty"`
	IncludeDomains     []string    `json:"includeDomains,omitempty"`
	ExcludeDomains     []string    `json:"excludeDomains,omitempty"`
	StartPublishedDate string      `json:"startPublishedDate,omitempty"`
	EndPublishedDate   string      `json:"endPublishedDate,omitempty"`
	UserLocation       string      `json:"userLocation,omitempty"`
	Contents           exaContents `json:"contents"`
}

type exaContents struct {
	Text       *exaText       `json:"text,omitempty"`
	Highlights *exaHighlights `json:"highlights,omitempty"`
}

type exaText struct {
	MaxCharacters int `json:"maxCharacters"`
}

type exaHighlights struct {
	Query            string `json:"query"`
	NumSentences     int    `json:"numSentences"`
	HighlightsPerURL int    `json:"highlightsPerUrl"`
}

// exaResponse is the part of Exa's answer web_search reads.
type exaResponse struct {
	Results []struct {
		Title         string   `json:"title"`
		URL           string   `json:"url"`
		PublishedDate string   `json:"publishedDate"`
		Author        string   `json:"author"`
		Text          string   `json:"text"`
		Highlights    []string `json:"highlights"`
		Summary       string   `json:"summary"`
	} `json:"results"`
}

// exaTime formats a date bound as Exa's ISO 8601 timestamps.
func exaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// exa searches with Exa, which applies every argument.
func (s *Searcher) exa(ctx context.Context, cfg SearchConfig, q query) ([]hit, []string, error) {
	body := exaRequest{
		Query:          q.text,
		Type:           "auto",
		NumResults:     q.num,
		Category:       q.category,
		IncludeDomains: q.includeDomains,
		ExcludeDomains: q.excludeDomains,
		UserLocation:   q.location,
		Contents: exaContents{
			Highlights: &exaHighlights{Query: q.text, NumSentences: 2, HighlightsPerURL: highlightsMax},
		},
	}
	if q.includeText {
		body.Contents.Text = &exaText{MaxCharacters: textCharsMax}
	}
	if !q.start.IsZero() {
		body.StartPublishedDate = exaTime(q.start)
	}
	if !q.end.IsZero() {
		body.EndPublishedDate = exaTime(endOf(q))
	}
	req, err := postJSON(ctx, baseURL(cfg.ExaBaseURL, DefaultExaBaseURL)+"/search", body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("x-api-key", cfg.ExaAPIKey)
	var resp exaResponse
	if err := s.do(req, ProviderExa, &resp); err != nil {
		return nil, nil, err
	}
	hits := make([]hit, 0, len(resp.Results))
	for _, r := range resp.Results {
		hits = append(hits, hit{Title: r.Title, URL: r.URL, PublishedDate: r.PublishedDate, Author: r.Author,
			Snippet: r.Summary, Highlights: r.Highlights, Text: r.Text})
	}
	return hits, nil, nil
}

// endOf is the end bound: a date without a time covers its whole day.
func endOf(q query) time.Time {
	if q.endDay {
		return q.end.Add(24*time.Hour - time.Millisecond)
	}
	return q.end
}

// tavilyRequest is the body of Tavily's /search.
type tavilyRequest struct {
	Query             string   `json:"query"`
	MaxResults        int      `json:"max_results"`
	Topic             string   `json:"topic"`
	SearchDepth       string   `json:"search_depth"`
	IncludeAnswer     bool     `json:"include_answer"`
	IncludeRawContent bool     `json:"include_raw_content"`
	IncludeDomains    []string `json:"include_domains,omitempty"`
	ExcludeDomains    []string `json:"exclude_domains,omitempty"`
	StartDate         string   `json:"start_date,omitempty"`
	EndDate           string   `json:"end_date,omitempty"`
}

// tavilyResponse is the part of Tavily's answer web_search reads.
type tavilyResponse struct {
	Results []struct {
		Title         string `json:"title"`
		URL           string `json:"url"`
		Content       string `json:"content"`
		RawContent    string `json:"raw_content"`
		PublishedDate string `json:"published_date"`
	} `json:"results"`
}

// tavily searches with Tavily. Its topics stand in for the news and
// financial report categories; it has no other categories, and its
// country boost takes country names, not codes, so user_location is not
// applied.
func (s *Searcher) tavily(ctx context.Context, cfg SearchConfig, q query) ([]hit, []string, error) {
	var ignored []string
	body := tavilyRequest{
		Query:             q.text,
		MaxResults:        min(q.num, tavilyResultsMax),
		Topic:             "general",
		SearchDepth:       "basic",
		IncludeRawContent: q.includeText,
		IncludeDomains:    q.includeDomains,
		ExcludeDomains:    q.excludeDomains,
	}
	switch q.category {
	case "":
	case "news":
		body.Topic = "news"
	case "financial report":
		body.Topic = "finance"
	default:
		ignored = append(ignored, "category")
	}
	if !q.start.IsZero() {
		body.StartDate = q.start.Format(time.DateOnly)
	}
	if !q.end.IsZero() {
		body.EndDate = q.end.Format(time.DateOnly)
	}
	if q.location != "" {
		ignored = append(ignored, "user_location")
	}
	req, err := postJSON(ctx, baseURL(cfg.TavilyBaseURL, DefaultTavilyBaseURL)+"/search", body)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.TavilyAPIKey)
	var resp tavilyResponse
	if err := s.do(req, ProviderTavily, &resp); err != nil {
		return nil, nil, err
	}
	hits := make([]hit, 0, len(resp.Results))
	for _, r := range resp.Results {
		hits = append(hits, hit{Title: r.Title, URL: r.URL, PublishedDate: r.PublishedDate, Snippet: r.Content, Text: r.RawContent})
	}
	return hits, ignored, nil
}

// braveResponse is the part of Brave's answer web_search reads.
type braveResponse struct {
	Web struct {
		Results []struct {
			Title       string `json:"title"`
			URL         string `json:"url"`
			Description string `json:"description"`
			PageAge     string `json:"page_age"`
			Age         string `json:"age"`
		} `json:"results"`
	} `json:"web"`
}

// braveEarliest stands in for a missing start of a Brave date range.
const braveEarliest = "1990-01-01"

// brave searches with Brave. Domains go into the query as site:
// operators (and are enforced on the results); dates become a freshness
// range. Brave has no categories and returns no page text.
func (s *Searcher) brave(ctx context.Context, cfg SearchConfig, q query) ([]hit, []string, error) {
	var ignored []string
	if q.category != "" {
		ignored = append(ignored, "category")
	}
	if q.includeText {
		ignored = append(ignored, "include_text")
	}
	params := url.Values{}
	params.Set("q", withSiteOperators(q))
	params.Set("count", strconv.Itoa(min(q.num, braveResultsMax)))
	if q.location != "" {
		params.Set("country", q.location)
	}
	if !q.start.IsZero() || !q.end.IsZero() {
		from, to := braveEarliest, time.Now().UTC().Format(time.DateOnly)
		if !q.start.IsZero() {
			from = q.start.Format(time.DateOnly)
		}
		if !q.end.IsZero() {
			to = q.end.Format(time.DateOnly)
		}
		params.Set("freshness", from+"to"+to)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		baseURL(cfg.BraveBaseURL, DefaultBraveBaseURL)+"/res/v1/web/search?"+params.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-Subscription-Token", cfg.BraveAPIKey)
	var resp braveResponse
	if err := s.do(req, ProviderBrave, &resp); err != nil {
		return nil, nil, err
	}
	hits := make([]hit, 0, len(resp.Web.Results))
	for _, r := range resp.Web.Results {
		date := r.PageAge
		if date == "" {
			date = r.Age
		}
		hits = append(hits, hit{Title: stripTags(r.Title), URL: r.URL, PublishedDate: date, Snippet: stripTags(r.Description)})
	}
	return hits, ignored, nil
}

// searxngResponse is the part of SearXNG's answer web_search reads.
type searxngResponse struct {
	Results []struct {
		Title         string `json:"title"`
		URL           string `json:"url"`
		Content       string `json:"content"`
		PublishedDate string `json:"publishedDate"`
	} `json:"results"`
}

// searxng searches a SearXNG instance. Domains go into the query as site:
// operators (and are enforced on the results); news and research papers
// map to its news and science categories. It returns one page of results
// (about 10 to 20) and cannot apply dates, text or a location.
func (s *Searcher) searxng(ctx context.Context, cfg SearchConfig, q query) ([]hit, []string, error) {
	var ignored []string
	params := url.Values{}
	params.Set("q", withSiteOperators(q))
	params.Set("format", "json")
	switch q.category {
	case "":
	case "news":
		params.Set("categories", "news")
	case "research paper":
		params.Set("categories", "science")
	default:
		ignored = append(ignored, "category")
	}
	if q.includeText {
		ignored = append(ignored, "include_text")
	}
	if !q.start.IsZero() {
		ignored = append(ignored, "start_published_date")
	}
	if !q.end.IsZero() {
		ignored = append(ignored, "end_published_date")
	}
	if q.location != "" {
		ignored = append(ignored, "user_location")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.SearXNGURL, "/")+"/search?"+params.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	var resp searxngResponse
	if err := s.do(req, ProviderSearXNG, &resp); err != nil {
		return nil, nil, err
	}
	hits := make([]hit, 0, len(resp.Results))
	for _, r := range resp.Results {
		hits = append(hits, hit{Title: r.Title, URL: r.URL, PublishedDate: r.PublishedDate, Snippet: r.Content})
	}
	return hits, ignored, nil
}

// withSiteOperators adds site: operators for the domain lists to the
// query, for engines that take them.
func withSiteOperators(q query) string {
	var b strings.Builder
	b.WriteString(q.text)
	switch len(q.includeDomains) {
	case 0:
	case 1:
		b.WriteString(" site:" + q.includeDomains[0])
	default:
		b.WriteString(" (site:" + strings.Join(q.includeDomains, " OR site:") + ")")
	}
	for _, d := range q.excludeDomains {
		b.WriteString(" -site:" + d)
	}
	return b.String()
}

// tagPattern matches the markup Brave puts in titles and descriptions
// (<strong> around the query's words).
var tagPattern = regexp.MustCompile(`<[^>]*>`)

// stripTags removes markup and decodes entities.
func stripTags(s string) string { return html.UnescapeString(tagPattern.ReplaceAllString(s, "")) }
