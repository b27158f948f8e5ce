// Package web implements the two web built-in tools of Letta agents,
// fetch_webpage and web_search, as toolexec.Executors that run outside the
// agent's actor.
//
// fetch_webpage GETs one http or https URL and returns HTML as markdown
// (github.com/JohannesKaufmann/html-to-markdown), plain text and JSON as
// they are; any other content type is a tool error. Every fetch is bounded:
// FetchConfig.Timeout for the whole fetch, RedirectsMax redirects,
// FetchConfig.BodyBytesMax bytes of body read and FetchConfig.OutputCharsMax
// characters returned, each cut said so in the text.
//
// web_search asks the search provider the operator configured (Exa, Tavily,
// Brave or a self-hosted SearXNG; see SearchConfig) and returns compact,
// bounded JSON results. Without a provider it is a tool error naming the
// settings to set, so agents may carry the tool regardless.
//
// # Security policy
//
// The model chooses what fetch_webpage fetches, and the model reads what
// pages say, so a URL is untrusted input. Unless the operator sets
// FetchConfig.AllowPrivate, a fetch connects only to public unicast
// addresses: loopback, private networks (RFC 1918, IPv6 unique local),
// carrier-grade NAT, link-local (cloud metadata at 169.254.169.254
// included), unspecified, multicast, broadcast, documentation and reserved
// addresses are refused, and so are the IPv4-mapped, NAT64 and 6to4 forms
// of those (see Blocked). The check is made when connecting, on the
// address actually dialled after the fetcher's own DNS lookup, and again
// on the socket just before it connects; so a name that resolves to a
// private address, a DNS answer that changes between lookups (rebinding),
// and a redirect to a private address are all refused. Only http and
// https are fetched, redirects included; no proxy is used, since a proxy
// would hide the destination from the check. The fetcher sends no
// credentials or cookies of its own.
//
// web_search talks only to the provider URL the operator configured (a
// SearXNG instance may well be on a private address): the model controls
// the query, never the destination. API keys come from the operator's
// configuration; an agent's tool environment (Call.Env) may supply its own
// key, as Letta allows, but never a provider URL.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/toolschema"
)

// Tool names (Letta's), from toolschema.
const (
	NameFetchWebpage = toolschema.NameFetchWebpage
	NameWebSearch    = toolschema.NameWebSearch
)

// Categories are the values web_search's category argument takes.
var Categories = toolschema.Categories

// Config configures both tools.
type Config struct {
	Fetch  FetchConfig
	Search SearchConfig
}

// Environment variables ConfigFromEnv reads besides SearchConfigFromEnv's.
const (
	// EnvFetchAllowPrivate set to a true value (1, true, yes, on) sets
	// FetchConfig.AllowPrivate.
	EnvFetchAllowPrivate = "KELPIE_WEB_FETCH_ALLOW_PRIVATE"
)

// ConfigFromEnv reads both tools' configuration from the environment
// (getenv is os.Getenv or a test's map): EnvFetchAllowPrivate and the
// variables of SearchConfigFromEnv. An error names the variable that is
// wrong; the Config returned with it holds everything else that was read.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	var errs []error
	if v := strings.TrimSpace(getenv(EnvFetchAllowPrivate)); v != "" {
		b, err := parseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("web: %s=%q: %w", EnvFetchAllowPrivate, v, err))
		}
		cfg.Fetch.AllowPrivate = b
	}
	search, err := SearchConfigFromEnv(getenv)
	cfg.Search = search
	errs = append(errs, err)
	return cfg, errors.Join(errs...)
}

// parseBool reads a boolean setting.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// Executor runs both tools, dispatching on Call.Name. It implements
// toolexec.Executor and is safe for concurrent use.
type Executor struct {
	fetch  *Fetcher
	search *Searcher
}

// New returns an Executor for cfg.
func New(cfg Config) *Executor {
	return &Executor{fetch: NewFetcher(cfg.Fetch), search: NewSearcher(cfg.Search)}
}

// Run runs fetch_webpage or web_search; any other name is an error (the
// loop routed a call here that is not one of these tools).
func (e *Executor) Run(ctx context.Context, call toolexec.Call) (toolexec.Result, error) {
	switch call.Name {
	case NameFetchWebpage:
		return e.fetch.Run(ctx, call)
	case NameWebSearch:
		return e.search.Run(ctx, call)
	}
	return toolexec.Result{}, fmt.Errorf("web: no tool %q (this executor runs %s and %s)", call.Name, NameFetchWebpage, NameWebSearch)
}

// decodeArgs decodes a call's JSON arguments into dst, a pointer to a
// struct whose json tags name the tool's parameters. It returns "" or a
// message for the model that names the argument that is wrong.
func decodeArgs(tool string, raw json.RawMessage, dst any) string {
	if s := strings.TrimSpace(string(raw)); s == "" || s == "null" {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("extra data after the arguments object")
	}
	if err == nil {
		return ""
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Sprintf("%s: the arguments must be a JSON object, not %s", tool, typeErr.Value)
		}
		return fmt.Sprintf("%s: the argument %q must be %s, not %s", tool, typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("%s: unknown argument %s; its arguments are %s", tool, name, strings.Join(paramNames(dst), ", "))
	}
	return fmt.Sprintf("%s: the arguments are not a valid JSON object: %v", tool, err)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(jsonKind(t.Elem()), "a "), "an ") + "s"
	}
	return "an object"
}

// paramNames lists the json names of dst's fields, request_heartbeat
// left out.
func paramNames(dst any) []string {
	t := reflect.TypeOf(dst)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" && name != "request_heartbeat" {
			names = append(names, name)
		}
	}
	return names
}

// mustJSON encodes v, which cannot fail for the values it is given.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// quoteList quotes and joins names for a message.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
