package alert

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrPanic matches (with errors.Is) a [*PanicError].
var ErrPanic = errors.New("alerter panicked")

// PanicError reports that the next Alerter of an [Async] or a [Grouper]
// panicked or called runtime.Goexit. Async and Grouper recover it (their
// goroutines, and their callers', survive), report it as that delivery's
// error, and never retry it: it is a bug, not a blip.
type PanicError struct {
	// Value is what was passed to panic, or GoexitValue.
	Value any
	// Stack is the stack of the goroutine that panicked, cut to 16 KiB.
	Stack []byte
}

// GoexitValue is the [PanicError.Value] of an Alerter that called
// runtime.Goexit.
const GoexitValue = "runtime.Goexit called"

// Error names the value.
func (e *PanicError) Error() string { return fmt.Sprintf("alert: next alerter panicked: %v", e.Value) }

// Unwrap returns the panic's value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Permanent reports true: retrying a panicking Alerter cannot help.
func (e *PanicError) Permanent() bool { return true }

// safeAlert calls next.Alert in a goroutine of its own and waits for it, so
// that neither a panic nor runtime.Goexit in next ends the caller's
// goroutine; either becomes a *PanicError.
func safeAlert(ctx context.Context, next Alerter, a Alert) error {
	done := make(chan error, 1)
	go func() {
		normal := false
		defer func() {
			if normal {
				return
			}
			v := recover()
			if v == nil {
				v = GoexitValue // recover returns nil only during Goexit
			}
			st := debug.Stack()
			if len(st) > 16<<10 {
				st = append(st[:16<<10:16<<10], "\n... (cut)\n"...)
			}
			done <- &PanicError{Value: v, Stack: st}
		}()
		err := next.Alert(ctx, a)
		normal = true
		done <- err
	}()
	return <-done
}
