package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sseLineBytesMax bounds one line of a server-sent event stream.
const sseLineBytesMax = 4 << 20

// result is the outcome of one request: kind is "" on success, else the
// error's kind ("http_500", "transport", "stop_error", ...), with a
// detail. busy marks a 409 from an agent busy with another request.
type result struct {
	kind   string
	detail string
	busy   bool
}

// loader sends the requests of one phase.
type loader interface {
	// send sends request number seq (negative in the warm-up) of client.
	send(ctx context.Context, client, seq int) result
}

// phase is what one phase recorded.
type phase struct {
	name      string
	ok        int
	busy      int
	errors    map[string]int
	samples   map[string]string // the first detail of each error kind
	latencies []time.Duration   // of the successful requests
	elapsed   time.Duration
}

// runPhase runs cfg.Clients clients sending through l until cfg.Messages
// requests are done or cfg.Duration has passed.
func runPhase(ctx context.Context, cfg *Config, name string, l loader) *phase {
	total := cfg.Messages
	var deadline time.Time
	began := time.Now()
	if cfg.Duration > 0 {
		deadline = began.Add(cfg.Duration)
		total = 0
	}
	progress := newProgress(cfg.Progress, name, total)
	var next atomic.Int64
	var mu sync.Mutex
	p := &phase{name: name, errors: map[string]int{}, samples: map[string]string{}}
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		pprof.Do(ctx, pprof.Labels(labelSide, sideClient), func(ctx context.Context) {
			go func() {
				defer wg.Done()
				var lat []time.Duration
				var busy int
				errs := map[string]int{}
				samples := map[string]string{}
				for ctx.Err() == nil {
					seq := int(next.Add(1)) - 1
					if total > 0 && seq >= total {
						break
					}
					if !deadline.IsZero() && !time.Now().Before(deadline) {
						break
					}
					start := time.Now()
					r := l.send(ctx, c, seq)
					for wait := busyBackoffMin; r.busy && ctx.Err() == nil; wait = min(2*wait, busyBackoffMax) {
						busy++
						time.Sleep(wait)
						r = l.send(ctx, c, seq)
					}
					if r.kind == "" {
						lat = append(lat, time.Since(start))
					} else {
						errs[r.kind]++
						if _, ok := samples[r.kind]; !ok {
							samples[r.kind] = r.detail
						}
					}
					progress.add(1)
				}
				mu.Lock()
				defer mu.Unlock()
				p.ok += len(lat)
				p.busy += busy
				p.latencies = append(p.latencies, lat...)
				for k, n := range errs {
					p.errors[k] += n
					if _, ok := p.samples[k]; !ok {
						p.samples[k] = samples[k]
					}
				}
			}()
		})
	}
	wg.Wait()
	p.elapsed = time.Since(began)
	progress.stop()
	return p
}

// userText is the text of message seq from client.
func userText(client, seq int) string {
	return fmt.Sprintf("bench message %d from client %d", seq, client)
}

// kelpieLoad sends user messages to the agents.
type kelpieLoad struct {
	cfg    *Config
	t      *target
	agents []string
}

