package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/sim"
	"github.com/kelpie-ai/kelpie/storage"
)

func TestSimOneSeed(t *testing.T) {
	var out1, out2, stderr bytes.Buffer
	if code := run([]string{"sim", "--seed", "7"}, &out1, &stderr, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	line := out1.String()
	re := regexp.MustCompile(`^ok seed=7 ops=\d+ .*faults=\d+ .*trace=[0-9a-f]{16} faults: .*StorageWriteFail=\d+/\d+`)
	if !re.MatchString(line) {
		t.Fatalf("summary %q does not match %v", line, re)
	}
	run([]string{"sim", "--seed", "7"}, &out2, &stderr, noEnv)
	if out1.String() != out2.String() {
		t.Fatalf("seed 7 gave two different summaries:\n%s%s", out1.String(), out2.String())
	}
}

func TestSimReplayPrintsTrace(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sim", "--seed", "3", "--replay"}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 100 || !strings.Contains(stdout.String(), " run [") || !strings.HasPrefix(lines[len(lines)-1], "ok seed=3 ") {
		t.Fatalf("replay printed %d lines; last %q", len(lines), lines[len(lines)-1])
	}
}

func TestSimSweep(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sim", "--count", "20", "--start", "100", "--swarm"}, &stdout, &stderr, noEnv); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !regexp.MustCompile(`seeds=20 failed=0 ops=\d+ .*seeds/s=[\d.]+ ops/s=\d+`).MatchString(stdout.String()) {
		t.Fatalf("sweep summary: %q", stdout.String())
	}
	if !strings.Contains(stdout.String(), "faults (fired/checked):") {
		t.Fatalf("no fault counts: %q", stdout.String())
	}
}

// dropCommits acknowledges every commit and applies none.
type dropCommits struct{ *sim.Store }

func (d dropCommits) Begin(ctx context.Context) (*storage.Txn, error)      { return storage.NewTxn(d), nil }
func (d dropCommits) Commit(context.Context, *storage.CommitRequest) error { return nil }

func TestSimSweepReportsFailingSeedFirst(t *testing.T) {
	var stdout, stderr bytes.Buffer
	broken := func(seed uint64) sim.Config {
		cfg := sim.StandardConfig(seed)
		cfg.WrapStore = func(s *sim.Store, _ rt.Runtime) storage.Store { return dropCommits{s} }
		return cfg
	}
	err := sweep(&stdout, &stderr, 5, 4, 2, broken, func(s uint64) string { return fmt.Sprintf("kelpie sim --seed %d --replay", s) })
	if err == nil {
		t.Fatal("a sweep over a broken store passed")
	}
	lines := strings.Split(stderr.String(), "\n")
	var first string
	for _, l := range lines { // skip the progress bar's carriage-return frames
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		if strings.TrimSpace(l) != "" {
			first = l
			break
		}
	}
	if !strings.HasPrefix(first, "FAIL seed=5 ") || !strings.Contains(first, "kelpie sim --seed 5 --replay") {
		t.Fatalf("first report line %q should name the failing seed and how to replay it", first)
	}
}
