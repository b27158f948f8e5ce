package api

import (
	"net/http"
	"strings"
)

// Parameters validated as FastAPI validates them for Letta: a bad value
// answers 422 with its location, {"detail": [{"loc": ["query", name,
// index?], "msg", "type"}]}. (queryBool and queryTime are in archival.go.)

// fieldError is one item of FastAPI's 422 body with a precise location
// (strings and list indexes).
type fieldError struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// writeFieldError answers 422 naming the invalid field.
func writeFieldError(w http.ResponseWriter, loc []any, msg, typ string) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string][]fieldError{"detail": {{Loc: loc, Msg: msg, Type: typ}}})
}

// literalMsg is pydantic's message for a value outside a Literal.
func literalMsg(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + v + "'"
	}
	if len(quoted) == 1 {
		return "Input should be " + quoted[0]
	}
	return "Input should be " + strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}

// queryLiteral returns the query parameter name, which must be one of
// values when present ("" when absent); otherwise it answers 422.
func queryLiteral(w http.ResponseWriter, r *http.Request, name string, values ...string) (string, bool) {
	v, present := r.URL.Query()[name]
	if !present {
		return "", true
	}
	for _, ok := range values {
		if v[0] == ok {
			return v[0], true
		}
	}
	writeFieldError(w, []any{"query", name}, literalMsg(values), "literal_error")
	return "", false
}
