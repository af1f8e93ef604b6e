package dedupe_test

import (
	"context"
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dedupe"
)

func Example() {
	finder, err := dedupe.New(dedupe.Config{
		Name:       []string{"first_name", "last_name"},
		Email:      "email",
		Phone:      "phone",
		Address:    []string{"street"},
		PostalCode: "zip",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := func(key, first, last, email, phone, street, zip string) concord.Record {
		return concord.Record{Key: key, Fields: map[string]concord.Value{
			"first_name": first, "last_name": last, "email": email, "phone": phone, "street": street, "zip": zip,
		}}
	}
	recs := []concord.Record{
		c("c1", "Martha", "Stewart", "martha@example.com", "+41 44 668 18 00", "12 Oak Street", "8004"),
		c("c2", "Marhta", "STEWART", "m.stewart@mail.test", "", "12 oak  street", "8004"),
		c("c3", "M.", "Stewart", " Martha@Example.com", "", "", ""),
		c("c4", "Peter", "Stewart", "peter@example.com", "044 668 18 01", "12 Oak Street", "8004"),
	}
	res, err := finder.Find(context.Background(), recs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d records, %d comparisons\n", res.Records, res.Comparisons)
	for _, s := range res.Suggestions {
		fmt.Printf("%s %s-%s %.3f\n", s.Match, s.A, s.B, s.Score)
		for _, e := range s.Evidence {
			fmt.Printf("  %s %.3f %q %q\n", e.Field, e.Score, e.A, e.B)
		}
	}

	// Exact suggestions may be merged, when the host decides to.
	merged, err := dedupe.Merge(recs[0], recs[2], dedupe.Policy{Prefer: dedupe.PreferA})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(merged.Key, merged.Fields["first_name"], merged.Fields["phone"])
	// Output:
	// 4 records, 6 comparisons
	// exact c1-c3 1.000
	//   email 1.000 "martha@example.com" "martha@example.com"
	// fuzzy c1-c2 0.981
	//   first_name 0.961 "martha" "marhta"
	//   last_name 1.000 "stewart" "stewart"
	//   street 1.000 "12 oak street" "12 oak street"
	//   zip 1.000 "8004" "8004"
	// c1 Martha +41 44 668 18 00
}
