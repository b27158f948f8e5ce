package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
)

// RunError is returned by SendMessage when the run it started ended in
// failure (the model failed, or the run was cancelled). The messages the
// run logged before that are in Response.
type RunError struct {
	Run      agent.Run
	Response *agent.SendResponse
	// Cause is the failure, when this process saw it happen.
	Cause error
}

// Unwrap returns the cause.
func (e *RunError) Unwrap() error { return e.Cause }

func (e *RunError) Error() string {
	if e.Run.Error != "" {
		return fmt.Sprintf("run %s stopped (%s): %s", e.Run.ID, e.Run.StopReason, e.Run.Error)
	}
	return fmt.Sprintf("run %s stopped (%s)", e.Run.ID, e.Run.StopReason)
}

// hub relays run events from the agent actors to the callers watching
// them. It keeps nothing for runs nobody watches.
type hub struct {
	rt      rt.Runtime
	mu      sync.Mutex
	watches map[string][]*watch
	causes  map[string]error
	// closed, once set, ends every watch, those registered later too
	// (close).
	closed error
}

// watch is one caller's view of a run of an agent: the events so far, a
// signal for new ones, and why the run will send no more (end).
type watch struct {
	agentID string
	// deltas: the caller wants the pieces of each step's answer as the
	// model streams them (see hub.streamed).
	deltas bool
	mu     sync.Mutex
	events []agent.RunEvent
	end    error
	wake   rt.Signal
}

// streamed reports whether anyone watching the run wants the model's
// answers as they stream: otherwise the model is called without
// streaming, which costs less (decoding one JSON answer, not an event
// stream).
func (h *hub) streamed(runID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.watches[runID], func(w *watch) bool { return w.deltas })
}

// delta relays a streamed piece of a step's model answer to the run's
// watchers, in order with the run's events.
func (h *hub) delta(runID string, step int, d llm.Delta) {
	h.Publish(agent.RunEvent{Run: agent.Run{ID: runID, Steps: step, Status: agent.RunRunning}, Delta: &d})
}

// fail remembers why a run's model call failed, for the watchers' error.
func (h *hub) fail(runID string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.watches[runID]) > 0 {
		h.causes[runID] = err
	}
}

// cause returns the failure remembered for a run.
func (h *hub) cause(runID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.causes[runID]
}

func newHub(r rt.Runtime) *hub {
	return &hub{rt: r, watches: make(map[string][]*watch), causes: make(map[string]error)}
}

// Publish implements agent.Events.
func (h *hub) Publish(ev agent.RunEvent) {
	h.mu.Lock()
	ws := h.watches[ev.Run.ID]
	h.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
		w.wake.Notify()
	}
}

// endRun ends the watches of a run that will publish nothing more: its
// watchers get err once they have the events before it.
func (h *hub) endRun(runID string, err error) {
	h.mu.Lock()
	ws := append([]*watch(nil), h.watches[runID]...)
	h.mu.Unlock()
	for _, w := range ws {
		w.stop(err)
	}
}

// endAgent ends the watches of every run of an agent (it was deleted);
// errFor gives each run's watchers their error.
func (h *hub) endAgent(agentID string, errFor func(runID string) error) {
	h.mu.Lock()
	var ws []*watch
	var runs []string
	for _, runID := range sortedKeys(h.watches) {
		for _, w := range h.watches[runID] {
			if w.agentID == agentID {
				ws, runs = append(ws, w), append(runs, runID)
			}
		}
	}
	h.mu.Unlock()
	for i, w := range ws {
		w.stop(errFor(runs[i]))
	}
}

// close ends every watch with err, and every watch registered after it.
func (h *hub) close(err error) {
	h.mu.Lock()
	h.closed = err
	var ws []*watch
	for _, runID := range sortedKeys(h.watches) {
		ws = append(ws, h.watches[runID]...)
	}
	h.mu.Unlock()
	for _, w := range ws {
		w.stop(err)
	}
}

