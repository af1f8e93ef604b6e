package normalize_test

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/normalize"
)

// accra1910 is midnight in Africa/Accra on 1 January 1910, local mean time
// −0:00:52; a fixed zone stands in when there is no zone database.
func accra1910(t *testing.T) time.Time {
	loc, err := time.LoadLocation("Africa/Accra")
	if err != nil {
		loc = time.FixedZone("LMT", -52)
	}
	at := time.Date(1910, 1, 1, 0, 0, 0, 0, loc)
	if _, off := at.Zone(); off != -52 {
		t.Fatalf("Accra 1910 offset %d; want -52", off)
	}
	return at
}

func TestDateNormalizersKeepTheInstantOfSubMinuteOffsets(t *testing.T) {
	at := accra1910(t)
	london := time.Date(1840, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -75))
	for _, tc := range []struct {
		n    normalize.Normalizer
		in   concord.Value
		want string
	}{
		{normalize.DateAuto(time.RFC3339), at, "1910-01-01T00:00:52Z"},
		{normalize.DateAuto(time.RFC3339Nano), at, "1910-01-01T00:00:52Z"},
		{normalize.DateAuto(time.RFC3339), london, "1840-01-01T00:01:15Z"},
		{normalize.DateAuto("2006-01-02 15:04 -0700"), at, "1910-01-01 00:00 +0000"}, // UTC, minutes as the layout has them
		{normalize.Date("2006-01-02T15:04:05-07:00:00", time.RFC3339), "1910-01-01T00:00:00-00:00:52", "1910-01-01T00:00:52Z"},
		{normalize.DateAuto(time.DateOnly), at, "1910-01-01"},                     // no offset written: the date where it was
		{normalize.DateAuto(time.DateTime), at, "1910-01-01 00:00:00"},            // likewise the wall clock
		{normalize.DateAuto(time.RFC3339), at.Add(time.Hour * 24 * 365 * 20), ""}, // whole-minute offset by 1930: kept
	} {
		once, err := tc.n(tc.in)
		if err != nil {
			t.Fatalf("first pass on %v: %v", tc.in, err)
		}
		if tc.want != "" && once != tc.want {
			t.Errorf("%v -> %q; want %q", tc.in, once, tc.want)
		}
		twice, err := tc.n(once)
		if err != nil || twice != once {
			t.Errorf("%v -> %q -> %q, %v: not idempotent", tc.in, once, twice, err)
		}
	}
	// The RFC 3339 text is the same instant as the time.
	s, _ := normalize.DateAuto(time.RFC3339)(at)
	back, err := time.Parse(time.RFC3339, s.(string))
	if err != nil || !back.Equal(at) {
		t.Errorf("%q reads back as %v, not %v (%v)", s, back, at, err)
	}
}

func TestDateNormalizersRefuseYearsTheLayoutCannotWrite(t *testing.T) {
	for _, in := range []concord.Value{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(12345, 6, 7, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		"10000-01-01",
		"10000-01-01T00:00:00Z",
	} {
		for _, n := range []normalize.Normalizer{normalize.DateAuto(time.DateOnly), normalize.DateAuto(time.RFC3339), normalize.Date("01/02/2006", time.DateOnly)} {
			if got, err := n(in); !errors.Is(err, normalize.ErrBadDate) {
				t.Errorf("normalising %v = %#v, %v; want ErrBadDate", in, got, err)
			}
		}
	}
	// The last years that fit still work, both ways.
	for _, in := range []time.Time{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)} {
		n := normalize.DateAuto(time.RFC3339)
		once, err := n(in)
		if err != nil {
			t.Fatalf("%v: %v", in, err)
		}
		if twice, err := n(once); err != nil || twice != once {
			t.Errorf("%v -> %q -> %q, %v", in, once, twice, err)
		}
	}
}

