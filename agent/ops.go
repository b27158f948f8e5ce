package agent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kelpie-ai/kelpie/actor"
)

// Op describes one operation of the agent actor: its name, which crosses
// to the actor with the request encoded as JSON, and by its type
// parameters the request it takes and the reply it gives. A call through
// an Op (Op.Invoke) is checked by the compiler, and the actor handles
// each Op with one registered function (handlers).
type Op[Req, Rep any] struct {
	// Name identifies the operation on the wire.
	Name string
}

// None is the request of an operation that takes nothing, or the reply
// of one that gives nothing.
type None struct{}

// Operations of the agent actor.
var (
	OpCreate = Op[CreateRequest, *Agent]{"create"}
	OpGet    = Op[None, *Agent]{"get"}
	OpUpdate = Op[UpdateRequest, *Agent]{"update"}
	OpDelete = Op[None, None]{"delete"}
	// OpSend starts a run.
	OpSend = Op[SendRequest, *SendResult]{"send"}
	// OpResetMessages empties the message log.
	OpResetMessages = Op[None, *Agent]{"reset_messages"}
	// OpMessages pages through a conversation's message log.
	OpMessages = Op[ListMessagesRequest, []Message]{"messages"}

	// OpPrepare and OpApply are a step's two halves around the model
	// call (the run driver's prepare → model call → apply).
	OpPrepare = Op[StepRequest, *Prepared]{"prepare"}
	OpApply   = Op[ApplyRequest, *Applied]{"apply"}
	// OpCancel ends a run; the reply is nil when there was none to end.
	OpCancel      = Op[CancelRequest, *Run]{"cancel"}
	OpGetRun      = Op[RunRequest, *Run]{"get_run"}
	OpRunMessages = Op[RunRequest, []Message]{"run_messages"}
	OpRunSteps    = Op[RunRequest, []Step]{"run_steps"}
	OpGetStep     = Op[StepByID, *Step]{"get_step"}
	// OpStepFeedback records a client's feedback on a step.
	OpStepFeedback = Op[StepFeedbackRequest, *Step]{"step_feedback"}

	// OpPlanCompaction plans a compaction outside a run; OpCompact
	// applies a plan with its summary.
	OpPlanCompaction = Op[PlanCompactionRequest, *CompactionPlan]{"plan_compaction"}
	OpCompact        = Op[CompactRequest, *CompactResult]{"compact"}
	// OpContextWindow reports what the model would see at the agent's
	// next step.
	OpContextWindow = Op[None, *ContextWindow]{"context_window"}

	OpCreateConversation = Op[CreateConversationRequest, *Conversation]{"create_conversation"}
	OpGetConversation    = Op[ConversationRequest, *Conversation]{"get_conversation"}
	OpUpdateConversation = Op[UpdateConversationRequest, *Conversation]{"update_conversation"}
	OpDeleteConversation = Op[ConversationRequest, None]{"delete_conversation"}
	OpForkConversation   = Op[ForkConversationRequest, *Conversation]{"fork_conversation"}
	OpListConversations  = Op[ListConversationsRequest, []Conversation]{"list_conversations"}
	// OpCompileConversation gives a conversation's compiled system prompt.
	OpCompileConversation = Op[ConversationRequest, *CompiledPrompt]{"compile_conversation"}

	OpArchivalInsert = Op[InsertPassageRequest, *Passage]{"archival_insert"}
	OpArchivalList   = Op[ListPassagesRequest, []Passage]{"archival_list"}
	OpArchivalSearch = Op[SearchRequest, *SearchResponse]{"archival_search"}
	OpArchivalDelete = Op[DeletePassageRequest, None]{"archival_delete"}

	// OpImport creates an agent with a history; OpExport reads an agent
	// whole.
	OpImport = Op[ImportRequest, *Agent]{"import"}
	OpExport = Op[ExportRequest, *Export]{"export"}

	// OpOrderRuns writes the ordering entries of the agent's runs recorded
	// before it had one, at most RunsOrderBatchMax runs per invocation.
	OpOrderRuns = Op[None, *OrderRunsResult]{"order_runs"}
)

// Invoke calls op with req on the agent actor id through sys and decodes
// its reply.
func (op Op[Req, Rep]) Invoke(ctx context.Context, sys *actor.System, id actor.ID, req Req) (Rep, error) {
	payload, err := op.EncodeRequest(req)
	if err != nil {
		var none Rep
		return none, err
	}
	reply, err := sys.Invoke(ctx, id, op.Name, payload)
	if err != nil {
		var none Rep
		return none, err
	}
	return op.DecodeReply(reply)
}

// DecodeReply decodes op's encoded reply.
func (op Op[Req, Rep]) DecodeReply(reply []byte) (Rep, error) {
	var rep Rep
	if _, none := any(rep).(None); none || len(reply) == 0 {
		return rep, nil
	}
	if err := json.Unmarshal(reply, &rep); err != nil {
		return rep, fmt.Errorf("agent: decode the reply to %s: %w", op.Name, err)
	}
	return rep, nil
}

// EncodeRequest gives the payload of req: none for None.
func (op Op[Req, Rep]) EncodeRequest(req Req) ([]byte, error) {
	if _, none := any(req).(None); none {
		return nil, nil
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: encode the request of %s: %v", ErrInvalid, op.Name, err)
	}
	return b, nil
}

// handler runs one operation on its encoded request.
type handler func(a *Actor, ctx context.Context, c *actor.Context[State], payload []byte) ([]byte, error)

// handlers maps each operation's name to its handler.
var handlers = map[string]handler{}

// existing marks the handlers of operations on an agent that must exist:
// on one that does not, they answer ErrNotFound.
const existing = true

