package normalize_test

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/normalize"
	"github.com/concordsync/concord/transform/transformtest"
)

// normalizers names one of each kind of Normalizer, for the laws every
// one of them must keep.
var normalizers = map[string]normalize.Normalizer{
	"country_alpha2": normalize.CountryAlpha2(),
	"country_name":   normalize.CountryName(),
	"subdivision":    normalize.SubdivisionCode("US"),
	"subdiv_name":    normalize.SubdivisionName("DE"),
	"currency":       normalize.CurrencyCode(),
	"date":           normalize.Date("01/02/2006", time.DateOnly),
	"date_auto":      normalize.DateAuto(time.DateOnly),
	"phone":          normalize.Phone("US"),
	"email":          normalize.Email(),
	"space":          normalize.Space(),
	"lower":          normalize.Lower(),
	"upper":          normalize.Upper(),
	"chain":          normalize.Chain(normalize.Space(), normalize.Lower()),
	"amount":         normalize.Amount("USD", normalize.AmountFormat{Thousands: ','}),
	"amount_jpy":     normalize.Amount("JPY", normalize.AmountFormat{}),
	"amount_kwd":     normalize.Amount("KWD", normalize.AmountFormat{}),
}

// inexact is 0.1+0.2 computed at run time (constants are exact):
// 0.30000000000000004.
var inexact = func() float64 { a := 0.1; return a + 0.2 }()

type valueCase struct {
	field string // key in normalizers
	in    concord.Value
	want  concord.Value // ignored if err is set
	err   error
}

