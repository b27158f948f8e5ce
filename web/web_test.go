package web

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/toolschema"
)

// compileSchema compiles a tool's parameters as a JSON Schema.
func compileSchema(t *testing.T, tool toolschema.Tool) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(tool.Parameters)))
	if err != nil {
		t.Fatalf("%s: parameters are not JSON: %v", tool.Name, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem://"+tool.Name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("mem://" + tool.Name)
	if err != nil {
		t.Fatalf("%s: parameters are not a JSON Schema: %v", tool.Name, err)
	}
	return s
}

// TestToolSchemas: each tool's schema is a JSON Schema whose properties
// are exactly the arguments Run decodes, with Letta's names, and that
// accepts the calls Run accepts.
func TestToolSchemas(t *testing.T) {
	tools := toolschema.Tools()
	want(t, "names", []string{tools[0].Name, tools[1].Name}, []string{"fetch_webpage", "web_search"})
	params := map[string][]string{
		NameFetchWebpage: {"url"},
		NameWebSearch: {"query", "num_results", "category", "include_text", "include_domains", "exclude_domains",
			"start_published_date", "end_published_date", "user_location"},
	}
	decoded := map[string][]string{NameFetchWebpage: paramNames(&fetchArgs{}), NameWebSearch: paramNames(&searchArgs{})}
	valid := map[string]string{
		NameFetchWebpage: `{"url":"https://example.com"}`,
		NameWebSearch: `{"query":"q","num_results":5,"category":"news","include_text":false,"include_domains":["a.com"],` +
			`"exclude_domains":[],"start_published_date":"2025-01-01","end_published_date":"2025-02-01","user_location":"US"}`,
	}
	invalid := map[string][]string{
		NameFetchWebpage: {`{}`, `{"url":5}`},
		NameWebSearch:    {`{}`, `{"query":"q","num_results":0}`, `{"query":"q","category":"blog"}`, `{"query":"q","include_domains":"a.com"}`},
	}
	for _, tool := range tools {
		if tool.Description == "" {
			t.Errorf("%s has no description", tool.Name)
		}
		var schema struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if err := json.Unmarshal(tool.Parameters, &schema); err != nil {
			t.Fatal(err)
		}
		props := slices.Sorted(maps.Keys(schema.Properties))
		want(t, tool.Name+" properties", props, slices.Sorted(slices.Values(params[tool.Name])))
		want(t, tool.Name+" decoded arguments", slices.Sorted(slices.Values(decoded[tool.Name])), props)
		want(t, tool.Name+" required", schema.Required, params[tool.Name][:1])

		s := compileSchema(t, tool)
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(valid[tool.Name]))
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s: the schema refuses %s: %v", tool.Name, valid[tool.Name], err)
		}
		for _, bad := range invalid[tool.Name] {
			inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(bad))
			if s.Validate(inst) == nil {
				t.Errorf("%s: the schema accepts %s", tool.Name, bad)
			}
		}
	}
	// Tools hands out copies: changing one does not change the next.
	tools[0].Parameters[0] = 'X'
	if toolschema.FetchWebpageTool().Parameters[0] != '{' {
		t.Error("Tools shares its parameters")
	}
}

// TestExecutorDispatch: the Executor runs each tool by name and refuses
// other names.
func TestExecutorDispatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/search" && r.URL.Query().Get("format") == "json" {
			io.WriteString(w, `{"results":[{"title":"T","url":"https://t.example/","content":"c"}]}`)
			return
		}
		io.WriteString(w, `{"page":true}`)
	}))
	defer srv.Close()
	var e toolexec.Executor = New(Config{Fetch: FetchConfig{AllowPrivate: true}, Search: SearchConfig{SearXNGURL: srv.URL}})

	res, err := e.Run(context.Background(), toolexec.Call{Name: NameFetchWebpage, Arguments: []byte(`{"url":"` + srv.URL + `/p"}`)})
	if err != nil || res.Status != toolexec.StatusSuccess || res.Return != `{"page":true}` {
		t.Errorf("fetch_webpage: %+v, %v", res, err)
	}
	res, err = e.Run(context.Background(), toolexec.Call{Name: NameWebSearch, Arguments: []byte(`{"query":"q"}`)})
	if err != nil || res.Status != toolexec.StatusSuccess || !strings.Contains(res.Return, `"url":"https://t.example/"`) {
		t.Errorf("web_search: %+v, %v", res, err)
	}
	if _, err := e.Run(context.Background(), toolexec.Call{Name: "run_code"}); err == nil || !strings.Contains(err.Error(), `"run_code"`) {
		t.Errorf("an unknown tool: %v", err)
	}
}

// TestExecutorDefaultRefusesPrivate: New without AllowPrivate refuses the
// loopback server the other tests use.
func TestExecutorDefaultRefusesPrivate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the server was reached")
	}))
	defer srv.Close()
	res, err := New(Config{}).Run(context.Background(), toolexec.Call{Name: NameFetchWebpage, Arguments: []byte(`{"url":"` + srv.URL + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, res, "loopback")
}
