package sim

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm/llmtest"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage/memory"
)

// TestRealServiceRunsDeterministically drives the production actor runtime
// and AgentService inside the scheduler and checks seeds replay exactly.
func TestRealServiceRunsDeterministically(t *testing.T) {
	run := func(seed uint64) (uint64, int) {
		s := New(seed)
		ok := 0
		err := s.Run(func(r rt.Runtime) {
			node := s.NewNode("n1")
			nr := node.Runtime()
			store := memory.New()
			sys := actor.NewSystem(actor.Config{Runtime: nr, Store: store, IdleTimeout: time.Minute, Logger: slog.New(slog.DiscardHandler)})
			svc, err := service.New(nr, store, sys, llmtest.Echo())
			if err != nil {
				t.Error(err)
				return
			}
			ctx := context.Background()
			done := rt.NewQueue[int](r, 16)
			for c := range 4 {
				r.Go(fmt.Sprint("client", c), func() {
					n := 0
					ag, err := svc.CreateAgent(ctx, agent.CreateRequest{AgentType: agent.TypeMemGPTV2})
					if err == nil {
						n++
						for range 3 {
							if _, err := svc.SendMessage(ctx, ag.ID, agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: "hi"}}}); err == nil {
								n++
							}
							r.Sleep(ctx, time.Duration(rt.Intn(r.Rand("think"), 120))*time.Second)
						}
						if got, err := svc.GetAgent(ctx, ag.ID); err == nil && got.MessageCount == 9 {
							n++
						}
					}
					done.TryPush(n)
				})
			}
			for range 4 {
				n, _ := done.Recv(ctx)
				ok += n
			}
			if st := sys.Stats(); st.Deactivations == 0 {
				t.Errorf("no idle deactivation in %v of virtual time", r.Now().Sub(Epoch))
			}
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		return s.TraceHash(), ok
	}
	for seed := uint64(1); seed <= 5; seed++ {
		h1, ok1 := run(seed)
		h2, ok2 := run(seed)
		if h1 != h2 || ok1 != ok2 {
			t.Fatalf("seed %d: trace %x/%x ok %d/%d", seed, h1, h2, ok1, ok2)
		}
		if ok1 != 20 {
			t.Fatalf("seed %d: %d of 20 operations succeeded", seed, ok1)
		}
	}
}