var valueCases = []valueCase{
	{"country_alpha2", "Germany", "DE", nil},
	{"country_alpha2", "  united   states of AMERICA ", "US", nil},
	{"country_alpha2", "deu", "DE", nil},
	{"country_alpha2", "276", "DE", nil},
	{"country_alpha2", "40", "AT", nil},
	{"country_alpha2", 40, "AT", nil},
	{"country_alpha2", uint8(40), "AT", nil},
	{"country_alpha2", 40.0, "AT", nil},
	{"country_alpha2", json.Number("40"), "AT", nil}, // json.Number("040") is not a JSON number, so not a Value
	{"country_alpha2", "Cote d Ivoire", "CI", nil},
	{"country_alpha2", "CÔTE D’IVOIRE", "CI", nil},
	{"country_alpha2", "Aland Islands", "AX", nil},
	{"country_alpha2", "South Korea", "KR", nil},
	{"country_alpha2", "Republic of Korea", nil, normalize.ErrUnknownCountry}, // not an iso-codes name
	{"country_alpha2", "Korea, Republic of", "KR", nil},
	{"country_alpha2", "Federal Republic of Germany", "DE", nil},
	{"country_alpha2", "de", "DE", nil},
	{"country_alpha2", nil, nil, nil},
	{"country_alpha2", "Deutschland", nil, normalize.ErrUnknownCountry},
	{"country_alpha2", "UK", nil, normalize.ErrUnknownCountry},
	{"country_alpha2", "999", nil, normalize.ErrUnknownCountry},
	{"country_alpha2", "", nil, normalize.ErrUnknownCountry},
	{"country_alpha2", 1000, nil, transform.ErrWrongType},
	{"country_alpha2", 2.5, nil, transform.ErrWrongType},
	{"country_alpha2", true, nil, transform.ErrWrongType},
	{"country_name", "KR", "Korea, Republic of", nil},
	{"country_name", "FRA", "France", nil},
	{"country_name", "xx", nil, normalize.ErrUnknownCountry},

	{"subdivision", "California", "US-CA", nil},
	{"subdivision", "CA", "US-CA", nil},
	{"subdivision", "ca", "US-CA", nil},
	{"subdivision", "us-ca", "US-CA", nil},
	{"subdivision", " new  york ", "US-NY", nil},
	{"subdivision", "District of Columbia", "US-DC", nil},
	{"subdivision", "CA-ON", nil, normalize.ErrUnknownSubdivision},
	{"subdivision", "Ontario", nil, normalize.ErrUnknownSubdivision},
	{"subdivision", "ZZ", nil, normalize.ErrUnknownSubdivision},
	{"subdivision", 6, nil, transform.ErrWrongType},
	{"subdiv_name", "DE-BW", "Baden-Württemberg", nil},
	{"subdiv_name", "baden wurttemberg", "Baden-Württemberg", nil},
	{"subdiv_name", "th", "Thüringen", nil},

	{"currency", "eur", "EUR", nil},
	{"currency", "978", "EUR", nil},
	{"currency", 36, "AUD", nil},
	{"currency", "EURO", nil, normalize.ErrUnknownCurrency},

	{"date", "03/04/2025", "2025-03-04", nil},
	{"date", "2025-03-04", "2025-03-04", nil}, // already normal
	{"date", time.Date(2025, 3, 4, 23, 0, 0, 0, time.UTC), "2025-03-04", nil},
	{"date", "3/4/2025", nil, normalize.ErrBadDate},
	{"date", "13/04/2025", nil, normalize.ErrBadDate},
	{"date", "2025-3-4", nil, normalize.ErrBadDate},
	{"date", 20250304, nil, transform.ErrWrongType},
	{"date_auto", "2025-03-04", "2025-03-04", nil},
	{"date_auto", "2025-03-04T23:30:00-05:00", "2025-03-04", nil},
	{"date_auto", "03/04/2025", nil, normalize.ErrAmbiguousDate},
	{"date_auto", "13/04/2025", nil, normalize.ErrAmbiguousDate},
	{"date_auto", "4.3.2025", nil, normalize.ErrAmbiguousDate},
	{"date_auto", "2025/03/04", nil, normalize.ErrAmbiguousDate},
	{"date_auto", "March 4, 2025", nil, normalize.ErrBadDate},
	{"date_auto", "2025-03-04T10:00:00", nil, normalize.ErrBadDate}, // no zone

	{"phone", "(650) 253-0000", "+16502530000", nil},
	{"phone", "+44 20 7031 3000", "+442070313000", nil},
	{"phone", "+16502530000", "+16502530000", nil},
	{"phone", "253-0000", nil, normalize.ErrBadPhone},
	{"phone", "(650) 253-0000 ext. 12", nil, normalize.ErrBadPhone},
	{"phone", "not a number", nil, normalize.ErrBadPhone},
	{"phone", 6502530000, nil, transform.ErrWrongType},

	{"email", " Ada.Lovelace@Example.COM ", "Ada.Lovelace@example.com", nil},
	{"email", "x@bücher.DE", "x@bücher.de", nil},
	{"email", "ada@example", nil, normalize.ErrBadEmail},
	{"email", "ada.example.com", nil, normalize.ErrBadEmail},
	{"email", "a@b@example.com", nil, normalize.ErrBadEmail},
	{"email", "@example.com", nil, normalize.ErrBadEmail},
	{"email", "ada lovelace@example.com", nil, normalize.ErrBadEmail},
	{"email", "ada@-example.com", nil, normalize.ErrBadEmail},
	{"email", "ada@example..com", nil, normalize.ErrBadEmail},

	{"space", "  Ada \t\n Lovelace\u00a0 ", "Ada Lovelace", nil},
	{"space", 1, nil, transform.ErrWrongType},
	{"lower", "ÄBC", "äbc", nil},
	{"upper", "sku-1a", "SKU-1A", nil},
	{"chain", "  Ada   LOVELACE ", "ada lovelace", nil},

	{"amount", "19.99", "19.99", nil},
	{"amount", "1,234.5", "1234.50", nil},
	{"amount", " -0020 ", "-20.00", nil},
	{"amount", "+.5", "0.50", nil},
	{"amount", "-0.00", "0.00", nil},
	{"amount", "19.990", "19.99", nil},
	{"amount", 19.99, "19.99", nil},
	{"amount", float32(19.99), "19.99", nil},
	{"amount", 7, "7.00", nil},
	{"amount", uint8(7), "7.00", nil},
	{"amount", json.Number("19.99"), "19.99", nil},
	{"amount", json.Number("1.999e1"), "19.99", nil},
	{"amount", json.Number("-25E-2"), "-0.25", nil},
	{"amount", "19.999", nil, normalize.ErrBadAmount},
	{"amount", inexact, nil, normalize.ErrBadAmount},
	{"amount", "1,,234", nil, normalize.ErrBadAmount},
	{"amount", ",123", nil, normalize.ErrBadAmount},
	{"amount", "123,", nil, normalize.ErrBadAmount},
	{"amount", "12.", nil, normalize.ErrBadAmount},
	{"amount", "1.2.3", nil, normalize.ErrBadAmount},
	{"amount", "-", nil, normalize.ErrBadAmount},
	{"amount", "$12", nil, normalize.ErrBadAmount},
	{"amount", "1e3", nil, normalize.ErrBadAmount},
	{"amount", json.Number("1e999999"), nil, normalize.ErrBadAmount},
	{"amount", true, nil, transform.ErrWrongType},
	{"amount_jpy", "1500", "1500", nil},
	{"amount_jpy", "1500.0", "1500", nil},
	{"amount_jpy", "1500.5", nil, normalize.ErrBadAmount},
	{"amount_jpy", "1,500", nil, normalize.ErrBadAmount}, // no thousands separator declared
	{"amount_kwd", "1.5", "1.500", nil},
}

