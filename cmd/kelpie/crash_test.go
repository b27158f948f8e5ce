package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test: `kelpie serve` (SQLite) under concurrent clients whose
// messages make the agents call memory tools, killed with SIGKILL while
// requests are in flight, restarted on the same data directory, and then
// checked for lost acknowledged messages, tool calls without returns,
// duplicated messages, memory that disagrees with the log, and agents that
// no longer answer.
//
// It runs with `go test ./cmd/kelpie/`: a few seconds once the binary is
// built (the build is shared with the other integration tests, and made
// with -race when the tests run with it). It is skipped only under
// -short; a setup failure fails it. A failure
// logs the seed; rerun it with KELPIE_CRASH_SEED=<seed>. The seed fixes the
// workload (which agent, which message, the kill threshold) but not the
// timing, so a rerun is a close replay, not an exact one.

// Sizes and bounds of the crash test.
const (
	crashAgents  = 6
	crashClients = 6
	// crashAcksMin is the least number of acknowledged sends before the
	// kill; the kill comes after crashAcksMin + rand(crashAcksSpread).
	crashAcksMin    = 20
	crashAcksSpread = 20
	// crashInFlightMin requests must be in flight at the kill.
	crashInFlightMin = 2
	// crashLoadTimeout bounds the wait for enough acknowledged sends.
	crashLoadTimeout = 40 * time.Second
	// crashHammer is how long clients keep sending to the dead server.
	crashHammer = 300 * time.Millisecond
	// crashBusyTimeout bounds retries of a 409 after the restart, while a
	// resumed run finishes.
	crashBusyTimeout = 20 * time.Second
	crashSendTimeout = 20 * time.Second
	crashModel       = "openai/fake-model"
	crashSeedEnv     = "KELPIE_CRASH_SEED"
)

// crashScript slows down every step that follows a tool result, so that a
// kill often lands between a run's committed tool step and its next step:
// the restarted server must resume those runs.
const crashScript = `[{"match": {"last_role": "tool"}, "reply": {"sleep": "40ms"}}]`

var crashFakeLLMListening = regexp.MustCompile(`fake LLM listening on (http://127\.0\.0\.1:\d+/v1)`)

// crashMsg is a Letta message as GET …/messages and sends return it.
type crashMsg struct {
	ID          string  `json:"id"`
	MessageType string  `json:"message_type"`
	OTID        *string `json:"otid"`
	SeqID       *uint64 `json:"seq_id"`
	RunID       *string `json:"run_id"`
	Content     *string `json:"content"`
	ToolCall    *struct {
		Name       string `json:"name"`
		Arguments  string `json:"arguments"`
		ToolCallID string `json:"tool_call_id"`
	} `json:"tool_call"`
	ToolReturn *string `json:"tool_return"`
	Status     string  `json:"status"`
	ToolCallID string  `json:"tool_call_id"`
}

func (m *crashMsg) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// crashSend is one send a client made and what came of it.
type crashSend struct {
	client, agent int
	otid, text    string
	// facts and notes are what the message's tool calls write to the
	// human block and to archival memory.
	facts, notes []string
	start, end   time.Time
	status       int   // 0: no HTTP answer
	err          error // the transport error when status is 0
	body         []byte
	msgs         []crashMsg // the response's messages when status is 200
}

func (s *crashSend) String() string {
	return fmt.Sprintf("send otid=%s client=%d agent=%d status=%d err=%v text=%q", s.otid, s.client, s.agent, s.status, s.err, s.text)
}

// crashHarness holds the servers' addresses and the agents.
type crashHarness struct {
	t      *testing.T
	base   string // http://addr
	client *http.Client
	agents []string
}

// do sends a JSON request and returns the status and body; status 0 with
// the error when the server did not answer.
func (h *crashHarness) do(ctx context.Context, client *http.Client, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, out, nil
}

// must sends a request that has to answer 200 and decodes the body into
// out (if not nil).
func (h *crashHarness) must(method, path string, body, out any) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), crashSendTimeout)
	defer cancel()
	status, b, err := h.do(ctx, h.client, method, path, body)
	if err != nil || status != http.StatusOK {
		h.t.Fatalf("%s %s: %d %s %v", method, path, status, b, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			h.t.Fatalf("%s %s: decode: %v\n%s", method, path, err, b)
		}
	}
}

