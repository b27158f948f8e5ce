package api

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// sseWriter writes a Letta stream: one `data: <json>` event per message
// (no event names), errors as `event: error`, and `data: [DONE]` at the
// end. Headers go out with the first event, so a request that fails before
// anything happened still gets an ordinary JSON error.
type sseWriter struct {
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

// streamChunkID is the ID shared by the streamed text chunks of one step:
// a UUID derived from the run and the step, in Letta's message-<uuid4> form.
func streamChunkID(runID string, step int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", runID, step)))
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("message-%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
