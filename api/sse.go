package api

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// pingInterval is how long a stream may stay idle before a keep-alive
// ping event goes out (when the request asks for pings).
const pingInterval = 10 * time.Second

// sseWriter writes a Letta stream: one `data: <json>` event per message
// (no event names), errors as `event: error`, and `data: [DONE]` at the
// end. Headers go out with the first event, so a request that fails before
// anything happened still gets an ordinary JSON error.
type sseWriter struct {
	// mu serialises events: the keep-alive pinger writes beside the
	// stream's own events.
	mu      sync.Mutex
	last    time.Time // when the last event went out
	pings   int
	w       io.Writer
	rw      http.ResponseWriter
	flusher http.Flusher
	started bool
	err     error // the first write error; later writes are dropped
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	f, _ := w.(http.Flusher)
	return &sseWriter{w: w, rw: w, flusher: f}
}

func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.rw.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	s.rw.WriteHeader(http.StatusOK)
}

// data sends v as one event.
func (s *sseWriter) data(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw("", b)
}

// errorEvent sends an `event: error` with a JSON body.
func (s *sseWriter) errorEvent(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.raw("error", b)
}

// done ends the stream.
func (s *sseWriter) done() error { return s.raw("", []byte("[DONE]")) }

func (s *sseWriter) raw(event string, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	if s.err != nil {
		return s.err
	}
	s.start()
	if event != "" {
		_, s.err = fmt.Fprintf(s.w, "event: %s\n", event)
	}
	if s.err == nil {
		// JSON never contains a raw newline, so one data line suffices.
		_, s.err = fmt.Fprintf(s.w, "data: %s\n\n", payload)
	}
	if s.err == nil && s.flusher != nil {
		s.flusher.Flush()
	}
	return s.err
}

// keepAlive sends a LettaPing event whenever the stream has been idle for
// interval, once it has started, until the returned stop is called.
func (s *sseWriter) keepAlive(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				s.mu.Lock()
				idle := s.started && s.err == nil && now.Sub(s.last) >= interval
				s.pings++
				n := s.pings
				s.mu.Unlock()
				if idle {
					s.data(map[string]any{"id": streamChunkID("ping", n), "date": timeString(now), "message_type": "ping"})
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// streamChunkID is the ID shared by the streamed text chunks of one step:
// a UUID derived from the run and the step, in Letta's message-<uuid4> form.
func streamChunkID(runID string, step int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", runID, step)))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("message-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