// sendBody is a LettaRequest with one user message.
func sendBody(text, otid string) map[string]any {
	return map[string]any{"messages": []map[string]any{{"role": "user", "content": text, "otid": otid}}}
}

// sendUntilAccepted sends text with otid to the agent, retrying while the
// agent is busy (409) with a run the restart resumed; it returns the last
// answer and the number of 409s before it.
func (h *crashHarness) sendUntilAccepted(agentID, text, otid string) (int, []byte, int, error) {
	deadline := time.Now().Add(crashBusyTimeout)
	busy := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), crashSendTimeout)
		status, b, err := h.do(ctx, h.client, "POST", "/v1/agents/"+agentID+"/messages", sendBody(text, otid))
		cancel()
		if err != nil || status != http.StatusConflict || time.Now().After(deadline) {
			return status, b, busy, err
		}
		busy++
		time.Sleep(50 * time.Millisecond)
	}
}

// messages pages through an agent's whole log, oldest first, with random
// page sizes.
func (h *crashHarness) messages(agentID string, rng *rand.Rand) []crashMsg {
	h.t.Helper()
	var all []crashMsg
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			h.t.Fatalf("agent %s: paging does not end", agentID)
		}
		q := url.Values{"order": {"asc"}, "limit": {strconv.Itoa(5 + rng.IntN(60))}}
		if after != "" {
			q.Set("after", after)
		}
		var page []crashMsg
		h.must("GET", "/v1/agents/"+agentID+"/messages?"+q.Encode(), nil, &page)
		// The limit counts log entries, and send_message's returns are
		// hidden, so a page can be short before the end; only an empty
		// page ends the log. (With limit 1 a page holding only a hidden
		// return would be empty too early; from 2 up one always shows,
		// since a hidden return follows its visible call.)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
}

