// Package tuple encodes keys as tuples of strings and unsigned integers
// whose byte order matches the tuple order, so storage range scans walk
// tuples in order: ("a", 2) < ("a", 10) < ("b").
//
// Each element is self-delimiting, so the encoding of a tuple is a prefix of
// the encoding of every longer tuple that starts with the same elements.
// Strings are 0x02, the bytes with 0x00 escaped as 0x00 0xff, then 0x00;
// unsigned integers are 0x15 and eight big-endian bytes.
package tuple

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	tagString = 0x02
	tagUint   = 0x15
)

// ErrMalformed is returned by Unpack for bytes that are not a tuple.
var ErrMalformed = errors.New("tuple: malformed key")

// Key is an encoded tuple.
type Key []byte

// Pack encodes elems, each a string or a uint64, into a key. It panics on
// any other type: keys are built from literals and IDs, never from input
// of unknown type.
func Pack(elems ...any) Key {
	var k Key
	for _, e := range elems {
		switch v := e.(type) {
		case string:
			k = k.AppendString(v)
		case uint64:
			k = k.AppendUint(v)
		default:
			panic(fmt.Sprintf("tuple.Pack: unsupported element type %T", e))
		}
	}
	return k
}

// AppendString returns k extended by the string element s.
func (k Key) AppendString(s string) Key {
	out := append(bytes.Clone(k), tagString)
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == 0 {
			out = append(out, 0xff)
		}
	}
	return append(out, 0)
}

// AppendUint returns k extended by the integer element u.
func (k Key) AppendUint(u uint64) Key {
	return binary.BigEndian.AppendUint64(append(bytes.Clone(k), tagUint), u)
}

// End returns the exclusive upper bound of every key that extends k, for
// use as a scan's End with k as its Start.
func (k Key) End() Key { return append(bytes.Clone(k), 0xff) }

// Unpack decodes a key into its elements (strings and uint64s).
func Unpack(k []byte) ([]any, error) {
	var out []any
	for len(k) > 0 {
		switch k[0] {
		case tagUint:
			if len(k) < 9 {
				return nil, fmt.Errorf("%w: short integer", ErrMalformed)
			}
			out = append(out, binary.BigEndian.Uint64(k[1:9]))
			k = k[9:]
		case tagString:
			var s []byte
			i := 1
			for ; ; i++ {
				if i >= len(k) {
					return nil, fmt.Errorf("%w: unterminated string", ErrMalformed)
				}
				if k[i] == 0 {
					if i+1 < len(k) && k[i+1] == 0xff {
						s = append(s, 0)
						i++
						continue
					}
					break
				}
				s = append(s, k[i])
			}
			out = append(out, string(s))
			k = k[i+1:]
		default:
			return nil, fmt.Errorf("%w: unknown tag 0x%02x", ErrMalformed, k[0])
		}
	}
	return out, nil
}
