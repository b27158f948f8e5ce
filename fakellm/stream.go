package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"unicode/utf8"
)

// Streamed chunk shapes, in OpenAI's field order.
type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       string          `json:"service_tier"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type delta struct {
	Role      string          `json:"role,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	Refusal   json.RawMessage `json:"refusal,omitempty"`
	ToolCalls []deltaToolCall `json:"tool_calls,omitempty"`
}

type deltaToolCall struct {
	Index    int           `json:"index"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function deltaFunction `json:"function"`
}

type deltaFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// wordRE splits text into stream pieces: each word with the blanks
// before it.
var wordRE = regexp.MustCompile(`\s*\S+|\s+$`)

// stream answers c as server-sent events the way OpenAI does: a role
// delta, content deltas, for each tool call a delta with its index, id,
// type and name followed by argument fragments, a last delta with the
// finish reason, a usage chunk if asked for, then [DONE].
func stream(w http.ResponseWriter, c *completion, includeUsage bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	var usageNull json.RawMessage
	if includeUsage {
		usageNull = json.RawMessage("null")
	}
	event := func(data []byte) bool {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		rc.Flush()
		return true
	}
	send := func(d delta, finish *string) bool {
		b, _ := json.Marshal(chunk{
			ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
			ServiceTier: c.ServiceTier, SystemFingerprint: c.SystemFingerprint,
			Choices: []chunkChoice{{Delta: d, FinishReason: finish}},
			Usage:   usageNull,
		})
		return event(b)
	}

	msg := c.Choices[0].Message
	first := delta{Role: roleAssistant, Content: json.RawMessage("null"), Refusal: json.RawMessage("null")}
	if msg.Content != nil {
		first.Content = json.RawMessage(`""`)
	}
	if !send(first, nil) {
		return
	}
	if msg.Content != nil {
		for _, piece := range wordRE.FindAllString(*msg.Content, -1) {
			b, _ := json.Marshal(piece)
			if !send(delta{Content: b}, nil) {
				return
			}
		}
	}
	for i, tc := range msg.ToolCalls {
		head := deltaToolCall{Index: i, ID: tc.ID, Type: tc.Type, Function: deltaFunction{Name: tc.Function.Name}}
		if !send(delta{ToolCalls: []deltaToolCall{head}}, nil) {
			return
		}
		for _, frag := range fragments(tc.Function.Arguments) {
			if !send(delta{ToolCalls: []deltaToolCall{{Index: i, Function: deltaFunction{Arguments: frag}}}}, nil) {
				return
			}
		}
	}
	finish := c.Choices[0].FinishReason
	if !send(delta{}, &finish) {
		return
	}
	if includeUsage {
		u, _ := json.Marshal(c.Usage)
		b, _ := json.Marshal(chunk{
			ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
			ServiceTier: c.ServiceTier, SystemFingerprint: c.SystemFingerprint,
			Choices: []chunkChoice{}, Usage: u,
		})
		if !event(b) {
			return
		}
	}
	event([]byte("[DONE]"))
}

// fragments splits s into about three pieces of at most 16 bytes, never
// inside a UTF-8 sequence, so that a client must join them.
func fragments(s string) []string {
	size := min(max((len(s)+2)/3, 1), 16)
	var out []string
	for len(s) > 0 {
		n := min(size, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}