// TestCrashRecovery kills `kelpie serve` with SIGKILL under load and checks
// what the restarted server shows. Skipped with -short (it builds the
// binary and runs two servers and a fake model for several seconds).
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds kelpie and runs real servers; skipped with -short")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
		seed = v
	}
	t.Logf("seed=%d (replay the workload with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b656c706965))

	// The fake model, and the environment the servers inherit.
	dir := t.TempDir()
	scriptPath := filepath.Join(dir, "script.json")
	if err := os.WriteFile(scriptPath, []byte(crashScript), 0o644); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	kelpieBinary(t)
	t.Logf("binary ready in %v", time.Since(began).Round(time.Millisecond))
	llm := start(t, "fake-llm", "--addr", "127.0.0.1:0", "--script", scriptPath)
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

	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	srv := start(t, "serve", "--addr", addr, "--data-dir", dataDir)
	waitHealthy(t, srv, addr)
	h := &crashHarness{t: t, base: "http://" + addr, client: &http.Client{Timeout: crashSendTimeout}}

	for i := range crashAgents {
		var a struct {
			ID string `json:"id"`
		}
		h.must("POST", "/v1/agents", map[string]any{
			"name": fmt.Sprintf("crash-%d", i), "agent_type": "memgpt_v2_agent", "model": crashModel,
			// Named, so that the test does not depend on the type's defaults.
			"tools": []string{"send_message", "core_memory_append", "archival_memory_insert"},
			"memory_blocks": []map[string]any{
				{"label": "human", "value": "Facts:", "limit": 20000},
				{"label": "persona", "value": "I am a crash-test agent."},
			},
		}, &a)
		h.agents = append(h.agents, a.ID)
	}

	loadBegan := time.Now()
	// The load: each client sends mostly to its own agent and sometimes to
	// another (which may be busy: 409).
	var (
		mu       sync.Mutex
		sends    []*crashSend
		acks     atomic.Int64
		inFlight atomic.Int64
		killed   atomic.Bool
	)
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var wg sync.WaitGroup
	for c := range crashClients {
		crng := rand.New(rand.NewPCG(seed, uint64(c)+1))
		client := &http.Client{Timeout: crashSendTimeout}
		wg.Go(func() {
			for k := 0; loadCtx.Err() == nil; k++ {
				s := &crashSend{client: c, agent: c % crashAgents, otid: fmt.Sprintf("otid-%d-c%d-%d", seed%100000, c, k)}
				if crng.IntN(5) == 0 {
					s.agent = crng.IntN(crashAgents)
				}
				fact, note := "fact "+s.otid, "note "+s.otid
				coreCall := `@tool core_memory_append {"label": "human", "content": "` + fact + `"}`
				archCall := `@tool archival_memory_insert {"content": "` + note + `"}`
				switch n := crng.IntN(20); {
				case n < 6:
					s.text = fmt.Sprintf("hello %s", s.otid)
				case n < 8:
					s.text = fmt.Sprintf("slow hello %s\n@sleep 30ms", s.otid)
				case n < 13:
					s.text, s.facts = "remember this\n"+coreCall, []string{fact}
				case n < 18:
					s.text, s.notes = "file this\n"+archCall, []string{note}
				default: // two calls in one step
					s.text, s.facts, s.notes = coreCall+"\n"+archCall+"\n@sleep 20ms", []string{fact}, []string{note}
				}
				inFlight.Add(1)
				s.start = time.Now()
				status, body, err := h.do(context.Background(), client, "POST", "/v1/agents/"+h.agents[s.agent]+"/messages", sendBody(s.text, s.otid))
				s.end = time.Now()
				inFlight.Add(-1)
				s.status, s.body, s.err = status, body, err
				if status == http.StatusOK {
					var resp struct {
						Messages []crashMsg `json:"messages"`
					}
					if jerr := json.Unmarshal(body, &resp); jerr != nil {
						s.err = fmt.Errorf("decode response: %v", jerr)
					}
					s.msgs = resp.Messages
					if !killed.Load() {
						acks.Add(1)
					}
				}
				mu.Lock()
				sends = append(sends, s)
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // the server is down
				}
			}
		})
	}

	// Kill the server once enough sends are acknowledged, at a moment
	// with requests in flight.
	target := int64(crashAcksMin + rng.IntN(crashAcksSpread))
	pause := time.Duration(rng.IntN(30)) * time.Millisecond
	t.Logf("kill after %d acknowledged sends, %v later, with >= %d requests in flight", target, pause, crashInFlightMin)
	loadDeadline := time.Now().Add(crashLoadTimeout)
	for acks.Load() < target {
		if time.Now().After(loadDeadline) {
			stopLoad()
			wg.Wait()
			t.Fatalf("only %d of %d sends acknowledged within %v; last sends: %v", acks.Load(), target, crashLoadTimeout, lastSends(sends, 10))
		}
		select {
		case <-srv.done:
			t.Fatalf("kelpie serve exited under load: %v", srv.err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	time.Sleep(pause)
	for inFlight.Load() < crashInFlightMin && time.Now().Before(loadDeadline) {
		time.Sleep(time.Millisecond)
	}
	// killed is set first: a send acknowledged from here on may race the
	// kill and is not counted in the kill point (but is still checked).
	killed.Store(true)
	atKill := inFlight.Load()
	killTime := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-srv.done:
	case <-time.After(exitTimeout):
		t.Fatal("kelpie serve survived SIGKILL")
	}
	time.Sleep(crashHammer) // clients meet a dead server
	stopLoad()
	wg.Wait()

	// Tally the load.
	var acked, inFlightFailed, refused, busy []*crashSend
	for _, s := range sends {
		switch {
		case s.status == http.StatusOK && s.err == nil:
			acked = append(acked, s)
		case s.status == http.StatusOK:
			t.Errorf("%v: undecodable 200: %s", s, s.body)
		case s.status == http.StatusConflict:
			busy = append(busy, s)
		case s.status == 0 && s.start.Before(killTime):
			inFlightFailed = append(inFlightFailed, s)
		case s.status == 0:
			refused = append(refused, s)
		default:
			t.Errorf("%v: unexpected answer before the kill: %s", s, s.body)
		}
	}
	t.Logf("load ran %v", killTime.Sub(loadBegan).Round(time.Millisecond))
	t.Logf("load: %d sends, %d acknowledged (%d counted before the kill), %d busy (409), %d failed in flight at the kill (%d in flight), %d failed after it",
		len(sends), len(acked), acks.Load(), len(busy), len(inFlightFailed), atKill, len(refused))
	if len(acked) < crashAcksMin {
		t.Fatalf("only %d acknowledged sends, want >= %d", len(acked), crashAcksMin)
	}
	if len(inFlightFailed) == 0 {
		t.Fatalf("no send failed in flight: the kill did not land mid-stream (%d in flight at the kill)", atKill)
	}
	if len(refused) == 0 {
		t.Errorf("no send failed after the kill: the clients did not keep hammering")
	}
	for _, s := range inFlightFailed {
		t.Logf("in flight at the kill: %v", s)
	}

	// Restart on the same data directory and address.
	restarted := time.Now()
	srv2 := start(t, "serve", "--addr", addr, "--data-dir", dataDir)
	waitHealthy(t, srv2, addr)
	t.Logf("restarted in %v", time.Since(restarted).Round(time.Millisecond))
	h.client = &http.Client{Timeout: crashSendTimeout}
	checkRng := rand.New(rand.NewPCG(seed, 0xc0ffee))

	// 1. Right after the restart, find the runs the kill interrupted
	// (listing them activates their agents, which resumes them), and at
	// once send every agent a new message: it must be accepted (after
	// 409s while a resumed run finishes) and answered.
	interrupted := 0
	for _, id := range h.agents {
		var runs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		h.must("GET", "/v1/runs?limit=1000&agent_id="+id, nil, &runs)
		for _, r := range runs {
			if r.Status == "running" {
				interrupted++
			}
		}
	}
	after := make([]*crashSend, len(h.agents))
	busyAfter := make([]int, len(h.agents))
	var awg sync.WaitGroup
	for i, id := range h.agents {
		s := &crashSend{agent: i, otid: fmt.Sprintf("otid-%d-after-%d", seed%100000, i), text: fmt.Sprintf("after restart %d", i)}
		awg.Go(func() {
			status, b, nbusy, err := h.sendUntilAccepted(id, s.text, s.otid)
			busyAfter[i] = nbusy
			if err != nil || status != http.StatusOK {
				t.Errorf("agent %s after the restart: %d %s %v (after %d answers 409)", id, status, b, err, nbusy)
				return
			}
			var resp struct {
				Messages   []crashMsg `json:"messages"`
				StopReason struct {
					StopReason string `json:"stop_reason"`
				} `json:"stop_reason"`
			}
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Errorf("agent %s after the restart: %v\n%s", id, err, b)
				return
			}
			want := "Echo: " + s.text
			if !slices.ContainsFunc(resp.Messages, func(m crashMsg) bool {
				return m.MessageType == "assistant_message" && m.Content != nil && *m.Content == want
			}) || resp.StopReason.StopReason != "end_turn" {
				t.Errorf("agent %s after the restart: no assistant reply %q with end_turn in %s", id, want, b)
			}
			s.msgs, s.status = resp.Messages, http.StatusOK
			after[i] = s
		})
	}
	awg.Wait()
	resumedBusy := 0
	for i, s := range after {
		resumedBusy += busyAfter[i]
		if s != nil {
			acked = append(acked, s)
		}
	}

	// 2. Every acknowledged send is in the logs, which hold no duplicate
	// and no unanswered tool call.
	logs := map[string][]crashMsg{}
	for _, id := range h.agents {
		logs[id] = h.messages(id, checkRng)
	}
	checkAcked(t, h, acked, logs)
	for _, id := range h.agents {
		checkLog(t, id, logs[id], true)
	}

	// 3. Clients retry the sends whose outcome they never learned, with
	// the same otid: the server must deduplicate or run them once.
	retried, dedup := 0, 0
	for _, s := range inFlightFailed {
		logged := slices.ContainsFunc(logs[h.agents[s.agent]], func(m crashMsg) bool { return m.OTID != nil && *m.OTID == s.otid })
		status, b, _, err := h.sendUntilAccepted(h.agents[s.agent], s.text, s.otid)
		if err != nil || status != http.StatusOK {
			t.Errorf("retry of %v: %d %s %v", s, status, b, err)
			continue
		}
		var resp struct {
			Messages []crashMsg `json:"messages"`
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			t.Errorf("retry of %v: %v", s, err)
			continue
		}
		s.msgs, s.status, s.err = resp.Messages, http.StatusOK, nil
		acked = append(acked, s)
		retried++
		if logged {
			dedup++
		}
	}

	// 4. At rest: the whole history, and memory agreeing with the log.
	for _, id := range h.agents {
		logs[id] = h.messages(id, checkRng)
	}
	checkAcked(t, h, acked, logs)
	facts, notes := 0, 0
	for _, id := range h.agents {
		checkLog(t, id, logs[id], true)
		f, n := checkMemory(t, h, id, logs[id])
		facts, notes = facts+f, notes+n
		var runs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		h.must("GET", "/v1/runs?limit=1000&agent_id="+id, nil, &runs)
		for _, r := range runs {
			if r.Status != "completed" {
				t.Errorf("agent %s: run %s is %s at rest, want completed", id, r.ID, r.Status)
			}
		}
	}
	total := 0
	for _, l := range logs {
		total += len(l)
	}
	t.Logf("checks ran %v", time.Since(restarted).Round(time.Millisecond))
	t.Logf("after restart: %d runs were interrupted; new sends met %d answers 409 while resumed runs finished; %d retried sends answered (%d of them logged before the kill, so deduplicated); %d messages in %d logs, %d facts and %d notes in memory, all consistent",
		interrupted, resumedBusy, retried, dedup, total, len(logs), facts, notes)

	// The restarted server stops cleanly, and neither server reported a
	// data race or a panic.
	if err := srv2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv2.wait(t, exitTimeout); code != 0 {
		t.Errorf("restarted server exit code %d after SIGTERM, want 0", code)
	}
	for i, c := range []*child{srv, srv2} {
		for _, bad := range []string{"DATA RACE", "panic", "handler panicked"} {
			if strings.Contains(c.stderr.String(), bad) {
				t.Errorf("server %d logged %q", i+1, bad)
			}
		}
	}
}

