package fakellm

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"unicode"
)

type embedRequest struct {
	Input          json.RawMessage `json:"input"`
	Model          string          `json:"model"`
	Dimensions     *int            `json:"dimensions"`
	EncodingFormat string          `json:"encoding_format"`
}

type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or a base64 string
}

// embeddings answers POST /v1/embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req embedRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Model == "" {
		writeError(w, badRequest("model", "missing_required_parameter", "You must provide a model parameter."))
		return
	}
	dims := s.opts.Dimensions
	if req.Dimensions != nil {
		dims = *req.Dimensions
		if dims < 1 || dims > MaxDimensions {
			writeError(w, badRequest("dimensions", "invalid_value", "Invalid 'dimensions': %d. Expected a value between 1 and %d.", dims, MaxDimensions))
			return
		}
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		writeError(w, badRequest("encoding_format", "invalid_value", "Invalid value for 'encoding_format': '%s'. Supported values are: 'float' and 'base64'.", req.EncodingFormat))
		return
	}
	inputs, e := embedInputs(req.Input)
	if e != nil {
		writeError(w, e)
		return
	}
	resp := struct {
		Object string      `json:"object"`
		Data   []embedding `json:"data"`
		Model  string      `json:"model"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}{Object: "list", Data: []embedding{}, Model: req.Model}
	for i, text := range inputs {
		vec := Embed(text, dims)
		var v any = vec
		if req.EncodingFormat == "base64" {
			b := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(x))
			}
			v = base64.StdEncoding.EncodeToString(b)
		}
		resp.Data = append(resp.Data, embedding{Object: "embedding", Index: i, Embedding: v})
		resp.Usage.PromptTokens += Tokens(text)
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	writeJSON(w, http.StatusOK, resp)
}

// embedInputs reads an embeddings input: a string, an array of strings,
// an array of token IDs, or an array of arrays of token IDs. Token IDs
// are embedded as the words "tok<ID>".
func embedInputs(raw json.RawMessage) ([]string, *apiError) {
	raw = bytes.TrimSpace(raw)
	invalid := func(why string) *apiError {
		return badRequest("input", "invalid_value", "Invalid 'input': %s. Expected a non-empty string, an array of non-empty strings, or token arrays (at most %d inputs).", why, maxEmbedInputs)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("input", "missing_required_parameter", "Missing required parameter: 'input'.")
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil, invalid("empty string")
		}
		return []string{one}, nil
	}
	var many []string
	var tokens []int
	var tokenLists [][]int
	switch {
	case json.Unmarshal(raw, &many) == nil:
	case json.Unmarshal(raw, &tokens) == nil:
		many = []string{tokenText(tokens)}
	case json.Unmarshal(raw, &tokenLists) == nil:
		for _, l := range tokenLists {
			many = append(many, tokenText(l))
		}
	default:
		return nil, invalid("wrong type")
	}
	if len(many) == 0 || len(many) > maxEmbedInputs {
		return nil, invalid(fmt.Sprintf("%d inputs", len(many)))
	}
	for i, s := range many {
		if s == "" {
			return nil, invalid(fmt.Sprintf("input[%d] is empty", i))
		}
	}
	return many, nil
}

func tokenText(ids []int) string {
	words := make([]string, len(ids))
	for i, id := range ids {
		words[i] = fmt.Sprintf("tok%d", id)
	}
	return strings.Join(words, " ")
}

// stopwords carry no meaning for the fake embedding.
var stopwords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be but by did do does for from had has have he her his i in is it
		its me my of on or our she so that the their them they this to was we were what when where which who why will
		with you your`) {
		stopwords[w] = true
	}
}

// Embed returns the fake embedding of text with dims dimensions: a hashed
// bag of its lower-cased words (letters and digits; common English
// stopwords left out), each word adding ±1 to one dimension chosen by its
// FNV-1a hash, L2-normalized. Texts sharing most words get vectors with a
// high cosine similarity; unrelated texts get a low one (hash collisions
// aside). A text with no words gets a unit vector chosen by its hash.
func Embed(text string, dims int) []float32 {
	if dims < 1 {
		dims = DefaultDimensions
	}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
	acc := make([]float64, dims)
	add := func(keep func(string) bool) float64 {
		for _, w := range words {
			if keep(w) {
				h := hash64(w)
				sign := 1.0
				if h>>63 == 1 {
					sign = -1
				}
				acc[h%uint64(dims)] += sign
			}
		}
		var sq float64
		for _, x := range acc {
			sq += x * x
		}
		return sq
	}
	sq := add(func(w string) bool { return !stopwords[w] })
	if sq == 0 {
		sq = add(func(string) bool { return true }) // only stopwords
	}
	if sq == 0 {
		acc[hash64(text)%uint64(dims)], sq = 1, 1
	}
	norm := math.Sqrt(sq)
	vec := make([]float32, dims)
	for i, x := range acc {
		vec[i] = float32(x / norm)
	}
	return vec
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
