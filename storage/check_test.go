package storage

import (
	"errors"
	"testing"

	"github.com/kelpie-ai/kelpie/invariant"
)

// TestCommitRequestCheck: a malformed commit request is a bug caught
// before it reaches a backend.
func TestCommitRequestCheck(t *testing.T) {
	text := "doc"
	bad := map[string]CommitRequest{
		"unsorted":          {Writes: []Write{{Key: []byte("b"), Value: []byte{}}, {Key: []byte("a"), Value: []byte{}}}},
		"duplicate":         {Writes: []Write{{Key: []byte("a"), Value: []byte{}}, {Key: []byte("a"), Delete: true}}},
		"set without value": {Writes: []Write{{Key: []byte("a")}}},
		"delete with value": {Writes: []Write{{Key: []byte("a"), Value: []byte("x"), Delete: true}}},
		"delete with text":  {Writes: []Write{{Key: []byte("a"), Delete: true, Text: &text}}},
		"scope past key":    {Writes: []Write{{Key: []byte("a"), Value: []byte{}, Text: &text, TextScope: 2}}},
		"fence at epoch 0":  {Fences: []Fence{{Key: []byte("f")}}},
	}
	for name, req := range bad {
		t.Run(name, func(t *testing.T) {
			defer func() {
				var v *invariant.Violation
				if err, _ := recover().(error); !errors.As(err, &v) {
					t.Fatalf("check passed a malformed request (recovered %v)", err)
				}
			}()
			req.check()
		})
	}
	good := CommitRequest{
		Writes: []Write{{Key: []byte("a"), Value: []byte{}, Text: &text, TextScope: 1}, {Key: []byte("b"), Delete: true}},
		Fences: []Fence{{Key: []byte("f"), Epoch: 1}},
	}
	good.check()
}
