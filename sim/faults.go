package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault names a kind of fault the simulator can inject.
type Fault string

// The faults. Each applies at the operations listed in appliesTo.
const (
	StorageWriteFail       Fault = "StorageWriteFail"       // commit fails, nothing written
	StorageReadFail        Fault = "StorageReadFail"        // a read fails
	StorageCorruption      Fault = "StorageCorruption"      // bytes read are corrupted; checksums must catch it
	StorageLatency         Fault = "StorageLatency"         // an operation is slow
	DiskFull               Fault = "DiskFull"               // commit fails for lack of space, nothing written
	CrashBeforeWrite       Fault = "CrashBeforeWrite"       // the node crashes before the commit is written
	CrashAfterWrite        Fault = "CrashAfterWrite"        // the commit is written but the caller sees an error
	CrashDuringTransaction Fault = "CrashDuringTransaction" // the commit is interrupted: not applied, caller sees an error
	StorageFsyncFail       Fault = "StorageFsyncFail"       // fsync fails: the commit is rolled back, caller sees an error
	StorageUnflushedLoss   Fault = "StorageUnflushedLoss"   // at a crash, unsynced writes vanish
	LlmTimeout             Fault = "LlmTimeout"             // the model call hangs until its deadline
	LlmFailure             Fault = "LlmFailure"             // the model call fails
	LlmRateLimited         Fault = "LlmRateLimited"         // the model call is refused with 429
	ToolTimeout            Fault = "ToolTimeout"            // a sandboxed tool hangs until its deadline or cancellation
	ToolCrash              Fault = "ToolCrash"              // a sandboxed tool's process is killed
	ToolMemoryKill         Fault = "ToolMemoryKill"         // a sandboxed tool is killed at its memory limit
	MCPTimeout             Fault = "MCPTimeout"             // an MCP server never answers a call
	MCPConnectionDropped   Fault = "MCPConnectionDropped"   // an MCP server's connection drops mid-call
	ClockSkew              Fault = "ClockSkew"              // a node's clock drifts a little
	ClockJump              Fault = "ClockJump"              // a node's clock jumps
	NetworkPartition       Fault = "NetworkPartition"       // reserved for the cluster
	NetworkDelay           Fault = "NetworkDelay"           // reserved for the cluster
	NetworkLoss            Fault = "NetworkLoss"            // reserved for the cluster
	NetworkReorder         Fault = "NetworkReorder"         // reserved for the cluster
	NetworkDuplicate       Fault = "NetworkDuplicate"       // reserved for the cluster
)

// Op names a hook where faults are checked.
type Op string

// The hooks.
const (
	OpStorageGet    Op = "storage.get"
	OpStorageScan   Op = "storage.scan"
	OpStorageCommit Op = "storage.commit"
	OpStorageCrash  Op = "storage.crash" // a node crash, for unflushed writes
	OpLLMComplete   Op = "llm.complete"
	OpToolRun       Op = "tool.run"
	OpMCPCall       Op = "mcp.call"
	OpClockTick     Op = "clock.tick"
	OpNetSend       Op = "net.send"
)

// appliesTo lists, for each fault, the hooks where it has a meaning.
var appliesTo = map[Fault][]Op{
	StorageWriteFail:       {OpStorageCommit},
	StorageReadFail:        {OpStorageGet, OpStorageScan},
	StorageCorruption:      {OpStorageGet, OpStorageScan},
	StorageLatency:         {OpStorageGet, OpStorageScan, OpStorageCommit},
	DiskFull:               {OpStorageCommit},
	CrashBeforeWrite:       {OpStorageCommit},
	CrashAfterWrite:        {OpStorageCommit},
	CrashDuringTransaction: {OpStorageCommit},
	StorageFsyncFail:       {OpStorageCommit},
	StorageUnflushedLoss:   {OpStorageCrash},
	LlmTimeout:             {OpLLMComplete},
	LlmFailure:             {OpLLMComplete},
	LlmRateLimited:         {OpLLMComplete},
	ToolTimeout:            {OpToolRun},
	ToolCrash:              {OpToolRun},
	ToolMemoryKill:         {OpToolRun},
	MCPTimeout:             {OpMCPCall},
	MCPConnectionDropped:   {OpMCPCall},
	ClockSkew:              {OpClockTick},
	ClockJump:              {OpClockTick},
	NetworkPartition:       {OpNetSend},
	NetworkDelay:           {OpNetSend},
	NetworkLoss:            {OpNetSend},
	NetworkReorder:         {OpNetSend},
	NetworkDuplicate:       {OpNetSend},
}

