package bench

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// progress redraws one status line ("\r<name> done/total rate/s") on w
// until stopped; with a nil writer it does nothing.
type progress struct {
	w     io.Writer
	name  string
	total int // 0: unknown (a duration)
	began time.Time
	done  atomic.Int64
	quit  chan struct{}
	wg    sync.WaitGroup
}

// newProgress starts a progress line on w (nil: none).
func newProgress(w io.Writer, name string, total int) *progress {
	p := &progress{w: w, name: name, total: total, began: time.Now(), quit: make(chan struct{})}
	if w == nil {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-tick.C:
				p.draw()
			}
		}
	}()
	return p
}

// add counts n more requests done.
func (p *progress) add(n int) { p.done.Add(int64(n)) }

// draw writes the line.
func (p *progress) draw() {
	done := p.done.Load()
	rate := float64(done) / time.Since(p.began).Seconds()
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%-8s %d/%d  %.0f/s   ", p.name, done, p.total, rate)
		return
	}
	fmt.Fprintf(p.w, "\r%-8s %d  %.0f/s   ", p.name, done, rate)
}

// stop draws the line a last time and ends it.
func (p *progress) stop() {
	if p.w == nil {
		return
	}
	close(p.quit)
	p.wg.Wait()
	p.draw()
	fmt.Fprintln(p.w)
}
