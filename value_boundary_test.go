package concord_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
)

// mustHash returns HashValue(v), failing the test on error.
func mustHash(t *testing.T, v any) uint64 {
	t.Helper()
	h, err := concord.HashValue(v)
	if err != nil {
		t.Fatalf("HashValue(%#v): %v", v, err)
	}
	return h
}

// wantEqual checks EqualValues both ways, the hashes and the canonical
// bytes agree with want.
func wantEqual(t *testing.T, a, b any, want bool) {
	t.Helper()
	if got := concord.EqualValues(a, b); got != want {
		t.Errorf("EqualValues(%#v, %#v) = %v; want %v", a, b, got, want)
	}
	if got := concord.EqualValues(b, a); got != want {
		t.Errorf("EqualValues(%#v, %#v) = %v; want %v", b, a, got, want)
	}
	ca, _ := concord.AppendCanonical(nil, a)
	cb, _ := concord.AppendCanonical(nil, b)
	if (string(ca) == string(cb)) != want {
		t.Errorf("canonical %q vs %q: equal = %v; want %v", ca, cb, !want, want)
	}
	if (mustHash(t, a) == mustHash(t, b)) != want {
		t.Errorf("HashValue(%#v) == HashValue(%#v) is %v; want %v", a, b, !want, want)
	}
}

func wantRefused(t *testing.T, v any, path, reason string) {
	t.Helper()
	err := concord.CheckValue(v)
	var ve *concord.ValueError
	if !errors.As(err, &ve) || !errors.Is(err, concord.ErrUnsupportedValue) {
		t.Fatalf("CheckValue(%#v) = %v; want a *ValueError wrapping ErrUnsupportedValue", v, err)
	}
	if ve.Path != path || !strings.Contains(ve.Reason, reason) || !strings.Contains(err.Error(), reason) {
		t.Errorf("CheckValue(%#v) = %v (path %q, reason %q); want path %q and a reason with %q", v, err, ve.Path, ve.Reason, path, reason)
	}
	if concord.EqualValues(v, v) {
		t.Errorf("refused value %#v equals itself", v)
	}
	if _, err := concord.HashValue(v); err == nil {
		t.Errorf("refused value %#v hashes", v)
	}
}

func TestWholeFloatsEqualIntegersOfTheSameValue(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b any
		want bool
	}{
		{"2^60", int64(1 << 60), float64(1 << 60), true},
		{"2^60 float32", int64(1 << 60), float32(1 << 60), true},
		{"2^60 json", json.Number("1152921504606846976"), float64(1 << 60), true},
		{"2^60 vs its shortest form", json.Number("1152921504606847000"), float64(1 << 60), false},
		{"2^60+1 is not the float", int64(1<<60 + 1), float64(1 << 60), false},
		{"2^63", uint64(1 << 63), float64(1 << 63), true},
		{"-2^63", int64(math.MinInt64), float64(-(1 << 63)), true},
		{"uint64 max is not 2^64", uint64(math.MaxUint64), float64(math.MaxUint64), false},
		{"2^64 exact", json.Number("18446744073709551616"), float64(1 << 64), false}, // beyond the integer range: shortest form
		{"2^64 shortest", json.Number("1.8446744073709552e19"), float64(1 << 64), true},
		{"float32 2^64 is exact", json.Number("18446744073709551616"), float32(1 << 64), true},
		{"float32 2^64 is not its shortest form", json.Number("18446744000000000000"), float32(1 << 64), false},
		{"float32 2^64 vs uint64", uint64(18446744000000000000), float32(1 << 64), false},
		{"2^53+1 is not 2^53", int64(1<<53 + 1), float64(1 << 53), false},
		{"1e300", json.Number("1e300"), 1e300, true},
		{"1e300 and its 301 digits", json.Number("1e300"), json.Number("1" + strings.Repeat("0", 300)), true},
		{"1e300 spelled with a fraction", json.Number("0." + strings.Repeat("0", 20) + "1e321"), json.Number("1E+300"), true},
		{"1e23", 1e23, json.Number("1e23"), true},
		{"negative zero", math.Copysign(0, -1), 0, true},
		{"negative zero float32", float32(math.Copysign(0, -1)), json.Number("-0.0e5"), true},
		{"subnormal", 5e-324, json.Number("5e-324"), true},
		{"subnormal float32", float32(1e-45), json.Number("1e-45"), true},
		{"largest subnormal", 2.225073858507201e-308, json.Number("2.225073858507201E-308"), true},
		{"max float64 shortest", math.MaxFloat64, json.Number("1.7976931348623157e+308"), true},
		{"float32 0.1 and float64 0.1", float32(0.1), 0.1, true},
		{"float32 0.1 widened", float64(float32(0.1)), float32(0.1), false},
		{"int8 and uint64", int8(-1), uint64(math.MaxUint64), false},
		{"int types", int16(300), uint16(300), true},
	} {
		t.Run(tc.name, func(t *testing.T) { wantEqual(t, tc.a, tc.b, tc.want) })
	}
}

