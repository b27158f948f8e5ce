package compaction

import (
	"fmt"
	"strings"
	"testing"
)

// turn builds a window from a compact notation: "u" user, "a" assistant,
// "c:x" assistant calling x, "t:x" the return of call x; each 100 tokens.
func turn(spec string) []Item {
	var out []Item
	for _, f := range strings.Fields(spec) {
		it := Item{Tokens: 100}
		switch {
		case f == "u":
			it.Role = "user"
		case f == "a":
			it.Role = "assistant"
		case strings.HasPrefix(f, "c:"):
			it.Role = "assistant"
			it.Calls = strings.Split(f[2:], ",")
		case strings.HasPrefix(f, "t:"):
			it.Role, it.CallID = "tool", f[2:]
		}
		out = append(out, it)
	}
	return out
}

func TestCutValid(t *testing.T) {
	items := turn("u c:1 t:1 a u c:2,3 t:2 t:3 a u c:4")
	want := map[int]bool{1: true, 3: true, 4: true, 5: true, 8: true, 9: true, 10: true}
	for n := 0; n <= len(items); n++ {
		if got := CutValid(items, n); got != want[n] {
			t.Errorf("CutValid(n=%d) = %v, want %v", n, got, want[n])
		}
	}
	// A call whose return never came (pending approval) pins everything
	// from it on.
	items = turn("u c:1 u a")
	for n := 2; n < len(items); n++ {
		if CutValid(items, n) {
			t.Errorf("CutValid(n=%d) evicts the pending call 1", n)
		}
	}
}

func TestValidCutsAgreesWithCutValid(t *testing.T) {
	items := turn("u c:1 t:1 a u c:2,3 t:2 t:3 a u c:4 u a c:5 t:5")
	var want []int
	for n := 0; n <= len(items); n++ {
		if CutValid(items, n) {
			want = append(want, n)
		}
	}
	if got := validCuts(items); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("validCuts = %v, CutValid holds at %v", got, want)
	}
}

func TestCutSlidingWindow(t *testing.T) {
	items := turn("u a u a u a u a u a") // 1000 tokens
	b := Budget{Limit: 1000, Fixed: 0}
	s := Settings{Mode: ModeSlidingWindow, KeepFraction: 0.5}
	p := Cut(items, b, s)
	// Keep half of the 1000 tokens: evict 5.
	if p.Evict != 5 || p.TokensBefore != 1000 || p.TokensAfter != 500 {
		t.Fatalf("plan = %+v, want Evict 5, 1000 → 500", p)
	}
	// The share is of what the window holds besides the fixed parts.
	b.Fixed = 600
	if p := Cut(items, b, s); p.Evict != 8 || p.TokensAfter != 800 {
		t.Fatalf("with 600 fixed tokens: %+v, want Evict 8 (keep at most 200), 1600 → 800", p)
	}
	if err := CheckWindow(items[p.Evict:]); err != nil {
		t.Fatal(err)
	}
}

func TestCutAllKeepsNewest(t *testing.T) {
	items := turn("u c:1 t:1 a u")
	p := Cut(items, Budget{Limit: 10000}, Settings{Mode: ModeAll})
	if p.Evict != 4 {
		t.Fatalf("all: Evict = %d, want 4 (everything but the newest)", p.Evict)
	}
}

func TestCutNeverSplitsToolCalls(t *testing.T) {
	// One long chain of tool steps: the only valid cuts are between steps.
	items := turn("u c:1 t:1 c:2 t:2 c:3 t:3 c:4 t:4")
	for frac := 0.05; frac < 1; frac += 0.05 {
		p := Cut(items, Budget{Limit: 1000}, Settings{Mode: ModeSlidingWindow, KeepFraction: frac})
		if p.Evict > 0 && !CutValid(items, p.Evict) {
			t.Fatalf("keep %.2f: cut at %d is not valid", frac, p.Evict)
		}
		if err := CheckWindow(items[p.Evict:]); err != nil {
			t.Fatalf("keep %.2f: %v", frac, err)
		}
	}
}

func TestCutNothingPossible(t *testing.T) {
	for _, spec := range []string{"u", "c:1 t:1", "c:1 c:2 t:1"} {
		if p := Cut(turn(spec), Budget{Limit: 10}, Settings{Mode: ModeAll}); p.Evict != 0 {
			t.Errorf("%q: Evict = %d, want 0", spec, p.Evict)
		}
	}
}

func TestCheckWindow(t *testing.T) {
	if err := CheckWindow(turn("t:1 u")); err == nil {
		t.Error("a window starting with a tool return passed")
	}
	if err := CheckWindow(turn("u t:9")); err == nil {
		t.Error("an orphan tool return passed")
	}
	if err := CheckWindow(turn("u c:1 t:1 a")); err != nil {
		t.Error(err)
	}
}

func TestParseSettings(t *testing.T) {
	s := ParseSettings(nil)
	if s.Mode != ModeSlidingWindow || s.KeepFraction != DefaultKeepFraction || s.ClipChars != DefaultClipChars {
		t.Fatalf("defaults = %+v", s)
	}
	s = ParseSettings(map[string]any{"mode": "all", "sliding_window_percentage": 40.0, "clip_chars": nil, "model": "openai/x"})
	if s.Mode != ModeAll || s.KeepFraction != 0.4 || s.ClipChars != 0 || s.Model != "openai/x" {
		t.Fatalf("parsed = %+v", s)
	}
}

func TestSummaryRequestBounded(t *testing.T) {
	var lines []Line
	for i := 0; i < 100; i++ {
		lines = append(lines, Line{Role: "user", Text: strings.Repeat("x", 100)})
	}
	lines = append(lines, Line{Role: "tool", Name: "web", Text: strings.Repeat("y", 10000)})
	req := SummaryRequest(Settings{}, "the user is Ada", lines, 3000)
	if !strings.Contains(req.User, "the user is Ada") || !strings.Contains(req.User, "older messages omitted") {
		t.Fatalf("transcript lacks the previous summary or the omission note:\n%s", req.User[:200])
	}
	if n := len([]rune(req.User)); n > 3000+200 {
		t.Fatalf("transcript is %d characters, bound 3000", n)
	}
	if !strings.Contains(req.User, "[tool web returned]") || !strings.Contains(req.User, "characters cut") {
		t.Fatal("the newest (long) line is missing or not cut")
	}
	if req.System != DefaultPrompt {
		t.Fatal("default prompt not used")
	}
}

func TestClip(t *testing.T) {
	if got := Clip("  short  ", 10); got != "short" {
		t.Fatalf("Clip = %q", got)
	}
	got := Clip(strings.Repeat("é", 100), 20)
	if n := len([]rune(got)); n != 20 || !strings.HasSuffix(got, "[…]") {
		t.Fatalf("Clip = %q (%d runes)", got, n)
	}
}
