package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/concordsync/concord"
)

// Mapping declares, in one list of rules, how a system's fields relate to
// the canonical fields, and yields both Transformers from it: [Mapping.Inbound]
// (system to canonical) and [Mapping.Outbound] (canonical to system). Because
// both directions come from the same declaration they cannot drift apart.
//
// # Rules
//
//   - [Rename] and [RenameWith]: one system field is one canonical field,
//     optionally converted on the way (see [Converter]).
//   - [Computed]: one or more system fields are one or more canonical
//     fields, with a function for each direction.
//   - [Drop]: a system-only field: dropped inbound, never written outbound.
//   - [Constant]: a system field written with a fixed value outbound and
//     dropped inbound.
//
// # Partial records
//
// Records may be partial: a webhook may report only the fields that
// changed. A rule whose input fields are all absent from the record
// produces nothing: its output fields are absent too, not nil (absent
// means "not reported", nil means "empty"). A rule that reads several
// fields and finds only some of them fails with [ErrMissingField]: fields
// computed together must be reported together. Constant has no input and
// is written on every outbound record.
//
// # Fields no rule mentions
//
// By default a field that no rule names, on either side, passes through
// under the same name in both directions. A field whose name a rule uses
// (as a system or a canonical field) never passes through: with
// Rename("zip", "postal_code"), a system field "postal_code" is dropped
// inbound and a canonical field "zip" is dropped outbound, so that a rule's
// output is never overwritten by, or confused with, a passed-through
// field. With the [Strict] option, fields no rule mentions are dropped in
// both directions.
//
// # Everything else
//
// Deleted records are returned unchanged, with no rule applied. Key,
// Deleted, Modified and Tag pass through. The input record is never
// modified: the result has a new Fields map (values that are not converted
// are shared with the input), and the rules' functions get their own
// copies of the maps and slices they convert, so that one that modifies
// its argument cannot change the input either ([ReadOnly] holds for a
// Mapping's Transformers). A Mapping is immutable, and its Transformers
// are safe for concurrent use if the rules' functions are.
type Mapping struct {
	rules   []*fieldRule
	strict  bool
	claimed map[string]bool // every field name a rule uses, on either side
}

// A Rule is one argument to [NewMapping]: a field rule ([Rename],
// [RenameWith], [Computed], [Drop], [Constant]) or an option ([Strict]).
type Rule interface {
	addTo(m *Mapping)
}

// ValueFunc converts the values of a [Computed] rule's input fields, in the
// order the rule lists them, into the values of its output fields, in
// order. Empty fields are passed as nil. It must return exactly one value
// per output field, and must not modify the values it is given.
type ValueFunc func(values []concord.Value) ([]concord.Value, error)

// fieldRule is every field rule; the rule constructors only fill it in.
type fieldRule struct {
	desc       string   // the rule as written, for error messages
	sys, canon []string // the fields it reads or writes on each side
	in, out    ValueFunc
	// A nil in or out means the rule only consumes its input fields in
	// that direction. An out with no canonical inputs (Constant) runs on
	// every record.
	err error // a problem found at construction, reported by NewMapping
	// single marks a rule of one field on each side whose value is
	// converted by inOne and outOne (nil: kept as it is): Rename and
	// RenameWith. Transform runs it without the slices in and out take.
	single        bool
	inOne, outOne func(concord.Value) (concord.Value, error)
}

func (r *fieldRule) addTo(m *Mapping) { m.rules = append(m.rules, r) }

type strictOption struct{}

func (strictOption) addTo(m *Mapping) { m.strict = true }

// Strict is an option for [NewMapping]: fields that no rule mentions are
// dropped in both directions instead of passing through. Use it for a
// system whose records carry many fields the pipeline does not sync; list
// a field that keeps its name as Rename("sku", "sku").
func Strict() Rule { return strictOption{} }

// Rename declares that system field sys is canonical field canon, with the
// same value. The names may be equal.
func Rename(sys, canon string) Rule {
	same := func(v []concord.Value) ([]concord.Value, error) { return v, nil }
	return &fieldRule{
		desc: fmt.Sprintf("Rename(%q, %q)", sys, canon),
		sys:  []string{sys}, canon: []string{canon},
		in: same, out: same, single: true,
	}
}

// Converter converts one value in each direction, for [RenameWith].
// Either function receives nil for an empty field and may return nil.
// They must not modify the value they are given (build a new map or slice).
// Errors should wrap [ErrWrongType] or [ErrBadValue]; the Mapping wraps them
// in a [*FieldError] naming the record and field.
type Converter struct {
	// In converts a system value to the canonical value.
	In func(concord.Value) (concord.Value, error)
	// Out converts a canonical value to the system value.
	Out func(concord.Value) (concord.Value, error)
}

