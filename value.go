package concord

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Value is a field value: a JSON-compatible Go value. The supported dynamic
// types are:
//
//   - nil (JSON null: the field exists and is empty)
//   - bool
//   - string, which must be valid UTF-8
//   - []byte: a byte string (what many SQL drivers return for binary and
//     text columns), any bytes
//   - int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
//     float32, float64 (finite: NaN and infinities are not JSON), and
//     [json.Number] (a valid JSON number literal, within the caps below)
//   - [time.Time] from year 0000 to 9999, both in UTC and in its own zone,
//     with a zone offset of less than 24 hours (whole minutes or not)
//   - []any and map[string]any whose elements are themselves Values,
//     and []string and map[string]string for convenience; map keys must be
//     valid UTF-8, and containers nest at most [MaxValueDepth] deep
//
// This is exactly the set the durable stores encode: [CheckValue] (and
// [Record.Validate], which calls it) refuses everything else at the
// boundary, so that a value the engine accepted can always be committed.
//
// # Equality
//
// [EqualValues] and [HashValue] define one canonical equality:
//
//   - Numbers are compared by value, whatever their Go type: int64(1), 1.0,
//     json.Number("1.00") and uint8(1) are the same Value, and so are
//     uint64(math.MaxUint64) and json.Number("18446744073709551615"). A
//     json.Number stands for its exact decimal value ("1e300" equals its
//     301-digit expansion). An integer type stands for its exact value.
//     A floating-point number that is a whole number within the range of
//     Go's integer types (−2⁶³ to 2⁶⁴−1) stands for its exact value, so
//     that float64(1<<60) equals int64(1<<60) (and float64(1e19) does not
//     equal uint64(math.MaxUint64), which it cannot hold). Every other
//     floating-point number stands for the shortest decimal that reads
//     back as the same number at its own precision, which is what
//     strconv and encoding/json print: float64(0.1), float32(0.1) and
//     json.Number("0.1") are equal, as are float64(1e300) and
//     json.Number("1e300"), although float64(float32(0.1)) is another
//     number. (The one float32 outside the integer range whose shortest
//     form falls inside it, float32(2⁶⁴), printed 1.8446744e+19, stands
//     for its exact value, so as not to equal an integer it is not.)
//     Negative zero equals zero.
//   - Strings are compared byte for byte; a []byte equals a []byte with the
//     same bytes (nil and empty are equal) and never a string: a byte
//     string is its own kind.
//   - Times are compared as instants: the zone they are written in does not
//     matter.
//   - Lists are compared element by element; []string equals the []any of
//     the same strings. Maps are compared by content, whatever their
//     iteration order; map[string]string equals the map[string]any of the
//     same strings.
//
// # Caps
//
// A json.Number is accepted when its value, written as d₁d₂…dₙ × 10^e
// without trailing zeros in the digits, has at most [MaxNumberDigits]
// significant digits and an exponent e within ±[MaxNumberExponent]. Every
// float64 fits with a wide margin (the exact value of a whole float64 has
// at most 309 digits; the shortest form of any other has at most 17 digits
// and an exponent of at least −340).
type Value = any

// MaxValueDepth is how deeply lists and maps may nest in a [Value]: a
// top-level value has depth 0, the elements of a list or map at depth d have
// depth d+1, and no element may have a depth above MaxValueDepth. (The
// strings of a []string or map[string]string are part of their container.)
const MaxValueDepth = 64

// MaxNumberDigits is the most significant digits a [json.Number] Value may
// have (leading and trailing zeros do not count): see [Value].
const MaxNumberDigits = 1024

// MaxNumberExponent bounds the decimal exponent of a [json.Number] Value
// written with its significant digits as an integer: see [Value].
const MaxNumberExponent = 10000

// ErrUnsupportedValue is returned (wrapped in a [*ValueError]) for a value
// that is not a [Value]: a dynamic type [Value] does not list, or a listed
// type outside what it allows (invalid UTF-8, a time past 9999, a number
// that is not JSON or passes the caps, nesting past [MaxValueDepth]). The
// ValueError's Reason says which.
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
// naming the offending element and the reason otherwise (an unsupported
// type, invalid UTF-8, a time outside years 0000–9999, a number past the
// caps, nesting deeper than [MaxValueDepth]).
func CheckValue(v Value) error {
	switch x := v.(type) { // the common scalars, without encoding them
	case nil, bool, int, int64, uint64, []byte:
		return nil
	case string:
		if utf8.ValidString(x) {
			return nil
		}
	}
	_, err := appendCanonical(nil, v, "", true, 0)
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
			return x == y && utf8.ValidString(x)
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
	ea, err := appendCanonical(ab[:0], a, "", false, 0)
	if err != nil {
		return false
	}
	eb, err := appendCanonical(bb[:0], b, "", false, 0)
	if err != nil {
		return false
	}
	return string(ea) == string(eb)
}