// Every float64 is a Value, and its canonical number is what the
// documentation says: the exact value of a whole number in the integer
// range, the shortest decimal otherwise.
func TestFloatCanonicalValue(t *testing.T) {
	for _, f := range []float64{0.1, 1.5, 1 << 53, 1<<53 + 2, 1 << 62, 1 << 63, 1 << 64, -(1 << 63), -(1 << 63) - 2048, 1e21, 1e22, 123456789012345680000, 5e-324, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64} {
		var want string
		if f == math.Trunc(f) && f >= -0x1p63 && f < 0x1p64 {
			want = new(big.Float).SetFloat64(f).Text('f', 0)
		} else {
			want = strconv.FormatFloat(f, 'g', -1, 64)
		}
		wantEqual(t, f, json.Number(want), true)
	}
}

func TestLongJSONNumbersAreAccepted(t *testing.T) {
	long := json.Number("1" + strings.Repeat("0", 300) + "." + strings.Repeat("0", 1000))
	if err := concord.CheckValue(long); err != nil {
		t.Fatalf("CheckValue(1e300 written out) = %v", err)
	}
	wantEqual(t, long, 1e300, true)
	digits := json.Number("0." + strings.Repeat("123456789", concord.MaxNumberDigits/9) + "1")
	if err := concord.CheckValue(digits); err != nil {
		t.Fatalf("a number of %d digits: %v", concord.MaxNumberDigits/9*9+1, err)
	}
	exact := json.Number(new(big.Float).SetFloat64(math.MaxFloat64).Text('f', 0)) // 309 digits
	if err := concord.CheckValue(exact); err != nil {
		t.Fatalf("the exact value of MaxFloat64: %v", err)
	}
	smallest := json.Number(new(big.Float).SetFloat64(5e-324).Text('g', 800)) // every digit of the smallest subnormal
	if err := concord.CheckValue(smallest); err != nil {
		t.Fatalf("the exact value of the smallest subnormal: %v", err)
	}
}

func TestJSONNumbersPastTheCapsAreRefused(t *testing.T) {
	wantRefused(t, json.Number("1"+strings.Repeat("1", concord.MaxNumberDigits)), "", "significant digits")
	wantRefused(t, json.Number("1e10001"), "", "exponent")
	wantRefused(t, json.Number("1e-10001"), "", "exponent")
	wantRefused(t, json.Number("1e99999999999999999999999999"), "", "exponent")
	// Zeros do not count: these are small numbers.
	for _, ok := range []json.Number{json.Number("1" + strings.Repeat("0", 5000)), json.Number("0." + strings.Repeat("0", 5000) + "1"), json.Number("0e999999999999")} {
		if err := concord.CheckValue(ok); err != nil {
			t.Errorf("CheckValue(%.20s...) = %v", ok, err)
		}
	}
}

func TestJSONNumbersMustBeJSON(t *testing.T) {
	for _, s := range []string{"", "+1", ".5", "1.", "01", "-", "--1", "1e", "1e+", "0x10", "1_000", " 1", "1 ", "Infinity", "NaN", "1.2.3", "1e5.5"} {
		t.Run(s, func(t *testing.T) { wantRefused(t, json.Number(s), "", "not a JSON number") })
	}
	for _, s := range []string{"0", "-0", "0.5", "-1.25e-3", "1E+2", "10", "9e0"} {
		if err := concord.CheckValue(json.Number(s)); err != nil {
			t.Errorf("CheckValue(%q) = %v", s, err)
		}
		var back any
		if err := json.Unmarshal([]byte(s), &back); err != nil {
			t.Errorf("%q accepted but not JSON: %v", s, err)
		}
	}
}

