package sqltable

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
)

// sqliteTimeLayout is how times are written to SQLite: UTC, a fixed nine
// fraction digits, so that text order is time order.
const sqliteTimeLayout = "2006-01-02 15:04:05.000000000"

// timeLayouts are the text forms a Time column may hold (SQLite's formats 1
// to 7, with and without a zone, RFC 3339, and what database/sql drivers
// write for time.Time by default). A form without a zone is UTC.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
	"2006-01-02 15:04Z07:00",
	"2006-01-02T15:04Z07:00",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// maxDecimalLen bounds the text of a decimal.
const maxDecimalLen = 1000

// julianUnixEpoch is the Julian day number of 1970-01-01T00:00:00Z.
const julianUnixEpoch = 2440587.5

// encode converts a patch value to the argument written to a column of
// type typ. The error is the reason, for a FieldError.
func encode(d Dialect, typ Type, v concord.Value) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Text:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %T", v)
		}
		if !utf8.ValidString(s) {
			return nil, errors.New("text is not valid UTF-8")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, errors.New("text holds a NUL byte")
		}
		return s, nil
	case Int64:
		n, err := toInt64(v)
		if err != nil {
			return nil, err
		}
		return n, nil
	case Float64:
		f, err := toFloat64(v)
		if err != nil {
			return nil, err
		}
		return f, nil
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a bool, got %T", v)
		}
		if d == SQLite {
			if b {
				return int64(1), nil
			}
			return int64(0), nil
		}
		return b, nil
	case Decimal:
		s, err := toDecimal(v)
		if err != nil {
			return nil, err
		}
		return s, nil
	case Bytes:
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("want []byte, got %T", v)
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case Time:
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("want a time.Time, got %T", v)
		}
		return encodeTime(d, t)
	}
	return nil, fmt.Errorf("unknown type %v", typ)
}

// encodeTime converts a time to the argument written to a Time column.
func encodeTime(d Dialect, t time.Time) (any, error) {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("time %s is outside years 1 to 9999", t.Format(time.RFC3339Nano))
	}
	if d == SQLite {
		return t.Format(sqliteTimeLayout), nil
	}
	// PostgreSQL keeps microseconds; truncate rather than let it round,
	// so that what the connector reports is what is stored.
	return t.Truncate(time.Microsecond), nil
}

const maxExactFloat = 1 << 53

func toInt64(v concord.Value) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int8:
		return int64(n), nil
	case int16:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case uint:
		return uintToInt64(uint64(n))
	case uint8:
		return int64(n), nil
	case uint16:
		return int64(n), nil
	case uint32:
		return int64(n), nil
	case uint64:
		return uintToInt64(n)
	case float32:
		return floatToInt64(float64(n))
	case float64:
		return floatToInt64(n)
	case json.Number:
		r, ok := parseDecimalRat(string(n))
		if !ok {
			return 0, fmt.Errorf("json.Number %q is not a number", string(n))
		}
		if !r.IsInt() || !r.Num().IsInt64() {
			return 0, fmt.Errorf("%s is not an integer in the int64 range", string(n))
		}
		return r.Num().Int64(), nil
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

func uintToInt64(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("%d is above the int64 range", u)
	}
	return int64(u), nil
}

func floatToInt64(f float64) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("%v is not an integer in the int64 range", f)
	}
	return int64(f), nil
}

func toFloat64(v concord.Value) (float64, error) {
	var f float64
	switch n := v.(type) {
	case float32:
		f = float64(n)
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(n), 64); err != nil {
			return 0, fmt.Errorf("json.Number %q is not a finite float64", string(n))
		}
	default:
		i, err := toInt64(v)
		if err != nil {
			return 0, fmt.Errorf("want a number, got %T", v)
		}
		if i > maxExactFloat || i < -maxExactFloat {
			return 0, fmt.Errorf("integer %d cannot be held exactly by a float64", i)
		}
		return float64(i), nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%v is not a finite number", f)
	}
	return f, nil
}

// toDecimal returns the decimal text of v.
func toDecimal(v concord.Value) (string, error) {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case string:
		s = n
	case float32:
		if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return "", fmt.Errorf("%v is not a finite number", n)
		}
		s = strconv.FormatFloat(float64(n), 'g', -1, 32)
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return "", fmt.Errorf("%v is not a finite number", n)
		}
		s = strconv.FormatFloat(n, 'g', -1, 64)
	case uint:
		s = strconv.FormatUint(uint64(n), 10)
	case uint64:
		s = strconv.FormatUint(n, 10)
	default:
		i, err := toInt64(v)
		if err != nil {
			return "", fmt.Errorf("want a decimal (json.Number, string or number), got %T", v)
		}
		s = strconv.FormatInt(i, 10)
	}
	if !isDecimal(s) {
		return "", fmt.Errorf("%.40q is not a decimal number of at most %d characters", s, maxDecimalLen)
	}
	return s, nil
}

