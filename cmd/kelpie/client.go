package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The client commands (agents, chat) talk to a running server over its
// Letta REST API, through the small typed client below.

// Environment variables and defaults of the client commands.
const (
	envServer     = "KELPIE_SERVER"
	defaultServer = "http://127.0.0.1:8283"
)

// Client timeouts.
const (
	// dialTimeout bounds opening a TCP connection to the server.
	dialTimeout = 10 * time.Second
	// apiRequestTimeout bounds a management request (list, get, create,
	// delete) from start to the end of the response.
	apiRequestTimeout = 30 * time.Second
	// turnTimeout bounds one chat turn: the agent may call the model and
	// its tools several times before it answers.
	turnTimeout = 10 * time.Minute
	// errorBodyMax bounds how much of a non-JSON error body is shown.
	errorBodyMax = 200
	// responseBytesMax bounds a response body the client reads.
	responseBytesMax = 64 << 20
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	server   string
	password string
}

// add registers the flags on fs.
func (f *clientFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.server, "server", defaultServer, "URL of the Kelpie (or Letta) server (env "+envServer+")")
	fs.StringVar(&f.password, "password", "", "server password, sent as Authorization: Bearer (env "+envPassword+")")
}

// client resolves the flags (a flag given on the command line wins, then
// a non-empty environment variable, then the default) and returns a
// client for the server they name.
func (f *clientFlags) client(cmd *cobra.Command, getenv func(string) string) (*apiClient, error) {
	pick := func(flag, env, value string) string {
		if !cmd.Flags().Changed(flag) {
			if v := getenv(env); v != "" {
				return v
			}
		}
		return value
	}
	return newAPIClient(pick("server", envServer, f.server), pick("password", envPassword, f.password))
}

// apiClient calls a Kelpie server's Letta REST API.
type apiClient struct {
	base     string // scheme://host[:port][/prefix], no trailing slash
	password string
	http     *http.Client
}

// newAPIClient returns a client for the server at rawURL. A URL without
// a scheme gets http://; a trailing /v1 is dropped (the Letta SDKs take
// the base URL without it, but people paste both).
func newAPIClient(rawURL, password string) (*apiClient, error) {
	s := strings.TrimSpace(rawURL)
	if s == "" {
		return nil, &usageError{errors.New("--server is empty; give the server's URL, for example " + defaultServer)}
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &usageError{fmt.Errorf("--server %q is not an http(s) URL; give one like %s", rawURL, defaultServer)}
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	u.RawPath = ""
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	return &apiClient{
		base:     strings.TrimSuffix(u.String(), "/"),
		password: password,
		http:     &http.Client{Transport: transport},
	}, nil
}

// apiError is an error answer from the server: its status and the
// detail of its {"detail": ...} body (or the start of the body when it
// is not in that shape).
type apiError struct {
	Method, Path string
	Status       int
	Detail       string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%s %s: server answered %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// do sends a request with a JSON body (when body is not nil) and returns
// the response body of a 2xx answer. Other answers become *apiError;
// transport failures are wrapped with advice.
func (c *apiClient) do(ctx context.Context, timeout time.Duration, method, path string, query url.Values, body any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.password != "" {
		req.Header.Set("Authorization", "Bearer "+c.password)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, c.explainTransport(method, path, timeout, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, responseBytesMax))
	if err != nil {
		return nil, c.explainTransport(method, path, timeout, err)
	}
	if res.StatusCode/100 == 2 {
		return raw, nil
	}
	return nil, c.explainStatus(&apiError{Method: method, Path: path, Status: res.StatusCode, Detail: errorDetail(raw)})
}

// errorDetail extracts the message of an error body: Letta's
// {"detail": "..."} (detail may also be FastAPI's list of validation
// errors), or else the start of the body.
func errorDetail(raw []byte) string {
	var e struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(raw, &e) == nil && len(e.Detail) > 0 {
		var s string
		if json.Unmarshal(e.Detail, &s) == nil {
			return s
		}
		return string(e.Detail)
	}
	return truncate(strings.Join(strings.Fields(string(raw)), " "), errorBodyMax)
}

// explainTransport wraps a failure to reach the server with advice.
func (c *apiClient) explainTransport(method, path string, timeout time.Duration, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it repeats the method and the URL
	}
	err = fmt.Errorf("cannot reach %s (%s %s): %w", c.base, method, path, err)
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return &hintError{err: err, hint: fmt.Sprintf("Is `kelpie serve` running at %s? Start it with `kelpie serve`, or point --server or %s at the server.", c.base, envServer)}
	case errors.Is(err, context.DeadlineExceeded):
		return &hintError{err: err, hint: fmt.Sprintf("The server did not answer within %v. Is %s the right server, and is it overloaded?", timeout, c.base)}
	case errors.As(err, &dnsErr):
		return &hintError{err: err, hint: fmt.Sprintf("Cannot resolve the host of %s. Check --server or %s.", c.base, envServer)}
	}
	return err
}

