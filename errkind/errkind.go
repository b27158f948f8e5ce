// Package errkind holds the kinds of error Kelpie's packages share, so
// that one package's refusal (a tool the registry does not know, an
// agent that does not exist) matches the same sentinel wherever it is
// classified, without the packages importing each other. Package agent
// re-exports them as agent.ErrNotFound, agent.ErrAlreadyExists and
// agent.ErrInvalid.
package errkind

import "errors"

var (
	// ErrNotFound: the entity (agent, block, tool, …) does not exist.
	ErrNotFound = errors.New("agent: not found")
	// ErrAlreadyExists: a create for an ID or a name that is taken.
	ErrAlreadyExists = errors.New("agent: already exists")
	// ErrInvalid: the request is malformed or over a limit.
	ErrInvalid = errors.New("agent: invalid request")
)
