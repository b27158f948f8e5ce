package memory_test

import (
	"testing"

	"github.com/kelpie-ai/kelpie/storage"
	"github.com/kelpie-ai/kelpie/storage/memory"
	"github.com/kelpie-ai/kelpie/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Backend{
		New: func(t *testing.T) storagetest.Opener {
			return func(t *testing.T) storage.Store { return memory.New() }
		},
	})
}
