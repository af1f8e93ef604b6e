package dict

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord/transform"
)

// Sentinels for the rule a [Violation] breaks; test with errors.Is on a
// Violation or on the [*Violations] that holds it.
var (
	// ErrRequired: a required field is missing or nil. It is
	// transform.ErrRequired, which the engine understands.
	ErrRequired = transform.ErrRequired
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
	// unknown fields. It is transform.ErrUnknownField.
	ErrUnknown = transform.ErrUnknownField
)

// ErrInvalidDictionary is wrapped by every error [Options.New] returns.
var ErrInvalidDictionary = errors.New("invalid dictionary")

// ErrUnknownKind: a Field names a kind its [Kinds] registry does not hold.
var ErrUnknownKind = errors.New("unknown kind")

// Violation is one rule that one field of a record breaks: a
// [transform.Violation]. errors.Is matches it to its Rule (one of the Err
// sentinels of this package) and, for a format violation, to the kind
// validator's own error (its Cause).
type Violation = transform.Violation

// Violations is the error [Dictionary.Validate] returns: every violation of
// one record, in the dictionary's field order (undeclared fields last, by
// name). It is a [transform.Violations], the form the engine understands
// from any validator. errors.As reaches it, and each [Violation] in it;
// errors.Is matches any rule broken.
type Violations = transform.Violations

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
