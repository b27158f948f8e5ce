package bench

import (
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/kelpie-ai/kelpie/server"
)

// meter holds the process counters at the start of a phase.
type meter struct {
	t       *target
	inProc  bool
	cpu     time.Duration
	cpuOK   bool
	mallocs uint64
	bytes   uint64
	commits server.CommitStats
	hasDB   bool
}

// usage is what a meter measured over a phase; zero fields were not
// measured.
type usage struct {
	inProc  bool
	cpu     time.Duration
	cpuOK   bool
	mallocs uint64
	bytes   uint64
	commits server.CommitStats
	hasDB   bool
}

// meter starts measuring: process CPU, allocations, and commits, for an
// in-process server only (a remote server's are not this process's).
func (t *target) meter() *meter {
	m := &meter{t: t, inProc: t.node != nil}
	if !m.inProc {
		return m
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mallocs, m.bytes = ms.Mallocs, ms.TotalAlloc
	m.cpu, m.cpuOK = processCPU()
	m.commits, m.hasDB = t.commitStats()
	return m
}

// since returns the counters' growth since the meter started.
func (m *meter) since() usage {
	u := usage{inProc: m.inProc}
	if !m.inProc {
		return u
	}
	cpu, ok := processCPU()
	u.cpu, u.cpuOK = cpu-m.cpu, ok && m.cpuOK
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.mallocs, u.bytes = ms.Mallocs-m.mallocs, ms.TotalAlloc-m.bytes
	if c, ok := m.t.commitStats(); ok && m.hasDB {
		u.commits = server.CommitStats{Commits: c.Commits - m.commits.Commits, Syncs: c.Syncs - m.commits.Syncs}
		u.hasDB = true
	}
	return u
}

// startCPUProfile starts profiling the process into w.
func startCPUProfile(w io.Writer) error {
	if err := pprof.StartCPUProfile(w); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	return nil
}

// stopCPUProfile stops the profile and flushes it.
func stopCPUProfile() { pprof.StopCPUProfile() }
