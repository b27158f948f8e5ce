package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tests of run handling against real processes: `kelpie serve` on SQLite
// and `kelpie fake-llm`, whose "@sleep" directive holds a run in its model
// call. They cover a delete during a run (every waiting request ends),
// the resumption at startup of the runs a crash interrupted, and the
// draining shutdown.

// Bounds of the run tests.
const (
	// runsAnswerTimeout bounds the wait for a request a test expects
	// answered promptly; the bugs these tests guard against left such
	// requests waiting for minutes.
	runsAnswerTimeout = 10 * time.Second
	// runsResumeTimeout bounds the wait, after a restart, for the
	// interrupted runs to finish on their own.
	runsResumeTimeout = 20 * time.Second
)

// runsEnv is a fake model and a data directory that `kelpie serve`
// processes run on, one at a time.
type runsEnv struct {
	t       *testing.T
	dataDir string
	srv     *child
	base    string // http://addr of the running server
	client  *http.Client
}

// newRunsEnv starts the fake model and points the servers at it.
func newRunsEnv(t *testing.T) *runsEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("builds kelpie and runs real servers; skipped with -short")
	}
	llm := start(t, "fake-llm", "--addr", "127.0.0.1:0")
	llmURL := ""
	for deadline := time.Now().Add(readyTimeout); llmURL == ""; {
		if m := crashFakeLLMListening.FindStringSubmatch(llm.stderr.String()); m != nil {
			llmURL = m[1]
			break
		}
		select {
		case <-llm.done:
			t.Fatalf("fake-llm exited before listening: %v", llm.err)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake-llm: no listening line within %v", readyTimeout)
		}
	}
	t.Setenv("OPENAI_BASE_URL", llmURL)
	t.Setenv("OPENAI_API_KEY", "unused")
	t.Setenv("OPENAI_MODELS", "")
	t.Setenv("ANTHROPIC_API_KEY", "")
	return &runsEnv{t: t, dataDir: filepath.Join(t.TempDir(), "data"), client: &http.Client{Timeout: runsAnswerTimeout}}
}

// serve starts `kelpie serve` on the data directory and waits until it
// answers.
func (e *runsEnv) serve(args ...string) *child {
	e.t.Helper()
	addr := freeAddr(e.t)
	e.srv = start(e.t, append([]string{"serve", "--addr", addr, "--data-dir", e.dataDir}, args...)...)
	waitHealthy(e.t, e.srv, addr)
	e.base = "http://" + addr
	return e.srv
}

// do sends a JSON request and returns the answer; status 0 with the
// error when there was none.
func (e *runsEnv) do(ctx context.Context, method, path string, body any) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

// must sends a request that has to answer 200 and decodes its body into
// out (if not nil).
func (e *runsEnv) must(method, path string, body, out any) {
	e.t.Helper()
	status, _, b, err := e.do(context.Background(), method, path, body)
	if err != nil || status != http.StatusOK {
		e.t.Fatalf("%s %s: %d %s %v", method, path, status, b, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode: %v\n%s", method, path, err, b)
		}
	}
}

// createAgents creates n agents on the fake model.
func (e *runsEnv) createAgents(n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		var a struct {
			ID string `json:"id"`
		}
		e.must("POST", "/v1/agents", map[string]any{"name": fmt.Sprintf("runs-%d", i), "model": crashModel,
			"memory_blocks": []map[string]any{{"label": "human", "value": "Facts:"}, {"label": "persona", "value": "I test runs."}}}, &a)
		ids = append(ids, a.ID)
	}
	return ids
}

// startAsync starts a background run on the agent and returns its ID.
func (e *runsEnv) startAsync(agentID, text string) string {
	e.t.Helper()
	var run struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	e.must("POST", "/v1/agents/"+agentID+"/messages/async", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}}, &run)
	if run.ID == "" {
		e.t.Fatalf("async send to %s: no run ID", agentID)
	}
	return run.ID
}

// runStatuses reads GET /v1/runs, which reads storage and activates no
// agent, and returns each run's status and stop reason.
func (e *runsEnv) runStatuses() map[string]string {
	e.t.Helper()
	var runs []struct {
		ID         string  `json:"id"`
		Status     string  `json:"status"`
		StopReason *string `json:"stop_reason"`
	}
	e.must("GET", "/v1/runs?limit=1000", nil, &runs)
	out := make(map[string]string, len(runs))
	for _, r := range runs {
		out[r.ID] = r.Status
		if r.StopReason != nil {
			out[r.ID] += "/" + *r.StopReason
		}
	}
	return out
}

