package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/sim/check"
	"github.com/kelpie-ai/kelpie/storage"
)

// Config describes one simulation run: the workload, the faults, and
// (for the planted-bug tests) deliberately broken parts.
type Config struct {
	// Seed drives every decision.
	Seed uint64
	// Clients is the number of concurrent clients (default 4).
	Clients int
	// OpsPerClient is each client's operation count (default 20).
	OpsPerClient int
	// Mix weighs the operations clients choose (zero: DefaultMix).
	Mix Mix
	// Rules arm faults.
	Rules []Rule
	// NodeCrashes adds random whole-node crashes, with restarts.
	NodeCrashes bool
	// ForceDeactivate deactivates each new agent between its create and
	// the read that follows, so the read comes from storage.
	ForceDeactivate bool
	// Nodes is the number of nodes sharing the store (default 1). Clients
	// pick a node at random per operation.
	Nodes int
	// WrapStore, WrapActor plant bugs (tests only).
	WrapStore func(s *Store, r rt.Runtime) storage.Store
	WrapActor func(*agent.Actor) actor.Actor[agent.State]
	// Record keeps the decision log in the result.
	Record bool
	// ThinkTimeMax bounds a client's pause between operations (zero:
	// 2 s); shorter pauses make more operations overlap.
	ThinkTimeMax time.Duration
}

// Mix weighs client operations.
type Mix struct {
	Create, Get, Update, Delete, Send, List int
	// PatchBlock replaces the shared block's whole value (UpdateBlock).
	PatchBlock int
	// Conversation creates, uses or deletes a conversation (conversation.go).
	Conversation int
}

// DefaultMix is the workload's operation mix.
var DefaultMix = Mix{Create: 3, Get: 4, Update: 3, Delete: 1, Send: 4, List: 1, PatchBlock: 1, Conversation: 4}

// The shared block and approvals in the workload. Before the clients
// start, one standalone block (labelled SharedLabel) is created; a new
// agent is attached to it with probability 1-1/attachOneIn and made to
// need approval for conversation_search with probability
// 1/approvalOneIn. A send offers the client-side tool with probability
// 1/clientToolsOneIn. A send that ends with requires_approval is answered
// at once with probability 1/2; otherwise the next send to the agent is
// refused (ErrApprovalPending) and its client answers instead.
const (
	attachOneIn      = 4
	approvalOneIn    = 3
	clientToolsOneIn = 3
	// Of the PatchBlock operations, 1/deleteBlockOneIn delete the shared
	// block instead and create and attach the next generation
	// (replaceTeam), and 1/editToolOneIn edit the custom tool (editTool).
	deleteBlockOneIn = 8
	editToolOneIn    = 3
	// sharedBlockLimit is the shared block's character limit.
	sharedBlockLimit = 200000
	// Agents' context windows are contextWindowMin plus up to
	// contextWindowSpread tokens: a few turns fill them, so compaction
	// runs in most seeds.
	contextWindowMin, contextWindowSpread = 1500, 1000
	// fillerWordsMax bounds the words of filler a user message carries,
	// so that turns fill the windows.
	fillerWordsMax = 400
)

// filler returns up to fillerWordsMax words of text for a user message.
func (w *world) filler() string {
	return strings.Repeat(" lorem", rt.Intn(w.rng, fillerWordsMax))
}

// Result summarizes a run.
type Result struct {
	Seed    uint64
	Trace   uint64
	Steps   uint64
	Ops     int
	OK      int
	Failed  int
	Unknown int
	Crashes int
	// Shared-block and approval figures: appends to the shared block
	// known to have committed, whole-value writes acknowledged, sends that
	// stopped for approval, sends refused while approval was pending,
	// and approval answers acknowledged.
	SharedAppends, SharedWrites, ApprovalStops, ApprovalRefused, ApprovalAnswers int
	// Shared-record figures: shared-block deletions acknowledged, custom
	// tool edits and deletions acknowledged, calls to the custom tool in
	// the final logs, and those made after their name was gone.
	BlockDeletes, ToolEdits, ToolDeletes, CustomToolCalls, StaleToolCalls int
	// Conversation figures: conversations created (acknowledged),
	// messages in their final logs, and sends to a conversation made
	// while another send to the same agent was in flight.
	Conversations, ConversationMessages, ConversationOverlaps int
	// SandboxCalls counts the calls the simulated tool sandbox ran.
	SandboxCalls int
	// Compaction figures: summarizer calls answered, faults injected into
	// summarizer calls, and compactions in the final logs.
	Summaries, SummaryFaults, Compactions int
	Faults                                map[Fault]FaultStats
	// Run-handling figures: deletes issued while a send to the agent
	// waited, and runs in progress at the final restart that the nodes
	// ended (resumed or failed) with no client request.
	DeletesMidRun, RunsResumed int
	// Virtual is the virtual time the run took.
	Virtual time.Duration
	// Err is the first failure: an invariant violation, a non-linearizable
	// history, or a simulator error. nil means the seed passed.
	Err error
	// Log is the decision log (Config.Record).
	Log []string
}

