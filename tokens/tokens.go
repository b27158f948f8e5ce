// Package tokens counts the tokens of model input offline, with OpenAI's
// o200k_base byte-pair encoding (the GPT-4o family's), embedded in the
// binary. Other models' tokenizers differ by a few tens of percent; the
// agent loop corrects its counts with the usage each provider reports
// (see package compaction), so this count is the estimate that correction
// starts from.
//
// Counting is pure and deterministic. Long strings that recur (system
// prompts, tool definitions) are counted once and remembered.
package tokens

import (
	"hash/fnv"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// Limits of the memo.
const (
	// memoBytesMin is the length from which a count is remembered:
	// shorter strings cost less to count than to hash and look up.
	memoBytesMin = 512
	// memoEntriesMax bounds the remembered counts; the memo is emptied
	// when it is full.
	memoEntriesMax = 4096
)

// PerMessage is the overhead of one chat message (its role and framing),
// in tokens, as OpenAI's chat format has it.
const PerMessage = 4

var (
	codecOnce sync.Once
	codec     tokenizer.Codec

	memoMu sync.Mutex
	memo   = map[uint64]int{}
)

func load() {
	c, err := tokenizer.Get(tokenizer.O200kBase)
	if err != nil {
		// The encoding is compiled into the binary: failing to load it is
		// a build defect, not a runtime condition.
		panic("tokens: o200k_base encoding: " + err.Error())
	}
	codec = c
}

// Count returns the number of tokens in s.
func Count(s string) int {
	if s == "" {
		return 0
	}
	if len(s) < memoBytesMin {
		return count(s)
	}
	h := fnv.New64a()
	h.Write([]byte(s))
	key := h.Sum64() ^ uint64(len(s))
	memoMu.Lock()
	n, ok := memo[key]
	memoMu.Unlock()
	if ok {
		return n
	}
	n = count(s)
	memoMu.Lock()
	if len(memo) >= memoEntriesMax {
		clear(memo)
	}
	memo[key] = n
	memoMu.Unlock()
	return n
}

func count(s string) int {
	codecOnce.Do(load)
	n, err := codec.Count(s)
	if err != nil {
		// Invalid UTF-8 the encoder refuses: estimate one token per three
		// bytes, more than any text encodes to.
		return (len(s) + 2) / 3
	}
	return n
}
