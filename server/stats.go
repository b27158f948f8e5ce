package server

import "github.com/kelpie-ai/kelpie/storage/sqlite"

// CommitStats are the store's commit counters since the node started.
type CommitStats struct {
	// Commits is the number of storage transactions with writes
	// committed.
	Commits uint64
	// Syncs is the number of durable flushes (fsyncs) that carried them;
	// group commit makes it at most Commits.
	Syncs uint64
}

// CommitStats returns the store's commit counters, and false when its
// backend keeps none (memory and PostgreSQL do not).
func (s *Server) CommitStats() (CommitStats, bool) {
	st, ok := s.store.(*sqlite.Store)
	if !ok {
		return CommitStats{}, false
	}
	c := st.Stats()
	return CommitStats{Commits: c.Commits, Syncs: c.Syncs}, true
}
