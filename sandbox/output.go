package sandbox

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// outputBudget is the number of bytes of stdout and stderr together that
// a call may still have kept.
type outputBudget struct {
	mu   sync.Mutex
	left int
}

// take reserves up to n bytes of the budget and returns how many it got.
func (b *outputBudget) take(n int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, b.left)
	b.left -= n
	return n
}

// capture is one output stream of a call: it keeps what the budget allows
// and counts the rest, which it discards (it never blocks the writer).
type capture struct {
	budget  *outputBudget
	limit   int // the budget's size, for the truncation note
	mu      sync.Mutex
	kept    []byte
	dropped int64
}

func newCaptures(limit int) (stdout, stderr *capture) {
	b := &outputBudget{left: limit}
	return &capture{budget: b, limit: limit}, &capture{budget: b, limit: limit}
}

func (c *capture) Write(p []byte) (int, error) {
	n := c.budget.take(len(p))
	c.mu.Lock()
	c.kept = append(c.kept, p[:n]...)
	c.dropped += int64(len(p) - n)
	c.mu.Unlock()
	return len(p), nil
}

// String is what was kept, as valid UTF-8, with a note at the end when
// some was discarded.
func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.kept
	if c.dropped > 0 {
		// Do not end on part of a character.
		for i := 1; i < utf8.UTFMax && len(kept) > 0; i++ {
			if r, size := utf8.DecodeLastRune(kept); r != utf8.RuneError || size != 1 {
				break
			}
			kept = kept[:len(kept)-1]
		}
	}
	s := strings.ToValidUTF8(string(kept), "\uFFFD")
	if c.dropped > 0 {
		s = appendLine(s, fmt.Sprintf("[output truncated: %d more bytes were discarded; stdout and stderr keep %d bytes together]", c.dropped, c.limit))
	}
	return s
}

// boundedBuffer keeps the first limit bytes written to it and counts the
// rest.
type boundedBuffer struct {
	limit   int
	data    []byte
	dropped int64
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.limit-len(b.data))
	b.data = append(b.data, p[:n]...)
	b.dropped += int64(len(p) - n)
	return len(p), nil
}