// Fired returns how many faults fired in the run.
func (r *Result) Fired() uint64 {
	var n uint64
	for _, st := range r.Faults {
		n += st.Fired
	}
	return n
}

// Summary is the one-line report of a run.
func (r *Result) Summary() string {
	status := "ok"
	if r.Err != nil {
		status = "FAIL"
	}
	return fmt.Sprintf("%s seed=%d ops=%d ok=%d failed=%d unknown=%d crashes=%d faults=%d shared=%d/%d/%d approvals=%d/%d/%d tool=%d/%d/%d/%d conversations=%d/%d compactions=%d/%d/%d midrun=%d resumed=%d steps=%d virtual=%v trace=%016x",
		status, r.Seed, r.Ops, r.OK, r.Failed, r.Unknown, r.Crashes, r.Fired(), r.SharedAppends, r.SharedWrites, r.BlockDeletes,
		r.ApprovalStops, r.ApprovalRefused, r.ApprovalAnswers, r.ToolEdits, r.ToolDeletes, r.CustomToolCalls, r.StaleToolCalls,
		r.Conversations, r.ConversationMessages, r.Compactions, r.Summaries, r.SummaryFaults, r.DeletesMidRun, r.RunsResumed, r.Steps, r.Virtual.Round(time.Millisecond), r.Trace)
}

// world is the state of one run.
type world struct {
	cfg     Config
	sim     *Sim
	inj     *Injector
	store   *Store
	rng     rt.Rand
	servers []*server
	hist    check.History
	known   []string // IDs of agents whose create returned OK
	final   map[string]check.Final
	crashes int
	epochs  map[string]uint64
	res     *Result
	// team is the current generation of the shared block (nil if none:
	// its create failed, or it is being replaced); teams holds every
	// generation, teamAgents the agents the current one may be attached
	// to. appendList holds every append to the shared block any model
	// issued, appends indexes it by token; present holds the agents whose
	// final log was read.
	team       *check.SharedBlock
	teams      []*check.SharedBlock
	teamAgents []string
	replacing  bool
	appendList []check.BlockAppend
	appends    map[string]int
	present    map[string]bool
	// tool is the current custom tool (nil if none); toolGone holds when
	// each of its names was known to be gone; customCalls the calls to
	// it any model made, by call ID; loggedCalls those in the final logs.
	tool          *simTool
	replacingTool bool
	toolGone      map[string]int64
	customCalls   map[string]*check.CustomToolCall
	loggedCalls   []string
	// convs are the conversations whose create was acknowledged, and
	// inFlight counts each agent's sends in progress, by history key.
	convs    []simConversation
	inFlight map[string]map[string]int
	// sandboxResults are the simulated sandbox's results, by call ID;
	// mcpToolID is the workload's MCP tool ("" if its create failed).
	sandboxResults map[string][]string
	mcpToolID      string
	// midRun are the deletes issued while a send to the agent waited
	// (deleteMidRun); runsAtEnd the runs in storage once the restarted
	// nodes had had resumeWait to end the interrupted ones.
	midRun    []check.DeleteDuringSend
	runsAtEnd []check.RunState
	// runsByAgent are the run IDs each agent in runsAtEnd lists from its
	// own ordering of runs, oldest first (check.RunIndexesAgree).
	runsByAgent map[string][]string
	// midRng draws deleteMidRun's choices, apart from the workload's.
	midRng rt.Rand
}

