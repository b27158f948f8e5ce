package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/toolexec"
)

// Provider names a web search service.
type Provider string

// Providers.
const (
	ProviderExa     Provider = "exa"
	ProviderTavily  Provider = "tavily"
	ProviderBrave   Provider = "brave"
	ProviderSearXNG Provider = "searxng"
)

// providers lists the providers in the order messages name them.
var providers = []Provider{ProviderExa, ProviderTavily, ProviderBrave, ProviderSearXNG}

// Environment variables SearchConfigFromEnv reads.
const (
	EnvSearchProvider = "KELPIE_WEB_SEARCH_PROVIDER" // exa, tavily, brave or searxng
	EnvExaAPIKey      = "EXA_API_KEY"
	EnvTavilyAPIKey   = "TAVILY_API_KEY"
	EnvBraveAPIKey    = "BRAVE_API_KEY"
	EnvSearXNGURL     = "KELPIE_SEARXNG_URL" // the instance's base URL, e.g. http://searxng:8080
	EnvExaBaseURL     = "KELPIE_EXA_BASE_URL"
	EnvTavilyBaseURL  = "KELPIE_TAVILY_BASE_URL"
	EnvBraveBaseURL   = "KELPIE_BRAVE_BASE_URL"
)

// The providers' public API base URLs.
const (
	DefaultExaBaseURL    = "https://api.exa.ai"
	DefaultTavilyBaseURL = "https://api.tavily.com"
	DefaultBraveBaseURL  = "https://api.search.brave.com"
)

// Search bounds and defaults.
const (
	// DefaultSearchTimeout bounds one search request.
	DefaultSearchTimeout = 30 * time.Second
	// DefaultSearchOutputCharsMax bounds the characters web_search
	// returns; results past it are left out, and the answer says so.
	DefaultSearchOutputCharsMax = 40000

	// numResultsDefault and numResultsMax bound num_results (Letta's).
	numResultsDefault = 10
	numResultsMax     = 100
	// queryCharsMax bounds the query; domainsMax each domain list.
	queryCharsMax = 2000
	domainsMax    = 100
	// searchResponseBytesMax bounds a provider's response body.
	searchResponseBytesMax = 8 << 20
	// Per-result field bounds, in characters.
	titleCharsMax     = 300
	urlCharsMax       = 2000
	snippetCharsMax   = 1000
	highlightCharsMax = 500
	highlightsMax     = 3
	textCharsMax      = 5000
	// providerErrorCharsMax bounds the part of a provider's error body
	// quoted to the model.
	providerErrorCharsMax = 300
)

// SearchConfig configures web_search. The provider is Provider, or, when
// Provider is empty, the one provider whose credential is set (an API key,
// or SearXNGURL); with none or several set and no Provider, web_search
// returns a tool error saying what to set.
type SearchConfig struct {
	// Provider is the search service; "" infers it (see above).
	Provider Provider
	// ExaAPIKey, TavilyAPIKey and BraveAPIKey are the providers' keys.
	ExaAPIKey    string
	TavilyAPIKey string
	BraveAPIKey  string
	// SearXNGURL is the base URL of a SearXNG instance whose settings
	// enable the json format (search.formats).
	SearXNGURL string
	// ExaBaseURL, TavilyBaseURL and BraveBaseURL replace the providers'
	// public API URLs (a gateway, a test server); "" means the public API.
	ExaBaseURL    string
	TavilyBaseURL string
	BraveBaseURL  string
	// Timeout bounds one search (DefaultSearchTimeout).
	Timeout time.Duration
	// OutputCharsMax bounds the characters returned
	// (DefaultSearchOutputCharsMax).
	OutputCharsMax int
}

// SearchConfigFromEnv reads SearchConfig from the environment (getenv is
// os.Getenv or a test's map): EnvSearchProvider, the API keys EnvExaAPIKey,
// EnvTavilyAPIKey, EnvBraveAPIKey, EnvSearXNGURL, and the base URL
// overrides EnvExaBaseURL, EnvTavilyBaseURL, EnvBraveBaseURL.
//
// The error reports a configuration web_search cannot use: an unknown
// provider name, a chosen provider without its credential, or several
// credentials and no EnvSearchProvider to choose between them. No
// configuration at all is not an error: web_search then answers that it
// is not set up. The SearchConfig is returned in every case.
func SearchConfigFromEnv(getenv func(string) string) (SearchConfig, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	cfg := SearchConfig{
		Provider:      Provider(strings.ToLower(get(EnvSearchProvider))),
		ExaAPIKey:     get(EnvExaAPIKey),
		TavilyAPIKey:  get(EnvTavilyAPIKey),
		BraveAPIKey:   get(EnvBraveAPIKey),
		SearXNGURL:    get(EnvSearXNGURL),
		ExaBaseURL:    get(EnvExaBaseURL),
		TavilyBaseURL: get(EnvTavilyBaseURL),
		BraveBaseURL:  get(EnvBraveBaseURL),
	}
	_, err := cfg.ResolvedProvider()
	if errors.Is(err, ErrNoSearchProvider) {
		err = nil
	}
	return cfg, err
}

