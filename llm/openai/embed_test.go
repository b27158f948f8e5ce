package openai

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/scripted"
)

// embeddings answers in reverse index order, as a server may.
const embeddingsReply = `{"object":"list","model":"text-embedding-3-small",
 "data":[{"object":"embedding","index":1,"embedding":[0,1,0.5]},{"object":"embedding","index":0,"embedding":[1,0,-0.5]}],
 "usage":{"prompt_tokens":7,"total_tokens":7}}`

func TestEmbed(t *testing.T) {
	f := scripted.New(t, jsonReply(200, embeddingsReply))
	res, err := newClient(t, f, "sk-test").Embed(context.Background(), llm.EmbedRequest{Model: "text-embedding-3-small", Inputs: []string{"cats purr", "dogs bark"}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float32{{1, 0, -0.5}, {0, 1, 0.5}}
	if !reflect.DeepEqual(res.Vectors, want) {
		t.Errorf("vectors = %v, want %v (in input order)", res.Vectors, want)
	}
	if res.Usage != (llm.Usage{PromptTokens: 7, TotalTokens: 7}) {
		t.Errorf("usage = %+v", res.Usage)
	}
	req := f.Request(0)
	if req.Path != "/v1/embeddings" || req.Header.Get("Authorization") != "Bearer sk-test" {
		t.Errorf("request %s with auth %q", req.Path, req.Header.Get("Authorization"))
	}
	if req.Body["model"] != "text-embedding-3-small" || req.Body["encoding_format"] != "float" ||
		!reflect.DeepEqual(req.Body["input"], []any{"cats purr", "dogs bark"}) {
		t.Errorf("request body = %v", req.Body)
	}
}

func TestEmbedRetriesAndErrors(t *testing.T) {
	ctx := context.Background()
	in := llm.EmbedRequest{Model: "m", Inputs: []string{"a", "b"}}

	// 429 then success: retried, as a chat call is.
	f := scripted.New(t, jsonReply(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`), jsonReply(200, embeddingsReply))
	if _, err := newClient(t, f, "k").Embed(ctx, in); err != nil || f.Attempts() != 2 {
		t.Fatalf("after a 429: %v, %d attempts", err, f.Attempts())
	}

	// Ollama's error shape for an unknown model: a 404, kept and not retried.
	f = scripted.New(t, jsonReply(404, `{"error":"model \"nomic-embed-text\" not found, try pulling it first"}`))
	_, err := newClient(t, f, "k").Embed(ctx, in)
	ae, ok := llm.AsAPIError(err)
	if !ok || ae.Status != 404 || !strings.Contains(ae.Message, "try pulling it first") || f.Attempts() != 1 {
		t.Fatalf("404: %#v after %d attempts", err, f.Attempts())
	}
	if !errors.Is(err, llm.ErrInvalidRequest) || llm.HTTPStatus(err) != http.StatusBadRequest {
		t.Errorf("404 classes wrong: %v", err)
	}

	// A 500 exhausts the attempts and maps to 502.
	f = scripted.New(t, jsonReply(500, `{"error":{"message":"boom","type":"server_error"}}`))
	_, err = newClient(t, f, "k").Embed(ctx, in)
	if llm.HTTPStatus(err) != http.StatusBadGateway || f.Attempts() != 3 {
		t.Errorf("500: %v after %d attempts", err, f.Attempts())
	}

	// Malformed answers are 502s.
	for _, body := range []string{
		`{"object":"list","data":[{"index":0,"embedding":[1,2]}],"usage":{}}`,                                 // one vector for two inputs
		`{"object":"list","data":[{"index":0,"embedding":[1,2]},{"index":0,"embedding":[1,2]}],"usage":{}}`,   // repeated index
		`{"object":"list","data":[{"index":0,"embedding":[1,2]},{"index":5,"embedding":[1,2]}],"usage":{}}`,   // out of range
		`{"object":"list","data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1,2,3]}],"usage":{}}`, // mixed dimensions
		`{"object":"list","data":[{"index":0,"embedding":[]},{"index":1,"embedding":[]}],"usage":{}}`,         // empty vectors
	} {
		f = scripted.New(t, jsonReply(200, body))
		_, err = newClient(t, f, "k").Embed(ctx, in)
		ae, ok := llm.AsAPIError(err)
		if !ok || ae.Status != http.StatusBadGateway || ae.Type != "invalid_response" || llm.HTTPStatus(err) != http.StatusBadGateway {
			t.Errorf("%s: err = %#v", body, err)
		}
	}

	// A request over the limits is refused before anything is sent.
	f = scripted.New(t, jsonReply(200, embeddingsReply))
	_, err = newClient(t, f, "k").Embed(ctx, llm.EmbedRequest{Model: "m", Inputs: []string{""}})
	if ae, ok := llm.AsAPIError(err); !ok || ae.Status != http.StatusBadRequest || f.Attempts() != 0 {
		t.Errorf("empty input: %#v, %d attempts", err, f.Attempts())
	}
}

// The provider built from a configuration embeds: llm.FromEnv's router
// reaches it by handle.
func TestProviderEmbedsThroughRouter(t *testing.T) {
	f := scripted.New(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models" { // the provider's background model discovery
			jsonReply(200, `{"object":"list","data":[]}`)(w, r)
			return
		}
		jsonReply(200, embeddingsReply)(w, r)
	})
	r, err := llm.FromEnv(func(k string) string {
		if k == llm.EnvOpenAIBaseURL {
			return f.URL + "/v1"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Embed(context.Background(), llm.EmbedRequest{Model: "openai/text-embedding-3-small", Inputs: []string{"a", "b"}})
	if err != nil || len(res.Vectors) != 2 {
		t.Fatalf("%v, %+v", err, res)
	}
}