func TestNormalizers(t *testing.T) {
	for _, c := range valueCases {
		n := normalizers[c.field]
		if n == nil {
			t.Fatalf("no normalizer %q", c.field)
		}
		got, err := n(c.in)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s(%#v): err = %v; want %v", c.field, c.in, err, c.err)
		case c.err != nil && c.err != transform.ErrWrongType && !errors.Is(err, transform.ErrBadValue):
			t.Errorf("%s(%#v): err = %v; want it to wrap transform.ErrBadValue too", c.field, c.in, err)
		case c.err == nil && err != nil:
			t.Errorf("%s(%#v): unexpected error %v", c.field, c.in, err)
		case c.err == nil:
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("%s(%#v): (-want +got):\n%s", c.field, c.in, d)
			}
		}
	}
}

// TestAmountNotation checks a declared notation with a decimal comma.
func TestAmountNotation(t *testing.T) {
	eu := normalize.Amount("EUR", normalize.AmountFormat{Decimal: ',', Thousands: '.'})
	for in, want := range map[string]string{"1.234,5": "1234.50", "19,99": "19.99", "-0,5": "-0.50", "12": "12.00"} {
		if got, err := eu(in); err != nil || got != want {
			t.Errorf("Amount(EUR, ','/'.')(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	// In this notation the plain form is a different number: running the
	// Normalizer twice is wrong, as its doc says.
	if got, err := eu("19.99"); err != nil || got != "1999.00" {
		t.Errorf(`Amount(EUR, ','/'.')("19.99") = %v, %v; want "1999.00"`, got, err)
	}
}

// TestPhoneE164 formats a national number of each of 12 countries.
func TestPhoneE164(t *testing.T) {
	for _, c := range []struct{ region, national, want string }{
		{"US", "(201) 555-0123", "+12015550123"},
		{"GB", "0121 234 5678", "+441212345678"},
		{"DE", "030 123456", "+4930123456"},
		{"FR", "01 23 45 67 89", "+33123456789"},
		{"AT", "01 234567890", "+431234567890"},
		{"JP", "03-1234-5678", "+81312345678"},
		{"AU", "(02) 1234 5678", "+61212345678"},
		{"BR", "(11) 2345-6789", "+551123456789"},
		{"IN", "074104 10123", "+917410410123"},
		{"CH", "021 234 56 78", "+41212345678"},
		{"ZA", "010 123 4567", "+27101234567"},
		{"CA", "(506) 234-5678", "+15062345678"},
	} {
		n := normalize.Phone(c.region)
		got, err := n(c.national)
		if err != nil || got != c.want {
			t.Errorf("Phone(%q)(%q) = %v, %v; want %q", c.region, c.national, got, err, c.want)
		}
		// From another region, the E.164 form reads the same.
		if again, err := normalize.Phone("NZ")(got); err != nil || again != c.want {
			t.Errorf("Phone(NZ)(%q) = %v, %v; want %q", got, again, err, c.want)
		}
	}
}

func TestConstructorsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"SubdivisionCode(unknown)": func() { normalize.SubdivisionCode("Atlantis") },
		"SubdivisionCode(no data)": func() { normalize.SubdivisionCode("FR") },
		"SubdivisionName(no data)": func() { normalize.SubdivisionName("JP") },
		"Phone(unknown)":           func() { normalize.Phone("XX") },
		"Amount(unknown)":          func() { normalize.Amount("ABC", normalize.AmountFormat{}) },
		"Amount(same separators)":  func() { normalize.Amount("EUR", normalize.AmountFormat{Decimal: ',', Thousands: ','}) },
		"Amount(digit separator)":  func() { normalize.Amount("EUR", normalize.AmountFormat{Thousands: '0'}) },
		"Date(empty)":              func() { normalize.Date("", time.DateOnly) },
		"DateAuto(empty)":          func() { normalize.DateAuto("") },
		"Fields(nil normalizer)":   func() { normalize.Fields(map[string]normalize.Normalizer{"x": nil}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}

func rec(key string, kv ...any) concord.Record {
	r := concord.Record{Key: key, Fields: map[string]concord.Value{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i].(string)] = kv[i+1]
	}
	return r
}

func TestFields(t *testing.T) {
	tr := normalize.Fields(normalizers)
	transformtest.Table(t, tr, []transformtest.Case{
		{Name: "normalises named fields, passes others", In: rec("c1", "country_alpha2", "Germany", "email", "A@B.CO", "note", " x "),
			Want: rec("c1", "country_alpha2", "DE", "email", "A@b.co", "note", " x ")},
		{Name: "absent stays absent", In: rec("c1", "note", 1), Want: rec("c1", "note", 1)},
		{Name: "nil stays nil", In: rec("c1", "phone", nil), Want: rec("c1", "phone", nil)},
		{Name: "deleted unchanged", In: concord.Record{Key: "c1", Deleted: true, Fields: map[string]concord.Value{"phone": "junk"}},
			Want: concord.Record{Key: "c1", Deleted: true, Fields: map[string]concord.Value{"phone": "junk"}}},
		{Name: "bad value", In: rec("c1", "country_alpha2", "Atlantis", "date_auto", "03/04/2025"), WantErr: normalize.ErrUnknownCountry},
	})

	// The error names the record, the first bad field in name order, and
	// its value.
	_, err := tr.Transform(t.Context(), rec("c7", "date_auto", "03/04/2025", "phone", "junk"))
	var fe *transform.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v; want a *transform.FieldError", err)
	}
	want := &transform.FieldError{Key: "c7", Field: "date_auto", Value: "03/04/2025"}
	if d := cmp.Diff(want, fe, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())); d != "" {
		t.Errorf("FieldError (-want +got):\n%s", d)
	}
	if !errors.Is(err, normalize.ErrAmbiguousDate) {
		t.Errorf("err = %v; want it to wrap ErrAmbiguousDate", err)
	}
	if got, want := err.Error(), `record "c7" field "date_auto" value "03/04/2025": bad value: ambiguous date: the order of day, month and year is not declared; use normalize.Date with the layout`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

// TestConcurrent runs every normaliser from several goroutines at once,
// for the race detector.
func TestConcurrent(t *testing.T) {
	tr := normalize.Fields(normalizers)
	var recs []concord.Record
	for field, values := range goodValues() {
		for _, v := range values {
			recs = append(recs, rec(field, field, v))
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, r := range recs {
				if _, err := tr.Transform(t.Context(), r); err != nil {
					t.Errorf("record %q: %v", r.Key, err)
				}
			}
		})
	}
	wg.Wait()
}

// goodValues are valid inputs for each normaliser, for the laws below.
func goodValues() map[string][]concord.Value {
	m := map[string][]concord.Value{}
	for _, c := range valueCases {
		if c.err == nil {
			m[c.field] = append(m[c.field], c.in)
		}
	}
	return m
}

// TestLaws checks that every normaliser is idempotent and does not modify
// its input, on every valid input of the table.
func TestLaws(t *testing.T) {
	tr := normalize.Fields(normalizers)
	var recs []concord.Record
	for field, values := range goodValues() {
		for _, v := range values {
			recs = append(recs, rec(field, field, v, "other", []any{"x", map[string]any{"y": 1}}))
		}
	}
	if len(recs) < len(normalizers) {
		t.Fatalf("only %d sample records for %d normalizers", len(recs), len(normalizers))
	}
	transformtest.Idempotent(t, tr, recs...)
	transformtest.NoMutation(t, tr, recs...)
}

// TestLawsRandom checks the same laws on random records: random values of
// every type in the normalised fields (mostly rejected), and valid ones.
func TestLawsRandom(t *testing.T) {
	tr := normalize.Fields(normalizers)
	good := goodValues()
	var names []string
	for name := range normalizers {
		names = append(names, name)
	}
	rapid.Check(t, func(rt *rapid.T) {
		r := transformtest.GenRecord(names...).Draw(rt, "rec")
		for _, name := range names {
			if rapid.IntRange(0, 2).Draw(rt, "use good "+name) == 0 {
				r.Fields[name] = rapid.SampledFrom(good[name]).Draw(rt, "good "+name)
			}
		}
		tb := transformtest.RapidTB(t, rt)
		transformtest.NoMutation(tb, tr, r)
		// Idempotence is about records the transformer accepts.
		if _, err := tr.Transform(t.Context(), r.Clone()); err == nil {
			transformtest.Idempotent(tb, tr, r)
		}
	})
}

// TestLawsRandomStrings runs each string normaliser on random strings: it
// never panics, and whatever it accepts it leaves unchanged the second time.
func TestLawsRandomStrings(t *testing.T) {
	for name, n := range normalizers {
		t.Run(name, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) {
				s := rapid.OneOf(rapid.String(), rapid.StringMatching(`[ \t]*[-+]?[0-9a-zA-Z,./@ -]{0,14}[ ]*`)).Draw(rt, "s")
				once, err := n(s)
				if err != nil {
					return
				}
				twice, err := n(once)
				if err != nil {
					rt.Fatalf("%s(%q) = %q, but %s(%q) fails: %v", name, s, once, name, once, err)
				}
				if d := cmp.Diff(once, twice); d != "" {
					rt.Fatalf("%s(%q): not idempotent (-once +twice):\n%s", name, s, d)
				}
			})
		})
	}
}