// send implements loader: client sends to agent client mod len(agents).
func (k *kelpieLoad) send(ctx context.Context, client, seq int) result {
	text := userText(client, seq)
	if k.cfg.Tools {
		text = fmt.Sprintf("@tool memory_rethink {\"label\": %q, \"new_memory\": \"turn %d\"}\n%s", benchBlock, seq, text)
	}
	req := map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}}
	path := "/messages"
	if k.cfg.Stream {
		req["stream_tokens"] = true
		path = "/messages/stream"
	}
	body, _ := json.Marshal(req)
	id := k.agents[client%len(k.agents)]
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, k.t.kelpie+"/v1/agents/"+url.PathEscape(id)+path, bytes.NewReader(body))
	if err != nil {
		return result{kind: "request", detail: err.Error()}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if k.t.password != "" {
		hreq.Header.Set("Authorization", "Bearer "+k.t.password)
	}
	resp, err := k.t.client.Do(hreq)
	if err != nil {
		return transportResult(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
		return result{kind: "http_" + strconv.Itoa(resp.StatusCode), detail: detailOf(b), busy: resp.StatusCode == http.StatusConflict}
	}
	if !k.cfg.Stream {
		b, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
		if err != nil {
			return transportResult(err)
		}
		var res struct {
			StopReason struct {
				StopReason string `json:"stop_reason"`
			} `json:"stop_reason"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return result{kind: "bad_response", detail: fmt.Sprintf("%v: %.200s", err, b)}
		}
		return stopResult(res.StopReason.StopReason)
	}
	return readLettaStream(resp.Body)
}

// readLettaStream reads a Letta SSE stream to its [DONE], returning the
// stop reason's result or the stream's error.
func readLettaStream(r io.Reader) result {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), sseLineBytesMax)
	var stop string
	errorEvent := false
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("event: error")) {
			errorEvent = true
			continue
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		if errorEvent {
			return result{kind: "stream_error", detail: detailOf(data)}
		}
		if bytes.Equal(data, []byte("[DONE]")) {
			if stop == "" {
				return result{kind: "stream_truncated", detail: "[DONE] without a stop_reason"}
			}
			return stopResult(stop)
		}
		if bytes.Contains(data, []byte(`"stop_reason"`)) {
			var ev struct {
				MessageType string `json:"message_type"`
				StopReason  string `json:"stop_reason"`
			}
			if json.Unmarshal(data, &ev) == nil && ev.MessageType == "stop_reason" {
				stop = ev.StopReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		return transportResult(err)
	}
	return result{kind: "stream_truncated", detail: "the stream ended before [DONE]"}
}

// stopResult is the result of a turn that ended with reason.
func stopResult(reason string) result {
	if reason == "end_turn" {
		return result{}
	}
	if reason == "" {
		reason = "missing"
	}
	return result{kind: "stop_" + reason, detail: "the turn ended with stop_reason " + strconv.Quote(reason)}
}

// transportResult classifies a failed request.
func transportResult(err error) result {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return result{kind: "timeout", detail: err.Error()}
	case errors.Is(err, context.Canceled):
		return result{kind: "canceled", detail: err.Error()}
	}
	return result{kind: "transport", detail: err.Error()}
}

// detailOf is the detail of an error body: its "detail" (Letta) or
// "error.message" (OpenAI) member, or its start.
func detailOf(b []byte) string {
	var e struct {
		Detail any `json:"detail"`
		Error  struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		if s, ok := e.Detail.(string); ok && s != "" {
			return s
		}
		if e.Error.Message != "" {
			return e.Error.Message
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// floorLoad posts chat completions straight to the fake model: a system
// prompt and the same user text a kelpie client sends.
type floorLoad struct {
	cfg *Config
	t   *target
}

// send implements loader.
func (f *floorLoad) send(ctx context.Context, client, seq int) result {
	req := map[string]any{
		"model": DefaultFloorModel,
		"messages": []map[string]any{
			{"role": "system", "content": "You are a helpful assistant."},
			{"role": "user", "content": userText(client, seq)},
		},
	}
	if f.cfg.Stream {
		req["stream"] = true
	}
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, f.t.fakeLLM+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return result{kind: "request", detail: err.Error()}
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := f.t.floor.Do(hreq)
	if err != nil {
		return transportResult(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	if err != nil {
		return transportResult(err)
	}
	if resp.StatusCode != http.StatusOK {
		return result{kind: "http_" + strconv.Itoa(resp.StatusCode), detail: detailOf(b)}
	}
	if f.cfg.Stream {
		if !bytes.Contains(b, []byte("data: [DONE]")) {
			return result{kind: "stream_truncated", detail: "the stream ended before [DONE]"}
		}
		return result{}
	}
	var res struct {
		Choices []json.RawMessage `json:"choices"`
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Choices) == 0 {
		return result{kind: "bad_response", detail: fmt.Sprintf("no choices in %.200s", b)}
	}
	return result{}
}
