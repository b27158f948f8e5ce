package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Classes of model-call failure. An *APIError matches (errors.Is) the one
// its status puts it in, so callers can branch without reading statuses:
//
//	errors.Is(err, llm.ErrRateLimited)
var (
	// ErrRateLimited: the provider returned 429.
	ErrRateLimited = errors.New("llm: provider rate limit")
	// ErrAuthentication: the provider rejected the configured credentials
	// (401 or 403).
	ErrAuthentication = errors.New("llm: provider rejected the credentials")
	// ErrInvalidRequest: the provider rejected the request itself (400, 404,
	// 413, 422, or another 4xx that is not retryable), or a Router could not
	// route it.
	ErrInvalidRequest = errors.New("llm: provider rejected the request")
	// ErrContextWindowExceeded: the prompt does not fit the model's context
	// window. It is also an ErrInvalidRequest.
	ErrContextWindowExceeded = errors.New("llm: prompt exceeds the model's context window")
	// ErrUnavailable: the provider failed or could not be reached (408,
	// 5xx, or a transport failure).
	ErrUnavailable = errors.New("llm: provider unavailable")
)

// APIError is a failed model call. Every failure a provider client in
// this module returns is, or wraps, an *APIError (errors.As), so the API
// layer can map it to Letta's llm_api_error and an HTTP status; see
// HTTPStatus. A failure before or without an HTTP response (connection
// refused, reset, a cancelled or expired context, an unreadable body) has
// Status 0, its cause in Message and in Err (Unwrap), so
// errors.Is(err, context.DeadlineExceeded) still works.
type APIError struct {
	// Provider names the provider ("openai", "anthropic", or a custom
	// name); empty for a Router's own errors.
	Provider string
	// Status is the HTTP status the provider answered; 0 for a transport
	// failure.
	Status int
	// Message is the provider's error message, or a description of the
	// failure.
	Message string
	// Type is the provider's machine-readable error type or code when it
	// gave one ("rate_limit_error", "context_length_exceeded", ...).
	Type string
	// RetryAfter is how long the provider asked callers to wait (the
	// Retry-After or retry-after-ms header); 0 if it did not say.
	RetryAfter time.Duration
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("llm")
	if e.Provider != "" {
		b.WriteString(": ")
		b.WriteString(e.Provider)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d", e.Status)
	} else {
		b.WriteString(": request failed")
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg == "" && e.Status != 0 {
		msg = http.StatusText(e.Status)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *APIError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed if sent again:
// on 429, 408, any 5xx, and transport failures — but not when the cause
// is the caller's own context ending, which a retry cannot outlive.
func (e *APIError) Retryable() bool {
	switch {
	case e.Status == 0:
		return !errors.Is(e.Err, context.Canceled) && !errors.Is(e.Err, context.DeadlineExceeded)
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		return true
	default:
		return e.Status >= 500
	}
}

// Is maps e to its class: ErrRateLimited, ErrAuthentication,
// ErrInvalidRequest, ErrContextWindowExceeded or ErrUnavailable.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrAuthentication:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnavailable:
		return e.Status != http.StatusTooManyRequests && e.Retryable()
	case ErrInvalidRequest:
		return e.Status >= 400 && e.Status < 500 && !e.Retryable() &&
			e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden
	case ErrContextWindowExceeded:
		return e.Status >= 400 && e.Status < 500 && !e.Retryable() && contextWindowExceeded(e)
	}
	return false
}

// contextWindowExceeded recognises the providers' ways of saying the
// prompt is too long.
func contextWindowExceeded(e *APIError) bool {
	if e.Type == "context_length_exceeded" {
		return true
	}
	m := strings.ToLower(e.Message)
	for _, s := range []string{"context length", "context_length", "context window", "prompt is too long", "maximum context", "too many tokens"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// AsAPIError returns the *APIError in err's chain, if there is one.
func AsAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}

// HTTPStatus maps a model-call error to the status the API layer should
// answer with, or 0 if err is not a model-call error:
//
//   - ErrNotConfigured, ErrInvalidRequest (including a Router's unknown
//     provider): 400
//   - ErrRateLimited: 429
//   - ErrAuthentication: 502, because the rejected credentials are the
//     server's, not the client's
//   - ErrUnavailable: 502
//   - an expired context: 504
//
// Whatever the status, the error is an llm_api_error in Letta's terms when
// AsAPIError finds one.
func HTTPStatus(err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrNotConfigured) {
		return http.StatusBadRequest
	}
	if _, ok := AsAPIError(err); !ok {
		return 0
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	default:
		return http.StatusBadGateway
	}
}
