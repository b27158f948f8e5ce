package llm

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
)

// embedStub is a stub that also embeds: each vector is {len(text), index}.
type embedStub struct {
	stub
	embedAsked []string
}

func (s *embedStub) Embed(_ context.Context, req EmbedRequest) (*EmbedResponse, error) {
	s.embedAsked = append(s.embedAsked, req.Model)
	out := &EmbedResponse{}
	for i, in := range req.Inputs {
		out.Vectors = append(out.Vectors, []float32{float32(len(in)), float32(i)})
	}
	return out, nil
}

func TestRouterEmbed(t *testing.T) {
	oai, ant := &embedStub{stub: stub{name: "openai"}}, &stub{name: "anthropic"}
	r := NewRouter(
		Provider{Name: "openai", Client: oai, Models: infos("gpt-x", "text-embedding-3-small"), DefaultModel: "gpt-x"},
		Provider{Name: "anthropic", Client: ant, Models: infos("claude-y"), DefaultModel: "claude-y"},
	)
	ctx := context.Background()
	res, err := r.Embed(ctx, EmbedRequest{Model: "openai/text-embedding-3-small", Inputs: []string{"ab", "abcd"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Vectors) != 2 || res.Vectors[1][0] != 4 || oai.embedAsked[0] != "text-embedding-3-small" {
		t.Fatalf("res = %+v, asked %v", res, oai.embedAsked)
	}
	// A bare name listed by a provider goes to it, as for chat.
	if _, err := r.Embed(ctx, EmbedRequest{Model: "text-embedding-3-small", Inputs: []string{"x"}}); err != nil || oai.embedAsked[1] != "text-embedding-3-small" {
		t.Fatalf("bare name: %v, %v", err, oai.embedAsked)
	}
	if err := r.CheckEmbeddingModel(ctx, "openai/nomic-embed-text"); err != nil {
		t.Errorf("check of an openai handle: %v", err)
	}

	for _, tc := range []struct {
		model, typ, says string
	}{
		{"anthropic/claude-y", "embeddings_unsupported", "no embeddings endpoint"},
		{"claude-y", "embeddings_unsupported", "no embeddings endpoint"},
		{"", "no_model", "provider/model"},
		{"openai/", "no_model", "provider/model"},
		{"mistral/embed", "unknown_provider", `"mistral"`},
	} {
		for name, call := range map[string]func() error{
			"Embed": func() error {
				_, err := r.Embed(ctx, EmbedRequest{Model: tc.model, Inputs: []string{"x"}})
				return err
			},
			"CheckEmbeddingModel": func() error { return CheckEmbeddingModel(ctx, r, tc.model) },
		} {
			err := call()
			ae, ok := AsAPIError(err)
			if !ok || ae.Status != http.StatusBadRequest || ae.Type != tc.typ || !strings.Contains(ae.Message, tc.says) {
				t.Errorf("%s(%q) = %#v, want a 400 %s saying %q", name, tc.model, err, tc.typ, tc.says)
				continue
			}
			if !errors.Is(err, ErrInvalidRequest) || HTTPStatus(err) != http.StatusBadRequest {
				t.Errorf("%s(%q): class or status of %v wrong", name, tc.model, err)
			}
		}
	}
	if len(ant.asked) != 0 || len(oai.embedAsked) != 2 {
		t.Errorf("unexpected calls: anthropic %v, openai %v", ant.asked, oai.embedAsked)
	}
}

func TestEmbedUnconfigured(t *testing.T) {
	ctx := context.Background()
	for name, e := range map[string]Embedder{"router": NewRouter(), "Unconfigured": Unconfigured{}} {
		if _, err := e.Embed(ctx, EmbedRequest{Model: "openai/text-embedding-3-small", Inputs: []string{"x"}}); !errors.Is(err, ErrNotConfigured) {
			t.Errorf("%s: Embed err = %v", name, err)
		}
		if err := CheckEmbeddingModel(ctx, e, "openai/text-embedding-3-small"); !errors.Is(err, ErrNotConfigured) || HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("%s: CheckEmbeddingModel err = %v", name, err)
		}
	}
	if err := CheckEmbeddingModel(ctx, nil, "openai/x"); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("nil embedder: %v", err)
	}
}

func TestEmbedRequestCheck(t *testing.T) {
	ok := EmbedRequest{Model: "m", Inputs: []string{"a", "b"}}
	if err := ok.Check("p"); err != nil {
		t.Fatal(err)
	}
	many := make([]string, EmbedInputsMax+1)
	for i := range many {
		many[i] = "x"
	}
	big := strings.Repeat("x", EmbedInputBytesMax)
	total := make([]string, EmbedRequestBytesMax/EmbedInputBytesMax+1)
	for i := range total {
		total[i] = big
	}
	for _, tc := range []struct {
		req  EmbedRequest
		says string
	}{
		{EmbedRequest{Inputs: []string{"a"}}, "no model"},
		{EmbedRequest{Model: "m"}, "1..128 texts, got 0"},
		{EmbedRequest{Model: "m", Inputs: many}, "got 129"},
		{EmbedRequest{Model: "m", Inputs: []string{"a", ""}}, "input 1 is empty"},
		{EmbedRequest{Model: "m", Inputs: []string{big + "x"}}, "over the limit of 262144"},
		{EmbedRequest{Model: "m", Inputs: total}, "total"},
	} {
		err := tc.req.Check("p")
		ae, ok := AsAPIError(err)
		if !ok || ae.Status != http.StatusBadRequest || ae.Provider != "p" || !strings.Contains(ae.Message, tc.says) {
			t.Errorf("Check(%d inputs) = %v, want a 400 saying %q", len(tc.req.Inputs), err, tc.says)
		}
	}
}

func TestEmbedResponseCheck(t *testing.T) {
	good := &EmbedResponse{Vectors: [][]float32{{1, 0}, {0, 1}}}
	if err := good.Check("p", 2); err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		resp *EmbedResponse
		n    int
		says string
	}{
		{good, 3, "2 embeddings for 3 inputs"},
		{&EmbedResponse{Vectors: [][]float32{{}}}, 1, "0 dimensions"},
		{&EmbedResponse{Vectors: [][]float32{make([]float32, EmbeddingDimsMax+1)}}, 1, "outside 1..8192"},
		{&EmbedResponse{Vectors: [][]float32{{1, 2}, {1}}}, 2, "different dimensions"},
		{&EmbedResponse{Vectors: [][]float32{{1, nan}}}, 1, "non-finite"},
	} {
		err := tc.resp.Check("p", tc.n)
		ae, ok := AsAPIError(err)
		if !ok || ae.Status != http.StatusBadGateway || !strings.Contains(ae.Message, tc.says) {
			t.Errorf("Check = %v, want a 502 saying %q", err, tc.says)
		}
	}
}
