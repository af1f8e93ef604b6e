package resolve

import (
	"context"
	"fmt"
	"maps"

	"github.com/concordsync/concord"
)

// SystemOfRecordResolver gives each owned unit to one system; see
// [SystemOfRecord]. It is both a [Resolver] and a [Gate].
type SystemOfRecordResolver struct {
	owners map[string]concord.SystemID
	first  bool // accept a non-owner's first value; see AcceptFirstValues
}

// SystemOfRecord returns a resolver and gate that make owners[unit] the only
// system allowed to change unit. Keys are unit names: a field name, a group
// name for a field group, or [RecordUnit] for the record's existence
// (creating and deleting it). Units absent from owners are unowned. The map
// is copied; later changes to it have no effect. SystemOfRecord panics if a
// unit name or an owner is empty.
//
// As a [Resolver], for a conflict about an owned unit, in this order:
//
//  1. If the owner is among the candidates, the owner's candidate wins. If
//     the owner appears both as the canonical candidate and with an edit
//     observed in this cycle, the edit wins: it is what the owner holds now
//     (the two can only be concurrent if the canonical version also carries
//     something the owner has not seen, such as an earlier resolution, or
//     if the owner's state was restored from a backup). Several edits from
//     the owner fall back on the package's total tie-break (the smallest
//     Version in dot order).
//  2. Otherwise, if there is a canonical candidate, it wins: systems other
//     than the owner cannot change the unit, so the canonical value stays
//     (and the engine writes it back to them).
//  3. Otherwise the resolver is Undecided.
//
// Conflicts about unowned units are Undecided. The Decision's Rule is
// [RuleSystemOfRecord] and its Reason names the owner and the unit:
// `"warehouse" owns "stock"`.
//
// As a [Gate], a [Change] to an owned unit made by any system other than the
// owner is refused (the edit is reverted in that system), with a Reason that
// names both systems and the unit. The rule looks only at Change.System, so
// a conflict resolution (Change.Resolved) that would give an owned unit a
// non-owner's value is refused as well. Changes by the owner are accepted
// with Rule and Reason set for the audit trail; changes to unowned units are
// accepted with an empty Verdict.
//
// A first value is a case of its own. When a non-owner sets an owned unit
// that has no canonical value yet (a customer created in the warehouse while
// the portal owns the address), there is nothing to revert to: the engine
// holds the change for a person rather than erase the only value there is
// (see the engine's Holds and Settle). [SystemOfRecordResolver.AcceptFirstValues]
// chooses the other policy: the first value is accepted, and the owner's
// later edit still wins over it.
//
// A SystemOfRecordResolver is immutable and safe for concurrent use; ctx is
// not used.
func SystemOfRecord(owners map[string]concord.SystemID) *SystemOfRecordResolver {
	for unit, sys := range owners {
		if unit == "" {
			panic("resolve.SystemOfRecord: empty unit name")
		}
		if sys == "" {
			panic(fmt.Sprintf("resolve.SystemOfRecord: unit %q has an empty owner", unit))
		}
	}
	return &SystemOfRecordResolver{owners: maps.Clone(owners)}
}

// AcceptFirstValues returns a copy of s that, as a [Gate], accepts a
// non-owner's change to an owned field or group that has no canonical value
// yet (Change.From has none of its fields), instead of refusing it (which
// the engine turns into a hold, since there is nothing to revert to). The
// owner's later edits win over the accepted value as usual. The record's
// existence ([RecordUnit]) is not affected.
func (s *SystemOfRecordResolver) AcceptFirstValues() *SystemOfRecordResolver {
	return &SystemOfRecordResolver{owners: s.owners, first: true}
}

// Owner returns the system that owns unit, and whether unit is owned.
func (s *SystemOfRecordResolver) Owner(unit string) (concord.SystemID, bool) {
	sys, ok := s.owners[unit]
	return sys, ok
}

// Resolve picks the owner's candidate, or else the canonical one; see
// [SystemOfRecord].
func (s *SystemOfRecordResolver) Resolve(_ context.Context, c Conflict) (Decision, error) {
	if err := checkConflict(c); err != nil {
		return Decision{}, err
	}
	owner, ok := s.owners[c.Unit]
	if !ok {
		return Decision{Outcome: Undecided}, nil
	}
	reason := fmt.Sprintf("%q owns %q", owner, c.Unit)
	// compareCandidates puts the owner's edit before its canonical value.
	if w := best(c.Candidates, func(x *Candidate) bool { return x.System == owner }, nil); w >= 0 {
		return Decision{Outcome: Pick, Winner: w, Rule: RuleSystemOfRecord, Reason: reason}, nil
	}
	if w := best(c.Candidates, func(x *Candidate) bool { return x.Canonical }, nil); w >= 0 {
		return Decision{Outcome: Pick, Winner: w, Rule: RuleSystemOfRecord,
			Reason: reason + " and has not edited it; the canonical value stays"}, nil
	}
	return Decision{Outcome: Undecided}, nil
}

// Check refuses a change to an owned unit by a system other than its owner;
// see [SystemOfRecord].
func (s *SystemOfRecordResolver) Check(_ context.Context, c Change) (Verdict, error) {
	owner, ok := s.owners[c.Unit]
	switch {
	case !ok:
		return Verdict{Outcome: Accept}, nil
	case c.System == owner:
		return Verdict{Outcome: Accept, Rule: RuleSystemOfRecord,
			Reason: fmt.Sprintf("%q owns %q", owner, c.Unit)}, nil
	case s.first && c.Unit != RecordUnit && !c.Deleted && noValue(c.From, c.Fields):
		return Verdict{Outcome: Accept, Rule: RuleSystemOfRecord,
			Reason: fmt.Sprintf("%q owns %q, which has no value yet: %q's first value is accepted", owner, c.Unit, c.System)}, nil
	}
	return Verdict{Outcome: Refuse, Rule: RuleSystemOfRecord,
		Reason: fmt.Sprintf("%q owns %q; %q may not change it", owner, c.Unit, c.System)}, nil
}

var (
	_ Resolver = (*SystemOfRecordResolver)(nil)
	_ Gate     = (*SystemOfRecordResolver)(nil)
)

// noValue reports whether from holds none of fields (or only nils).
func noValue(from map[string]concord.Value, fields []string) bool {
	for _, f := range fields {
		if v, ok := from[f]; ok && v != nil {
			return false
		}
	}
	return true
}
