package enrich_test

import (
	"context"
	"fmt"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/enrich"
)

func Example() {
	companies := map[string]map[string]concord.Value{
		"acme.test": {"industry": "Manufacturing", "employees": 120, "account_manager": "bot"},
	}
	e, err := enrich.New(enrich.Config{
		KeyField:  "domain",
		Fields:    []string{"industry", "employees", "account_manager"},
		Protected: []string{"account_manager"}, // owned by the CRM
		Lookup: func(_ context.Context, domain string) (map[string]concord.Value, error) {
			return companies[domain], nil
		},
		TTL: 24 * time.Hour,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pipeline := transform.Chain(e) // with the system's mapping, normalisers, dictionary...
	for _, r := range []concord.Record{
		{Key: "c1", Fields: map[string]concord.Value{"domain": "acme.test"}},
		{Key: "c2", Fields: map[string]concord.Value{"domain": "acme.test", "industry": "Robotics"}},
	} {
		out, err := pipeline.Transform(context.Background(), r)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(out.Key, out.Fields["industry"], out.Fields["employees"], out.Fields["account_manager"])
	}
	fmt.Printf("%+v\n", e.Stats())
	// Output:
	// c1 Manufacturing 120 <nil>
	// c2 Robotics 120 <nil>
	// {Hits:1 Lookups:1 Errors:0 Shared:0}
}
