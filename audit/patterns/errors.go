package patterns

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord/audit"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrBadOptions: an [Options] field is out of range; see [*OptionsError].
	ErrBadOptions = errors.New("patterns: bad options")
	// ErrBadObservation: an [Observation] cannot be used; see
	// [*ObservationError].
	ErrBadObservation = errors.New("patterns: bad observation")
	// ErrAttrsPanicked: the attrs function given to [FromEvents] panicked;
	// see [*EventError].
	ErrAttrsPanicked = errors.New("patterns: attrs function panicked")
)

// OptionsError names the [Options] field that is out of range, and why. It
// matches [ErrBadOptions].
type OptionsError struct {
	// Field is the name of the Options field.
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the field and the reason.
func (e *OptionsError) Error() string {
	return fmt.Sprintf("patterns: bad options: %s %s", e.Field, e.Reason)
}

// Is reports whether target is [ErrBadOptions].
func (e *OptionsError) Is(target error) bool { return target == ErrBadOptions }

// ObservationError names the observation that cannot be used, and why. It
// matches [ErrBadObservation].
type ObservationError struct {
	// Index is the position of the observation in the slice given to
	// [Find].
	Index int
	// Attr is the attribute at fault, if one is.
	Attr string
	// Reason says what is wrong.
	Reason string
}

// Error names the observation, the attribute and the reason.
func (e *ObservationError) Error() string {
	s := fmt.Sprintf("patterns: bad observation %d", e.Index)
	if e.Attr != "" {
		s += fmt.Sprintf(", attribute %q", e.Attr)
	}
	return s + ": " + e.Reason
}

// Is reports whether target is [ErrBadObservation].
func (e *ObservationError) Is(target error) bool { return target == ErrBadObservation }

// EventError reports an audit event that [FromEvents] could not turn into
// an observation: its position, kind, system and key, and the cause (which
// matches [ErrAttrsPanicked] when the attrs function panicked). It is
// audit.EventError, the type that names a failing event everywhere.
type EventError = audit.EventError