// explainStatus adds advice to the error answers a user can act on.
func (c *apiClient) explainStatus(e *apiError) error {
	switch e.Status {
	case http.StatusUnauthorized:
		if c.password == "" {
			return &hintError{err: e, hint: fmt.Sprintf("The server at %s requires a password: pass --password or set %s.", c.base, envPassword)}
		}
		return &hintError{err: e, hint: fmt.Sprintf("The server at %s rejected the password given with --password or %s.", c.base, envPassword)}
	case http.StatusNotFound:
		if strings.HasPrefix(e.Path, "/v1/agents/") {
			return &hintError{err: e, hint: "List the agents with `kelpie agents list`."}
		}
		return &hintError{err: e, hint: fmt.Sprintf("Is %s a Kelpie or Letta server?", c.base)}
	}
	return e
}

// Typed calls.

// getJSON sends a GET and decodes the answer into out.
func (c *apiClient) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	raw, err := c.do(ctx, apiRequestTimeout, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	return decodeResponse(http.MethodGet, path, raw, out)
}

// decodeResponse decodes a successful answer, naming the request if it
// is not the JSON expected.
func decodeResponse(method, path string, raw []byte, out any) error {
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer (%v): %s", method, path, err, truncate(string(raw), errorBodyMax))
	}
	return nil
}

// agentPath is the path of one agent.
func agentPath(id string) string { return "/v1/agents/" + url.PathEscape(id) }

// listAgentsRaw returns the body of GET /v1/agents.
func (c *apiClient) listAgentsRaw(ctx context.Context, limit int) ([]byte, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	return c.do(ctx, apiRequestTimeout, http.MethodGet, "/v1/agents", q, nil)
}

// createAgentRaw creates an agent and returns the body of the answer.
func (c *apiClient) createAgentRaw(ctx context.Context, req createAgentRequest) ([]byte, error) {
	return c.do(ctx, apiRequestTimeout, http.MethodPost, "/v1/agents", nil, req)
}

// getAgentRaw returns the body of GET /v1/agents/{id}.
func (c *apiClient) getAgentRaw(ctx context.Context, id string) ([]byte, error) {
	return c.do(ctx, apiRequestTimeout, http.MethodGet, agentPath(id), nil, nil)
}