// dateNormalizers are the date normalisers the idempotence fuzz target
// runs, over layouts with and without offsets, seconds and fractions. Each
// Date's from cannot read its to, so each is a normaliser, not a one-way
// conversion.
var dateNormalizers = map[string]normalize.Normalizer{
	"auto date":       normalize.DateAuto(time.DateOnly),
	"auto rfc3339":    normalize.DateAuto(time.RFC3339),
	"auto nano":       normalize.DateAuto(time.RFC3339Nano),
	"auto minutes":    normalize.DateAuto("2006-01-02 15:04 -0700"),
	"auto hours zone": normalize.DateAuto("2006-01-02 15:04:05 -07"),
	"auto datetime":   normalize.DateAuto(time.DateTime),
	"auto named zone": normalize.DateAuto("2006-01-02 15:04:05 MST"),
	"auto kitchen":    normalize.DateAuto(time.Kitchen),
	"us date":         normalize.Date("01/02/2006", time.DateOnly),
	"rfc1123":         normalize.Date(time.RFC1123Z, time.RFC3339),
	"seconds offset":  normalize.Date("2006-01-02T15:04:05-07:00:00", time.RFC3339Nano),
	"to us":           normalize.Date(time.DateOnly, "01/02/2006"),
}

// FuzzNormalizersIdempotent: every Normalizer of this package, on values
// built from fuzz bytes (strings, times in any zone and year, numbers),
// never panics, is deterministic, and whatever it accepts it maps to a
// value that it accepts again unchanged: n(n(x)) == n(x).
func FuzzNormalizersIdempotent(f *testing.F) {
	add := func(kind byte, s string, sec int64, off int32) { f.Add(kind, s, sec, int64(0), off) }
	add(0, "2025-03-04", 0, 0)
	add(0, "03/04/2025", 0, 0)
	add(0, "10000-01-01", 0, 0)
	add(0, "1910-01-01T00:00:00-00:00:52", 0, 0)
	add(0, "Tue, 04 Mar 2025 10:00:00 +0100", 0, 0)
	add(0, " Ada.Lovelace@Example.COM ", 0, 0)
	add(0, "(650) 253-0000", 0, 0)
	add(0, "1,234.5", 0, 0)
	add(0, "Deutschland", 0, 0)
	add(0, "US-CA", 0, 0)
	add(0, "ǅ\u0130ß\xff", 0, 0)
	add(1, "", -1893456000, -52)                // Accra 1910
	add(1, "", -4102444800, -75)                // London 1840
	add(1, "", 253402300800, 0)                 // 10000-01-01
	add(1, "", 253402300799, 3600)              // 9999-12-31T23:59:59Z is 10000 at +01:00
	add(1, "", -62167219200, 0)                 // year 0
	add(1, "", -62167219201, 0)                 // year -1
	add(1, "", math.MaxInt64, 0)                // far beyond
	add(1, "", 0, 86399)                        // offset of nearly a day
	add(2, "1.999e1", 0, 0)                     // json.Number
	add(3, "", 40, 0)                           // int
	add(4, "", int64(math.Float64bits(0.1)), 0) // float64
	f.Fuzz(func(t *testing.T, kind byte, s string, sec, nsec int64, off int32) {
		var v concord.Value
		switch kind % 5 {
		case 0:
			v = s
		case 1:
			v = time.Unix(sec, nsec%1e9).In(time.FixedZone(s[:min(len(s), 5)], int(off)))
		case 2:
			v = json.Number(s)
		case 3:
			v = sec
		case 4:
			v = math.Float64frombits(uint64(sec))
		}
		for _, set := range []map[string]normalize.Normalizer{normalizers, dateNormalizers} {
			for name, n := range set {
				once, err := n(v)
				again, err2 := n(v)
				if (err == nil) != (err2 == nil) || (err == nil && !sameOutput(once, again)) {
					t.Fatalf("%s(%#v) not deterministic: %#v, %v then %#v, %v", name, v, once, err, again, err2)
				}
				if err != nil {
					continue
				}
				twice, err := n(once)
				if err != nil {
					t.Fatalf("%s(%#v) = %#v, but %s(%#v) fails: %v", name, v, once, name, once, err)
				}
				if !sameOutput(once, twice) {
					t.Fatalf("%s: %#v -> %#v -> %#v: not idempotent", name, v, once, twice)
				}
			}
		}
	})
}

// sameOutput compares normaliser outputs: Values by EqualValues, and the
// rest (strings with invalid UTF-8 that a normaliser passed through) as
// they are.
func sameOutput(a, b concord.Value) bool {
	if concord.CheckValue(a) == nil {
		return concord.EqualValues(a, b)
	}
	sa, ok1 := a.(string)
	sb, ok2 := b.(string)
	return ok1 && ok2 && strings.Compare(sa, sb) == 0
}
