package resolve_test

import (
	"context"
	"fmt"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// A typical policy: the warehouse owns stock levels; any other field goes to
// the last writer by the systems' own clocks; what neither settles (a system
// without timestamps) waits for a person.
func ExampleChain() {
	policy := resolve.Chain(
		resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"}),
		resolve.LastWriterWins(),
		resolve.Hold("no rule applies"),
	)
	morning := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	noon := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	v := func(a concord.Actor) concord.Version { return concord.MustVersion(concord.Dot{Actor: a, Counter: 1}) }

	conflicts := []resolve.Conflict{
		{Key: "sku-42", Unit: "stock", Candidates: []resolve.Candidate{
			{System: "portal", Version: v(1), Modified: noon, Values: map[string]concord.Value{"stock": 0}},
			{System: "warehouse", Version: v(2), Modified: morning, Values: map[string]concord.Value{"stock": 12}},
		}},
		{Key: "sku-42", Unit: "title", Candidates: []resolve.Candidate{
			{System: "portal", Version: v(1), Modified: noon, Values: map[string]concord.Value{"title": "Blue mug"}},
			{System: "warehouse", Version: v(2), Modified: morning, Values: map[string]concord.Value{"title": "Mug, blue"}},
		}},
		{Key: "sku-42", Unit: "title", Candidates: []resolve.Candidate{
			{System: "legacy", Version: v(3), Values: map[string]concord.Value{"title": "MUG BLUE"}}, // no timestamp
			{System: "portal", Version: v(1), Modified: noon, Values: map[string]concord.Value{"title": "Blue mug"}},
		}},
	}
	for _, c := range conflicts {
		d, err := policy.Resolve(context.Background(), c)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch d.Outcome {
		case resolve.Pick:
			w := c.Candidates[d.Winner]
			fmt.Printf("%s: %s wins %v by %s: %s\n", c.Unit, w.System, w.Values[c.Unit], d.Rule, d.Reason)
		default:
			fmt.Printf("%s: %s by %s: %s\n", c.Unit, d.Outcome, d.Rule, d.Reason)
		}
	}
	// Output:
	// stock: warehouse wins 12 by system-of-record: "warehouse" owns "stock"
	// title: portal wins Blue mug by last-writer-wins: "portal" modified it last, at 2024-05-01T12:00:00Z (record time)
	// title: hold by hold: no rule applies
}

// A SystemOfRecord is also a Gate: an edit of an owned field by any other
// system is refused, and the engine reverts it in that system, even when
// there is no conflict. A Chain forwards Check to its members that are
// gates.
func ExampleSystemOfRecordResolver_Check() {
	policy := resolve.Chain(
		resolve.SystemOfRecord(map[string]concord.SystemID{"iban": "erp"}),
		resolve.LastWriterWins(), // not a Gate: skipped by Check
	)
	for _, c := range []resolve.Change{
		{Key: "cust-7", Unit: "iban", System: "portal", To: map[string]concord.Value{"iban": "DE02 1203"}},
		{Key: "cust-7", Unit: "iban", System: "erp", To: map[string]concord.Value{"iban": "DE89 3704"}},
		{Key: "cust-7", Unit: "email", System: "portal", To: map[string]concord.Value{"email": "a@example.com"}},
	} {
		v, err := policy.Check(context.Background(), c)
		if err != nil {
			fmt.Println(err)
			continue
		}
		line := fmt.Sprintf("%s by %s: %s", c.Unit, c.System, v.Outcome)
		if v.Reason != "" {
			line += " (" + v.Reason + ")"
		}
		fmt.Println(line)
	}
	// Output:
	// iban by portal: refuse ("erp" owns "iban"; "portal" may not change it)
	// iban by erp: accept
	// email by portal: accept
}

// Equal timestamps are broken by system name, the smallest first, whatever
// order the candidates come in and whatever zone the times are written in.
func ExampleLastWriterWins() {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	c := resolve.Conflict{Key: "inv-3", Unit: "total", Candidates: []resolve.Candidate{
		{System: "billing", Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 1}), Modified: at.In(time.FixedZone("CEST", 2*60*60))},
		{System: "accounting", Version: concord.MustVersion(concord.Dot{Actor: 2, Counter: 1}), Modified: at},
	}}
	d, err := resolve.LastWriterWins().Resolve(context.Background(), c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Candidates[d.Winner].System)
	fmt.Println(d.Reason)
	// Output:
	// accounting
	// "accounting" modified it last, at 2024-05-01T12:00:00Z (record time), tied with 1 other candidate(s); ties go to the smallest system name, then to the edit over the canonical value
}