// HashValue returns the canonical 64-bit hash of v: equal Values (see [EqualValues])
// have equal hashes, on every machine and in every process, so hashes may be
// stored. It is FNV-1a over the canonical encoding of [AppendCanonical]. It
// fails with a [*ValueError] for an unsupported value.
func HashValue(v Value) (uint64, error) {
	var buf [128]byte
	b, err := appendCanonical(buf[:0], v, "", false, 0)
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
// self-delimiting byte string that is identical for equal Values and
// different for unequal ones (EqualValues(x, y) is exactly the equality of
// their canonical encodings). It is what [HashValue] hashes; it is not meant
// to be decoded. It fails with a [*ValueError] for an unsupported value.
func AppendCanonical(b []byte, v Value) ([]byte, error) {
	return appendCanonical(b, v, "", false, 0)
}

// Type tags of the canonical encoding.
const (
	tagNull   = 'z'
	tagFalse  = 'f'
	tagTrue   = 't'
	tagString = 's'
	tagBytes  = 'b'
	tagNumber = 'n'
	tagTime   = 'T'
	tagList   = 'l'
	tagMap    = 'm'
)

// Bounds of the times a Value may hold.
const maxZoneOffset = 24 * 60 * 60 // seconds, exclusive

func appendCanonical(b []byte, v any, path string, fullPaths bool, depth int) ([]byte, error) {
	if depth > MaxValueDepth {
		return b, badValue(path, v, "nested more than "+strconv.Itoa(MaxValueDepth)+" deep")
	}
	switch x := v.(type) {
	case nil:
		return append(b, tagNull), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case string:
		if !utf8.ValidString(x) {
			return b, badValue(path, v, "invalid UTF-8")
		}
		return appendString(append(b, tagString), x), nil
	case []byte:
		b = append(b, tagBytes)
		b = appendLen(b, len(x))
		return append(b, x...), nil
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
		return appendJSONNumber(b, string(x), v, path)
	case time.Time:
		if reason := checkTime(x); reason != "" {
			return b, badValue(path, v, reason)
		}
		b = append(b, tagTime)
		b = x.UTC().AppendFormat(b, time.RFC3339Nano)
		return append(b, 0), nil
	case []any:
		b = append(b, tagList)
		b = appendLen(b, len(x))
		var err error
		for i, e := range x {
			if b, err = appendCanonical(b, e, elemPath(path, i, fullPaths), fullPaths, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = append(b, tagList)
		b = appendLen(b, len(x))
		for i, e := range x {
			if !utf8.ValidString(e) {
				return b, badValue(elemPath(path, i, fullPaths), e, "invalid UTF-8")
			}
			b = appendString(append(b, tagString), e)
		}
		return b, nil
	case map[string]any:
		keys := sortedKeys(x)
		b = append(b, tagMap)
		b = appendLen(b, len(keys))
		var err error
		for _, k := range keys {
			if !utf8.ValidString(k) {
				return b, badValue(keyPath(path, k, fullPaths), k, "map key is invalid UTF-8")
			}
			b = appendString(b, k)
			if b, err = appendCanonical(b, x[k], keyPath(path, k, fullPaths), fullPaths, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]string:
		keys := sortedKeys(x)
		b = append(b, tagMap)
		b = appendLen(b, len(keys))
		for _, k := range keys {
			if !utf8.ValidString(k) {
				return b, badValue(keyPath(path, k, fullPaths), k, "map key is invalid UTF-8")
			}
			if !utf8.ValidString(x[k]) {
				return b, badValue(keyPath(path, k, fullPaths), x[k], "invalid UTF-8")
			}
			b = appendString(b, k)
			b = appendString(append(b, tagString), x[k])
		}
		return b, nil
	}
	return b, badValue(path, v, "not a JSON-compatible type")
}

// checkTime returns why t cannot be a Value, or "".
func checkTime(t time.Time) string {
	if t.Nanosecond() >= 1e9 { // only Time.UnmarshalBinary of damaged bytes makes these
		return "malformed time: nanoseconds past a second"
	}
	_, off := t.Zone()
	if off <= -maxZoneOffset || off >= maxZoneOffset {
		return "zone offset of 24 hours or more"
	}
	// Year checks on the date in both zones: a time that is in range in UTC
	// may not be in its own zone (9999-12-31T23:00Z at +02:00).
	if y := t.Year(); y < 0 || y > 9999 {
		return "year outside 0000–9999"
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return "year outside 0000–9999 in UTC"
	}
	return ""
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
	if !utf8.ValidString(k) {
		return path + "." + strconv.Quote(k)
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
// number: tag, sign, significant digits without trailing zeros, and
// exponent, then a NUL.
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

// appendFloat encodes f, a float64 or (bits 32) a float32 widened exactly,
// by the value it stands for (see [Value]).
func appendFloat(b []byte, f float64, bits int, v any, path string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, badValue(path, v, "NaN and infinities are not JSON numbers")
	}
	if f == math.Trunc(f) {
		switch {
		case f >= -0x1p63 && f < 0x1p63: // also negative zero
			return appendInt(b, int64(f)), nil
		case f >= 0x1p63 && f < 0x1p64:
			return appendUint(b, uint64(f), false), nil
		}
	}
	var tmp [32]byte
	s := strconv.AppendFloat(tmp[:0], f, 'e', -1, bits)
	if f == math.Trunc(f) && bits == 32 && shortestInIntegerRange(s) {
		// A float32 outside the integer range whose shortest form is
		// inside it (float32(2⁶⁴) prints as 1.8446744e+19): it would
		// equal an integer it is not; use its exact value instead.
		return appendJSONNumber(b, strconv.FormatFloat(f, 'f', 0, 64), v, path)
	}
	return appendJSONNumber(b, string(s), v, path)
}

// shortestInIntegerRange reports whether the decimal s lies within
// [−2⁶³, 2⁶⁴).
func shortestInIntegerRange(s []byte) bool {
	r, ok := new(big.Rat).SetString(string(s))
	if !ok {
		return false
	}
	lo := new(big.Rat).SetInt(new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 63)))
	hi := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 64))
	return r.Cmp(lo) >= 0 && r.Cmp(hi) < 0
}

// appendJSONNumber canonicalises a JSON number literal (RFC 8259 grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?): "1.50", "15e-1" and
// "0.0150e2" all become the same digits and exponent. It runs in time
// linear in len(s) and appends at most MaxNumberDigits digits: zeros are
// counted, and written only when a later non-zero digit needs them.
func appendJSONNumber(b []byte, s string, v any, path string) ([]byte, error) {
	start := len(b)
	i := 0
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	b = append(b, tagNumber)
	if neg {
		b = append(b, '-')
	}
	nd, pending, exp := 0, 0, 0 // digits written, zeros not yet written, exponent
	intStart := i
	if i < len(s) && s[i] == '0' {
		i++
	} else {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i == intStart {
		return b[:start], badValue(path, v, "not a JSON number")
	}
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fracStart {
			return b[:start], badValue(path, v, "not a JSON number")
		}
		fracEnd = i
	}
	e := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		expStart := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if e < 1<<40 { // saturate, far past any exponent accepted below
				e = e*10 + int(s[i]-'0')
			}
		}
		if i == expStart {
			return b[:start], badValue(path, v, "not a JSON number")
		}
		if eneg {
			e = -e
		}
	}
	if i != len(s) {
		return b[:start], badValue(path, v, "not a JSON number")
	}
	// The mantissa digits: the integer part, then the fraction.
	for _, part := range [2]string{s[intStart:fracStart], s[fracStart:fracEnd]} {
		for j := 0; j < len(part); j++ {
			c := part[j]
			if c == '.' {
				continue
			}
			switch {
			case c == '0' && nd == 0: // leading zero
			case c == '0':
				pending++
			default:
				if nd+pending+1 > MaxNumberDigits {
					return b[:start], badValue(path, v, "more than "+strconv.Itoa(MaxNumberDigits)+" significant digits")
				}
				for range pending {
					b = append(b, '0')
				}
				b = append(b, c)
				nd += pending + 1
				pending = 0
			}
		}
	}
	if nd == 0 {
		return append(b[:start], tagNumber, '0', 0), nil
	}
	exp = e - (fracEnd - fracStart) + pending
	if exp > MaxNumberExponent || exp < -MaxNumberExponent {
		return b[:start], badValue(path, v, "exponent beyond ±"+strconv.Itoa(MaxNumberExponent))
	}
	if exp != 0 {
		b = append(b, 'e')
		b = strconv.AppendInt(b, int64(exp), 10)
	}
	return append(b, 0), nil
}

// Float returns v as a float64 when v is one of the Go numeric kinds a
// Value may hold (int, int8 … int64, uint … uint64, float32, float64),
// with the rounding of the conversion. A json.Number, a decimal string or
// anything else is not a number here: callers decide how to read those.
func Float(v Value) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}
