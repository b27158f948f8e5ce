package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
)

// churn is a workload of tasks that sleep, queue and signal at random.
func churn(r rt.Runtime) {
	ctx := context.Background()
	q := rt.NewQueue[int](r, 4)
	done := rt.NewEvent(r)
	rnd := r.Rand("churn")
	consumed := 0
	for p := range 4 {
		r.Go(fmt.Sprint("producer", p), func() {
			for i := range 20 {
				r.Sleep(ctx, time.Duration(rt.Intn(rnd, 100))*time.Millisecond)
				for q.TryPush(p*100+i) != nil {
					r.Sleep(ctx, time.Millisecond)
				}
			}
		})
	}
	for c := range 2 {
		r.Go(fmt.Sprint("consumer", c), func() {
			for {
				tctx, cancel := rt.WithTimeout(r, ctx, 50*time.Millisecond)
				_, err := q.Recv(tctx)
				cancel()
				if err == nil {
					consumed++
					if consumed == 80 {
						done.Set()
					}
				}
			}
		})
	}
	done.Wait(ctx)
}

func TestSameSeedSameTrace(t *testing.T) {
	hashes := map[uint64]uint64{}
	for seed := uint64(1); seed <= 20; seed++ {
		var runs [2]uint64
		for i := range runs {
			s := New(seed)
			if err := s.Run(churn); err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			runs[i] = s.TraceHash()
		}
		if runs[0] != runs[1] {
			t.Fatalf("seed %d: trace %x then %x", seed, runs[0], runs[1])
		}
		if other, dup := hashes[runs[0]]; dup {
			t.Fatalf("seeds %d and %d share trace %x", other, seed, runs[0])
		}
		hashes[runs[0]] = seed
	}
}

func TestVirtualTimeJumps(t *testing.T) {
	s := New(1)
	var slept time.Duration
	start := time.Now()
	err := s.Run(func(r rt.Runtime) {
		t0 := r.Now()
		r.Sleep(context.Background(), 24*time.Hour)
		slept = r.Now().Sub(t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if slept != 24*time.Hour {
		t.Fatalf("virtual sleep took %v of virtual time", slept)
	}
	if real := time.Since(start); real > 5*time.Second {
		t.Fatalf("a virtual day took %v of real time", real)
	}
}

func TestDeadlockIsReported(t *testing.T) {
	err := New(1).Run(func(r rt.Runtime) {
		r.NewSignal().Wait(context.Background())
	})
	if err == nil || !strings.Contains(err.Error(), "deadlock") {
		t.Fatalf("err = %v, want a deadlock report", err)
	}
}

func TestWatchdogNamesBlockedTask(t *testing.T) {
	s := New(1)
	s.watchdogAfter = 300 * time.Millisecond
	block := make(chan struct{})
	defer close(block)
	err := s.Run(func(r rt.Runtime) {
		r.Go("offender", func() { <-block })
		r.Sleep(context.Background(), time.Second)
	})
	if err == nil || !strings.Contains(err.Error(), `"offender"`) {
		t.Fatalf("err = %v, want the watchdog to name the offender", err)
	}
}

func TestPanicFailsRun(t *testing.T) {
	err := New(1).Run(func(r rt.Runtime) {
		r.Go("bad", func() { panic("boom") })
		r.Sleep(context.Background(), time.Second)
	})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestCrashStopsNodeTasks(t *testing.T) {
	s := New(7)
	var before, after, deferred int
	err := s.Run(func(r rt.Runtime) {
		n := s.NewNode("n1")
		nr := n.Runtime()
		for range 3 {
			nr.Go("worker", func() {
				defer func() { deferred++ }()
				for {
					before++
					if err := nr.Sleep(context.Background(), time.Second); err != nil {
						return
					}
				}
			})
		}
		r.Sleep(context.Background(), 5*time.Second+time.Millisecond)
		// A task of the node crashes it from inside.
		nr.Go("crasher", func() { n.Crash(); t.Error("Crash returned to a task of the crashed node") })
		r.Sleep(context.Background(), time.Millisecond)
		if !n.Crashed() {
			t.Error("node not crashed")
		}
		snapshot := before
		r.Sleep(context.Background(), 10*time.Second)
		after = before - snapshot
		nr.Go("ignored", func() { t.Error("a crashed node started a task") })
		r.Sleep(context.Background(), time.Second)
		n.Restart()
		ran := rt.NewEvent(r)
		nr.Go("reborn", func() { ran.Set() })
		if err := ran.Wait(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if before < 15 || after != 0 || deferred != 3 {
		t.Fatalf("ticks before=%d after crash=%d deferred=%d", before, after, deferred)
	}
}

func TestContextCancelWakesWaiter(t *testing.T) {
	err := New(3).Run(func(r rt.Runtime) {
		ctx, cancel := context.WithCancel(context.Background())
		got := rt.NewFuture[error](r)
		r.Go("waiter", func() { got.Resolve(nil, r.NewSignal().Wait(ctx)) })
		r.Go("canceller", func() { r.Sleep(context.Background(), time.Second); cancel() })
		_, err := got.Wait(context.Background())
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter woke with %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
