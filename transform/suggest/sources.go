package suggest

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/normalize"
)

// ErrNoSubdivisions is returned by [Subdivisions] for a country that is
// unknown or whose subdivisions package normalize does not carry.
var ErrNoSubdivisions = errors.New("suggest: no subdivision data")

// Values returns a candidate for each of values, each with why as its
// origin ("warehouse code"); duplicates are dropped, the first kept.
func Values(why string, values ...string) []Candidate {
	out := make([]Candidate, 0, len(values))
	seen := map[string]bool{}
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			out = append(out, Candidate{Value: v, Why: why})
		}
	}
	return out
}

// Allowed returns the string values of f.Allowed as candidates, each
// described as an allowed value of the field; values of other types are
// left out, as a typo in a number is not a spelling to correct.
func Allowed(f dict.Field) []Candidate {
	var vs []string
	for _, v := range f.Allowed {
		if s, ok := v.(string); ok {
			vs = append(vs, s)
		}
	}
	return Values(fmt.Sprintf("allowed value of %q", f.Name), vs...)
}

// Countries returns the English names of every ISO 3166-1 country as
// candidates: the ISO short name ("Korea, Republic of"), and the official
// ("Republic of Korea") and common ("South Korea") names where iso-codes
// has them, each a candidate of its own, so that a typo is corrected to
// the form it was meant as. Every one of them is a name that
// [normalize.LookupCountry] (and so [normalize.CountryAlpha2] and
// dict.KindCountry with [normalize.Kinds]) accepts. Why is "ISO 3166-1 KR",
// with "(official name)" or "(common name)" for those.
func Countries() []Candidate {
	var out []Candidate
	seen := map[string]bool{}
	add := func(v, why string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, Candidate{Value: v, Why: why})
		}
	}
	for _, c := range normalize.Countries() {
		add(c.Name, "ISO 3166-1 "+c.Alpha2)
		add(c.CommonName, "ISO 3166-1 "+c.Alpha2+" (common name)")
		add(c.OfficialName, "ISO 3166-1 "+c.Alpha2+" (official name)")
	}
	return out
}

// Subdivisions returns the names of the ISO 3166-2 subdivisions of
// country (any form [normalize.LookupCountry] accepts) as candidates, and
// their local names where iso-codes has them (the Welsh names of GB), with
// the full code as Why: "ISO 3166-2 US-CA". It fails with
// [ErrNoSubdivisions] for a country that package normalize carries no
// subdivisions of.
func Subdivisions(country string) ([]Candidate, error) {
	subs := normalize.Subdivisions(country)
	if len(subs) == 0 {
		return nil, fmt.Errorf("%w for country %q", ErrNoSubdivisions, country)
	}
	var out []Candidate
	seen := map[string]bool{}
	add := func(v, why string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, Candidate{Value: v, Why: why})
		}
	}
	for _, s := range subs {
		add(s.Name, "ISO 3166-2 "+s.Code)
	}
	for _, s := range subs {
		add(s.LocalName, "ISO 3166-2 "+s.Code+" (local name)")
	}
	return out, nil
}
