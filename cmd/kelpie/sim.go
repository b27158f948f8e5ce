package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kelpie-ai/kelpie/sim"
)

// newSimCmd builds `kelpie sim`.
func newSimCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		seed, start  uint64
		count        int
		swarm        bool
		replay       bool
		workers      int
		clients, ops int
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run deterministic simulations of Kelpie under injected faults",
		Long: `Run Kelpie's production code inside the deterministic simulator: simulated clients
drive the agent service while storage, crash, model and clock faults fire; every
history is checked for linearizability and lost acknowledged writes.

  kelpie sim --seed 42              one seed, one summary line
  kelpie sim --count 1000 --start 1 sweep seeds 1..1000 with a progress bar
  kelpie sim --swarm --count 500    a random fault mix per seed
  kelpie sim --seed 42 --replay     print the decision trace of one seed

A failing seed replays bit-for-bit: run it again with the same flags.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			configure := func(s uint64) sim.Config {
				cfg := sim.StandardConfig(s)
				if swarm {
					cfg = sim.SwarmConfig(s)
				}
				cfg.Clients, cfg.OpsPerClient = clients, ops
				cfg.Record = replay
				return cfg
			}
			replayCmd := func(s uint64) string {
				flags := fmt.Sprintf("--seed %d --clients %d --ops %d", s, clients, ops)
				if swarm {
					flags += " --swarm"
				}
				return "kelpie sim " + flags + " --replay"
			}
			if cmd.Flags().Changed("seed") || count == 0 {
				res := sim.Run(configure(seed))
				if replay {
					for _, line := range res.Log {
						fmt.Fprintln(stdout, line)
					}
				}
				if res.Err != nil {
					fmt.Fprintf(stderr, "FAIL seed=%d: replay with: %s\n%v\n", seed, replayCmd(seed), res.Err)
					fmt.Fprintln(stdout, res.Summary())
					return errors.New("simulation failed")
				}
				fmt.Fprintln(stdout, res.Summary(), "faults:", sim.FormatStats(res.Faults))
				return nil
			}
			return sweep(stdout, stderr, start, count, workers, configure, replayCmd)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&seed, "seed", 1, "run this one seed")
	f.Uint64Var(&start, "start", 1, "first seed of a sweep")
	f.IntVar(&count, "count", 0, "number of seeds to sweep")
	f.BoolVar(&swarm, "swarm", false, "draw a random fault mix for each seed")
	f.BoolVar(&replay, "replay", false, "print the decision trace of the seed")
	f.IntVar(&workers, "workers", runtime.NumCPU(), "simulations run in parallel during a sweep")
	f.IntVar(&clients, "clients", 4, "concurrent simulated clients")
	f.IntVar(&ops, "ops", 20, "operations per client")
	return cmd
}

// sweep runs count seeds from start and prints a summary.
func sweep(stdout, stderr io.Writer, start uint64, count, workers int, configure func(uint64) sim.Config, replayCmd func(uint64) string) error {
	if workers < 1 {
		workers = 1
	}
	bar := progressbar.NewOptions(count,
		progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("seeds"),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish())
	var (
		mu        sync.Mutex
		failed    []sim.Result
		ops       int
		crashes   int
		extra     sim.Result // shared-block and approval figures, summed
		compacted int        // seeds whose final logs hold a compaction
		faults    = map[sim.Fault]sim.FaultStats{}
		wg        sync.WaitGroup
	)
	seeds := make(chan uint64)
	began := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range seeds {
				res := sim.Run(configure(s))
				mu.Lock()
				ops += res.Ops
				crashes += res.Crashes
				extra.SharedAppends += res.SharedAppends
				extra.SharedWrites += res.SharedWrites
				extra.ApprovalStops += res.ApprovalStops
				extra.ApprovalRefused += res.ApprovalRefused
				extra.ApprovalAnswers += res.ApprovalAnswers
				extra.BlockDeletes += res.BlockDeletes
				extra.ToolEdits += res.ToolEdits
				extra.ToolDeletes += res.ToolDeletes
				extra.CustomToolCalls += res.CustomToolCalls
				extra.StaleToolCalls += res.StaleToolCalls
				extra.Conversations += res.Conversations
				extra.ConversationMessages += res.ConversationMessages
				extra.ConversationOverlaps += res.ConversationOverlaps
				extra.SandboxCalls += res.SandboxCalls
				extra.Compactions += res.Compactions
				extra.Summaries += res.Summaries
				extra.SummaryFaults += res.SummaryFaults
				if res.Compactions > 0 {
					compacted++
				}
				for f, st := range res.Faults {
					t := faults[f]
					t.Checked += st.Checked
					t.Fired += st.Fired
					faults[f] = t
				}
				if res.Err != nil {
					failed = append(failed, res)
				}
				mu.Unlock()
				bar.Add(1)
			}
		}()
	}
	for i := range uint64(count) {
		seeds <- start + i
	}
	close(seeds)
	wg.Wait()
	bar.Finish()
	elapsed := time.Since(began).Seconds()
	if len(failed) > 0 {
		first := failed[0]
		for _, r := range failed {
			if r.Seed < first.Seed {
				first = r
			}
		}
		fmt.Fprintf(stderr, "FAIL seed=%d (%d of %d seeds failed): replay with: %s\n%v\n", first.Seed, len(failed), count, replayCmd(first.Seed), first.Err)
	}
	fmt.Fprintf(stdout, "seeds=%d failed=%d ops=%d crashes=%d elapsed=%.1fs seeds/s=%.1f ops/s=%.0f\n",
		count, len(failed), ops, crashes, elapsed, float64(count)/elapsed, float64(ops)/elapsed)
	fmt.Fprintln(stdout, "faults (fired/checked):", sim.FormatStats(faults))
	fmt.Fprintf(stdout, "shared block: appends=%d writes=%d; approvals: stops=%d refused=%d answers=%d\n",
		extra.SharedAppends, extra.SharedWrites, extra.ApprovalStops, extra.ApprovalRefused, extra.ApprovalAnswers)
	fmt.Fprintf(stdout, "shared records: block deletions=%d; custom tool: edits=%d deletions=%d calls=%d by a gone name=%d\n",
		extra.BlockDeletes, extra.ToolEdits, extra.ToolDeletes, extra.CustomToolCalls, extra.StaleToolCalls)
	fmt.Fprintf(stdout, "conversations: created=%d messages=%d sends overlapping another send to the agent=%d; sandbox calls=%d\n",
		extra.Conversations, extra.ConversationMessages, extra.ConversationOverlaps, extra.SandboxCalls)
	fmt.Fprintf(stdout, "compaction: %d in the final logs, in %d of %d seeds; summarizer calls=%d, faults in them=%d\n",
		extra.Compactions, compacted, count, extra.Summaries, extra.SummaryFaults)
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d seeds failed", len(failed), count)
	}
	return nil
}