// sortedKeys returns m's keys in order: the tasks woken by walking a
// map must wake in the same order on every (simulated) run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stop ends the watch with err (the first one given wins).
func (w *watch) stop(err error) {
	w.mu.Lock()
	if w.end == nil {
		w.end = err
	}
	w.mu.Unlock()
	w.wake.Notify()
}

// watch registers interest in the events of a run of an agent; call the
// returned stop when done.
func (h *hub) watch(agentID, runID string, deltas bool) (*watch, func()) {
	w := &watch{agentID: agentID, deltas: deltas, wake: h.rt.NewSignal()}
	h.mu.Lock()
	h.watches[runID] = append(h.watches[runID], w)
	w.end = h.closed
	h.mu.Unlock()
	return w, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		ws := h.watches[runID]
		for i := range ws {
			if ws[i] == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(h.watches, runID)
			delete(h.causes, runID)
		} else {
			h.watches[runID] = ws
		}
	}
}

// next returns the events after the first seen, waiting for at least one;
// once they are all seen, the watch's end error if it has one.
func (w *watch) next(ctx context.Context, seen int) ([]agent.RunEvent, error) {
	for {
		w.mu.Lock()
		if len(w.events) > seen {
			evs := w.events[seen:]
			w.mu.Unlock()
			return evs, nil
		}
		end := w.end
		w.mu.Unlock()
		if end != nil {
			return nil, end
		}
		if err := w.wake.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// Limits of the run driver.
const (
	// stepTimeout bounds one model call.
	stepTimeout = 5 * time.Minute
	// driveAttemptsMax bounds consecutive failed invocations of a run's
	// actor before the driver gives up (the run resumes when the agent
	// next activates).
	driveAttemptsMax = 5
	// driveRetryDelay is the wait between those attempts.
	driveRetryDelay = time.Second
)

// ErrShuttingDown is returned for a send this node refuses because it is
// shutting down (Drain), and to the callers following a run it stopped
// driving at shutdown (Interrupt). Such a run stays in progress in
// storage, and the next node to start resumes it (RecoverRuns).
var ErrShuttingDown = errors.New("the server is shutting down; retry shortly (a run it interrupted resumes when a server starts)")

// driven is a run with a driver task on this node.
type driven struct {
	agentID string
	cancel  context.CancelFunc
}

// ErrDeletedDuringRun is in the error of the callers following a run
// whose agent was deleted meanwhile; errors.Is(err, agent.ErrNotFound)
// holds too. Unlike a plain "not found", the run had started: its input
// was logged, and then deleted with the agent.
var ErrDeletedDuringRun = errors.New("was deleted during its run")

// deletedDuring is the error of the callers following a run whose agent
// was deleted.
func deletedDuring(agentID, runID string) error {
	return fmt.Errorf("%w: agent %s %w %s", agent.ErrNotFound, agentID, ErrDeletedDuringRun, runID)
}

// Drive implements agent.Driver: it starts a task on this node that
// advances the run until it finishes, unless one already runs or the
// node is shutting down (Interrupt).
func (s *Service) Drive(agentID, runID string) { s.drive(nil, agentID, runID) }

// drive is Drive; parent, if not nil, is the context (values only) of
// the invocation that asked for the run (see DriveFrom).
func (s *Service) drive(parent context.Context, agentID, runID string) {
	// Cancelling the run (CancelRun), deleting its agent (DeleteAgent) or
	// Interrupt cancels ctx: its model call and its tools stop.
	ctx, cancel := context.WithCancel(s.runBase(parent))
	s.mu.Lock()
	if _, ok := s.driving[runID]; ok || s.interrupted {
		s.mu.Unlock()
		cancel()
		return
	}
	s.driving[runID] = driven{agentID: agentID, cancel: cancel}
	s.mu.Unlock()
	s.rt.Go("run "+runID, func() {
		defer func() {
			s.mu.Lock()
			delete(s.driving, runID)
			s.mu.Unlock()
			cancel()
			s.driverDone.Notify()
		}()
		s.driveRun(ctx, agentID, runID)
	})
}

// driveRun loops prepare → model call → apply. The model call happens
// outside the actor, which meanwhile serves other requests.
func (s *Service) driveRun(ctx context.Context, agentID, runID string) {
	// stop reports whether a failed invocation ends the driver: its ctx
	// was cancelled (whoever cancelled it answers the run's watchers), or
	// the agent is gone.
	stop := func(err error) bool {
		if ctx.Err() != nil {
			return true
		}
		if errors.Is(err, agent.ErrNotFound) {
			s.hub.endRun(runID, deletedDuring(agentID, runID))
			return true
		}
		return false
	}
	var lastErr error
	// compactions and overflows count, for the current step, the
	// compactions done and the provider's refusals of its request as too
	// long; both are bounded.
	var compactions, overflows int
	overflow := false
	for step, failures := 0, 0; failures < driveAttemptsMax; {
		stepStart := s.rt.Now() // the step's metrics are measured on the seam's clock
		sreq := agent.StepRequest{RunID: runID, Step: step, Overflow: overflow, NoCompact: compactions >= compactionsPerStepMax}
		prep, err := call(ctx, s, agentID, agent.OpPrepare, sreq)
		if err != nil {
			if stop(err) {
				return
			}
			failures, lastErr = failures+1, err
			s.rt.Sleep(ctx, driveRetryDelay)
			continue
		}
		if prep.Done {
			// Finished, cancelled, or this step is stale: look up the
			// current step once, in case the run moved on without us.
			run, err := call(ctx, s, agentID, agent.OpGetRun, agent.RunRequest{RunID: runID})
			if err != nil || run.Done() || run.Steps == step {
				if err != nil {
					stop(err)
				}
				return
			}
			step, compactions, overflows, overflow = run.Steps, 0, 0, false
			continue
		}
		if prep.Compact != nil {
			// The window is compacted first, outside the actor. A failed
			// summary leaves it as it was, and the step goes as it is (the
			// next step tries again).
			compactions++
			cctx, end := s.observeCompaction(ctx, CompactionRun)
			err := s.compactRun(cctx, agentID, prep.Compact)
			end(err)
			if err != nil {
				if stop(err) {
					return
				}
				compactions = compactionsPerStepMax
			}
			overflow = false
			continue
		}
		apply := agent.ApplyRequest{RunID: runID, Step: prep.Step, PromptEstimate: prep.PromptEstimate}
		mctx, cancel := rt.WithTimeout(s.rt, ctx, stepTimeout)
		llmStart := s.rt.Now()
		resp, err := s.complete(mctx, runID, prep.Step, prep.Request)
		apply.Timing = &agent.StepTiming{StepStart: stepStart, LLMRequestStart: llmStart, LLMRequestNanos: int64(s.rt.Now().Sub(llmStart))}
		cancel()
		if ctx.Err() != nil {
			// Cancelled, deleted or interrupted: the model call's failure
			// is not the run's. An interrupted run stays at this step.
			return
		}
		if errors.Is(err, llm.ErrContextWindowExceeded) && overflows < overflowRetriesMax {
			// The provider counts more than Kelpie did: prepare the step
			// again, compacting (or, failing that, cutting) its window.
			overflows++
			overflow = true
			continue
		}
		overflow = false
		if err != nil {
			apply.Error = err.Error()
			s.hub.fail(runID, err)
		} else {
			apply.Response = resp
			s.observeToolCalls(prep.External, resp.Message.ToolCalls)
			// The archival tools' texts are embedded here, outside the actor,
			// and the external tools run here.
			apply.Embeddings = s.toolEmbeddings(ctx, prep.Embedding, resp.Message.ToolCalls)
			apply.ToolResults = s.runExternal(ctx, agentID, prep.External, resp.Message.ToolCalls)
		}
		var applied *agent.Applied
		// An apply whose memory tools edit a shared block conflicts when
		// another agent or a client changed the block since the apply read
		// it; nothing of it landed, so the same answer is applied again,
		// its tool calls running against the block's new value (as they
		// would had the other change landed before the model call).
		if err := s.retryConflicts(ctx, func() (err error) { applied, err = call(ctx, s, agentID, agent.OpApply, apply); return err }); err != nil {
			if stop(err) {
				return
			}
			failures, lastErr = failures+1, err
			s.rt.Sleep(ctx, driveRetryDelay)
			continue
		}
		if s.obs != nil && applied.StopReason != "" {
			s.obs.StepEnded(applied.StopReason)
		}
		if applied.Done {
			return
		}
		step, failures, compactions, overflows = prep.Step+1, 0, 0, 0
	}
	// The run stays in progress; whoever waits for it is told.
	s.hub.endRun(runID, fmt.Errorf("run %s stalled after %d failed attempts to advance it (it resumes when its agent next activates or a server starts): %w", runID, driveAttemptsMax, lastErr))
}

// RecoverRuns has every run in progress in storage (the index
// agent.ActiveRunsIndex) driven by this node: the runs a crash or a
// shutdown interrupted. It reads the index in bounded pages, activates
// only the agents with such runs (their drivers do), and returns how many
// runs it found. A node calls it once at start, before serving requests.
//
// Several nodes sharing a store each drive what they find; the runs'
// step numbers make a second driver's steps stale, so each step lands
// once, but its model call may be made twice.
func (s *Service) RecoverRuns(ctx context.Context) (int, error) {
	prefix := actor.IndexKey(agent.ActiveRunsIndex)
	start, n := []byte(prefix), 0
	for {
		tx, err := s.store.Begin(ctx)
		if err != nil {
			return n, err
		}
		kvs, err := tx.Scan(ctx, storage.ScanOptions{Start: start, End: prefix.End(), Limit: recoverPageMax})
		tx.Rollback()
		if err != nil {
			return n, fmt.Errorf("read the active runs index: %w", err)
		}
		for _, kv := range kvs {
			elems, err := tuple.Unpack(kv.Key[len(prefix):])
			if err != nil || len(elems) != 1 {
				return n, fmt.Errorf("%w: active run index key %q", storage.ErrCorrupt, kv.Key)
			}
			runID, _ := elems[0].(string)
			s.Drive(string(kv.Value), runID)
			n++
		}
		if len(kvs) < recoverPageMax {
			return n, nil
		}
		start = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
	}
}

// recoverPageMax bounds one read of the active runs index.
const recoverPageMax = 1000

// Drain makes this node refuse new runs (ErrShuttingDown) and waits until
// it drives none, or ctx ends. It returns the number of runs still being
// driven. Runs that other requests start meanwhile (a resumed run's agent
// activating) are waited for too.
func (s *Service) Drain(ctx context.Context) int {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		n := len(s.driving)
		s.mu.Unlock()
		if n == 0 {
			return 0
		}
		if s.driverDone.Wait(ctx) != nil {
			return n
		}
	}
}

// Interrupt stops driving every run on this node, leaving them in
// progress in storage for the next node to start (RecoverRuns), and ends
// every caller's wait for a run with ErrShuttingDown, those that start
// waiting later too. It returns the number of runs it stopped driving.
// Drain first to let runs finish.
func (s *Service) Interrupt() int {
	s.mu.Lock()
	s.draining, s.interrupted = true, true
	n := len(s.driving)
	for _, runID := range sortedKeys(s.driving) {
		s.driving[runID].cancel()
	}
	s.mu.Unlock()
	s.hub.close(ErrShuttingDown)
	return n
}

// refusing returns ErrShuttingDown once Drain or Interrupt was called.
func (s *Service) refusing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return ErrShuttingDown
	}
	return nil
}

