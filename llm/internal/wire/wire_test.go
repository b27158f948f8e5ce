package wire

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/kelpie-ai/kelpie/llm"
)

func TestParseErrorBody(t *testing.T) {
	for _, tc := range []struct {
		body, msg, typ string
		code           int
	}{
		{`{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}`, "Rate limit", "requests", 0},
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, "Overloaded", "overloaded_error", 0},
		{`{"error":{"code":500,"message":"llama.cpp failed"}}`, "llama.cpp failed", "", 500},
		{`{"error":{"code":"context_length_exceeded","message":"too long"}}`, "too long", "context_length_exceeded", 0},
		{`{"error":"model not found"}`, "model not found", "", 0},
		{`{"object":"error","message":"bad","type":"BadRequestError","code":400}`, "bad", "BadRequestError", 400},
		{`{"detail":"Not authenticated"}`, "Not authenticated", "", 0},
		{`{"detail":[{"loc":["body"],"msg":"field required"}]}`, `[{"loc":["body"],"msg":"field required"}]`, "", 0},
		{"upstream connect error\n", "upstream connect error", "", 0},
		{"<html>502</html>", "", "", 0},
		{"", "", "", 0},
	} {
		msg, typ, code := ParseErrorBody([]byte(tc.body))
		if msg != tc.msg || typ != tc.typ || code != tc.code {
			t.Errorf("%s: got (%q, %q, %d), want (%q, %q, %d)", tc.body, msg, typ, code, tc.msg, tc.typ, tc.code)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{h(), 0},
		{h("Retry-After", "3"), 3 * time.Second},
		{h("Retry-After", "1.5"), 1500 * time.Millisecond},
		{h("Retry-After", "-1"), 0},
		{h("Retry-After", now.Add(10*time.Second).Format(http.TimeFormat)), 10 * time.Second},
		{h("Retry-After", "soon"), 0},
		{h("Retry-After-Ms", "250", "Retry-After", "1"), 250 * time.Millisecond},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond}.Defaults()
	for n, max := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 300 * time.Millisecond, 9: 300 * time.Millisecond} {
		for range 50 {
			if d := p.backoff(n); d < max/2 || d > max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, max/2, max)
			}
		}
	}
}

func TestPolicyDo(t *testing.T) {
	fast := Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	run := func(p Policy, ctx context.Context, errs []error, delivered bool) (int, error) {
		n := 0
		err := p.Do(ctx, func(context.Context) error {
			e := errs[min(n, len(errs)-1)]
			n++
			return e
		}, func() bool { return delivered })
		return n, err
	}
	e500 := &llm.APIError{Status: 500}
	if n, err := run(fast, context.Background(), []error{e500}, false); n != 3 || err != e500 {
		t.Errorf("500s: %d attempts, %v", n, err)
	}
	if n, err := run(fast, context.Background(), []error{e500, nil}, false); n != 2 || err != nil {
		t.Errorf("500 then ok: %d attempts, %v", n, err)
	}
	if n, _ := run(fast, context.Background(), []error{e500}, true); n != 1 {
		t.Errorf("delivered: %d attempts", n)
	}
	if n, _ := run(fast, context.Background(), []error{&llm.APIError{Status: 400}}, false); n != 1 {
		t.Errorf("400: %d attempts", n)
	}
	if n, _ := run(fast, context.Background(), []error{errors.New("not an APIError")}, false); n != 1 {
		t.Errorf("foreign error: %d attempts", n)
	}
	if n, _ := run(Policy{MaxAttempts: 5, BaseDelay: time.Millisecond}, context.Background(), []error{e500}, false); n != 5 {
		t.Errorf("MaxAttempts 5: %d attempts", n)
	}
	// A Retry-After beyond the deadline ends the retries at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	if n, _ := run(fast, ctx, []error{&llm.APIError{Status: 429, RetryAfter: 10 * time.Second}}, false); n != 1 || time.Since(start) > 500*time.Millisecond {
		t.Errorf("Retry-After past the deadline: %d attempts in %v", n, time.Since(start))
	}
}

func TestAssembler(t *testing.T) {
	var got []llm.Delta
	a := NewAssembler(func(d llm.Delta) error { got = append(got, d); return nil })
	if a.Delivered() {
		t.Fatal("delivered before any piece")
	}
	a.Content("")
	a.ToolCall(0, "", "", "")
	if a.Delivered() {
		t.Fatal("empty pieces delivered")
	}
	a.Content("x")
	a.ToolCall(1, "", "g", "") // a call without id or arguments
	m := a.Message()
	if !a.Delivered() || m.Content != "x" || len(m.ToolCalls) != 2 {
		t.Fatalf("message = %+v", m)
	}
	for _, tc := range m.ToolCalls {
		if tc.ID == "" || tc.Arguments != "{}" {
			t.Errorf("call not normalized: %+v", tc)
		}
	}
	if len(got) != 2 {
		t.Errorf("deltas = %+v", got)
	}
}
