// Package toolschema defines the built-in tools that run outside the
// agent — fetch_webpage, web_search and run_code — as the model is offered
// them: their names, descriptions and JSON-Schema parameters (Letta
// 0.16.8's names and types). It is pure, so the agent loop can offer the
// tools without linking their executors (packages web and sandbox).
package toolschema

import "encoding/json"

// Tool names (Letta's).
const (
	NameFetchWebpage = "fetch_webpage"
	NameWebSearch    = "web_search"
)

// Tool describes a tool for the model: its name, what it does and the
// JSON Schema of its arguments. Its fields match llm.Tool, so
// llm.Tool(t) converts it.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

const fetchWebpageDescription = "Read a web page and return its content as text. " +
	"HTML pages come back as markdown (scripts and styles left out), " +
	"plain text and JSON come back unchanged. Only public http:// and https:// addresses can be read, " +
	"and long pages are cut."

const fetchWebpageParameters = `{"type":"object","properties":{` +
	`"url":{"type":"string","description":"The full http:// or https:// address of the page to read."}` +
	`},"required":["url"]}`

// Categories are the values web_search's category argument takes
// (Letta's).
var Categories = []string{"company", "research paper", "news", "pdf", "github", "tweet",
	"personal site", "linkedin profile", "financial report"}

const webSearchDescription = "Search the web and return the most relevant pages as JSON: " +
	"for each result its title, URL, publication date when known, and a short excerpt. " +
	"Use it for current events and for facts you do not know. " +
	`Examples: web_search(query="Go 1.26 release notes", num_results=3); ` +
	`web_search(query="retrieval augmented generation survey", category="research paper", include_domains=["arxiv.org"]).`

var webSearchParameters = `{"type":"object","properties":{` +
	`"query":{"type":"string","description":"What to search for, in plain words."},` +
	`"num_results":{"type":"integer","minimum":1,"maximum":100,"default":10,"description":"How many results to return, 1 to 100 (default 10). Some search services return at most 20."},` +
	`"category":{"type":"string","enum":` + mustJSON(Categories) + `,"description":"Restrict the search to one kind of content. Optional."},` +
	`"include_text":{"type":"boolean","default":false,"description":"Also return each page's text, cut to a few thousand characters (default false: excerpts only, which keeps the answer small)."},` +
	`"include_domains":{"type":"array","items":{"type":"string"},"description":"Only return results from these domains, e.g. [\"arxiv.org\"]. Optional."},` +
	`"exclude_domains":{"type":"array","items":{"type":"string"},"description":"Never return results from these domains. Optional."},` +
	`"start_published_date":{"type":"string","description":"Only results published on or after this date, ISO 8601 (2025-01-31 or 2025-01-31T00:00:00Z). Optional."},` +
	`"end_published_date":{"type":"string","description":"Only results published on or before this date, ISO 8601. Optional."},` +
	`"user_location":{"type":"string","description":"Two-letter country code to localize results, e.g. \"US\". Optional."}` +
	`},"required":["query"]}`

// FetchWebpageTool describes fetch_webpage for the model.
func FetchWebpageTool() Tool {
	return Tool{Name: NameFetchWebpage, Description: fetchWebpageDescription, Parameters: json.RawMessage(fetchWebpageParameters)}
}

// WebSearchTool describes web_search for the model.
func WebSearchTool() Tool {
	return Tool{Name: NameWebSearch, Description: webSearchDescription, Parameters: json.RawMessage(webSearchParameters)}
}

// Tools describes both web tools, fetch_webpage first.
func Tools() []Tool { return []Tool{FetchWebpageTool(), WebSearchTool()} }

// run_code, Letta's built-in code runner: the model gives a program and
// its language; the program runs in a fresh sandbox (package sandbox).
const (
	NameRunCode        = "run_code"
	runCodeDescription = "Execute a self-contained program in a fresh, isolated sandbox and return " +
		"what it printed to stdout and stderr, and the error if it failed. Nothing persists " +
		"between runs: no variables, files or installed packages, and there is no network access. " +
		"Print whatever you need to see."
	runCodeParameters = `{"type":"object","properties":{` +
		`"code":{"type":"string","description":"The complete program to run."},` +
		`"language":{"type":"string","enum":["python","js","ts"],"description":"The program's language: python (Python 3), js (JavaScript, run by Node.js as an ES module) or ts (TypeScript, types stripped, then run as js)."}` +
		`},"required":["code","language"],"additionalProperties":false}`
)

// RunCodeTool describes run_code for the model.
func RunCodeTool() Tool {
	return Tool{Name: NameRunCode, Description: runCodeDescription, Parameters: json.RawMessage(runCodeParameters)}
}

// mustJSON encodes v, which cannot fail for the values it is given.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
