package resolve_test

import (
	"context"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

var (
	t0 = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	// t0 again, written in another zone: the same instant.
	t0CEST = t0.In(time.FixedZone("CEST", 2*60*60))
)

// ver builds a one-dot version.
func ver(a concord.Actor, n uint64) concord.Version {
	return concord.MustVersion(concord.Dot{Actor: a, Counter: n})
}

// edit is a candidate observed in this cycle.
func edit(sys concord.SystemID, v concord.Version, mod time.Time, val concord.Value) resolve.Candidate {
	return resolve.Candidate{System: sys, Version: v, Modified: mod, Values: map[string]concord.Value{"f": val}}
}

// canon is the canonical candidate.
func canon(sys concord.SystemID, v concord.Version, mod time.Time, val concord.Value) resolve.Candidate {
	c := edit(sys, v, mod, val)
	c.Canonical = true
	return c
}

// del is a candidate that deletes the record.
func del(sys concord.SystemID, v concord.Version, mod time.Time) resolve.Candidate {
	return resolve.Candidate{System: sys, Version: v, Modified: mod, Deleted: true}
}

func conflict(unit string, cands ...resolve.Candidate) resolve.Conflict {
	return resolve.Conflict{Key: "order-1", Unit: unit, Fields: []string{unit}, Candidates: cands}
}

// ident is what identifies a candidate, independent of its index.
type ident struct {
	System    concord.SystemID
	Canonical bool
	Version   string
}

func identOf(c resolve.Candidate) ident {
	return ident{System: c.System, Canonical: c.Canonical, Version: c.Version.String()}
}

// result is a Decision with the winner named by identity rather than index.
type result struct {
	Outcome string
	Winner  *ident
	Rule    resolve.Rule
}

// resultOf and mustResolve take rapid.TB, which both *testing.T and
// *rapid.T satisfy (*rapid.T is no testing.TB).
func resultOf(tb rapid.TB, c resolve.Conflict, d resolve.Decision) result {
	tb.Helper()
	r := result{Outcome: d.Outcome.String(), Rule: d.Rule}
	if d.Outcome == resolve.Pick {
		if d.Winner < 0 || d.Winner >= len(c.Candidates) {
			tb.Fatalf("Pick of candidate %d of %d", d.Winner, len(c.Candidates))
		}
		w := identOf(c.Candidates[d.Winner])
		r.Winner = &w
	}
	return r
}

func picked(c resolve.Candidate, rule resolve.Rule) result {
	w := identOf(c)
	return result{Outcome: "pick", Winner: &w, Rule: rule}
}

var undecided = result{Outcome: "undecided"}

// versionEqual lets cmp compare Versions, whose fields are unexported.
var versionEqual = cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal })

// mustResolve runs r on c, checks that r left c unchanged, and returns the
// decision.
func mustResolve(tb rapid.TB, r resolve.Resolver, c resolve.Conflict) resolve.Decision {
	tb.Helper()
	before := cloneConflict(c)
	d, err := r.Resolve(context.Background(), c)
	if err != nil {
		tb.Fatalf("Resolve: %v", err)
	}
	if diff := cmp.Diff(before, c, versionEqual); diff != "" {
		tb.Fatalf("Resolve modified its Conflict (-before +after):\n%s", diff)
	}
	return d
}

func cloneConflict(c resolve.Conflict) resolve.Conflict {
	out := c
	out.Fields = append([]string(nil), c.Fields...)
	out.Candidates = nil
	for _, x := range c.Candidates {
		x.Values = concord.CloneFields(x.Values)
		out.Candidates = append(out.Candidates, x)
	}
	return out
}