// ErrNoSearchProvider: no provider is configured.
var ErrNoSearchProvider = errors.New("web: no web search provider is configured")

// setupHint says how to configure a provider.
var setupHint = fmt.Sprintf("set %s to exa, tavily, brave or searxng, with %s, %s, %s or %s (a single one of those alone also chooses its provider)",
	EnvSearchProvider, EnvExaAPIKey, EnvTavilyAPIKey, EnvBraveAPIKey, EnvSearXNGURL)

// credential is a provider's credential and the variable that sets it.
func (c SearchConfig) credential(p Provider) (value, env string) {
	switch p {
	case ProviderExa:
		return c.ExaAPIKey, EnvExaAPIKey
	case ProviderTavily:
		return c.TavilyAPIKey, EnvTavilyAPIKey
	case ProviderBrave:
		return c.BraveAPIKey, EnvBraveAPIKey
	case ProviderSearXNG:
		return c.SearXNGURL, EnvSearXNGURL
	}
	return "", ""
}

// ResolvedProvider is the provider searches use: Provider when set (its
// credential must be set too), else the single provider with a
// credential. The error is ErrNoSearchProvider when nothing is
// configured, and otherwise says what is wrong and what to set.
func (c SearchConfig) ResolvedProvider() (Provider, error) {
	if c.Provider != "" {
		if !slices.Contains(providers, c.Provider) {
			return "", fmt.Errorf("web: unknown web search provider %q; %s", c.Provider, setupHint)
		}
		if v, env := c.credential(c.Provider); v == "" {
			return "", fmt.Errorf("web: web search provider %s needs %s to be set", c.Provider, env)
		}
		if c.Provider == ProviderSearXNG {
			if err := checkBaseURL(EnvSearXNGURL, c.SearXNGURL); err != nil {
				return "", err
			}
		}
		return c.Provider, nil
	}
	var set []Provider
	var envs []string
	for _, p := range providers {
		if v, env := c.credential(p); v != "" {
			set = append(set, p)
			envs = append(envs, env)
		}
	}
	switch len(set) {
	case 0:
		return "", ErrNoSearchProvider
	case 1:
		c.Provider = set[0]
		return c.ResolvedProvider()
	}
	return "", fmt.Errorf("web: %s are all set; set %s to choose the web search provider", strings.Join(envs, " and "), EnvSearchProvider)
}

// checkBaseURL checks an operator-given base URL.
func checkBaseURL(env, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("web: %s=%q is not an http:// or https:// URL", env, raw)
	}
	return nil
}

// Searcher runs web_search through the configured provider. It
// implements toolexec.Executor and is safe for concurrent use.
type Searcher struct {
	cfg    SearchConfig
	client *http.Client
}

// NewSearcher returns a Searcher with cfg, its zero bounds set to the
// defaults. The provider is resolved at every call, with the call's own
// API keys (see Run).
func NewSearcher(cfg SearchConfig) *Searcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSearchTimeout
	}
	if cfg.OutputCharsMax <= 0 {
		cfg.OutputCharsMax = DefaultSearchOutputCharsMax
	}
	// The provider URL is the operator's, not the model's: an ordinary
	// transport, with the environment's proxy.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	return &Searcher{cfg: cfg, client: &http.Client{Transport: transport}}
}

// searchArgs are web_search's arguments.
type searchArgs struct {
	Query              string   `json:"query"`
	NumResults         *int     `json:"num_results"`
	Category           string   `json:"category"`
	IncludeText        bool     `json:"include_text"`
	IncludeDomains     []string `json:"include_domains"`
	ExcludeDomains     []string `json:"exclude_domains"`
	StartPublishedDate string   `json:"start_published_date"`
	EndPublishedDate   string   `json:"end_published_date"`
	UserLocation       string   `json:"user_location"`
	// RequestHeartbeat: see fetchArgs.
	RequestHeartbeat any `json:"request_heartbeat"`
}

