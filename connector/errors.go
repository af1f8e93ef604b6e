package connector

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class is the class of a failure: what the engine does about it. The five
// classes a connector uses are constants of this type that are also the
// sentinel errors (Go's "constant error" idiom): a connector marks an error
// with one (through [Transient], [RateLimited], [Conflict], [Permanent],
// [NotFound], an [*Error], or by wrapping the class with %w), errors.Is
// matches it anywhere in a chain, and [Classify] returns it for comparison
// with ==. A Class cannot be reassigned, unlike a sentinel variable.
//
//   - ErrTransient: a failure that may pass (a timeout, a 5xx): retried later.
//   - ErrRateLimited: the system asked us to slow down; retried after
//     the duration that [RetryAfter] reports, if any.
//   - ErrConflict: a precondition failed (the version tag no longer
//     matches): the record is re-read and re-merged, then written again.
//   - ErrPermanent: retrying the same write cannot succeed (a validation
//     error in the system, a 4xx): dead-lettered with the reason.
//   - ErrNotFound: the record does not exist.
//
// [Class.String] is the class's name as audit events, dead letters, alerts
// and metrics carry it ("transient", "rate_limited", "conflict",
// "permanent", "not_found"); [Class.Error] the sentinel's message, which
// is also what fmt prints for %v and %s (an error's Error method comes
// first): call String for the name. The
// engine names two more classes for failures of user code that no
// connector returns (package sync: ClassInvalid, ClassPanic, ClassCursor).
// The zero Class is no class: that of a nil error. Compare a Class with
// another Class, never with nil: stored in an error variable even the zero
// Class is a non-nil error.
type Class string

// The classes of connector errors. Each is also the sentinel error of its
// class.
const (
	ErrTransient   Class = "transient"
	ErrRateLimited Class = "rate_limited"
	ErrConflict    Class = "conflict"
	ErrPermanent   Class = "permanent"
	ErrNotFound    Class = "not_found"
)

// String returns the class's name, as audit events, dead letters and
// alerts carry it.
func (c Class) String() string { return string(c) }

// Error returns the message of the class's sentinel error ("transient
// failure", "precondition failed", ...); for a class of the engine's own,
// its name.
func (c Class) Error() string {
	switch c {
	case ErrTransient:
		return "transient failure"
	case ErrRateLimited:
		return "rate limited"
	case ErrConflict:
		return "precondition failed"
	case ErrPermanent:
		return "permanent failure"
	case ErrNotFound:
		return "not found"
	case "":
		return "unclassified failure"
	}
	return string(c)
}

// Error is a classified connector error. It matches its class with
// errors.Is, and unwraps to the underlying error.
type Error struct {
	// Class is one of ErrTransient, ErrRateLimited, ErrConflict,
	// ErrPermanent or ErrNotFound. The zero Class counts as
	// ErrTransient (see [Classify]).
	Class Class
	// Key is the record the error is about, empty for a whole call.
	Key string
	// RetryAfter is how long the system asked us to wait, zero if it
	// did not say.
	RetryAfter time.Duration
	// Err is the underlying error; it may be nil.
	Err error
}

// Error formats the class, key, wait and cause.
func (e *Error) Error() string {
	s := e.Class.Error()
	if e.Key != "" {
		s = fmt.Sprintf("record %q: %s", e.Key, s)
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the class and the cause, so that errors.Is matches both.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Class != "" {
		errs = append(errs, e.Class)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Transient marks err as transient.
func Transient(err error) error { return &Error{Class: ErrTransient, Err: err} }

// RateLimited marks err as a rate limit; after is the wait the system asked
// for, zero if none.
func RateLimited(err error, after time.Duration) error {
	return &Error{Class: ErrRateLimited, RetryAfter: after, Err: err}
}

// Conflict marks err as a failed precondition.
func Conflict(err error) error { return &Error{Class: ErrConflict, Err: err} }

// Permanent marks err as permanent.
func Permanent(err error) error { return &Error{Class: ErrPermanent, Err: err} }

// NotFound returns a not-found error for key.
func NotFound(key string) error { return &Error{Class: ErrNotFound, Key: key} }

// Classify returns the class of err: one of the five classes, or
// ErrTransient for a non-nil error that carries none (an unknown failure is
// assumed to pass, and is retried within the retry policy's limits). When
// err carries several, the most severe wins: permanent, conflict, not
// found, rate limited. It returns the zero Class for a nil error.
func Classify(err error) Class {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrPermanent):
		return ErrPermanent
	case errors.Is(err, ErrConflict):
		return ErrConflict
	case errors.Is(err, ErrNotFound):
		return ErrNotFound
	case errors.Is(err, ErrRateLimited):
		return ErrRateLimited
	}
	return ErrTransient
}

// RetryAfter returns the wait that err asks for, if it is (or wraps) an
// [*Error] with a RetryAfter.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// Retryable reports whether the engine may retry the same call: true for
// transient and rate-limited errors (and unclassified ones).
func Retryable(err error) bool {
	c := Classify(err)
	return c == ErrTransient || c == ErrRateLimited
}

// RetryAfterCeiling is the longest wait [ParseRetryAfter] returns: 2³¹ seconds
// (about 68 years), the value RFC 9111 has caches use for a delta-seconds
// that is too large. Longer delays, and dates further ahead, saturate to
// it: a huge header never wraps into a short or negative wait. It only
// keeps the arithmetic sound; how long the engine actually waits is capped
// far lower by its retry policy (MaxRetryAfter in package sync).
const RetryAfterCeiling = (1 << 31) * time.Second

// httpDateLayouts are the three HTTP-date forms of RFC 9110, section 5.6.7:
// IMF-fixdate, which senders must use, and the obsolete RFC 850 and asctime
// forms, which recipients must accept.
var httpDateLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	time.ANSIC, // "Mon Jan _2 15:04:05 2006"
}

// ParseRetryAfter reads an HTTP Retry-After header value (RFC 9110, section
// 10.2.3) in either of its forms and returns how long to wait from now:
//
//   - delay-seconds: one or more ASCII digits ("120"), nothing else: no
//     sign, no inner space, no fraction. A delay above [RetryAfterCeiling]
//     saturates to it.
//   - HTTP-date, in any of the three forms RFC 9110 lists
//     ("Wed, 21 Oct 2026 07:28:00 GMT", "Wednesday, 21-Oct-26 07:28:00
//     GMT", "Wed Oct 21 07:28:00 2026"). A date in the past means zero; one
//     further ahead than RetryAfterCeiling saturates to it.
//
// Spaces and tabs around the value are ignored. It reports false for an
// empty or malformed value; the duration is then zero. The result is
// never negative.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.Trim(value, " \t")
	if value == "" {
		return 0, false
	}
	if value[0] >= '0' && value[0] <= '9' {
		var secs uint64
		for i := 0; i < len(value); i++ {
			c := value[i]
			if c < '0' || c > '9' {
				return parseHTTPDate(value, now)
			}
			if secs <= uint64(RetryAfterCeiling/time.Second) {
				secs = secs*10 + uint64(c-'0')
			}
		}
		if secs > uint64(RetryAfterCeiling/time.Second) {
			return RetryAfterCeiling, true
		}
		return time.Duration(secs) * time.Second, true
	}
	return parseHTTPDate(value, now)
}

func parseHTTPDate(value string, now time.Time) (time.Duration, bool) {
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, value); err == nil {
			if t.After(now.Add(RetryAfterCeiling)) {
				return RetryAfterCeiling, true
			}
			return max(t.Sub(now), 0), true
		}
	}
	return 0, false
}