// kickBusy has the run a send was refused for driven, should this node
// drive it no longer (its driver gave up): a refusal never names a run
// nobody drives.
func (s *Service) kickBusy(agentID string, err error) {
	var busy *agent.BusyError
	if errors.As(err, &busy) {
		s.Drive(agentID, busy.RunID)
	}
}

// complete calls the model, streaming tokens to the run's watchers when
// the model can stream.
func (s *Service) complete(ctx context.Context, runID string, step int, req llm.Request) (resp *llm.Response, err error) {
	ctx, end := s.observeModel(ctx, req.Model)
	defer func() { end(resp, err) }()
	if st, ok := s.model.(llm.Streamer); ok && s.hub.streamed(runID) {
		return st.CompleteStream(ctx, req, func(d llm.Delta) error {
			s.hub.delta(runID, step, d)
			return nil
		})
	}
	return s.model.Complete(ctx, req)
}

// StartRun starts a run on the agent and returns it at once (messages/async),
// or the run a retried message (same otid) already started.
func (s *Service) StartRun(ctx context.Context, id string, req agent.SendRequest) (*agent.SendResult, error) {
	if !llm.IsConfigured(s.model) {
		return nil, llm.ErrNotConfigured // refuse before logging anything
	}
	if err := s.refusing(); err != nil {
		return nil, err
	}
	req.RunID = rt.NewID(s.ids, "run")
	req.Embeddings = s.approvalEmbeddings(ctx, id, req.ConversationID, req.Approvals)
	req.ToolResults = s.approvalToolResults(ctx, id, req.ConversationID, req.Approvals)
	var out *agent.SendResult
	if err := s.retryConflicts(ctx, func() (err error) { out, err = call(ctx, s, id, agent.OpSend, req); return err }); err != nil {
		s.kickBusy(id, err)
		return nil, err
	}
	return out, nil
}

