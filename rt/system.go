package rt

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"
)

// System is the production binding of the seam: the operating system's
// clock and goroutines, and random streams seeded once from crypto/rand.
type System struct {
	seed [32]byte
	mu   sync.Mutex
	rngs map[string]*lockedRand
	wg   sync.WaitGroup
}

// NewSystem returns the production Runtime.
func NewSystem() *System {
	s := &System{rngs: make(map[string]*lockedRand)}
	if _, err := crand.Read(s.seed[:]); err != nil {
		panic("rt: crypto/rand unavailable: " + err.Error())
	}
	return s
}

// Now implements Runtime.
func (s *System) Now() time.Time { return time.Now() }

// Sleep implements Runtime.
func (s *System) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AfterFunc implements Runtime.
func (s *System) AfterFunc(d time.Duration, _ string, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Go implements Runtime. Tasks are tracked so Wait can join them.
func (s *System) Go(_ string, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Wait blocks until every task started with Go has returned.
func (s *System) Wait() { s.wg.Wait() }

// NewSignal implements Runtime.
func (s *System) NewSignal() Signal { return chanSignal(make(chan struct{}, 1)) }

// Rand implements Runtime. Each name gets its own stream.
func (s *System) Rand(name string) Rand {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rngs[name]; ok {
		return r
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := s.seed
	binary.LittleEndian.PutUint64(seed[:8], binary.LittleEndian.Uint64(seed[:8])^h.Sum64())
	r := &lockedRand{r: rand.New(rand.NewChaCha8(seed))}
	s.rngs[name] = r
	return r
}

type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Uint64()
}

type chanSignal chan struct{}

func (c chanSignal) Notify() {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (c chanSignal) Wait(ctx context.Context) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
