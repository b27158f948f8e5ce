package fakellm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// SendMessage is the Letta tool the default behaviour answers with.
const SendMessage = "send_message"

// Message roles.
const (
	roleSystem    = "system"
	roleDeveloper = "developer"
	roleUser      = "user"
	roleAssistant = "assistant"
	roleTool      = "tool"
	roleFunction  = "function"
)

// toolNameRE is OpenAI's rule for function names.
var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// chatRequest is the part of a chat completion request the fake reads.
// Other parameters (temperature, max_tokens, ...) are accepted and ignored.
type chatRequest struct {
	Model         string          `json:"model"`
	Messages      []chatMessage   `json:"messages"`
	Tools         []toolDef       `json:"tools"`
	ToolChoice    json.RawMessage `json:"tool_choice"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N *int `json:"n"`
}

type chatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name"`
	ToolCalls  []msgToolCall   `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`

	text string // Content's text
}

type msgToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type toolDef struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`

	raw []byte // the definition as sent, for contextTokens
}

// UnmarshalJSON keeps the definition's bytes besides its fields.
func (t *toolDef) UnmarshalJSON(b []byte) error {
	type plain toolDef
	if err := json.Unmarshal(b, (*plain)(t)); err != nil {
		return err
	}
	t.raw = append([]byte(nil), b...)
	return nil
}

// toolCall is a call the fake model makes.
type toolCall struct {
	name      string
	arguments string // JSON text, normally an object
}

// reply is what the fake model answers.
type reply struct {
	content   string
	toolCalls []toolCall
	err       *apiError
	sleep     time.Duration
	source    string // for the log: "directive", "script rule 2", "default"
}

// contentPart is an element of an array-valued message content.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// messageText returns the text of a message content: a string, null, or
// an array of parts whose text parts are joined with newlines.
func messageText(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var parts []contentPart
	if json.Unmarshal(raw, &parts) != nil {
		return "", false
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), true
}

// unwrapLetta returns the message inside a user message packed the way
// Letta packs them, {"type": "user_message", "message": "...", ...}, and
// other text unchanged.
func unwrapLetta(text string) string {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "{") {
		return text
	}
	var packed struct {
		Type    string  `json:"type"`
		Message *string `json:"message"`
	}
	if json.Unmarshal([]byte(t), &packed) != nil || packed.Type != "user_message" || packed.Message == nil {
		return text
	}
	return *packed.Message
}

// reminderRE matches one <system-reminder>...</system-reminder> block.
var reminderRE = regexp.MustCompile(`(?s)<system-reminder>.*?</system-reminder>`)

// withoutReminders returns text without its <system-reminder> blocks:
// context that clients such as letta-code add to every user message
// (device, agent and permission details), not the user's words. Text with
// no block is returned unchanged; otherwise what remains is trimmed.
func withoutReminders(text string) string {
	if !strings.Contains(text, "<system-reminder>") {
		return text
	}
	return strings.TrimSpace(reminderRE.ReplaceAllString(text, ""))
}

// validate checks req as OpenAI would, including that tool results answer
// the calls before them, and fills in the messages' text.
func (req *chatRequest) validate() *apiError {
	if req.Model == "" {
		return badRequest("model", "missing_required_parameter", "You must provide a model parameter.")
	}
	if len(req.Messages) == 0 {
		return badRequest("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	if req.N != nil && *req.N != 1 {
		return badRequest("n", "unsupported_value", "Invalid 'n': %d. The fake LLM supports only n=1.", *req.N)
	}
	if req.StreamOptions != nil && !req.Stream {
		return badRequest("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	for i, t := range req.Tools {
		if t.Type != "function" {
			return badRequest(fmt.Sprintf("tools[%d].type", i), "invalid_value", "Invalid value: '%s'. Supported values are: 'function'.", t.Type)
		}
		if !toolNameRE.MatchString(t.Function.Name) {
			return badRequest(fmt.Sprintf("tools[%d].function.name", i), "invalid_value",
				"Invalid 'tools[%d].function.name': %q does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.", i, t.Function.Name)
		}
	}
	if _, err := req.toolChoice(); err != nil {
		return err
	}
	var pending []string // tool_call_ids still to be answered
	for i := range req.Messages {
		m := &req.Messages[i]
		param := fmt.Sprintf("messages.[%d]", i)
		text, ok := messageText(m.Content)
		if !ok {
			return badRequest(param+".content", "invalid_type", "Invalid type for '%s.content': expected a string, an array of content parts, or null.", param)
		}
		if m.Role == roleUser {
			text = withoutReminders(unwrapLetta(text))
		}
		m.text = text
		switch m.Role {
		case roleSystem, roleDeveloper, roleUser, roleAssistant, roleTool, roleFunction:
		default:
			return badRequest(param+".role", "invalid_value",
				"Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", m.Role)
		}
		if m.Role == roleTool {
			if m.ToolCallID == "" {
				return badRequest(param+".tool_call_id", "missing_required_parameter", "Missing required parameter: '%s.tool_call_id'.", param)
			}
			j := indexOf(pending, m.ToolCallID)
			if j < 0 {
				return badRequest(param+".role", "invalid_value",
					"Invalid parameter: messages with role 'tool' must be a response to a preceding message with 'tool_calls' (tool_call_id %q answers no pending call).", m.ToolCallID)
			}
			pending = append(pending[:j], pending[j+1:]...)
			continue
		}
		if len(pending) > 0 {
			return unanswered(param, pending)
		}
		if m.Role != roleAssistant && len(m.ToolCalls) > 0 {
			return badRequest(param+".tool_calls", "invalid_value", "Only assistant messages may have 'tool_calls'; %s has role '%s'.", param, m.Role)
		}
		for j, tc := range m.ToolCalls {
			tparam := fmt.Sprintf("%s.tool_calls.[%d]", param, j)
			switch {
			case tc.ID == "":
				return badRequest(tparam+".id", "missing_required_parameter", "Missing required parameter: '%s.id'.", tparam)
			case tc.Type != "function":
				return badRequest(tparam+".type", "invalid_value", "Invalid value for '%s.type': '%s'. Supported values are: 'function'.", tparam, tc.Type)
			case tc.Function.Name == "":
				return badRequest(tparam+".function.name", "missing_required_parameter", "Missing required parameter: '%s.function.name'.", tparam)
			}
			pending = append(pending, tc.ID)
		}
	}
	if len(pending) > 0 {
		return unanswered(fmt.Sprintf("messages.[%d]", len(req.Messages)-1), pending)
	}
	return nil
}

func unanswered(param string, pending []string) *apiError {
	return badRequest(param+".role", "invalid_value",
		"An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: %s",
		strings.Join(pending, ", "))
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// toolChoice returns req's tool_choice: "auto" (also when absent),
// "none", "required", or the name of a forced function.
func (req *chatRequest) toolChoice() (string, *apiError) {
	raw := bytes.TrimSpace(req.ToolChoice)
	if len(raw) == 0 || string(raw) == "null" {
		return "auto", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none":
			return s, nil
		case "required":
			if len(req.Tools) == 0 {
				return "", badRequest("tool_choice", "invalid_value", "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
			}
			return s, nil
		}
		return "", badRequest("tool_choice", "invalid_value", "Invalid value for 'tool_choice': '%s'. Supported values are: 'none', 'auto', 'required', or an object naming a function.", s)
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Type != "function" || named.Function.Name == "" {
		return "", badRequest("tool_choice", "invalid_value", `Invalid 'tool_choice': expected "none", "auto", "required" or {"type":"function","function":{"name":...}}.`)
	}
	if !req.offers(named.Function.Name) {
		return "", badRequest("tool_choice", "invalid_value", "Invalid 'tool_choice': function '%s' is not among the request's tools.", named.Function.Name)
	}
	return "function:" + named.Function.Name, nil
}

// offers reports whether req offers a tool named name.
func (req *chatRequest) offers(name string) bool {
	for _, t := range req.Tools {
		if t.Function.Name == name {
			return true
		}
	}
	return false
}

// conversation is what the fake model reads from a request.
type conversation struct {
	req      *chatRequest
	last     *chatMessage
	lastUser *chatMessage // nil if there is none
	// sentThisTurn: send_message was called after the last user message.
	sentThisTurn bool
	// lastTool is the name of the tool whose result is the last message.
	lastTool string
}

func newConversation(req *chatRequest) *conversation {
	c := &conversation{req: req, last: &req.Messages[len(req.Messages)-1]}
	names := map[string]string{} // tool_call_id → name
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case roleUser:
			c.lastUser, c.sentThisTurn = m, false
		case roleAssistant:
			for _, tc := range m.ToolCalls {
				names[tc.ID] = tc.Function.Name
				if tc.Function.Name == SendMessage {
					c.sentThisTurn = true
				}
			}
		}
	}
	if c.last.Role == roleTool {
		c.lastTool = names[c.last.ToolCallID]
	}
	return c
}

// lastUserText returns the last user message's text, "" if none.
func (c *conversation) lastUserText() string {
	if c.lastUser == nil {
		return ""
	}
	return c.lastUser.text
}

// decide chooses the reply: directives in a trailing user message, then
// the script, then the default behaviour. A lone @sleep delays whichever
// reply is chosen.
func (s *Server) decide(c *conversation) (reply, *apiError) {
	var d directives
	if c.last.Role == roleUser {
		var err error
		if d, err = parseDirectives(c.last.text); err != nil {
			return reply{}, badRequest("messages", "invalid_directive", "fake LLM: %v", err)
		}
		if d.decides() {
			return reply{content: d.reply, toolCalls: d.tools, sleep: d.sleep, err: d.err, source: "directive"}, nil
		}
	}
	if sum, ok := summaryReply(c); ok {
		return reply{content: sum, sleep: d.sleep, source: "summary"}, nil
	}
	r, delayOnly, ok := s.scripted(c)
	if !ok || delayOnly {
		def := s.defaultReply(c, d.text)
		if ok {
			def.sleep, def.source = r.sleep, r.source+" (sleep), then default"
		}
		r = def
	}
	if d.sleep > 0 {
		r.sleep = d.sleep
	}
	return r, nil
}

// defaultReply is the fake model's own behaviour. text is the user text
// without directive lines when the last message is the user's.
func (s *Server) defaultReply(c *conversation, text string) reply {
	req := c.req
	choice, _ := req.toolChoice()
	// say is the text answer; sendMsg what send_message would carry, and
	// send whether the model would call it unprompted.
	var say, sendMsg string
	var send bool
	switch c.last.Role {
	case roleTool, roleFunction, roleAssistant:
		say, sendMsg, send = "OK", "Done.", !c.sentThisTurn
	default:
		if c.last.Role != roleUser {
			text = strings.TrimSpace(c.last.text)
		}
		say = "Echo: " + text
		sendMsg, send = say, true
	}
	call := func(name, suffix string) reply {
		args := "{}"
		if name == SendMessage {
			args = sendArgs(sendMsg)
		}
		return reply{toolCalls: []toolCall{{name: name, arguments: args}}, source: "default" + suffix}
	}
	name, forced := strings.CutPrefix(choice, "function:")
	switch {
	case choice == "none":
		return reply{content: say, source: "default"}
	case forced:
		return call(name, " (tool_choice)")
	case send && req.offers(SendMessage):
		return call(SendMessage, "")
	case choice == "required" && req.offers(SendMessage):
		return call(SendMessage, " (tool_choice)")
	case choice == "required":
		return call(req.Tools[0].Function.Name, " (tool_choice)")
	}
	return reply{content: say, source: "default"}
}

func sendArgs(msg string) string {
	b, _ := json.Marshal(map[string]string{"message": msg})
	return string(b)
}

// chat answers POST /v1/chat/completions and returns a note for the log.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) string {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, badRequest("", "invalid_body", "Reading the request body: %v", err))
		return ""
	}
	var req chatRequest
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !decodeBody(w, r, &req) {
		return ""
	}
	if e := req.validate(); e != nil {
		writeError(w, e)
		return "invalid: " + e.message
	}
	if n := s.opts.ContextWindow; n > 0 {
		if used := contextTokens(&req); used > n {
			writeError(w, &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, param: "messages", code: "context_length_exceeded",
				message: fmt.Sprintf("This model's maximum context length is %d tokens. However, your messages resulted in %d tokens. Please reduce the length of the messages.", n, used)})
			return fmt.Sprintf("context_length_exceeded: %d > %d tokens", used, n)
		}
	}
	c := newConversation(&req)
	rep, e := s.decide(c)
	if e != nil {
		writeError(w, e)
		return "invalid: " + e.message
	}
	if rep.sleep > 0 {
		t := time.NewTimer(rep.sleep)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			writeError(w, &apiError{status: http.StatusServiceUnavailable, typ: typeServer, message: "fake LLM: request cancelled while sleeping"})
			return rep.source + ": cancelled"
		}
	}
	if rep.err != nil {
		writeError(w, rep.err)
		return fmt.Sprintf("%s: error %d", rep.source, rep.err.status)
	}
	out := s.completion(&req, body, rep)
	if req.Stream {
		stream(w, out, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
	} else {
		writeJSON(w, http.StatusOK, out)
	}
	return rep.source + ": " + summary(rep)
}

// summary describes a reply for the log.
func summary(r reply) string {
	var parts []string
	for _, tc := range r.toolCalls {
		parts = append(parts, tc.name+tc.arguments)
	}
	if r.content != "" || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%q", r.content))
	}
	return strings.Join(parts, " ")
}

// Response shapes, in OpenAI's field order.
type completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []choice `json:"choices"`
	Usage             usage    `json:"usage"`
	ServiceTier       string   `json:"service_tier"`
	SystemFingerprint string   `json:"system_fingerprint"`
}

type choice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	Role        string             `json:"role"`
	Content     *string            `json:"content"`
	Refusal     *string            `json:"refusal"`
	ToolCalls   []responseToolCall `json:"tool_calls,omitempty"`
	Annotations []struct{}         `json:"annotations"`
}

type responseToolCall struct {
	ID       string           `json:"id"`
	Type     string           `json:"type"`
	Function responseFunction `json:"function"`
}

type responseFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

// completion builds the response to req (whose body is body) for rep.
func (s *Server) completion(req *chatRequest, body []byte, rep reply) *completion {
	sum := sha256.Sum256(body)
	msg := responseMessage{Role: roleAssistant, Annotations: []struct{}{}}
	if rep.content != "" || len(rep.toolCalls) == 0 {
		msg.Content = &rep.content
	}
	finish := "stop"
	completionText := rep.content
	for i, tc := range rep.toolCalls {
		msg.ToolCalls = append(msg.ToolCalls, responseToolCall{
			ID:       ToolCallID(len(req.Messages), i, tc.name),
			Type:     "function",
			Function: responseFunction{Name: tc.name, Arguments: tc.arguments},
		})
		completionText += " " + tc.name + " " + tc.arguments
		finish = "tool_calls"
	}
	var promptText strings.Builder
	for _, m := range req.Messages {
		promptText.WriteString(m.text)
		promptText.WriteByte(' ')
		for _, tc := range m.ToolCalls {
			promptText.WriteString(tc.Function.Name + " " + tc.Function.Arguments + " ")
		}
	}
	u := usage{PromptTokens: Tokens(promptText.String()), CompletionTokens: Tokens(completionText)}
	if s.opts.ContextWindow > 0 {
		u.PromptTokens = contextTokens(req)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return &completion{
		ID:                "chatcmpl-" + hex.EncodeToString(sum[:12]),
		Object:            "chat.completion",
		Created:           created,
		Model:             req.Model,
		Choices:           []choice{{Message: msg, FinishReason: finish}},
		Usage:             u,
		ServiceTier:       "default",
		SystemFingerprint: systemFingerprint,
	}
}

// ToolCallID is the fake model's ID for its index'th tool call in a reply
// to a request of messages messages: "call_" and 24 hex digits.
func ToolCallID(messages, index int, name string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%s", messages, index, name))
	return "call_" + hex.EncodeToString(sum[:12])
}

// Tokens is the fake token count of text: its words divided by 0.75,
// rounded up.
func Tokens(text string) int {
	words := len(strings.Fields(text))
	return (words*4 + 2) / 3
}

// contextTokens is a chat request's size against Options.ContextWindow:
// one token per four bytes of its messages' text, tool calls and tool
// definitions, plus four per message.
func contextTokens(req *chatRequest) int {
	n := 0
	for _, m := range req.Messages {
		n += len(m.text) + 16
		for _, tc := range m.ToolCalls {
			n += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	for _, t := range req.Tools {
		n += len(t.raw)
	}
	return (n + 3) / 4
}

// summaryWordsMax bounds the digest a summary reply quotes.
const summaryWordsMax = 40

// summaryReply answers a summarizer's request (see the package doc).
func summaryReply(c *conversation) (string, bool) {
	req := c.req
	if len(req.Tools) > 0 || len(req.Messages) < 2 || req.Messages[0].Role != roleSystem ||
		!strings.Contains(strings.ToLower(req.Messages[0].text), "summar") || c.lastUser == nil {
		return "", false
	}
	text := c.lastUser.text
	words := strings.Fields(text)
	if len(words) > summaryWordsMax {
		words = words[:summaryWordsMax]
	}
	return fmt.Sprintf("Summary (%d lines): %s", strings.Count(text, "\n")+1, strings.Join(words, " ")), true
}
