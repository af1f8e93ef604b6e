package resolve

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord"
)

// ErrNoCandidates is returned (wrapped in a [*UnitError]) by the built-in
// resolvers that pick a candidate, for a [Conflict] without candidates: the engine promises at
// least two, so an empty conflict is a bug to report, not an "undecided".
var ErrNoCandidates = errors.New("conflict has no candidates")

// ErrBadDecision is returned (wrapped in a [*UnitError]) by [ChainResolver]
// and [PerUnitResolver] when a member returns a Decision the engine could
// not carry out: an unknown Outcome, or a Pick whose Winner is not an index
// into the Conflict's Candidates.
var ErrBadDecision = errors.New("invalid decision")

// UnitError reports a failure to resolve or gate one unit of one record. It
// names the record key, the unit and, for a gate, the system that made the
// change; errors.Is and errors.As see through it to Err.
type UnitError struct {
	Key    string
	Unit   string
	System concord.SystemID // the system of the gated Change; empty for conflicts
	Err    error
}

// Error names the record, unit and system and says why.
func (e *UnitError) Error() string {
	s := fmt.Sprintf("resolve: record %q unit %q", e.Key, e.Unit)
	if e.System != "" {
		s += fmt.Sprintf(" change by %q", e.System)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *UnitError) Unwrap() error { return e.Err }

// unitError wraps err in a *UnitError, unless it already carries one (a
// nested Chain or PerUnit has named the unit): then err is returned as is,
// so that messages do not repeat the key and unit.
func unitError(key, unit string, sys concord.SystemID, err error) error {
	if _, ok := errors.AsType[*UnitError](err); ok {
		return err
	}
	return &UnitError{Key: key, Unit: unit, System: sys, Err: err}
}

// checkConflict returns an error for a conflict no built-in can pick from.
func checkConflict(c Conflict) error {
	if len(c.Candidates) == 0 {
		return &UnitError{Key: c.Key, Unit: c.Unit, Err: ErrNoCandidates}
	}
	return nil
}

// checkDecision returns an error wrapping ErrBadDecision if d cannot be
// carried out for c.
func checkDecision(c Conflict, d Decision) error {
	switch d.Outcome {
	case Undecided, Merge, HoldForPerson:
		return nil
	case Pick:
		if d.Winner >= 0 && d.Winner < len(c.Candidates) {
			return nil
		}
		return fmt.Errorf("%w: rule %q picked candidate %d of %d", ErrBadDecision, d.Rule, d.Winner, len(c.Candidates))
	}
	return fmt.Errorf("%w: rule %q returned outcome %d", ErrBadDecision, d.Rule, d.Outcome)
}
