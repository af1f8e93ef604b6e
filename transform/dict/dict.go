// Package dict is the data dictionary: the declaration of every canonical
// field (its type, whether it is required, the values and formats it may
// take, what it means and who owns it) that the business teams agree on and
// that the pipeline enforces at the boundary.
//
// A [Dictionary] is built once from [Field] declarations by [New] (or
// [Options.New]), which checks the declarations themselves before anything
// runs. [Dictionary.Validate] then reports every violation of a record at
// once as a [*Violations] error; [Dictionary.Transformer] puts the check in
// a [transform.Chain]; [Dictionary.Markdown] renders the document.
//
// Formats ("kinds": e-mail, E.164 phone, dates in a layout, ISO codes) are
// validators looked up by name in a [Kinds] registry. The built-in registry
// checks the formats that need no reference data; a host registers the ISO
// code lists (country, subdivision, currency) with [Kinds.With].
package dict

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/concordsync/concord"
)

// Type is the type of a field's values. Every type accepts nil (the field is
// known to be empty) unless the field is required.
type Type string

// The field types.
const (
	// String: a Go string.
	String Type = "string"
	// Number: any integer or floating-point type, or a json.Number.
	Number Type = "number"
	// Integer: a Number whose value is integral (2, 2.0 and
	// json.Number("2") all qualify).
	Integer Type = "integer"
	// Bool: a Go bool.
	Bool Type = "bool"
	// Time: a time.Time. A date or time written as a string is a String
	// with a date kind (see [KindDate]).
	Time Type = "time"
	// Decimal: a string holding a plain decimal number such as "-12.50":
	// an optional sign, digits, and optionally a point and more digits.
	// Money amounts are usually declared as Decimal so that no float
	// rounding creeps in.
	Decimal Type = "decimal"
	// List: a []any or []string.
	List Type = "list"
	// Map: a map[string]any or map[string]string.
	Map Type = "map"
)

var types = []Type{String, Number, Integer, Bool, Time, Decimal, List, Map}

// Field declares one canonical field. Only Name and Type are needed; every
// other rule is off at its zero value.
type Field struct {
	// Name of the canonical field.
	Name string
	// Type of its values.
	Type Type
	// Required fields must be present in every record and not nil. (An
	// empty string is a value; add MinLen: 1 to refuse it.)
	Required bool
	// Allowed, if not empty, lists the only values the field may hold,
	// compared with [concord.EqualValues]. Each must have the field's Type.
	Allowed []concord.Value
	// Pattern, if set, is a regular expression (RE2 syntax) that the whole
	// value must match: it is anchored as ^(?:Pattern)$. String and
	// Decimal fields only.
	Pattern string
	// Range, if set, bounds the value of a Number, Integer or Decimal
	// field (see [Between], [AtLeast], [AtMost]).
	Range *Range
	// MinLen and MaxLen bound the length of a String (in characters), a
	// List or a Map (in elements). Zero means no bound.
	MinLen, MaxLen int
	// Kind, if set, names a format the value must have, looked up in the
	// dictionary's [Kinds] registry: [KindEmail], [KindE164],
	// [KindDate](layout), [KindCountry]... String fields only.
	Kind string
	// Description says what the field means, for the document.
	Description string
	// Owner names the team or system of record responsible for the
	// field, for the document.
	Owner string
}

// Range is an inclusive numeric range; a side without a bound is open.
// Values are compared as float64.
type Range struct {
	Min, Max       float64
	HasMin, HasMax bool
}

// Between returns the range min <= x <= max.
func Between(minimum, maximum float64) *Range {
	return &Range{Min: minimum, Max: maximum, HasMin: true, HasMax: true}
}

// AtLeast returns the range x >= min.
func AtLeast(minimum float64) *Range { return &Range{Min: minimum, HasMin: true} }

// AtMost returns the range x <= max.
func AtMost(maximum float64) *Range { return &Range{Max: maximum, HasMax: true} }

// UnknownPolicy says what [Dictionary.Validate] does with a field that the
// dictionary does not declare.
type UnknownPolicy int

const (
	// AllowUnknown lets undeclared fields through unchecked (the zero
	// value).
	AllowUnknown UnknownPolicy = iota
	// RejectUnknown reports every undeclared field as a violation of
	// [ErrUnknown].
	RejectUnknown
)

// Options configure a [Dictionary]. The zero value allows unknown fields
// and uses the built-in kinds.
type Options struct {
	// Unknown is the policy for undeclared fields.
	Unknown UnknownPolicy
	// Kinds resolves Field.Kind; nil means [BuiltinKinds].
	Kinds *Kinds
}

