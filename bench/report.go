package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is the result of a run, as `kelpie bench --json` prints it.
type Report struct {
	// Target is "in-process" or the URL of the server driven.
	Target string `json:"target"`
	// Storage is the in-process server's store ("remote" otherwise).
	Storage string `json:"storage"`
	// The workload.
	Agents          int     `json:"agents"`
	Clients         int     `json:"clients"`
	Messages        int     `json:"messages,omitempty"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	Stream          bool    `json:"stream"`
	Tools           bool    `json:"tools"`
	History         int     `json:"history"`

	// MsgsPerSec is the kelpie phase's messages per second; FloorPerSec
	// the floor's requests per second; Ratio the first over the second,
	// the headline (0 without a floor).
	MsgsPerSec  float64 `json:"msgs_per_sec"`
	FloorPerSec float64 `json:"floor_req_per_sec,omitempty"`
	Ratio       float64 `json:"ratio,omitempty"`

	// Kelpie and Floor are the two phases.
	Kelpie Phase  `json:"kelpie"`
	Floor  *Phase `json:"floor,omitempty"`
	// ServerEstimate is the kelpie phase's process cost per message less
	// the floor's per request (which pays for one client request and one
	// model call): an estimate of the server's own cost. In-process only.
	ServerEstimate *PerRequest `json:"server_estimate,omitempty"`
	// Commits counts the store's commits and fsyncs in the kelpie phase,
	// when its backend keeps counters (in-process SQLite).
	Commits *CommitReport `json:"commits,omitempty"`
	// Notes qualify the figures.
	Notes []string `json:"notes"`
}

// Phase is one phase's figures.
type Phase struct {
	// OK is the number of successful requests (messages, for kelpie).
	OK int `json:"ok"`
	// Errors is the number of failed ones, ErrorKinds by kind, with the
	// first detail of each kind in ErrorSamples.
	Errors       int               `json:"errors"`
	ErrorKinds   map[string]int    `json:"error_kinds"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// BusyRetries counts the 409 (agent busy) answers retried.
	BusyRetries int `json:"busy_retries"`
	// Seconds is the phase's wall time; PerSec is OK per second.
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_sec"`
	// Latency is of the successful requests, busy retries included.
	Latency Latency `json:"latency_ms"`
	// Process is the process's cost per successful request (in-process
	// only): the server, the clients and the fake model together.
	Process *PerRequest `json:"process,omitempty"`
}

// Latency holds latency percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// PerRequest is a cost per request.
type PerRequest struct {
	// CPUMicros is CPU time (user and system) in microseconds; nil where
	// it cannot be read.
	CPUMicros *float64 `json:"cpu_us,omitempty"`
	// Allocs and Bytes are heap allocations and bytes allocated.
	Allocs float64 `json:"allocs"`
	Bytes  float64 `json:"bytes"`
}

// CommitReport counts the store's durable work in the kelpie phase.
type CommitReport struct {
	Commits        uint64  `json:"commits"`
	Syncs          uint64  `json:"fsyncs"`
	CommitsPerMsg  float64 `json:"commits_per_msg"`
	SyncsPerMsg    float64 `json:"fsyncs_per_msg"`
	CommitsPerSync float64 `json:"commits_per_fsync"`
}

// newReport starts the report of a run of cfg against t.
func newReport(cfg *Config, t *target) *Report {
	r := &Report{Target: "in-process", Storage: t.storage, Agents: cfg.Agents, Clients: cfg.Clients,
		Messages: cfg.Messages, DurationSeconds: cfg.Duration.Seconds(), Stream: cfg.Stream, Tools: cfg.Tools, History: cfg.History,
		Notes: []string{}}
	if !cfg.inProcess() {
		r.Target = cfg.Server
	}
	return r
}

// stats summarizes a phase with the process usage measured over it.
func (p *phase) stats(u usage) Phase {
	out := Phase{OK: p.ok, BusyRetries: p.busy, ErrorKinds: p.errors, Seconds: p.elapsed.Seconds()}
	for _, n := range p.errors {
		out.Errors += n
	}
	if len(p.samples) > 0 {
		out.ErrorSamples = p.samples
	}
	if out.Seconds > 0 {
		out.PerSec = float64(p.ok) / out.Seconds
	}
	out.Latency = latency(p.latencies)
	if u.inProc && p.ok > 0 {
		n := float64(p.ok)
		pr := &PerRequest{Allocs: float64(u.mallocs) / n, Bytes: float64(u.bytes) / n}
		if u.cpuOK {
			us := float64(u.cpu.Microseconds()) / n
			pr.CPUMicros = &us
		}
		out.Process = pr
	}
	return out
}

// latency computes percentiles (nearest rank) of ds.
func latency(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s)))}
}

// finish computes the headline figures and the notes.
func (r *Report) finish() {
	r.MsgsPerSec = r.Kelpie.PerSec
	if r.Floor != nil {
		r.FloorPerSec = r.Floor.PerSec
		if r.FloorPerSec > 0 {
			r.Ratio = r.MsgsPerSec / r.FloorPerSec
		}
	} else {
		r.Notes = append(r.Notes, "no floor: give --fake-llm with --server to measure the model's own speed")
	}
	if k, f := r.Kelpie.Process, r.floorProcess(); k != nil && f != nil {
		est := &PerRequest{Allocs: k.Allocs - f.Allocs, Bytes: k.Bytes - f.Bytes}
		if k.CPUMicros != nil && f.CPUMicros != nil {
			us := *k.CPUMicros - *f.CPUMicros
			est.CPUMicros = &us
		}
		r.ServerEstimate = est
	}
	if r.Kelpie.Process != nil {
		r.Notes = append(r.Notes, "process CPU and allocations include the bench clients and the fake model, which run in the same process; the server estimate subtracts the floor's cost per request")
	} else {
		r.Notes = append(r.Notes, "CPU, allocations and commits are measured for the in-process server only")
	}
	if !r.Stream && r.Floor != nil {
		r.Notes = append(r.Notes, "the server streams its model calls in either mode; the floor streams only with --stream")
	}
	if r.Tools {
		r.Notes = append(r.Notes, "--tools: each message is two model calls (the tool call, then the answer); the floor makes one, and the server estimate subtracts one")
	}
	if r.Commits == nil && r.Kelpie.Process != nil {
		r.Notes = append(r.Notes, "commits and fsyncs: the "+r.Storage+" store keeps no counters")
	}
	r.Notes = append(r.Notes, "each agent got one unmeasured message first (activation, connections; a preloaded history's compaction)")
}