// sseEvent is one server-sent event: its name ("" for data events) and
// data.
type sseEvent struct {
	name, data string
}

// stream is one streaming request's outcome: the status, the events
// received, the transport error that ended it (nil for a clean end) and
// when it ended.
type stream struct {
	status int
	events []sseEvent
	err    error
	end    time.Time
}

// types returns the message_type (or the event name, or the raw data) of
// each event, for failure messages and checks.
func (s *stream) types() []string {
	var out []string
	for _, ev := range s.events {
		var m struct {
			MessageType string `json:"message_type"`
		}
		switch {
		case ev.name != "":
			out = append(out, "event:"+ev.name)
		case json.Unmarshal([]byte(ev.data), &m) == nil && m.MessageType != "":
			out = append(out, m.MessageType)
		default:
			out = append(out, ev.data)
		}
	}
	return out
}

// endsWithErrorThenDone reports whether the stream's last events are an
// error event and [DONE], and returns the error event's data.
func (s *stream) endsWithErrorThenDone() (string, bool) {
	n := len(s.events)
	if s.err != nil || n < 2 || s.events[n-1].data != "[DONE]" || s.events[n-2].name != "error" {
		return "", false
	}
	return s.events[n-2].data, true
}

// postStream POSTs body to path and reads the event stream to its end.
func (e *runsEnv) postStream(ctx context.Context, path string, body any) *stream {
	out := &stream{}
	defer func() { out.end = time.Now() }()
	b, err := json.Marshal(body)
	if err != nil {
		out.err = err
		return out
	}
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+path, bytes.NewReader(b))
	if err != nil {
		out.err = err
		return out
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{}).Do(req) // bounded by ctx, not by a client timeout
	if err != nil {
		out.err = err
		return out
	}
	defer res.Body.Close()
	out.status = res.StatusCode
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		case line == "" && ev.data != "":
			out.events = append(out.events, ev)
			ev = sseEvent{}
		}
	}
	out.err = sc.Err()
	return out
}

// sendBodyText is a send of one user message.
func sendBodyText(text string) map[string]any {
	return map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}}
}

