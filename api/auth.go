package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Optional password authentication.
//
// With a password set (WithPassword), every request except the health
// check must carry it, in one of the two forms Letta servers accept:
//
//	Authorization: Bearer <password>      (Letta's SDKs, letta-code, kelpie's CLI)
//	X-BARE-PASSWORD: password <password>  (Letta's ADE and older clients)
//
// Anything else is answered 401 {"detail": ...} saying how to
// authenticate. Browser CORS preflights (OPTIONS with
// Access-Control-Request-Method) carry no credentials by design and pass
// unauthenticated; they reach no handler that reads or changes data.

// Header names and prefixes of the accepted credentials.
const (
	bearerPrefix       = "bearer "
	barePasswordHeader = "X-BARE-PASSWORD"
	barePasswordPrefix = "password "
)

// WithPassword requires every request except GET /v1/health to carry
// password (see the package's authentication note above). An empty
// password, the default, disables authentication.
func WithPassword(password string) Option {
	return func(o *options) {
		o.password = password
	}
}

// authenticator checks the credentials of requests against a password.
// It keeps only the password's SHA-256, and compares digests in constant
// time, so neither the password's bytes nor its length leak through
// timing.
type authenticator struct {
	enabled bool
	digest  [sha256.Size]byte
}

func newAuthenticator(password string) authenticator {
	if password == "" {
		return authenticator{}
	}
	return authenticator{enabled: true, digest: sha256.Sum256([]byte(password))}
}

// matches reports, in constant time, whether candidate is the password.
func (a authenticator) matches(candidate string) bool {
	d := sha256.Sum256([]byte(candidate))
	return subtle.ConstantTimeCompare(d[:], a.digest[:]) == 1
}

// public reports whether r may pass without credentials: the health
// check (load balancers and `kelpie` itself probe it) and CORS
// preflights.
func public(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p := strings.TrimSuffix(r.URL.Path, "/")
		return p == "/v1/health"
	case http.MethodOptions:
		return r.Header.Get("Access-Control-Request-Method") != ""
	}
	return false
}

// credentials returns the passwords r presents: the token of an
// Authorization header with the Bearer scheme (any case), and the
// password of an X-BARE-PASSWORD header. Either may match; a client such
// as Letta's ADE may send a token meant for someone else beside the
// server password.
func credentials(r *http.Request) []string {
	var out []string
	if auth := r.Header.Get("Authorization"); len(auth) >= len(bearerPrefix) && strings.EqualFold(auth[:len(bearerPrefix)], bearerPrefix) {
		out = append(out, strings.TrimSpace(auth[len(bearerPrefix):]))
	}
	if bare := r.Header.Get(barePasswordHeader); bare != "" {
		out = append(out, strings.TrimPrefix(bare, barePasswordPrefix))
	}
	return out
}

// Details of the 401 answers.
const (
	authHowTo = `send the server password as "Authorization: Bearer <password>" ` +
		`(kelpie CLI: --password or KELPIE_SERVER_PASSWORD; Letta SDKs: the token/api_key option)`
	authMissing = "authentication required: this server has a password; " + authHowTo
	authWrong   = "invalid password: the password sent does not match the server's; " + authHowTo
)

// authorize reports whether r may proceed; if not, it has answered 401.
func (a authenticator) authorize(w http.ResponseWriter, r *http.Request) bool {
	if !a.enabled || public(r) {
		return true
	}
	presented := credentials(r)
	for _, pw := range presented {
		if a.matches(pw) {
			return true
		}
	}
	detail := authMissing
	if len(presented) > 0 {
		detail = authWrong
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="kelpie"`)
	writeError(w, http.StatusUnauthorized, detail)
	return false
}

// RequirePassword wraps next (a handler outside the API, such as
// /metrics) with the API's password check: with a password set, a
// request without it is answered 401 as the API answers one. An empty
// password passes every request.
func RequirePassword(password string, next http.Handler) http.Handler {
	a := newAuthenticator(password)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.authorize(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}