// floorProcess is the floor's cost per request, if measured.
func (r *Report) floorProcess() *PerRequest {
	if r.Floor == nil {
		return nil
	}
	return r.Floor.Process
}

// setCommits records the kelpie phase's commits.
func (r *Report) setCommits(u usage) {
	if !u.hasDB || r.Kelpie.OK == 0 {
		return
	}
	n := float64(r.Kelpie.OK)
	c := &CommitReport{Commits: u.commits.Commits, Syncs: u.commits.Syncs,
		CommitsPerMsg: float64(u.commits.Commits) / n, SyncsPerMsg: float64(u.commits.Syncs) / n}
	if u.commits.Syncs > 0 {
		c.CommitsPerSync = float64(u.commits.Commits) / float64(u.commits.Syncs)
	}
	r.Commits = c
}

// WriteJSON writes the report as one JSON object and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report for people: the ratio first.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := "JSON"
	if r.Stream {
		mode = "SSE stream"
	}
	load := fmt.Sprintf("%d messages", r.Messages)
	if r.DurationSeconds > 0 {
		load = fmt.Sprintf("%s per phase", time.Duration(r.DurationSeconds*float64(time.Second)))
	}
	extra := ""
	if r.Tools {
		extra += ", a tool call per turn"
	}
	if r.History > 0 {
		extra += fmt.Sprintf(", %d messages of history", r.History)
	}
	fmt.Fprintf(&b, "kelpie bench: %d agents, %d clients, %s, %s%s; %s, storage %s\n\n", r.Agents, r.Clients, load, mode, extra, r.Target, r.Storage)
	if r.Floor != nil {
		fmt.Fprintf(&b, "ratio      %.3f of the floor (kelpie %.1f msgs/s ÷ fake model %.1f req/s)\n", r.Ratio, r.MsgsPerSec, r.FloorPerSec)
	} else {
		fmt.Fprintf(&b, "kelpie     %.1f msgs/s (no floor measured)\n", r.MsgsPerSec)
	}
	phaseLine(&b, "kelpie", "msgs", &r.Kelpie)
	if r.Floor != nil {
		phaseLine(&b, "floor", "reqs", r.Floor)
	}
	if k := r.Kelpie.Process; k != nil {
		f := r.floorProcess()
		if k.CPUMicros != nil {
			fmt.Fprintf(&b, "cpu        %.0f µs/msg (process)", *k.CPUMicros)
			if f != nil && f.CPUMicros != nil && r.ServerEstimate.CPUMicros != nil {
				fmt.Fprintf(&b, "; floor %.0f µs/req; server ≈ %.0f µs/msg", *f.CPUMicros, *r.ServerEstimate.CPUMicros)
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "allocs     %.0f allocs/msg, %s/msg (process)", k.Allocs, kib(k.Bytes))
		if f != nil {
			fmt.Fprintf(&b, "; floor %.0f allocs/req, %s/req; server ≈ %.0f allocs/msg, %s/msg",
				f.Allocs, kib(f.Bytes), r.ServerEstimate.Allocs, kib(r.ServerEstimate.Bytes))
		}
		b.WriteString("\n")
	}
	if c := r.Commits; c != nil {
		fmt.Fprintf(&b, "storage    %.2f commits/msg, %.2f fsyncs/msg (%.1f commits per fsync)\n", c.CommitsPerMsg, c.SyncsPerMsg, c.CommitsPerSync)
	}
	errorsLine(&b, "errors", &r.Kelpie)
	if r.Floor != nil && r.Floor.Errors > 0 {
		errorsLine(&b, "floor errs", r.Floor)
	}
	if r.Kelpie.BusyRetries > 0 {
		fmt.Fprintf(&b, "busy       %d retries of messages refused with 409 (agent busy: clients share agents)\n", r.Kelpie.BusyRetries)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// phaseLine writes one phase's throughput and latency.
func phaseLine(b *strings.Builder, name, unit string, p *Phase) {
	l := p.Latency
	fmt.Fprintf(b, "%-10s %d %s in %.2fs, %.1f/s; latency p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms\n",
		name, p.OK, unit, p.Seconds, p.PerSec, l.P50, l.P90, l.P99, l.Max)
}

// errorsLine writes a phase's errors by kind, with a sample detail each.
func errorsLine(b *strings.Builder, name string, p *Phase) {
	if p.Errors == 0 {
		fmt.Fprintf(b, "%-10s none\n", name)
		return
	}
	fmt.Fprintf(b, "%-10s %d:", name, p.Errors)
	for _, k := range slices.Sorted(maps.Keys(p.ErrorKinds)) {
		fmt.Fprintf(b, " %s %d (%s);", k, p.ErrorKinds[k], p.ErrorSamples[k])
	}
	b.WriteString("\n")
}

// kib formats a byte count in KiB.
func kib(n float64) string { return fmt.Sprintf("%.1f KiB", n/1024) }
