package sim

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
)

// Timeouts inside a simulated node (virtual time).
const (
	simInvokeTimeout = time.Minute
	simIdleTimeout   = 30 * time.Second
	simMailboxDepth  = 64
	// restartDelayMax bounds how long a crashed node stays down.
	restartDelayMax = 10 * time.Second
)

// server is one simulated Kelpie node: the production actor runtime and
// AgentService on a simulated node, over the shared simulated disk. A
// crash discards it; a restart builds a new one from durable state.
type server struct {
	w    *world
	node *Node
	// Per incarnation:
	sys       *actor.System
	svc       *service.Service
	ctx       context.Context // ends when the incarnation crashes
	cancel    context.CancelFunc
	down      bool
	restartAt time.Time
}

// boot starts a fresh incarnation of the node's software.
func (n *server) boot() error {
	w := n.w
	nr := n.node.Runtime()
	var st storage.Store = &fenceAudit{Store: w.store, w: w}
	if w.cfg.WrapStore != nil {
		st = &fenceAudit{Store: w.cfg.WrapStore(w.store, nr), w: w}
	}
	n.sys = actor.NewSystem(actor.Config{
		Runtime: nr, Store: st, InvokeTimeout: simInvokeTimeout, IdleTimeout: simIdleTimeout,
		MailboxDepthMax: simMailboxDepth, Logger: slog.New(slog.DiscardHandler),
		// A panic is a broken invariant or a bug: it fails the seed
		// (the caller's ErrPanic alone would count as an unknown outcome).
		OnPanic: func(id actor.ID, value any, stack []byte) {
			w.sim.Fail(fmt.Errorf("actor %s panicked: %v\n%s", id, value, stack))
		},
		CheckState: true,
		ErrorHop:   func(err error) error { return agent.EncodeError(err).Err() },
	})
	model := NewLLM(nr, w.inj)
	model.Issued = w.shared.issued
	model.Prompted, model.CustomCalled = w.shared.prompted, w.tools.customCalled
	model.Summaries, model.SummaryFaults = &w.res.Summaries, &w.res.SummaryFaults
	svc, err := service.NewWithActor(nr, st, n.sys, model, w.cfg.WrapActor, service.WithToolExecutor(NewTools(nr, w.inj, &w.res.SandboxCalls, w.tools.sandboxResults)))
	if err != nil {
		return err
	}
	n.svc = svc
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.down = false
	n.recoverRuns()
	return nil
}

// crash takes the node down where it stands. Called from one of the
// node's own tasks it does not return.
func (n *server) crash() {
	w := n.w
	if n.down {
		return
	}
	n.down = true
	w.crashes++
	n.restartAt = w.sim.Now().Add(time.Duration(1+rt.Intn(w.rng, int(restartDelayMax/time.Millisecond))) * time.Millisecond)
	n.cancel()
	w.store.Crash()
	n.node.Crash()
}

// fenceAudit checks "at most one live activation per agent" at the only
// place it matters: a commit fenced by an epoch older than one already
// committed means two activations both wrote.
type fenceAudit struct {
	storage.Store
	w *world
}

func (f *fenceAudit) Begin(ctx context.Context) (*storage.Txn, error) {
	inner, ok := f.Store.(storage.Backend)
	if !ok {
		return nil, fmt.Errorf("sim: store %T is not a storage.Backend", f.Store)
	}
	return storage.NewTxn(auditBackend{Backend: inner, w: f.w}), nil
}

type auditBackend struct {
	storage.Backend
	w *world
}

func (a auditBackend) Commit(ctx context.Context, req *storage.CommitRequest) error {
	fences := make([]storage.Fence, len(req.Fences))
	copy(fences, req.Fences)
	err := a.Backend.Commit(ctx, req)
	if err != nil {
		return err
	}
	for _, fc := range fences {
		k := string(fc.Key)
		if newest := a.w.epochs[k]; fc.Epoch < newest {
			a.w.sim.Fail(fmt.Errorf("invariant: two live activations: a commit fenced by epoch %d of %q succeeded after one fenced by epoch %d", fc.Epoch, fc.Key, newest))
		} else {
			a.w.epochs[k] = fc.Epoch
		}
	}
	return nil
}