// RenameWith declares that system field sys is canonical field canon,
// converted by c: for example a "yes"/"no" string in the system and a bool
// in the canonical record, with [BoolString].
func RenameWith(sys, canon string, c Converter) Rule {
	r := &fieldRule{
		desc: fmt.Sprintf("RenameWith(%q, %q)", sys, canon),
		sys:  []string{sys}, canon: []string{canon},
	}
	if c.In == nil || c.Out == nil {
		r.err = errors.New("converter needs both In and Out")
		return r
	}
	r.in, r.out = lift(c.In), lift(c.Out)
	r.single, r.inOne, r.outOne = true, c.In, c.Out
	return r
}

func lift(f func(concord.Value) (concord.Value, error)) ValueFunc {
	return func(v []concord.Value) ([]concord.Value, error) {
		out, err := f(v[0])
		if err != nil {
			return nil, err
		}
		return []concord.Value{out}, nil
	}
}

// Computed declares that system fields sys together are canonical fields
// canon together: in computes the canonical values from the system values
// (inbound), out the reverse (outbound). For example a system's "name" and
// canonical "first_name" and "last_name":
//
//	Computed([]string{"name"}, []string{"first_name", "last_name"}, splitName, joinName)
//
// A function runs only when the record holds all its input fields; see
// [Mapping] for partial records. An error it returns becomes a
// [*FieldError] naming the input fields (an error that already is a
// *FieldError keeps its Field, and gets the record key if it has none).
func Computed(sys, canon []string, in, out ValueFunc) Rule {
	r := &fieldRule{
		desc: fmt.Sprintf("Computed(%q, %q)", sys, canon),
		sys:  slices.Clone(sys), canon: slices.Clone(canon),
		in: in, out: out,
	}
	switch {
	case len(sys) == 0 || len(canon) == 0:
		r.err = errors.New("needs at least one system and one canonical field")
	case in == nil || out == nil:
		r.err = errors.New("needs both an in and an out function")
	}
	return r
}

// Drop declares a system-only field: it is dropped inbound and never
// written outbound (a canonical field of the same name is not passed
// through).
func Drop(sys string) Rule {
	return &fieldRule{desc: fmt.Sprintf("Drop(%q)", sys), sys: []string{sys}}
}

// Constant declares a system field that every outbound record sets to v
// (for example the name of the system that wrote it) and that is dropped
// inbound. Each record gets its own copy of v.
func Constant(sys string, v concord.Value) Rule {
	r := &fieldRule{desc: fmt.Sprintf("Constant(%q)", sys), sys: []string{sys}}
	if err := concord.CheckValue(v); err != nil {
		r.err = err
		return r
	}
	v = concord.CloneValue(v)
	r.out = func([]concord.Value) ([]concord.Value, error) {
		return []concord.Value{concord.CloneValue(v)}, nil
	}
	return r
}

