// Package service is AgentService: the operations the HTTP API (and the
// simulator's clients) perform on agents. Each operation is one invocation
// of the agent's actor, except listing, which reads the agents-by-creation
// index that every create and delete maintains in the same transaction as
// the agent's state.
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/rt"
	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/tuple"
	"github.com/kelpie-ai/kelpie/toolexec"
	"github.com/kelpie-ai/kelpie/tools"
)

// Limits on list pages.
const (
	// ListLimitMax bounds one page of ListAgents.
	ListLimitMax = 1000
	// DefaultListLimit is the page size when none is given.
	DefaultListLimit = 50
)

// Service is AgentService.
type Service struct {
	rt    rt.Runtime
	store storage.Store
	sys   *actor.System
	ids   rt.Rand
	hub   *hub
	model llm.Client
	tools *tools.Registry
	// embedder computes embeddings, and defaultEmbedding is the model of
	// agents created without one (see embedding.go).
	embedder         llm.Embedder
	defaultEmbedding string
	// executor runs the tools that run outside the actor (toolexec.go).
	executor toolexec.Executor
	// windows gives models' context windows (compaction.go).
	windows windows
	// agentActor is the registered agent actor, which also answers
	// committed reads (read).
	agentActor actor.Actor[agent.State]
	// obs, if set, receives measurements (observe.go).
	obs Observer

	mu sync.Mutex
	// driving holds the runs with a driver task on this node, their
	// agents and their cancellation.
	driving    map[string]driven
	embeddings map[string]string // agent ID -> its embedding model, as last seen

	// driverDone is notified as each driver returns (Drain waits on it).
	driverDone rt.Signal
	// draining refuses new runs (Drain); interrupted also refuses to
	// drive any (Interrupt).
	draining, interrupted bool
}

// New registers the agent actor type with sys (backed by model) and returns
// the service, configured by opts.
func New(r rt.Runtime, store storage.Store, sys *actor.System, model llm.Client, opts ...Option) (*Service, error) {
	return NewWithActor(r, store, sys, model, nil, opts...)
}

// NewWithActor is New with the agent actor passed through wrap before it
// is registered: the simulator uses it to run deliberately broken variants
// and prove that it catches them. A nil wrap registers the actor as is.
func NewWithActor(r rt.Runtime, store storage.Store, sys *actor.System, model llm.Client, wrap func(*agent.Actor) actor.Actor[agent.State], opts ...Option) (*Service, error) {
	s := &Service{rt: r, store: store, sys: sys, ids: r.Rand("ids"), hub: newHub(r), model: model,
		driving: make(map[string]driven), driverDone: r.NewSignal(), embeddings: make(map[string]string)}
	if e, ok := model.(llm.Embedder); ok {
		s.embedder = e
	}
	s.windows = windows{rt: r, fallback: agent.DefaultContextWindow}
	if l, ok := model.(modelLister); ok {
		s.windows.lister = l
	}
	for _, o := range opts {
		o(s)
	}
	if s.embedder == nil {
		s.embedder = llm.Unconfigured{}
	}
	s.tools = tools.NewRegistry(r, store, s.ids)
	var a actor.Actor[agent.State] = &agent.Actor{Events: s.events(), Driver: s, ContextWindow: s.windows.lookup}
	if wrap != nil {
		a = wrap(a.(*agent.Actor))
	}
	if err := actor.Register(sys, agent.Namespace, a); err != nil {
		return nil, err
	}
	s.agentActor = a
	return s, nil
}

// System returns the actor system the service invokes.
func (s *Service) System() *actor.System { return s.sys }

// CreateAgent creates an agent with a new ID and returns the state its
// creating transaction committed.
//
// An agent created without an embedding model gets the service's default
// (WithDefaultEmbedding), if any; one the embedder cannot serve is refused
// (see checkAgentEmbedding), and so is a chat model no provider serves
// (checkAgentModel).
func (s *Service) CreateAgent(ctx context.Context, req agent.CreateRequest) (*agent.Agent, error) {
	if req.Embedding == "" {
		req.Embedding = s.defaultEmbedding
	}
	if err := s.checkAgentEmbedding(ctx, req.Embedding); err != nil {
		return nil, err
	}
	if err := s.checkAgentModel(ctx, req.Model); err != nil {
		return nil, err
	}
	req.ID = rt.NewID(s.ids, "agent")
	var out *agent.Agent
	// A create that attaches custom tools reads their records; an edit of
	// one meanwhile makes it conflict, write nothing, and go again.
	if err := s.retryConflicts(ctx, func() (err error) { out, err = call(ctx, s, req.ID, agent.OpCreate, req); return err }); err != nil {
		return nil, err
	}
	s.noteEmbedding(out.ID, out.Embedding)
	return out, nil
}

