package agent

import (
	"context"
	"errors"

	"github.com/kelpie-ai/kelpie/actor"
	"github.com/kelpie-ai/kelpie/storage"
)

// WireError is an operation's error as it crosses between nodes: a code
// from a closed table, the message, and what the code's typed error
// carries. Err turns it back into an error that matches (errors.Is,
// errors.As) what the original matched, so callers classify errors the
// same on either side of the hop.
type WireError struct {
	// Code names the error's kind; "" for an error of no known kind.
	Code string `json:"code"`
	// Message is the original error's text.
	Message string `json:"message"`
	// RunID is a BusyError's run; Want and Got an EmbeddingModelError's
	// models.
	RunID string `json:"run_id,omitempty"`
	Want  string `json:"want,omitempty"`
	Got   string `json:"got,omitempty"`
}

// errorCodes is the closed table of the error kinds an operation can give,
// most specific first: a typed error's code comes before the sentinel
// it matches.
var errorCodes = []struct {
	code string
	err  error
}{
	{"not_found", ErrNotFound},
	{"already_exists", ErrAlreadyExists},
	{"invalid", ErrInvalid},
	{"approval_pending", ErrApprovalPending},
	{"embedding_model", ErrEmbeddingModel},
	{"busy", actor.ErrBusy},
	{"timeout", actor.ErrTimeout},
	{"stopped", actor.ErrStopped},
	{"panic", actor.ErrPanic},
	{"invalid_id", actor.ErrInvalidID},
	{"unknown_type", actor.ErrUnknownType},
	{"storage_not_found", storage.ErrNotFound},
	{"conflict", storage.ErrConflict},
	{"fenced", storage.ErrFenced},
	{"too_large", storage.ErrTooLarge},
	{"storage_invalid", storage.ErrInvalid},
	{"closed", storage.ErrClosed},
	{"corrupt", storage.ErrCorrupt},
	{"canceled", context.Canceled},
	{"deadline_exceeded", context.DeadlineExceeded},
}

// EncodeError gives err's wire form; nil for nil.
func EncodeError(err error) *WireError {
	if err == nil {
		return nil
	}
	w := &WireError{Message: err.Error()}
	var busy *BusyError
	var model *EmbeddingModelError
	switch {
	case errors.As(err, &busy):
		w.Code, w.RunID = "busy_run", busy.RunID
		return w
	case errors.As(err, &model):
		w.Code, w.Want, w.Got = "embedding_model_mismatch", model.Want, model.Got
		return w
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			w.Code = c.code
			break
		}
	}
	return w
}

// Err gives the error w describes: a typed error where the code names
// one, else an error with w's message that wraps the code's sentinel (or
// none, for an unknown code).
func (w *WireError) Err() error {
	if w == nil {
		return nil
	}
	switch w.Code {
	case "busy_run":
		return &BusyError{RunID: w.RunID}
	case "embedding_model_mismatch":
		return &EmbeddingModelError{Want: w.Want, Got: w.Got}
	}
	for _, c := range errorCodes {
		if c.code == w.Code {
			return &remoteError{msg: w.Message, kind: c.err}
		}
	}
	return errors.New(w.Message)
}

// remoteError is an error that crossed the wire: its text, matching its
// kind's sentinel.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }
