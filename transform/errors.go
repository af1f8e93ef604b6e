package transform

import (
	"errors"
	"fmt"
)

// Sentinel reasons carried by a [*FieldError]; test them with errors.Is.
var (
	// ErrMissingField: a rule that reads several fields together found
	// some of them in the record but not all.
	ErrMissingField = errors.New("missing field")
	// ErrWrongType: a value has a dynamic type the conversion does not
	// accept (a number where a string is expected).
	ErrWrongType = errors.New("wrong type")
	// ErrBadValue: a value has the right type but cannot be converted
	// ("maybe" where "yes" or "no" is expected, an unparsable date).
	ErrBadValue = errors.New("bad value")
)

// ErrInvalidMapping is wrapped by every error [NewMapping] returns.
var ErrInvalidMapping = errors.New("invalid mapping")

// FieldError reports a field that a Transformer cannot map. The engine
// quarantines the record with this error as the reason.
type FieldError struct {
	// Key of the record.
	Key string
	// Field at fault, in the shape the transformer read it (the system
	// field for an inbound transformer, the canonical field for an
	// outbound one). Several fields that a rule reads together are
	// joined with commas.
	Field string
	// Value of the field as read: one Value, or a []any holding the
	// values of several fields. Not meaningful for [ErrMissingField].
	Value any
	// Err is the reason: [ErrMissingField], [ErrWrongType], [ErrBadValue]
	// or whatever the rule's function returned, possibly wrapped.
	Err error
}

// Error names the record, the field and its value, and says why.
func (e *FieldError) Error() string {
	if errors.Is(e.Err, ErrMissingField) {
		return fmt.Sprintf("record %q field %q: %v", e.Key, e.Field, e.Err)
	}
	return fmt.Sprintf("record %q field %q value %s: %v", e.Key, e.Field, formatValue(e.Value), e.Err)
}

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// formatValue renders v for an error message: strings quoted, long values
// shortened.
func formatValue(v any) string {
	var s string
	if str, ok := v.(string); ok {
		s = fmt.Sprintf("%q", str)
	} else {
		s = fmt.Sprintf("%v", v)
	}
	const maxLen = 80
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}
