package resolve

import (
	"context"
	"fmt"
	"strings"

	"github.com/concordsync/concord"
)

// Rule names the rule that decided a merge or judged a change, for the
// audit trail: a [concord.Rule]. A host's resolver or gate names its own
// rules ("vip-customer"); the built-in ones and the engine's (package sync:
// RuleFastForward, RuleEqualValues, ...) are constants, each defined once.
type Rule = concord.Rule

// The Rules that the built-in resolvers put in their Decisions (and the
// [SystemOfRecordResolver] in its Verdicts), for the audit trail.
const (
	RuleSystemOfRecord Rule = "system-of-record"
	RuleLastWriterWins Rule = "last-writer-wins"
	RulePriority       Rule = "priority"
	RuleHold           Rule = "hold"
	RuleDeleteWins     Rule = "delete-wins"
	RuleUpdateWins     Rule = "update-wins"
)

// LastWriterWinsResolver picks the latest edit by the systems' own clocks;
// see [LastWriterWins]. The zero value is ready to use.
type LastWriterWinsResolver struct{}

// LastWriterWins returns a resolver that picks the candidate with the latest
// Modified time, the modification time the candidate's system reported: the
// field's own time where the system reports one (Candidate.FieldTime), else
// the record's. The Reason says which.
// Times are compared as instants (the zone they are written in does not
// matter). Exactly equal times are broken by a total order:
//
//  1. the smallest System name wins (byte-wise: "billing" before "portal");
//  2. between candidates of the same system, an edit observed in this cycle
//     wins over the canonical candidate (the newer observation);
//  3. between two edits of the same system, the smaller Version in
//     lexicographic dot order wins (by actor, then counter).
//
// If any candidate has a zero Modified time (its system reports none), the
// resolver is Undecided: it never substitutes the engine's own clock, which
// says when the engine looked, not when anyone wrote. The Decision's Rule is
// [RuleLastWriterWins]. It applies to every unit, [RecordUnit] included (a
// delete made after an edit wins, and the other way round).
//
// The systems' clocks are trusted as they are: a system whose clock runs
// ahead wins the conflicts it should lose, by as much as it is ahead. Where
// a system's clock cannot be trusted, put [Priority] or [SystemOfRecord]
// before it in a [Chain], or hold such conflicts ([Hold]).
//
// It is safe for concurrent use; ctx is not used.
func LastWriterWins() *LastWriterWinsResolver { return &LastWriterWinsResolver{} }

// Resolve picks the latest candidate; see [LastWriterWins].
func (*LastWriterWinsResolver) Resolve(_ context.Context, c Conflict) (Decision, error) {
	if err := checkConflict(c); err != nil {
		return Decision{}, err
	}
	if anyCandidate(c.Candidates, func(x *Candidate) bool { return x.Modified.IsZero() }) {
		return Decision{Outcome: Undecided}, nil
	}
	w := best(c.Candidates, func(*Candidate) bool { return true },
		func(a, b *Candidate) int { return b.Modified.Compare(a.Modified) }) // later first
	win := &c.Candidates[w]
	which := "record time"
	if win.FieldTime {
		which = "field time"
	}
	reason := fmt.Sprintf("%s modified it last, at %s (%s)", describe(win), stamp(win.Modified), which)
	if n := tiedWith(c.Candidates, w, func(x *Candidate) bool { return x.Modified.Equal(win.Modified) }); n > 0 {
		reason = fmt.Sprintf("%s modified it last, at %s (%s), tied with %d other candidate(s); ties go to the smallest system name, then to the edit over the canonical value",
			describe(win), stamp(win.Modified), which, n)
	}
	return Decision{Outcome: Pick, Winner: w, Rule: RuleLastWriterWins, Reason: reason}, nil
}

// tiedWith counts the candidates other than cands[w] for which f holds.
func tiedWith(cands []Candidate, w int, f func(*Candidate) bool) int {
	n := 0
	for i := range cands {
		if i != w && f(&cands[i]) {
			n++
		}
	}
	return n
}

