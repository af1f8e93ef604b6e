package reconcile

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/concordsync/concord"
)

// Sentinel errors; test for them with errors.Is.
var (
	// ErrNothingChecked: some side returned no records, so the check
	// compared nothing there. A check of zero records is a failure, not
	// a pass.
	ErrNothingChecked = errors.New("nothing checked")
	// ErrConfig: the Config (or the arguments) cannot be used.
	ErrConfig = errors.New("invalid reconcile config")
	// ErrScan: a side's scanner failed or broke its contract (a page
	// that repeats its cursor without records or without More false).
	ErrScan = errors.New("scan failed")
	// ErrTransform: a side's Transformer failed for a record, or returned
	// a record without a key or with a value that is not a concord.Value.
	ErrTransform = errors.New("transform failed")
	// ErrDuplicateKey: one side returned the same canonical key twice in
	// one scan (its scanner repeated a record, or its Transformer mapped
	// two records to one key).
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrKnowledge: the Knowledge failed.
	ErrKnowledge = errors.New("engine knowledge failed")
	// ErrRepair: a Repairer failed for a record.
	ErrRepair = errors.New("repair failed")
	// ErrPanic: user code (a Scanner, Transformer, Knowledge, Repairer or
	// filter) panicked; the panic is turned into an error naming it.
	ErrPanic = errors.New("panic in user code")
	// ErrCountMismatch: a count check found different counts.
	ErrCountMismatch = errors.New("counts differ")
)

// SideError reports a failure on one side: which system, which record
// when one is at fault, and why (wrapping one of the sentinels above, and
// the cause).
type SideError struct {
	System concord.SystemID
	Key    string // empty when no record is at fault
	Err    error
}

// Error names the system and the record.
func (e *SideError) Error() string {
	s := "reconcile: system " + fmt.Sprintf("%q", e.System)
	if e.Key != "" {
		s += " record " + fmt.Sprintf("%q", e.Key)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *SideError) Unwrap() error { return e.Err }

// RepairError reports one repair that failed: the record, the system it
// was meant to correct, and why.
type RepairError struct {
	Key    string
	System concord.SystemID
	Err    error
}

// Error names the record and system.
func (e *RepairError) Error() string {
	return fmt.Sprintf("reconcile: repair of record %q in system %q: %v", e.Key, e.System, e.Err)
}

// Unwrap returns ErrRepair and the cause.
func (e *RepairError) Unwrap() []error { return []error{ErrRepair, e.Err} }

// PanicError is a panic in user code, turned into an error. Is(ErrPanic)
// holds.
type PanicError struct {
	// Where names the call that panicked ("Scan", "Transform",
	// "Knowledge.Known", "Repairer.Repair", "filter").
	Where string
	// Value is what was passed to panic.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error names the call and the panic value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrPanic, e.Where, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// guard runs f and turns a panic into a *PanicError.
func guard(where string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Where: where, Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}