// query is a checked search.
type query struct {
	text           string
	num            int
	category       string
	includeText    bool
	includeDomains []string
	excludeDomains []string
	// start and end are the published-date bounds (zero: none); endDay is
	// set when end was a date without a time, meaning the whole day.
	start, end time.Time
	endDay     bool
	location   string // upper-case ISO 3166 alpha-2, or ""
}

// hit is one result as the model sees it.
type hit struct {
	Title         string   `json:"title"`
	URL           string   `json:"url"`
	PublishedDate string   `json:"published_date,omitempty"`
	Author        string   `json:"author,omitempty"`
	Snippet       string   `json:"snippet,omitempty"`
	Highlights    []string `json:"highlights,omitempty"`
	Text          string   `json:"text,omitempty"`
}

// searchOutput is web_search's answer.
type searchOutput struct {
	Query    string   `json:"query"`
	Provider Provider `json:"provider"`
	Results  []hit    `json:"results"`
	// Ignored lists the arguments the provider cannot apply.
	Ignored []string `json:"ignored_arguments,omitempty"`
	// Note says when results were left out to stay within the bound.
	Note string `json:"note,omitempty"`
}

// Run searches the web. The call's Env may carry its own API key
// (EXA_API_KEY, TAVILY_API_KEY, BRAVE_API_KEY), which replaces the
// server's for that call; the provider's URL always comes from the
// server's configuration. A search that cannot be made (no provider, bad
// arguments, the provider's error) is a StatusError result; an error
// return means ctx ended the call.
func (s *Searcher) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	var args searchArgs
	if msg := decodeArgs(NameWebSearch, call.Arguments, &args); msg != "" {
		return toolexec.Errorf("%s", msg), nil
	}
	q, msg := checkSearchArgs(args)
	if msg != "" {
		return toolexec.Errorf("web_search: %s", msg), nil
	}
	cfg := s.cfg
	for env, key := range map[string]*string{EnvExaAPIKey: &cfg.ExaAPIKey, EnvTavilyAPIKey: &cfg.TavilyAPIKey, EnvBraveAPIKey: &cfg.BraveAPIKey} {
		if v := strings.TrimSpace(call.Env[env]); v != "" {
			*key = v
		}
	}
	p, err := cfg.ResolvedProvider()
	if err != nil {
		if errors.Is(err, ErrNoSearchProvider) {
			return toolexec.Errorf("web_search is not set up on this server: the operator must %s", setupHint), nil
		}
		return toolexec.Errorf("web_search is not set up correctly on this server: %s", strings.TrimPrefix(err.Error(), "web: ")), nil
	}

	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var hits []hit
	var ignored []string
	switch p {
	case ProviderExa:
		hits, ignored, err = s.exa(sctx, cfg, q)
	case ProviderTavily:
		hits, ignored, err = s.tavily(sctx, cfg, q)
	case ProviderBrave:
		hits, ignored, err = s.brave(sctx, cfg, q)
	case ProviderSearXNG:
		hits, ignored, err = s.searxng(sctx, cfg, q)
	}
	if err != nil {
		if ctx.Err() != nil {
			return toolexec.Result{}, ctx.Err()
		}
		var pe *providerError
		switch {
		case errors.As(err, &pe):
			return toolexec.Errorf("web_search: %s", pe.Error()), nil
		case errors.Is(err, context.DeadlineExceeded):
			return toolexec.Errorf("web_search: %s did not answer within %v", p, cfg.Timeout), nil
		}
		return toolexec.Errorf("web_search: the request to %s failed: %v", p, err), nil
	}
	hits = filterDomains(hits, q.includeDomains, q.excludeDomains)
	if len(hits) > q.num {
		hits = hits[:q.num]
	}
	for i := range hits {
		hits[i] = boundHit(hits[i], q.includeText)
	}
	out, err := encodeBounded(searchOutput{Query: q.text, Provider: p, Results: hits, Ignored: ignored}, cfg.OutputCharsMax)
	if err != nil {
		return toolexec.Result{}, err
	}
	return toolexec.Result{Status: toolexec.StatusSuccess, Return: out}, nil
}

