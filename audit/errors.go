package audit

import (
	"fmt"
	"strconv"

	"github.com/concordsync/concord"
)

// SinkError reports that one sink of a [Multi] failed. Multi returns one
// SinkError per failed sink, joined with errors.Join, so that errors.As finds
// the first and errors.Is reaches every cause.
type SinkError struct {
	// Index is the position of the failed sink in the arguments of Multi.
	Index int
	// Err is what the sink returned.
	Err error
}

// Error names the sink by its index and gives its error.
func (e *SinkError) Error() string {
	return "audit: sink " + strconv.Itoa(e.Index) + ": " + e.Err.Error()
}

// Unwrap returns the sink's error.
func (e *SinkError) Unwrap() error { return e.Err }

// EventError reports one event that a sink could not record (a value that
// cannot be encoded, a handler that failed). The sink still records the
// other events of the batch.
type EventError struct {
	// Index is the position of the event in the batch passed to Emit.
	Index int
	// Kind, System and Key identify the event.
	Kind   Kind
	System concord.SystemID
	Key    string
	// Err is the cause.
	Err error
}

// Error names the event and gives the cause.
func (e *EventError) Error() string {
	s := fmt.Sprintf("audit: event %d (%s", e.Index, e.Kind)
	if e.System != "" {
		s += ", system " + string(e.System)
	}
	if e.Key != "" {
		s += fmt.Sprintf(", key %q", e.Key)
	}
	return s + "): " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *EventError) Unwrap() error { return e.Err }

func eventError(i int, ev *Event, err error) *EventError {
	return &EventError{Index: i, Kind: ev.Kind, System: ev.System, Key: ev.Key, Err: err}
}
