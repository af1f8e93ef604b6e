package dict

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// Validate checks rec against the dictionary and returns nil or a
// [*Violations] listing every violation (not just the first): missing
// required fields, then for each present, non-nil field its type and, if
// the type is right, its allowed values, pattern, range or length, and
// kind; with [RejectUnknown], every undeclared field. A deleted record has
// no fields to check and is valid. Validate does not modify rec.
func (d *Dictionary) Validate(rec concord.Record) error {
	if rec.Deleted {
		return nil
	}
	var list []Violation
	for i := range d.fields {
		f := &d.fields[i]
		v, ok := rec.Fields[f.Name]
		if !ok || v == nil {
			if f.Required {
				reason := "missing"
				if ok {
					reason = "nil"
				}
				list = append(list, Violation{Key: rec.Key, Field: f.Name, Rule: ErrRequired, Reason: reason})
			}
			continue
		}
		list = f.check(rec.Key, v, list)
	}
	if d.unknown == RejectUnknown {
		var unknown []string
		for name := range rec.Fields {
			if _, ok := d.byName[name]; !ok {
				unknown = append(unknown, name)
			}
		}
		slices.Sort(unknown)
		for _, name := range unknown {
			list = append(list, Violation{Key: rec.Key, Field: name, Value: rec.Fields[name], Rule: ErrUnknown, Reason: "not in the dictionary"})
		}
	}
	if len(list) == 0 {
		return nil
	}
	return &Violations{Key: rec.Key, List: list}
}

// Transformer returns a Transformer that validates each record and passes
// it through unchanged, or fails with the [*Violations]. Put it at the end
// of a system's inbound chain, where records have the canonical shape.
func (d *Dictionary) Transformer() transform.Transformer { return validator{d} }

type validator struct{ d *Dictionary }

// String names the step in a [transform.Chain] error.
func (validator) String() string { return "dictionary" }

func (t validator) Transform(_ context.Context, rec concord.Record) (concord.Record, error) {
	if err := t.d.Validate(rec); err != nil {
		return concord.Record{}, err
	}
	return rec, nil
}

// check appends the violations of the non-nil value v to list.
func (f *compiled) check(key string, v concord.Value, list []Violation) []Violation {
	add := func(rule error, reason string, cause error) {
		list = append(list, Violation{Key: key, Field: f.Name, Value: v, Rule: rule, Reason: reason, Cause: cause})
	}
	if reason := checkType(f.Type, v); reason != "" {
		add(ErrType, reason, nil)
		return list
	}
	if len(f.Allowed) > 0 && !slices.ContainsFunc(f.Allowed, func(a concord.Value) bool { return concord.EqualValues(a, v) }) {
		add(ErrAllowed, "want one of "+listValues(f.Allowed), nil)
	}
	s, isString := v.(string)
	if f.re != nil && !f.re.MatchString(s) {
		add(ErrPattern, "does not match "+f.Pattern, nil)
	}
	if r := f.Range; r != nil {
		x, _ := toFloat(v)
		switch {
		case r.HasMin && x < r.Min:
			add(ErrRange, "below minimum "+formatFloat(r.Min), nil)
		case r.HasMax && x > r.Max:
			add(ErrRange, "above maximum "+formatFloat(r.Max), nil)
		}
	}
	if f.MinLen != 0 || f.MaxLen != 0 {
		n := length(v)
		switch {
		case n < f.MinLen:
			add(ErrRange, fmt.Sprintf("length %d, minimum %d", n, f.MinLen), nil)
		case f.MaxLen != 0 && n > f.MaxLen:
			add(ErrRange, fmt.Sprintf("length %d, maximum %d", n, f.MaxLen), nil)
		}
	}
	if f.kind != nil && isString {
		if err := f.kind(s); err != nil {
			add(ErrFormat, f.Kind+": "+err.Error(), err)
		}
	}
	return list
}

var decimalRE = regexp.MustCompile(`^[+-]?[0-9]+(?:\.[0-9]+)?$`)

// checkType returns why v is not a value of type t, or "" if it is.
func checkType(t Type, v concord.Value) string {
	if v == nil {
		return ""
	}
	ok := false
	switch t {
	case String:
		_, ok = v.(string)
	case Decimal:
		s, isString := v.(string)
		if isString && !decimalRE.MatchString(s) {
			return "not a decimal number"
		}
		ok = isString
	case Bool:
		_, ok = v.(bool)
	case Time:
		_, ok = v.(time.Time)
	case Number, Integer:
		if _, isNum := toFloat(v); isNum {
			if concord.CheckValue(v) != nil {
				return "not a finite number"
			}
			if t == Integer && !isIntegral(v) {
				return "not an integer"
			}
			return ""
		}
	case List:
		switch v.(type) {
		case []any, []string:
			ok = true
		}
	case Map:
		switch v.(type) {
		case map[string]any, map[string]string:
			ok = true
		}
	}
	if !ok {
		return fmt.Sprintf("want %s, got %T", t, v)
	}
	if err := concord.CheckValue(v); err != nil {
		return err.Error()
	}
	return ""
}

// toFloat returns the numeric value of a number or a Decimal string.
func toFloat(v concord.Value) (float64, bool) {
	if f, ok := concord.Float(v); ok {
		return f, true
	}
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil || math.IsInf(f, 0)
	case string: // a Decimal, already checked
		f, _ := strconv.ParseFloat(x, 64)
		return f, false
	}
	return 0, false
}

// isIntegral reports whether the number v has no fractional part.
func isIntegral(v concord.Value) bool {
	switch x := v.(type) {
	case float32:
		return float64(x) == math.Trunc(float64(x))
	case float64:
		return x == math.Trunc(x)
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		return ok && r.IsInt()
	}
	return true
}

func length(v concord.Value) int {
	switch x := v.(type) {
	case string:
		return utf8.RuneCountInString(x)
	case []any:
		return len(x)
	case []string:
		return len(x)
	case map[string]any:
		return len(x)
	case map[string]string:
		return len(x)
	}
	return 0
}

func listValues(vs []concord.Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = formatValue(v)
	}
	return strings.Join(parts, ", ")
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
