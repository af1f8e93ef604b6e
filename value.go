package concord

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Value is a field value: a JSON-compatible Go value. The supported dynamic
// types are:
//
//   - nil (JSON null: the field exists and is empty)
//   - bool, string
//   - every integer and floating-point type, and [json.Number]
//   - [time.Time]
//   - []any and map[string]any whose elements are themselves Values,
//     and []string and map[string]string for convenience
//
// Numbers are compared by their exact decimal value: int64(1), 1.0,
// json.Number("1.00") and uint8(1) are the same Value. Times are compared as
// instants: the zone they are written in does not matter. Maps are compared
// by content, whatever their iteration order. NaN and infinities are not
// JSON and are rejected.
type Value = any

// ErrUnsupportedValue is returned (wrapped in a [*ValueError]) for a value
// whose dynamic type is not one of the types [Value] lists.
var ErrUnsupportedValue = errors.New("unsupported value")

// ValueError reports a value that cannot be a [Value]. Path names where in
// the value the problem is (".items[3].price"), empty for the top level.
type ValueError struct {
	Path   string
	Value  any
	Reason string
	Err    error // ErrUnsupportedValue
}

// Error describes the value, where it is and why it is rejected.
func (e *ValueError) Error() string {
	where := ""
	if e.Path != "" {
		where = " at " + e.Path
	}
	return fmt.Sprintf("%s%s: %s (%T)", e.Err, where, e.Reason, e.Value)
}

// Unwrap returns ErrUnsupportedValue.
func (e *ValueError) Unwrap() error { return e.Err }

func badValue(path string, v any, reason string) error {
	return &ValueError{Path: path, Value: v, Reason: reason, Err: ErrUnsupportedValue}
}

// CheckValue returns nil if v is a supported [Value] and a [*ValueError]
// naming the offending element otherwise.
func CheckValue(v Value) error {
	_, err := appendCanonical(nil, v, "", true)
	return err
}

// EqualValues reports whether a and b are the same Value under the canonical
// equality described on [Value]. Unsupported values are equal to nothing,
// not even themselves.
func EqualValues(a, b Value) bool {
	// Fast paths for the common same-type scalars; everything else goes
	// through the canonical encoding.
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x == y
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	case int:
		if y, ok := b.(int); ok {
			return x == y
		}
	case int64:
		if y, ok := b.(int64); ok {
			return x == y
		}
	case nil:
		return b == nil
	}
	var ab, bb [128]byte
	ea, err := appendCanonical(ab[:0], a, "", false)
	if err != nil {
		return false
	}
	eb, err := appendCanonical(bb[:0], b, "", false)
	if err != nil {
		return false
	}
	return string(ea) == string(eb)
}

// HashValue returns the canonical 64-bit hash of v: equal Values (see [EqualValues])
// have equal hashes, on every machine and in every process, so hashes may be
// stored. It is FNV-1a over the canonical encoding of [AppendCanonical].
func HashValue(v Value) (uint64, error) {
	var buf [128]byte
	b, err := appendCanonical(buf[:0], v, "", false)
	if err != nil {
		return 0, err
	}
	return HashBytes(b), nil
}

// HashBytes is the FNV-1a hash that [HashValue] applies to canonical encodings.
func HashBytes(b []byte) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// AppendCanonical appends the canonical encoding of v to b: a compact,
// self-delimiting byte string that is identical for equal Values. It is what
// [HashValue] hashes; it is not meant to be decoded.
func AppendCanonical(b []byte, v Value) ([]byte, error) {
	return appendCanonical(b, v, "", false)
}

// Type tags of the canonical encoding.
const (
	tagNull   = 'z'
	tagFalse  = 'f'
	tagTrue   = 't'
	tagString = 's'
	tagNumber = 'n'
	tagTime   = 'T'
	tagList   = 'l'
	tagMap    = 'm'
)

