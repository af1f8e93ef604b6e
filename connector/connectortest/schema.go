package connectortest

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord"
)

// Kind is the type of one field in a [Harness.Schema]: one of the base
// kinds below, optionally combined with [NotNull] (KindInt|NotNull).
type Kind uint16

// The base kinds, with the Go types the suite writes for each and the values
// it writes in the TypeFidelity check. Values read back are compared with
// [concord.EqualValues], so a system may return another Go type of the same
// value (int64 for int, a json.Number for a float64).
const (
	// KindString is a string: the suite writes "", "plain", " padded ",
	// a value with a comma, quotes and a newline, and non-ASCII text
	// ("Zoë ☃ 日本語"). With [Harness.EmptyIsNull] it writes no "".
	KindString Kind = 1 + iota
	// KindInt is a 64-bit integer, written as int: 0, 1, -1, 2⁵³+1
	// (which a float64 cannot hold), math.MaxInt64 and math.MinInt64.
	KindInt
	// KindFloat is a float64: 0.5, -1.25, 0.1, 6.02214076e23 and 1e-300.
	KindFloat
	// KindDecimal is an exact decimal, written as a json.Number: "0",
	// "0.10", "-0.01" and "-12345678901234567890.123456789" (29
	// significant digits, more than a float64 holds).
	KindDecimal
	// KindBool is a bool: true and false.
	KindBool
	// KindTime is a time.Time with microsecond precision (what
	// PostgreSQL keeps): in UTC, before 1970, and in a +05:30 zone
	// (compared as instants).
	KindTime
	// KindBytes is a []byte: empty, "plain", bytes that are not UTF-8
	// (0xc3 0x28) and 0x00 0xff '\n' ','.
	KindBytes

	// NotNull marks a field that cannot be empty: the suite never writes
	// nil to it, and gives it a value whenever it creates a record.
	// Without it, the suite empties the field with nil and accepts nil
	// or an absent field when reading it back.
	NotNull Kind = 1 << 8
)

// base returns k without modifiers.
func (k Kind) base() Kind { return k &^ NotNull }

// nullable reports whether the suite may write nil to a field of kind k.
func (k Kind) nullable() bool { return k&NotNull == 0 }

// String returns the kind's name, as "Int" or "Int|NotNull".
func (k Kind) String() string {
	names := map[Kind]string{KindString: "String", KindInt: "Int", KindFloat: "Float",
		KindDecimal: "Decimal", KindBool: "Bool", KindTime: "Time", KindBytes: "Bytes"}
	s, ok := names[k.base()]
	if !ok {
		s = "Kind(" + strconv.Itoa(int(k.base())) + ")"
	}
	if !k.nullable() {
		s += "|NotNull"
	}
	return s
}

// DefaultSchema returns the fields the suite writes when [Harness.Schema] is
// nil: "n" and "a" (Int), "c" (Bool), and "name", "b", "d", "k" and "keep"
// (String), all nullable. A system that keeps any field of any JSON type
// needs no Schema; one with fixed columns declares its own.
func DefaultSchema() map[string]Kind {
	return map[string]Kind{
		"n": KindInt, "a": KindInt, "c": KindBool,
		"name": KindString, "b": KindString, "d": KindString, "k": KindString, "keep": KindString,
	}
}

// counterKinds are the kinds that can tell many edits apart, best first.
var counterKinds = []Kind{KindInt, KindDecimal, KindString, KindFloat, KindTime, KindBytes}

// schema is a Harness's schema, resolved once per check.
type schema struct {
	names       []string        // sorted
	kinds       map[string]Kind // by name
	counter     string          // the field edits and writes change
	emptyIsNull bool
}

