// Package wire holds what the provider clients share: the retry policy,
// capture of raw HTTP error responses, normalisation of every failure to
// *llm.APIError, and assembly of streamed answers.
//
// It does real I/O and draws jitter from math/rand/v2; the simulator never
// drives it.
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kelpie-ai/kelpie/llm"
)

// Policy is a retry policy: exponential backoff with jitter on retryable
// *llm.APIErrors, honouring Retry-After.
type Policy struct {
	// MaxAttempts bounds the attempts, the first included (default 3).
	MaxAttempts int
	// BaseDelay is the backoff before the second attempt; it doubles for
	// each further one (default 500ms).
	BaseDelay time.Duration
	// MaxDelay caps the backoff (default 8s).
	MaxDelay time.Duration
	// MaxRetryAfter caps the Retry-After a provider may ask for: a longer
	// one ends the retries and the error is returned (default 60s).
	MaxRetryAfter time.Duration
}

// Defaults returns p with zero fields set to their defaults.
func (p Policy) Defaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 8 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = time.Minute
	}
	return p
}

// Do runs attempt until it succeeds, and returns attempt's last error
// when retrying cannot help: the error is not a retryable *llm.APIError,
// delivered reports that output already reached the caller, the attempts
// are used up, the provider's Retry-After is too long, or ctx would end
// before the next attempt could start.
func (p Policy) Do(ctx context.Context, attempt func(ctx context.Context) error, delivered func() bool) error {
	p = p.Defaults()
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		ae, ok := llm.AsAPIError(err)
		if !ok || !ae.Retryable() || n >= p.MaxAttempts || (delivered != nil && delivered()) || ctx.Err() != nil {
			return err
		}
		wait := p.backoff(n)
		if ae.RetryAfter > 0 {
			if ae.RetryAfter > p.MaxRetryAfter {
				return err
			}
			wait = ae.RetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return err // the wait would outlast the caller: report the real failure now
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// backoff is the jittered wait after failed attempt n (1-based): half the
// exponential delay plus a random part of the other half.
func (p Policy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	if d > p.MaxDelay {
		d = p.MaxDelay
	}
	half := d / 2
	return half + rand.N(half+1)
}

// errorBodyMax bounds how much of an error response is kept.
const errorBodyMax = 64 << 10

// Capture records the raw HTTP response of one attempt, as middleware
// around an SDK's transport, so that a failure can be reported with the
// provider's status, message and Retry-After whatever shape the error body
// has (the SDKs lose them for bodies that are not their own JSON shape,
// such as Ollama's {"error": "..."} or a proxy's HTML page).
type Capture struct {
	mu     sync.Mutex
	status int
	header http.Header
	body   []byte
}

// Middleware records res's status and headers and, for an error status,
// its body (which it puts back for the SDK to read). Its signature is
// the SDKs' option.Middleware.
func (c *Capture) Middleware(req *http.Request, next func(*http.Request) (*http.Response, error)) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res == nil {
		return res, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.header, c.body = res.StatusCode, res.Header.Clone(), nil
	if res.StatusCode >= 400 && res.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(res.Body, errorBodyMax))
		_ = res.Body.Close()
		c.body = body
		res.Body = io.NopCloser(bytes.NewReader(body))
	}
	return res, nil
}

// Status returns the recorded status, 0 if no response arrived.
func (c *Capture) Status() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Error turns the failure of an attempt into an *llm.APIError of provider:
// err itself if it already is one; the captured error response if there is
// one; otherwise a transport failure (Status 0) whose cause is ctx's error
// if ctx has ended, else err.
func Error(ctx context.Context, provider string, c *Capture, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := llm.AsAPIError(err); ok {
		return err
	}
	if c != nil {
		c.mu.Lock()
		status, header, body := c.status, c.header, c.body
		c.mu.Unlock()
		if status >= 400 {
			msg, typ, _ := ParseErrorBody(body)
			return &llm.APIError{Provider: provider, Status: status, Message: msg, Type: typ, RetryAfter: RetryAfter(header, time.Now())}
		}
	}
	if cerr := ctx.Err(); cerr != nil {
		return &llm.APIError{Provider: provider, Message: cerr.Error(), Err: cerr}
	}
	return Transport(provider, err)
}

// Transport returns a Status-0 *llm.APIError caused by err.
func Transport(provider string, err error) *llm.APIError {
	return &llm.APIError{Provider: provider, Message: err.Error(), Err: err}
}

// StreamError is an error the provider reported inside a 200 event
// stream: body is the event's JSON.
func StreamError(provider string, body []byte) *llm.APIError {
	msg, typ, code := ParseErrorBody(body)
	status := code
	if status < 400 || status > 599 {
		status = StatusForType(typ)
	}
	return &llm.APIError{Provider: provider, Status: status, Message: msg, Type: typ}
}

// StatusForType maps a provider's error type to the HTTP status it
// stands for; unknown types are taken as server errors (500).
func StatusForType(typ string) int {
	switch typ {
	case "invalid_request_error", "invalid_request", "BadRequestError", "context_length_exceeded":
		return http.StatusBadRequest
	case "authentication_error", "invalid_api_key":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error", "model_not_found":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error", "rate_limit_exceeded", "tokens", "requests":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	default:
		return http.StatusInternalServerError
	}
}

// messageMax bounds an error message taken from a body.
const messageMax = 1000