// SendMessage runs one turn of the agent loop and returns the messages it
// produced once the run has finished; every step is durably logged as it
// completes. A failed run returns a *RunError. A retried message (same
// otid) returns the first run's result instead of running again.
func (s *Service) SendMessage(ctx context.Context, id string, req agent.SendRequest) (*agent.SendResponse, error) {
	return s.Stream(ctx, id, req, nil)
}

// Stream is SendMessage that also reports the run's progress to onStep:
// each committed step's messages, and (when the model streams) the pieces
// of each step's answer as they arrive, as events with Delta set. Only a
// run someone watches with an onStep calls the model streaming; a
// SendMessage (onStep nil) calls it without.
func (s *Service) Stream(ctx context.Context, id string, req agent.SendRequest, onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
	if !llm.IsConfigured(s.model) {
		return nil, llm.ErrNotConfigured // refuse before logging anything
	}
	if err := s.refusing(); err != nil {
		return nil, err
	}
	req.RunID = rt.NewID(s.ids, "run")
	req.Embeddings = s.approvalEmbeddings(ctx, id, req.ConversationID, req.Approvals)
	req.ToolResults = s.approvalToolResults(ctx, id, req.ConversationID, req.Approvals)
	w, stop := s.hub.watch(id, req.RunID, onStep != nil)
	defer stop()
	var started *agent.SendResult
	// A send that answers pending tool calls reads the agent's custom
	// tools (and an approved memory tool may edit a shared block): a
	// concurrent change to them makes it conflict and write nothing, and
	// it goes again.
	if err := s.retryConflicts(ctx, func() (err error) { started, err = call(ctx, s, id, agent.OpSend, req); return err }); err != nil {
		s.kickBusy(id, err)
		return nil, err
	}
	if started.Deduplicated {
		return s.finishedRun(ctx, id, started.Run, onStep)
	}
	return s.follow(ctx, id, started.Run.FirstSeq, nil, w, onStep)
}