// newSchema resolves h's schema, or explains why it cannot be used.
func newSchema(h Harness) (*schema, error) {
	kinds := h.Schema
	if kinds == nil {
		kinds = DefaultSchema()
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("Harness.Schema is empty; want at least one field (or nil for the default schema)")
	}
	s := &schema{kinds: kinds, emptyIsNull: h.EmptyIsNull}
	for name, k := range kinds {
		if name == "" {
			return nil, fmt.Errorf("Harness.Schema has a field with an empty name")
		}
		if k.base() < KindString || k.base() > KindBytes || k&^(NotNull|0xff) != 0 {
			return nil, fmt.Errorf("Harness.Schema field %q has unknown kind %v", name, k)
		}
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	// The counter: "n" when it can count, else the first field (by name)
	// of the best kind that can.
	if k, ok := kinds["n"]; ok && k.base() != KindBool {
		s.counter = "n"
	}
	for _, want := range counterKinds {
		for _, name := range s.names {
			if s.counter == "" && kinds[name].base() == want {
				s.counter = name
			}
		}
	}
	if s.counter == "" {
		return nil, fmt.Errorf("Harness.Schema has only Bool fields; want one field of another kind to tell edits apart")
	}
	return s, nil
}

// timeBase is the instant the counter's times count from.
var timeBase = time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)

// value returns the value of kind k numbered seed: different seeds give
// different values (for a Bool, seeds of different parity).
func value(k Kind, seed int) concord.Value {
	switch k.base() {
	case KindInt:
		return seed
	case KindFloat:
		return float64(seed) + 0.5
	case KindDecimal:
		return json.Number(strconv.Itoa(seed) + ".25")
	case KindBool:
		return seed%2 == 1
	case KindTime:
		return timeBase.Add(time.Duration(seed) * time.Second)
	case KindBytes:
		return []byte("b" + strconv.Itoa(seed))
	}
	return "v" + strconv.Itoa(seed)
}

// count returns the counter field set to seed.
func (s *schema) count(seed int) fields {
	return fields{s.counter: value(s.kinds[s.counter], seed)}
}

// fresh returns the fields of a new record numbered seed: the counter and
// every NotNull field.
func (s *schema) fresh(seed int) fields {
	f := s.count(seed)
	for _, name := range s.names {
		if !s.kinds[name].nullable() {
			f[name] = value(s.kinds[name], seed)
		}
	}
	return f
}

// all returns every field of the schema set to its value numbered seed.
func (s *schema) all(seed int) fields {
	f := fields{}
	for _, name := range s.names {
		f[name] = value(s.kinds[name], seed)
	}
	return f
}

// samples returns the values the TypeFidelity check writes to a field of
// kind k: the hostile cases of its kind, and nil for a nullable field.
func (s *schema) samples(k Kind) []concord.Value {
	var vs []concord.Value
	switch k.base() {
	case KindString:
		vs = []concord.Value{"plain", " padded ", "comma, \"quotes\"\nand a newline", "Zoë ☃ 日本語"}
		if !s.emptyIsNull {
			vs = append(vs, "")
		}
	case KindInt:
		vs = []concord.Value{0, 1, -1, 1<<53 + 1, math.MaxInt64, math.MinInt64}
	case KindFloat:
		vs = []concord.Value{0.5, -1.25, 0.1, 6.02214076e23, 1e-300}
	case KindDecimal:
		vs = []concord.Value{json.Number("0"), json.Number("0.10"), json.Number("-0.01"),
			json.Number("-12345678901234567890.123456789")}
	case KindBool:
		vs = []concord.Value{true, false}
	case KindTime:
		vs = []concord.Value{
			time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC),
			time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
			time.Date(2030, 1, 1, 9, 30, 0, 500000000, time.FixedZone("+05:30", 5*3600+1800)),
		}
	case KindBytes:
		vs = []concord.Value{[]byte("plain"), []byte{0xc3, 0x28}, []byte{0x00, 0xff, '\n', ','}}
		if !s.emptyIsNull {
			vs = append(vs, []byte{})
		}
	}
	if k.nullable() {
		vs = append(vs, nil)
	}
	return vs
}

// show formats a value with its Go type, as `1 (int64)`, so that a reader
// sees at once a value that changed type.
func show(v concord.Value) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q (string)", x)
	case []byte:
		return fmt.Sprintf("%q ([]byte)", x)
	case json.Number:
		return fmt.Sprintf("%s (json.Number)", x)
	case time.Time:
		return fmt.Sprintf("%s (time.Time)", x.Format(time.RFC3339Nano))
	}
	s := fmt.Sprintf("%#v", v)
	if strings.HasPrefix(s, fmt.Sprintf("%T", v)) {
		return s // a composite literal names its type already
	}
	return fmt.Sprintf("%v (%T)", v, v)
}
