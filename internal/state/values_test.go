package state_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
)

// fataler is what testing.T and rapid.T share.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// roundTrip stores v as a field of a record state and reads it back.
func roundTrip(t fataler, v concord.Value) concord.Value {
	t.Helper()
	b, err := state.EncodeState(nil, &state.Record{Key: "k", Fields: map[string]concord.Value{"f": v}})
	if err != nil {
		t.Fatalf("EncodeState(%#v): %v", v, err)
	}
	st, err := state.DecodeState(b)
	if err != nil {
		t.Fatalf("DecodeState of %#v: %v", v, err)
	}
	return st.Fields["f"]
}

// identical reports whether w is v as it was: the same Go types all the way
// down, the same bits for numbers, the same bytes for strings, and for
// times the same instant, zone name and offset.
func identical(v, w any) bool {
	if reflect.TypeOf(v) != reflect.TypeOf(w) {
		return false
	}
	switch x := v.(type) {
	case time.Time:
		y := w.(time.Time)
		xn, xo := x.Zone()
		yn, yo := y.Zone()
		return x.Equal(y) && xn == yn && xo == yo
	case float64:
		return math.Float64bits(x) == math.Float64bits(w.(float64))
	case float32:
		return math.Float32bits(x) == math.Float32bits(w.(float32))
	case []byte:
		return bytes.Equal(x, w.([]byte))
	case []any:
		y := w.([]any)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !identical(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y := w.(map[string]any)
		if len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !identical(e, f) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(v, w)
}

// checkRoundTrip is the contract between CheckValue and the codec: an
// accepted value is stored and read back identical, equal, with the same
// hash and canonical bytes.
func checkRoundTrip(t fataler, v concord.Value) {
	t.Helper()
	if err := concord.CheckValue(v); err != nil {
		t.Fatalf("CheckValue(%#v) = %v", v, err)
	}
	w := roundTrip(t, v)
	if !identical(v, w) {
		t.Fatalf("stored %#v (%T), read back %#v (%T)", v, v, w, w)
	}
	if !concord.EqualValues(v, w) {
		t.Fatalf("EqualValues(%#v, read back %#v) = false", v, w)
	}
	hv, err1 := concord.HashValue(v)
	hw, err2 := concord.HashValue(w)
	if err1 != nil || err2 != nil || hv != hw {
		t.Fatalf("hashes %x, %x (%v, %v)", hv, hw, err1, err2)
	}
	cv, _ := concord.AppendCanonical(nil, v)
	cw, _ := concord.AppendCanonical(nil, w)
	if !bytes.Equal(cv, cw) {
		t.Fatalf("canonical bytes %q, %q", cv, cw)
	}
}

func TestTimeWithSubMinuteOffsetRoundTrips(t *testing.T) {
	london, err1 := time.LoadLocation("Europe/London")
	accra, err2 := time.LoadLocation("Africa/Accra")
	if err1 != nil || err2 != nil {
		t.Skip("no time zone database:", err1, err2)
	}
	for _, v := range []time.Time{
		time.Date(1840, 1, 1, 0, 0, 0, 0, london), // −0:01:15, which Time.MarshalBinary refuses
		time.Date(1910, 1, 1, 0, 0, 0, 0, accra),  // −0:00:52
		time.Date(2025, 1, 1, 0, 0, 0, 1, time.FixedZone("odd", -(24*3600-1))),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 59)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		{},
	} {
		checkRoundTrip(t, v)
		checkRoundTrip(t, []any{map[string]any{"at": v}})
	}
	// The other times of a state (a record's modification time, from the
	// system) take any offset too.
	at := time.Date(1840, 1, 1, 0, 0, 0, 0, london)
	dl := state.DeadLetter{Key: "k", Record: concord.Record{Key: "k", Modified: at}, When: at}
	b, err := state.EncodeDeadLetter(nil, dl)
	if err != nil {
		t.Fatalf("EncodeDeadLetter with a 1840 London time: %v", err)
	}
	got, err := state.DecodeDeadLetter(b)
	if err != nil || !identical(got.Record.Modified, at) || !identical(got.When, at) {
		t.Fatalf("dead letter times: %v, %v (%v)", got.Record.Modified, got.When, err)
	}
}

func TestStoredValuesKeepTheirGoType(t *testing.T) {
	for _, v := range []concord.Value{
		float32(0.1), float32(-3.4028235e38), float32(1e-45), float32(math.Copysign(0, -1)), float32(1 << 64),
		math.Copysign(0, -1), 5e-324, math.MaxFloat64, float64(1 << 60),
		int(-1), int8(-128), int16(32767), int32(math.MinInt32), int64(math.MinInt64),
		uint(math.MaxUint), uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64),
		[]byte{}, []byte{0, 0xff, 'a'}, []byte("many SQL drivers return this"),
		json.Number("1" + strings.Repeat("0", 300)), json.Number("-0.0e5"),
		[]string{}, map[string]string{"k": "v"}, []any{int8(1), float32(2), []byte("x")},
	} {
		checkRoundTrip(t, v)
	}
	// A nil []byte is stored as an empty one: the same Value.
	if w := roundTrip(t, []byte(nil)); !concord.EqualValues(w, []byte(nil)) || reflect.TypeOf(w) != reflect.TypeOf([]byte(nil)) {
		t.Errorf("[]byte(nil) read back as %#v", w)
	}
}

func TestEveryAcceptedValueRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkRoundTrip(t, genValue(0).Draw(t, "v"))
	})
}

// The encoder refuses exactly the nesting the decoder would refuse, so that
// nothing is stored that cannot be read.
func TestEncoderRefusesWhatTheDecoderWould(t *testing.T) {
	nest := func(n int) any {
		var v any = "leaf"
		for range n {
			v = map[string]any{"x": v}
		}
		return v
	}
	checkRoundTrip(t, nest(concord.MaxValueDepth))
	_, err := state.EncodeState(nil, &state.Record{Fields: map[string]concord.Value{"f": nest(concord.MaxValueDepth + 1)}})
	if !errors.Is(err, concord.ErrUnsupportedValue) {
		t.Fatalf("EncodeState of %d levels = %v; want ErrUnsupportedValue", concord.MaxValueDepth+1, err)
	}
}

// A dead letter keeps what a system sent, even what the boundary refused:
// invalid UTF-8, a time past 9999, a number that is not JSON.
func TestDeadLetterKeepsRefusedContent(t *testing.T) {
	fields := map[string]concord.Value{
		"city": "caf\xe9", "when": time.Date(20000, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 30*3600)),
		"qty": json.Number("+01"), "\xffname": []any{"\xfe", time.Unix(math.MaxInt64, 0)},
	}
	for k, v := range fields {
		if concord.CheckValue(v) == nil && k != "\xffname" {
			t.Fatalf("CheckValue(%#v) = nil; the test wants refused values", v)
		}
	}
	dl := state.DeadLetter{Key: "k", Record: concord.Record{Key: "k", Fields: fields}}
	b, err := state.EncodeDeadLetter(nil, dl)
	if err != nil {
		t.Fatal(err)
	}
	got, err := state.DecodeDeadLetter(b)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if !identical(v, got.Record.Fields[k]) {
			t.Errorf("field %q: stored %#v, read back %#v", k, v, got.Record.Fields[k])
		}
	}
}

// version1State is EncodeState output of format version 1 (before this
// change) for a state with a +01:00 time, an int32, a uint8, a float32 and
// a list.
const version1State = "43535201026b3103000f010000000edf58732f00000008003c050166643fe0000000000000016c6c037301787a74016e690d01757509047768656e540f010000000edd25ba7500000006fed40000"

