package sandbox

import (
	"fmt"
	"time"
)

// Limits bound one tool call. A zero field takes its value from
// DefaultLimits; a negative one is an error.
type Limits struct {
	// CPUTime bounds the CPU time of each process of the call
	// (RLIMIT_CPU, in whole seconds, rounded up). A process past it gets
	// SIGXCPU, and SIGKILL a second later.
	CPUTime time.Duration
	// WallTime bounds the call from start to finish. When it passes, the
	// whole sandbox (every process in it) is killed.
	WallTime time.Duration
	// MemoryBytes bounds the data segment of each process (RLIMIT_DATA:
	// heap and private writable mappings, which is what both CPython's
	// and V8's allocators use; V8's large read-only reservations do not
	// count, so Node.js starts where an address-space limit would kill
	// it). Node.js also gets a V8 old-space limit of three quarters of it,
	// so a runaway JavaScript heap fails as "JavaScript heap out of
	// memory" rather than as a failed mmap.
	MemoryBytes int64
	// Processes bounds the processes and threads of the call together
	// (RLIMIT_NPROC). The sandbox runs as an unprivileged user in a user
	// namespace of its own, so the count is the call's alone. Memory is
	// bounded per process, so a call's total is at most Processes times
	// MemoryBytes.
	Processes int
	// OutputBytes bounds what is kept of the call's stdout and stderr
	// together. The rest is read and discarded, and the end of the
	// truncated stream says how much was lost.
	OutputBytes int
	// ReturnBytes bounds the tool's return value (and an error's message
	// and traceback). A larger one makes the call fail.
	ReturnBytes int
	// ScratchBytes bounds the call's private /tmp, which is also its
	// working directory (a tmpfs of that size), and, as RLIMIT_FSIZE, any
	// one file a process writes.
	ScratchBytes int64
	// OpenFiles bounds the open file descriptors of each process
	// (RLIMIT_NOFILE).
	OpenFiles int
}

// DefaultLimits are the bounds of a call when Config.Limits leaves a field
// zero: generous for a tool that computes, formats or parses something,
// and a third of Letta's 180 s tool timeout. Memory is bounded per
// process, so the worst a call can hold is Processes × MemoryBytes
// (16 GiB) plus ScratchBytes, for at most WallTime; lower them on a small
// host.
func DefaultLimits() Limits {
	return Limits{
		CPUTime:      30 * time.Second,
		WallTime:     60 * time.Second,
		MemoryBytes:  512 << 20,
		Processes:    32,
		OutputBytes:  256 << 10,
		ReturnBytes:  1 << 20,
		ScratchBytes: 64 << 20,
		OpenFiles:    256,
	}
}

// Upper bounds on the configurable limits, so that a typo cannot disable
// a bound.
const (
	timeLimitMax     = time.Hour
	memoryBytesMax   = 64 << 30
	processesMax     = 4096
	outputBytesMax   = 64 << 20
	returnBytesMax   = 64 << 20
	scratchBytesMax  = 16 << 30
	openFilesMax     = 65536
	processesMin     = 8        // an interpreter needs a few threads to start
	memoryBytesMin   = 64 << 20 // below this neither interpreter starts
	installMemoryMin = 1 << 30  // pip needs more than a small tool
)

// withDefaults fills zero fields from DefaultLimits and checks the rest.
func (l Limits) withDefaults() (Limits, error) {
	d := DefaultLimits()
	if l.CPUTime == 0 {
		l.CPUTime = d.CPUTime
	}
	if l.WallTime == 0 {
		l.WallTime = d.WallTime
	}
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Processes == 0 {
		l.Processes = d.Processes
	}
	if l.OutputBytes == 0 {
		l.OutputBytes = d.OutputBytes
	}
	if l.ReturnBytes == 0 {
		l.ReturnBytes = d.ReturnBytes
	}
	if l.ScratchBytes == 0 {
		l.ScratchBytes = d.ScratchBytes
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = d.OpenFiles
	}
	switch {
	case l.CPUTime < 0 || l.CPUTime > timeLimitMax:
		return l, fmt.Errorf("sandbox: CPUTime %v is outside (0, %v]", l.CPUTime, timeLimitMax)
	case l.WallTime < 0 || l.WallTime > timeLimitMax:
		return l, fmt.Errorf("sandbox: WallTime %v is outside (0, %v]", l.WallTime, timeLimitMax)
	case l.MemoryBytes < memoryBytesMin || l.MemoryBytes > memoryBytesMax:
		return l, fmt.Errorf("sandbox: MemoryBytes %d is outside [%d, %d]", l.MemoryBytes, int64(memoryBytesMin), int64(memoryBytesMax))
	case l.Processes < processesMin || l.Processes > processesMax:
		return l, fmt.Errorf("sandbox: Processes %d is outside [%d, %d]", l.Processes, processesMin, processesMax)
	case l.OutputBytes < 0 || l.OutputBytes > outputBytesMax:
		return l, fmt.Errorf("sandbox: OutputBytes %d is outside (0, %d]", l.OutputBytes, outputBytesMax)
	case l.ReturnBytes < 0 || l.ReturnBytes > returnBytesMax:
		return l, fmt.Errorf("sandbox: ReturnBytes %d is outside (0, %d]", l.ReturnBytes, returnBytesMax)
	case l.ScratchBytes < 0 || l.ScratchBytes > scratchBytesMax:
		return l, fmt.Errorf("sandbox: ScratchBytes %d is outside (0, %d]", l.ScratchBytes, int64(scratchBytesMax))
	case l.OpenFiles < 0 || l.OpenFiles > openFilesMax:
		return l, fmt.Errorf("sandbox: OpenFiles %d is outside (0, %d]", l.OpenFiles, openFilesMax)
	}
	return l, nil
}

// cpuSeconds is CPUTime as RLIMIT_CPU takes it: whole seconds, at least 1.
func (l Limits) cpuSeconds() int64 {
	s := int64((l.CPUTime + time.Second - 1) / time.Second)
	return max(s, 1)
}

// nodeHeapMiB is the V8 old-space limit for MemoryBytes.
func (l Limits) nodeHeapMiB() int64 {
	return max(l.MemoryBytes*3/4>>20, 16)
}

// prlimitArgs are the arguments of prlimit(1) that apply l to the program
// that follows them.
func (l Limits) prlimitArgs() []string {
	cpu := l.cpuSeconds()
	return []string{
		fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1),
		fmt.Sprintf("--data=%d", l.MemoryBytes),
		fmt.Sprintf("--nproc=%d", l.Processes),
		fmt.Sprintf("--fsize=%d", l.ScratchBytes),
		fmt.Sprintf("--nofile=%d", l.OpenFiles),
		"--core=0",
	}
}
