package tuple

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
)

func TestOrderMatchesTupleOrder(t *testing.T) {
	ordered := []Key{
		Pack("a"),
		Pack("a", "x"), // within one position, strings sort before integers
		Pack("a", uint64(2)),
		Pack("a", uint64(10)),
		Pack("a", uint64(1<<40)),
		Pack("a\x00"),
		Pack("a\x00b"),
		Pack("a\x01"),
		Pack("ab"),
		Pack("b"),
	}
	for i := 1; i < len(ordered); i++ {
		if bytes.Compare(ordered[i-1], ordered[i]) >= 0 {
			t.Errorf("%q !< %q", ordered[i-1], ordered[i])
		}
	}
	shuffled := slices.Clone(ordered)
	slices.Reverse(shuffled)
	slices.SortFunc(shuffled, func(a, b Key) int { return bytes.Compare(a, b) })
	for i := range ordered {
		if !bytes.Equal(shuffled[i], ordered[i]) {
			t.Fatalf("sorted order differs at %d", i)
		}
	}
}

func TestPrefixAndEnd(t *testing.T) {
	p := Pack("agents", "agent-1")
	inside := []Key{Pack("agents", "agent-1", "state"), Pack("agents", "agent-1", uint64(0)), Pack("agents", "agent-1", "\xff\xff")}
	for _, k := range inside {
		if !bytes.HasPrefix(k, p) || bytes.Compare(k, p.End()) >= 0 {
			t.Errorf("%q not within [%q, %q)", k, p, p.End())
		}
	}
	outside := Pack("agents", "agent-10")
	if bytes.Compare(outside, p) > 0 && bytes.Compare(outside, p.End()) < 0 {
		t.Errorf("sibling %q falls inside the range of %q", outside, p)
	}
}

func TestRoundTrip(t *testing.T) {
	elems := []any{"", "a\x00\xffb", uint64(0), uint64(1<<64 - 1), "z"}
	got, err := Unpack(Pack(elems...))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, elems) {
		t.Fatalf("round trip = %#v, want %#v", got, elems)
	}
	for _, bad := range [][]byte{{0x15, 1}, {0x02, 'a'}, {0x07}} {
		if _, err := Unpack(bad); err == nil {
			t.Errorf("Unpack(%q) accepted malformed key", bad)
		}
	}
}
