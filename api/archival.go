package api

// archivalRoutes registers the archival-memory endpoints.
func (h *handler) archivalRoutes() {}
