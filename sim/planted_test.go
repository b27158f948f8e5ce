package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// The planted-bug tests prove the simulator finds real bugs: each plants a
// known bug in test code and requires a failing seed within plantedSeedsMax.
// A control run of the same configuration without the bug must pass.

const plantedSeedsMax = 1000

// hunt runs seeds until one fails, returning how many it took.
func hunt(t *testing.T, configure func(seed uint64) Config) uint64 {
	t.Helper()
	for seed := uint64(1); seed <= plantedSeedsMax; seed++ {
		res := Run(configure(seed))
		if res.Err != nil {
			t.Logf("found after %d seeds: %s\n%v", seed, res.Summary(), firstLine(res.Err))
			return seed
		}
	}
	t.Fatalf("the planted bug survived %d seeds", plantedSeedsMax)
	return 0
}

// control runs the configuration without the bug over a few seeds; it
// must pass, or the hunt proves nothing.
func control(t *testing.T, seeds uint64, configure func(seed uint64) Config) {
	t.Helper()
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := configure(seed)
		cfg.WrapActor, cfg.WrapStore = nil, nil
		if res := Run(cfg); res.Err != nil {
			t.Fatalf("control without the bug fails: %s\n%v", res.Summary(), res.Err)
		}
	}
}

func firstLine(err error) string {
	s := err.Error()
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// (a) The findings' data-loss bug: the agent actor keeps a created agent
// in memory and persists it only when it is deactivated.
type persistOnDeactivate struct {
	inner *agent.Actor
	mem   map[string]*agent.Agent
}

func (p *persistOnDeactivate) Invoke(ctx context.Context, c *actor.Context[agent.State], op string, payload []byte) ([]byte, error) {
	committed := c.State.Agent
	if a, ok := p.mem[c.ID.ID]; ok {
		c.State.Agent = a
	}
	reply, err := p.inner.Invoke(ctx, c, op, payload)
	if err == nil && (op == agent.OpCreate.Name || p.mem[c.ID.ID] != nil) {
		p.mem[c.ID.ID] = c.State.Agent // the bug: keep it in memory only…
		c.State.Agent = committed      // …so the invocation commits no state
	}
	return reply, err
}

func (p *persistOnDeactivate) OnDeactivate(ctx context.Context, c *actor.Context[agent.State]) error {
	if a, ok := p.mem[c.ID.ID]; ok {
		c.State.Agent = a
		delete(p.mem, c.ID.ID)
	}
	return nil
}

func TestPlantedPersistOnlyAtDeactivation(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapActor = func(a *agent.Actor) actor.Actor[agent.State] {
			return &persistOnDeactivate{inner: a, mem: map[string]*agent.Agent{}}
		}
		return cfg
	}
	control(t, 20, configure)
	hunt(t, configure)
}

// splitCommits is a backend that commits a transaction's state blobs and
// everything else (KV writes, index entries) as two transactions.
type splitCommits struct{ *Store }

func (s splitCommits) Begin(ctx context.Context) (*storage.Txn, error) { return storage.NewTxn(s), nil }

func (s splitCommits) Commit(ctx context.Context, req *storage.CommitRequest) error {
	stateSuffix := tuple.Pack("state")
	first := &storage.CommitRequest{Reads: req.Reads, Scans: req.Scans, Fences: req.Fences, RangeDeletes: req.RangeDeletes}
	second := &storage.CommitRequest{Fences: req.Fences}
	for _, w := range req.Writes {
		if bytes.HasSuffix(w.Key, stateSuffix) {
			second.Writes = append(second.Writes, w)
		} else {
			first.Writes = append(first.Writes, w)
		}
	}
	if err := s.Store.Commit(ctx, first); err != nil || len(second.Writes) == 0 {
		return err
	}
	return s.Store.Commit(ctx, second)
}

// (b) State and KV committed in separate transactions.
func TestPlantedStateAndKVInSeparateTransactions(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapStore = func(s *Store, _ rt.Runtime) storage.Store { return splitCommits{s} }
		return cfg
	}
	control(t, 20, configure)
	hunt(t, configure)
}

// ackEarly acknowledges a commit at once and applies it later, in the
// background: the write is lost if the node crashes first.
type ackEarly struct {
	*Store
	r rt.Runtime
}

func (a ackEarly) Begin(ctx context.Context) (*storage.Txn, error) { return storage.NewTxn(a), nil }

func (a ackEarly) Commit(ctx context.Context, req *storage.CommitRequest) error {
	a.r.Go("lazy-commit", func() {
		a.r.Sleep(context.Background(), 0)
		a.Store.Commit(context.Background(), req)
	})
	return nil
}

// (c) Acknowledging before the durable commit.
func TestPlantedAckBeforeDurableCommit(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapStore = func(s *Store, r rt.Runtime) storage.Store { return ackEarly{Store: s, r: r} }
		return cfg
	}
	control(t, 20, configure)
	hunt(t, configure)
}

// noFences drops the epoch check from every commit.
type noFences struct{ *Store }

