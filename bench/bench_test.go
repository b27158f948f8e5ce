package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// tiny is a small in-process run.
func tiny() Config {
	return Config{Agents: 2, Clients: 2, Messages: 20}
}

// checkSane checks the figures every successful run must have.
func checkSane(t *testing.T, r *Report, wantOK int) {
	t.Helper()
	k := r.Kelpie
	if k.OK != wantOK || k.Errors != 0 {
		t.Fatalf("kelpie ok %d errors %d %v %v, want %d ok", k.OK, k.Errors, k.ErrorKinds, k.ErrorSamples, wantOK)
	}
	l := k.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency not ordered: %+v", l)
	}
	if r.MsgsPerSec <= 0 || r.MsgsPerSec != k.PerSec || k.Seconds <= 0 {
		t.Fatalf("msgs/s %v, phase %+v", r.MsgsPerSec, k)
	}
}

func TestRunInProcessSQLite(t *testing.T) {
	var prof bytes.Buffer
	cfg := tiny()
	cfg.CPUProfile = &prof
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r, 20)
	if r.Floor == nil || r.Floor.OK != 20 || r.FloorPerSec <= 0 || r.Ratio <= 0 {
		t.Fatalf("floor %+v, ratio %v", r.Floor, r.Ratio)
	}
	if got := r.MsgsPerSec / r.FloorPerSec; got != r.Ratio {
		t.Fatalf("ratio %v, want %v", r.Ratio, got)
	}
	p := r.Kelpie.Process
	if p == nil || p.CPUMicros == nil || *p.CPUMicros <= 0 || p.Allocs <= 0 || p.Bytes <= 0 || r.ServerEstimate == nil {
		t.Fatalf("process %+v, estimate %+v", p, r.ServerEstimate)
	}
	// Every message commits at least once (the turn's steps), and group
	// commit never takes more fsyncs than commits.
	c := r.Commits
	if c == nil || c.CommitsPerMsg < 1 || c.Syncs == 0 || c.Syncs > c.Commits {
		t.Fatalf("commits %+v", c)
	}
	if prof.Len() == 0 {
		t.Fatal("empty CPU profile")
	}
	if !strings.HasPrefix(r.Storage, "sqlite") || r.Target != "in-process" {
		t.Fatalf("target %q storage %q", r.Target, r.Storage)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if first := strings.SplitN(text.String(), "\n", 4)[2]; !strings.HasPrefix(first, "ratio ") {
		t.Fatalf("the headline is not the ratio:\n%s", text.String())
	}
	// Writing the text leaves the report as it was.
	var again bytes.Buffer
	r.WriteText(&again)
	if again.String() != text.String() {
		t.Fatalf("the second rendering differs:\n%s\n---\n%s", text.String(), again.String())
	}
	for _, want := range []string{"msgs/s", "p50", "p99", "µs/msg", "allocs/msg", "fsyncs/msg", "errors     none"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// Streaming, tool turns, preloaded history, more clients than agents
// (busy answers retried), on the memory store: every message succeeds.
func TestRunStreamToolsHistoryMemory(t *testing.T) {
	cfg := Config{Agents: 2, Clients: 4, Messages: 16, Stream: true, Tools: true, History: 30, Storage: StorageMemory}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r, 16)
	if r.Commits != nil || r.Storage != "memory" {
		t.Fatalf("memory store: commits %+v, storage %q", r.Commits, r.Storage)
	}
	if !r.Stream || !r.Tools || r.History != 30 {
		t.Fatalf("report config %+v", r)
	}
}

func TestRunDuration(t *testing.T) {
	cfg := Config{Agents: 2, Clients: 2, Duration: 300 * time.Millisecond, Storage: StorageMemory}
	began := time.Now()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kelpie.OK == 0 || r.Kelpie.Seconds < 0.3 || r.Floor == nil || r.Floor.Seconds < 0.3 {
		t.Fatalf("kelpie %+v floor %+v", r.Kelpie, r.Floor)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("a 300ms run took %v", took)
	}
}

// startTarget starts an in-process server and fake model for a test.
func startTarget(t *testing.T, cfg Config) (*target, *Config) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tg, err := newTarget(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.close() })
	return tg, &cfg
}