func TestDecodesFormatVersion1(t *testing.T) {
	b, _ := hex.DecodeString(version1State)
	st, err := state.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, 3, 4, 5, 6, 7, 8, time.FixedZone("CET", 3600)); !st.Diverged.Equal(want) {
		t.Errorf("Diverged = %v; want %v", st.Diverged, want)
	}
	want := map[string]concord.Value{"when": time.Date(2024, 1, 2, 3, 4, 5, 6, time.FixedZone("", -5*3600)),
		"n": int64(-7), "u": uint64(9), "f": float64(0.5), "l": []any{"x", nil, true}} // version 1 widened the types
	for k, v := range want {
		if !concord.EqualValues(v, st.Fields[k]) || reflect.TypeOf(v) != reflect.TypeOf(st.Fields[k]) {
			t.Errorf("field %s = %#v; want %#v", k, st.Fields[k], v)
		}
	}
	// Re-encoding writes the newest version.
	again, err := state.EncodeState(nil, st)
	if err != nil || again[3] != state.CompactVersion {
		t.Fatalf("re-encoded: version %d, %v", again[3], err)
	}
	// The tags of version 2 are corrupt in version 1.
	v2, _ := state.Codec{}.EncodeLegacyState(nil, &state.Record{Key: "k", Fields: map[string]concord.Value{"b": []byte("x")}})
	v2[3] = 1
	if _, err := state.DecodeState(v2); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("a []byte in version 1 = %v; want ErrCorrupt", err)
	}
}

func TestDecodeRefusesDamagedValues(t *testing.T) {
	enc := func(v concord.Value) []byte {
		b, err := state.EncodeState(nil, &state.Record{Key: "k", Fields: map[string]concord.Value{"f": v}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	at := enc(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	i := bytes.IndexByte(at, 'T')
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"int8 out of range", bytes.Replace(enc(int16(300)), []byte{'I', 16}, []byte{'I', 8}, 1)},
		{"unknown width", bytes.Replace(enc(int16(3)), []byte{'I', 16}, []byte{'I', 7}, 1)},
		{"uint8 out of range", bytes.Replace(enc(uint16(300)), []byte{'U', 16}, []byte{'U', 8}, 1)},
		{"bad zone byte", append(append(append([]byte(nil), at[:i+1]...), 2), at[i+2:]...)},
		{"nanoseconds past a second", append(append(at[:i+1:i+1], 0), append(binary.AppendVarint(nil, 0), binary.AppendUvarint(nil, 1e9)...)...)},
		{"float32 cut short", enc(float32(1))[:len(enc(float32(1)))-2]},
	} {
		if _, err := state.DecodeState(tc.b); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("%s: DecodeState = %v; want ErrCorrupt", tc.name, err)
		}
	}
}

// ---- the fuzz target: equality, hash and codec agree ----

// fuzzBytes hands out the fuzzer's bytes; past the end it gives zeros.
type fuzzBytes struct{ b []byte }

func (r *fuzzBytes) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *fuzzBytes) bytes(max int) []byte {
	n := min(int(r.byte())%(max+1), len(r.b))
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *fuzzBytes) u64() uint64 {
	var x [8]byte
	for i := range x {
		x[i] = r.byte()
	}
	return binary.LittleEndian.Uint64(x[:])
}

// specials are values the fuzzer would take long to find.
var specials = func() []concord.Value {
	london, _ := time.LoadLocation("Europe/London")
	accra, _ := time.LoadLocation("Africa/Accra")
	if london == nil || accra == nil {
		london, accra = time.FixedZone("LMT", -75), time.FixedZone("LMT", -52)
	}
	return []concord.Value{
		int64(1 << 60), float64(1 << 60), float32(1 << 60), json.Number("1152921504606846976"), json.Number("1152921504606847000"),
		uint64(math.MaxUint64), float64(math.MaxUint64), float32(1 << 64), json.Number("18446744073709551616"),
		math.Copysign(0, -1), float32(math.Copysign(0, -1)), json.Number("-0"), 5e-324, float32(1e-45), json.Number("5e-324"),
		1e300, json.Number("1e300"), json.Number("1" + strings.Repeat("0", 300)), math.MaxFloat64, 0.1, float32(0.1), json.Number("0.1"),
		time.Date(1840, 1, 1, 0, 0, 0, 0, london), time.Date(1910, 1, 1, 0, 0, 0, 0, accra), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		[]byte("abc"), "abc", "caf\xe9", int64(math.MinInt64), float64(-(1 << 63)),
	}
}()

