// Package telemetry is Kelpie's observability: the Prometheus metrics
// registry of one node (served as GET /metrics), the OpenTelemetry tracer
// (OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, a no-op
// otherwise), and the HTTP middleware that measures, traces and logs each
// request and gives it a request ID.
//
// The core packages know nothing of Prometheus or OpenTelemetry: they
// report to small observer interfaces (actor.Observer,
// service.Observer, storage.CommitObserver) that a Telemetry implements,
// and report nothing when none is set, as under the simulator.
package telemetry

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// instrumentation is the tracer's name.
const instrumentation = "github.com/kelpie-ai/kelpie"

// namespace prefixes every Kelpie metric.
const namespace = "kelpie"

// modelLabelsMax bounds the distinct model names the model metrics
// label; model handles come from clients, so past it new ones count as
// provider and model "other".
const modelLabelsMax = 64

// Options configures New.
type Options struct {
	// TracerProvider makes the tracer; nil traces nothing (a no-op).
	TracerProvider trace.TracerProvider
	// Logger receives the access log, one line per request; nil means
	// slog.Default().
	Logger *slog.Logger
	// ActiveActors, if set, is read at each scrape for the active actors
	// gauge (actor.System.ActiveCount).
	ActiveActors func() int
}

// Telemetry holds one node's metrics and tracer. Make it with New.
type Telemetry struct {
	reg    *prometheus.Registry
	tracer trace.Tracer
	log    *slog.Logger

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec

	runs  *prometheus.CounterVec
	steps *prometheus.CounterVec

	modelCalls    *prometheus.CounterVec
	modelDuration *prometheus.HistogramVec
	modelTokens   *prometheus.CounterVec

	toolCalls    *prometheus.CounterVec
	toolDuration *prometheus.HistogramVec

	activations   prometheus.Counter
	deactivations prometheus.Counter
	mailboxDepth  prometheus.Histogram
	busy          prometheus.Counter
	invocations   *prometheus.CounterVec
	invokeSeconds *prometheus.HistogramVec

	commits        *prometheus.CounterVec
	commitDuration *prometheus.HistogramVec
	batchRequests  *prometheus.HistogramVec
	batchDuration  *prometheus.HistogramVec
	fsyncs         *prometheus.CounterVec

	compactions        *prometheus.CounterVec
	compactionDuration *prometheus.HistogramVec

	modelsMu sync.Mutex
	models   map[string]bool // model label values in use, bounded
}

// Latency buckets, in seconds.
var (
	modelBuckets  = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320}
	commitBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	toolBuckets   = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 180}
)

// New returns the telemetry of one node, with a registry of its own (so
// several nodes in one process, as in tests, do not mix their counts).
func New(o Options) *Telemetry {
	tp := o.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	t := &Telemetry{reg: prometheus.NewRegistry(), tracer: tp.Tracer(instrumentation), log: log, models: make(map[string]bool)}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		t.reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		t.reg.MustRegister(h)
		return h
	}
	t.httpRequests = counter("http_requests_total", "HTTP requests answered, by route pattern, method and status code.", "route", "method", "status")
	t.httpDuration = histogram("http_request_duration_seconds", "Time to answer an HTTP request (a stream: until it ends), by route pattern and method.", prometheus.DefBuckets, "route", "method")

	t.runs = counter("runs_total", "Runs ended, by stop reason.", "stop_reason")
	t.steps = counter("steps_total", "Steps committed, by why they ended their run (continue: the run went on).", "stop_reason")

	t.modelCalls = counter("model_calls_total", "Model calls, by provider, model and outcome (ok or error).", "provider", "model", "outcome")
	t.modelDuration = histogram("model_call_duration_seconds", "Model call latency, by provider and model.", modelBuckets, "provider", "model")
	t.modelTokens = counter("model_tokens_total", "Tokens the providers reported, by provider, model and type (prompt or completion).", "provider", "model", "type")

	t.toolCalls = counter("tool_calls_total", "Tool calls models made, by kind: agent (run by the agent, or left for approval or the client), web, sandbox, mcp.", "kind")
	t.toolDuration = histogram("tool_execution_duration_seconds", "Executions of tools that run outside the agent, by kind and status (success or error).", toolBuckets, "kind", "status")

	t.activations = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "actor_activations_total", Help: "Actor activations."})
	t.deactivations = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "actor_deactivations_total", Help: "Actor activations ended, for any reason."})
	t.mailboxDepth = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "actor_mailbox_depth", Help: "Messages waiting in an actor's mailbox as one is queued, this one included.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	t.busy = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "actor_busy_rejections_total", Help: "Messages refused because the actor's mailbox was full."})
	t.reg.MustRegister(t.activations, t.deactivations, t.mailboxDepth, t.busy)
	t.invocations = counter("actor_invocations_total", "Actor invocations, by operation and outcome (ok or error).", "op", "outcome")
	t.invokeSeconds = histogram("actor_invocation_duration_seconds", "Actor invocation time, commit included, by operation.", commitBuckets, "op")
	if o.ActiveActors != nil {
		t.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "actors_active", Help: "Live actor activations."},
			func() float64 { return float64(o.ActiveActors()) }))
	}

	t.commits = counter("storage_commits_total", "Storage commit requests, by backend and outcome (ok, conflict, fenced, error).", "backend", "outcome")
	t.commitDuration = histogram("storage_commit_duration_seconds", "Storage commit latency (queueing for the group commit included), by backend.", commitBuckets, "backend")
	t.batchRequests = histogram("storage_batch_requests", "Commit requests made durable by one transaction and one sync, by backend.", prometheus.ExponentialBuckets(1, 2, 9), "backend")
	t.batchDuration = histogram("storage_batch_duration_seconds", "Time to write and sync one batch, by backend.", commitBuckets, "backend")
	t.fsyncs = counter("storage_fsyncs_total", "Durable transactions (syncs to disk), by backend.", "backend")

	t.compactions = counter("compactions_total", "Context-window compactions, by trigger (run or request) and outcome (ok, nothing, error).", "trigger", "outcome")
	t.compactionDuration = histogram("compaction_duration_seconds", "Compaction time (the summary's model call included), by trigger.", modelBuckets, "trigger")

	t.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return t
}

// Registry returns the node's metrics registry.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// Tracer returns the node's tracer (a no-op one when tracing is off).
func (t *Telemetry) Tracer() trace.Tracer { return t.tracer }

// MetricsHandler serves the registry in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{Registry: t.reg})
}

// modelLabels splits a model handle ("provider/model") into the labels
// of the model metrics. The empty handle is the default model; past
// modelLabelsMax distinct models, new ones are "other".
func (t *Telemetry) modelLabels(handle string) (provider, model string) {
	provider, model, ok := strings.Cut(handle, "/")
	if !ok {
		provider, model = "default", handle
	}
	if model == "" {
		model = "default"
	}
	if provider == "" {
		provider = "default"
	}
	key := provider + "/" + model
	t.modelsMu.Lock()
	defer t.modelsMu.Unlock()
	if !t.models[key] {
		if len(t.models) >= modelLabelsMax {
			return "other", "other"
		}
		t.models[key] = true
	}
	return provider, model
}
