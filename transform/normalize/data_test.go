package normalize_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/transform/normalize"
)

// TestCountriesRoundTrip: every ISO 3166-1 entry is found by each of its
// codes and names, and alpha-2 -> name -> alpha-2 is the identity.
func TestCountriesRoundTrip(t *testing.T) {
	all := normalize.Countries()
	if len(all) < 249 {
		t.Fatalf("Countries() has %d entries; want all 249 or more", len(all))
	}
	toAlpha2, toName := normalize.CountryAlpha2(), normalize.CountryName()
	for _, c := range all {
		name, err := toName(c.Alpha2)
		if err != nil || name != c.Name {
			t.Errorf("CountryName(%q) = %v, %v; want %q", c.Alpha2, name, err, c.Name)
		}
		keys := []string{c.Alpha2, strings.ToLower(c.Alpha2), c.Alpha3, c.Numeric, c.Name,
			strings.ToUpper(c.Name), c.OfficialName, c.CommonName}
		for _, k := range keys {
			if k == "" {
				continue
			}
			got, err := toAlpha2(k)
			if err != nil || got != c.Alpha2 {
				t.Errorf("CountryAlpha2(%q) = %v, %v; want %q", k, got, err, c.Alpha2)
			}
			if lc, ok := normalize.LookupCountry(k); !ok || lc != c {
				t.Errorf("LookupCountry(%q) = %+v, %v; want %+v", k, lc, ok, c)
			}
		}
	}
	if !slices.IsSortedFunc(all, func(a, b normalize.Country) int { return strings.Compare(a.Alpha2, b.Alpha2) }) {
		t.Errorf("Countries() is not sorted by alpha-2")
	}
}

// TestSubdivisionsRoundTrip: every subdivision of the carried countries is
// found by its full code, short code, name and local name and code, and
// code -> name -> code is the identity.
func TestSubdivisionsRoundTrip(t *testing.T) {
	wantAtLeast := map[string]int{"US": 57, "CA": 13, "AU": 8, "DE": 16, "GB": 200}
	for country, min := range wantAtLeast {
		subs := normalize.Subdivisions(country)
		if len(subs) < min {
			t.Errorf("Subdivisions(%q) has %d entries; want at least %d", country, len(subs), min)
		}
		toCode, toName := normalize.SubdivisionCode(country), normalize.SubdivisionName(country)
		for _, s := range subs {
			name, err := toName(s.Code)
			if err != nil || name != s.Name {
				t.Errorf("SubdivisionName(%q)(%q) = %v, %v; want %q", country, s.Code, name, err, s.Name)
				continue
			}
			_, short, _ := strings.Cut(s.Code, "-")
			for _, k := range []string{s.Code, short, strings.ToLower(short), s.Name, s.LocalName, s.LocalCode} {
				if k == "" {
					continue
				}
				got, err := toCode(k)
				if err != nil || got != s.Code {
					t.Errorf("SubdivisionCode(%q)(%q) = %v, %v; want %q", country, k, got, err, s.Code)
				}
			}
			if strings.ContainsAny(s.Name, "[]") {
				t.Errorf("%s: name %q still holds the bracketed local name", s.Code, s.Name)
			}
		}
	}
	if got := normalize.Subdivisions("FR"); got != nil {
		t.Errorf("Subdivisions(FR) = %d entries; want nil (not carried)", len(got))
	}
	cardiff, ok := normalize.LookupSubdivision("GB", "Caerdydd")
	want := normalize.Subdivision{Code: "GB-CRF", Name: "Cardiff", Type: "Unitary authority", Parent: "GB-WLS", LocalName: "Caerdydd", LocalCode: "GB-CRD"}
	if d := cmp.Diff(want, cardiff); !ok || d != "" {
		t.Errorf("LookupSubdivision(GB, Caerdydd) (-want +got), found %v:\n%s", ok, d)
	}
}

func TestCurrencies(t *testing.T) {
	all := normalize.Currencies()
	if len(all) < 170 {
		t.Fatalf("Currencies() has %d entries; want 170 or more", len(all))
	}
	for _, c := range all {
		for _, k := range []string{c.Code, strings.ToLower(c.Code), c.Numeric} {
			if got, ok := normalize.LookupCurrency(k); !ok || got != c {
				t.Errorf("LookupCurrency(%q) = %+v, %v; want %+v", k, got, ok, c)
			}
		}
		if c.MinorUnits < -1 || c.MinorUnits > 4 {
			t.Errorf("%s: MinorUnits %d out of range", c.Code, c.MinorUnits)
		}
	}
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "KRW": 0, "KWD": 3, "TND": 3, "CLF": 4, "XAU": -1, "XXX": -1} {
		if c, ok := normalize.LookupCurrency(code); !ok || c.MinorUnits != want {
			t.Errorf("LookupCurrency(%q).MinorUnits = %d (found %v); want %d", code, c.MinorUnits, ok, want)
		}
	}
}

// TestNamesUnambiguous: no two countries (or two subdivisions of one
// country) share a name once case, diacritics and punctuation are ignored;
// a shared name would be found by neither, which the round trips above
// would catch too, but this names the culprits.
func TestNamesUnambiguous(t *testing.T) {
	seen := map[string]string{}
	for _, c := range normalize.Countries() {
		for _, n := range []string{c.Name, c.OfficialName, c.CommonName} {
			if n == "" {
				continue
			}
			got, ok := normalize.LookupCountry(n)
			if !ok || got.Alpha2 != c.Alpha2 {
				t.Errorf("name %q of %s finds %q (found %v); another entry shares it", n, c.Alpha2, got.Alpha2, ok)
			}
			seen[n] = c.Alpha2
		}
	}
	if len(seen) < 249 {
		t.Errorf("only %d distinct names", len(seen))
	}
}

func TestISOCodesVersion(t *testing.T) {
	if normalize.ISOCodesVersion == "" || strings.Count(normalize.ISOCodesVersion, ".") < 1 {
		t.Errorf("ISOCodesVersion = %q; want a release number such as 4.15.0", normalize.ISOCodesVersion)
	}
}
