package suggest_test

import (
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/suggest"
)

func Example() {
	states, err := suggest.Subdivisions("US")
	if err != nil {
		fmt.Println(err)
		return
	}
	tier := dict.Field{Name: "tier", Type: dict.String, Allowed: []concord.Value{"gold", "silver", "platinum"}}

	ix := suggest.New(suggest.Options{})
	ix.Add("state", states...)
	ix.Add("country", suggest.Countries()...)
	ix.Add("tier", suggest.Allowed(tier)...)
	// Street names the system already holds, fed as records go by.
	for _, s := range []string{"Main Street", "Main Street", "Market Street", "Mill Road"} {
		ix.Learn("street", s)
	}

	for _, q := range [][2]string{{"state", "Californa"}, {"country", "Germny"}, {"tier", "platnum"}, {"street", "Mian Street"}} {
		for _, s := range ix.Suggest(q[0], q[1]) {
			fmt.Printf("%s %q: %q %.3f (%s)\n", q[0], q[1], s.Value, s.Score, s.Why)
		}
	}
	// Output:
	// state "Californa": "California" 0.910 (ISO 3166-2 US-CA; 1 edit: missing 'i')
	// country "Germny": "Germany" 0.871 (ISO 3166-1 DE; 1 edit: missing 'a')
	// tier "platnum": "platinum" 0.887 (allowed value of "tier"; 1 edit: missing 'i')
	// street "Mian Street": "Main Street" 0.911 (held value (learned 2 times); 1 edit: "ia" swapped)
}

func ExamplePolicy_Decide() {
	ix := suggest.New(suggest.Options{})
	ix.Add("country", suggest.Countries()...)
	p := suggest.Policy{AutoApply: 0.85, Hold: true}

	for _, q := range []string{"Germny", "Nigera", "Atlantis"} {
		d := p.Decide(ix.Suggest("country", q))
		switch {
		case d.Apply != "":
			fmt.Printf("%s: correct to %q, keeping the original (%s)\n", q, d.Apply, d.Reason)
		case d.Hold:
			fmt.Printf("%s: hold for a person (%s)\n", q, d.Reason)
		default:
			fmt.Printf("%s: leave refused (%s)\n", q, d.Reason)
		}
	}
	// Output:
	// Germny: correct to "Germany", keeping the original ("Germany" scores 0.871, at least the threshold 0.850, with no other suggestion)
	// Nigera: hold for a person (ambiguous: "Nigeria" scores 0.871 and "Niger" 0.850, a lead below the margin 0.050)
	// Atlantis: leave refused (no suggestion)
}
