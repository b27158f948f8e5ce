package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/storage/sqlite"
)

// crashChildEnv names the database TestCrashChild commits to; unset, the
// test does nothing.
const crashChildEnv = "KELPIE_CRASH_CHILD_DB"

// Crash test bounds.
const (
	crashAcksMin        = 200              // the parent kills after at least this many acks
	crashAcksSpread     = 600              // ... plus a random number below this
	crashCommitters     = 8                // concurrent committers in the child
	crashTimeout        = 60 * time.Second // the parent gives up waiting for acks
	crashChildRunMax    = 2 * time.Minute  // the child stops by itself if never killed
	crashValueRepeatMax = 8                // values are key-derived, up to this many copies
)

func crashValue(key string) string {
	return strings.Repeat(key+";", 1+len(key)%crashValueRepeatMax)
}

// TestCrashChild is the child process of TestCrashDurability: it commits
// from several goroutines and prints "ack <key> ok" only after Commit
// returned nil, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		return
	}
	s, err := sqlite.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	deadline := time.Now().Add(crashChildRunMax)
	var out sync.Mutex
	var wg sync.WaitGroup
	for g := range crashCommitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("c%d/%08d", g, i)
				tx, err := s.Begin(ctx)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child begin:", err)
					os.Exit(2)
				}
				tx.Set([]byte(key), []byte(crashValue(key)))
				if err := tx.Commit(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "child commit:", err)
					os.Exit(2)
				}
				out.Lock()
				// One write(2) per line: a pipe write this small is atomic.
				_, err = os.Stdout.WriteString("ack " + key + " ok\n")
				out.Unlock()
				if err != nil {
					os.Exit(3) // the parent is gone
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
}

// TestCrashDurability runs TestCrashChild in a child process, SIGKILLs it
// mid-stream after a random number of acknowledged commits, and checks
// every acknowledged commit survived.
func TestCrashDurability(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash", "kelpie.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAt := crashAcksMin + rand.IntN(crashAcksSpread)
	timer := time.AfterFunc(crashTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()

	var acked []string
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		key, ok := strings.CutPrefix(line, "ack ")
		if key, ok = strings.CutSuffix(key, " ok"); !ok {
			continue // not an ack (test framework output)
		}
		acked = append(acked, key)
		if !killed && len(acked) >= killAt {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on unix
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	// Lines the child wrote before it died are still in the pipe; the loop
	// above read them all (EOF). Only now reap the child.
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acks (got %d): %v\nstderr:\n%s", killAt, len(acked), waitErr, stderr.String())
	}
	if len(acked) < crashAcksMin {
		t.Fatalf("only %d acks, want at least %d", len(acked), crashAcksMin)
	}

	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, key := range acked {
		v, _, found, err := s.Get(ctx, []byte(key))
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		if !found {
			t.Fatalf("acknowledged key %s lost in the crash (%d acked)", key, len(acked))
		}
		if string(v) != crashValue(key) {
			t.Fatalf("acknowledged key %s has value %q after the crash", key, v)
		}
	}
	t.Logf("killed after %d acks (target %d); all %d acknowledged commits survived", len(acked), killAt, len(acked))
}
