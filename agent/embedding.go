package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Embeddings. An agent may name an embedding model (Agent.Embedding, a
// handle such as "openai/text-embedding-3-small"). Then every passage it
// stores carries a vector computed with that model, and a search with a
// query ranks by cosine similarity against the passages embedded with the
// same model. The vectors are always computed outside the actor (an
// invocation does no network I/O): the service embeds a passage before
// asking to insert it, a query before asking to search, and the text of
// the built-in archival tools' calls before it applies a step's answer;
// requests carry the vectors and the model that computed them, and the
// actor refuses ones computed with a model that is not the agent's
// (EmbeddingModelError), so a handle changed meanwhile is never mixed up.
// An agent without an embedding model stores no vectors and searches by
// full-text ranking.

// EmbeddingHandleBytesMax bounds an agent's embedding model handle.
const EmbeddingHandleBytesMax = 256

// toolEmbeddingErrorBytesMax bounds the error text carried for one tool
// call whose embedding failed.
const toolEmbeddingErrorBytesMax = 4 << 10

// ErrEmbeddingModel is matched (errors.Is) by every *EmbeddingModelError.
var ErrEmbeddingModel = errors.New("agent: embedding model mismatch")

// EmbeddingModelError refuses a request whose embedding model (its
// EmbeddingModel field, "" for none) is not the agent's: the caller should
// embed with Want (nothing if Want is "") and send the request again.
type EmbeddingModelError struct {
	// Want is the agent's embedding model handle; "" if it has none.
	Want string
	// Got is the model the request said it used.
	Got string
}

// Error implements error.
func (e *EmbeddingModelError) Error() string {
	return fmt.Sprintf("agent: the request was embedded with %s, but the agent's embedding model is %s", modelName(e.Got), modelName(e.Want))
}

// Is makes errors.Is(err, ErrEmbeddingModel) hold.
func (e *EmbeddingModelError) Is(target error) bool { return target == ErrEmbeddingModel }

func modelName(handle string) string {
	if handle == "" {
		return "no model"
	}
	return fmt.Sprintf("%q", handle)
}

// checkEmbeddingModel refuses a request embedded with model if that is
// not ag's embedding model.
func checkEmbeddingModel(ag *Agent, model string) error {
	if ag != nil && ag.Embedding != model {
		return &EmbeddingModelError{Want: ag.Embedding, Got: model}
	}
	return nil
}

// checkPassageEmbedding validates the embedding of a passage to insert:
// computed with the agent's model, present if the agent has one, bounded.
func checkPassageEmbedding(ag *Agent, req *InsertPassageRequest) error {
	if err := checkEmbeddingModel(ag, req.EmbeddingModel); err != nil {
		return err
	}
	if req.EmbeddingModel != "" && len(req.Embedding) == 0 {
		return invalidf("the agent embeds its passages with %q, and the passage has no embedding", req.EmbeddingModel)
	}
	return checkEmbedding("embedding", req.Embedding)
}

// checkEmbeddingHandle validates an agent's embedding model handle.
func checkEmbeddingHandle(handle string) error {
	if err := checkText("embedding", handle, EmbeddingHandleBytesMax); err != nil {
		return err
	}
	if strings.TrimSpace(handle) != handle {
		return invalidf("embedding model %q has surrounding spaces", handle)
	}
	return nil
}

// ToolEmbeddings are the vectors the service computed, outside the actor,
// for the text of built-in archival tool calls (see ToolEmbeddingText)
// before it asks the actor to run them: for the calls of a step's answer
// (ApplyRequest) or for the approved calls a send answers (SendRequest).
type ToolEmbeddings struct {
	// Model is the embedding model handle the vectors were computed with.
	Model string `json:"model"`
	// Calls maps a tool call's ID to its vector, or to why there is none.
	Calls map[string]ToolEmbedding `json:"calls,omitempty"`
}

// ToolEmbedding is the embedding of one tool call's text: a vector, or
// the error that prevented computing it.
type ToolEmbedding struct {
	Vector []float32 `json:"vector,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// NewToolEmbeddingError returns a ToolEmbedding carrying err, its text
// bounded by toolEmbeddingErrorBytesMax.
func NewToolEmbeddingError(err error) ToolEmbedding {
	const ellipsis = "…"
	msg := err.Error()
	if len(msg) > toolEmbeddingErrorBytesMax {
		msg = strings.ToValidUTF8(msg[:toolEmbeddingErrorBytesMax-len(ellipsis)], "") + ellipsis
	}
	return ToolEmbedding{Error: msg}
}

// check validates e as an actor receives it.
func (e *ToolEmbeddings) check() error {
	if e == nil {
		return nil
	}
	for id, te := range e.Calls {
		if err := checkEmbedding("embedding of tool call "+id, te.Vector); err != nil {
			return err
		}
		if len(te.Error) > toolEmbeddingErrorBytesMax {
			return invalidf("embedding error of tool call %s is %d bytes, over the limit of %d", id, len(te.Error), toolEmbeddingErrorBytesMax)
		}
	}
	return nil
}

// PassageEmbeddable reports whether a passage's text is embedded before
// it is inserted: a text the insert would refuse (empty, over
// PassageBytesMax, not UTF-8) is not, and the insert then fails for that
// reason, not for want of a vector.
func PassageEmbeddable(text string) bool {
	return text != "" && len(text) <= PassageBytesMax && utf8.ValidString(text)
}

// QueryEmbeddable reports whether a search query is embedded: not when it
// is blank (the newest passages are returned) or one the search would
// refuse (over SearchQueryBytesMax, not UTF-8).
func QueryEmbeddable(query string) bool {
	return strings.TrimSpace(query) != "" && len(query) <= SearchQueryBytesMax && utf8.ValidString(query)
}

// ToolEmbeddingText returns the text a call to a built-in tool needs
// embedded, if any: the content of an archival_memory_insert
// (PassageEmbeddable), the query of an archival_memory_search
// (QueryEmbeddable). Malformed arguments need nothing: the call fails
// when it runs.
func ToolEmbeddingText(name, arguments string) (string, bool) {
	field, embeddable := "", PassageEmbeddable
	switch name {
	case ToolArchivalMemoryInsert:
		field = "content"
	case ToolArchivalMemorySearch:
		field, embeddable = "query", QueryEmbeddable
	default:
		return "", false
	}
	var args map[string]any
	if json.Unmarshal([]byte(arguments), &args) != nil {
		return "", false
	}
	text, ok := args[field].(string)
	if !ok || !embeddable(text) {
		return "", false
	}
	return text, true
}

// embedding returns the vector the service computed, with the agent's
// embedding model, for the tool call being run (t.callID); nil if the
// agent has no embedding model. An error says why there is none: it goes
// back to the model as the tool's error.
func (t *turn) embedding() ([]float32, error) {
	model := t.ag.Embedding
	if model == "" {
		return nil, nil
	}
	if t.embeds == nil || t.embeds.Model != model {
		return nil, fmt.Errorf("no embedding was computed with the agent's embedding model %q for this call (the agent's model may have changed meanwhile); try again", model)
	}
	te, ok := t.embeds.Calls[t.callID]
	switch {
	case ok && te.Error != "":
		return nil, fmt.Errorf("embedding with %q failed: %s", model, te.Error)
	case !ok || len(te.Vector) == 0:
		return nil, fmt.Errorf("no embedding was computed with %q for this call", model)
	}
	return te.Vector, nil
}
