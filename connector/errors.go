package connector

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The error classes. Connectors mark their errors with one of them (through
// [Transient], [RateLimited], [Conflict], [Permanent], [NotFound], or by
// wrapping the sentinel with %w) and the engine acts on the class:
//
//   - ErrTransient: a failure that may pass (a timeout, a 5xx): retried later.
//   - ErrRateLimited: the system asked us to slow down; retried after
//     the duration that [RetryAfter] reports, if any.
//   - ErrConflict: a precondition failed (the version tag no longer
//     matches): the record is re-read and re-merged, then written again.
//   - ErrPermanent: retrying the same write cannot succeed (a validation
//     error in the system, a 4xx): dead-lettered with the reason.
//   - ErrNotFound: the record does not exist.
var (
	ErrTransient   = errors.New("transient failure")
	ErrRateLimited = errors.New("rate limited")
	ErrConflict    = errors.New("precondition failed")
	ErrPermanent   = errors.New("permanent failure")
	ErrNotFound    = errors.New("not found")
)

// Class is an error class, one of the sentinels above, or nil for errors
// that carry none.
type Class = error

// Error is a classified connector error. It matches its class with
// errors.Is, and unwraps to the underlying error.
type Error struct {
	// Class is one of ErrTransient, ErrRateLimited, ErrConflict,
	// ErrPermanent or ErrNotFound.
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
	if e.Err == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Err}
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

// Classify returns the class of err: one of the five sentinels, or
// ErrTransient for a non-nil error that carries none (an unknown failure is
// assumed to pass, and is retried within the retry policy's limits). It
// returns nil for a nil error.
func Classify(err error) Class {
	switch {
	case err == nil:
		return nil
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