func TestBytesAreTheirOwnKind(t *testing.T) {
	wantEqual(t, []byte("abc"), []byte("abc"), true)
	wantEqual(t, []byte(nil), []byte{}, true)
	wantEqual(t, []byte("abc"), "abc", false)
	wantEqual(t, []byte{}, "", false)
	wantEqual(t, []byte{}, nil, false)
	wantEqual(t, []byte("ab"), []byte("abc"), false)
	wantEqual(t, []any{[]byte("a"), "b"}, []any{[]byte("a"), "b"}, true)
	wantEqual(t, []any{[]byte("a")}, []string{"a"}, false)
	// Any bytes: a byte string is not text.
	if err := concord.CheckValue([]byte{0xff, 0, 0xfe}); err != nil {
		t.Errorf("CheckValue(binary) = %v", err)
	}
	in := map[string]any{"b": []byte("xyz")}
	c := concord.CloneValue(in).(map[string]any)
	c["b"].([]byte)[0] = 'Q'
	if string(in["b"].([]byte)) != "xyz" {
		t.Fatalf("CloneValue shares the bytes: %q", in["b"])
	}
	if b := concord.CloneValue([]byte(nil)); b.([]byte) != nil {
		t.Errorf("CloneValue([]byte(nil)) = %#v", b)
	}
}

func TestInvalidUTF8IsRefusedAtTheBoundary(t *testing.T) {
	bad := "caf\xe9 \xff"
	wantRefused(t, bad, "", "invalid UTF-8")
	wantRefused(t, []any{"ok", bad}, "[1]", "invalid UTF-8")
	wantRefused(t, []string{"ok", bad}, "[1]", "invalid UTF-8")
	wantRefused(t, map[string]any{"a": map[string]any{"b": bad}}, ".a.b", "invalid UTF-8")
	wantRefused(t, map[string]any{bad: 1}, "."+strconv.Quote(bad), "map key is invalid UTF-8")
	wantRefused(t, map[string]string{"k": bad}, ".k", "invalid UTF-8")
	wantRefused(t, map[string]string{bad: "v"}, "."+strconv.Quote(bad), "map key is invalid UTF-8")

	for _, tc := range []struct {
		name  string
		rec   concord.Record
		field string
	}{
		{"value", concord.Record{Key: "c1", Fields: map[string]any{"city": bad, "a": "ok"}}, "city"},
		{"field name", concord.Record{Key: "c1", Fields: map[string]any{"ci\xfft": "Leeds"}}, "ci\xfft"},
		{"key", concord.Record{Key: "c\xff1", Fields: map[string]any{"city": "Leeds"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rec.Validate()
			var re *concord.RecordError
			if !errors.As(err, &re) || re.Field != tc.field || re.Key != tc.rec.Key || !errors.Is(err, concord.ErrUnsupportedValue) {
				t.Fatalf("Validate = %v; want a RecordError for field %q wrapping ErrUnsupportedValue", err, tc.field)
			}
			if !strings.Contains(err.Error(), "invalid UTF-8") || !strings.Contains(err.Error(), strconv.Quote(tc.rec.Key)) {
				t.Errorf("message %q does not name the record and say invalid UTF-8", err)
			}
		})
	}
}

func TestTimeWithSubMinuteOffsetIsAValue(t *testing.T) {
	london, err1 := time.LoadLocation("Europe/London")
	accra, err2 := time.LoadLocation("Africa/Accra")
	if err1 != nil || err2 != nil {
		t.Skip("no time zone database:", err1, err2)
	}
	l := time.Date(1840, 1, 1, 0, 0, 0, 0, london)
	a := time.Date(1910, 1, 1, 0, 0, 0, 0, accra)
	if _, off := l.Zone(); off != -75 {
		t.Fatalf("London 1840 offset %d; want -75 (the zone database changed?)", off)
	}
	for _, v := range []time.Time{l, a, time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3600+59))} {
		if err := concord.CheckValue(v); err != nil {
			t.Errorf("CheckValue(%v) = %v", v, err)
		}
		wantEqual(t, v, v.UTC(), true)
		wantEqual(t, v, v.Add(time.Nanosecond), false)
	}
}

