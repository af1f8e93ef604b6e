package dict

import (
	"errors"
	"fmt"
	"strings"

	"github.com/concordsync/concord"
)

// Sentinels for the rule a [Violation] breaks; test with errors.Is on a
// Violation or on the [*Violations] that holds it.
var (
	// ErrRequired: a required field is missing or nil.
	ErrRequired = errors.New("required")
	// ErrType: the value's dynamic type does not fit the field's Type.
	ErrType = errors.New("wrong type")
	// ErrPattern: a string does not match the field's Pattern.
	ErrPattern = errors.New("pattern mismatch")
	// ErrRange: a number is outside the field's Range, or a string, list
	// or map is outside MinLen..MaxLen.
	ErrRange = errors.New("out of range")
	// ErrAllowed: the value is not one of the field's Allowed values.
	ErrAllowed = errors.New("value not allowed")
	// ErrFormat: a string does not have the format of the field's Kind.
	ErrFormat = errors.New("bad format")
	// ErrUnknown: the field is not declared and the dictionary rejects
	// unknown fields.
	ErrUnknown = errors.New("unknown field")
)

// ErrInvalidDictionary is wrapped by every error [Options.New] returns.
var ErrInvalidDictionary = errors.New("invalid dictionary")

// ErrUnknownKind: a Field names a kind its [Kinds] registry does not hold.
var ErrUnknownKind = errors.New("unknown kind")

// Violation is one rule that one field of a record breaks. It is an error:
// errors.Is matches it to its Rule (one of the Err sentinels of this
// package) and, for a format violation, to the kind validator's own error.
type Violation struct {
	// Key of the record.
	Key string
	// Field at fault.
	Field string
	// Value as the record holds it (nil for a missing field).
	Value concord.Value
	// Rule broken: [ErrRequired], [ErrType], [ErrPattern], [ErrRange],
	// [ErrAllowed], [ErrFormat] or [ErrUnknown].
	Rule error
	// Reason explains it in words ("length 81, maximum 80").
	Reason string
	// Cause is the kind validator's error for [ErrFormat], else nil.
	Cause error
}

// Error names the record, the field and its value, the rule and the reason.
func (v Violation) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "record %q field %q", v.Key, v.Field)
	if v.Rule != ErrRequired {
		b.WriteString(" value ")
		b.WriteString(formatValue(v.Value))
	}
	b.WriteString(": ")
	b.WriteString(v.Rule.Error())
	if v.Reason != "" {
		b.WriteString(": ")
		b.WriteString(v.Reason)
	}
	return b.String()
}

// Unwrap returns the Rule and, if set, the Cause.
func (v Violation) Unwrap() []error {
	if v.Cause != nil {
		return []error{v.Rule, v.Cause}
	}
	return []error{v.Rule}
}

// Violations is the error [Dictionary.Validate] returns: every violation of
// one record, in the dictionary's field order (undeclared fields last, by
// name). errors.As reaches it, and each [Violation] in it; errors.Is
// matches any rule broken.
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
		if v.Rule != ErrRequired && v.Rule != ErrUnknown {
			b.WriteString(" value " + formatValue(v.Value))
		}
		b.WriteString(": " + v.Rule.Error())
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

// formatValue renders v for a message: strings quoted, long values cut.
func formatValue(v any) string {
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
