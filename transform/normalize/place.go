package normalize

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// CountryAlpha2 returns a Normalizer from any form [LookupCountry] accepts
// (alpha-2, alpha-3 or numeric code, or an English name) to the ISO 3166-1
// alpha-2 code: "Deutschland" is not English and fails, but "germany",
// "DEU", "276" and "de" are all "DE". A numeric code may also be an
// integer value (276, or a float64 276 from JSON). Unknown values fail with
// [ErrUnknownCountry].
func CountryAlpha2() Normalizer {
	return country(func(c Country) string { return c.Alpha2 })
}

// CountryName returns a Normalizer from any form [LookupCountry] accepts
// to the country's ISO 3166-1 short name ("KR" is "Korea, Republic of"),
// for systems that store names; [LookupCountry] gives the common and
// official names too. Unknown values fail with [ErrUnknownCountry].
func CountryName() Normalizer {
	return country(func(c Country) string { return c.Name })
}

func country(pick func(Country) string) Normalizer {
	return func(v concord.Value) (concord.Value, error) {
		if v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			if s, ok = integerCode(v); !ok {
				return nil, fmt.Errorf("%w: want a string or an integer country code, got %T", transform.ErrWrongType, v)
			}
		}
		c, ok := LookupCountry(s)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownCountry, s)
		}
		return pick(c), nil
	}
}

// integerCode renders a non-negative integer value below 1000 (of any
// integer type, or an integral float or json.Number) as a decimal string.
func integerCode(v concord.Value) (string, bool) {
	var n int64
	switch x := v.(type) {
	case int, int8, int16, int32, int64:
		n = reflect.ValueOf(x).Int()
	case uint, uint8, uint16, uint32, uint64:
		u := reflect.ValueOf(x).Uint()
		if u >= 1000 {
			return "", false
		}
		n = int64(u)
	case float64:
		if x != math.Trunc(x) || x < 0 || x >= 1000 {
			return "", false
		}
		n = int64(x)
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return "", false
		}
		n = i
	default:
		return "", false
	}
	if n < 0 || n >= 1000 {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// SubdivisionCode returns a Normalizer from a subdivision of country, given
// by its full ISO 3166-2 code ("US-CA"), its code within the country
// ("CA", "ca") or its name ("California"), to its full ISO 3166-2 code
// ("US-CA"). The full code is the normal form because it stands on its
// own: "CA" alone could be California or Canada. Names ignore case,
// diacritics, punctuation and spacing; for GB the Welsh names and codes
// are accepted too ("Caerdydd" and "GB-CRD" are "GB-CRF", Cardiff). A
// value that names no subdivision of country, including a full code of
// another country, fails with [ErrUnknownSubdivision].
//
// country is any form [LookupCountry] accepts; Subdivision panics if it is
// unknown or one whose subdivisions this package does not carry (see
// [Subdivisions]), as that is a mistake in the program, not in the data.
func SubdivisionCode(country string) Normalizer {
	return subdivision("SubdivisionCode", country, func(s Subdivision) string { return s.Code })
}

// SubdivisionName is [SubdivisionCode] with the subdivision's name as the
// result: "US-CA", "CA" and "california" are all "California". For
// outbound transforms to systems that store names.
func SubdivisionName(country string) Normalizer {
	return subdivision("SubdivisionName", country, func(s Subdivision) string { return s.Name })
}

func subdivision(fn, country string, pick func(Subdivision) string) Normalizer {
	c, ok := LookupCountry(country)
	if !ok || len(Subdivisions(c.Alpha2)) == 0 {
		panic(fmt.Sprintf("normalize.%s: no subdivision data for country %q", fn, country))
	}
	return onString(func(s string) (string, error) {
		sub, ok := LookupSubdivision(c.Alpha2, s)
		if !ok {
			return "", fmt.Errorf("%w %q of %s", ErrUnknownSubdivision, s, c.Alpha2)
		}
		return pick(sub), nil
	})
}

// CurrencyCode returns a Normalizer from an ISO 4217 alphabetic code in
// any case or a numeric code ("eur", "978", or the integer 978) to the
// alphabetic code ("EUR"). Unknown codes fail with [ErrUnknownCurrency].
func CurrencyCode() Normalizer {
	return func(v concord.Value) (concord.Value, error) {
		if v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			if s, ok = integerCode(v); !ok {
				return nil, fmt.Errorf("%w: want a string or an integer currency code, got %T", transform.ErrWrongType, v)
			}
		}
		c, ok := LookupCurrency(s)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownCurrency, s)
		}
		return c.Code, nil
	}
}
