package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/agent"
	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/service"
	"github.com/kelpie-ai/kelpie/storage"
)

// The observers a Telemetry gives the core packages.
var (
	_ actor.Observer         = actorObserver{}
	_ service.Observer       = serviceObserver{}
	_ storage.CommitObserver = storageObserver{}
)

// Outcome label values.
const (
	outcomeOK       = "ok"
	outcomeError    = "error"
	outcomeConflict = "conflict"
	outcomeFenced   = "fenced"
	outcomeNothing  = "nothing"
)

// Actors returns the observer to give actor.Config.Observer.
func (t *Telemetry) Actors() actor.Observer { return actorObserver{t} }

// Service returns the observer to give service.WithObserver.
func (t *Telemetry) Service() service.Observer { return serviceObserver{t} }

// Storage returns the observer to give a backend's SetCommitObserver.
func (t *Telemetry) Storage() storage.CommitObserver { return storageObserver{t} }

// endSpan records err on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

type actorObserver struct{ t *Telemetry }

func (o actorObserver) Activated(actor.ID)       { o.t.activations.Inc() }
func (o actorObserver) Deactivated(actor.ID)     { o.t.deactivations.Inc() }
func (o actorObserver) Queued(_ actor.ID, n int) { o.t.mailboxDepth.Observe(float64(n)) }
func (o actorObserver) Rejected(actor.ID)        { o.t.busy.Inc() }
func (o actorObserver) Invoke(ctx context.Context, id actor.ID, op string) (context.Context, func(time.Duration, error)) {
	ctx, span := o.t.tracer.Start(ctx, "actor.invoke "+op, trace.WithAttributes(
		attribute.String("kelpie.actor.namespace", id.Namespace), attribute.String("kelpie.actor.id", id.ID), attribute.String("kelpie.actor.op", op)))
	return ctx, func(d time.Duration, err error) {
		outcome := outcomeOK
		if err != nil {
			outcome = outcomeError
		}
		o.t.invocations.WithLabelValues(op, outcome).Inc()
		o.t.invokeSeconds.WithLabelValues(op).Observe(d.Seconds())
		endSpan(span, err)
	}
}

type serviceObserver struct{ t *Telemetry }

// RunContext carries only parent's span on: the driver outlives the
// request whose values parent holds.
func (o serviceObserver) RunContext(parent context.Context) context.Context {
	sc := trace.SpanContextFromContext(parent)
	if !sc.IsValid() {
		return context.Background()
	}
	return trace.ContextWithSpanContext(context.Background(), sc)
}

func (o serviceObserver) ModelCall(ctx context.Context, handle string) (context.Context, func(time.Duration, llm.Usage, error)) {
	provider, model := o.t.modelLabels(handle)
	ctx, span := o.t.tracer.Start(ctx, "llm.call", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("gen_ai.provider.name", provider), attribute.String("gen_ai.request.model", handle)))
	return ctx, func(d time.Duration, u llm.Usage, err error) {
		outcome := outcomeOK
		if err != nil {
			outcome = outcomeError
		}
		o.t.modelCalls.WithLabelValues(provider, model, outcome).Inc()
		o.t.modelDuration.WithLabelValues(provider, model).Observe(d.Seconds())
		if u.PromptTokens > 0 {
			o.t.modelTokens.WithLabelValues(provider, model, "prompt").Add(float64(u.PromptTokens))
		}
		if u.CompletionTokens > 0 {
			o.t.modelTokens.WithLabelValues(provider, model, "completion").Add(float64(u.CompletionTokens))
		}
		span.SetAttributes(attribute.Int("gen_ai.usage.input_tokens", u.PromptTokens), attribute.Int("gen_ai.usage.output_tokens", u.CompletionTokens))
		endSpan(span, err)
	}
}

func (o serviceObserver) ToolCalls(kinds []string) {
	for _, k := range kinds {
		o.t.toolCalls.WithLabelValues(k).Inc()
	}
}

func (o serviceObserver) ToolCall(ctx context.Context, kind, name string) (context.Context, func(time.Duration, string)) {
	ctx, span := o.t.tracer.Start(ctx, "tool.call", trace.WithAttributes(attribute.String("kelpie.tool.kind", kind), attribute.String("kelpie.tool.name", name)))
	return ctx, func(d time.Duration, status string) {
		o.t.toolDuration.WithLabelValues(kind, status).Observe(d.Seconds())
		span.SetAttributes(attribute.String("kelpie.tool.status", status))
		if status != agent.ToolSuccess {
			span.SetStatus(codes.Error, "tool returned "+status)
		}
		span.End()
	}
}

func (o serviceObserver) StepEnded(stopReason string) { o.t.steps.WithLabelValues(stopReason).Inc() }
func (o serviceObserver) RunEnded(stopReason string)  { o.t.runs.WithLabelValues(stopReason).Inc() }

func (o serviceObserver) Compaction(ctx context.Context, trigger string) (context.Context, func(time.Duration, error)) {
	ctx, span := o.t.tracer.Start(ctx, "compaction", trace.WithAttributes(attribute.String("kelpie.compaction.trigger", trigger)))
	return ctx, func(d time.Duration, err error) {
		outcome := outcomeOK
		switch {
		case errors.Is(err, service.ErrNothingToCompact):
			outcome, err = outcomeNothing, nil
		case err != nil:
			outcome = outcomeError
		}
		o.t.compactions.WithLabelValues(trigger, outcome).Inc()
		o.t.compactionDuration.WithLabelValues(trigger).Observe(d.Seconds())
		endSpan(span, err)
	}
}

type storageObserver struct{ t *Telemetry }

// Commit measures on the wall clock: the backends that report are not
// simulated.
func (o storageObserver) Commit(ctx context.Context, backend string) func(error) {
	start := time.Now()
	_, span := o.t.tracer.Start(ctx, "storage.commit", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.String("db.system.name", backend)))
	return func(err error) {
		outcome := outcomeOK
		switch {
		case errors.Is(err, storage.ErrConflict):
			outcome = outcomeConflict
		case errors.Is(err, storage.ErrFenced):
			outcome = outcomeFenced
		case err != nil:
			outcome = outcomeError
		}
		o.t.commits.WithLabelValues(backend, outcome).Inc()
		o.t.commitDuration.WithLabelValues(backend).Observe(time.Since(start).Seconds())
		endSpan(span, err)
	}
}

func (o storageObserver) Batch(backend string, requests int, d time.Duration) {
	o.t.batchRequests.WithLabelValues(backend).Observe(float64(requests))
	o.t.batchDuration.WithLabelValues(backend).Observe(d.Seconds())
	o.t.fsyncs.WithLabelValues(backend).Inc()
}