// Dictionary is a validated set of field declarations. It is immutable and
// safe for concurrent use.
type Dictionary struct {
	fields  []compiled
	byName  map[string]int
	unknown UnknownPolicy
}

// compiled is a Field with its pattern and kind resolved.
type compiled struct {
	Field
	re   *regexp.Regexp
	kind KindFunc
}

// New is [Options.New] with the zero Options: unknown fields are allowed and
// kinds are the built-in ones.
func New(fields ...Field) (*Dictionary, error) { return Options{}.New(fields...) }

// MustNew is [New] for examples, tests and package-level variables: it
// panics if the declarations are invalid.
func MustNew(fields ...Field) *Dictionary {
	d, err := New(fields...)
	if err != nil {
		panic(err)
	}
	return d
}

// New builds a Dictionary, checking every declaration first: names must be
// non-empty and distinct, types known, patterns valid, kinds registered,
// and each rule must suit the field's type (no Range on a String, no
// Pattern on a Bool...). The error wraps [ErrInvalidDictionary] and lists
// every problem, naming the field.
func (o Options) New(fields ...Field) (*Dictionary, error) {
	kinds := o.Kinds
	if kinds == nil {
		kinds = BuiltinKinds()
	}
	if o.Unknown != AllowUnknown && o.Unknown != RejectUnknown {
		return nil, fmt.Errorf("%w: unknown-field policy %d", ErrInvalidDictionary, o.Unknown)
	}
	d := &Dictionary{byName: make(map[string]int, len(fields)), unknown: o.Unknown}
	var errs []error
	for i, f := range fields {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: field %d %q: %s", ErrInvalidDictionary, i+1, f.Name, fmt.Sprintf(format, args...)))
		}
		c := compiled{Field: cloneField(f)}
		switch _, dup := d.byName[f.Name]; {
		case f.Name == "":
			bad("empty name")
		case dup:
			bad("declared twice")
		}
		if !slices.Contains(types, f.Type) {
			bad("unknown type %q", f.Type)
		}
		stringy := f.Type == String || f.Type == Decimal
		if f.Pattern != "" {
			re, err := regexp.Compile("^(?:" + f.Pattern + ")$")
			switch {
			case err != nil:
				bad("pattern: %v", err)
			case !stringy:
				bad("pattern on a %s field", f.Type)
			}
			c.re = re
		}
		if r := f.Range; r != nil {
			switch {
			case f.Type != Number && f.Type != Integer && f.Type != Decimal:
				bad("range on a %s field", f.Type)
			case !r.HasMin && !r.HasMax:
				bad("range without bounds")
			case r.HasMin && r.HasMax && r.Min > r.Max:
				bad("range minimum %v above maximum %v", r.Min, r.Max)
			}
		}
		if f.MinLen != 0 || f.MaxLen != 0 {
			switch {
			case f.Type != String && f.Type != List && f.Type != Map:
				bad("length on a %s field", f.Type)
			case f.MinLen < 0 || f.MaxLen < 0:
				bad("negative length")
			case f.MaxLen != 0 && f.MinLen > f.MaxLen:
				bad("minimum length %d above maximum %d", f.MinLen, f.MaxLen)
			}
		}
		if f.Kind != "" {
			check, ok := kinds.Lookup(f.Kind)
			switch {
			case !ok:
				bad("kind %q: %v", f.Kind, ErrUnknownKind)
			case f.Type != String:
				bad("kind %q on a %s field", f.Kind, f.Type)
			}
			c.kind = check
		}
		for _, v := range f.Allowed {
			if reason := checkType(f.Type, v); reason != "" || v == nil {
				bad("allowed value %v is not a valid %s", v, f.Type)
			}
		}
		d.byName[f.Name] = len(d.fields)
		d.fields = append(d.fields, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Fields returns the declarations in the order given to New. The caller
// owns the returned slice (the Allowed slices and Ranges in it are copies
// too).
func (d *Dictionary) Fields() []Field {
	out := make([]Field, len(d.fields))
	for i, c := range d.fields {
		out[i] = cloneField(c.Field)
	}
	return out
}

// cloneField returns f with its own copies of Allowed and Range.
func cloneField(f Field) Field {
	if f.Allowed != nil {
		allowed := make([]concord.Value, len(f.Allowed))
		for i, v := range f.Allowed {
			allowed[i] = concord.CloneValue(v)
		}
		f.Allowed = allowed
	}
	if f.Range != nil {
		r := *f.Range
		f.Range = &r
	}
	return f
}
