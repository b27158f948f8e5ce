package actor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// A panicking invocation is reported to Config.OnPanic with its value and
// stack, and its caller gets ErrPanic.
func TestPanicReported(t *testing.T) {
	type report struct {
		id    actor.ID
		value any
		stack string
	}
	var got []report
	f := newFixture(t, actor.Config{OnPanic: func(id actor.ID, value any, stack []byte) {
		got = append(got, report{id, value, string(stack)})
	}})
	f.invoke(t, "x", "incr")
	if _, err := f.sys.Invoke(context.Background(), id("x"), "panic", nil); !errors.Is(err, actor.ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	if len(got) != 1 || got[0].id != id("x") || got[0].value == nil || !strings.Contains(got[0].stack, "(*counter).Invoke") {
		t.Fatalf("OnPanic got %+v, want one report for %v with the stack through counter.Invoke", got, id("x"))
	}
}

// lossy is a state whose encoding does not survive a round trip: each
// decode adds one.
type lossy struct{ N int }

func (l lossy) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`{"n":%d}`, l.N)), nil }

func (l *lossy) UnmarshalJSON(b []byte) error {
	var v struct{ N int }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	l.N = v.N + 1
	return nil
}

type lossyActor struct{}

func (lossyActor) Invoke(ctx context.Context, c *actor.Context[lossy], op string, payload []byte) ([]byte, error) {
	c.State.N = 5
	return nil, nil
}

// With CheckState, a state that does not decode back to what was
// encoded fails the invocation as a panic, and nothing is committed;
// without it, the commit goes through.
func TestCheckStateRoundTrip(t *testing.T) {
	for _, check := range []bool{false, true} {
		store := memory.New()
		var panics int
		sys := actor.NewSystem(actor.Config{Runtime: rt.NewSystem(), Store: store, Logger: slog.New(slog.DiscardHandler),
			CheckState: check, OnPanic: func(actor.ID, any, []byte) { panics++ }})
		if err := actor.Register[lossy](sys, "lossy", lossyActor{}); err != nil {
			t.Fatal(err)
		}
		_, err := sys.Invoke(context.Background(), actor.ID{Namespace: "lossy", ID: "a"}, "set", nil)
		switch {
		case check && (!errors.Is(err, actor.ErrPanic) || !strings.Contains(err.Error(), "round trip") || panics != 1):
			t.Errorf("CheckState: err = %v, %d panics; want ErrPanic naming the round trip, once", err, panics)
		case !check && err != nil:
			t.Errorf("without CheckState: %v", err)
		}
		tx, err := store.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Get(context.Background(), actor.ID{Namespace: "lossy", ID: "a"}.StateKey())
		tx.Rollback()
		if committed := err == nil; committed == check {
			t.Errorf("CheckState %v: state committed = %v (%v)", check, committed, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := sys.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		cancel()
	}
}