// handle registers fn as op's handler; with mustExist, an operation on an
// agent that does not exist answers ErrNotFound without calling fn.
func handle[Req, Rep any](op Op[Req, Rep], mustExist bool, fn func(a *Actor, ctx context.Context, c *actor.Context[State], req *Req) (Rep, error)) {
	if _, dup := handlers[op.Name]; dup {
		panic("agent: operation " + op.Name + " registered twice")
	}
	handlers[op.Name] = func(a *Actor, ctx context.Context, c *actor.Context[State], payload []byte) ([]byte, error) {
		var req Req
		if _, none := any(req).(None); !none {
			if err := decode(payload, &req); err != nil {
				return nil, err
			}
		}
		if mustExist && c.State.Agent == nil {
			return nil, agentNotFound(c)
		}
		rep, err := fn(a, ctx, c, &req)
		if err != nil {
			return nil, err
		}
		if _, none := any(rep).(None); none {
			return nil, nil
		}
		return json.Marshal(rep)
	}
}

func init() {
	handle(OpCreate, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *CreateRequest) (*Agent, error) {
		return view(ctx, c)(create(ctx, c, req))
	})
	handle(OpGet, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], _ *None) (*Agent, error) {
		return view(ctx, c)(c.State.Agent, nil)
	})
	handle(OpUpdate, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *UpdateRequest) (*Agent, error) {
		return view(ctx, c)(update(ctx, c, req))
	})
	handle(OpDelete, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], _ *None) (None, error) {
		return None{}, remove(ctx, c)
	})
	handle(OpSend, false, (*Actor).start)
	handle(OpResetMessages, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], _ *None) (*Agent, error) {
		return view(ctx, c)(resetMessages(c))
	})
	handle(OpMessages, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ListMessagesRequest) ([]Message, error) {
		if req.Limit <= 0 || req.Limit > MessagesPageMax {
			return nil, invalidf("limit %d outside 1..%d", req.Limit, MessagesPageMax)
		}
		return listMessages(ctx, c, req)
	})

	handle(OpPrepare, false, (*Actor).prepare)
	handle(OpApply, false, (*Actor).apply)
	handle(OpCancel, false, (*Actor).cancel)
	handle(OpGetRun, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *RunRequest) (*Run, error) {
		return loadRun(ctx, c, req.RunID)
	})
	handle(OpRunMessages, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *RunRequest) ([]Message, error) {
		return runMessages(ctx, c, req.RunID)
	})
	handle(OpRunSteps, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *RunRequest) ([]Step, error) {
		return runSteps(ctx, c, req.RunID)
	})
	handle(OpGetStep, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *StepByID) (*Step, error) {
		return loadStep(ctx, c, req.StepID)
	})
	handle(OpStepFeedback, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *StepFeedbackRequest) (*Step, error) {
		return setStepFeedback(ctx, c, req)
	})

	handle(OpPlanCompaction, false, (*Actor).planClientCompaction)
	handle(OpCompact, false, (*Actor).compact)
	handle(OpContextWindow, false, func(a *Actor, ctx context.Context, c *actor.Context[State], _ *None) (*ContextWindow, error) {
		return a.contextWindow(ctx, c)
	})

	handle(OpCreateConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *CreateConversationRequest) (*Conversation, error) {
		return withContextIDs(ctx, c)(createConversation(ctx, c, req))
	})
	handle(OpGetConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ConversationRequest) (*Conversation, error) {
		return withContextIDs(ctx, c)(loadConversation(ctx, c, req.ConversationID))
	})
	handle(OpUpdateConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *UpdateConversationRequest) (*Conversation, error) {
		return withContextIDs(ctx, c)(updateConversation(ctx, c, req))
	})
	handle(OpDeleteConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ConversationRequest) (None, error) {
		return None{}, deleteConversation(ctx, c, req.ConversationID)
	})
	handle(OpForkConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ForkConversationRequest) (*Conversation, error) {
		return withContextIDs(ctx, c)(forkConversation(ctx, c, req))
	})
	handle(OpListConversations, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ListConversationsRequest) ([]Conversation, error) {
		return listConversations(ctx, c, req)
	})
	handle(OpCompileConversation, existing, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ConversationRequest) (*CompiledPrompt, error) {
		return compileConversation(ctx, c, req.ConversationID)
	})

	handle(OpArchivalInsert, false, func(_ *Actor, _ context.Context, c *actor.Context[State], req *InsertPassageRequest) (*Passage, error) {
		return insertPassage(c, req)
	})
	handle(OpArchivalList, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ListPassagesRequest) ([]Passage, error) {
		return listPassages(ctx, c, req)
	})
	handle(OpArchivalSearch, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *SearchRequest) (*SearchResponse, error) {
		return searchPassages(ctx, c, req)
	})
	handle(OpArchivalDelete, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *DeletePassageRequest) (None, error) {
		return None{}, deletePassage(ctx, c, req.ID)
	})

	handle(OpImport, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ImportRequest) (*Agent, error) {
		return view(ctx, c)(importAgent(ctx, c, req))
	})
	handle(OpOrderRuns, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], _ *None) (*OrderRunsResult, error) {
		return orderRuns(ctx, c)
	})
	handle(OpExport, false, func(_ *Actor, ctx context.Context, c *actor.Context[State], req *ExportRequest) (*Export, error) {
		return exportAgent(ctx, c, req)
	})
}

// Invoke implements actor.Actor: it runs the handler registered for op.
func (a *Actor) Invoke(ctx context.Context, c *actor.Context[State], op string, payload []byte) ([]byte, error) {
	h, ok := handlers[op]
	if !ok {
		return nil, invalidf("unknown operation %q", op)
	}
	return h(a, ctx, c, payload)
}
