package concord_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
)

func TestEqualValues(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	instant := time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		a, b any
		want bool
	}{
		{"int and float", 1, 1.0, true},
		{"int and json.Number", int64(1), json.Number("1.00"), true},
		{"uint8 and int", uint8(7), 7, true},
		{"decimal forms", json.Number("15e-1"), 1.5, true},
		{"decimal leading zeros", json.Number("0.0150e2"), json.Number("1.5"), true},
		{"negative", -3, json.Number("-3.0"), true},
		{"negative zero", math.Copysign(0, -1), 0, true},
		{"different numbers", 1, 1.0001, false},
		{"number vs string", 1, "1", false},
		{"time zones", instant, instant.In(ny), true},
		{"different times", instant, instant.Add(time.Nanosecond), false},
		{"map order", map[string]any{"a": 1, "b": "x"}, map[string]any{"b": "x", "a": 1.0}, true},
		{"map vs string map", map[string]any{"a": "1"}, map[string]string{"a": "1"}, true},
		{"nested lists", []any{1, []any{"x"}}, []any{1.0, []string{"x"}}, true},
		{"list order matters", []any{1, 2}, []any{2, 1}, false},
		{"nil vs empty string", nil, "", false},
		{"nil vs nil", nil, nil, true},
		{"string length framing", []any{"ab", "c"}, []any{"a", "bc"}, false},
		{"false vs nil", false, nil, false},
		{"big integer", uint64(math.MaxUint64), json.Number("18446744073709551615"), true},
		{"min int", int64(math.MinInt64), json.Number("-9223372036854775808"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := concord.EqualValues(tc.a, tc.b); got != tc.want {
				t.Errorf("EqualValues(%#v, %#v) = %v; want %v", tc.a, tc.b, got, tc.want)
			}
			ha, erra := concord.HashValue(tc.a)
			hb, errb := concord.HashValue(tc.b)
			if erra != nil || errb != nil {
				t.Fatalf("HashValue errors: %v, %v", erra, errb)
			}
			if tc.want && ha != hb {
				t.Errorf("equal values hash differently: %x, %x", ha, hb)
			}
		})
	}
}

func TestHashIsStable(t *testing.T) {
	// Hashes are stored; they must never change between releases. If this
	// test fails, the canonical encoding changed: that needs a migration.
	h, err := concord.HashValue(map[string]any{"street": "Main St 1", "n": 2.5, "ok": true})
	if err != nil {
		t.Fatal(err)
	}
	const want = uint64(0x80b658a9ca0693c0)
	if h != want {
		t.Fatalf("HashValue = %#x; want %#x", h, want)
	}
}

func TestUnsupportedValues(t *testing.T) {
	type custom struct{}
	for _, tc := range []struct {
		name string
		v    any
		path string
	}{
		{"struct", custom{}, ""},
		{"NaN", math.NaN(), ""},
		{"infinity", math.Inf(1), ""},
		{"nested", map[string]any{"items": []any{1, make(chan int)}}, ".items[1]"},
		{"bad json.Number", json.Number("1.2.3"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := concord.CheckValue(tc.v)
			var ve *concord.ValueError
			if !errors.As(err, &ve) || !errors.Is(err, concord.ErrUnsupportedValue) {
				t.Fatalf("CheckValue = %v; want a *ValueError wrapping ErrUnsupportedValue", err)
			}
			if ve.Path != tc.path {
				t.Errorf("Path = %q; want %q", ve.Path, tc.path)
			}
			if concord.EqualValues(tc.v, tc.v) {
				t.Error("an unsupported value equals itself")
			}
		})
	}
}

func TestRecordValidateNamesRecordAndField(t *testing.T) {
	err := concord.Record{Key: "c1", Fields: map[string]any{"ok": 1, "bad": struct{}{}}}.Validate()
	var re *concord.RecordError
	if !errors.As(err, &re) || re.Key != "c1" || re.Field != "bad" {
		t.Fatalf("Validate = %v; want a RecordError for c1 field bad", err)
	}
	if want := `record "c1" field "bad": unsupported value: not a JSON-compatible type (struct {})`; err.Error() != want {
		t.Errorf("message = %q; want %q", err.Error(), want)
	}
	if err := (concord.Record{}).Validate(); !errors.Is(err, concord.ErrNoKey) {
		t.Errorf("Validate of keyless record = %v; want ErrNoKey", err)
	}
}

func TestCloneIsDeep(t *testing.T) {
	r := concord.Record{Key: "k", Fields: map[string]any{"m": map[string]any{"l": []any{1}}}}
	c := r.Clone()
	c.Fields["m"].(map[string]any)["l"].([]any)[0] = 2
	if got := r.Fields["m"].(map[string]any)["l"].([]any)[0]; got != 1 {
		t.Fatalf("original changed to %v", got)
	}
}

// Numbers that are equal as decimals are equal values, whatever their Go type.
func TestNumberEqualityProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		i := rapid.Int64Range(-1<<52, 1<<52).Draw(t, "i")
		if !concord.EqualValues(i, float64(i)) {
			t.Fatalf("int64 %d != float64", i)
		}
		n := json.Number(rapid.SampledFrom([]string{"", "0", "00"}).Draw(t, "pad"))
		if !concord.EqualValues(i, json.Number(string(json.Number(jsonInt(i)))+"."+string(n))) && n != "" {
			t.Fatalf("%d != %s.%s", i, jsonInt(i), n)
		}
		f := rapid.Float64().Draw(t, "f")
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return
		}
		b, _ := json.Marshal(f)
		if f == math.Trunc(f) && math.Abs(f) >= 1<<53 && f >= -0x1p63 && f < 0x1p64 {
			// A whole float in the integer range stands for its exact
			// value, which encoding/json does not print.
			b = []byte(new(big.Float).SetFloat64(f).Text('f', 0))
		}
		if !concord.EqualValues(f, json.Number(b)) {
			t.Fatalf("float %v != its JSON %s", f, b)
		}
		// Whole floats against the integers they may or may not hold.
		j := rapid.Int64().Draw(t, "j")
		g := float64(j)
		exact, _ := new(big.Float).SetFloat64(g).Int(nil)
		if got, want := concord.EqualValues(g, j), exact.Cmp(big.NewInt(j)) == 0; got != want {
			t.Fatalf("EqualValues(float64(%d) = %v, %d) = %v; want %v", j, g, j, got, want)
		}
		if !concord.EqualValues(g, json.Number(exact.String())) {
			t.Fatalf("float64 %v != its exact value %s", g, exact)
		}
	})
}

func jsonInt(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func BenchmarkHashValue(b *testing.B) {
	v := map[string]any{"street": "Main St 1", "city": "Springfield", "zip": "12345", "n": 2.5}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = concord.HashValue(v)
	}
}

func TestFloat(t *testing.T) {
	for _, tc := range []struct {
		v    concord.Value
		want float64
		ok   bool
	}{
		{int(-3), -3, true}, {int8(-8), -8, true}, {int16(16), 16, true}, {int32(32), 32, true}, {int64(1) << 53, 1 << 53, true},
		{uint(3), 3, true}, {uint8(8), 8, true}, {uint16(16), 16, true}, {uint32(32), 32, true}, {uint64(64), 64, true},
		{float32(0.5), 0.5, true}, {2.25, 2.25, true},
		{"12", 0, false}, {json.Number("12"), 0, false}, {nil, 0, false}, {true, 0, false},
	} {
		if got, ok := concord.Float(tc.v); got != tc.want || ok != tc.ok {
			t.Errorf("Float(%#v) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
