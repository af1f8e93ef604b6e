package normalize

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// Country is one ISO 3166-1 entry.
type Country struct {
	Alpha2       string // "DE"
	Alpha3       string // "DEU"
	Numeric      string // "276", always three digits
	Name         string // ISO short name: "Germany", "Korea, Republic of"
	OfficialName string // "Federal Republic of Germany"; empty if iso-codes has none
	CommonName   string // "South Korea"; empty if iso-codes has none
}

// Subdivision is one ISO 3166-2 entry.
type Subdivision struct {
	Code   string // full ISO 3166-2 code: "US-CA"
	Name   string // "California"
	Type   string // "State", "Province", "Land", "Council area", ...
	Parent string // code of the enclosing subdivision, if any: "GB-WLS"
	// LocalName and LocalCode are the Welsh name and code iso-codes gives
	// for some subdivisions of GB ("Caerdydd", "GB-CRD" for "Cardiff").
	LocalName, LocalCode string
}

// Currency is one ISO 4217 entry.
type Currency struct {
	Code    string // "EUR"
	Numeric string // "978"
	Name    string // "Euro"
	// MinorUnits is the number of decimal places of the currency's minor
	// unit: 2 for EUR, 0 for JPY, 3 for KWD; -1 for codes without one
	// (precious metals, funds, "XXX").
	MinorUnits int
}

// Countries returns every ISO 3166-1 country, sorted by alpha-2 code. The
// caller owns the slice.
func Countries() []Country { return slices.Clone(countries[:]) }

// Currencies returns every ISO 4217 currency, sorted by code. The caller
// owns the slice.
func Currencies() []Currency { return slices.Clone(currencies[:]) }

// Subdivisions returns the ISO 3166-2 subdivisions of country (any form
// [LookupCountry] accepts), sorted by code; nil for a country whose
// subdivisions this package does not carry (see the package doc). The
// caller owns the slice.
func Subdivisions(country string) []Subdivision {
	c, ok := LookupCountry(country)
	if !ok {
		return nil
	}
	var out []Subdivision
	for _, s := range subdivisions {
		if strings.HasPrefix(s.Code, c.Alpha2+"-") {
			out = append(out, s)
		}
	}
	return out
}

// LookupCountry finds a country by alpha-2, alpha-3 or numeric code
// ("de", "DEU", "276", "40") or by its ISO short, official or common English
// name; codes ignore case, names ignore case, diacritics, punctuation and
// spacing ("cote d ivoire" is "Côte d'Ivoire").
func LookupCountry(s string) (Country, bool) {
	idx := indexes()
	s = strings.TrimSpace(s)
	var i int
	var ok bool
	switch {
	case isDigits(s) && len(s) <= 3:
		i, ok = idx.numeric[pad3(s)]
	case len(s) == 2 && isLetters(s):
		i, ok = idx.alpha2[strings.ToUpper(s)]
	case len(s) == 3 && isLetters(s):
		i, ok = idx.alpha3[strings.ToUpper(s)]
	default:
		i, ok = idx.countryName[fold(s)]
	}
	if !ok || i < 0 {
		return Country{}, false
	}
	return countries[i], true
}

// LookupSubdivision finds a subdivision of country (any form
// [LookupCountry] accepts) by its full code ("US-CA"), its code within the
// country ("CA") or its name ("California"); codes ignore case, names
// ignore case, diacritics, punctuation and spacing. A full code of another
// country is not found.
func LookupSubdivision(country, s string) (Subdivision, bool) {
	c, ok := LookupCountry(country)
	if !ok {
		return Subdivision{}, false
	}
	sub := indexes().subs[c.Alpha2]
	if sub == nil {
		return Subdivision{}, false
	}
	s = strings.TrimSpace(s)
	i, ok := -1, false
	if code := strings.ToUpper(s); isSubdivisionCode(code) {
		i, ok = sub.code[code]
	} else if isCodeChars(code) && len(code) <= 3 {
		i, ok = sub.code[c.Alpha2+"-"+code]
	}
	if !ok {
		i, ok = sub.name[fold(s)]
	}
	if !ok || i < 0 {
		return Subdivision{}, false
	}
	return subdivisions[i], true
}

