package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// stub is a Streamer that records the models it was asked for.
type stub struct {
	name  string
	asked []string
}

func (s *stub) Complete(_ context.Context, req Request) (*Response, error) {
	s.asked = append(s.asked, req.Model)
	return &Response{Message: Message{Role: RoleAssistant, Content: s.name + ":" + req.Model}}, nil
}

func (s *stub) CompleteStream(ctx context.Context, req Request, onDelta func(Delta) error) (*Response, error) {
	res, _ := s.Complete(ctx, req)
	if err := onDelta(Delta{Content: res.Message.Content}); err != nil {
		return nil, err
	}
	return res, nil
}

func infos(names ...string) []ModelInfo {
	var out []ModelInfo
	for _, n := range names {
		out = append(out, ModelInfo{Model: n})
	}
	return out
}

func TestRouterRoutes(t *testing.T) {
	oai, ant := &stub{name: "openai"}, &stub{name: "anthropic"}
	listed := 0
	r := NewRouter(
		Provider{Name: "openai", Client: oai, Models: infos("gpt-x"), DefaultModel: "gpt-x",
			ListModels: func(context.Context) ([]ModelInfo, error) {
				listed++
				return []ModelInfo{{Model: "Qwen/Qwen2.5-7B", ContextWindow: 32768}}, nil
			}},
		Provider{Name: "anthropic", Client: ant, Models: infos("claude-y"), DefaultModel: "claude-y"},
	)
	for _, tc := range []struct{ model, want string }{
		{"openai/gpt-x", "openai:gpt-x"},
		{"anthropic/claude-y", "anthropic:claude-y"},
		{"anthropic/claude-unlisted", "anthropic:claude-unlisted"},
		{"claude-y", "anthropic:claude-y"},            // bare, listed by the second provider
		{"gpt-unlisted", "openai:gpt-unlisted"},       // bare, listed by none: the first provider
		{"Qwen/Qwen2.5-7B", "openai:Qwen/Qwen2.5-7B"}, // a slash in the name, discovered by ListModels
		{"openai/Qwen/Qwen2.5-7B", "openai:Qwen/Qwen2.5-7B"},
		{"", "openai:gpt-x"},
		{"anthropic/", "anthropic:claude-y"},
	} {
		res, err := r.Complete(context.Background(), Request{Model: tc.model})
		if err != nil {
			t.Errorf("%q: %v", tc.model, err)
			continue
		}
		if res.Message.Content != tc.want {
			t.Errorf("%q went to %s, want %s", tc.model, res.Message.Content, tc.want)
		}
	}
	if listed == 0 {
		t.Error("ListModels never consulted")
	}

	var deltas []Delta
	res, err := r.CompleteStream(context.Background(), Request{Model: "anthropic/claude-y"}, func(d Delta) error {
		deltas = append(deltas, d)
		return nil
	})
	if err != nil || res.Message.Content != "anthropic:claude-y" || len(deltas) != 1 {
		t.Errorf("stream: %v, %+v, %+v", err, res, deltas)
	}

	_, err = r.Complete(context.Background(), Request{Model: "mistral/large"})
	ae, ok := AsAPIError(err)
	if !ok || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Message, "openai, anthropic") || !strings.Contains(ae.Message, `"mistral"`) {
		t.Fatalf("unknown provider: %#v", err)
	}
	if !errors.Is(err, ErrInvalidRequest) || HTTPStatus(err) != http.StatusBadRequest {
		t.Errorf("unknown provider error %v: class or status wrong", err)
	}

	want := []ModelInfo{
		{Handle: "openai/gpt-x", Provider: "openai", Model: "gpt-x", ProviderType: "openai"},
		{Handle: "openai/Qwen/Qwen2.5-7B", Provider: "openai", Model: "Qwen/Qwen2.5-7B", ProviderType: "openai", ContextWindow: 32768},
		{Handle: "anthropic/claude-y", Provider: "anthropic", Model: "claude-y", ProviderType: "anthropic"},
	}
	if got := r.Models(); !reflect.DeepEqual(got, want) {
		t.Errorf("Models() =\n%+v\nwant\n%+v", got, want)
	}
	if p, m, err := r.Resolve(context.Background(), "claude-y"); p != "anthropic" || m != "claude-y" || err != nil {
		t.Errorf("Resolve = %q, %q, %v", p, m, err)
	}
}