// getAgent returns one agent.
func (c *apiClient) getAgent(ctx context.Context, id string) (*agentState, error) {
	var a agentState
	if err := c.getJSON(ctx, agentPath(id), nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// deleteAgent deletes one agent.
func (c *apiClient) deleteAgent(ctx context.Context, id string) error {
	_, err := c.do(ctx, apiRequestTimeout, http.MethodDelete, agentPath(id), nil, nil)
	return err
}

// sendMessage sends one user message to an agent and returns the turn.
func (c *apiClient) sendMessage(ctx context.Context, id, text string) (*lettaResponse, error) {
	path := agentPath(id) + "/messages"
	req := sendRequest{Messages: []messageCreate{{Role: "user", Content: text}}}
	raw, err := c.do(ctx, turnTimeout, http.MethodPost, path, nil, req)
	if err != nil {
		return nil, err
	}
	var res lettaResponse
	if err := decodeResponse(http.MethodPost, path, raw, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Wire shapes: the parts of Letta's schemas the CLI reads or sends.

type createAgentRequest struct {
	Name         string        `json:"name,omitempty"`
	Model        string        `json:"model,omitempty"`
	System       string        `json:"system,omitempty"`
	MemoryBlocks []blockCreate `json:"memory_blocks,omitempty"`
}

type blockCreate struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// agentState is Letta's AgentState.
type agentState struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	System      string  `json:"system"`
	AgentType   string  `json:"agent_type"`
	Model       *string `json:"model"`
	Description *string `json:"description"`
	LLMConfig   struct {
		Model  string  `json:"model"`
		Handle *string `json:"handle"`
	} `json:"llm_config"`
	Blocks []memoryBlock `json:"blocks"`
	Memory struct {
		Blocks []memoryBlock `json:"blocks"`
	} `json:"memory"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Tags      []string `json:"tags"`
	CreatedAt string   `json:"created_at"`
	UpdatedAt string   `json:"updated_at"`
}

// model returns the agent's model handle (provider/model), or the model
// name when it has no handle.
func (a *agentState) model() string {
	switch {
	case a.Model != nil && *a.Model != "":
		return *a.Model
	case a.LLMConfig.Handle != nil && *a.LLMConfig.Handle != "":
		return *a.LLMConfig.Handle
	}
	return a.LLMConfig.Model
}

// memoryBlocks returns the agent's core memory blocks (Letta servers
// return them in memory.blocks, newer ones also in blocks).
func (a *agentState) memoryBlocks() []memoryBlock {
	if len(a.Blocks) > 0 {
		return a.Blocks
	}
	return a.Memory.Blocks
}

type memoryBlock struct {
	Label    string `json:"label"`
	Value    string `json:"value"`
	Limit    int    `json:"limit"`
	ReadOnly bool   `json:"read_only"`
}

type sendRequest struct {
	Messages []messageCreate `json:"messages"`
}

type messageCreate struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// lettaResponse is Letta's LettaResponse.
type lettaResponse struct {
	Messages   []lettaMessage `json:"messages"`
	StopReason *struct {
		StopReason string `json:"stop_reason"`
	} `json:"stop_reason"`
	Usage *usageStatistics `json:"usage"`
}

type usageStatistics struct {
	CompletionTokens int `json:"completion_tokens"`
	PromptTokens     int `json:"prompt_tokens"`
	TotalTokens      int `json:"total_tokens"`
	StepCount        int `json:"step_count"`
}

// lettaMessage is one member of Letta's LettaMessageUnion, discriminated
// by message_type; only the fields of its type are set. A streaming
// reader decodes each SSE data line into one of these.
type lettaMessage struct {
	ID          string       `json:"id"`
	MessageType string       `json:"message_type"`
	Content     textContent  `json:"content"`
	Reasoning   string       `json:"reasoning"`
	ToolCall    *toolCall    `json:"tool_call"`
	ToolCalls   []toolCall   `json:"tool_calls"`
	ToolReturn  *textContent `json:"tool_return"`
	Status      string       `json:"status"`
	StopReason  string       `json:"stop_reason"`
	// Usage fields, on a usage_statistics message of a stream.
	usageStatistics
}

type toolCall struct {
	Name       string `json:"name"`
	Arguments  string `json:"arguments"`
	ToolCallID string `json:"tool_call_id"`
}

// textContent is message content: a string, or a list of content parts
// of which the text parts are kept.
type textContent string

func (t *textContent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = textContent(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err == nil {
		var texts []string
		for _, p := range parts {
			if p.Text != "" {
				texts = append(texts, p.Text)
			}
		}
		*t = textContent(strings.Join(texts, "\n"))
		return nil
	}
	// Anything else (null, an object): keep its JSON.
	if string(b) != "null" {
		*t = textContent(b)
	}
	return nil
}
