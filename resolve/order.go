package resolve

import (
	"cmp"
	"fmt"
	"time"

	"github.com/concordsync/concord"
)

// compareCandidates is the tie-break every built-in falls back on once its
// own rule sees two candidates as equal. It is a total order over what
// identifies a candidate, and does not depend on where the candidates sit in
// the Conflict:
//
//  1. the smaller System name first;
//  2. then a non-canonical candidate (an edit observed in this cycle, the
//     newer observation) before the canonical one;
//  3. then the smaller Version in the lexicographic order of its dots
//     (see compareVersions).
//
// Candidates equal under all three are the same edit of the unit (a version
// names one edit), so whichever of them is picked, the outcome is the same.
// A negative result means a wins.
func compareCandidates(a, b *Candidate) int {
	if c := cmp.Compare(a.System, b.System); c != 0 {
		return c
	}
	if a.Canonical != b.Canonical {
		if b.Canonical {
			return -1
		}
		return 1
	}
	return compareVersions(a.Version, b.Version)
}

// compareVersions orders versions lexicographically by their dots, each dot
// by actor then counter; a version that is a prefix of another comes first.
// This is not the causal order (candidates are concurrent, so that order has
// nothing to say); it is only a deterministic one. It allocates nothing.
func compareVersions(a, b concord.Version) int {
	n := min(a.Len(), b.Len())
	for i := range n {
		da, db := a.Dot(i), b.Dot(i)
		if c := cmp.Compare(da.Actor, db.Actor); c != 0 {
			return c
		}
		if c := cmp.Compare(da.Counter, db.Counter); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.Len(), b.Len())
}

// best returns the index of the winning candidate among those for which
// keep returns true, under the rule less (a negative result means a wins),
// or -1 if keep rejects every candidate. Ties under less fall back on
// compareCandidates, so the result does not depend on candidate order.
func best(cands []Candidate, keep func(*Candidate) bool, less func(a, b *Candidate) int) int {
	w := -1
	for i := range cands {
		c := &cands[i]
		if !keep(c) {
			continue
		}
		if w < 0 {
			w = i
			continue
		}
		r := 0
		if less != nil {
			r = less(c, &cands[w])
		}
		if r == 0 {
			r = compareCandidates(c, &cands[w])
		}
		if r < 0 {
			w = i
		}
	}
	return w
}

// sameValues reports whether two versions of a unit hold the same fields
// with equal values under [concord.EqualValues]. A field absent from one map
// and present (even as nil) in the other makes them differ.
func sameValues(a, b map[string]concord.Value) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !concord.EqualValues(va, vb) {
			return false
		}
	}
	return true
}

// describe names a candidate for a Decision's Reason: `"portal"`, or
// `"portal" (canonical)`.
func describe(c *Candidate) string {
	if c.Canonical {
		return fmt.Sprintf("%q (canonical)", c.System)
	}
	return fmt.Sprintf("%q", c.System)
}

// stamp formats a modification time for a Reason, in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// anyCandidate reports whether f holds for some candidate.
func anyCandidate(cands []Candidate, f func(*Candidate) bool) bool {
	for i := range cands {
		if f(&cands[i]) {
			return true
		}
	}
	return false
}