// TestDeleteAgentMidRun deletes agents while a synchronous send, a stream
// and an async run (with a follower) are in their model calls, and checks
// that every waiting request ends at once: the send with a 404 naming the
// agent, the stream and the follower with an error event and [DONE].
func TestDeleteAgentMidRun(t *testing.T) {
	e := newRunsEnv(t)
	e.serve()
	ids := e.createAgents(3)
	syncAgent, streamAgent, asyncAgent := ids[0], ids[1], ids[2]
	const text = "x\n@sleep 3s"

	ctx, cancel := context.WithTimeout(context.Background(), runsAnswerTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var syncStatus int
	var syncBody []byte
	var syncErr error
	var syncEnd time.Time
	wg.Go(func() {
		syncStatus, _, syncBody, syncErr = e.do(ctx, "POST", "/v1/agents/"+syncAgent+"/messages", sendBodyText(text))
		syncEnd = time.Now()
	})
	var streamed, followed *stream
	wg.Go(func() { streamed = e.postStream(ctx, "/v1/agents/"+streamAgent+"/messages/stream", sendBodyText(text)) })
	runID := e.startAsync(asyncAgent, text)
	wg.Go(func() { followed = e.postStream(ctx, "/v1/runs/"+runID+"/stream", map[string]any{}) })

	time.Sleep(700 * time.Millisecond) // every run is in its model call
	deleted := time.Now()
	for _, id := range ids {
		e.must("DELETE", "/v1/agents/"+id, nil, nil)
	}
	wg.Wait()

	if syncErr != nil || syncStatus != http.StatusNotFound {
		t.Errorf("sync send to the deleted agent: %d %s %v; want 404 at once", syncStatus, syncBody, syncErr)
	} else {
		var detail struct {
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(syncBody, &detail); err != nil || !strings.Contains(detail.Detail, syncAgent) {
			t.Errorf("sync send's 404 body %s: want a JSON detail naming agent %s", syncBody, syncAgent)
		}
		t.Logf("sync send answered %v after the delete: %s", syncEnd.Sub(deleted).Round(time.Millisecond), syncBody)
	}
	for name, s := range map[string]*stream{"stream": streamed, "follow": followed} {
		data, ok := s.endsWithErrorThenDone()
		if s.status != http.StatusOK || !ok {
			t.Errorf("%s of the deleted agent's run: status %d, events %v, err %v; want an error event then [DONE]", name, s.status, s.types(), s.err)
			continue
		}
		if !strings.Contains(data, "not found") {
			t.Errorf("%s's error event %s: want it to say the agent was not found", name, data)
		}
		t.Logf("%s ended %v after the delete: %v", name, s.end.Sub(deleted).Round(time.Millisecond), s.types())
	}
	if st := e.runStatuses(); len(st) != 0 {
		t.Errorf("runs listed after their agents' delete: %v", st)
	}
}

// TestCrashResumesRuns kills the server with SIGKILL while async runs are
// in their model calls, restarts it, and checks that the runs finish on
// their own (no request touches their agents: GET /v1/runs reads storage
// only), and that a send afterwards is not refused as busy.
func TestCrashResumesRuns(t *testing.T) {
	const agents = 15
	e := newRunsEnv(t)
	srv := e.serve()
	ids := e.createAgents(agents)
	runs := make(map[string]bool)
	for _, id := range ids {
		runs[e.startAsync(id, "remember me\n@sleep 3s")] = true
	}
	time.Sleep(time.Second)
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	srv.wait(t, exitTimeout)

	e.serve()
	restarted := time.Now()
	var st map[string]string
	for {
		st = e.runStatuses()
		done := 0
		for id := range runs {
			if s, ok := st[id]; ok && !strings.HasPrefix(s, "running") && !strings.HasPrefix(s, "created") {
				done++
			}
		}
		if done == len(runs) {
			break
		}
		if time.Since(restarted) > runsResumeTimeout {
			t.Fatalf("%d of %d interrupted runs finished %v after the restart, with no request to their agents: %v", done, len(runs), runsResumeTimeout, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all %d interrupted runs finished %v after the restart", len(runs), time.Since(restarted).Round(time.Millisecond))
	for id := range runs {
		if st[id] != "completed/end_turn" {
			t.Errorf("run %s: %s, want completed/end_turn", id, st[id])
		}
	}
	for _, id := range ids {
		status, _, b, err := e.do(context.Background(), "POST", "/v1/agents/"+id+"/messages", sendBodyText("and now?"))
		if err != nil || status != http.StatusOK {
			t.Errorf("send to %s after the resumed run: %d %s %v; want 200", id, status, b, err)
		}
	}
}

// TestShutdownDrains sends SIGTERM with runs in flight, short enough to
// finish within the drain timeout: every caller gets its full answer, a
// send during the drain gets 503 with Retry-After, and the server exits
// 0 with every run completed.
func TestShutdownDrains(t *testing.T) {
	const asyncRuns, streams = 20, 10
	e := newRunsEnv(t)
	srv := e.serve("--drain-timeout", "30s")
	ids := e.createAgents(asyncRuns + streams + 1)
	runs := make(map[string]bool)
	for _, id := range ids[:asyncRuns] {
		runs[e.startAsync(id, "async\n@sleep 2s")] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]*stream, streams)
	for i, id := range ids[asyncRuns : asyncRuns+streams] {
		wg.Go(func() {
			results[i] = e.postStream(ctx, "/v1/agents/"+id+"/messages/stream", sendBodyText("stream\n@sleep 2s"))
		})
	}
	time.Sleep(500 * time.Millisecond)
	signalled := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A new send while the runs drain is refused.
	var status int
	var header http.Header
	var body []byte
	var err error
	for deadline := time.Now().Add(runsAnswerTimeout); ; time.Sleep(20 * time.Millisecond) {
		status, header, body, err = e.do(ctx, "POST", "/v1/agents/"+ids[len(ids)-1]+"/messages", sendBodyText("too late"))
		if err != nil || status != http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") == "" {
		t.Errorf("send during the drain: %d (Retry-After %q) %s %v; want 503 with Retry-After", status, header.Get("Retry-After"), body, err)
	}
	wg.Wait()
	code := srv.wait(t, exitTimeout)
	t.Logf("%d async runs and %d streams in flight: exited %v after SIGTERM", asyncRuns, streams, time.Since(signalled).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	for i, s := range results {
		tys := s.types()
		if s.status != http.StatusOK || s.err != nil || len(tys) < 2 || tys[len(tys)-1] != "[DONE]" || !slices.Contains(tys, "assistant_message") || slices.Contains(tys, "event:error") {
			t.Errorf("stream %d: status %d, events %v, err %v; want the whole answer", i, s.status, tys, s.err)
		}
	}
	if logs := srv.stderr.String(); !strings.Contains(logs, "shutdown: runs drained") || !strings.Contains(logs, "shutdown complete") {
		t.Errorf("log lacks the drain and the completed shutdown:\n%s", logs)
	}

	e.serve()
	st := e.runStatuses()
	for id := range runs {
		if st[id] != "completed/end_turn" {
			t.Errorf("async run %s after the drained shutdown: %q, want completed/end_turn", id, st[id])
		}
	}
}

// TestShutdownInterruptsRuns sends SIGTERM with runs that outlast the
// drain timeout: the stream gets an error event and [DONE], the
// synchronous send a 503 JSON error, the server exits 0 soon after the
// bound, and the next start resumes the runs to completion on its own.
func TestShutdownInterruptsRuns(t *testing.T) {
	e := newRunsEnv(t)
	srv := e.serve("--drain-timeout", "1s")
	ids := e.createAgents(4)
	runs := map[string]bool{e.startAsync(ids[0], "async\n@sleep 5s"): true, e.startAsync(ids[1], "async\n@sleep 5s"): true}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var streamed *stream
	var syncStatus int
	var syncHeader http.Header
	var syncBody []byte
	var syncErr error
	wg.Go(func() {
		streamed = e.postStream(ctx, "/v1/agents/"+ids[2]+"/messages/stream", sendBodyText("stream\n@sleep 5s"))
	})
	wg.Go(func() {
		syncStatus, syncHeader, syncBody, syncErr = e.do(ctx, "POST", "/v1/agents/"+ids[3]+"/messages", sendBodyText("sync\n@sleep 5s"))
	})
	time.Sleep(500 * time.Millisecond)
	signalled := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	answered := time.Since(signalled)
	code := srv.wait(t, exitTimeout)
	t.Logf("callers answered %v and the server exited %v after SIGTERM (drain timeout 1s)", answered.Round(time.Millisecond), time.Since(signalled).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if answered > 4*time.Second {
		t.Errorf("callers answered %v after SIGTERM; want soon after the 1s drain timeout, before the runs' 5s model calls end", answered)
	}
	if data, ok := streamed.endsWithErrorThenDone(); !ok || !strings.Contains(data, "shutting down") {
		t.Errorf("stream interrupted by the shutdown: status %d, events %v, err %v; want an error event saying the server is shutting down, then [DONE]", streamed.status, streamed.types(), streamed.err)
	}
	if syncErr != nil || syncStatus != http.StatusServiceUnavailable || syncHeader.Get("Retry-After") == "" || !strings.Contains(string(syncBody), "shutting down") {
		t.Errorf("sync send interrupted by the shutdown: %d %s %v; want 503 with Retry-After and a detail saying the server is shutting down", syncStatus, syncBody, syncErr)
	}
	if logs := srv.stderr.String(); !strings.Contains(logs, "drain timeout reached") || !strings.Contains(logs, "shutdown complete") {
		t.Errorf("log lacks the interrupted drain and the completed shutdown:\n%s", logs)
	}

	// The interrupted runs (the async ones, and those of the stream and
	// the send) resume at the next start, with no request to their agents.
	e.serve()
	restarted := time.Now()
	for {
		st := e.runStatuses()
		if len(st) != len(ids) {
			t.Fatalf("after the restart %d runs are listed, want %d: %v", len(st), len(ids), st)
		}
		done := 0
		for _, s := range st {
			if s == "completed/end_turn" {
				done++
			}
		}
		if done == len(st) {
			break
		}
		if time.Since(restarted) > runsResumeTimeout {
			t.Fatalf("runs interrupted by the shutdown, %v after the restart: %v (async: %v)", runsResumeTimeout, st, runs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the interrupted runs completed %v after the restart", time.Since(restarted).Round(time.Millisecond))
}
