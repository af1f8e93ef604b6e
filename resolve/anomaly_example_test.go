package resolve_test

import (
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// A price that usually moves by a few percent: a fall from 100 to 1 is held
// with the evidence, a 5% rise passes. The engine learns every change that
// became canonical, and keeps the statistics in its store as bytes.
func ExampleAnomalyRule_Judge() {
	rule := resolve.AnomalyRule{Field: "price", MaxChange: 1} // never more than ×2 or ÷2
	change := func(from, to float64) resolve.Change {
		return resolve.Change{Key: "sku-42", Unit: "price", Fields: []string{"price"}, System: "erp",
			From: map[string]concord.Value{"price": from}, To: map[string]concord.Value{"price": to}}
	}

	// Forty past changes, each within ±5%.
	stats := rule.NewStats()
	price := 100.0
	for i := range 40 {
		next := price * (1 + []float64{2, -3, 5, -1, 4, -5, 1, -2, 3, -4}[i%10]/100)
		rule.Learn(stats, change(price, next))
		price = next
	}
	saved, _ := stats.MarshalBinary() // what the store keeps
	var loaded resolve.FieldStats
	if err := loaded.UnmarshalBinary(saved); err != nil {
		fmt.Println(err)
		return
	}

	for _, c := range []resolve.Change{change(100, 1), change(100, 105)} {
		v, _, err := rule.Judge(&loaded, c)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%v → %v: %s %s %s\n", c.From["price"], c.To["price"], v.Outcome, v.Rule, v.Reason)
	}
	// Output:
	// 100 → 1: hold anomaly price 100 → 1: −99%, beyond the limit −50% to +100%; typical ±4.5% (median −0.01%, MAD 3% over 40 changes), outside −20% to +25%
	// 100 → 105: accept
}