// finalReadAttempts bounds the final read of one agent, which waits for
// runs that resumed after the last restart to finish.
const finalReadAttempts = 120

// clientTimeout bounds one client call (virtual time).
const clientTimeout = 3 * time.Minute

// Run executes one simulation and checks it.
func Run(cfg Config) Result {
	if cfg.Clients == 0 {
		cfg.Clients = 4
	}
	if cfg.OpsPerClient == 0 {
		cfg.OpsPerClient = 20
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 1
	}
	if cfg.ThinkTimeMax <= 0 {
		cfg.ThinkTimeMax = 2 * time.Second
	}
	if cfg.Mix == (Mix{}) {
		cfg.Mix = DefaultMix
	}
	s := New(cfg.Seed)
	if cfg.Record {
		s.Record()
	}
	res := Result{Seed: cfg.Seed}
	w := &world{cfg: cfg, sim: s, inj: NewInjector(s), epochs: make(map[string]uint64), res: &res, appends: make(map[string]int),
		present: make(map[string]bool), inFlight: make(map[string]map[string]int), sandboxResults: make(map[string][]string), toolGone: make(map[string]int64), customCalls: make(map[string]*check.CustomToolCall)}
	for _, r := range cfg.Rules {
		if err := w.inj.Add(r); err != nil {
			res.Err = err
			return res
		}
	}
	err := s.Run(w.main)
	res.Trace = s.TraceHash()
	res.Steps = s.Steps()
	res.Virtual = s.Now().Sub(Epoch)
	res.Faults = w.inj.Stats()
	res.Crashes = w.crashes
	res.Log = s.Log()
	if err == nil && w.final == nil {
		err = errors.New("sim: run ended before the final state was read")
	}
	if err == nil {
		err = w.verify()
	}
	res.Err = err
	return res
}

func (w *world) main(r rt.Runtime) {
	w.rng = r.Rand("world")
	w.midRng = r.Rand("midrun")
	w.store = NewStore(r, w.inj, func() {
		// A commit from a client task (a list's read-only validation) has
		// no server to crash: the store then fails the commit instead.
		if n := w.serverOf(w.sim.currentNode()); n != nil {
			n.crash()
		}
	})
	for i := range w.cfg.Nodes {
		n := &server{w: w, node: w.sim.NewNode(fmt.Sprint("n", i+1))}
		if err := n.boot(); err != nil {
			w.sim.Fail(err)
			return
		}
		w.servers = append(w.servers, n)
	}
	w.createTeam(r, -1)
	w.createTool(r, -1, CustomToolPrefix)
	w.createMCPTool(r)
	ctx := context.Background()
	stop := rt.NewEvent(r)
	r.Go("supervisor", func() { w.supervise(r, stop) })
	done := rt.NewQueue[int](r, w.cfg.Clients)
	for c := range w.cfg.Clients {
		r.Go(fmt.Sprint("client", c), func() {
			w.client(r, c)
			done.TryPush(c)
		})
	}
	for range w.cfg.Clients {
		if _, err := done.Recv(ctx); err != nil {
			w.sim.Fail(err)
			return
		}
	}
	// Quiesce: no more faults; every node shut down cleanly (or found
	// crashed) and rebooted from durable state; then read the final state.
	w.inj.DisableAll()
	stop.Set()
	for _, n := range w.servers {
		if !n.down {
			if err := n.sys.Shutdown(ctx); err != nil {
				w.sim.Fail(fmt.Errorf("shutdown of %s: %w", n.node.Name(), err))
				return
			}
			n.cancel()
		}
		n.node.Restart()
		if err := n.boot(); err != nil {
			w.sim.Fail(err)
			return
		}
	}
	// The runs the crashes and the shutdown interrupted end without any
	// client touching their agents.
	if err := w.awaitRunsEnded(r); err != nil {
		w.sim.Fail(err)
		return
	}
	if err := w.readFinal(r); err != nil {
		w.sim.Fail(err)
	}
}

