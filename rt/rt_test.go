package rt_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/rt"
)

func TestNewIDFormat(t *testing.T) {
	r := rt.NewSystem().Rand("ids")
	re := regexp.MustCompile(`^agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := rt.NewID(r, "agent")
		if !re.MatchString(id) {
			t.Fatalf("%q is not agent-<uuid4>", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestQueueBoundsAndOrder(t *testing.T) {
	r := rt.NewSystem()
	q := rt.NewQueue[int](r, 2)
	if err := q.TryPush(1); err != nil {
		t.Fatal(err)
	}
	if err := q.TryPush(2); err != nil {
		t.Fatal(err)
	}
	if err := q.TryPush(3); !errors.Is(err, rt.ErrQueueFull) {
		t.Fatalf("push to full queue: %v", err)
	}
	ctx := context.Background()
	for want := 1; want <= 2; want++ {
		if v, err := q.Recv(ctx); err != nil || v != want {
			t.Fatalf("recv = %d, %v; want %d", v, err, want)
		}
	}
	tctx, cancel := rt.WithTimeout(r, ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := q.Recv(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv on empty queue with timeout: %v", err)
	}
	q.TryPush(4)
	q.Close()
	if err := q.TryPush(5); !errors.Is(err, rt.ErrQueueClosed) {
		t.Fatalf("push after close: %v", err)
	}
	if v, err := q.Recv(ctx); err != nil || v != 4 {
		t.Fatalf("closed queue must drain first: %d, %v", v, err)
	}
	if _, err := q.Recv(ctx); !errors.Is(err, rt.ErrQueueClosed) {
		t.Fatalf("recv on drained closed queue: %v", err)
	}
}

func TestQueueWakesWaitingReceivers(t *testing.T) {
	r := rt.NewSystem()
	q := rt.NewQueue[int](r, 10)
	got := make(chan int, 3)
	for range 3 {
		r.Go("recv", func() {
			v, err := q.Recv(context.Background())
			if err == nil {
				got <- v
			}
		})
	}
	for i := range 3 {
		q.TryPush(i)
	}
	sum := 0
	for range 3 {
		select {
		case v := <-got:
			sum += v
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting receiver was never woken")
		}
	}
	if sum != 3 {
		t.Fatalf("received sum %d, want 3", sum)
	}
	r.Wait()
}

func TestFutureAndEvent(t *testing.T) {
	r := rt.NewSystem()
	f := rt.NewFuture[string](r)
	r.Go("resolve", func() { f.Resolve("first", nil); f.Resolve("second", nil) })
	for range 2 { // every waiter sees the first resolution
		if v, err := f.Wait(context.Background()); err != nil || v != "first" {
			t.Fatalf("future = %q, %v", v, err)
		}
	}
	e := rt.NewEvent(r)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait on unset event with cancelled ctx: %v", err)
	}
	e.Set()
	if err := e.Wait(ctx); err != nil {
		t.Fatalf("a set event must not block, even with a done ctx: %v", err)
	}
}

func TestWithTimeoutCancel(t *testing.T) {
	r := rt.NewSystem()
	ctx, cancel := rt.WithTimeout(r, context.Background(), time.Hour)
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("cancelled timeout ctx: %v", ctx.Err())
	}
	if err := r.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
