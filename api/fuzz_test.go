package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/api"
	"github.com/kelpie-ai/kelpie/fakellm"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/llm/openai"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// Fuzz targets for the request parsing and answering of the API, each
// driving the real handler over a real service on an in-memory store:
//
//	go test -run '^$' -fuzz FuzzCreateAgentRequest -fuzztime 30s ./api/
//	go test -run '^$' -fuzz FuzzSendMessageRequest -fuzztime 30s ./api/
//	go test -run '^$' -fuzz FuzzListQuery -fuzztime 30s ./api/
//	go test -run '^$' -fuzz FuzzSSE -fuzztime 30s ./api/
//
// Their seed corpora (f.Add, and testdata/fuzz/<name>/ for inputs that
// once failed) run as ordinary tests. Every answer must be a JSON body
// (or, for a stream, a well-formed event stream) with one of the statuses
// a client error or success may have; an error body must carry a
// non-empty string "detail" (or, for a 422, FastAPI's list of validation
// errors); a recovered panic (500 "Internal Server Error") fails.

// fuzzStatuses are the statuses a fuzzed request may get.
var fuzzStatuses = map[int]bool{200: true, 400: true, 404: true, 409: true, 413: true, 422: true}

// fuzzRequestTimeout bounds one fuzzed request; a hang fails it.
const fuzzRequestTimeout = 10 * time.Second

// lockedBuffer is the log of the handler and service, read on a failure.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// fuzzEnv is the API over an in-memory service, shared by the iterations
// of one fuzz target in one process.
type fuzzEnv struct {
	h   http.Handler
	log *lockedBuffer
	// vars replace placeholders such as {A0} in fuzzed input with the IDs
	// of objects the environment created.
	vars map[string]string
}

func newFuzzEnv(f *testing.F, model llm.Client) *fuzzEnv {
	f.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := rt.NewSystem()
	store := memory.New()
	sys := actor.NewSystem(actor.Config{Runtime: r, Store: store, Logger: logger})
	svc, err := service.New(r, store, sys, model)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Shutdown(ctx)
		store.Close()
	})
	return &fuzzEnv{h: api.New(svc, api.WithLogger(logger)), log: logs, vars: map[string]string{}}
}

// expand replaces the placeholders in s.
func (e *fuzzEnv) expand(s string) string {
	for k, v := range e.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// serve runs one request through the handler.
func (e *fuzzEnv) serve(method, target string, rawQuery *string, body []byte) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), fuzzRequestTimeout)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if rawQuery != nil {
		req.URL.RawQuery = *rawQuery
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// mustOK runs a setup request that has to succeed and decodes its body.
func (e *fuzzEnv) mustOK(tb testing.TB, method, target string, body any, out any) {
	tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	if body == nil {
		raw = nil
	}
	rec := e.serve(method, target, nil, raw)
	if rec.Code != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			tb.Fatalf("%s %s: %v\n%s", method, target, err, rec.Body)
		}
	}
}

// checkAnswer checks the invariants every fuzzed answer must keep and
// returns whether it is a 200.
func (e *fuzzEnv) checkAnswer(t *testing.T, what string, rec *httptest.ResponseRecorder) bool {
	t.Helper()
	body := rec.Body.Bytes()
	t.Logf("%s: %d %.300s", what, rec.Code, body)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %d %.2000s\n%s\nserver log:\n%s", what, rec.Code, body, fmt.Sprintf(format, args...), e.log.take())
	}
	if rec.Code == http.StatusInternalServerError && bytes.Contains(body, []byte(`"Internal Server Error"`)) {
		fail("the handler panicked (recovered into a 500)")
	}
	if !fuzzStatuses[rec.Code] {
		fail("status %d is not one of 200/400/404/409/413/422", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		if rec.Code != http.StatusOK {
			fail("an event stream with status %d", rec.Code)
		}
		if err := checkEventStream(body); err != nil {
			fail("bad event stream: %v", err)
		}
		return true
	} else if ct != "application/json" {
		fail("Content-Type %q, want application/json", ct)
	}
	if !json.Valid(body) {
		fail("the body is not JSON")
	}
	if rec.Code != http.StatusOK {
		if err := checkErrorBody(rec.Code, body); err != nil {
			fail("%v", err)
		}
		return false
	}
	e.log.take()
	return true
}

