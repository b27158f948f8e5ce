package invariant

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	Check(true, "never formatted %d", 1)
	defer func() {
		p := recover()
		var v *Violation
		if err, ok := p.(error); !ok || !errors.As(err, &v) || v.Msg != "seq 3 after 4" {
			t.Fatalf("recovered %#v, want a *Violation saying %q", p, "seq 3 after 4")
		}
	}()
	Check(3 > 4, "seq %d after %d", 3, 4)
	t.Fatal("Check(false) returned")
}