// buildValue makes a Value (supported or not) from fuzz bytes.
func buildValue(r *fuzzBytes, depth int) concord.Value {
	switch op := r.byte() % 22; op {
	case 0:
		return nil
	case 1:
		return r.byte()%2 == 1
	case 2:
		return string(r.bytes(12))
	case 3:
		return append([]byte{}, r.bytes(12)...)
	case 4:
		return int64(r.u64())
	case 5:
		return int(r.u64())
	case 6:
		return int8(r.byte())
	case 7:
		return int16(r.u64())
	case 8:
		return int32(r.u64())
	case 9:
		return uint(r.u64())
	case 10:
		return []concord.Value{uint8(r.byte()), uint16(r.u64()), uint32(r.u64())}[r.byte()%3]
	case 11:
		return r.u64()
	case 12:
		return math.Float64frombits(r.u64())
	case 13:
		return math.Float32frombits(uint32(r.u64()))
	case 14:
		const alphabet = "0123456789.eE+-01234567890000"
		raw := r.bytes(40)
		s := make([]byte, len(raw))
		for i, c := range raw {
			s[i] = alphabet[int(c)%len(alphabet)]
		}
		return json.Number(s)
	case 15:
		sec := int64(r.u64())
		if r.byte()%4 != 0 {
			sec %= 300000000000 // mostly near the supported years
		}
		at := time.Unix(sec, int64(r.u64()%1e9))
		switch r.byte() % 3 {
		case 0:
			return at.UTC()
		case 1:
			return at.In(time.FixedZone(string(r.bytes(4)), int(int32(r.u64()))%(26*3600)))
		}
		return at.In(time.FixedZone("LMT", int(int8(r.byte()))))
	case 16, 17:
		if depth > concord.MaxValueDepth+2 {
			return nil
		}
		n := int(r.byte() % 4)
		if op == 16 {
			out := make([]any, n)
			for i := range out {
				out[i] = buildValue(r, depth+1)
			}
			return out
		}
		out := make(map[string]any, n)
		for range n {
			out[string(r.bytes(3))] = buildValue(r, depth+1)
		}
		return out
	case 18:
		out := make([]string, r.byte()%3)
		for i := range out {
			out[i] = string(r.bytes(4))
		}
		return out
	case 19:
		out := map[string]string{}
		for range r.byte() % 3 {
			out[string(r.bytes(3))] = string(r.bytes(4))
		}
		return out
	case 20:
		// A deep chain, past the cap sometimes.
		v := buildValue(r, depth+1)
		for range int(r.byte()) % (concord.MaxValueDepth + 4) {
			v = []any{v}
		}
		return v
	}
	return specials[int(r.byte())%len(specials)]
}

// meaning is the documented value of a supported number, computed with
// math/big independently of the canonical encoding.
func meaning(v concord.Value) (*big.Rat, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return new(big.Rat).SetInt64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return new(big.Rat).SetInt(new(big.Int).SetUint64(rv.Uint())), true
	case reflect.Float32, reflect.Float64:
		f, bits := rv.Float(), 64
		if rv.Kind() == reflect.Float32 {
			bits = 32
		}
		exact, _ := new(big.Rat).SetString(new(big.Float).SetFloat64(f).Text('f', 1100))
		lo := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(-1), 63))
		hi := new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 64))
		inRange := func(r *big.Rat) bool { return r.Cmp(lo) >= 0 && r.Cmp(hi) < 0 }
		if f == math.Trunc(f) && inRange(exact) {
			return exact, true
		}
		short, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'e', -1, bits))
		if f == math.Trunc(f) && inRange(short) {
			return exact, true // float32(2^64)
		}
		return short, true
	case reflect.String:
		if n, ok := v.(json.Number); ok {
			r, ok := new(big.Rat).SetString(string(n))
			if !ok {
				// big.Rat refuses huge exponents, even on a zero.
				mant, _, _ := strings.Cut(strings.ToLower(string(n)), "e")
				if strings.Trim(mant, "-0.") == "" {
					return new(big.Rat), true
				}
			}
			return r, ok
		}
	}
	return nil, false
}