// FollowRun reports a run's messages with sequence numbers above after
// (all of them when after < 0) from the log, then its progress as it
// happens, until it finishes: resuming a stream. It returns the run's
// result like SendMessage.
func (s *Service) FollowRun(ctx context.Context, agentID, runID string, after int64, onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
	w, stop := s.hub.watch(agentID, runID, onStep != nil)
	defer stop()
	run, err := call(ctx, s, agentID, agent.OpGetRun, agent.RunRequest{RunID: runID})
	if err != nil {
		return nil, err
	}
	next := run.FirstSeq
	if after >= 0 && uint64(after)+1 > next {
		next = uint64(after) + 1
	}
	msgs, err := s.RunMessages(ctx, agentID, runID)
	if err != nil {
		return nil, err
	}
	var logged []agent.Message
	for _, m := range msgs {
		if m.Seq >= next {
			logged = append(logged, m)
			next = m.Seq + 1
		}
	}
	if onStep != nil && (len(logged) > 0 || run.Done()) {
		if err := onStep(agent.RunEvent{Run: *run, Messages: logged}); err != nil {
			return nil, err
		}
	}
	if run.Done() {
		return runResult(*run, &agent.SendResponse{Messages: logged}, nil)
	}
	return s.follow(ctx, agentID, next, logged, w, onStep)
}