// get fetches path from the target's server and decodes it into v.
func get(t *testing.T, tg *target, path string, v any) {
	t.Helper()
	status, body, err := tg.do(context.Background(), tg.client, http.MethodGet, tg.kelpie+path, "", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %v %.300s", path, status, err, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatal(err)
	}
}

// The workload does what its flags say: the history is in the agent's
// log, a --tools turn calls memory_rethink on the bench block, a stream
// ends with end_turn, and an agent busy with one message refuses a
// second with 409.
func TestWorkloadShapes(t *testing.T) {
	tg, cfg := startTarget(t, Config{Agents: 1, Clients: 1, Messages: 1, History: 40, Tools: true, Stream: true, Storage: StorageMemory})
	ids, err := setupAgents(context.Background(), cfg, tg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []struct {
		MessageType string `json:"message_type"`
		Content     any    `json:"content"`
		ToolCall    *struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"tool_call"`
	}
	path := "/v1/agents/" + url.PathEscape(ids[0]) + "/messages?limit=1000"
	get(t, tg, path, &msgs)
	if len(msgs) < 40 {
		t.Fatalf("%d messages after a 40-message history", len(msgs))
	}
	load := &kelpieLoad{cfg: cfg, t: tg, agents: ids}
	if r := load.send(context.Background(), 0, 7); r.kind != "" {
		t.Fatalf("send: %+v", r)
	}
	get(t, tg, path, &msgs)
	called := false
	for _, m := range msgs {
		if m.ToolCall != nil && m.ToolCall.Name == "memory_rethink" && strings.Contains(m.ToolCall.Arguments, "turn 7") {
			called = true
		}
	}
	if !called {
		t.Fatalf("no memory_rethink call in %+v", msgs)
	}
	var block struct {
		Value string `json:"value"`
	}
	get(t, tg, "/v1/agents/"+url.PathEscape(ids[0])+"/core-memory/blocks/"+benchBlock, &block)
	if block.Value != "turn 7" {
		t.Fatalf("bench block %q, want %q", block.Value, "turn 7")
	}

	// Two sends at once to one agent: one of them may be refused as busy,
	// and a refusal is marked busy, not an error kind of its own.
	slow := &kelpieLoad{cfg: &Config{}, t: tg, agents: ids}
	done := make(chan result, 1)
	go func() { done <- slowSend(slow, "@sleep 500ms") }()
	time.Sleep(150 * time.Millisecond)
	r := slow.send(context.Background(), 0, 8)
	if first := <-done; first.kind != "" {
		t.Fatalf("slow send: %+v", first)
	}
	if !r.busy || r.kind != "http_409" {
		t.Fatalf("send to a busy agent: %+v, want a busy 409", r)
	}
}

// slowSend sends text (a fake-model directive) as one JSON message.
func slowSend(k *kelpieLoad, text string) result {
	body, _ := json.Marshal(map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}})
	status, b, err := k.t.do(context.Background(), k.t.client, http.MethodPost, k.t.kelpie+"/v1/agents/"+k.agents[0]+"/messages", "application/json", bytes.NewReader(body))
	if err != nil || status != http.StatusOK {
		return result{kind: fmt.Sprint("http_", status), detail: fmt.Sprint(err, string(b))}
	}
	return result{}
}

// Driving a running server by URL: no process figures, a floor only
// with --fake-llm.
func TestRunRemote(t *testing.T) {
	tg, _ := startTarget(t, Config{Agents: 1, Clients: 1, Messages: 1, Storage: StorageMemory})
	r, err := Run(context.Background(), Config{Agents: 2, Clients: 2, Messages: 10, Server: tg.kelpie + "/v1/", FakeLLM: tg.fakeLLM})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r, 10)
	if r.Target != tg.kelpie || r.Floor == nil || r.Ratio <= 0 || r.Kelpie.Process != nil || r.Commits != nil || r.ServerEstimate != nil {
		t.Fatalf("remote report %+v", r)
	}
	r, err = Run(context.Background(), Config{Agents: 2, Clients: 2, Messages: 10, Server: tg.kelpie})
	if err != nil {
		t.Fatal(err)
	}
	if r.Floor != nil || r.Ratio != 0 || !strings.Contains(strings.Join(r.Notes, "\n"), "no floor") {
		t.Fatalf("no --fake-llm: floor %+v ratio %v notes %v", r.Floor, r.Ratio, r.Notes)
	}
	// The agents it created are gone.
	var agents []json.RawMessage
	get(t, tg, "/v1/agents", &agents)
	if len(agents) != 0 {
		t.Fatalf("%d agents left behind", len(agents))
	}
}

func TestValidate(t *testing.T) {
	var prof bytes.Buffer
	for _, c := range []struct {
		cfg  Config
		flag string
		want string
	}{
		{Config{Agents: 1, Clients: 0, Messages: 1}, "--clients", "want 1..10000 concurrent clients"},
		{Config{Agents: -2, Clients: 1, Messages: 1}, "--agents", "want 1.."},
		{Config{Agents: 1, Clients: 1, Messages: 5, Duration: time.Second}, "--messages", "not both"},
		{Config{Agents: 1, Clients: 1}, "--messages", "give a message count"},
		{Config{Agents: 1, Clients: 1, Messages: -1}, "--messages", "positive"},
		{Config{Agents: 1, Clients: 1, Duration: -time.Second}, "--duration", "positive"},
		{Config{Agents: 1, Clients: 1, Messages: 1, History: HistoryMax + 1}, "--history", "want 0.."},
		{Config{Agents: 1, Clients: 1, Messages: 1, Server: "http://127.0.0.1:1", CPUProfile: &prof}, "--cpuprofile", "in-process"},
		{Config{Agents: 1, Clients: 1, Messages: 1, Server: "http://127.0.0.1:1", Storage: "memory"}, "--storage", "in-process"},
		{Config{Agents: 1, Clients: 1, Messages: 1, FakeLLM: "http://127.0.0.1:1"}, "--fake-llm", "behind --server"},
		{Config{Agents: 1, Clients: 1, Messages: 1, Server: "ftp://x"}, "--server", "not an http(s) URL"},
	} {
		err := c.cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Flag != c.flag || !strings.Contains(ce.Msg, c.want) {
			t.Errorf("%+v: %v, want %s: …%s…", c.cfg, err, c.flag, c.want)
		}
	}
	cfg := Config{Agents: 1, Clients: 1, Messages: 1, Server: "127.0.0.1:8283/v1/"}
	if err := cfg.Validate(); err != nil || cfg.Model != DefaultModel || cfg.Server != "http://127.0.0.1:8283" {
		t.Fatalf("defaults: %v %+v", err, cfg)
	}
	// Run refuses before starting anything.
	if _, err := Run(context.Background(), Config{Clients: -1, Messages: 1}); err == nil {
		t.Fatal("Run with -1 clients succeeded")
	}
	cfg = Config{Agents: 1, Clients: 1, Messages: 1, Storage: "nosuch://x"}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--storage") {
		t.Fatalf("bad storage: %v", err)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := latency(ds)
	if l.P50 != 50 || l.P90 != 90 || l.P99 != 99 || l.Max != 100 || l.Mean != 50.5 {
		t.Fatalf("%+v", l)
	}
	if l := latency([]time.Duration{3 * time.Millisecond}); l.P50 != 3 || l.P99 != 3 || l.Max != 3 {
		t.Fatalf("one sample: %+v", l)
	}
	if l := latency(nil); l != (Latency{}) {
		t.Fatalf("none: %+v", l)
	}
}
