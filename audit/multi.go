package audit

import (
	"context"
	"errors"
	"fmt"
)

// Multi returns a Sink that emits every batch to each of sinks, in order.
// A failing sink does not stop the others: every sink sees every batch, and
// Emit returns the failures joined with errors.Join, each wrapped in a
// [*SinkError] that gives the failed sink's index.
//
// Multi keeps its own copy of the sinks slice. It panics if a sink is nil,
// so that a wiring mistake shows at construction rather than at the first
// cycle. Multi with no sinks behaves like [Discard].
func Multi(sinks ...Sink) Sink {
	for i, s := range sinks {
		if s == nil {
			panic(fmt.Sprintf("audit: Multi: sink %d is nil", i))
		}
	}
	return multiSink(append([]Sink(nil), sinks...))
}

type multiSink []Sink

func (m multiSink) Emit(ctx context.Context, events []Event) error {
	var errs []error
	for i, s := range m {
		if err := s.Emit(ctx, events); err != nil {
			errs = append(errs, &SinkError{Index: i, Err: err})
		}
	}
	return errors.Join(errs...)
}
