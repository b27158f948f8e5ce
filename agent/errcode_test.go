package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/kelpie-ai/kelpie/actor"
)

// hop sends err through its wire form as JSON and back.
func hop(t *testing.T, err error) error {
	t.Helper()
	b, jerr := json.Marshal(EncodeError(err))
	if jerr != nil {
		t.Fatal(jerr)
	}
	var w *WireError
	if jerr := json.Unmarshal(b, &w); jerr != nil {
		t.Fatal(jerr)
	}
	return w.Err()
}

// TestErrorCodesCrossTheWire: every error kind of the table matches its
// sentinel, with its message, after a serialized hop; typed errors keep
// their fields.
func TestErrorCodesCrossTheWire(t *testing.T) {
	for _, c := range errorCodes {
		err := fmt.Errorf("while doing something: %w", c.err)
		got := hop(t, err)
		if !errors.Is(got, c.err) || got.Error() != err.Error() {
			t.Errorf("%s: after the hop %q (is %v), want %q matching %v", c.code, got, errors.Is(got, c.err), err, c.err)
		}
		for _, other := range errorCodes {
			if other.err != c.err && errors.Is(got, other.err) && !errors.Is(c.err, other.err) {
				t.Errorf("%s: after the hop it also matches %s", c.code, other.code)
			}
		}
	}
	busy := hop(t, fmt.Errorf("send: %w", &BusyError{RunID: "run-1"}))
	var b *BusyError
	if !errors.As(busy, &b) || b.RunID != "run-1" || !errors.Is(busy, actor.ErrBusy) {
		t.Errorf("busy after the hop: %v", busy)
	}
	model := hop(t, &EmbeddingModelError{Want: "a/b", Got: "c/d"})
	var m *EmbeddingModelError
	if !errors.As(model, &m) || m.Want != "a/b" || m.Got != "c/d" || !errors.Is(model, ErrEmbeddingModel) {
		t.Errorf("embedding model error after the hop: %v", model)
	}
	plain := hop(t, errors.New("disk on fire"))
	for _, c := range errorCodes {
		if errors.Is(plain, c.err) {
			t.Errorf("an error of no kind matches %s after the hop", c.code)
		}
	}
	if plain.Error() != "disk on fire" || hop(t, nil) != nil {
		t.Errorf("plain error after the hop: %v", plain)
	}
}