// Faults returns every fault kind, sorted.
func Faults() []Fault {
	out := make([]Fault, 0, len(appliesTo))
	for f := range appliesTo {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Rule arms one fault.
type Rule struct {
	Fault Fault
	// Probability that the fault fires at an operation it is checked at.
	Probability float64
	// Ops restricts the rule to these hooks (empty: every hook the fault
	// applies to). Naming a hook the fault cannot apply to is an error.
	Ops []Op
	// After skips the first After operations the rule is checked at.
	After uint64
	// MaxFires stops the rule after it has fired this often (0: no limit).
	MaxFires uint64
	// From and Until bound the rule to a window of virtual time since
	// Epoch (Until 0: no end).
	From, Until time.Duration
}

// FaultStats counts, for one fault, the operations it was checked at and
// how often it fired.
type FaultStats struct {
	Checked uint64
	Fired   uint64
}

type armed struct {
	Rule
	enabled bool
	checked uint64
	fired   uint64
}

// Injector decides, at each hook, whether a fault fires. All decisions
// come from the simulation's "faults" random stream and are recorded in
// the trace.
type Injector struct {
	sim   *Sim
	mu    sync.Mutex
	rules []*armed
}

// NewInjector returns an injector with no rules.
func NewInjector(s *Sim) *Injector { return &Injector{sim: s} }

// Add arms a rule. It fails if the rule names an unknown fault, a hook the
// fault cannot apply to, or a probability outside [0, 1].
func (in *Injector) Add(r Rule) error {
	ops, ok := appliesTo[r.Fault]
	if !ok {
		return fmt.Errorf("sim: unknown fault %q", r.Fault)
	}
	if r.Probability < 0 || r.Probability > 1 {
		return fmt.Errorf("sim: %s probability %v outside [0, 1]", r.Fault, r.Probability)
	}
	for _, op := range r.Ops {
		if !slices.Contains(ops, op) {
			return fmt.Errorf("sim: fault %s cannot apply at %s (it applies at %v)", r.Fault, op, ops)
		}
	}
	if len(r.Ops) == 0 {
		r.Ops = ops
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, &armed{Rule: r, enabled: true})
	return nil
}

// MustAdd is Add that panics on a malformed rule (for literal rule sets).
func (in *Injector) MustAdd(r Rule) {
	if err := in.Add(r); err != nil {
		panic(err)
	}
}

// Enable turns every rule for fault f on or off.
func (in *Injector) Enable(f Fault, on bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range in.rules {
		if r.Fault == f {
			r.enabled = on
		}
	}
}

// DisableAll turns every rule off.
func (in *Injector) DisableAll() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range in.rules {
		r.enabled = false
	}
}

// Check is called at hook op and returns the fault that fires there, if
// any. Rules are checked in the order they were added; the first that
// fires wins.
func (in *Injector) Check(op Op) (Fault, bool) {
	if in == nil {
		return "", false
	}
	now := in.sim.Now().Sub(Epoch)
	rng := in.sim.Rand("faults")
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, r := range in.rules {
		if !r.enabled || !slices.Contains(r.Ops, op) {
			continue
		}
		if now < r.From || (r.Until > 0 && now >= r.Until) || (r.MaxFires > 0 && r.fired >= r.MaxFires) {
			continue
		}
		r.checked++
		if r.checked <= r.After {
			continue
		}
		if float64(rng.Uint64()>>11)/(1<<53) < r.Probability {
			r.fired++
			in.sim.Note("fault", string(r.Fault), string(op))
			return r.Fault, true
		}
	}
	return "", false
}

// Unhandled reports that a hook received a fault it does not know how to
// apply: a framework bug, which fails the run rather than being skipped.
func (in *Injector) Unhandled(op Op, f Fault) {
	in.sim.Fail(fmt.Errorf("sim: fault %s fired at %s, whose hook cannot apply it", f, op))
}

// Stats returns per-fault counters, summed over rules.
func (in *Injector) Stats() map[Fault]FaultStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[Fault]FaultStats)
	for _, r := range in.rules {
		st := out[r.Fault]
		st.Checked += r.checked
		st.Fired += r.fired
		out[r.Fault] = st
	}
	return out
}

// FormatStats renders stats as "Fault=fired/checked" pairs, sorted.
func FormatStats(stats map[Fault]FaultStats) string {
	var parts []string
	for f, st := range stats {
		parts = append(parts, fmt.Sprintf("%s=%d/%d", f, st.Fired, st.Checked))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