// oracleEqual is the documented equality of two supported Values.
func oracleEqual(a, b concord.Value) bool {
	if ra, ok := meaning(a); ok {
		rb, ok := meaning(b)
		return ok && ra.Cmp(rb) == 0
	}
	if _, ok := meaning(b); ok {
		return false
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []any, []string:
		la, lb := asList(a), asList(b)
		if lb == nil || len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !oracleEqual(la[i], lb[i]) {
				return false
			}
		}
		return true
	case map[string]any, map[string]string:
		ma, mb := asMap(a), asMap(b)
		if mb == nil || len(ma) != len(mb) {
			return false
		}
		for k, e := range ma {
			f, ok := mb[k]
			if !ok || !oracleEqual(e, f) {
				return false
			}
		}
		return true
	}
	panic("oracleEqual: " + reflect.TypeOf(a).String())
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		if x == nil {
			return []any{}
		}
		return x
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return nil
}

func asMap(v any) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return map[string]any{}
		}
		return x
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out
	}
	return nil
}

// respell writes a supported v another way that the documentation says is
// the same Value: another number type or notation, another zone, []string
// for []any...
func respell(v concord.Value, r *fuzzBytes) concord.Value {
	if rat, ok := meaning(v); ok {
		return respellNumber(rat, r)
	}
	switch x := v.(type) {
	case time.Time:
		w := x.In(time.FixedZone(string(r.bytes(3)), int(int32(r.u64()))%(24*3600)))
		if concord.CheckValue(w) != nil {
			return x.UTC()
		}
		return w
	case []byte:
		return append([]byte(nil), x...)
	case []any:
		out := make([]any, len(x))
		strs := make([]string, len(x))
		allStrings := true
		for i, e := range x {
			out[i] = respell(e, r)
			s, ok := e.(string)
			strs[i], allStrings = s, allStrings && ok
		}
		if allStrings && r.byte()%2 == 0 {
			return strs
		}
		return out
	case []string:
		return asList(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = respell(e, r)
		}
		return out
	case map[string]string:
		return asMap(x)
	}
	return v
}

// respellNumber writes the number rat as some Go number that stands for it.
func respellNumber(rat *big.Rat, r *fuzzBytes) concord.Value {
	// Its exact decimal: digits d and exponent e with rat = d × 10^e.
	d, e := new(big.Int).Set(rat.Num()), 0
	den := new(big.Int).Set(rat.Denom())
	ten := big.NewInt(10)
	for den.Cmp(big.NewInt(1)) != 0 {
		// Denominators are 2^a 5^b: multiply until whole.
		d.Mul(d, ten)
		e--
		q, m := new(big.Int).QuoRem(d, den, new(big.Int))
		if m.Sign() == 0 {
			d, den = q, big.NewInt(1)
		}
		if e < -20000 {
			return nil // not a decimal: cannot happen for a supported number
		}
	}
	switch r.byte() % 4 {
	case 0:
		if d.IsInt64() && e == 0 {
			return d.Int64()
		}
	case 1:
		if e == 0 && d.Sign() >= 0 && d.IsUint64() {
			return d.Uint64()
		}
	case 2:
		if f, acc := new(big.Float).SetRat(rat).Float64(); acc == big.Exact && !math.IsInf(f, 0) {
			if m, ok := meaning(f); ok && m.Cmp(rat) == 0 {
				return f
			}
		}
	}
	// A json.Number with padding zeros and a moved point.
	pad := int(r.byte() % 5)
	digits := d.String() + strings.Repeat("0", pad)
	e -= pad
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	point := int(r.byte()) % (len(digits) + 1)
	s := digits[:point]
	if point < len(digits) {
		s = strings.TrimLeft(s, "0")
		if s == "" {
			s = "0"
		}
		s += "." + digits[point:]
		e += len(digits) - point
	}
	if s == "" {
		s = "0"
	}
	s = strings.TrimLeft(s, "0")
	if s == "" || s[0] == '.' {
		s = "0" + s
	}
	if neg {
		s = "-" + s
	}
	if e != 0 || r.byte()%2 == 0 {
		s += []string{"e", "E", "e+", "E+"}[r.byte()%4] + strconv.Itoa(e)
		s = strings.Replace(s, "+-", "-", 1)
	}
	return json.Number(s)
}