func TestRouterSingleProviderSkipsDiscovery(t *testing.T) {
	r := NewRouter(Provider{Name: "local", Type: ProviderTypeOpenAI, Client: &stub{name: "local"},
		ListModels: func(context.Context) ([]ModelInfo, error) {
			t.Error("ListModels called for a bare name with one provider")
			return nil, nil
		}})
	res, err := r.Complete(context.Background(), Request{Model: "llama3"})
	if err != nil || res.Message.Content != "local:llama3" {
		t.Fatalf("%v, %+v", err, res)
	}
}

func TestRouterNoDefaultModel(t *testing.T) {
	r := NewRouter(Provider{Name: "openai", Client: &stub{}})
	_, err := r.Complete(context.Background(), Request{})
	if ae, ok := AsAPIError(err); !ok || ae.Status != 400 {
		t.Fatalf("err = %#v", err)
	}
}

func TestRouterUnconfigured(t *testing.T) {
	r := NewRouter()
	if r.Configured() {
		t.Error("configured without providers")
	}
	for _, call := range []func() error{
		func() error { _, err := r.Complete(context.Background(), Request{Model: "openai/gpt-x"}); return err },
		func() error {
			_, err := r.CompleteStream(context.Background(), Request{}, func(Delta) error { return nil })
			return err
		},
		func() error { _, err := Unconfigured{}.Complete(context.Background(), Request{}); return err },
	} {
		err := call()
		if !errors.Is(err, ErrNotConfigured) {
			t.Fatalf("err = %v, want ErrNotConfigured", err)
		}
		for _, v := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"} {
			if !strings.Contains(err.Error(), v) {
				t.Errorf("%q does not name %s", err, v)
			}
		}
		if HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("HTTPStatus = %d", HTTPStatus(err))
		}
	}
	if len(r.Models()) != 0 {
		t.Error("models without providers")
	}
}

func TestAPIErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		err       *APIError
		retryable bool
		class     error
		status    int
	}{
		{&APIError{Status: 429}, true, ErrRateLimited, 429},
		{&APIError{Status: 408}, true, ErrUnavailable, 502},
		{&APIError{Status: 500}, true, ErrUnavailable, 502},
		{&APIError{Status: 529}, true, ErrUnavailable, 502},
		{&APIError{Status: 0, Err: errors.New("connection refused")}, true, ErrUnavailable, 502},
		{&APIError{Status: 0, Err: context.DeadlineExceeded}, false, context.DeadlineExceeded, 504},
		{&APIError{Status: 0, Err: context.Canceled}, false, context.Canceled, 502},
		{&APIError{Status: 400}, false, ErrInvalidRequest, 400},
		{&APIError{Status: 404}, false, ErrInvalidRequest, 400},
		{&APIError{Status: 400, Type: "context_length_exceeded"}, false, ErrContextWindowExceeded, 400},
		{&APIError{Status: 401}, false, ErrAuthentication, 502},
		{&APIError{Status: 403}, false, ErrAuthentication, 502},
	} {
		wrapped := fmt.Errorf("model call: %w", tc.err)
		if got := tc.err.Retryable(); got != tc.retryable {
			t.Errorf("%v: Retryable = %v", tc.err, got)
		}
		if !errors.Is(wrapped, tc.class) {
			t.Errorf("%v is not %v", tc.err, tc.class)
		}
		if got := HTTPStatus(wrapped); got != tc.status {
			t.Errorf("%v: HTTPStatus = %d, want %d", tc.err, got, tc.status)
		}
	}
	if errors.Is(&APIError{Status: 429}, ErrUnavailable) || errors.Is(&APIError{Status: 401}, ErrInvalidRequest) {
		t.Error("classes overlap")
	}
	if HTTPStatus(errors.New("other")) != 0 || HTTPStatus(nil) != 0 {
		t.Error("HTTPStatus of a foreign error")
	}
	e := &APIError{Provider: "openai", Status: 429, Message: "slow down", RetryAfter: 2 * time.Second}
	if got := e.Error(); got != "llm: openai: status 429: slow down (retry after 2s)" {
		t.Errorf("Error() = %q", got)
	}
	e = &APIError{Provider: "anthropic", Err: errors.New("dial tcp: connection refused")}
	if got := e.Error(); got != "llm: anthropic: request failed: dial tcp: connection refused" {
		t.Errorf("Error() = %q", got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cfgs, err := ConfigFromEnv(env(map[string]string{
		"OPENAI_BASE_URL":   "http://localhost:11434/v1/",
		"OPENAI_MODELS":     " llama3.2, ,qwen2.5 ",
		"ANTHROPIC_API_KEY": "sk-ant",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []ProviderConfig{
		{Name: "openai", Type: "openai", BaseURL: "http://localhost:11434/v1", Models: []string{"llama3.2", "qwen2.5"}},
		{Name: "anthropic", Type: "anthropic", BaseURL: DefaultAnthropicBaseURL, APIKey: "sk-ant"},
	}
	if !reflect.DeepEqual(cfgs, want) {
		t.Errorf("configs =\n%+v\nwant\n%+v", cfgs, want)
	}
	cfgs, err = ConfigFromEnv(env(map[string]string{"OPENAI_API_KEY": "sk"}))
	if err != nil || len(cfgs) != 1 || cfgs[0].BaseURL != DefaultOpenAIBaseURL || cfgs[0].APIKey != "sk" {
		t.Errorf("key only: %+v, %v", cfgs, err)
	}
	if cfgs, err := ConfigFromEnv(env(nil)); err != nil || len(cfgs) != 0 {
		t.Errorf("empty: %+v, %v", cfgs, err)
	}
	if _, err := ConfigFromEnv(env(map[string]string{"OPENAI_BASE_URL": "localhost:11434"})); err == nil || !strings.Contains(err.Error(), "OPENAI_BASE_URL") {
		t.Errorf("bad URL: %v", err)
	}
	r, err := FromEnv(env(nil))
	if err != nil || r.Configured() {
		t.Errorf("FromEnv(empty) = %v, %v", r, err)
	}
	// This test binary links no provider type.
	if _, err := FromEnv(env(map[string]string{"OPENAI_API_KEY": "sk"})); err == nil || !strings.Contains(err.Error(), "llm/providers") {
		t.Errorf("unlinked type: %v", err)
	}
}

func TestCheckModel(t *testing.T) {
	r := NewRouter(Provider{Name: "openai", Client: &stub{name: "openai"}, Models: infos("gpt-x"), DefaultModel: "gpt-x"})
	for _, ok := range []string{"openai/gpt-x", "openai/anything", "gpt-x", "bare-name", "openai/", ""} {
		if err := CheckModel(context.Background(), r, ok); err != nil {
			t.Errorf("CheckModel(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"nope/nope", "/", "/gpt-x"} {
		err := CheckModel(context.Background(), r, bad)
		if ae, ok := AsAPIError(err); !ok || ae.Status != 400 || !strings.Contains(err.Error(), bad) {
			t.Errorf("CheckModel(%q) = %v, want a 400 naming it", bad, err)
		}
	}
	if err := CheckModel(context.Background(), NewRouter(), "openai/gpt-x"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("unconfigured: %v", err)
	}
	if err := CheckModel(context.Background(), &stub{}, "nope/nope"); err != nil {
		t.Errorf("a client that is no ModelChecker decides when called: %v", err)
	}
}
