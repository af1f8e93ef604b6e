package transformtest_test

import (
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/transformtest"
)

func TestGenDictionaryMakesValidRecords(t *testing.T) {
	country := "iso-country-for-test"
	kinds := dict.BuiltinKinds().With(country, func(s string) error {
		if s != "DE" && s != "FR" {
			return errNotCountry
		}
		return nil
	})
	d, err := dict.Options{Kinds: kinds, Unknown: dict.RejectUnknown}.New(
		dict.Field{Name: "name", Type: dict.String, Required: true, MinLen: 1, MaxLen: 40},
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail},
		dict.Field{Name: "phone", Type: dict.String, Kind: dict.KindE164},
		dict.Field{Name: "since", Type: dict.String, Required: true, Kind: dict.KindDate("2006-01-02")},
		dict.Field{Name: "country", Type: dict.String, Kind: country},
		dict.Field{Name: "tier", Type: dict.String, Allowed: []concord.Value{"gold", "silver"}},
		dict.Field{Name: "sku", Type: dict.String, Pattern: `[A-Z]{3}-[0-9]{4}`},
		dict.Field{Name: "qty", Type: dict.Integer, Range: dict.Between(1, 99)},
		dict.Field{Name: "price", Type: dict.Decimal, Range: dict.AtLeast(0)},
		dict.Field{Name: "weight", Type: dict.Number, Range: dict.Between(0.1, 50)},
		dict.Field{Name: "active", Type: dict.Bool},
		dict.Field{Name: "tags", Type: dict.List, MaxLen: 5},
	)
	if err != nil {
		t.Fatal(err)
	}
	gen := transformtest.GenDictionary(d, map[string]*rapid.Generator[string]{country: rapid.SampledFrom([]string{"DE", "FR"})})
	rapid.Check(t, func(t *rapid.T) {
		rec := gen.Draw(t, "record")
		if err := d.Validate(rec); err != nil {
			t.Fatalf("generated record %v is invalid: %v", rec.Fields, err)
		}
	})
}

var errNotCountry = errors.New("not a country")
