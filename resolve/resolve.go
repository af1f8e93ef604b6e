// Package resolve decides what the engine does when edits meet.
//
// A [Resolver] settles a real conflict: the same field (or field group)
// edited in two or more systems without either having seen the other's
// edit. A [Gate] looks at every accepted edit before it becomes canonical
// and may refuse it (the edit is reverted in the system that made it) or
// hold it for a person.
//
// The built-ins cover the usual policies: [SystemOfRecord] (one owner per
// field; it is both a Resolver and a Gate, so non-owner edits are reverted
// even without a conflict), [LastWriterWins] (by the systems' own timestamps
// with a total tie-break), [Priority] (an order of systems) and [Hold] (keep
// every competing value for a person). [Chain] tries resolvers in order
// until one decides.
//
// Resolvers and gates must not modify the Conflict or Change they are given
// (the sync engine gives each call its own copy of the maps and slices in
// it, so that one that does changes nothing of the engine's), and must be
// deterministic: the same input gives the same decision, in any
// process, whatever order the engine happened to read the systems in.
package resolve

import (
	"context"
	"time"

	"github.com/concordsync/concord"
)

// Candidate is one competing version of a field or group in a [Conflict].
type Candidate struct {
	// System that holds this version. For the canonical candidate it is
	// the system whose edit set the canonical value last.
	System concord.SystemID
	// Canonical reports that this candidate is the engine's current
	// canonical value rather than an edit observed in this cycle.
	Canonical bool
	// Values of the unit's fields. A field absent from the map is absent
	// in that version; Deleted candidates have no values.
	Values map[string]concord.Value
	// Deleted reports that this candidate deletes the record.
	Deleted bool
	// Version of this value.
	Version concord.Version
	// Modified is the system's modification time of this value: the
	// latest of its fields' own times when the system reports them
	// (concord.Record.FieldModified; FieldTime is then true), else the
	// time of the record that carried it. Zero if the system reports
	// neither.
	Modified time.Time
	// FieldTime reports that Modified is the time of the unit's own
	// fields, not the record's.
	FieldTime bool
	// By names who made this change in System, when the system said
	// (concord.Record.By); empty otherwise.
	By string
}

// Conflict is a set of concurrent versions of one field or field group.
type Conflict struct {
	// Key of the record.
	Key string
	// Unit is the field name, or the group name for a field group, or
	// [RecordUnit] for a conflict between a delete and an edit.
	Unit string
	// Fields of the unit, sorted.
	Fields []string
	// Candidates, at least two, pairwise concurrent, in a deterministic
	// order (by system name, canonical first on equal names).
	Candidates []Candidate
	// Base is the last value every candidate descends from, when the
	// engine still knows it; nil otherwise.
	Base map[string]concord.Value
	// BaseKnown reports whether Base is meaningful (a known base may be
	// empty: the unit did not exist).
	BaseKnown bool
}

// RecordUnit is the Unit of a conflict about the record's existence: a
// delete concurrent with an edit or a re-creation.
const RecordUnit = "(record)"

// Outcome is what a Decision does.
type Outcome int8

// The outcomes of a Decision.
const (
	// Undecided: this resolver has no opinion; a Chain asks the next one.
	Undecided Outcome = iota
	// Pick: the candidate at index Winner wins.
	Pick
	// Merge: Values, built by the resolver from the candidates, wins.
	Merge
	// HoldForPerson: keep every candidate and wait for a person. Only
	// this unit is held; the record's other fields, its batch and its
	// system go on syncing.
	HoldForPerson
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Undecided:
		return "undecided"
	case Pick:
		return "pick"
	case Merge:
		return "merge"
	case HoldForPerson:
		return "hold"
	}
	return "outcome?"
}

// Decision is a resolver's answer.
type Decision struct {
	Outcome Outcome
	// Winner is the index of the winning candidate, for Pick.
	Winner int
	// Values is the merged value, for Merge.
	Values map[string]concord.Value
	// Rule names the rule that decided ("system-of-record",
	// "last-writer-wins", ...). It is recorded in the audit trail.
	Rule Rule
	// Reason says why, for people: "warehouse owns stock".
	Reason string
}

// Resolver settles conflicts.
//
// Resolve is called by the engine during a cycle's merge step, once per
// conflicting unit, from one goroutine per pipeline. ctx is the cycle's
// context. An error aborts the merge of that record only (it is retried next
// cycle); it is not a way to say "undecided".
type Resolver interface {
	Resolve(ctx context.Context, c Conflict) (Decision, error)
}

// Func adapts a function to a [Resolver].
type Func func(ctx context.Context, c Conflict) (Decision, error)

// Resolve calls f.
func (f Func) Resolve(ctx context.Context, c Conflict) (Decision, error) { return f(ctx, c) }

// Change is an edit about to become canonical, as a [Gate] sees it.
type Change struct {
	// Key of the record.
	Key string
	// Unit is the field or group name, or RecordUnit for a delete.
	Unit string
	// Fields of the unit, sorted.
	Fields []string
	// System that made the edit; for the result of a conflict, the
	// winning candidate's system; empty for values a resolver merged
	// (Outcome Merge).
	System concord.SystemID
	// From is the current canonical value (nil map if none).
	From map[string]concord.Value
	// To is the edited value (nil map for a delete).
	To map[string]concord.Value
	// Deleted reports that the edit deletes the record.
	Deleted bool
	// Version the edit will have if accepted.
	Version concord.Version
	// Resolved reports that the value comes from a conflict resolution.
	Resolved bool
}

// Verdict is what a Gate decides about a Change.
type Verdict struct {
	Outcome VerdictOutcome
	// Rule names the gate rule, for the audit trail.
	Rule Rule
	// Reason says why, for people.
	Reason string
}

// VerdictOutcome is what happens to a gated Change.
type VerdictOutcome int8

// The outcomes of a Verdict.
const (
	// Accept lets the change through (or lets the next gate look).
	Accept VerdictOutcome = iota
	// Refuse rejects the change: the canonical value stays, and the
	// system that made the edit is written back to it (reverted).
	Refuse
	// HoldChange keeps the change aside for a person; the canonical
	// value stays meanwhile.
	HoldChange
)

// String names the outcome.
func (o VerdictOutcome) String() string {
	switch o {
	case Accept:
		return "accept"
	case Refuse:
		return "refuse"
	case HoldChange:
		return "hold"
	}
	return "verdict?"
}

// Gate inspects changes before they become canonical.
//
// Check is called by the engine during the merge step for every edit that
// would change the canonical value, including the results of conflict
// resolution (Change.Resolved). The engine accepts a change only if every
// gate accepts it; the first gate that refuses or holds decides.
type Gate interface {
	Check(ctx context.Context, c Change) (Verdict, error)
}

// GateFunc adapts a function to a [Gate].
type GateFunc func(ctx context.Context, c Change) (Verdict, error)

// Check calls f.
func (f GateFunc) Check(ctx context.Context, c Change) (Verdict, error) { return f(ctx, c) }