// NewMapping builds a Mapping from rules, checking them first: every field
// name must be non-empty, no two rules may claim the same system field or
// the same canonical field, and each rule must be complete. The error
// wraps [ErrInvalidMapping] and lists every problem, naming the rules by
// position and as written.
func NewMapping(rules ...Rule) (*Mapping, error) {
	m := &Mapping{claimed: make(map[string]bool)}
	var errs []error
	for i, r := range rules {
		if r == nil {
			errs = append(errs, fmt.Errorf("%w: rule %d is nil", ErrInvalidMapping, i+1))
			continue
		}
		r.addTo(m)
	}
	sysOwner := make(map[string]*fieldRule)
	canonOwner := make(map[string]*fieldRule)
	for i, r := range m.rules {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%w: rule %d %s: %s", ErrInvalidMapping, i+1, r.desc, fmt.Sprintf(format, args...)))
		}
		if r.err != nil {
			bad("%v", r.err)
		}
		for _, side := range []struct {
			what   string
			names  []string
			owners map[string]*fieldRule
		}{{"system", r.sys, sysOwner}, {"canonical", r.canon, canonOwner}} {
			for _, name := range side.names {
				switch prev, taken := side.owners[name]; {
				case name == "":
					bad("empty %s field name", side.what)
				case taken && prev == r:
					bad("%s field %q named twice", side.what, name)
				case taken:
					bad("%s field %q already claimed by %s", side.what, name, prev.desc)
				default:
					side.owners[name] = r
					m.claimed[name] = true
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

// MustMapping is [NewMapping] for examples, tests and package-level
// variables: it panics if the rules are invalid.
func MustMapping(rules ...Rule) *Mapping {
	m, err := NewMapping(rules...)
	if err != nil {
		panic(err)
	}
	return m
}

// Inbound returns the Transformer from the system's shape to the canonical
// shape.
func (m *Mapping) Inbound() Transformer { return direction{m, inbound} }

// Outbound returns the Transformer from the canonical shape to the
// system's shape.
func (m *Mapping) Outbound() Transformer { return direction{m, outbound} }

// Fields returns the canonical fields the rules produce, sorted. With
// pass-through (no [Strict]) other fields may appear in inbound results too.
// The caller owns the slice.
func (m *Mapping) Fields() []string {
	var out []string
	for _, r := range m.rules {
		out = append(out, r.canon...)
	}
	slices.Sort(out)
	return out
}

type dir bool

const (
	inbound  dir = false
	outbound dir = true
)

// direction is one of a Mapping's two Transformers.
type direction struct {
	m *Mapping
	d dir
}

// String names the transformer in [Chain] errors.
func (t direction) String() string {
	if t.d == inbound {
		return "mapping inbound"
	}
	return "mapping outbound"
}

// readOnly: the rules' functions get copies of the maps and slices they
// are given (Transform), so a Mapping never modifies its input.
func (t direction) readOnly() bool { return true }

// lineage: the outputs of every rule that reads one of in (or nothing: a
// Constant), and the fields of in that no rule claims unless the mapping
// is strict, which pass through (as Transform decides).
func (t direction) lineage(in []string) ([]string, bool) {
	var out []string
	for _, r := range t.m.rules {
		from, to, fn := r.sys, r.canon, r.in
		if t.d == outbound {
			from, to, fn = r.canon, r.sys, r.out
		}
		if !r.single && fn == nil {
			continue // the rule only consumes its input in this direction
		}
		if len(from) == 0 || slices.ContainsFunc(from, func(f string) bool { return slices.Contains(in, f) }) {
			out = append(out, to...)
		}
	}
	if !t.m.strict {
		for _, f := range in {
			if !t.m.claimed[f] {
				out = append(out, f)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// Transform applies the mapping's rules in one direction.
//
// A rule of one field on each side (Rename, RenameWith) is applied without
// building the slices a ValueFunc takes, and when the rules read every
// field of rec none is left to pass through and rec is not walked again:
// a mapped record costs its new map and the converters' own work.
func (t direction) Transform(_ context.Context, rec concord.Record) (concord.Record, error) {
	if rec.Deleted {
		return rec, nil
	}
	out := make(map[string]concord.Value, len(rec.Fields)+1)
	read := 0 // the fields of rec the rules read (no two rules read one)
	for _, r := range t.m.rules {
		from, to, fn, one := r.sys, r.canon, r.in, r.inOne
		if t.d == outbound {
			from, to, fn, one = r.canon, r.sys, r.out, r.outOne
		}
		if r.single {
			v, ok := rec.Fields[from[0]]
			if !ok {
				continue // not reported: produce nothing
			}
			read++
			if one != nil {
				// The function's own copy: it must not modify a map
				// or slice it is given, and if it does, it changes
				// only that copy (a scalar is not copied).
				w, err := one(concord.CloneValue(v))
				if err != nil {
					return concord.Record{}, fieldError(rec.Key, from, []concord.Value{v}, err)
				}
				v = w
			}
			out[to[0]] = v
			continue
		}
		if fn == nil {
			continue // the rule only consumes its input in this direction
		}
		args, err := gather(rec, from, r)
		if err != nil {
			return concord.Record{}, err
		}
		if args == nil && len(from) > 0 {
			continue // not reported: produce nothing
		}
		read += len(args)
		for i, v := range args {
			args[i] = concord.CloneValue(v) // see the single-field rules above
		}
		res, err := fn(args)
		if err == nil && len(res) != len(to) {
			err = fmt.Errorf("%s returned %d values for %d fields %q", r.desc, len(res), len(to), to)
		}
		if err != nil {
			return concord.Record{}, fieldError(rec.Key, from, args, err)
		}
		for i, name := range to {
			out[name] = res[i]
		}
	}
	if !t.m.strict && read < len(rec.Fields) {
		for name, v := range rec.Fields {
			if !t.m.claimed[name] {
				out[name] = v
			}
		}
	}
	rec.Fields = out
	return rec, nil
}

// gather returns the values of fields from rec in order, nil if none of
// them is present, and a [*FieldError] wrapping [ErrMissingField] if only
// some are.
func gather(rec concord.Record, fields []string, r *fieldRule) ([]concord.Value, error) {
	var args []concord.Value
	missing := ""
	for i, name := range fields {
		v, ok := rec.Fields[name]
		if !ok {
			if missing == "" {
				missing = name
			}
			continue
		}
		if args == nil {
			args = make([]concord.Value, len(fields))
		}
		args[i] = v
	}
	if args != nil && missing != "" {
		return nil, &FieldError{
			Key:   rec.Key,
			Field: missing,
			Err:   fmt.Errorf("%w: %s reads %q together", ErrMissingField, r.desc, fields),
		}
	}
	return args, nil
}

// fieldError wraps err, returned by a rule reading fields, as a
// [*FieldError].
func fieldError(key string, fields []string, args []concord.Value, err error) error {
	if fe, ok := err.(*FieldError); ok {
		c := *fe
		if c.Key == "" {
			c.Key = key
		}
		if c.Field == "" {
			c.Field = strings.Join(fields, ",")
		}
		return &c
	}
	fe := &FieldError{Key: key, Field: strings.Join(fields, ","), Err: err}
	if len(args) == 1 {
		fe.Value = args[0]
	} else if args != nil {
		fe.Value = []any(args)
	}
	return fe
}
