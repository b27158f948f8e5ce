// Package scripted is an HTTP server for the providers' tests: each
// request (each attempt of a call) is answered by the next handler of a
// script, the last one repeating, and every request is recorded.
package scripted

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Server is a scripted httptest server, closed when its test ends.
type Server struct {
	// URL is the server's base URL.
	URL string

	srv    *httptest.Server
	t      testing.TB
	mu     sync.Mutex
	script []http.HandlerFunc
	reqs   []Request
}

// Request is one request the server received.
type Request struct {
	Path   string
	Header http.Header
	// Body is the JSON body decoded (nil if empty); a body that is not
	// JSON fails the test.
	Body map[string]any
}

// New starts a server answering with script.
func New(t testing.TB, script ...http.HandlerFunc) *Server {
	s := &Server{t: t, script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Errorf("request body is not JSON: %v: %s", err, raw)
			}
		}
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		h := s.script[min(n, len(s.script)-1)]
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down early (requests then fail to connect).
func (s *Server) Close() { s.srv.Close() }

// Attempts returns the number of requests received.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Request returns the i-th request received (from 0); it fails the test
// if there is none.
func (s *Server) Request(i int) Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= len(s.reqs) {
		s.t.Fatalf("request %d not made (%d made)", i, len(s.reqs))
	}
	return s.reqs[i]
}