func canonical(v concord.Value) (string, bool) {
	b, err := concord.AppendCanonical(nil, v)
	return string(b), err == nil
}

// FuzzValueEqualityHashCodec: for values built from fuzz bytes, CheckValue,
// EqualValues, HashValue, the canonical encoding and the store codec agree:
//
//   - what CheckValue accepts, the codec stores and reads back identical
//     (Go type, bits, zone), equal, with the same hash and canonical bytes;
//     what it refuses is equal to nothing and has no hash;
//   - for two values, EqualValues ⇔ equal canonical bytes ⇔ the
//     documented equality (oracleEqual, computed with math/big), both ways
//     round, and equal values hash the same;
//   - a value written another way (respell) is equal to it.
func FuzzValueEqualityHashCodec(f *testing.F) {
	for i := range specials {
		f.Add([]byte{21, byte(i), 2, 0, 0, 0, 0, 0, 0, 0}, []byte{21, byte((i + 1) % len(specials))})
	}
	f.Add([]byte{12, 0, 0, 0, 0, 0, 0, 0xb0, 0x43}, []byte{4, 0, 0, 0, 0, 0, 0, 0, 0x10}) // float64(1<<60), int64(1<<60)
	f.Add([]byte{15, 1, 2, 3, 4, 5, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 'L', 'M', 0xcc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []byte{})
	f.Add([]byte{14, 30, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}, []byte{})
	f.Add([]byte{16, 3, 2, 3, 'a', 'b', 'c', 3, 3, 'a', 'b', 'c', 13, 0xcd, 0xcc, 0xcc, 0x3d}, []byte{1})
	f.Add([]byte{20, 0, 67}, []byte{20, 0, 64})
	f.Add([]byte{17, 2, 1, 0xff, 2, 1, 0xfe, 19, 1, 1, 'k', 1, 0xff}, []byte{18, 2, 2, 'o', 'k', 1, 0xfe})
	f.Fuzz(func(t *testing.T, ab, bb []byte) {
		ra, rb := &fuzzBytes{ab}, &fuzzBytes{bb}
		a := buildValue(ra, 0)
		b := buildValue(rb, 0)
		for _, v := range []concord.Value{a, b} {
			checkOne(t, v)
		}
		checkPair(t, a, b)
		if concord.CheckValue(a) == nil {
			w := respell(a, rb)
			if err := concord.CheckValue(w); err == nil {
				if !concord.EqualValues(a, w) {
					t.Fatalf("EqualValues(%#v, respelled %#v) = false", a, w)
				}
				checkPair(t, a, w)
			}
		}
	})
}

func checkOne(t *testing.T, v concord.Value) {
	err := concord.CheckValue(v)
	if err != nil {
		var ve *concord.ValueError
		if !errors.As(err, &ve) || !errors.Is(err, concord.ErrUnsupportedValue) {
			t.Fatalf("CheckValue(%#v) = %v: not a *ValueError", v, err)
		}
		if concord.EqualValues(v, v) {
			t.Fatalf("refused %#v (%v) equals itself", v, err)
		}
		if _, herr := concord.HashValue(v); herr == nil {
			t.Fatalf("refused %#v (%v) has a hash", v, err)
		}
		// The codec still stores it (a dead letter keeps what it was
		// sent) unless it is nested too deep, and reads it back as it was.
		enc, eerr := state.EncodeDeadLetter(nil, state.DeadLetter{Record: concord.Record{Fields: map[string]concord.Value{"f": v}}})
		if (eerr != nil) != (depth(v) > concord.MaxValueDepth) {
			t.Fatalf("EncodeDeadLetter(%#v) = %v at depth %d", v, eerr, depth(v))
		}
		if eerr != nil {
			return
		}
		dl, derr := state.DecodeDeadLetter(enc)
		if derr != nil || !identical(v, dl.Record.Fields["f"]) {
			t.Fatalf("dead letter of %#v read back as %#v (%v)", v, dl.Record.Fields["f"], derr)
		}
		return
	}
	if !concord.EqualValues(v, v) {
		t.Fatalf("accepted %#v does not equal itself", v)
	}
	checkRoundTrip(t, v)
}

// depth is how deeply v nests, as MaxValueDepth counts.
func depth(v concord.Value) int {
	d := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			d = max(d, 1+depth(e))
		}
	case map[string]any:
		for _, e := range x {
			d = max(d, 1+depth(e))
		}
	}
	return d
}

