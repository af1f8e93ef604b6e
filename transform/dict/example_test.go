package dict_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
)

func Example() {
	d, err := dict.New(
		dict.Field{Name: "email", Type: dict.String, Required: true, Kind: dict.KindEmail,
			Description: "Primary contact address.", Owner: "Sales (CRM)"},
		dict.Field{Name: "tier", Type: dict.String, Allowed: []concord.Value{"gold", "silver"},
			Description: "Support tier.", Owner: "Support"},
		dict.Field{Name: "credit_limit", Type: dict.Decimal, Range: dict.Between(0, 50000),
			Description: "In the billing currency.", Owner: "Finance (ERP)"},
		dict.Field{Name: "since", Type: dict.String, Kind: dict.KindDate(time.DateOnly),
			Description: "Customer since."},
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	// The document the teams agree on.
	if err := d.Markdown(os.Stdout); err != nil {
		fmt.Println(err)
	}

	// Every violation of a record, at once.
	err = d.Validate(concord.Record{Key: "c42", Fields: map[string]concord.Value{
		"tier": "bronze", "credit_limit": "75000.00", "since": "2024-02-30",
	}})
	var vs *dict.Violations
	if errors.As(err, &vs) {
		for _, v := range vs.List {
			fmt.Printf("%s: %v (%s)\n", v.Field, v.Rule, v.Reason)
		}
	}
	fmt.Println("required missing:", errors.Is(err, dict.ErrRequired))
	// Output:
	// | Field | Type | Required | Rule | Description | Owner |
	// |---|---|---|---|---|---|
	// | `email` | string | yes | format e-mail address | Primary contact address. | Sales (CRM) |
	// | `tier` | string | no | one of `gold`, `silver` | Support tier. | Support |
	// | `credit_limit` | decimal | no | 0 ≤ value ≤ 50000 | In the billing currency. | Finance (ERP) |
	// | `since` | string | no | format date `2006-01-02` | Customer since. |  |
	// email: required (missing)
	// tier: value not allowed (want one of "gold", "silver")
	// credit_limit: out of range (above maximum 50000)
	// since: bad format (date:2006-01-02: not a date in layout "2006-01-02")
	// required missing: true
}

func ExampleKinds_With() {
	// A host plugs in reference data, such as the ISO 4217 currency codes
	// of package transform/normalize, as a kind.
	currencies := map[string]bool{"CHF": true, "EUR": true, "USD": true}
	kinds := dict.BuiltinKinds().With(dict.KindCurrency, func(s string) error {
		if !currencies[s] {
			return errors.New("not an ISO 4217 code")
		}
		return nil
	})
	d, err := dict.Options{Kinds: kinds, Unknown: dict.RejectUnknown}.New(
		dict.Field{Name: "currency", Type: dict.String, Required: true, Kind: dict.KindCurrency},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Validate(concord.Record{Key: "inv-1", Fields: map[string]concord.Value{"currency": "CHF"}}))
	fmt.Println(d.Validate(concord.Record{Key: "inv-2", Fields: map[string]concord.Value{"currency": "SFR", "memo": "x"}}))
	// Output:
	// <nil>
	// record "inv-2": 2 dictionary violations: field "currency" value "SFR": bad format (iso4217: not an ISO 4217 code); field "memo": unknown field (not in the dictionary)
}
