package sqlite

// Stats are a Store's commit counters since Open.
type Stats struct {
	// Commits is the number of commit requests (storage transactions
	// with writes) committed.
	Commits uint64
	// Syncs is the number of SQLite transactions committed: one batch of
	// group commit each, so one fsync of the write-ahead log each.
	Syncs uint64
}

// Stats returns the store's commit counters. It is safe to call at any
// time; the two counters are read one after the other, not atomically
// together.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.applied.Load(), Syncs: s.batches.Load()}
}
