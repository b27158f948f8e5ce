package sim

import (
	"math/rand/v2"
	"time"
)

// StandardConfig is the fault mix `kelpie sim` and the test suite's seed
// sweep use: every storage, model and clock fault at a few percent, plus
// whole-node crashes with restarts.
func StandardConfig(seed uint64) Config {
	return Config{
		Seed:        seed,
		NodeCrashes: true,
		Rules: []Rule{
			{Fault: StorageWriteFail, Probability: 0.03},
			{Fault: StorageReadFail, Probability: 0.02},
			{Fault: StorageCorruption, Probability: 0.02},
			{Fault: StorageLatency, Probability: 0.05},
			{Fault: DiskFull, Probability: 0.01},
			{Fault: CrashBeforeWrite, Probability: 0.01},
			{Fault: CrashAfterWrite, Probability: 0.03},
			{Fault: CrashDuringTransaction, Probability: 0.02},
			{Fault: StorageFsyncFail, Probability: 0.01},
			{Fault: StorageUnflushedLoss, Probability: 0.5},
			{Fault: LlmTimeout, Probability: 0.02},
			{Fault: LlmFailure, Probability: 0.03},
			{Fault: LlmRateLimited, Probability: 0.03},
			{Fault: ToolTimeout, Probability: 0.02},
			{Fault: ToolCrash, Probability: 0.05},
			{Fault: ToolMemoryKill, Probability: 0.03},
			{Fault: MCPTimeout, Probability: 0.05},
			{Fault: MCPConnectionDropped, Probability: 0.1},
			{Fault: ClockSkew, Probability: 0.05},
			{Fault: ClockJump, Probability: 0.005},
		},
	}
}

// swarmFaults are the faults a swarm run draws from (network faults wait
// for the cluster; the tool and MCP faults need more tool calls than a
// swarm seed's failing operations leave, so the standard mix covers them).
var swarmFaults = []Fault{
	StorageWriteFail, StorageReadFail, StorageCorruption, StorageLatency, DiskFull,
	CrashBeforeWrite, CrashAfterWrite, CrashDuringTransaction, StorageFsyncFail, StorageUnflushedLoss,
	LlmTimeout, LlmFailure, LlmRateLimited, ClockSkew, ClockJump,
}

// SwarmConfig draws a random fault mix for seed (swarm testing): each
// fault is on with probability 1/2, at a rate between 1% and 40%, some
// only in a window of virtual time, and node crashes are on or off.
func SwarmConfig(seed uint64) Config {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := Config{Seed: seed, NodeCrashes: r.IntN(2) == 0, ForceDeactivate: r.IntN(3) == 0}
	for _, f := range swarmFaults {
		if r.IntN(2) == 0 {
			continue
		}
		rule := Rule{Fault: f, Probability: 0.01 + 0.39*r.Float64()}
		if r.IntN(4) == 0 {
			rule.From = time.Duration(r.IntN(60)) * time.Second
			rule.Until = rule.From + time.Duration(10+r.IntN(120))*time.Second
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	return cfg
}