// checkAcked checks that every acknowledged send is in its agent's log:
// its user message with its otid and text, once, and every message the
// response returned.
func checkAcked(t *testing.T, h *crashHarness, acked []*crashSend, logs map[string][]crashMsg) {
	t.Helper()
	for _, s := range acked {
		log := logs[h.agents[s.agent]]
		type key struct{ id, typ string }
		have := map[key]bool{}
		var users []crashMsg
		for _, m := range log {
			have[key{m.ID, m.MessageType}] = true
			if m.MessageType == "user_message" && m.OTID != nil && *m.OTID == s.otid {
				users = append(users, m)
			}
		}
		if len(users) != 1 {
			t.Errorf("%v: %d user messages with its otid in the log, want 1: %v", s, len(users), users)
			continue
		}
		if u := users[0]; u.Content == nil || *u.Content != s.text {
			t.Errorf("%v: logged user message %v has other content", s, &u)
		}
		if len(s.msgs) == 0 || s.msgs[0].MessageType != "user_message" || s.msgs[0].ID != users[0].ID {
			t.Errorf("%v: response does not start with the logged user message %s: %v", s, users[0].ID, s.msgs)
		}
		for _, m := range s.msgs {
			if !have[key{m.ID, m.MessageType}] {
				t.Errorf("%v: acknowledged %s %s is missing from the log", s, m.MessageType, m.ID)
			}
		}
	}
}