// isDecimal reports whether s is a JSON number literal of bounded length.
func isDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxDecimalLen {
		return false
	}
	i := 0
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// parseDecimalRat parses a decimal literal exactly, refusing huge exponents.
func parseDecimalRat(s string) (*big.Rat, bool) {
	if !isDecimal(s) {
		return nil, false
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > 400 || e < -400 {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// decode converts a value read from a column of type typ (as the driver
// returns it) to the record's value.
func decode(typ Type, v any) (concord.Value, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok && typ != Bytes {
		v = string(b)
	}
	switch typ {
	case Text:
		switch s := v.(type) {
		case string:
			if !utf8.ValidString(s) {
				return nil, errors.New("text is not valid UTF-8")
			}
			return s, nil
		case int64:
			return strconv.FormatInt(s, 10), nil
		case float64:
			return strconv.FormatFloat(s, 'g', -1, 64), nil
		}
	case Int64:
		switch n := v.(type) {
		case int64:
			return n, nil
		case float64:
			return floatToInt64(n)
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%.40q is not an int64", n)
			}
			return i, nil
		}
	case Float64:
		switch n := v.(type) {
		case float64:
			return n, nil
		case float32:
			return float64(n), nil
		case int64:
			return toFloat64(n)
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%.40q is not a finite float64", n)
			}
			return f, nil
		}
	case Bool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			if b == 0 || b == 1 {
				return b == 1, nil
			}
			return nil, fmt.Errorf("%d is not a bool (0 or 1)", b)
		case string:
			switch strings.ToLower(strings.TrimSpace(b)) {
			case "1", "true", "t":
				return true, nil
			case "0", "false", "f":
				return false, nil
			}
			return nil, fmt.Errorf("%.40q is not a bool", b)
		}
	case Decimal:
		switch n := v.(type) {
		case string:
			s := strings.TrimSpace(n)
			if !isDecimal(s) {
				return nil, fmt.Errorf("%.40q is not a decimal number", n)
			}
			return json.Number(s), nil
		case int64:
			return json.Number(strconv.FormatInt(n, 10)), nil
		case float64:
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return nil, fmt.Errorf("%v is not a finite number", n)
			}
			return json.Number(strconv.FormatFloat(n, 'g', -1, 64)), nil
		}
	case Bytes:
		switch b := v.(type) {
		case []byte:
			if b == nil {
				b = []byte{}
			}
			return b, nil
		case string:
			return []byte(b), nil
		}
	case Time:
		t, err := decodeTime(v)
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("a %T cannot be read as %v", v, typ)
}

// decodeTime reads a time as a driver returns it: a time.Time, text in one
// of timeLayouts, an integer (Unix seconds) or a real (a Julian day), as
// SQLite's date functions understand them.
func decodeTime(v any) (time.Time, error) {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case int64:
		if x < -62135596800 || x > 253402300799 {
			return time.Time{}, fmt.Errorf("time %d (Unix seconds) is outside years 1 to 9999", x)
		}
		t = time.Unix(x, 0)
	case float64:
		secs := (x - julianUnixEpoch) * 86400
		if math.IsNaN(secs) || secs < -62135596800 || secs > 253402300799 {
			return time.Time{}, fmt.Errorf("time %v (a Julian day) is outside years 1 to 9999", x)
		}
		whole := math.Floor(secs)
		t = time.Unix(int64(whole), int64(math.Round((secs-whole)*1e6))*1e3)
	case string:
		s := strings.TrimSpace(x)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return decodeTime(n)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return decodeTime(f)
		}
		ok := false
		for _, layout := range timeLayouts {
			if p, err := time.Parse(layout, s); err == nil {
				t, ok = p, true
				break
			}
		}
		if !ok {
			return time.Time{}, fmt.Errorf("%.40q is not a time", x)
		}
	default:
		return time.Time{}, fmt.Errorf("a %T cannot be read as time", v)
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %s is outside years 1 to 9999", t.Format(time.RFC3339Nano))
	}
	return t, nil
}