// checkErrorBody checks an error body: {"detail": "<non-empty text>"},
// or for a 422 also FastAPI's validation form, {"detail": [{"loc": [...],
// "msg": "<non-empty text>", "type": ...}, ...]}.
func checkErrorBody(status int, body []byte) error {
	var e struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Detail) == 0 {
		return fmt.Errorf("an error body without \"detail\" (%v)", err)
	}
	var text string
	if err := json.Unmarshal(e.Detail, &text); err == nil {
		if strings.TrimSpace(text) == "" {
			return fmt.Errorf("an empty detail")
		}
		return nil
	}
	var items []struct {
		Loc []any   `json:"loc"`
		Msg *string `json:"msg"`
	}
	if status != http.StatusUnprocessableEntity || json.Unmarshal(e.Detail, &items) != nil || len(items) == 0 {
		return fmt.Errorf("detail is neither a string nor (for a 422) a list of validation errors")
	}
	for _, it := range items {
		if it.Msg == nil || strings.TrimSpace(*it.Msg) == "" || it.Loc == nil {
			return fmt.Errorf("a validation error without loc or msg")
		}
	}
	return nil
}

// checkEventStream checks a Letta event stream: events of one optional
// "event:" line and one "data:" line, each followed by a blank line; data
// is JSON with a string message_type, except the final [DONE]; an error
// event carries a string detail and comes last before [DONE]; a stream
// without error ends with stop_reason and usage_statistics.
func checkEventStream(body []byte) error {
	s := string(body)
	if !strings.HasSuffix(s, "\n\n") {
		return fmt.Errorf("does not end with a blank line")
	}
	blocks := strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n")
	var types []string
	for i, b := range blocks {
		lines := strings.Split(b, "\n")
		name := ""
		if len(lines) == 2 {
			var ok bool
			if name, ok = strings.CutPrefix(lines[0], "event: "); !ok || name == "" {
				return fmt.Errorf("event %d: first of two lines %q is not an event name", i, lines[0])
			}
			lines = lines[1:]
		}
		if len(lines) != 1 {
			return fmt.Errorf("event %d has %d lines: %q", i, len(lines), b)
		}
		data, ok := strings.CutPrefix(lines[0], "data: ")
		if !ok {
			return fmt.Errorf("event %d: line %q is not data", i, lines[0])
		}
		last := i == len(blocks)-1
		if data == "[DONE]" {
			if !last || name != "" {
				return fmt.Errorf("event %d: [DONE] is not the last, unnamed event", i)
			}
			continue
		}
		if last {
			return fmt.Errorf("the stream does not end with [DONE]")
		}
		var m struct {
			MessageType *string `json:"message_type"`
			Detail      *string `json:"detail"`
		}
		if err := json.Unmarshal([]byte(data), &m); err != nil || m.MessageType == nil {
			return fmt.Errorf("event %d: data %.300q is not a JSON object with a string message_type (%v)", i, data, err)
		}
		switch name {
		case "":
		case "error":
			if m.Detail == nil {
				return fmt.Errorf("event %d: error without a string detail: %.300s", i, data)
			}
			if i != len(blocks)-2 {
				return fmt.Errorf("event %d: events after the error", i)
			}
		default:
			return fmt.Errorf("event %d: unknown event name %q", i, name)
		}
		types = append(types, name+":"+*m.MessageType)
	}
	n := len(types)
	switch {
	case n > 0 && strings.HasPrefix(types[n-1], "error:"):
	case n >= 2 && types[n-2] == ":stop_reason" && types[n-1] == ":usage_statistics":
	default:
		return fmt.Errorf("the stream ends neither with an error nor with stop_reason and usage_statistics: %v", types)
	}
	return nil
}