// supervise restarts crashed nodes, crashes nodes at random (NodeCrashes)
// and ticks the clocks (clock faults).
func (w *world) supervise(r rt.Runtime, stop *rt.Event) {
	ctx := context.Background()
	for !stop.IsSet() {
		r.Sleep(ctx, time.Second)
		for _, n := range w.servers {
			if stop.IsSet() {
				return
			}
			if n.down {
				if !r.Now().Before(n.restartAt) {
					n.node.Restart()
					if err := n.boot(); err != nil {
						w.sim.Fail(err)
						return
					}
				}
				continue
			}
			if w.cfg.NodeCrashes && rt.Intn(w.rng, 100) < 2 {
				n.crash()
			}
			if f, ok := w.inj.Check(OpClockTick); ok {
				switch f {
				case ClockSkew:
					n.node.SkewClock(time.Duration(rt.Intn(w.rng, 1000)-500) * time.Millisecond)
				case ClockJump:
					n.node.SkewClock(time.Duration(rt.Intn(w.rng, 7200)-3600) * time.Second)
				default:
					w.inj.Unhandled(OpClockTick, f)
				}
			}
		}
	}
}

// serverOf returns the server running on node n, or nil.
func (w *world) serverOf(n *Node) *server {
	for _, s := range w.servers {
		if s.node == n {
			return s
		}
	}
	return nil
}

// pick chooses a server for one call; a down node refuses at once.
func (w *world) pick() *server { return w.servers[rt.Intn(w.rng, len(w.servers))] }

// outcome classifies an error as the client sees it.
func outcome(err error) (check.Outcome, bool) {
	var runErr *service.RunError
	switch {
	case err == nil:
		return check.OK, true
	case errors.As(err, &runErr):
		return check.Unknown, false // the run logged its input, then failed
	case errors.Is(err, service.ErrDeletedDuringRun):
		return check.Unknown, false // the run logged its input, then the agent went
	case errors.Is(err, agent.ErrNotFound):
		return check.OK, false
	case errors.Is(err, agent.ErrInvalid), errors.Is(err, actor.ErrBusy), errors.Is(err, actor.ErrStopped),
		errors.Is(err, errNodeDown), errors.Is(err, ErrLLM) && !errors.Is(err, actor.ErrTimeout),
		errors.Is(err, agent.ErrApprovalPending):
		return check.Failed, false
	default:
		return check.Unknown, false
	}
}

var errNodeDown = errors.New("sim: node is down (connection refused)")

// call runs fn against a server as one client operation and records it.
func (w *world) call(r rt.Runtime, client int, op check.Op, fn func(ctx context.Context, svc *service.Service, op *check.Op) error) check.Op {
	op, _ = w.callErr(r, client, op, fn)
	return op
}

// invoke runs fn against a server as one client operation that is not
// part of the agents' history (shared block calls, attaches), and
// returns its call/return times, outcome and error.
func (w *world) invoke(r rt.Runtime, client int, fn func(ctx context.Context, svc *service.Service) error) (check.Op, error) {
	return w.callErr(r, client, check.Op{}, func(ctx context.Context, svc *service.Service, _ *check.Op) error { return fn(ctx, svc) })
}

// callErr is call that also returns the error the client saw. An op of
// no Kind is counted but not recorded in the history.
func (w *world) callErr(r rt.Runtime, client int, op check.Op, fn func(ctx context.Context, svc *service.Service, op *check.Op) error) (check.Op, error) {
	return w.callOn(r, w.pick(), client, op, fn)
}

// callOn is callErr through server n.
func (w *world) callOn(r rt.Runtime, n *server, client int, op check.Op, fn func(ctx context.Context, svc *service.Service, op *check.Op) error) (check.Op, error) {
	op.Client = client
	op.Call = r.Now().Sub(Epoch).Nanoseconds()
	var err error
	if n.down {
		err = errNodeDown
	} else {
		ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
		err = fn(ctx, n.svc, &op)
		cancel()
	}
	op.Return = w.sim.Now().Sub(Epoch).Nanoseconds()
	op.Outcome, op.Found = outcome(err)
	if op.Kind == check.KindList && op.Outcome == check.OK && !op.Found {
		op.Outcome = check.Unknown // "not found" is no answer to a list
	}
	if op.Outcome == check.OK && !op.Found {
		op.Name, op.Messages, op.FirstSeq = "", 0, 0
	}
	w.res.Ops++
	switch op.Outcome {
	case check.OK:
		w.res.OK++
	case check.Failed:
		w.res.Failed++
	default:
		w.res.Unknown++
	}
	if op.Kind != "" && (op.Kind != check.KindCreate || op.Outcome == check.OK) {
		w.hist.Add(op)
	}
	return op, err
}