// PriorityResolver picks by a fixed order of systems; see [Priority].
type PriorityResolver struct {
	rank map[concord.SystemID]int
	list string // the order, for Reasons
}

// Priority returns a resolver that picks the candidate whose System comes
// first in systems. Systems not in the list never win. Between candidates of
// the same system, an edit observed in this cycle wins over the canonical
// candidate; between two edits of the same system, the smaller Version in
// lexicographic dot order wins. If no candidate's system is listed, the
// resolver is Undecided. The Decision's Rule is [RulePriority].
//
// Priority copies systems; it panics if a name is empty or listed twice. It
// is safe for concurrent use; ctx is not used.
func Priority(systems ...concord.SystemID) *PriorityResolver {
	rank := make(map[concord.SystemID]int, len(systems))
	names := make([]string, len(systems))
	for i, s := range systems {
		if s == "" {
			panic(fmt.Sprintf("resolve.Priority: system %d has an empty name", i))
		}
		if _, dup := rank[s]; dup {
			panic(fmt.Sprintf("resolve.Priority: system %q is listed twice", s))
		}
		rank[s] = i
		names[i] = string(s)
	}
	return &PriorityResolver{rank: rank, list: strings.Join(names, " > ")}
}

// Resolve picks the candidate of the highest-ranked system; see [Priority].
func (p *PriorityResolver) Resolve(_ context.Context, c Conflict) (Decision, error) {
	if err := checkConflict(c); err != nil {
		return Decision{}, err
	}
	w := best(c.Candidates,
		func(x *Candidate) bool { _, ok := p.rank[x.System]; return ok },
		func(a, b *Candidate) int { return p.rank[a.System] - p.rank[b.System] })
	if w < 0 {
		return Decision{Outcome: Undecided}, nil
	}
	return Decision{Outcome: Pick, Winner: w, Rule: RulePriority,
		Reason: fmt.Sprintf("%s ranks highest in %s", describe(&c.Candidates[w]), p.list)}, nil
}

// HoldResolver keeps every conflict for a person; see [Hold]. The zero value
// holds with the default reason.
type HoldResolver struct {
	reason string
}

// Hold returns a resolver that decides HoldForPerson for every conflict,
// with Rule [RuleHold] and the given Reason ("held for a person" if reason
// is empty). Put it last in a [Chain] so that what no rule settles waits for
// a person; only the conflicting unit is held. It is safe for concurrent
// use; ctx is not used.
func Hold(reason string) *HoldResolver { return &HoldResolver{reason: reason} }

// Resolve holds c for a person.
func (h *HoldResolver) Resolve(context.Context, Conflict) (Decision, error) {
	reason := h.reason
	if reason == "" {
		reason = "held for a person"
	}
	return Decision{Outcome: HoldForPerson, Rule: RuleHold, Reason: reason}, nil
}

// DeleteWinsResolver lets a delete win over concurrent edits; see
// [DeleteWins]. The zero value is ready to use.
type DeleteWinsResolver struct{}

// DeleteWins returns a resolver for conflicts about a record's existence
// (Unit [RecordUnit]): if a candidate deletes the record, a deleting
// candidate wins (among several, by the package's total tie-break: smallest
// System name, then the edit over the canonical value, then the smallest
// Version in dot order; all of them delete, so the outcome is the same).
// Other units, and conflicts without a delete, are Undecided. The
// Decision's Rule is [RuleDeleteWins]. It is safe for concurrent use; ctx is
// not used.
func DeleteWins() *DeleteWinsResolver { return &DeleteWinsResolver{} }

