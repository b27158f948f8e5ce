package actor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

type counterState struct {
	Count int
	Note  string
}

// counter is the test actor. Its behaviour per op is in Invoke.
type counter struct {
	inside      sync.Map // ID -> *atomic.Int32, invocations in flight per actor
	maxInside   atomic.Int32
	rendezvous  chan struct{}
	release     chan struct{}
	activated   atomic.Int32
	deactivated atomic.Int32
	// committedHooks counts AfterCommit hooks run.
	committedHooks atomic.Int32
	// rival, if set, runs inside "shared-incr" between its read and its
	// commit.
	rival func()
}

func newCounter() *counter {
	return &counter{rendezvous: make(chan struct{}, 16), release: make(chan struct{})}
}

func (a *counter) OnActivate(ctx context.Context, c *actor.Context[counterState]) error {
	a.activated.Add(1)
	return nil
}

func (a *counter) OnDeactivate(ctx context.Context, c *actor.Context[counterState]) error {
	a.deactivated.Add(1)
	return nil
}

func (a *counter) Invoke(ctx context.Context, c *actor.Context[counterState], op string, payload []byte) ([]byte, error) {
	v, _ := a.inside.LoadOrStore(c.ID, new(atomic.Int32))
	n := v.(*atomic.Int32).Add(1)
	defer v.(*atomic.Int32).Add(-1)
	for {
		m := a.maxInside.Load()
		if n <= m || a.maxInside.CompareAndSwap(m, n) {
			break
		}
	}
	switch op {
	case "incr":
		c.State.Count++
		if err := c.Runtime().Sleep(ctx, time.Millisecond); err != nil {
			return nil, err
		}
		return []byte(fmt.Sprint(c.State.Count)), nil
	case "get":
		return []byte(fmt.Sprint(c.State.Count)), nil
	case "hook": // count, with an after-commit hook; fail on request
		c.State.Count++
		c.AfterCommit(func() { a.committedHooks.Add(1) })
		if string(payload) == "fail" {
			return nil, errors.New("deliberate failure")
		}
		return nil, nil
	case "add": // a state change with nothing else
		c.State.Count++
		return nil, nil
	case "rendezvous": // announce arrival, then wait for the test to release
		a.rendezvous <- struct{}{}
		select {
		case <-a.release:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "kv": // write state, KV and index; check read-your-writes
		c.State.Count++
		if err := c.Set([]byte("k"), payload); err != nil {
			return nil, err
		}
		got, err := c.Get(ctx, []byte("k"))
		if err != nil || string(got) != string(payload) {
			return nil, fmt.Errorf("read-your-writes: %q, %v", got, err)
		}
		return nil, c.SetIndex(actor.IndexKey("by_note", string(payload), c.ID.ID), nil)
	case "fail-after-write":
		c.State.Count += 100
		c.State.Note = "should roll back"
		if err := c.Set([]byte("k"), []byte("should roll back")); err != nil {
			return nil, err
		}
		return nil, errors.New("deliberate failure")
	case "panic":
		c.State.Count += 1000
		panic("deliberate panic")
	case "slow":
		c.State.Count += 10
		return nil, c.Runtime().Sleep(ctx, time.Hour)
	case "ignore-deadline": // overruns without looking at ctx
		c.State.Count += 10
		time.Sleep(50 * time.Millisecond)
		return nil, nil
	case "shared-incr": // count in the state and in a shared key
		c.State.Count++
		n := 0
		v, err := c.GetShared(ctx, actor.SharedKey("ctr", "x"))
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			n, _ = strconv.Atoi(string(v))
		}
		if a.rival != nil {
			a.rival()
		}
		return nil, c.SetShared(actor.SharedKey("ctr", "x"), []byte(strconv.Itoa(n+1)))
	case "shared-outside":
		if _, err := c.GetShared(ctx, id("x").StateKey()); err == nil {
			return nil, errors.New("read outside the shared space")
		}
		return nil, c.SetShared(actor.IndexKey("i"), nil)
	case "clear":
		return nil, c.Clear()
	case "bye":
		c.State.Count++
		c.DeactivateAfter()
		return nil, nil
	}
	return nil, fmt.Errorf("unknown op %q", op)
}