func checkPair(t *testing.T, a, b concord.Value) {
	eq := concord.EqualValues(a, b)
	if eq != concord.EqualValues(b, a) {
		t.Fatalf("EqualValues not symmetric for %#v, %#v", a, b)
	}
	ca, oka := canonical(a)
	cb, okb := canonical(b)
	if want := oka && okb && ca == cb; eq != want {
		t.Fatalf("EqualValues(%#v, %#v) = %v, canonical bytes equal = %v", a, b, eq, want)
	}
	if !oka || !okb {
		return
	}
	if want := oracleEqual(a, b); eq != want {
		t.Fatalf("EqualValues(%#v, %#v) = %v; the documented equality says %v (canonical %q, %q)", a, b, eq, want, ca, cb)
	}
	ha, _ := concord.HashValue(a)
	hb, _ := concord.HashValue(b)
	if eq && ha != hb {
		t.Fatalf("equal %#v and %#v hash %x, %x", a, b, ha, hb)
	}
}

func TestMalformedTimeIsStoredAsTheSameInstant(t *testing.T) {
	b, _ := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).MarshalBinary()
	copy(b[9:13], []byte{0x3b, 0x9a, 0xca, 0x05}) // 1e9 + 5 ns
	var bad time.Time
	if err := bad.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	enc, err := state.EncodeDeadLetter(nil, state.DeadLetter{Record: concord.Record{Modified: bad, Fields: map[string]concord.Value{"at": bad}}})
	if err != nil {
		t.Fatal(err)
	}
	dl, err := state.DecodeDeadLetter(enc)
	want := time.Date(2025, 1, 1, 0, 0, 1, 5, time.UTC)
	if err != nil || !dl.Record.Modified.Equal(want) || !dl.Record.Fields["at"].(time.Time).Equal(want) {
		t.Fatalf("read back %v, %v (%v); want %v", dl.Record.Modified, dl.Record.Fields["at"], err, want)
	}
}

func TestFloat32ReadsBackAsAnEqualFloat32(t *testing.T) {
	for _, f := range []float32{0.1, 16777217, 3.4028235e38, 1e-45, 1 << 64} {
		w := roundTrip(t, f)
		if g, ok := w.(float32); !ok || g != f || !concord.EqualValues(f, w) {
			t.Errorf("float32(%v) read back as %#v (%T)", f, w, w)
		}
	}
}
