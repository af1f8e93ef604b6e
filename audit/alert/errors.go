package alert

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/concordsync/concord"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrInvalidConfig: a constructor was given a configuration it cannot
	// use. The wrapping error names the adapter and the field.
	ErrInvalidConfig = errors.New("invalid alert configuration")
	// ErrQueueFull: [Async] dropped an alert because its queue was full.
	ErrQueueFull = errors.New("alert queue full, alert dropped")
	// ErrClosed: [Async] was closed and accepts no more alerts, or Run was
	// called after Close.
	ErrClosed = errors.New("alert queue closed")
	// ErrRunning: [Async.Run] or [Async.Start] was called while a worker
	// was already running or had run.
	ErrRunning = errors.New("alert queue worker already started")
	// ErrUndelivered: [Async.Close] could not deliver every queued alert
	// before its drain deadline, or the worker had stopped.
	ErrUndelivered = errors.New("alerts left undelivered")

	// ErrSignatureMalformed: a webhook signature or timestamp header
	// is missing or not in the expected form.
	ErrSignatureMalformed = errors.New("malformed webhook signature")
	// ErrSignatureMismatch: a webhook signature does not match the body
	// and timestamp (a wrong secret or a tampered request).
	ErrSignatureMismatch = errors.New("webhook signature mismatch")
	// ErrSignatureExpired: a webhook timestamp is too old (a replay) or
	// too far in the future.
	ErrSignatureExpired = errors.New("webhook timestamp outside tolerance")
)

// DeliveryError reports that an adapter could not deliver an alert. It names
// the adapter and the alert's system and group; Err says why (an
// [*HTTPError], a network or SMTP error, a context error).
type DeliveryError struct {
	// Adapter is "slack", "webhook", "email" or "slog".
	Adapter string
	// System and GroupKey are those of the alert.
	System   concord.SystemID
	GroupKey string
	// Err is the cause.
	Err error
}

// Error names the adapter, system and group, and gives the cause.
func (e *DeliveryError) Error() string {
	s := "alert: " + e.Adapter
	if e.System != "" {
		s += ": system " + string(e.System)
	}
	if e.GroupKey != "" {
		s += ", group " + strconv.Quote(e.GroupKey)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

func deliveryError(adapter string, a Alert, err error) error {
	return &DeliveryError{Adapter: adapter, System: a.System, GroupKey: a.GroupKey, Err: err}
}

// HTTPError reports an HTTP endpoint that answered with a status outside
// 2xx.
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Body is the start of the response body (at most 512 bytes), for
	// the reason the endpoint gave.
	Body string
}

// Error gives the status and the body excerpt.
func (e *HTTPError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	if e.Body != "" {
		s += ": " + strconv.Quote(e.Body)
	}
	return s
}

// Permanent reports whether retrying the same request cannot help: a 4xx
// status other than 408 (timeout) and 429 (rate limited). [Async] does not
// retry permanent errors.
func (e *HTTPError) Permanent() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 &&
		e.StatusCode != http.StatusRequestTimeout && e.StatusCode != http.StatusTooManyRequests
}

// TargetError reports that one alerter of a [Multi] failed.
type TargetError struct {
	// Index is the position of the alerter in the arguments of Multi.
	Index int
	// Err is what the alerter returned.
	Err error
}

// Error names the alerter by its index and gives its error.
func (e *TargetError) Error() string {
	return "alert: target " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

// Unwrap returns the alerter's error.
func (e *TargetError) Unwrap() error { return e.Err }

// permanent reports whether err says that retrying cannot help: an error
// with a Permanent() bool method (such as [*HTTPError]) that returns true.
// A joined error (from [Multi]) is permanent only if all its errors are.
func permanent(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		for _, e := range errs {
			if !permanent(e) {
				return false
			}
		}
		return len(errs) > 0
	}
	p, ok := errors.AsType[interface {
		error
		Permanent() bool
	}](err)
	return ok && p.Permanent()
}