func (n noFences) Begin(ctx context.Context) (*storage.Txn, error) { return storage.NewTxn(n), nil }

func (n noFences) Commit(ctx context.Context, req *storage.CommitRequest) error {
	stripped := *req
	stripped.Fences = nil
	return n.Store.Commit(ctx, &stripped)
}

// (d) Two activations of one agent committing without the epoch check:
// two nodes share the store and clients spread each agent's writes over
// both, so both activate it.
func TestPlantedTwoActivationsWithoutEpochCheck(t *testing.T) {
	configure := func(seed uint64) Config {
		return Config{
			Seed: seed, Nodes: 2, Clients: 4, OpsPerClient: 20,
			// Writes only: without a directory, a read served by the other
			// node's older activation could be stale even with fencing.
			Mix:       Mix{Create: 2, Update: 3, Send: 4},
			WrapStore: func(s *Store, _ rt.Runtime) storage.Store { return noFences{s} },
		}
	}
	control(t, 20, configure)
	hunt(t, configure)
}

// blindSharedReads drops the reads of shared blocks from every commit's
// read set: an edit of a shared block no longer conflicts with one that
// landed since it read the block, so the later commit writes its value
// (built on the old one) over the other's — a lost update.
type blindSharedReads struct{ *Store }

func (b blindSharedReads) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(b), nil
}

func (b blindSharedReads) Commit(ctx context.Context, req *storage.CommitRequest) error {
	blocks := actor.SharedKey("block")
	stripped := *req
	stripped.Reads = nil
	for _, rd := range req.Reads {
		if !bytes.HasPrefix(rd.Key, blocks) {
			stripped.Reads = append(stripped.Reads, rd)
		}
	}
	return b.Store.Commit(ctx, &stripped)
}

// sharedBlockConfig is a workload where many agents append to the shared
// block at once: twelve clients sending with short pauses, slow storage
// (every read and commit waits 1–50 ms, so edits overlap between their
// read of the block and their commit), the other standard faults, and no
// whole-value writes (each would excuse the appends before it).
func sharedBlockConfig(seed uint64) Config {
	cfg := StandardConfig(seed)
	cfg.Clients, cfg.OpsPerClient, cfg.ThinkTimeMax = 12, 12, 200*time.Millisecond
	cfg.Mix = Mix{Create: 2, Get: 1, Send: 8}
	for i := range cfg.Rules {
		if cfg.Rules[i].Fault == StorageLatency {
			cfg.Rules[i].Probability = 1
		}
	}
	return cfg
}

// (e) Shared-block edits committed without their read in the read set.
func TestPlantedSharedBlockLostUpdate(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := sharedBlockConfig(seed)
		cfg.WrapStore = func(s *Store, _ rt.Runtime) storage.Store { return blindSharedReads{s} }
		return cfg
	}
	control(t, 5, configure) // TestSharedBlockContention runs more

	hunt(t, configure)
}

// sharedWriteFirst commits a transaction's shared-block writes on their
// own, before the rest of it: a step's edit of the block lands even when
// the step itself then fails (a write fault, a crash, a fence), and the
// driver's retry of the step applies it again.
type sharedWriteFirst struct{ *Store }

func (s sharedWriteFirst) Begin(ctx context.Context) (*storage.Txn, error) {
	return storage.NewTxn(s), nil
}

func (s sharedWriteFirst) Commit(ctx context.Context, req *storage.CommitRequest) error {
	blocks := actor.SharedKey("block")
	first := &storage.CommitRequest{}
	rest := *req
	rest.Writes = nil
	for _, w := range req.Writes {
		if bytes.HasPrefix(w.Key, blocks) {
			first.Writes = append(first.Writes, w)
		} else {
			rest.Writes = append(rest.Writes, w)
		}
	}
	if len(first.Writes) > 0 && len(rest.Writes) > 0 {
		if err := s.Store.Commit(ctx, first); err != nil {
			return err
		}
	} else {
		rest.Writes = req.Writes
	}
	return s.Store.Commit(ctx, &rest)
}

// (f) A shared-block edit committed outside its step's transaction.
func TestPlantedSharedBlockEditOutsideTransaction(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapStore = func(s *Store, _ rt.Runtime) storage.Store { return sharedWriteFirst{s} }
		return cfg
	}
	hunt(t, configure) // its control is the standard sweep
}

// rewrite is an agent actor whose requests of one operation are changed
// on the way in: T is the operation's request type.
type rewrite[T any] struct {
	*agent.Actor
	op     string
	change func(*T) bool // reports whether it changed the request
}

func (a rewrite[T]) Invoke(ctx context.Context, c *actor.Context[agent.State], op string, payload []byte) ([]byte, error) {
	if op == a.op {
		var req T
		if err := json.Unmarshal(payload, &req); err == nil && a.change(&req) {
			payload, _ = json.Marshal(req)
		}
	}
	return a.Actor.Invoke(ctx, c, op, payload)
}