func (w *world) client(r rt.Runtime, c int) {
	ctx := context.Background()
	mix := w.cfg.Mix
	total := mix.Create + mix.Get + mix.Update + mix.Delete + mix.Send + mix.List + mix.PatchBlock + mix.Conversation
	for i := range w.cfg.OpsPerClient {
		roll := rt.Intn(w.rng, total)
		target := ""
		if len(w.known) > 0 {
			target = w.known[rt.Intn(w.rng, len(w.known))]
		}
		switch {
		case roll < mix.Create || target == "":
			w.create(r, c, i)
		case roll < mix.Create+mix.Get:
			w.get(r, c, target)
		case roll < mix.Create+mix.Get+mix.Update:
			name := fmt.Sprintf("u%d-%d", c, i)
			var n *server
			op := w.call(r, c, check.Op{Kind: check.KindUpdate, Agent: target, Name: name}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
				_, err := svc.UpdateAgent(ctx, target, agent.UpdateRequest{Name: &name})
				n = w.serverFor(svc)
				return err
			})
			if op.Outcome == check.OK && op.Found && w.cfg.ForceDeactivate {
				w.deactivate(n, target)
				w.get(r, c, target) // the update must be visible from storage
			}
		case roll < mix.Create+mix.Get+mix.Update+mix.Delete:
			if rt.Intn(w.midRng, deleteMidRunOneIn) == 0 {
				w.deleteMidRun(r, c, i, target)
				break
			}
			op := w.call(r, c, check.Op{Kind: check.KindDelete, Agent: target}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
				return svc.DeleteAgent(ctx, target)
			})
			w.cascadeDelete(op)
		case roll < mix.Create+mix.Get+mix.Update+mix.Delete+mix.Send:
			content := fmt.Sprintf("hello from %d/%d%s%s%d%s%s", c, i, w.filler(), sentMarker, w.sim.Now().Sub(Epoch).Nanoseconds(), agentMarker, target)
			req := agent.SendRequest{Messages: []agent.InputMessage{{Role: "user", Content: content}}}
			if rt.Intn(w.rng, clientToolsOneIn) == 0 {
				req.ClientTools = []llm.Tool{{Name: ClientToolName, Description: "Looks something up on the client.", Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`)}}
			}
			resp, err := w.send(r, c, target, req)
			switch {
			case resp != nil && resp.StopReason == agent.StopApproval && rt.Intn(w.rng, 2) == 0:
				w.answer(r, c, target)
			case errors.Is(err, agent.ErrApprovalPending):
				w.answer(r, c, target)
			}
		case roll < mix.Create+mix.Get+mix.Update+mix.Delete+mix.Send+mix.Conversation:
			w.conversationOp(r, c, i)
		case roll < mix.Create+mix.Get+mix.Update+mix.Delete+mix.Send+mix.Conversation+mix.PatchBlock:
			switch sub := rt.Intn(w.rng, deleteBlockOneIn*editToolOneIn); {
			case sub < deleteBlockOneIn: // 1/editToolOneIn
				w.editTool(r, c, i)
			case sub < deleteBlockOneIn+editToolOneIn: // 1/deleteBlockOneIn
				w.replaceTeam(r, c)
			default:
				if !w.patchTeam(r, c, i) {
					return
				}
			}
		default:
			w.call(r, c, check.Op{Kind: check.KindList}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
				list, err := svc.ListAgents(ctx, service.ListOptions{Limit: service.ListLimitMax})
				for _, a := range list {
					op.Listed = append(op.Listed, a.ID)
				}
				return err
			})
		}
		r.Sleep(ctx, time.Duration(rt.Intn(w.rng, int(w.cfg.ThinkTimeMax/time.Millisecond)))*time.Millisecond)
	}
}

// patchTeam replaces the shared block's whole value (UpdateBlock); false
// if that failed the run.
func (w *world) patchTeam(r rt.Runtime, c, i int) bool {
	g := w.team
	if g == nil {
		return true
	}
	value := fmt.Sprintf("P%d-%d", c, i)
	op, _ := w.invoke(r, c, func(ctx context.Context, svc *service.Service) error {
		_, err := svc.UpdateBlock(ctx, g.ID, agent.BlockUpdate{Value: &value}, nil)
		return err
	})
	// A delete in flight (replaceTeam has not seen its answer yet) may
	// have committed already.
	deleting := w.replacing && w.team == g
	if op.Outcome == check.OK && !op.Found && g.Delete == nil && !deleting {
		w.sim.Fail(fmt.Errorf("update of shared block %s: not found, but no client deleted it", g.ID))
		return false
	}
	if op.Outcome == check.OK && op.Found {
		w.res.SharedWrites++
	}
	g.Writes = append(g.Writes, check.BlockWrite{Value: value, Call: op.Call, Return: op.Return, Outcome: op.Outcome})
	return true
}

func (w *world) create(r rt.Runtime, c, i int) {
	// Names come from a small pool, so deleted agents' names are reused.
	name := fmt.Sprintf("agent %d", rt.Intn(w.rng, 10))
	// Small windows, so that most agents' conversations are compacted.
	window := contextWindowMin + rt.Intn(w.rng, contextWindowSpread)
	var n *server
	op := w.call(r, c, check.Op{Kind: check.KindCreate, Name: name}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
		ag, err := svc.CreateAgent(ctx, agent.CreateRequest{
			Name: name, AgentType: agent.TypeMemGPTV2, ContextWindowLimit: window,
			Blocks: []agent.BlockCreate{{Label: "human", Value: "", Limit: 4000}, {Label: "persona", Value: "a simulated agent"}},
		})
		if err == nil {
			op.Agent = ag.ID
			n = w.serverFor(svc)
		}
		return err
	})
	if op.Outcome != check.OK {
		return
	}
	w.known = append(w.known, op.Agent)
	var up agent.UpdateRequest
	if w.team != nil && rt.Intn(w.rng, attachOneIn) != 0 {
		up.AttachBlocks = []string{w.team.ID}
	}
	if rt.Intn(w.rng, approvalOneIn) == 0 {
		up.ApprovalRequired = &[]string{agent.ToolConversationSearch}
	}
	if w.tool != nil && rt.Intn(w.rng, customToolOneIn) == 0 {
		up.AttachCustomTools = []string{w.tool.id}
	}
	if w.mcpToolID != "" && rt.Intn(w.rng, mcpToolOneIn) == 0 {
		up.AttachCustomTools = append(up.AttachCustomTools, w.mcpToolID)
	}
	if up.AttachBlocks != nil || up.ApprovalRequired != nil || up.AttachCustomTools != nil {
		w.attach(r, c, op.Agent, up)
	}
	if w.cfg.ForceDeactivate {
		w.deactivate(n, op.Agent)
	}
	if w.cfg.Mix.Get > 0 {
		w.get(r, c, op.Agent) // an acknowledged create must be readable at once
	}
}

// deactivate forces an agent out of memory so the next read loads it
// from storage.
func (w *world) deactivate(n *server, id string) {
	if n != nil && !n.down {
		n.sys.Deactivate(n.ctx, agent.ActorID(id))
	}
}

func (w *world) serverFor(svc *service.Service) *server {
	for _, n := range w.servers {
		if n.svc == svc {
			return n
		}
	}
	return nil
}

func (w *world) get(r rt.Runtime, c int, id string) check.Op {
	return w.call(r, c, check.Op{Kind: check.KindGet, Agent: id}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
		ag, err := svc.GetAgent(ctx, id)
		if err == nil {
			op.Name, op.Messages = ag.Name, ag.MessageCount
			w.checkBlocksSeen(ag, op.Call)
		}
		return err
	})
}

// readFinal reads every known agent after the faults stopped.
func (w *world) readFinal(r rt.Runtime) error {
	final := make(map[string]check.Final)
	w.final = final
	ids := append([]string(nil), w.known...)
	sort.Strings(ids)
	for _, id := range ids {
		var got check.Op
		var running, pending bool
		var window check.Final
		for attempt := 0; attempt < finalReadAttempts; attempt++ {
			running, pending = false, false
			got = w.call(r, -1, check.Op{Kind: check.KindGet, Agent: id}, func(ctx context.Context, svc *service.Service, op *check.Op) error {
				ag, err := svc.GetAgent(ctx, id)
				if err == nil {
					op.Name, op.Messages = ag.Name, ag.MessageCount
					window = windowOf(&ag.Thread)
					w.checkBlocksSeen(ag, op.Call)
					running = ag.ActiveRun != nil
					pending = ag.PendingApproval != nil
				}
				return err
			})
			if got.Outcome == check.OK && !running && !pending {
				break
			}
			if got.Outcome == check.OK && !running {
				// Calls wait for approval (perhaps since before a crash):
				// answer them, as a client would, so the run resumes.
				w.answer(r, -1, id)
				continue
			}
			r.Sleep(context.Background(), time.Second) // let a resumed run finish
		}
		if got.Outcome != check.OK {
			return fmt.Errorf("final read of %s failed with faults off: outcome %v", id, got.Outcome)
		}
		if got.Found && (running || pending) {
			return fmt.Errorf("final read of %s: still running (%v) or waiting for approval (%v) after %d attempts with faults off", id, running, pending, finalReadAttempts)
		}
		if !got.Found {
			continue
		}
		f := check.Final{Name: got.Name, ContextStart: window.ContextStart, Summary: window.Summary}
		w.present[id] = true
		n := w.servers[0]
		for start := uint64(0); ; {
			ctx, cancel := rt.WithTimeout(r, n.ctx, clientTimeout)
			page, err := n.svc.ListMessages(ctx, id, agent.ListMessagesRequest{Start: start, Limit: agent.MessagesPageMax})
			cancel()
			if err != nil {
				return fmt.Errorf("final message list of %s: %w", id, err)
			}
			w.noteAppends(page, 0)
			w.noteCustomCalls(page)
			for _, m := range page {
				if m.Role == agent.RoleSummary {
					w.res.Compactions++
				}
				rec := check.MessageRecord{ID: m.ID, Seq: m.Seq, Role: m.Role, ToolCallID: m.ToolCallID}
				for _, tc := range m.ToolCalls {
					rec.ToolCallIDs = append(rec.ToolCallIDs, tc.ID)
				}
				f.Messages = append(f.Messages, rec)
			}
			if len(page) < agent.MessagesPageMax {
				break
			}
			start = page[len(page)-1].Seq + 1
		}
		final[id] = f
	}
	if err := w.readConversations(r, final); err != nil {
		return err
	}
	return w.readTeam(r)
}

// verify runs the checkers over the recorded history and final state.
// It runs after the simulation, outside the scheduler.
func (w *world) verify() error {
	final := w.final
	if err := check.Linearizable(&w.hist, 10*time.Second); err != nil {
		return err
	}
	for _, inv := range []func() error{
		func() error { return check.AcknowledgedDurable(&w.hist, final) },
		func() error { return check.MessagesIntact(&w.hist, final) },
		func() error { return check.ToolCallsAnswered(final) },
		func() error { return check.ContextWindowsValid(final) },
		func() error { return check.CallsAnsweredBeforeNextMessage(final) },
		func() error { return check.SharedBlocksConsistent(w.teams) },
		func() error { return check.CustomToolCallsResolved(w.customToolCalls(), unavailable) },
		func() error { return check.ListsConsistent(&w.hist) },
		func() error {
			return check.InterruptedRunsEnded(w.runsAtEnd, func(st string) bool { return st == agent.RunRunning || st == agent.RunCreated }, resumeWait)
		},
		func() error { return check.SendsEndAfterDelete(w.midRun, midRunAnswerMax) },
		func() error { return check.RunIndexesAgree(w.runsAtEnd, w.runsByAgent) },
	} {
		if err := inv(); err != nil {
			return err
		}
	}
	return nil
}

// windowOf records a conversation's context window for the checks.
func windowOf(th *agent.Thread) check.Final {
	f := check.Final{ContextStart: th.ContextStart}
	if th.Summary != nil {
		f.Summary = &check.SummaryRecord{MessageID: th.Summary.MessageID, Through: th.Summary.Through}
	}
	return f
}