// checkSearchArgs checks and normalizes the arguments; the message says
// what is wrong.
func checkSearchArgs(a searchArgs) (query, string) {
	q := query{text: strings.TrimSpace(a.Query), num: numResultsDefault, includeText: a.IncludeText}
	switch {
	case q.text == "":
		return q, "the query argument is required and cannot be empty"
	case utf8.RuneCountInString(q.text) > queryCharsMax:
		return q, fmt.Sprintf("the query is longer than %d characters", queryCharsMax)
	}
	if a.NumResults != nil {
		q.num = min(max(*a.NumResults, 1), numResultsMax)
	}
	if a.Category != "" {
		c := strings.ToLower(strings.TrimSpace(a.Category))
		if !slices.Contains(Categories, c) {
			return q, fmt.Sprintf("category %q is not one of %s", a.Category, quoteList(Categories))
		}
		q.category = c
	}
	var msg string
	if q.includeDomains, msg = checkDomains("include_domains", a.IncludeDomains); msg != "" {
		return q, msg
	}
	if q.excludeDomains, msg = checkDomains("exclude_domains", a.ExcludeDomains); msg != "" {
		return q, msg
	}
	if a.StartPublishedDate != "" {
		if q.start, _, msg = parseDate("start_published_date", a.StartPublishedDate); msg != "" {
			return q, msg
		}
	}
	if a.EndPublishedDate != "" {
		if q.end, q.endDay, msg = parseDate("end_published_date", a.EndPublishedDate); msg != "" {
			return q, msg
		}
	}
	if !q.start.IsZero() && !q.end.IsZero() && q.end.Before(q.start) {
		return q, "end_published_date is before start_published_date"
	}
	if loc := strings.TrimSpace(a.UserLocation); loc != "" {
		loc = strings.ToUpper(loc)
		if len(loc) != 2 || loc[0] < 'A' || loc[0] > 'Z' || loc[1] < 'A' || loc[1] > 'Z' {
			return q, fmt.Sprintf("user_location %q is not a two-letter country code such as \"US\"", a.UserLocation)
		}
		q.location = loc
	}
	return q, ""
}

// checkDomains normalizes a domain list: lower case, no scheme, path,
// port or leading "www.".
func checkDomains(arg string, domains []string) ([]string, string) {
	if len(domains) > domainsMax {
		return nil, fmt.Sprintf("%s has more than %d domains", arg, domainsMax)
	}
	var out []string
	for _, d := range domains {
		n := normalizeDomain(d)
		if n == "" || strings.ContainsAny(n, " \t/?#@") {
			return nil, fmt.Sprintf("%s: %q is not a domain such as \"example.com\"", arg, d)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, ""
}

// normalizeDomain turns "https://www.Example.com/x" into "example.com".
func normalizeDomain(d string) string {
	d = strings.ToLower(strings.TrimSpace(d))
	if _, rest, ok := strings.Cut(d, "://"); ok {
		d = rest
	}
	d, _, _ = strings.Cut(d, "/")
	if h, _, ok := strings.Cut(d, ":"); ok {
		d = h
	}
	return strings.TrimPrefix(strings.TrimSuffix(d, "."), "www.")
}

// dateLayouts are the ISO 8601 forms the date arguments take.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"}

// parseDate reads a date argument; dateOnly is set for a date without a
// time.
func parseDate(arg, v string) (t time.Time, dateOnly bool, msg string) {
	v = strings.TrimSpace(v)
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), layout == "2006-01-02", ""
		}
	}
	return time.Time{}, false, fmt.Sprintf("%s %q is not an ISO 8601 date such as 2025-01-31 or 2025-01-31T12:00:00Z", arg, v)
}

// filterDomains keeps the hits whose host is in include (when given) and
// not in exclude; a domain covers its subdomains. Providers that filter
// themselves are filtered again, harmlessly; for those that only take
// site: operators this is what enforces the lists.
func filterDomains(hits []hit, include, exclude []string) []hit {
	if len(include) == 0 && len(exclude) == 0 {
		return hits
	}
	out := hits[:0]
	for _, h := range hits {
		u, err := url.Parse(h.URL)
		if err != nil {
			continue
		}
		host := strings.TrimPrefix(strings.ToLower(u.Hostname()), "www.")
		in := func(domains []string) bool {
			return slices.ContainsFunc(domains, func(d string) bool { return host == d || strings.HasSuffix(host, "."+d) })
		}
		if (len(include) == 0 || in(include)) && !in(exclude) {
			out = append(out, h)
		}
	}
	return out
}

// boundHit cuts a hit's fields to their bounds; the text is kept only
// when asked for.
func boundHit(h hit, includeText bool) hit {
	h.Title = cutChars(oneLine(h.Title), titleCharsMax)
	h.URL = cutChars(h.URL, urlCharsMax)
	h.Author = cutChars(oneLine(h.Author), titleCharsMax)
	h.PublishedDate = cutChars(h.PublishedDate, 64)
	h.Snippet = cutChars(strings.TrimSpace(h.Snippet), snippetCharsMax)
	if len(h.Highlights) > highlightsMax {
		h.Highlights = h.Highlights[:highlightsMax]
	}
	for i, s := range h.Highlights {
		h.Highlights[i] = cutChars(strings.TrimSpace(s), highlightCharsMax)
	}
	if includeText {
		h.Text = cutChars(strings.TrimSpace(h.Text), textCharsMax)
	} else {
		h.Text = ""
	}
	return h
}

