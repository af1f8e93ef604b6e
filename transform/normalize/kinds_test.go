package normalize_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/normalize"
)

func TestKindsForTheDictionary(t *testing.T) {
	d, err := dict.Options{Kinds: normalize.Kinds(nil)}.New(
		dict.Field{Name: "country", Type: dict.String, Kind: dict.KindCountry},
		dict.Field{Name: "state", Type: dict.String, Kind: dict.KindSubdivision},
		dict.Field{Name: "currency", Type: dict.String, Kind: dict.KindCurrency},
	)
	require.NoError(t, err)
	ok := concord.Record{Key: "k", Fields: map[string]any{"country": "DE", "state": "DE-BY", "currency": "EUR"}}
	require.NoError(t, d.Validate(ok), "valid codes refused")
	bad := concord.Record{Key: "k", Fields: map[string]any{"country": "Germany", "state": "Bavaria", "currency": "EURO"}}
	err = d.Validate(bad)
	var vs *dict.Violations
	if !errors.As(err, &vs) || len(vs.List) != 3 {
		t.Fatalf("Validate = %v; want three format violations", err)
	}
	for _, v := range vs.List {
		if !errors.Is(v.Rule, dict.ErrFormat) {
			t.Errorf("%s: rule %v; want ErrFormat", v.Field, v.Rule)
		}
	}
}