func appendCanonical(b []byte, v any, path string, fullPaths bool) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		return appendString(append(b, tagString), x), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int8:
		return appendInt(b, int64(x)), nil
	case int16:
		return appendInt(b, int64(x)), nil
	case int32:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case uint:
		return appendUint(b, uint64(x), false), nil
	case uint8:
		return appendUint(b, uint64(x), false), nil
	case uint16:
		return appendUint(b, uint64(x), false), nil
	case uint32:
		return appendUint(b, uint64(x), false), nil
	case uint64:
		return appendUint(b, x, false), nil
	case float32:
		return appendFloat(b, float64(x), 32, v, path)
	case float64:
		return appendFloat(b, x, 64, v, path)
	case json.Number:
		return appendDecimal(b, string(x), v, path)
	case time.Time:
		b = append(b, tagTime)
		b = x.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, 0), nil
	case []any:
		b = append(b, tagList)
		b = appendLen(b, len(x))
		var err error
		for i, e := range x {
			if b, err = appendCanonical(b, e, elemPath(path, i, fullPaths), fullPaths); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = append(b, tagList)
		b = appendLen(b, len(x))
		for _, e := range x {
			b = appendString(append(b, tagString), e)
		}
		return b, nil
	case map[string]any:
		keys := sortedKeys(x)
		b = append(b, tagMap)
		b = appendLen(b, len(keys))
		var err error
		for _, k := range keys {
			b = appendString(b, k)
			if b, err = appendCanonical(b, x[k], keyPath(path, k, fullPaths), fullPaths); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]string:
		keys := sortedKeys(x)
		b = append(b, tagMap)
		b = appendLen(b, len(keys))
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(append(b, tagString), x[k])
		}
		return b, nil
	}
	return b, badValue(path, v, "not a JSON-compatible type")
}

func elemPath(path string, i int, full bool) string {
	if !full {
		return path
	}
	return path + "[" + strconv.Itoa(i) + "]"
}

func keyPath(path, k string, full bool) string {
	if !full {
		return path
	}
	return path + "." + k
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendLen(b []byte, n int) []byte {
	b = strconv.AppendUint(b, uint64(n), 10)
	return append(b, ':')
}

func appendString(b []byte, s string) []byte {
	b = appendLen(b, len(s))
	return append(b, s...)
}

func appendInt(b []byte, i int64) []byte {
	if i < 0 {
		return appendUint(b, uint64(-(i+1))+1, true)
	}
	return appendUint(b, uint64(i), false)
}

// appendUint encodes an integer in the canonical decimal form used for every
// number: sign, significant digits without trailing zeros, and exponent.
func appendUint(b []byte, u uint64, neg bool) []byte {
	if u == 0 {
		return append(b, tagNumber, '0', 0)
	}
	exp := 0
	for u%10 == 0 {
		u /= 10
		exp++
	}
	b = append(b, tagNumber)
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u, 10)
	if exp != 0 {
		b = append(b, 'e')
		b = strconv.AppendInt(b, int64(exp), 10)
	}
	return append(b, 0)
}

func appendFloat(b []byte, f float64, bits int, v any, path string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, badValue(path, v, "NaN and infinities are not JSON numbers")
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return appendInt(b, int64(f)), nil
	}
	var tmp [32]byte
	s := strconv.AppendFloat(tmp[:0], f, 'e', -1, bits)
	return appendDecimal(b, string(s), v, path)
}

// appendDecimal canonicalises a JSON number literal: "1.50", "15e-1" and
// "0.0150e2" all become the same digits and exponent.
func appendDecimal(b []byte, s string, v any, path string) ([]byte, error) {
	neg := false
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	var digits [64]byte
	nd := 0
	exp := 0
	sawDigit, sawDot := false, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			sawDigit = true
			if sawDot {
				exp--
			}
			if nd == 0 && c == '0' {
				continue // leading zero
			}
			if nd == len(digits) {
				return b, badValue(path, v, "number has too many digits")
			}
			digits[nd] = c
			nd++
		case c == '.' && !sawDot:
			sawDot = true
		case c == 'e' || c == 'E':
			e, err := strconv.Atoi(s[i+1:])
			if err != nil || e > 1<<20 || e < -(1<<20) {
				return b, badValue(path, v, "malformed number exponent")
			}
			exp += e
			i = len(s)
		default:
			return b, badValue(path, v, "malformed number")
		}
	}
	if !sawDigit {
		return b, badValue(path, v, "malformed number")
	}
	for nd > 0 && digits[nd-1] == '0' {
		nd--
		exp++
	}
	if nd == 0 {
		return append(b, tagNumber, '0', 0), nil
	}
	b = append(b, tagNumber)
	if neg {
		b = append(b, '-')
	}
	b = append(b, digits[:nd]...)
	if exp != 0 {
		b = append(b, 'e')
		b = strconv.AppendInt(b, int64(exp), 10)
	}
	return append(b, 0), nil
}