// follow relays a run's events from w, starting at sequence number next,
// until the run finishes.
func (s *Service) follow(ctx context.Context, id string, next uint64, already []agent.Message, w *watch, onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
	// Events carry each commit's messages. An event can be missed (a
	// commit whose outcome its invocation never learned publishes nothing,
	// yet may have landed), so gaps are filled from the log.
	resp := &agent.SendResponse{Messages: already}
	// logged returns the run's logged messages in [next, upTo).
	logged := func(runID string, upTo uint64) ([]agent.Message, error) {
		all, err := s.RunMessages(ctx, id, runID)
		if err != nil {
			return nil, err
		}
		var out []agent.Message
		for _, m := range all {
			if m.Seq >= next && m.Seq < upTo {
				out = append(out, m)
			}
		}
		return out, nil
	}
	for seen := 0; ; {
		evs, err := w.next(ctx, seen)
		if err != nil {
			return nil, err
		}
		seen += len(evs)
		for _, ev := range evs {
			if ev.Delta != nil {
				if onStep != nil {
					if err := onStep(ev); err != nil {
						return nil, err
					}
				}
				continue
			}
			upTo := ev.Run.EndSeq
			if len(ev.Messages) > 0 {
				upTo = ev.Messages[0].Seq
			}
			var fresh []agent.Message
			if upTo > next {
				gap, err := logged(ev.Run.ID, upTo)
				if err != nil {
					return nil, err
				}
				fresh = gap
			}
			for _, m := range ev.Messages {
				if m.Seq >= next {
					fresh = append(fresh, m)
				}
			}
			if len(fresh) > 0 {
				next = fresh[len(fresh)-1].Seq + 1
			}
			resp.Messages = append(resp.Messages, fresh...)
			if onStep != nil && (len(fresh) > 0 || ev.Run.Done()) {
				if err := onStep(agent.RunEvent{Run: ev.Run, Messages: fresh, Err: ev.Err}); err != nil {
					return nil, err
				}
			}
			if ev.Run.Done() {
				return runResult(ev.Run, resp, s.hub.cause(ev.Run.ID))
			}
		}
	}
}

// finishedRun answers a retried send from the stored run.
func (s *Service) finishedRun(ctx context.Context, id string, run agent.Run, onStep func(agent.RunEvent) error) (*agent.SendResponse, error) {
	if !run.Done() {
		return nil, &agent.BusyError{RunID: run.ID}
	}
	msgs, err := s.RunMessages(ctx, id, run.ID)
	if err != nil {
		return nil, err
	}
	if onStep != nil {
		if err := onStep(agent.RunEvent{Run: run, Messages: msgs}); err != nil {
			return nil, err
		}
	}
	return runResult(run, &agent.SendResponse{Messages: msgs}, nil)
}