// convToDefault routes every send to a conversation into the agent's
// default conversation: the conversation's messages land in the wrong
// log, and its own log never shows the acknowledged sends.
func convToDefault(a *agent.Actor) actor.Actor[agent.State] {
	return rewrite[agent.SendRequest]{a, agent.OpSend.Name, func(req *agent.SendRequest) bool {
		changed := req.ConversationID != ""
		req.ConversationID = ""
		return changed
	}}
}

// (g) Sends to a conversation logged in the default conversation.
func TestPlantedConversationSendsInDefaultLog(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapActor = convToDefault
		return cfg
	}
	control(t, 10, configure)
	hunt(t, configure)
}

// dropToolResults loses the results of the tools the driver ran outside
// the actor before they reach the step.
func dropToolResults(a *agent.Actor) actor.Actor[agent.State] {
	return rewrite[agent.ApplyRequest]{a, agent.OpApply.Name, func(req *agent.ApplyRequest) bool {
		changed := len(req.ToolResults) > 0
		req.ToolResults = nil
		return changed
	}}
}

// (h) The sandbox's results dropped between the driver and the step.
func TestPlantedToolResultsDropped(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapActor = dropToolResults
		return cfg
	}
	control(t, 10, configure)
	hunt(t, configure)
}

// TestSandboxInWorkload: the workload's custom tool runs in the simulated
// sandbox and its MCP tool on the simulated MCP server, and both's faults
// fire.
func TestSandboxInWorkload(t *testing.T) {
	const seeds = 60
	calls, fired, mcpCalls, mcpFired := 0, uint64(0), uint64(0), uint64(0)
	for seed := uint64(1); seed <= seeds; seed++ {
		res := Run(StandardConfig(seed))
		if res.Err != nil {
			t.Fatalf("%s\n%v", res.Summary(), res.Err)
		}
		calls += res.SandboxCalls
		for _, f := range []Fault{ToolTimeout, ToolCrash, ToolMemoryKill} {
			fired += res.Faults[f].Fired
		}
		mcpCalls += res.Faults[MCPTimeout].Checked
		mcpFired += res.Faults[MCPTimeout].Fired + res.Faults[MCPConnectionDropped].Fired
	}
	if calls == 0 || fired == 0 || mcpCalls == 0 || mcpFired == 0 {
		t.Errorf("%d seeds: %d sandbox calls (%d faults fired), %d MCP calls (%d faults fired): each must be > 0", seeds, calls, fired, mcpCalls, mcpFired)
	}
	t.Logf("%d seeds: %d sandbox calls (%d faults fired), %d MCP calls (%d faults fired)", seeds, calls, fired, mcpCalls, mcpFired)
}

// skipPastSummary moves the default conversation's context start one
// message further after each compaction, without its summary covering
// that message: a message leaves the model's view unsummarised.
type skipPastSummary struct{ *agent.Actor }

func (a skipPastSummary) Invoke(ctx context.Context, c *actor.Context[agent.State], op string, payload []byte) ([]byte, error) {
	reply, err := a.Actor.Invoke(ctx, c, op, payload)
	var req agent.CompactRequest
	if err == nil && op == agent.OpCompact.Name && json.Unmarshal(payload, &req) == nil && req.Plan.ConversationID == "" {
		if ag := c.State.Agent; ag != nil && ag.Summary != nil && ag.ContextStart == ag.Summary.Through && ag.ContextStart+1 < ag.NextSeq {
			ag.ContextStart++
		}
	}
	return reply, err
}

// (i) A compaction that drops a message from view without summarising it.
func TestPlantedUnsummarisedEviction(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapActor = func(a *agent.Actor) actor.Actor[agent.State] { return skipPastSummary{a} }
		return cfg
	}
	control(t, 5, configure)
	hunt(t, configure)
}

// rewindSeq hands out the default conversation's last sequence number
// again after every finished run: the next message would overwrite a
// logged one. Only the agent's own assertion (next seq never below the
// count of finished messages) sees it before anything is committed.
type rewindSeq struct{ *agent.Actor }

func (a rewindSeq) Invoke(ctx context.Context, c *actor.Context[agent.State], op string, payload []byte) ([]byte, error) {
	reply, err := a.Actor.Invoke(ctx, c, op, payload)
	if ag := c.State.Agent; err == nil && op == agent.OpApply.Name && ag != nil && ag.ActiveRun == nil && ag.NextSeq > 0 {
		ag.NextSeq--
	}
	return reply, err
}

// (j) A broken invariant fails the seed: the panic the assertion raises
// reaches the simulator (through actor.Config.OnPanic), where the caller
// alone would see ErrPanic and count an unknown outcome.
func TestPlantedInvariantFailsSeed(t *testing.T) {
	configure := func(seed uint64) Config {
		cfg := StandardConfig(seed)
		cfg.WrapActor = func(a *agent.Actor) actor.Actor[agent.State] { return rewindSeq{a} }
		return cfg
	}
	control(t, 5, configure)
	seed := hunt(t, configure)
	if err := Run(configure(seed)).Err; !strings.Contains(err.Error(), "invariant violated: conversation") {
		t.Fatalf("seed %d fails, but not by the agent's assertion: %v", seed, firstLine(err))
	}
}