func TestTimesOutsideTheSupportedRangeAreRefused(t *testing.T) {
	wantRefused(t, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "", "year outside")
	wantRefused(t, time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC), "", "year outside")
	wantRefused(t, time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("", 2*3600)), "", "year outside") // 10000 locally
	wantRefused(t, time.Date(0, 1, 1, 1, 0, 0, 0, time.FixedZone("", 2*3600)), "", "year outside 0000–9999 in UTC")
	wantRefused(t, time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)), "", "zone offset")
	wantRefused(t, time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", -24*3600)), "", "zone offset")
	wantRefused(t, time.Unix(math.MaxInt64, 0), "", "")
	wantRefused(t, map[string]any{"at": []any{time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)}}, ".at[0]", "year outside")
	for _, ok := range []time.Time{{}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600-1))} {
		if err := concord.CheckValue(ok); err != nil {
			t.Errorf("CheckValue(%v) = %v", ok, err)
		}
	}
}

func TestNestingDeeperThanMaxValueDepthIsRefused(t *testing.T) {
	nest := func(n int) any {
		var v any = "leaf"
		for range n {
			v = []any{v}
		}
		return v
	}
	if err := concord.CheckValue(nest(concord.MaxValueDepth)); err != nil {
		t.Fatalf("depth %d: %v", concord.MaxValueDepth, err)
	}
	wantRefused(t, nest(concord.MaxValueDepth+1), strings.Repeat("[0]", concord.MaxValueDepth+1), "nested more than")
	wantRefused(t, nest(100000), strings.Repeat("[0]", concord.MaxValueDepth+1), "nested more than")
}

// A refused value names where it is and why, also inside a Record.
func TestRecordValidateNamesPathAndReason(t *testing.T) {
	rec := concord.Record{Key: "c1", Fields: map[string]any{"lines": []any{map[string]any{"qty": json.Number("+1")}}}}
	err := rec.Validate()
	var ve *concord.ValueError
	var re *concord.RecordError
	if !errors.As(err, &re) || !errors.As(err, &ve) || re.Field != "lines" || ve.Path != "[0].qty" {
		t.Fatalf("Validate = %v; want field lines, path [0].qty", err)
	}
	if want := `record "c1" field "lines": unsupported value at [0].qty: not a JSON number (json.Number)`; err.Error() != want {
		t.Errorf("message = %q; want %q", err, want)
	}
}

// Values that were supported before keep their hashes: stored hashes stay
// valid (only whole floats of 2^53 and more changed, to their exact value).
// The wanted hashes were computed with the release before this change.
func TestHashesOfOrdinaryValuesAreUnchanged(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want uint64
	}{
		{"Leeds", 0xe18b5b8416622310},
		{int64(42), 0x8e8fefbb9157ee15},
		{2.5, 0xa28039a58c1a5b63},
		{float32(0.1), 0xed42a386c452cf9f},
		{json.Number("1.50"), 0xbfa7be7533355a18},
		{time.Date(2025, 3, 4, 5, 6, 7, 8, time.FixedZone("", 3600)), 0xaf1472e89d180840},
	} {
		if got := mustHash(t, tc.v); got != tc.want {
			t.Errorf("HashValue(%#v) = %#x; want %#x", tc.v, got, tc.want)
		}
	}
}

// malformedTime is a time.Time with nanoseconds past a second, which only
// Time.UnmarshalBinary of damaged bytes makes.
func malformedTime(t *testing.T) time.Time {
	b, err := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	copy(b[9:13], []byte{0x3b, 0x9a, 0xca, 0x05}) // 1e9 + 5 ns
	var at time.Time
	if err := at.UnmarshalBinary(b); err != nil || at.Nanosecond() < 1e9 {
		t.Fatalf("could not make a malformed time: %v, %d", err, at.Nanosecond())
	}
	return at
}

func TestMalformedTimesAreRefused(t *testing.T) {
	wantRefused(t, malformedTime(t), "", "malformed time")
}
