package tokens

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"", 0},
		{"hello", 1},
		{"hello world", 2},
		// o200k_base splits digits in groups of three.
		{"1234567", 3},
	} {
		if got := Count(tc.s); got != tc.want {
			t.Errorf("Count(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestCountMemoAgrees(t *testing.T) {
	s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)
	first := Count(s)
	if first != count(s) {
		t.Fatalf("Count = %d, uncached count = %d", first, count(s))
	}
	if again := Count(s); again != first {
		t.Fatalf("second Count = %d, first %d", again, first)
	}
	// 10 tokens per sentence ("The quick brown fox jumps over the lazy dog." + space).
	if first < 40*9 || first > 40*11 {
		t.Fatalf("Count of 40 sentences = %d, want about 400", first)
	}
}

func TestCountInvalidUTF8(t *testing.T) {
	if n := Count(string([]byte{0xff, 0xfe, 0xfd})); n < 1 {
		t.Fatalf("Count(invalid) = %d, want ≥ 1", n)
	}
}

func BenchmarkCount(b *testing.B) {
	s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 100)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		count(s)
	}
}

func BenchmarkCountMemo(b *testing.B) {
	s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 100)
	Count(s)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		Count(s)
	}
}