// reset leaves the agent at path ready for the next input: a send that
// paused its run (a call of a client tool, or of a tool needing approval)
// would make every later send answer 409. The active run is cancelled,
// and calls still waiting for approval (which outlive the run) are
// denied; both answers are held to the same rules as the fuzzed one.
func (e *fuzzEnv) reset(t *testing.T, path string, after []byte) {
	t.Helper()
	if rec := e.serve("POST", path+"/cancel", nil, []byte(`{}`)); rec.Code != http.StatusOK {
		t.Fatalf("cancel after %q: %d %s", after, rec.Code, rec.Body)
	}
	rec := e.serve("POST", path, nil, []byte(`{"messages":[{"type":"approval","approve":false,"reason":"fuzz reset"}]}`))
	e.checkAnswer(t, fmt.Sprintf("denying pending approvals after %q", after), rec)
}

// createFuzzAgent creates an agent for the fuzz environment.
func (e *fuzzEnv) createFuzzAgent(tb testing.TB, body map[string]any) string {
	tb.Helper()
	var a struct {
		ID string `json:"id"`
	}
	e.mustOK(tb, "POST", "/v1/agents", body, &a)
	return a.ID
}

func FuzzCreateAgentRequest(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`"x"`,
		`{"name":"a"}`,
		`{"name":"alice","model":"openai/gpt-4o-mini","tags":["x","y"],"description":"d","metadata":{"k":1}}`,
		`{"agent_type":"memgpt_v2_agent","memory_blocks":[{"label":"human","value":"Name: Ada","limit":200},{"label":"persona","value":"helpful"}]}`,
		`{"agent_type":"memgpt_agent","include_base_tools":false,"tools":["send_message"]}`,
		`{"agent_type":"letta_v1_agent","tools":["archival_memory_search","conversation_search"]}`,
		`{"agent_type":"react_agent"}`,
		`{"agent_type":"gpt_agent"}`,
		`{"agent_type":""}`,
		`{"tools":["no_such_tool"]}`,
		`{"tool_ids":["tool-00000000-0000-4000-8000-000000000000"]}`,
		`{"tool_ids":["not-an-id"]}`,
		`{"memory_blocks":[{"label":"h","value":"toolong","limit":3}]}`,
		`{"memory_blocks":[{"label":"h","value":"v","limit":-1}]}`,
		`{"memory_blocks":[{"label":"","value":"v"}]}`,
		`{"memory_blocks":[{"label":"h","value":"a"},{"label":"h","value":"b"}]}`,
		`{"memory_blocks":[{"label":"h","value":"v","read_only":true,"description":"d"}]}`,
		`{"memory_blocks":null,"tags":null,"metadata":null}`,
		`{"memory_blocks":[null]}`,
		`{"llm_config":{"handle":"openai/fake-model"}}`,
		`{"llm_config":{"model":"x"}}`,
		`{"llm_config":null,"embedding":"openai/text-embedding-3-small"}`,
		`{"system":"","name":"` + strings.Repeat("n", 300) + `"}`,
		`{"name":"\u0000\ud800 \u2028"}`,
		`{"name":"a"} trailing`,
		`{"name":1}`,
		`{"memory_blocks":{"label":"h"}}`,
		`{"metadata":{"nested":{"deep":[1,2,{"x":null}]}}}`,
		`{"tags":["` + strings.Repeat("t", 1000) + `"]}`,
		`{"memory_blocks":[{"label":"h","value":"v","limit":1e400}]}`,
		`{"memory_blocks":[{"label":"h","value":"v","limit":9223372036854775807}]}`,
		"{\"name\":\"\xff\xfe\"}",
		`{"name":"a","name":"b"}`,
		`{"compaction_settings":{"model":"openai/gpt-4o-mini"},"context_window_limit":64000,"parallel_tool_calls":true,"include_base_tool_rules":false,"initial_message_sequence":[]}`,
		`{"compaction_settings":{"mode":"all","clip_chars":null,"model_settings":{"provider_type":"openai"},"sliding_window_percentage":0.3}}`,
		`{"compaction_settings":{"unknown":1}}`,
		`{"compaction_settings":[]}`,
		`{"context_window_limit":0}`,
		`{"context_window_limit":-1}`,
		`{"context_window_limit":1e20}`,
		`{"llm_config":{"handle":"openai/x","context_window":-3}}`,
		`{"secrets":{"API_KEY":"v"},"tool_exec_environment_variables":{"OTHER":"w"}}`,
		`{"secrets":[{"key":"K","value":"v","description":null}]}`,
		`{"secrets":[{"key":"","value":"v"}]}`,
		`{"secrets":{"bad key":"v"}}`,
		`{"secrets":"x"}`,
		`{"model_settings":{"parallel_tool_calls":"yes"}}`,
		`{"initial_message_sequence":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"hello"}]},{"role":"system","content":"s"}]}`,
		`{"initial_message_sequence":[{"role":"tool","content":"x"}]}`,
		`{"initial_message_sequence":[{"role":"user"}]}`,
		`{"initial_message_sequence":[null]}`,
		`{"initial_message_sequence":{"role":"user"}}`,
	} {
		f.Add([]byte(seed))
	}
	env := newFuzzEnv(f, llmtest.Echo())
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := env.serve("POST", "/v1/agents", nil, body)
		if !env.checkAnswer(t, fmt.Sprintf("POST /v1/agents %q", body), rec) {
			return
		}
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || !strings.HasPrefix(a.ID, "agent-") {
			t.Fatalf("created agent without an ID: %v %s", err, rec.Body)
		}
		// What was created reads back, and goes (keeping memory bounded).
		path := "/v1/agents/" + a.ID
		for _, method := range []string{"GET", "DELETE"} {
			if rec := env.serve(method, path, nil, nil); rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s the agent created from %q: %d %s\nserver log:\n%s", method, body, rec.Code, rec.Body, env.log.take())
			}
		}
	})
}