// oneLine collapses whitespace.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cutChars cuts s to n characters, marking the cut with "…".
func cutChars(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return truncateRunes(s, n-1) + "…"
}

// encodeBounded encodes out as compact JSON of at most charsMax
// characters, leaving out results from the end until it fits. Each result
// is measured once, so the cost is linear in the answer's size.
func encodeBounded(out searchOutput, charsMax int) (string, error) {
	if out.Results == nil {
		out.Results = []hit{}
	}
	s, err := encodeJSON(out)
	if err != nil || utf8.RuneCountInString(s) <= charsMax {
		return s, err
	}
	all := out.Results
	// prefix[k] is the size of the first k results with their commas.
	prefix := make([]int, len(all)+1)
	for i, h := range all {
		b, err := encodeJSON(h)
		if err != nil {
			return "", err
		}
		prefix[i+1] = prefix[i] + utf8.RuneCountInString(b) + 1
	}
	withNote := func(k int) searchOutput {
		o := out
		o.Results = all[:k]
		o.Note = fmt.Sprintf("%d of %d results left out to keep the answer within %d characters; ask for fewer results or leave include_text off",
			len(all)-k, len(all), charsMax)
		return o
	}
	// fits tells whether k results fit: the envelope without results,
	// plus the results measured above (one comma too many: a margin).
	fits := func(k int) (bool, error) {
		o := withNote(k)
		o.Results = []hit{}
		empty, err := encodeJSON(o)
		return utf8.RuneCountInString(empty)+prefix[k] <= charsMax, err
	}
	k := len(all) - 1
	for ; k > 0; k-- {
		ok, err := fits(k)
		if err != nil {
			return "", err
		}
		if ok {
			break
		}
	}
	return encodeJSON(withNote(k))
}

// encodeJSON encodes v compactly, without escaping HTML characters.
func encodeJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("web: encoding search results: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// providerError is a provider's refusal or failure, worded for the model.
type providerError struct {
	provider Provider
	status   string
	detail   string
	hint     string
}

// Error says what the provider answered, with a hint when there is one.
func (e *providerError) Error() string {
	msg := fmt.Sprintf("%s answered %s", e.provider, e.status)
	if e.detail != "" {
		msg += ": " + e.detail
	}
	if e.hint != "" {
		msg += " (" + e.hint + ")"
	}
	return msg
}

// do sends req and decodes a 2xx JSON answer of at most
// searchResponseBytesMax bytes into dst.
func (s *Searcher) do(req *http.Request, p Provider, dst any) error {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", DefaultUserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, searchResponseBytesMax+1))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		pe := &providerError{provider: p, status: resp.Status, detail: errorDetail(body)}
		switch {
		case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && p == ProviderSearXNG:
			pe.hint = "the SearXNG instance must allow the json format: add json to search.formats in its settings.yml"
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			_, env := SearchConfig{}.credential(p)
			pe.hint = "the operator should check " + env
		case resp.StatusCode == http.StatusTooManyRequests:
			pe.hint = "the provider's rate limit or quota was reached; try again later"
		}
		return pe
	}
	if len(body) > searchResponseBytesMax {
		return &providerError{provider: p, status: resp.Status, detail: fmt.Sprintf("the answer is larger than %d bytes", searchResponseBytesMax)}
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return &providerError{provider: p, status: resp.Status, detail: "the answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// errorDetail is the message of a provider's error body: a JSON error
// field when there is one, else the text, cut.
func errorDetail(body []byte) string {
	var fields map[string]any
	if json.Unmarshal(body, &fields) == nil {
		for _, k := range []string{"error", "detail", "message"} {
			switch v := fields[k].(type) {
			case string:
				return cutChars(oneLine(v), providerErrorCharsMax)
			case map[string]any:
				for _, k2 := range []string{"message", "detail", "error"} {
					if s, ok := v[k2].(string); ok {
						return cutChars(oneLine(s), providerErrorCharsMax)
					}
				}
			}
		}
	}
	return cutChars(oneLine(strings.ToValidUTF8(string(body), "")), providerErrorCharsMax)
}
