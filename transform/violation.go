package transform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/concordsync/concord"
)

// Rules every validator may report, whatever else it checks. Validators
// (package dict, or a host's own) put them, or rules of their own, in a
// [Violation]; test with errors.Is on the Violation or on the
// [*Violations] that holds it.
var (
	// ErrRequired: a required field is missing or nil. The engine
	// treats it specially when it validates a write: a system that does
	// not carry the field at all is not at fault for lacking it.
	ErrRequired = errors.New("required")
	// ErrUnknownField: the field is not declared and the validator
	// rejects undeclared fields.
	ErrUnknownField = errors.New("unknown field")
)

// Violation is one rule that one field of a record breaks: the documented
// form of a validation failure. It is an error: errors.Is matches it to its
// Rule and, when set, to its Cause.
//
// The engine (package sync) validates records with a host's Validator and
// understands a [*Violations] made of Violations: a custom validator that
// returns one behaves exactly as package dict does. Any other error is
// treated as one violation of the whole record.
type Violation struct {
	// Key of the record.
	Key string
	// Field at fault.
	Field string
	// Value as the record holds it (nil for a missing field).
	Value concord.Value
	// Rule broken: [ErrRequired], [ErrUnknownField], or a rule of the
	// validator's own (package dict has ErrType, ErrPattern, ...). It
	// must not be nil.
	Rule error
	// Reason explains it in words ("length 81, maximum 80").
	Reason string
	// Cause is an underlying error (a format checker's), or nil.
	Cause error
}

// Error names the record, the field and its value, the rule and the reason.
func (v Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %q field %q", v.Key, v.Field)
	if v.Rule != ErrRequired {
		b.WriteString(" value ")
		b.WriteString(shortValue(v.Value))
	}
	b.WriteString(": ")
	b.WriteString(ruleText(v.Rule))
	if v.Reason != "" {
		b.WriteString(": ")
		b.WriteString(v.Reason)
	}
	return b.String()
}

// Unwrap returns the Rule and, if set, the Cause.
func (v Violation) Unwrap() []error {
	var errs []error
	if v.Rule != nil {
		errs = append(errs, v.Rule)
	}
	if v.Cause != nil {
		errs = append(errs, v.Cause)
	}
	return errs
}

// Violations is every violation of one record: the error a validator
// returns for an invalid record. errors.As reaches it, and each [Violation]
// in it; errors.Is matches any rule broken.
type Violations struct {
	// Key of the record.
	Key string
	// List holds at least one Violation.
	List []Violation
}

// Error lists the violations on one line.
func (e *Violations) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %q: %d dictionary violation", e.Key, len(e.List))
	if len(e.List) != 1 {
		b.WriteString("s")
	}
	for i, v := range e.List {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "field %q", v.Field)
		if v.Rule != ErrRequired && v.Rule != ErrUnknownField {
			b.WriteString(" value " + shortValue(v.Value))
		}
		b.WriteString(": " + ruleText(v.Rule))
		if v.Reason != "" {
			b.WriteString(" (" + v.Reason + ")")
		}
	}
	return b.String()
}

// Unwrap returns each Violation.
func (e *Violations) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, v := range e.List {
		errs[i] = v
	}
	return errs
}

// ruleText is the rule's text, "invalid" for a nil rule (a validator's
// mistake must not make an error message panic).
func ruleText(rule error) string {
	if rule == nil {
		return "invalid"
	}
	return rule.Error()
}

// shortValue renders v for a violation message: strings quoted, cut to 60
// bytes.
func shortValue(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = fmt.Sprintf("%q", str)
	} else {
		s = fmt.Sprintf("%v", v)
	}
	const maxLen = 60
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}
