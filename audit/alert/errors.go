package alert

import (
	"errors"
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
)

// DeliveryError reports that an adapter could not deliver an alert. It names
// the adapter and the alert's system and group; Err says why (an HTTP
// status, a network or SMTP error, a context error). An Err with a
// Permanent() bool method that returns true (such as notify.HTTPError for
// a 4xx status) is not retried by [Async].
type DeliveryError struct {
	// Adapter names the adapter: "slog" here; "slack", "webhook" or "email"
	// in package notify.
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
// with a Permanent() bool method (such as notify.HTTPError) that returns
// true.
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