// Resolve picks a deleting candidate; see [DeleteWins].
func (*DeleteWinsResolver) Resolve(_ context.Context, c Conflict) (Decision, error) {
	if err := checkConflict(c); err != nil {
		return Decision{}, err
	}
	if c.Unit != RecordUnit {
		return Decision{Outcome: Undecided}, nil
	}
	w := best(c.Candidates, func(x *Candidate) bool { return x.Deleted }, nil)
	if w < 0 {
		return Decision{Outcome: Undecided}, nil
	}
	return Decision{Outcome: Pick, Winner: w, Rule: RuleDeleteWins,
		Reason: fmt.Sprintf("%s deleted the record; a delete wins over concurrent edits", describe(&c.Candidates[w]))}, nil
}

// UpdateWinsResolver lets edits win over a concurrent delete; see
// [UpdateWins]. The zero value is ready to use.
type UpdateWinsResolver struct{}

// UpdateWins returns a resolver for conflicts about a record's existence
// (Unit [RecordUnit]) in which some candidate deletes the record: the
// candidate that does not delete it wins. If several candidates do not
// delete it, they win only if they all hold equal values (compared field by
// field with [concord.EqualValues]); the pick among them is then the
// package's total tie-break (smallest System name, then the edit over the
// canonical value, then the smallest Version in dot order). If their values
// differ, the resolver is Undecided, so that a [Chain] asks the next
// resolver. Other units, and conflicts without a delete, are Undecided. The
// Decision's Rule is [RuleUpdateWins]. It is safe for concurrent use; ctx is
// not used.
func UpdateWins() *UpdateWinsResolver { return &UpdateWinsResolver{} }

// Resolve picks the candidate that keeps the record; see [UpdateWins].
func (*UpdateWinsResolver) Resolve(_ context.Context, c Conflict) (Decision, error) {
	if err := checkConflict(c); err != nil {
		return Decision{}, err
	}
	if c.Unit != RecordUnit || !anyCandidate(c.Candidates, func(x *Candidate) bool { return x.Deleted }) {
		return Decision{Outcome: Undecided}, nil
	}
	live := func(x *Candidate) bool { return !x.Deleted }
	w := best(c.Candidates, live, nil)
	if w < 0 {
		return Decision{Outcome: Undecided}, nil
	}
	win := &c.Candidates[w]
	if anyCandidate(c.Candidates, func(x *Candidate) bool { return live(x) && !sameValues(x.Values, win.Values) }) {
		return Decision{Outcome: Undecided}, nil
	}
	return Decision{Outcome: Pick, Winner: w, Rule: RuleUpdateWins,
		Reason: fmt.Sprintf("%s kept the record; an edit wins over a concurrent delete", describe(win))}, nil
}

var (
	_ Resolver = (*LastWriterWinsResolver)(nil)
	_ Resolver = (*PriorityResolver)(nil)
	_ Resolver = (*HoldResolver)(nil)
	_ Resolver = (*DeleteWinsResolver)(nil)
	_ Resolver = (*UpdateWinsResolver)(nil)
)

// RuleApproval names the decisions of [RequireApproval].
const RuleApproval Rule = "approval"

// ApprovalGate holds every change of its units for a person; see
// [RequireApproval].
type ApprovalGate struct {
	units map[string]bool
}

// RequireApproval returns a [Gate] that holds every change of the listed
// units (field or group names; [RecordUnit] for creating and deleting
// records) for a person's approval, with Rule [RuleApproval]: a bank
// account, a credit limit. The rest of the record keeps syncing while the
// unit waits. It is immutable and safe for concurrent use; ctx is not used.
func RequireApproval(units ...string) *ApprovalGate {
	g := &ApprovalGate{units: map[string]bool{}}
	for _, u := range units {
		g.units[u] = true
	}
	return g
}

// Check holds a change of a listed unit; it accepts every other.
func (g *ApprovalGate) Check(_ context.Context, c Change) (Verdict, error) {
	if !g.units[c.Unit] {
		return Verdict{Outcome: Accept}, nil
	}
	who := "a change"
	if c.System != "" {
		who = "a change from " + string(c.System)
	}
	return Verdict{Outcome: HoldChange, Rule: RuleApproval, Reason: who + " of " + c.Unit + " needs a person's approval"}, nil
}

var _ Gate = (*ApprovalGate)(nil)
