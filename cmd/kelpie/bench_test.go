package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kelpie bench --json runs a tiny in-process benchmark and prints one
// JSON object with sane figures; --cpuprofile writes a profile.
func TestBenchCommandJSON(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "bench.prof")
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--agents", "2", "--clients", "2", "--messages", "20", "--json", "--cpuprofile", prof}, &stdout, &stderr, noEnv)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	var r struct {
		Agents, Clients, Messages int
		MsgsPerSec                float64 `json:"msgs_per_sec"`
		FloorPerSec               float64 `json:"floor_req_per_sec"`
		Ratio                     float64 `json:"ratio"`
		Kelpie                    struct {
			OK      int `json:"ok"`
			Errors  int `json:"errors"`
			Latency struct {
				P50, P90, P99, Max float64
			} `json:"latency_ms"`
			Process *struct {
				CPU    float64 `json:"cpu_us"`
				Allocs float64 `json:"allocs"`
			} `json:"process"`
		} `json:"kelpie"`
		Commits *struct {
			PerMsg float64 `json:"commits_per_msg"`
			Syncs  float64 `json:"fsyncs_per_msg"`
		} `json:"commits"`
	}
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value on stdout")
	}
	k := r.Kelpie
	switch {
	case r.Agents != 2 || r.Clients != 2 || r.Messages != 20:
		t.Fatalf("config %+v", r)
	case k.OK != 20 || k.Errors != 0 || r.MsgsPerSec <= 0:
		t.Fatalf("kelpie %+v, %v msgs/s", k, r.MsgsPerSec)
	case !(k.Latency.P50 > 0 && k.Latency.P50 <= k.Latency.P99 && k.Latency.P99 <= k.Latency.Max):
		t.Fatalf("latency %+v", k.Latency)
	case r.FloorPerSec <= 0 || r.Ratio <= 0:
		t.Fatalf("floor %v req/s, ratio %v", r.FloorPerSec, r.Ratio)
	case k.Process == nil || k.Process.CPU <= 0 || k.Process.Allocs <= 0:
		t.Fatalf("process %+v", k.Process)
	case r.Commits == nil || r.Commits.PerMsg < 1 || r.Commits.Syncs <= 0:
		t.Fatalf("commits %+v", r.Commits)
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Fatalf("profile: %v", err)
	}
	if !strings.Contains(stderr.String(), "-tagfocus=side=server") {
		t.Fatalf("stderr does not say how to read the profile: %s", stderr.String())
	}
}

// The text report leads with the ratio, and stderr (not a terminal) gets
// no progress line.
func TestBenchCommandText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--agents", "2", "--clients", "3", "--messages", "12", "--storage", "memory", "--stream"}, &stdout, &stderr, noEnv)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if len(lines) < 4 || !strings.Contains(lines[0], "SSE stream") || !strings.HasPrefix(lines[2], "ratio ") {
		t.Fatalf("report:\n%s", stdout.String())
	}
	if strings.Contains(stderr.String(), "\r") {
		t.Fatalf("progress written to a non-terminal: %q", stderr.String())
	}
}

// --duration alone replaces the default message count.
func TestBenchCommandDuration(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "--agents", "2", "--clients", "2", "--duration", "200ms", "--storage", "memory", "--json"}, &stdout, &stderr, noEnv)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	var r struct {
		Messages        int     `json:"messages"`
		DurationSeconds float64 `json:"duration_seconds"`
		Kelpie          struct {
			OK      int     `json:"ok"`
			Seconds float64 `json:"seconds"`
		} `json:"kelpie"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Messages != 0 || r.DurationSeconds != 0.2 || r.Kelpie.OK == 0 || r.Kelpie.Seconds < 0.2 {
		t.Fatalf("report %+v", r)
	}
}

func TestBenchFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--clients", "0"}, "--clients: 0 clients: want 1..10000 concurrent clients"},
		{[]string{"bench", "--agents", "0"}, "--agents: 0 agents"},
		{[]string{"bench", "--messages", "10", "--duration", "1s"}, "not both"},
		{[]string{"bench", "--messages", "-3"}, "--messages: -3 messages"},
		{[]string{"bench", "--server", "http://127.0.0.1:1", "--cpuprofile", "x.prof"}, "--cpuprofile"},
		{[]string{"bench", "--fake-llm", "http://127.0.0.1:1"}, "--fake-llm"},
		{[]string{"bench", "--history", "-1"}, "--history"},
		{[]string{"bench", "extra"}, "takes no arguments"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr, noEnv)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("kelpie %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