// LookupCurrency finds a currency by its alpha code, in any case, or its
// numeric code ("eur", "978").
func LookupCurrency(code string) (Currency, bool) {
	code = strings.TrimSpace(code)
	if isDigits(code) && len(code) <= 3 {
		code = pad3(code)
	} else {
		code = strings.ToUpper(code)
	}
	i, ok := indexes().currency[code]
	if !ok {
		return Currency{}, false
	}
	return currencies[i], true
}

// index maps lookup keys to positions in the generated arrays; -1 marks a
// name shared by two entries, which is then found by none.
type index struct {
	alpha2, alpha3, numeric, countryName, currency map[string]int
	subs                                           map[string]*subIndex // by alpha-2
}

type subIndex struct{ code, name map[string]int }

// indexes is built once, on first use, and only read after that.
var indexes = sync.OnceValue(func() *index {
	idx := &index{
		alpha2: map[string]int{}, alpha3: map[string]int{}, numeric: map[string]int{},
		countryName: map[string]int{}, currency: map[string]int{}, subs: map[string]*subIndex{},
	}
	for i, c := range countries {
		idx.alpha2[c.Alpha2], idx.alpha3[c.Alpha3], idx.numeric[c.Numeric] = i, i, i
		for _, n := range []string{c.Name, c.OfficialName, c.CommonName} {
			addName(idx.countryName, n, i)
		}
	}
	for i, c := range currencies {
		idx.currency[c.Code], idx.currency[c.Numeric] = i, i
	}
	for i, s := range subdivisions {
		country := s.Code[:2]
		sub := idx.subs[country]
		if sub == nil {
			sub = &subIndex{code: map[string]int{}, name: map[string]int{}}
			idx.subs[country] = sub
		}
		sub.code[s.Code] = i
		if s.LocalCode != "" {
			sub.code[s.LocalCode] = i
		}
		addName(sub.name, s.Name, i)
		addName(sub.name, s.LocalName, i)
	}
	return idx
})

// addName maps the folded name to i, or to -1 if another entry has it.
func addName(m map[string]int, name string, i int) {
	if name == "" {
		return
	}
	k := fold(name)
	if j, ok := m[k]; ok && j != i {
		i = -1
	}
	m[k] = i
}

// fold reduces a name to its lookup key: its letters and digits in lower
// case, with Latin diacritics removed ("ü" is "u", "ß" is "ss"); spaces and
// punctuation are dropped, so "Cote d Ivoire" and "Côte d'Ivoire" are the
// same key.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			continue
		}
		r = unicode.ToLower(r)
		if plain, ok := latin[r]; ok {
			b.WriteString(plain)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// latin maps lower-case Latin letters with diacritics to plain letters.
var latin = func() map[rune]string {
	m := map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'đ': "d", 'ł': "l", 'þ': "th", 'ð': "d", 'ı': "i"}
	for plain, marked := range map[string]string{
		"a": "àáâãäåāăą", "c": "çćĉċč", "d": "ď", "e": "èéêëēĕėęě", "g": "ĝğġģ",
		"h": "ĥħ", "i": "ìíîïĩīĭį", "j": "ĵ", "k": "ķ", "l": "ĺļľŀ", "n": "ñńņňŉ",
		"o": "òóôõöōŏő", "r": "ŕŗř", "s": "śŝşšș", "t": "ţťŧț", "u": "ùúûüũūŭůűų",
		"w": "ŵ", "y": "ýÿŷ", "z": "źżž",
	} {
		for _, r := range marked {
			m[r] = plain
		}
	}
	return m
}()

func isDigits(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0
}

func isLetters(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') }) < 0
}

func isCodeChars(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < '0' || r > '9') }) < 0
}

// isSubdivisionCode reports whether s, upper-cased, has the shape of a full
// ISO 3166-2 code: "US-CA", "GB-LND".
func isSubdivisionCode(s string) bool {
	country, sub, ok := strings.Cut(s, "-")
	return ok && len(country) == 2 && isLetters(country) && len(sub) <= 3 && isCodeChars(sub)
}

// pad3 left-pads a numeric code of up to three digits with zeros.
func pad3(s string) string {
	n, _ := strconv.Atoi(s)
	return strconv.Itoa(1000 + n)[1:]
}