// checkLog checks one agent's log: IDs and sequence numbers in order, no
// message twice, each otid once, and every tool call answered by a later
// return with its tool_call_id (and every return answering a call). At
// rest, the log must also end with a finished turn.
func checkLog(t *testing.T, agentID string, log []crashMsg, atRest bool) {
	t.Helper()
	type key struct{ id, typ, call string }
	seen := map[key]bool{}
	seqOf := map[string]uint64{}
	otids := map[string]int{}
	var last uint64
	var pending []int // indexes of unanswered tool calls
	for i, m := range log {
		call := m.ToolCallID
		if m.ToolCall != nil {
			call = m.ToolCall.ToolCallID
		}
		k := key{m.ID, m.MessageType, call}
		if seen[k] {
			t.Errorf("agent %s: message %d duplicates an earlier one: %v", agentID, i, &m)
		}
		seen[k] = true
		if m.ID == "" || m.SeqID == nil {
			t.Errorf("agent %s: message %d lacks id or seq_id: %v", agentID, i, &m)
			continue
		}
		seq := *m.SeqID
		if prev, ok := seqOf[m.ID]; ok && prev != seq {
			t.Errorf("agent %s: message %s has seq_id %d and %d", agentID, m.ID, prev, seq)
		}
		seqOf[m.ID] = seq
		if i > 0 && (seq < last || (seq == last && log[i-1].ID != m.ID)) {
			t.Errorf("agent %s: message %d (seq %d) out of order after seq %d: %v", agentID, i, seq, last, &m)
		}
		last = seq
		switch m.MessageType {
		case "user_message":
			if m.OTID != nil {
				otids[*m.OTID]++
				if otids[*m.OTID] == 2 {
					t.Errorf("agent %s: otid %s logged twice", agentID, *m.OTID)
				}
			}
		case "tool_call_message":
			if m.ToolCall == nil || m.ToolCall.ToolCallID == "" {
				t.Errorf("agent %s: tool call without tool_call_id: %v", agentID, &m)
				continue
			}
			pending = append(pending, i)
		case "tool_return_message":
			j := slices.IndexFunc(pending, func(p int) bool { return log[p].ToolCall.ToolCallID == m.ToolCallID })
			if j < 0 {
				t.Errorf("agent %s: tool return %v answers no earlier call", agentID, &m)
				continue
			}
			if m.Status != "success" {
				t.Errorf("agent %s: tool return failed: %v (call %v)", agentID, &m, &log[pending[j]])
			}
			pending = slices.Delete(pending, j, j+1)
		}
	}
	for _, p := range pending {
		t.Errorf("agent %s: tool call %v has no tool_return_message after it", agentID, &log[p])
	}
	if atRest && len(log) > 0 {
		if end := log[len(log)-1]; end.MessageType != "assistant_message" {
			t.Errorf("agent %s: log at rest ends with %v, want an assistant_message", agentID, &end)
		}
	}
}