// ParseErrorBody extracts the message, error type and numeric code from an
// error body in any of the shapes providers use:
// {"error": {"message", "type", "code"}} (OpenAI, Anthropic, llama.cpp),
// {"error": "..."} (Ollama), {"message", "type", "code"} (older vLLM),
// {"detail": ...} (FastAPI servers), or plain text. HTML yields no message.
func ParseErrorBody(body []byte) (message, typ string, code int) {
	body = bytes.TrimSpace(body)
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) == nil {
		if raw, ok := obj["error"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				return clip(s), str(obj["type"]), num(obj["code"])
			}
			var inner map[string]json.RawMessage
			if json.Unmarshal(raw, &inner) == nil {
				typ = str(inner["type"])
				if typ == "" {
					typ = str(inner["code"])
				}
				return clip(str(inner["message"])), typ, num(inner["code"])
			}
		}
		if m := str(obj["message"]); m != "" {
			return clip(m), str(obj["type"]), num(obj["code"])
		}
		if d, ok := obj["detail"]; ok {
			if s := str(d); s != "" {
				return clip(s), "", 0
			}
			return clip(string(d)), "", 0
		}
		return clip(string(body)), "", 0
	}
	if len(body) == 0 || body[0] == '<' {
		return "", "", 0
	}
	return clip(string(body)), "", 0
}

// str decodes raw as a JSON string, "" if it is not one.
func str(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// num decodes raw as a JSON number or numeric string, 0 if neither.
func num(raw json.RawMessage) int {
	var n float64
	if json.Unmarshal(raw, &n) == nil {
		return int(n)
	}
	if i, err := strconv.Atoi(str(raw)); err == nil {
		return i
	}
	return 0
}

// clip bounds s to messageMax bytes on a rune boundary.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= messageMax {
		return s
	}
	cut := messageMax
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// RetryAfter reads how long the provider asks callers to wait: the
// retry-after-ms header (OpenAI), else Retry-After as seconds or an HTTP
// date relative to now. It returns 0 if neither is present and valid.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Assembler builds the answer of a streamed completion from its pieces,
// forwarding each non-empty piece to the caller's callback.
type Assembler struct {
	onDelta   func(llm.Delta) error
	delivered bool
	content   strings.Builder
	calls     []*llm.ToolCall
}

// NewAssembler returns an Assembler forwarding to onDelta (which may be
// nil).
func NewAssembler(onDelta func(llm.Delta) error) *Assembler {
	return &Assembler{onDelta: onDelta}
}

// Delivered reports whether any piece has been handed to the callback.
func (a *Assembler) Delivered() bool { return a.delivered }

// emit hands d to the callback, noting that output was delivered.
func (a *Assembler) emit(d llm.Delta) error {
	if a.onDelta == nil {
		return nil
	}
	a.delivered = true
	return a.onDelta(d)
}

// Content adds answer text.
func (a *Assembler) Content(s string) error {
	if s == "" {
		return nil
	}
	a.content.WriteString(s)
	return a.emit(llm.Delta{Content: s})
}

// Reasoning forwards reasoning text; it is not part of the message.
func (a *Assembler) Reasoning(s string) error {
	if s == "" {
		return nil
	}
	return a.emit(llm.Delta{Reasoning: s})
}

// ToolCall adds a piece of the tool call at index (0-based, dense): its id
// and name if known, and a fragment of its arguments.
func (a *Assembler) ToolCall(index int, id, name, args string) error {
	for len(a.calls) <= index {
		a.calls = append(a.calls, nil)
	}
	tc := a.calls[index]
	if tc == nil {
		tc = &llm.ToolCall{}
		a.calls[index] = tc
	}
	if id != "" {
		tc.ID = id
	}
	if name != "" {
		tc.Name = name
	}
	tc.Arguments += args
	if id == "" && name == "" && args == "" {
		return nil
	}
	return a.emit(llm.Delta{ToolCallIndex: index, ToolCallID: id, ToolCallName: name, ToolCallArguments: args})
}

// ToolCallID returns the id gathered so far for the call at index.
func (a *Assembler) ToolCallID(index int) string {
	if index < len(a.calls) && a.calls[index] != nil {
		return a.calls[index].ID
	}
	return ""
}

// ToolCalls returns how many tool-call slots are in use.
func (a *Assembler) ToolCalls() int { return len(a.calls) }

// Message returns the assembled assistant message.
func (a *Assembler) Message() llm.Message {
	m := llm.Message{Role: llm.RoleAssistant, Content: a.content.String()}
	for _, tc := range a.calls {
		if tc == nil {
			continue
		}
		m.ToolCalls = append(m.ToolCalls, *tc)
	}
	m.ToolCalls = NormalizeToolCalls(m.ToolCalls)
	return m
}

// NormalizeToolCalls gives every call an id (some local servers omit
// them, and the tool result must name one) and arguments that are at
// least "{}".
func NormalizeToolCalls(calls []llm.ToolCall) []llm.ToolCall {
	for i := range calls {
		if calls[i].ID == "" {
			calls[i].ID = NewCallID()
		}
		if strings.TrimSpace(calls[i].Arguments) == "" {
			calls[i].Arguments = "{}"
		}
	}
	return calls
}

// NewCallID returns a fresh tool-call id.
func NewCallID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 24)
	for i := range b {
		b[i] = alphabet[rand.N(len(alphabet))]
	}
	return "call_" + string(b)
}

// HTTPClient is the client the providers use by default: no overall
// timeout (each call's context bounds it), the default transport.
var HTTPClient = &http.Client{}

// ErrStreamTruncated marks a stream that ended before the provider said
// the answer was complete.
var ErrStreamTruncated = errors.New("stream ended before the answer was complete")
