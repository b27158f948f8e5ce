package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/kelpie-ai/kelpie/agent"
)

// Which of an agent's relationships GET /v1/agents/{agent_id} and
// GET /v1/agents return, as Letta decides it:
//
//   - include (the 1.x SDKs' parameter) lists relationships by name
//     (includeValues); any other value answers 422.
//   - include_relationships (deprecated, pre-1.0 SDKs) lists legacy field
//     names ("memory", "tools", "sources", "tags", "identity_ids",
//     "multi_agent_group", "tool_exec_environment_variables"); as in
//     Letta, names it does not know are ignored.
//   - Without include_relationships, a 1.x SDK client gets only the
//     relationships include names, and any other client (curl, older
//     SDKs) gets them all. Letta tells them apart by the
//     X-Stainless-Package-Version header the 1.x SDKs send (Letta's
//     is_1_0_sdk_version; see sdkV1).
//
// A relationship left out is emptied ([]; memory keeps no blocks), never
// removed: AgentState requires the fields. pending_approval is filled
// only when include names it, and the agent's secrets (in secrets and in
// the deprecated tool_exec_environment_variables) only when include names
// agent.secrets or include_relationships names
// tool_exec_environment_variables: never by default, and never in create
// and update responses, which carry every other relationship, as in
// Letta. Kelpie has no sources, identities or managed groups, so those
// are always empty; naming them is accepted.

// includeValues are the values of include (Letta's AgentRelationships).
var includeValues = []string{
	"agent.blocks", "agent.identities", "agent.managed_group", "agent.pending_approval",
	"agent.secrets", "agent.sources", "agent.tags", "agent.tools",
}

// relationships selects the relationships an agent is rendered with
// (those Kelpie can have: sources, identities and managed groups are
// always empty, so selecting them changes nothing).
type relationships struct {
	blocks, tools, tags, pendingApproval, secrets bool
}

// allRelationships is what a request that selects none gets, unless it
// comes from a 1.x SDK.
var allRelationships = relationships{blocks: true, tools: true, tags: true}

// sdkV1 reports whether the request comes from a Letta 1.x SDK: its
// X-Stainless-Package-Version header names a version 1.0 or later.
func sdkV1(r *http.Request) bool {
	v := r.Header.Get("X-Stainless-Package-Version")
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 1
}

// parseRelationships reads include and include_relationships; an invalid
// include answers 422 and returns false.
func parseRelationships(w http.ResponseWriter, r *http.Request) (relationships, bool) {
	q := r.URL.Query()
	var rel relationships
	legacy, given := q["include_relationships"]
	if !given && !sdkV1(r) {
		rel = allRelationships
	}
	for _, name := range legacy {
		switch name {
		case "memory":
			rel.blocks = true
		case "tools":
			rel.tools = true
		case "tags":
			rel.tags = true
		case "tool_exec_environment_variables":
			rel.secrets = true
		}
	}
	for i, v := range q["include"] {
		switch v {
		case "agent.blocks":
			rel.blocks = true
		case "agent.pending_approval":
			rel.pendingApproval = true
		case "agent.tags":
			rel.tags = true
		case "agent.tools":
			rel.tools = true
		case "agent.secrets":
			rel.secrets = true
		case "agent.identities", "agent.managed_group", "agent.sources":
			// Always empty in Kelpie.
		default:
			writeFieldError(w, []any{"query", "include", i}, literalMsg(includeValues), "literal_error")
			return relationships{}, false
		}
	}
	return rel, true
}

// agentView is an AgentState with the relationships a request selected.
type agentView struct {
	agentWire
	PendingApproval *approvalRequestWire `json:"pending_approval,omitempty"`
}

// approvalRequestWire is Letta's ApprovalRequestMessage for the calls an
// agent's pending approval waits on.
type approvalRequestWire struct {
	ID          string         `json:"id"`
	Date        string         `json:"date"`
	MessageType string         `json:"message_type"`
	OTID        *string        `json:"otid"`
	RunID       *string        `json:"run_id"`
	SeqID       uint64         `json:"seq_id"`
	ToolCall    toolCallWire   `json:"tool_call"`
	ToolCalls   []toolCallWire `json:"tool_calls"`
}

// viewAgent renders ag with the relationships rel selects. The pending
// approval is read from committed storage (service.PendingApproval).
func (h *handler) viewAgent(ctx context.Context, ag *agent.Agent, rel relationships) (agentView, error) {
	v := agentView{agentWire: h.agentWire(ag)}
	if !rel.blocks {
		v.Blocks, v.Memory.Blocks = []blockWire{}, []blockWire{}
	}
	if !rel.tools {
		v.Tools = []toolWire{}
	}
	if !rel.tags {
		v.Tags = []string{}
	}
	if rel.secrets {
		v.Secrets = toSecretWires(ag)
		v.ToolExecEnvVars = v.Secrets
	}
	if rel.pendingApproval && ag.PendingApproval != nil {
		m, err := h.svc.PendingApproval(ctx, ag)
		if err != nil {
			return agentView{}, err
		}
		if m != nil {
			a := &approvalRequestWire{ID: m.ID, Date: timeString(m.CreatedAt), MessageType: "approval_request_message",
				OTID: optional(m.OTID), RunID: optional(m.RunID), SeqID: wireSeq(m.Seq)}
			for _, c := range ag.PendingApproval.Calls {
				a.ToolCalls = append(a.ToolCalls, toolCallWire{Name: c.Name, Arguments: c.Arguments, ToolCallID: c.ID})
			}
			a.ToolCall = a.ToolCalls[0]
			v.PendingApproval = a
		}
	}
	return v, nil
}

// writeAgent answers with ag rendered with rel.
func (h *handler) writeAgent(w http.ResponseWriter, r *http.Request, ag *agent.Agent, rel relationships) {
	v, err := h.viewAgent(r.Context(), ag, rel)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeAgents answers with the agents rendered with rel.
func (h *handler) writeAgents(w http.ResponseWriter, r *http.Request, ags []*agent.Agent, rel relationships) {
	out := make([]agentView, 0, len(ags))
	for _, ag := range ags {
		v, err := h.viewAgent(r.Context(), ag, rel)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}