// checkMemory checks that the agent's human block holds exactly the facts
// and its archival memory exactly the notes that the log's answered
// memory-tool calls wrote, and returns their numbers.
func checkMemory(t *testing.T, h *crashHarness, agentID string, log []crashMsg) (int, int) {
	t.Helper()
	wantFacts, wantNotes := map[string]int{}, map[string]int{}
	for _, m := range log {
		if m.MessageType != "tool_call_message" {
			continue
		}
		var args struct{ Content string }
		if err := json.Unmarshal([]byte(m.ToolCall.Arguments), &args); err != nil {
			t.Errorf("agent %s: tool call arguments %q: %v", agentID, m.ToolCall.Arguments, err)
			continue
		}
		switch m.ToolCall.Name {
		case "core_memory_append":
			wantFacts[args.Content]++
		case "archival_memory_insert":
			wantNotes[args.Content]++
		}
	}
	var blk struct {
		Value string `json:"value"`
	}
	h.must("GET", "/v1/agents/"+agentID+"/core-memory/blocks/human", nil, &blk)
	gotFacts := map[string]int{}
	for line := range strings.SplitSeq(blk.Value, "\n") {
		if line != "Facts:" {
			gotFacts[line]++
		}
	}
	var passages []struct {
		Text string `json:"text"`
	}
	h.must("GET", "/v1/agents/"+agentID+"/archival-memory?limit=1000", nil, &passages)
	gotNotes := map[string]int{}
	for _, p := range passages {
		gotNotes[p.Text]++
	}
	for what, pair := range map[string][2]map[string]int{"human block": {gotFacts, wantFacts}, "archival memory": {gotNotes, wantNotes}} {
		got, want := pair[0], pair[1]
		for k, n := range want {
			if got[k] != n {
				t.Errorf("agent %s: %s has %q %d times; the log's answered calls wrote it %d times", agentID, what, k, got[k], n)
			}
		}
		for k, n := range got {
			if want[k] == 0 {
				t.Errorf("agent %s: %s has %q %d times, written by no call in the log", agentID, what, k, n)
			}
		}
	}
	return len(gotFacts), len(gotNotes)
}

// lastSends returns the last n sends, for a failure message.
func lastSends(sends []*crashSend, n int) []string {
	var out []string
	for _, s := range sends[max(0, len(sends)-n):] {
		out = append(out, fmt.Sprintf("%v body=%.200s", s, s.body))
	}
	return out
}