type fixture struct {
	sys   *actor.System
	store storage.Store
	act   *counter
	r     *rt.System
}

func newFixture(t testing.TB, cfg actor.Config) *fixture {
	t.Helper()
	f := &fixture{r: rt.NewSystem(), act: newCounter()}
	if cfg.Store == nil {
		cfg.Store = memory.New()
	}
	f.store = cfg.Store
	cfg.Runtime = f.r
	cfg.Logger = slog.New(slog.DiscardHandler)
	f.sys = actor.NewSystem(cfg)
	if err := actor.Register[counterState](f.sys, "counters", f.act); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := f.sys.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return f
}

func id(s string) actor.ID { return actor.ID{Namespace: "counters", ID: s} }

func (f *fixture) invoke(t *testing.T, who, op string) string {
	t.Helper()
	out, err := f.sys.Invoke(context.Background(), id(who), op, nil)
	if err != nil {
		t.Fatalf("invoke %s %s: %v", who, op, err)
	}
	return string(out)
}

func (f *fixture) storedState(t *testing.T, who string) string {
	t.Helper()
	tx, err := f.store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	v, err := tx.Get(context.Background(), id(who).StateKey())
	if errors.Is(err, storage.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func TestDifferentActorsRunConcurrently(t *testing.T) {
	f := newFixture(t, actor.Config{})
	errs := make(chan error, 2)
	for _, who := range []string{"a", "b"} {
		go func() {
			_, err := f.sys.Invoke(context.Background(), id(who), "rendezvous", nil)
			errs <- err
		}()
	}
	// Both invocations must be inside Invoke at the same time.
	for i := 0; i < 2; i++ {
		select {
		case <-f.act.rendezvous:
		case <-time.After(10 * time.Second):
			t.Fatal("two different actors were never inside Invoke at once")
		}
	}
	close(f.act.release)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.act.maxInside.Load(); got != 1 {
		t.Fatalf("max invocations in flight for one actor = %d, want 1", got)
	}
}

func TestOneInvocationAtATimePerActor(t *testing.T) {
	f := newFixture(t, actor.Config{})
	const calls = 200
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.sys.Invoke(context.Background(), id("solo"), "incr", nil)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.act.maxInside.Load(); got != 1 {
		t.Fatalf("max concurrent invocations of one actor = %d, want 1", got)
	}
	if got := f.invoke(t, "solo", "get"); got != fmt.Sprint(calls) {
		t.Fatalf("count = %s after %d increments", got, calls)
	}
}

func TestCommitIsAtomicWithReadYourWrites(t *testing.T) {
	f := newFixture(t, actor.Config{})
	if _, err := f.sys.Invoke(context.Background(), id("x"), "kv", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	tx, _ := f.store.Begin(context.Background())
	defer tx.Rollback()
	ctx := context.Background()
	if _, err := tx.Get(ctx, append(id("x").KVPrefix(), 'k')); err != nil {
		t.Fatalf("KV write not committed: %v", err)
	}
	if _, err := tx.Get(ctx, actor.IndexKey("by_note", "hello", "x")); err != nil {
		t.Fatalf("index entry not committed: %v", err)
	}
	if s := f.storedState(t, "x"); !strings.Contains(s, `"Count":1`) {
		t.Fatalf("state not committed: %q", s)
	}
}

func TestErrorRollsBackStateAndKV(t *testing.T) {
	f := newFixture(t, actor.Config{})
	f.invoke(t, "x", "incr")
	for _, op := range []string{"fail-after-write", "panic"} {
		_, err := f.sys.Invoke(context.Background(), id("x"), op, nil)
		if err == nil {
			t.Fatalf("%s: no error", op)
		}
		if op == "panic" && !errors.Is(err, actor.ErrPanic) {
			t.Fatalf("panic: err = %v, want ErrPanic", err)
		}
		if got := f.invoke(t, "x", "get"); got != "1" {
			t.Fatalf("after %s: in-memory count = %s, want 1", op, got)
		}
	}
	if s := f.storedState(t, "x"); !strings.Contains(s, `"Count":1,`) {
		t.Fatalf("stored state = %q", s)
	}
	tx, _ := f.store.Begin(context.Background())
	defer tx.Rollback()
	if _, err := tx.Get(context.Background(), append(id("x").KVPrefix(), 'k')); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("rolled-back KV write is visible: %v", err)
	}
}

func TestInvocationTimeoutRollsBack(t *testing.T) {
	f := newFixture(t, actor.Config{InvokeTimeout: 20 * time.Millisecond})
	f.invoke(t, "x", "incr")
	for _, op := range []string{"slow", "ignore-deadline"} {
		if _, err := f.sys.Invoke(context.Background(), id("x"), op, nil); !errors.Is(err, actor.ErrTimeout) {
			t.Fatalf("%s: err = %v, want ErrTimeout", op, err)
		}
		if got := f.invoke(t, "x", "get"); got != "1" {
			t.Fatalf("after %s timeout: count = %s, want 1", op, got)
		}
	}
}

func TestFullMailboxIsBusy(t *testing.T) {
	f := newFixture(t, actor.Config{MailboxDepthMax: 2})
	first := make(chan error, 1)
	go func() {
		_, err := f.sys.Invoke(context.Background(), id("x"), "rendezvous", nil)
		first <- err
	}()
	<-f.act.rendezvous // x is now busy inside an invocation
	// Each call below queues, then gives up waiting; its message keeps its
	// mailbox slot. With two slots, the third call must be refused at once.
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := f.sys.Invoke(ctx, id("x"), "get", nil)
		cancel()
		switch {
		case i < 3 && !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("call %d: err = %v, want it queued until its deadline", i, err)
		case i == 3 && !errors.Is(err, actor.ErrBusy):
			t.Fatalf("call %d with a full mailbox: err = %v, want ErrBusy", i, err)
		}
	}
	close(f.act.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := f.invoke(t, "x", "get"); got != "0" {
		t.Fatalf("count = %s", got)
	}
}

func TestStaleActivationIsFenced(t *testing.T) {
	store := memory.New()
	n1 := newFixture(t, actor.Config{Store: store})
	n2 := newFixture(t, actor.Config{Store: store})
	n1.invoke(t, "x", "incr") // n1 activates x at epoch 1
	n2.invoke(t, "x", "incr") // n2 activates x at epoch 2: count 2
	_, err := n1.sys.Invoke(context.Background(), id("x"), "incr", nil)
	if !errors.Is(err, actor.ErrFenced) {
		t.Fatalf("stale activation's commit: err = %v, want ErrFenced", err)
	}
	if s := n1.storedState(t, "x"); !strings.Contains(s, `"Count":2,`) {
		t.Fatalf("stored state after fenced commit = %q, want count 2", s)
	}
	// The fenced activation ended; n1's next message reactivates from storage.
	if got := n1.invoke(t, "x", "incr"); got != "3" {
		t.Fatalf("after reactivation count = %s, want 3", got)
	}
}

func TestIdleDeactivation(t *testing.T) {
	f := newFixture(t, actor.Config{IdleTimeout: 20 * time.Millisecond})
	f.invoke(t, "x", "incr")
	deadline := time.Now().Add(10 * time.Second)
	for f.sys.IsActive(id("x")) {
		if time.Now().After(deadline) {
			t.Fatal("idle actor never deactivated")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f.act.deactivated.Load() != 1 {
		t.Fatalf("OnDeactivate ran %d times, want 1", f.act.deactivated.Load())
	}
	if got := f.invoke(t, "x", "incr"); got != "2" {
		t.Fatalf("after reactivation count = %s, want 2", got)
	}
	if f.act.activated.Load() != 2 {
		t.Fatalf("OnActivate ran %d times, want 2", f.act.activated.Load())
	}
}

func TestExplicitDeactivate(t *testing.T) {
	f := newFixture(t, actor.Config{})
	f.invoke(t, "x", "incr")
	if err := f.sys.Deactivate(context.Background(), id("x")); err != nil {
		t.Fatal(err)
	}
	if f.sys.IsActive(id("x")) || f.act.deactivated.Load() != 1 {
		t.Fatalf("active=%v hooks=%d after Deactivate", f.sys.IsActive(id("x")), f.act.deactivated.Load())
	}
	if err := f.sys.Deactivate(context.Background(), id("x")); err != nil {
		t.Fatalf("deactivating an inactive actor: %v", err)
	}
	f.invoke(t, "x", "bye") // asks to be deactivated after committing
	if f.sys.IsActive(id("x")) {
		// DeactivateAfter runs after the reply; give it a moment.
		deadline := time.Now().Add(10 * time.Second)
		for f.sys.IsActive(id("x")) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if f.sys.IsActive(id("x")) {
		t.Fatal("DeactivateAfter did not deactivate")
	}
	if got := f.invoke(t, "x", "get"); got != "2" {
		t.Fatalf("count after reload = %s, want 2", got)
	}
}

func TestClearRemovesStateAndKV(t *testing.T) {
	f := newFixture(t, actor.Config{})
	if _, err := f.sys.Invoke(context.Background(), id("x"), "kv", []byte("v")); err != nil {
		t.Fatal(err)
	}
	f.invoke(t, "x", "clear")
	if s := f.storedState(t, "x"); s != "" {
		t.Fatalf("state after Clear = %q", s)
	}
	if got := f.invoke(t, "x", "get"); got != "0" {
		t.Fatalf("in-memory count after Clear = %s", got)
	}
	tx, _ := f.store.Begin(context.Background())
	defer tx.Rollback()
	kvs, err := tx.Scan(context.Background(), storage.ScanOptions{Start: id("x").KVPrefix(), End: id("x").KVPrefix().End(), Limit: 10})
	if err != nil || len(kvs) != 0 {
		t.Fatalf("KV after Clear: %d keys, %v", len(kvs), err)
	}
}

func TestShutdownDrainsMailboxes(t *testing.T) {
	f := newFixture(t, actor.Config{})
	const calls = 50
	errs := make(chan error, calls)
	var sent sync.WaitGroup
	for i := range calls {
		sent.Add(1)
		go func() {
			sent.Done()
			_, err := f.sys.Invoke(context.Background(), id(fmt.Sprint("a", i%5)), "incr", nil)
			errs <- err
		}()
	}
	sent.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.sys.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ok, stopped := 0, 0
	for range calls {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, actor.ErrStopped):
			stopped++ // arrived after Shutdown began
		default:
			t.Fatal(err)
		}
	}
	if ok == 0 {
		t.Fatal("no invocation completed before shutdown")
	}
	// Every acknowledged increment is durable.
	total := 0
	for i := range 5 {
		var n int
		fmt.Sscanf(f.storedState(t, fmt.Sprint("a", i)), `{"Count":%d`, &n)
		total += n
	}
	if total != ok {
		t.Fatalf("stored increments = %d, acknowledged = %d", total, ok)
	}
	if f.sys.ActiveCount() != 0 {
		t.Fatalf("%d actors active after shutdown", f.sys.ActiveCount())
	}
	if _, err := f.sys.Invoke(context.Background(), id("late"), "get", nil); !errors.Is(err, actor.ErrStopped) {
		t.Fatalf("invoke after shutdown: err = %v, want ErrStopped", err)
	}
}

// failingStore fails commits while armed, after applying them when
// applied is set (the outcome the caller cannot know).
type failingStore struct {
	*memory.Store
	armed, applied atomic.Bool
}

func (s *failingStore) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(s), nil
}

func (s *failingStore) Commit(ctx context.Context, req *storage.CommitRequest) error {
	if !s.armed.Load() {
		return s.Store.Commit(ctx, req)
	}
	if s.applied.Load() {
		if err := s.Store.Commit(ctx, req); err != nil {
			return err
		}
	}
	return errors.New("injected: connection lost during commit")
}

func TestIndeterminateCommitReloadsFromStorage(t *testing.T) {
	for _, applied := range []bool{false, true} {
		t.Run(fmt.Sprint("applied=", applied), func(t *testing.T) {
			store := &failingStore{Store: memory.New()}
			f := newFixture(t, actor.Config{Store: store})
			f.invoke(t, "x", "incr")
			store.armed.Store(true)
			store.applied.Store(applied)
			if _, err := f.sys.Invoke(context.Background(), id("x"), "incr", nil); err == nil {
				t.Fatal("commit failure not reported")
			}
			store.armed.Store(false)
			want := "1"
			if applied {
				want = "2"
			}
			// Memory must agree with storage, whatever the commit did.
			if got := f.invoke(t, "x", "get"); got != want {
				t.Fatalf("count = %s, want %s (what storage holds)", got, want)
			}
		})
	}
}

func TestInvalidIDs(t *testing.T) {
	f := newFixture(t, actor.Config{})
	for _, bad := range []actor.ID{
		{Namespace: "", ID: "x"}, {Namespace: "Counters", ID: "x"}, {Namespace: "counters", ID: ""},
		{Namespace: "counters", ID: "a/b"}, {Namespace: "counters", ID: strings.Repeat("x", 129)},
	} {
		if _, err := f.sys.Invoke(context.Background(), bad, "get", nil); !errors.Is(err, actor.ErrInvalidID) {
			t.Errorf("%q: err = %v, want ErrInvalidID", bad, err)
		}
	}
	if _, err := f.sys.Invoke(context.Background(), actor.ID{Namespace: "nobody", ID: "x"}, "get", nil); !errors.Is(err, actor.ErrUnknownType) {
		t.Errorf("unknown namespace: err = %v", err)
	}
}

func TestAfterCommit(t *testing.T) {
	f := newFixture(t, actor.Config{})
	if _, err := f.sys.Invoke(context.Background(), id("x"), "hook", []byte("fail")); err == nil {
		t.Fatal("failing invocation succeeded")
	}
	if f.act.committedHooks.Load() != 0 || f.invoke(t, "x", "get") != "0" {
		t.Fatalf("a rolled-back invocation ran its hook: hooks=%d", f.act.committedHooks.Load())
	}
	for range 3 {
		f.invoke(t, "x", "hook")
	}
	if got := f.act.committedHooks.Load(); got != 3 {
		t.Fatalf("after-commit hooks ran %d times, want 3", got)
	}
}

// Shared keys are read and written in the invocation's transaction: a
// rival write between the read and the commit fails the commit with a
// conflict and rolls back everything, state included.
func TestSharedKeysAreTransactional(t *testing.T) {
	f := newFixture(t, actor.Config{})
	f.invoke(t, "a", "shared-incr")
	f.invoke(t, "b", "shared-incr")
	shared := func() string {
		tx, err := f.store.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		v, err := tx.Get(context.Background(), actor.SharedKey("ctr", "x"))
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	if got := shared(); got != "2" {
		t.Fatalf("shared counter = %s, want 2", got)
	}
	f.act.rival = func() {
		f.act.rival = nil
		tx, err := f.store.Begin(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		defer tx.Rollback()
		if err := tx.Set(actor.SharedKey("ctr", "x"), []byte("10")); err != nil {
			t.Error(err)
		}
		if err := tx.Commit(context.Background()); err != nil {
			t.Error(err)
		}
	}
	if _, err := f.sys.Invoke(context.Background(), id("a"), "shared-incr", nil); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("racing invocation: %v, want a conflict", err)
	}
	if got := shared(); got != "10" {
		t.Fatalf("shared counter = %s after the conflict, want the rival's 10", got)
	}
	if got := f.invoke(t, "a", "get"); got != "1" {
		t.Fatalf("state after the conflict = %s, want 1 (rolled back)", got)
	}
	f.invoke(t, "a", "shared-incr")
	if got := shared(); got != "11" {
		t.Fatalf("shared counter = %s, want 11", got)
	}
	if _, err := f.sys.Invoke(context.Background(), id("a"), "shared-outside", nil); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("write outside the shared space: %v", err)
	}
}
