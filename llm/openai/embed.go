package openai

import (
	"context"
	"fmt"
	"net/http"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/kelpie-ai/kelpie/llm"
	"github.com/kelpie-ai/kelpie/llm/internal/wire"
)

// Embed implements llm.Embedder: one POST {base}/embeddings with every
// input, asking for float vectors (the encoding every compatible server
// knows), retried and its failures normalised as Complete's are. The
// vectors are returned in input order whatever order the server lists
// them in, and checked (llm.EmbedResponse.Check).
func (c *Client) Embed(ctx context.Context, req llm.EmbedRequest) (*llm.EmbedResponse, error) {
	if err := req.Check(c.name); err != nil {
		return nil, err
	}
	params := oai.EmbeddingNewParams{
		Model:          req.Model,
		Input:          oai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: req.Inputs},
		EncodingFormat: oai.EmbeddingNewParamsEncodingFormatFloat,
	}
	var out *llm.EmbedResponse
	err := c.retry.Do(ctx, func(ctx context.Context) error {
		capt := &wire.Capture{}
		res, err := c.embeddings.New(ctx, params, option.WithMiddleware(capt.Middleware))
		if err != nil {
			return wire.Error(ctx, c.name, capt, err)
		}
		out, err = c.embedResponse(res, len(req.Inputs))
		return err
	}, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// embedResponse converts and checks an embeddings response for n inputs.
func (c *Client) embedResponse(res *oai.CreateEmbeddingResponse, n int) (*llm.EmbedResponse, error) {
	bad := func(format string, args ...any) error {
		return &llm.APIError{Provider: c.name, Status: http.StatusBadGateway, Type: "invalid_response", Message: fmt.Sprintf(format, args...)}
	}
	if res == nil {
		return nil, bad("the embeddings response is empty")
	}
	if len(res.Data) != n {
		return nil, bad("the provider returned %d embeddings for %d inputs", len(res.Data), n)
	}
	out := &llm.EmbedResponse{Vectors: make([][]float32, n)}
	for _, d := range res.Data {
		if d.Index < 0 || d.Index >= int64(n) || out.Vectors[d.Index] != nil {
			return nil, bad("the embeddings response has a missing, repeated or out-of-range index")
		}
		if len(d.Embedding) > llm.EmbeddingDimsMax {
			return nil, bad("embedding %d has %d dimensions, over the limit of %d", d.Index, len(d.Embedding), llm.EmbeddingDimsMax)
		}
		v := make([]float32, len(d.Embedding))
		for i, x := range d.Embedding {
			v[i] = float32(x)
		}
		out.Vectors[d.Index] = v
	}
	out.Usage = llm.Usage{PromptTokens: int(res.Usage.PromptTokens), TotalTokens: int(res.Usage.TotalTokens)}
	if out.Usage.TotalTokens == 0 {
		out.Usage.TotalTokens = out.Usage.PromptTokens
	}
	if err := out.Check(c.name, n); err != nil {
		return nil, err
	}
	return out, nil
}
