package normalize

import (
	"errors"
	"strings"

	"github.com/concordsync/concord/transform/dict"
)

// Kinds returns base (or dict.BuiltinKinds() when base is nil) with the
// kinds that need this package's reference tables registered:
// dict.KindCountry (an ISO 3166-1 alpha-2 code), dict.KindSubdivision (an
// ISO 3166-2 code, "US-CA", of a country whose subdivisions are carried)
// and dict.KindCurrency (an ISO 4217 code). The checks accept the
// canonical codes only, exactly as the normalisers produce them; names are
// for normalisers to turn into codes before validation.
func Kinds(base *dict.Kinds) *dict.Kinds {
	if base == nil {
		base = dict.BuiltinKinds()
	}
	return base.
		With(dict.KindCountry, func(s string) error {
			if c, ok := LookupCountry(s); !ok || c.Alpha2 != s {
				return errors.New("not an ISO 3166-1 alpha-2 code")
			}
			return nil
		}).
		With(dict.KindSubdivision, func(s string) error {
			country, _, ok := strings.Cut(s, "-")
			if !ok {
				return errors.New(`not an ISO 3166-2 code ("US-CA")`)
			}
			if sub, found := LookupSubdivision(country, s); !found || sub.Code != s {
				return errors.New("not an ISO 3166-2 code this package carries")
			}
			return nil
		}).
		With(dict.KindCurrency, func(s string) error {
			if c, ok := LookupCurrency(s); !ok || c.Code != s {
				return errors.New("not an ISO 4217 code")
			}
			return nil
		})
}