func FuzzSendMessageRequest(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`{"messages":[]}`,
		`{"messages":null}`,
		`{"messages":[{"role":"user","content":"hi","otid":"o-1"}]}`,
		`{"messages":[{"role":"user","content":"hi","otid":"o-1"}]}`, // a retry
		`{"messages":[{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"two"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image","url":"x"}]}]}`,
		`{"messages":[{"role":"user","content":[]}]}`,
		`{"messages":[{"role":"user","content":null}]}`,
		`{"messages":[{"role":"user"}]}`,
		`{"messages":[{"role":"user","content":42}]}`,
		`{"messages":[{"role":"system","content":"be brief"}]}`,
		`{"messages":[{"role":"assistant","content":"no"}]}`,
		`{"messages":[{"role":"","content":"x"}]}`,
		`{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		`{"input":"hello"}`,
		`{"input":""}`,
		`{"input":"x","messages":[{"role":"user","content":"y"}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_steps":1}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_steps":0}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_steps":-1}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_steps":1000000}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_steps":1.5}`,
		`{"messages":[{"role":"user","content":"hi","otid":"` + strings.Repeat("o", 300) + `"}]}`,
		`{"messages":[{"role":"user","content":"` + strings.Repeat("x", 70000) + `"}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"streaming":true}`,
		`{"messages":[{"role":"user","content":"hi"}],"streaming":true,"stream_tokens":true}`,
		`{"messages":[{"type":"approval","approvals":[{"type":"approval","tool_call_id":"call-1","approve":true}]}]}`,
		`{"messages":[{"type":"approval","approve":false,"reason":"no"}]}`,
		`{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"c","tool_return":"r","status":"success"}]}]}`,
		`{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"c","tool_return":[{"text":"a"}]}]}]}`,
		`{"messages":[{"type":"approval","approvals":[{"tool_call_id":""}]}]}`,
		`{"messages":[{"type":"tool_return","tool_returns":[{"tool_call_id":"c","tool_return":5}]}]}`,
		`{"messages":[{"type":"nonsense","content":"x"}]}`,
		`{"client_tools":[{"name":"send_message","parameters":{}}],"messages":[{"role":"user","content":"hi"}]}`,
		`{"client_tools":[{"name":"lookup","description":"d","parameters":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]}`,
		`{"client_tools":[{"name":""}],"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":"\u0000\ud800"}]}`,
		"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
		`{"messages":[{"role":"user","content":"hi"}]} {}`,
		`{"messages":{"role":"user"}}`,
	} {
		f.Add([]byte(seed))
	}
	env := newFuzzEnv(f, llmtest.Echo())
	agentID := env.createFuzzAgent(f, map[string]any{"name": "fuzz", "agent_type": "memgpt_v2_agent",
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}}})
	path := "/v1/agents/" + agentID + "/messages"
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := env.serve("POST", path, nil, body)
		if env.checkAnswer(t, fmt.Sprintf("POST …/messages %q", body), rec) && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			var resp struct {
				Messages   []json.RawMessage `json:"messages"`
				StopReason *struct {
					StopReason string `json:"stop_reason"`
				} `json:"stop_reason"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.StopReason == nil || resp.StopReason.StopReason == "" {
				t.Fatalf("200 without messages and a stop reason: %v %s", err, rec.Body)
			}
		}
		env.reset(t, path, body)
	})
}

func FuzzListQuery(f *testing.F) {
	for _, seed := range []string{
		``,
		`limit=1`,
		`limit=0`,
		`limit=-1`,
		`limit=1000`,
		`limit=1001`,
		`limit=99999999999999999999`,
		`limit=abc`,
		`limit=`,
		`limit=1&limit=2`,
		`order=asc`,
		`order=desc`,
		`order=sideways`,
		`ascending=true`,
		`ascending=false`,
		`ascending=maybe`,
		`after={A0}`,
		`before={A2}&limit=1`,
		`after={A1}&before={A0}`,
		`after=agent-00000000-0000-4000-8000-000000000000`,
		`after=not-an-id`,
		`after={M0}&order=asc&limit=2`,
		`before={M1}`,
		`after={P0}`,
		`after={B0}&limit=1`,
		`before={B1}&order=asc`,
		`after={T0}`,
		`label=human`,
		`name=send_message`,
		`name=alpha`,
		`name=`,
		`query_text=ALP`,
		`query_text=%00`,
		`tags=red`,
		`tags=red&tags=blue&match_all_tags=true`,
		`tags=&match_all_tags=true`,
		`agent_id={A0}`,
		`agent_id=nope`,
		`query=memory&top_k=3`,
		`query=&top_k=0`,
		`query=x&tags=a&tag_match_mode=all`,
		`query=x&start_datetime=2024-01-01T00:00:00Z&end_datetime=2030-01-01`,
		`query=x&start_datetime=yesterday`,
		`search=note`,
		`%zz=1&limit=%`,
		`;;&&==`,
		"limit=1\x00",
		`a=` + strings.Repeat("b", 5000),
	} {
		f.Add(seed)
	}
	env := newFuzzEnv(f, llmtest.Echo())
	for i, a := range []struct {
		name string
		tags []string
	}{{"alpha", []string{"red"}}, {"beta", []string{"red", "blue"}}, {"gamma", nil}} {
		id := env.createFuzzAgent(f, map[string]any{"name": a.name, "tags": a.tags, "agent_type": "memgpt_v2_agent",
			"memory_blocks": []map[string]any{{"label": "human", "value": "h"}, {"label": "persona", "value": "p"}}})
		env.vars[fmt.Sprintf("{A%d}", i)] = id
	}
	a0 := env.vars["{A0}"]
	var ag struct {
		Blocks []struct{ ID string } `json:"blocks"`
		Tools  []struct{ ID string } `json:"tools"`
	}
	env.mustOK(f, "GET", "/v1/agents/"+a0, nil, &ag)
	env.vars["{B0}"], env.vars["{B1}"], env.vars["{T0}"] = ag.Blocks[0].ID, ag.Blocks[1].ID, ag.Tools[0].ID
	for i := range 2 {
		env.mustOK(f, "POST", "/v1/agents/"+a0+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": fmt.Sprintf("message %d", i)}}}, nil)
		var p []struct {
			ID string `json:"id"`
		}
		env.mustOK(f, "POST", "/v1/agents/"+a0+"/archival-memory", map[string]any{"text": fmt.Sprintf("note %d about memory", i), "tags": []string{"a"}}, &p)
		env.vars[fmt.Sprintf("{P%d}", i)] = p[0].ID
	}
	var msgs []struct {
		ID string `json:"id"`
	}
	env.mustOK(f, "GET", "/v1/agents/"+a0+"/messages?order=asc", nil, &msgs)
	env.vars["{M0}"], env.vars["{M1}"] = msgs[0].ID, msgs[len(msgs)-1].ID
	// Every list that takes Letta's list parameters (one absent from this
	// build answers 404, which the checks accept).
	paths := []string{"/v1/agents", "/v1/agents/" + a0 + "/messages", "/v1/agents/" + a0 + "/archival-memory",
		"/v1/agents/" + a0 + "/archival-memory/search", "/v1/runs", "/v1/agents/" + a0 + "/core-memory/blocks",
		"/v1/agents/" + a0 + "/tools", "/v1/tools", "/v1/blocks", "/v1/providers"}
	f.Fuzz(func(t *testing.T, query string) {
		query = env.expand(query)
		for _, path := range paths {
			rec := env.serve("GET", path, &query, nil)
			if !env.checkAnswer(t, fmt.Sprintf("GET %s?%q", path, query), rec) {
				continue
			}
			if strings.HasSuffix(path, "/search") {
				continue
			}
			var list []json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
				t.Fatalf("GET %s?%q: 200 with a body that is not a list: %v %.500s", path, query, err, rec.Body)
			}
			// The message list's limit counts log entries, which may show
			// as more or fewer Letta messages; other lists hold to it.
			q, _ := url.ParseQuery(query)
			if n, err := strconv.Atoi(q.Get("limit")); err == nil && len(list) > n && !strings.HasSuffix(path, "/messages") {
				t.Fatalf("GET %s?%q: %d items over the limit %d", path, query, len(list), n)
			}
		}
	})
}

// boundedModel is a streaming model whose calls end after a short while,
// so that a fuzzed "@sleep" cannot stall the fuzzer.
type boundedModel struct{ c *openai.Client }

const boundedModelTimeout = 300 * time.Millisecond

func (m boundedModel) Complete(ctx context.Context, req llm.Request) (*llm.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, boundedModelTimeout)
	defer cancel()
	return m.c.Complete(ctx, req)
}

func (m boundedModel) CompleteStream(ctx context.Context, req llm.Request, onDelta func(llm.Delta) error) (*llm.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, boundedModelTimeout)
	defer cancel()
	return m.c.CompleteStream(ctx, req, onDelta)
}

// FuzzSSE drives the streaming endpoints over the fake OpenAI-compatible
// model (through the real OpenAI client, streaming), with a valid request
// built from fuzzed parts, so that every input reaches the stream and the
// fuzzed message text steers the model: "@tool NAME {json}", "@reply
// text", "@error 500", "@sleep 1s" lines. flags: 1 offers a client tool
// "lookup" (calling it pauses the run for approval), 2 sends with a fixed
// otid (a retry after the first), 4 uses POST …/messages with
// "streaming": true instead of …/messages/stream. The answer must be a
// well-formed event stream or a JSON error. (Raw request bodies, streaming
// ones included, are FuzzSendMessageRequest's.)
func FuzzSSE(f *testing.F) {
	for _, seed := range []struct {
		text     string
		tokens   bool
		maxSteps int
		flags    uint8
	}{
		{"hi", false, 0, 0},
		{"hi", true, 0, 0},
		{"hi", true, 0, 4},
		{"@reply line one\n@reply line two", true, 0, 0},
		{"@reply \"quoted\" \\ back\u2028slash \x00 \xff", true, 0, 0},
		{`@tool core_memory_append {"label":"human","content":"likes tea"}`, true, 0, 0},
		{"@tool memory_insert {\"label\":\"human\",\"new_str\":\"x\"}\n@tool archival_memory_insert {\"content\":\"n\"}", false, 0, 4},
		{"@tool no_such_tool {}", false, 0, 0},
		{`@tool send_message {"message":5}`, true, 0, 0},
		{"@tool send_message not json", false, 0, 0},
		{"@error 500 boom", true, 0, 0},
		{"@error 429", false, 0, 4},
		{"@error 400 bad", false, 0, 0},
		{"@sleep 2s", false, 0, 0},
		{"@sleep 10ms\nhello", true, 0, 0},
		{"hi", false, 1, 0},
		{`@tool conversation_search {"query":"hi"}`, true, 1, 0},
		{"hi", false, -1, 0},
		{"hi", false, 1 << 20, 0},
		{"@tool lookup {}", false, 0, 1},
		{"@tool lookup {}\n@tool send_message {\"message\":\"both\"}", true, 0, 1},
		{"retried", true, 0, 2},
		{"retried", true, 0, 2},
		{"", false, 0, 0},
		{strings.Repeat("long ", 2000), true, 0, 0},
	} {
		f.Add(seed.text, seed.tokens, seed.maxSteps, seed.flags)
	}
	fake := httptest.NewServer(fakellm.New(fakellm.Options{}))
	f.Cleanup(fake.Close)
	c, err := openai.New(openai.Config{BaseURL: fake.URL + "/v1", MaxAttempts: 1})
	if err != nil {
		f.Fatal(err)
	}
	env := newFuzzEnv(f, boundedModel{c})
	agentID := env.createFuzzAgent(f, map[string]any{"name": "sse", "agent_type": "memgpt_v2_agent", "model": "openai/fake-model",
		"tools":         []string{"core_memory_append"},
		"memory_blocks": []map[string]any{{"label": "human", "value": "Name: Ada"}}})
	path := "/v1/agents/" + agentID + "/messages"
	f.Fuzz(func(t *testing.T, text string, tokens bool, maxSteps int, flags uint8) {
		msg := map[string]any{"role": "user", "content": text}
		if flags&2 != 0 {
			msg["otid"] = "fuzz-sse-otid"
		}
		req := map[string]any{"messages": []any{msg}, "stream_tokens": tokens, "max_steps": maxSteps}
		if flags&1 != 0 {
			req["client_tools"] = []any{map[string]any{"name": "lookup", "description": "Looks up.", "parameters": map[string]any{"type": "object"}}}
		}
		target := path + "/stream"
		if flags&4 != 0 {
			target, req["streaming"] = path, true
		}
		body, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		rec := env.serve("POST", target, nil, body)
		if env.checkAnswer(t, fmt.Sprintf("POST %s %s", target, body), rec) {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Fatalf("POST %s %s: 200 with Content-Type %q", target, body, ct)
			}
		}
		env.reset(t, path, body)
	})
}

func FuzzMessageSearchRequest(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`{"query":"hello"}`,
		`{"query":"hello","agent_id":"{A0}"}`,
		`{"query":"hello","agent_id":"{A0}","conversation_id":"default"}`,
		`{"query":"hello","conversation_id":"default"}`,
		`{"query":"hello","conversation_id":"conv-00000000-0000-4000-8000-000000000000"}`,
		`{"query":"hello","roles":["user","assistant","tool","function","system","approval","summary"]}`,
		`{"query":"hello","roles":["robot"]}`,
		`{"query":"hello","roles":null,"limit":null,"search_mode":null}`,
		`{"query":"x","limit":0}`,
		`{"query":"x","limit":100,"search_mode":"vector"}`,
		`{"query":"x","limit":1e3}`,
		`{"query":"x","start_date":"2020-01-01T00:00:00Z","end_date":"2030-01-01"}`,
		`{"query":"x","start_date":"yesterday"}`,
		`{"query":"the a of","agent_id":"agent-1"}`,
		`{"query":1}`,
		`{"query":"` + strings.Repeat("word ", 5000) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	env := newFuzzEnv(f, llmtest.Echo())
	a0 := env.createFuzzAgent(f, map[string]any{"name": "searched", "agent_type": "memgpt_v2_agent"})
	env.vars["{A0}"] = a0
	env.mustOK(f, "POST", "/v1/agents/"+a0+"/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "hello world"}}}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		body = []byte(env.expand(string(body)))
		for _, path := range []string{"/v1/messages/search", "/v1/agents/messages/search"} {
			rec := env.serve("POST", path, nil, body)
			if !env.checkAnswer(t, fmt.Sprintf("POST %s %q", path, body), rec) {
				continue
			}
			var list []json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) > 100 {
				t.Fatalf("POST %s %q: 200 with %d items (%v): %.500s", path, body, len(list), err, rec.Body)
			}
		}
	})
}
