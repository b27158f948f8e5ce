package api

import (
	"context"
	"net/http"

	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/service"
)

// blockRoutes registers the standalone block endpoints and attaching
// blocks to agents. Attaching shares the block: the agent holds a
// reference, and every attached agent sees and edits the one block (see
// service/blocks.go and agent/shared.go).
func (h *handler) blockRoutes() {
	h.route("GET /v1/blocks", h.listStandaloneBlocks)
	h.route("POST /v1/blocks", h.createStandaloneBlock)
	h.route("GET /v1/blocks/{block_id}", h.getStandaloneBlock)
	h.route("PATCH /v1/blocks/{block_id}", h.updateStandaloneBlock)
	h.route("DELETE /v1/blocks/{block_id}", h.deleteStandaloneBlock)
	h.route("PATCH /v1/agents/{agent_id}/core-memory/blocks/attach/{block_id}", h.attachBlock)
	h.route("PATCH /v1/agents/{agent_id}/core-memory/blocks/detach/{block_id}", h.detachBlock)
}

func (h *handler) listStandaloneBlocks(w http.ResponseWriter, r *http.Request) {
	limit, ok := listLimit(w, r, 50, service.ListLimitMax)
	if !ok {
		return
	}
	blocks, err := h.svc.ListBlocks(r.Context(), r.URL.Query().Get("label"), limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]blockWire, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, toBlockWire(b.Block))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) createStandaloneBlock(w http.ResponseWriter, r *http.Request) {
	var req blockCreate
	if !decodeBody(w, r, &req) {
		return
	}
	b, err := h.svc.CreateBlock(r.Context(), agent.Block{Label: req.Label, Value: req.Value, Limit: req.Limit, Description: req.Description, ReadOnly: req.ReadOnly})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toBlockWire(b.Block))
}

func (h *handler) getStandaloneBlock(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "block_id", "block")
	if !ok {
		return
	}
	b, err := h.svc.GetBlock(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toBlockWire(b.Block))
}

func (h *handler) updateStandaloneBlock(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "block_id", "block")
	if !ok {
		return
	}
	var req struct {
		blockUpdateRequest
		Label *string `json:"label"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	b, err := h.svc.UpdateBlock(r.Context(), id, agent.BlockUpdate{Value: req.Value, Limit: req.Limit, Description: req.Description}, req.Label)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toBlockWire(b.Block))
}

func (h *handler) deleteStandaloneBlock(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "block_id", "block")
	if !ok {
		return
	}
	if err := h.svc.DeleteBlock(r.Context(), id); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nil)
}

func (h *handler) attachBlock(w http.ResponseWriter, r *http.Request) {
	h.blockMembership(w, r, h.svc.AttachBlock)
}

func (h *handler) detachBlock(w http.ResponseWriter, r *http.Request) {
	h.blockMembership(w, r, h.svc.DetachBlock)
}

func (h *handler) blockMembership(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, agentID, blockID string) (*agent.Agent, error)) {
	agentID, ok := pathID(w, r, "agent_id", "agent")
	if !ok {
		return
	}
	blockID, ok := pathID(w, r, "block_id", "block")
	if !ok {
		return
	}
	ag, err := change(r.Context(), agentID, blockID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.agentWire(ag))
}