// GetAgent returns the agent's state.
func (s *Service) GetAgent(ctx context.Context, id string) (*agent.Agent, error) {
	out, err := read(ctx, s, id, agent.OpGet, agent.None{})
	if err != nil {
		return nil, err
	}
	s.noteEmbedding(id, out.Embedding)
	return out, nil
}

// UpdateAgent applies req and returns the state that update committed. A
// new embedding or chat model is checked as CreateAgent checks it. An update that
// raced with a change to a shared block it edits is retried (bounded).
func (s *Service) UpdateAgent(ctx context.Context, id string, req agent.UpdateRequest) (*agent.Agent, error) {
	if req.Embedding != nil {
		if err := s.checkAgentEmbedding(ctx, *req.Embedding); err != nil {
			return nil, err
		}
	}
	if req.Model != nil {
		if err := s.checkAgentModel(ctx, *req.Model); err != nil {
			return nil, err
		}
	}
	var out *agent.Agent
	// An update that changes a shared block conflicts with a concurrent
	// change to it (another agent's edit, PATCH /v1/blocks): nothing of
	// it lands, and it is tried again against the new value.
	if err := s.retryConflicts(ctx, func() (err error) { out, err = call(ctx, s, id, agent.OpUpdate, req); return err }); err != nil {
		return nil, err
	}
	s.noteEmbedding(id, out.Embedding)
	return out, nil
}

// ResetMessages empties the agent's message log and returns the agent.
func (s *Service) ResetMessages(ctx context.Context, id string) (*agent.Agent, error) {
	return call(ctx, s, id, agent.OpResetMessages, agent.None{})
}

// DeleteAgent removes the agent with its messages, passages and index
// entry in one transaction. Once it returns nil, the agent is not found,
// even if the deactivation that follows fails.
//
// The agent's runs in progress end with it: their drivers on this node
// stop, and the callers waiting for them (a send, a stream, a follow of
// an async run) get agent.ErrNotFound naming the agent.
func (s *Service) DeleteAgent(ctx context.Context, id string) error {
	s.noteEmbedding(id, "")
	if _, err := call(ctx, s, id, agent.OpDelete, agent.None{}); err != nil {
		return err
	}
	s.mu.Lock()
	for _, runID := range sortedKeys(s.driving) {
		if d := s.driving[runID]; d.agentID == id {
			d.cancel()
		}
	}
	s.mu.Unlock()
	s.hub.endAgent(id, func(runID string) error { return deletedDuring(id, runID) })
	return nil
}

// ListMessages returns a page of the agent's message log.
func (s *Service) ListMessages(ctx context.Context, id string, req agent.ListMessagesRequest) ([]agent.Message, error) {
	return read(ctx, s, id, agent.OpMessages, req)
}

// ListOptions selects a page of agents in creation order.
type ListOptions struct {
	// Limit bounds the page (0: DefaultListLimit; at most ListLimitMax).
	Limit int
	// After, if set, starts the page after this agent ID.
	After string
	// Descending lists the newest first.
	Descending bool
}

// listAttemptsMax bounds retries of a list that raced with a write.
const listAttemptsMax = 5

// ListAgents returns a page of agents ordered by creation time. It reads
// the index and the states in one transaction and validates it, so the
// page is a consistent snapshot: it never lists an agent it cannot return.
func (s *Service) ListAgents(ctx context.Context, opts ListOptions) ([]*agent.Agent, error) {
	limit := opts.Limit
	if limit == 0 {
		limit = DefaultListLimit
	}
	if limit < 0 || limit > ListLimitMax {
		return nil, fmt.Errorf("%w: limit %d outside 1..%d", agent.ErrInvalid, opts.Limit, ListLimitMax)
	}
	for attempt := 1; ; attempt++ {
		out, err := s.listOnce(ctx, opts, limit)
		if err == nil || attempt == listAttemptsMax || !errors.Is(err, storage.ErrConflict) {
			return out, err
		}
	}
}