// runResult is the answer to a send whose run has finished: the response,
// or a *RunError if the run failed. A cancelled run answers normally with
// stop reason "cancelled".
func runResult(run agent.Run, resp *agent.SendResponse, cause error) (*agent.SendResponse, error) {
	resp.StopReason, resp.Usage, resp.RunID = run.StopReason, run.Usage, run.ID
	if run.Status == agent.RunFailed {
		return nil, &RunError{Run: run, Response: resp, Cause: cause}
	}
	return resp, nil
}

// CancelRun cancels a run of the agent in progress (runID "" for the one
// of the default conversation) and returns it, or nil if none matched.
func (s *Service) CancelRun(ctx context.Context, id, runID string) (*agent.Run, error) {
	return s.cancel(ctx, id, agent.CancelRequest{RunID: runID})
}

// CancelConversation cancels the run in progress of a conversation ("" or
// "default" with agentID: the agent's default one) and returns it, or nil
// if it has none.
func (s *Service) CancelConversation(ctx context.Context, agentID, conversationID string) (*agent.Run, error) {
	if conversationID == agent.ConversationDefault {
		conversationID = ""
	}
	if conversationID != "" {
		owner, err := s.ConversationAgent(ctx, conversationID)
		if err != nil {
			return nil, err
		}
		agentID = owner
	}
	return s.cancel(ctx, agentID, agent.CancelRequest{ConversationID: conversationID})
}

func (s *Service) cancel(ctx context.Context, id string, req agent.CancelRequest) (out *agent.Run, err error) {
	defer func() {
		if out == nil {
			return
		}
		// The run is cancelled: stop its model call and tools on this node.
		s.mu.Lock()
		d, ok := s.driving[out.ID]
		s.mu.Unlock()
		if ok {
			d.cancel()
		}
	}()
	return call(ctx, s, id, agent.OpCancel, req)
}

// RunAgent returns the ID of the agent a run belongs to.
func (s *Service) RunAgent(ctx context.Context, runID string) (string, error) {
	return s.owner(ctx, agent.RunAgentKey(runID), "run "+runID)
}

// GetRun returns a run.
func (s *Service) GetRun(ctx context.Context, runID string) (*agent.Run, error) {
	id, err := s.RunAgent(ctx, runID)
	if err != nil {
		return nil, err
	}
	return read(ctx, s, id, agent.OpGetRun, agent.RunRequest{RunID: runID})
}

// RunMessages returns the messages a run logged so far.
func (s *Service) RunMessages(ctx context.Context, agentID, runID string) ([]agent.Message, error) {
	return read(ctx, s, agentID, agent.OpRunMessages, agent.RunRequest{RunID: runID})
}

// RunSteps returns a run's steps in order.
func (s *Service) RunSteps(ctx context.Context, agentID, runID string) ([]agent.Step, error) {
	return read(ctx, s, agentID, agent.OpRunSteps, agent.RunRequest{RunID: runID})
}

// GetStep returns a step by ID.
func (s *Service) GetStep(ctx context.Context, stepID string) (*agent.Step, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	v, err := tx.Get(ctx, agent.StepAgentKey(stepID))
	tx.Rollback()
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: step %s", agent.ErrNotFound, stepID)
	}
	if err != nil {
		return nil, err
	}
	return read(ctx, s, string(v), agent.OpGetStep, agent.StepByID{StepID: stepID})
}

// StepMessages returns the messages a step logged.
func (s *Service) StepMessages(ctx context.Context, st *agent.Step) ([]agent.Message, error) {
	if st.EndSeq <= st.FirstSeq {
		return []agent.Message{}, nil
	}
	return s.ListMessages(ctx, st.AgentID, agent.ListMessagesRequest{Start: st.FirstSeq, End: st.EndSeq, Limit: min(int(st.EndSeq-st.FirstSeq), agent.MessagesPageMax)})
}
