package api

// runRoutes registers the run endpoints.
func (h *handler) runRoutes() {}