func (s *Service) listOnce(ctx context.Context, opts ListOptions, limit int) ([]*agent.Agent, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	prefix := agent.ByCreatedPrefix()
	scan := storage.ScanOptions{Start: prefix, End: prefix.End(), Reverse: opts.Descending, Limit: limit}
	if opts.After != "" {
		cursor, err := s.loadStored(ctx, tx, opts.After)
		if err != nil {
			return nil, fmt.Errorf("after: %w", err)
		}
		key := agent.ByCreatedKey(cursor)
		if opts.Descending {
			scan.End = key
		} else {
			scan.Start = append(bytes.Clone(key), 0)
		}
	}
	kvs, err := tx.Scan(ctx, scan)
	if err != nil {
		return nil, err
	}
	out := make([]*agent.Agent, 0, len(kvs))
	for _, kv := range kvs {
		elems, err := tuple.Unpack(kv.Key[len(prefix):])
		if err != nil || len(elems) != 2 {
			return nil, fmt.Errorf("%w: index key %q", storage.ErrCorrupt, kv.Key)
		}
		id, _ := elems[1].(string)
		ag, err := s.loadStored(ctx, tx, id)
		if errors.Is(err, agent.ErrNotFound) {
			// Deleted between the index read and this one: the commit below
			// would fail validation anyway; retry from the start.
			return nil, fmt.Errorf("%w: agent %s deleted during the list", storage.ErrConflict, id)
		}
		if err != nil {
			return nil, fmt.Errorf("index entry %s: %w", id, err)
		}
		// Shared blocks and custom tools are read in this transaction
		// too: the page shows them as of the validated snapshot.
		if ag, err = agent.Resolve(ctx, tx.Get, ag); err != nil {
			return nil, err
		}
		out = append(out, ag)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// loadStored reads an agent's committed state directly from storage.
func (s *Service) loadStored(ctx context.Context, tx *storage.Txn, id string) (*agent.Agent, error) {
	aid := agent.ActorID(id)
	if err := aid.Validate(); err != nil {
		return nil, fmt.Errorf("%w: agent %q", agent.ErrNotFound, id)
	}
	v, err := tx.Get(ctx, aid.StateKey())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: agent %s", agent.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var st agent.State
	if err := json.Unmarshal(v, &st); err != nil || st.Agent == nil {
		return nil, fmt.Errorf("%w: state of agent %s", storage.ErrCorrupt, id)
	}
	return st.Agent, nil
}

// exists returns agent.ErrNotFound if no state is stored for the agent.
func (s *Service) exists(ctx context.Context, aid actor.ID) error {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.Get(ctx, aid.StateKey())
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: agent %s", agent.ErrNotFound, aid.ID)
	}
	return err
}

// readAttemptsMax bounds the committed reads one read tries before it
// asks the agent itself.
const readAttemptsMax = 3

// read answers a read-only op from the agent's committed state in storage
// (actor.ReadCommitted), without activating the agent or queueing behind
// its mailbox: what the agent would answer between two commits, and only
// state already committed, which is all a client can have been
// acknowledged. A read that keeps conflicting with the agent's commits
// (readAttemptsMax) is passed to the agent through its mailbox.
func read[Req, Rep any](ctx context.Context, s *Service, id string, op agent.Op[Req, Rep], req Req) (Rep, error) {
	var none Rep
	aid := agent.ActorID(id)
	if err := aid.Validate(); err != nil {
		return none, fmt.Errorf("%w: agent %q", agent.ErrNotFound, id)
	}
	payload, err := op.EncodeRequest(req)
	if err != nil {
		return none, err
	}
	for attempt := 1; attempt <= readAttemptsMax; attempt++ {
		reply, err := actor.ReadCommitted(ctx, s.store, s.rt, aid, func(c *actor.Context[agent.State]) ([]byte, error) {
			return s.agentActor.Invoke(ctx, c, op.Name, payload)
		})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return none, err
		}
		return op.DecodeReply(reply)
	}
	return call(ctx, s, id, op, req)
}

// call invokes op with req on the agent's actor.
func call[Req, Rep any](ctx context.Context, s *Service, id string, op agent.Op[Req, Rep], req Req) (Rep, error) {
	var none Rep
	aid := agent.ActorID(id)
	if err := aid.Validate(); err != nil {
		// A malformed ID names no agent.
		return none, fmt.Errorf("%w: agent %q", agent.ErrNotFound, id)
	}
	if op.Name != agent.OpCreate.Name && !s.sys.IsActive(aid) {
		// Activating claims an epoch, a durable write: don't do it for an
		// agent that does not exist (a request for a random ID must not
		// grow the store).
		if err := s.exists(ctx, aid); err != nil {
			return none, err
		}
	}
	return op.Invoke(ctx, s.sys, aid, req)
}
