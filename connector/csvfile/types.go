package csvfile

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
)

// Type is how the cells of a column are read and written. Every cell is
// text; a Type says which Value it stands for. An empty cell is nil for
// every Type: a spreadsheet cannot tell an empty string from an empty cell.
type Type int

// The column types.
const (
	// String: the cell as it is (the default). Writes take a string.
	String Type = iota
	// Int: a base-10 integer in the int64 range, read as int64. Writes
	// take any whole number within that range.
	Int
	// Float: a float64, read with strconv.ParseFloat and written in the
	// shortest form that reads back as the same number.
	Float
	// Decimal: an exact decimal number, read as a json.Number, so that
	// "12345678901234567890.12" keeps its digits. Writes take any number.
	Decimal
	// Bool: "true" or "false" (strconv.ParseBool's spellings are read,
	// "true" and "false" are written).
	Bool
	// Time: an RFC 3339 time with optional fractions of a second, read as
	// a time.Time in the offset written.
	Time
	// Bytes: standard base64 (with padding), read as []byte.
	Bytes
)

// String returns the type's name.
func (t Type) String() string {
	switch t {
	case String:
		return "String"
	case Int:
		return "Int"
	case Float:
		return "Float"
	case Decimal:
		return "Decimal"
	case Bool:
		return "Bool"
	case Time:
		return "Time"
	case Bytes:
		return "Bytes"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

func (t Type) valid() bool { return t >= String && t <= Bytes }

// parse reads a cell as a Value of type t.
func (t Type) parse(cell string) (concord.Value, error) {
	if cell == "" {
		return nil, nil
	}
	switch t {
	case Int:
		return strconv.ParseInt(cell, 10, 64)
	case Float:
		f, err := strconv.ParseFloat(cell, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a finite number", cell)
		}
		return f, nil
	case Decimal:
		n := json.Number(cell)
		if _, ok := new(big.Float).SetString(cell); !ok || !isJSONNumber(cell) {
			return nil, fmt.Errorf("%q is not a decimal number", cell)
		}
		if err := concord.CheckValue(n); err != nil {
			return nil, err
		}
		return n, nil
	case Bool:
		return strconv.ParseBool(cell)
	case Time:
		v, err := time.Parse(time.RFC3339Nano, cell)
		if err != nil {
			return nil, err
		}
		if err := concord.CheckValue(v); err != nil {
			return nil, err
		}
		return v, nil
	case Bytes:
		return base64.StdEncoding.Strict().DecodeString(cell)
	}
	if err := concord.CheckValue(cell); err != nil {
		return nil, err // not UTF-8
	}
	return cell, nil
}

// format writes v as a cell of type t, or says why it cannot.
func (t Type) format(v concord.Value) (string, error) {
	if v == nil {
		return "", nil
	}
	if err := concord.CheckValue(v); err != nil {
		return "", err
	}
	wrong := func() (string, error) { return "", fmt.Errorf("a %T cannot be written to a %v column", v, t) }
	switch t {
	case String:
		s, ok := v.(string)
		if !ok {
			return wrong()
		}
		if strings.Contains(s, "\r\n") {
			return "", errors.New("a CSV cell cannot keep a carriage return before a newline (CSV readers drop it)")
		}
		return s, nil
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return wrong()
		}
		return strconv.FormatBool(b), nil
	case Time:
		tm, ok := v.(time.Time)
		if !ok {
			return wrong()
		}
		return tm.Format(time.RFC3339Nano), nil
	case Bytes:
		b, ok := v.([]byte)
		if !ok {
			return wrong()
		}
		return base64.StdEncoding.EncodeToString(b), nil
	case Float:
		switch x := v.(type) {
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case float32:
			return strconv.FormatFloat(float64(x), 'g', -1, 32), nil
		}
		d, ok := decimalText(v)
		if !ok {
			return wrong()
		}
		f, err := strconv.ParseFloat(d, 64)
		if err != nil || math.IsInf(f, 0) {
			return "", fmt.Errorf("%s does not fit a float64", d)
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case Int:
		d, ok := decimalText(v)
		if !ok {
			return wrong()
		}
		bf, _, err := big.ParseFloat(d, 10, 4096, big.ToNearestEven)
		if err != nil || !bf.IsInt() {
			return "", fmt.Errorf("%s is not a whole number", d)
		}
		i, acc := bf.Int64()
		if acc != big.Exact {
			return "", fmt.Errorf("%s is outside the int64 range", d)
		}
		return strconv.FormatInt(i, 10), nil
	case Decimal:
		d, ok := decimalText(v)
		if !ok {
			return wrong()
		}
		return d, nil
	}
	return "", fmt.Errorf("unknown column type %v", t)
}

// decimalText returns a number Value as decimal text that reads back as
// the same Value.
func decimalText(v concord.Value) (string, bool) {
	switch x := v.(type) {
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case json.Number:
		return string(x), true
	}
	return "", false
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil && !strings.ContainsAny(s, " \t\r\n")
}
