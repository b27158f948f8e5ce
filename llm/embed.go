package llm

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// Embedding limits. A request over them fails before anything is sent,
// with an *APIError of Status 400 (ErrInvalidRequest); a response that
// breaks them fails with Status 502 (ErrUnavailable).
const (
	// EmbedInputsMax bounds the texts of one EmbedRequest.
	EmbedInputsMax = 128
	// EmbedInputBytesMax bounds one text of an EmbedRequest. Providers
	// have their own, usually smaller, bound in tokens (8192 for OpenAI's
	// models), which they enforce with a 400.
	EmbedInputBytesMax = 256 << 10
	// EmbedRequestBytesMax bounds the texts of one EmbedRequest together.
	EmbedRequestBytesMax = 4 << 20
	// EmbeddingDimsMax bounds the dimension of a returned vector.
	EmbeddingDimsMax = 8192
)

// EmbedRequest asks for the embeddings of texts, one vector per text.
type EmbedRequest struct {
	// Model names the embedding model: a handle "provider/model" when the
	// request goes through a Router, the provider's own model name
	// otherwise. It is required: there is no default embedding model.
	Model string `json:"model"`
	// Inputs are the texts, 1..EmbedInputsMax of them, each non-empty and
	// at most EmbedInputBytesMax bytes, EmbedRequestBytesMax in all.
	Inputs []string `json:"inputs"`
}

// EmbedResponse holds the vectors of an EmbedRequest.
type EmbedResponse struct {
	// Vectors are the embeddings, in the order of the request's Inputs,
	// all of the same dimension (1..EmbeddingDimsMax), with finite values.
	Vectors [][]float32 `json:"vectors"`
	// Usage counts the tokens embedded (CompletionTokens is 0).
	Usage Usage `json:"usage"`
}

// Embedder computes embeddings. Implementations must honour ctx and
// return, on failure, an *APIError (or an error wrapping one) so that
// HTTPStatus maps it like a chat failure.
type Embedder interface {
	Embed(ctx context.Context, req EmbedRequest) (*EmbedResponse, error)
}

// Check validates req against the embedding limits. provider names the
// provider in the error ("" for a Router).
func (req *EmbedRequest) Check(provider string) error {
	invalid := func(format string, args ...any) error {
		return &APIError{Provider: provider, Status: http.StatusBadRequest, Type: "invalid_request", Message: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(req.Model) == "" {
		return invalid("the embedding request names no model")
	}
	if len(req.Inputs) == 0 || len(req.Inputs) > EmbedInputsMax {
		return invalid("an embedding request carries 1..%d texts, got %d", EmbedInputsMax, len(req.Inputs))
	}
	total := 0
	for i, in := range req.Inputs {
		if in == "" {
			return invalid("embedding input %d is empty", i)
		}
		if len(in) > EmbedInputBytesMax {
			return invalid("embedding input %d is %d bytes, over the limit of %d", i, len(in), EmbedInputBytesMax)
		}
		total += len(in)
	}
	if total > EmbedRequestBytesMax {
		return invalid("embedding inputs total %d bytes, over the limit of %d", total, EmbedRequestBytesMax)
	}
	return nil
}

// Check validates a provider's answer to a request of n inputs: n vectors
// of one dimension within EmbeddingDimsMax, with finite values.
func (resp *EmbedResponse) Check(provider string, n int) error {
	bad := func(format string, args ...any) error {
		return &APIError{Provider: provider, Status: http.StatusBadGateway, Type: "invalid_response", Message: fmt.Sprintf(format, args...)}
	}
	if len(resp.Vectors) != n {
		return bad("the provider returned %d embeddings for %d inputs", len(resp.Vectors), n)
	}
	for i, v := range resp.Vectors {
		if len(v) == 0 || len(v) > EmbeddingDimsMax {
			return bad("embedding %d has %d dimensions, outside 1..%d", i, len(v), EmbeddingDimsMax)
		}
		if len(v) != len(resp.Vectors[0]) {
			return bad("embeddings of different dimensions in one response (%d and %d)", len(resp.Vectors[0]), len(v))
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return bad("embedding %d has a non-finite value", i)
			}
		}
	}
	return nil
}

// EmbeddingChecker is an Embedder that can tell, without embedding
// anything, whether it would accept a model name: a Router checks that
// the handle names a provider that has an embeddings endpoint.
type EmbeddingChecker interface {
	Embedder
	// CheckEmbeddingModel returns nil if Embed would send requests for
	// model to a provider, and otherwise the error Embed would return.
	CheckEmbeddingModel(ctx context.Context, model string) error
}

// CheckEmbeddingModel checks model with e's CheckEmbeddingModel, if e
// has one; a nil or unconfigured e answers ErrNotConfigured.
func CheckEmbeddingModel(ctx context.Context, e Embedder, model string) error {
	if e == nil {
		return errNotConfiguredAdvice
	}
	if c, ok := e.(interface{ Configured() bool }); ok && !c.Configured() {
		return errNotConfiguredAdvice
	}
	if c, ok := e.(EmbeddingChecker); ok {
		return c.CheckEmbeddingModel(ctx, model)
	}
	if strings.TrimSpace(model) == "" {
		return &APIError{Status: http.StatusBadRequest, Type: "no_model", Message: "no embedding model named"}
	}
	return nil
}

// Embed implements Embedder: it fails with ErrNotConfigured.
func (Unconfigured) Embed(context.Context, EmbedRequest) (*EmbedResponse, error) {
	return nil, errNotConfiguredAdvice
}

// Embed implements Embedder: the request goes to the provider its model
// handle names, by the rules of Complete, except that the model must be
// named (no provider's default chat model is an embedding model) and the
// provider's client must have an embeddings endpoint (Anthropic has none:
// such a handle fails with an *APIError of Status 400).
func (r *Router) Embed(ctx context.Context, req EmbedRequest) (*EmbedResponse, error) {
	e, model, err := r.routeEmbedding(ctx, req.Model)
	if err != nil {
		return nil, err
	}
	req.Model = model
	return e.Embed(ctx, req)
}

// CheckEmbeddingModel implements EmbeddingChecker: the errors of Embed
// that routing alone decides.
func (r *Router) CheckEmbeddingModel(ctx context.Context, model string) error {
	_, _, err := r.routeEmbedding(ctx, model)
	return err
}

// routeEmbedding picks the provider for an embedding model.
func (r *Router) routeEmbedding(ctx context.Context, model string) (Embedder, string, error) {
	if len(r.providers) == 0 {
		return nil, "", errNotConfiguredAdvice
	}
	if prefix, rest, ok := strings.Cut(model, "/"); strings.TrimSpace(model) == "" || (ok && rest == "" && prefix != "") {
		return nil, "", &APIError{
			Status: http.StatusBadRequest, Type: "no_model",
			Message: fmt.Sprintf("embedding model %q: name the model as provider/model (for example openai/text-embedding-3-small)", model),
		}
	}
	p, name, err := r.route(ctx, model)
	if err != nil {
		return nil, "", err
	}
	e, ok := p.Client.(Embedder)
	if !ok {
		return nil, "", &APIError{
			Provider: p.Name, Status: http.StatusBadRequest, Type: "embeddings_unsupported",
			Message: fmt.Sprintf("embedding model %q: provider %q has no embeddings endpoint; "+
				"name an embedding model of an OpenAI-compatible provider, such as openai/text-embedding-3-small", model, p.Name),
		}
	}
	return e, name, nil
}
