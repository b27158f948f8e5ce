// Package invariant asserts what must always hold in Kelpie's core: a
// broken invariant is a bug, never an input error, so it panics rather
// than returning an error that a caller could retry past.
//
// The actor runtime recovers an invocation's panic, rolls its changes
// back and reports it (actor.Config.OnPanic; the simulator fails the
// seed with it), so an assertion costs the request, not the node, and
// nothing half-done is committed. Assertions are cheap comparisons;
// costly ones (a decode after every encode) are enabled per use by
// their caller's configuration.
package invariant

import "fmt"

// Violation is the value a failed assertion panics with.
type Violation struct {
	// Msg says what was expected and what was found.
	Msg string
}

// Error makes a Violation an error, so a recovered one can be wrapped.
func (v *Violation) Error() string { return "invariant violated: " + v.Msg }

// Check panics with a *Violation when ok is false; the message is
// formatted only then.
func Check(ok bool, format string, args ...any) {
	if !ok {
		panic(&Violation{Msg: fmt.Sprintf(format, args...)})
	}
}
