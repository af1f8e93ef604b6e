package dict_test

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/normalize"
)

// fuzzDictionary declares a field of every type with every rule that suits
// it, and the kinds with reference data, so that the fuzz target reaches
// every validator.
var fuzzDictionary = func() *dict.Dictionary {
	d, err := dict.Options{Unknown: dict.RejectUnknown, Kinds: normalize.Kinds(nil)}.New(
		dict.Field{Name: "name", Type: dict.String, Required: true, MinLen: 1, MaxLen: 20},
		dict.Field{Name: "code", Type: dict.String, Pattern: `[A-Z]{2}-[0-9]+`},
		dict.Field{Name: "status", Type: dict.String, Allowed: []concord.Value{"open", "closed"}},
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail},
		dict.Field{Name: "phone", Type: dict.String, Kind: dict.KindE164},
		dict.Field{Name: "day", Type: dict.String, Kind: dict.KindDate(time.DateOnly)},
		dict.Field{Name: "country", Type: dict.String, Kind: dict.KindCountry},
		dict.Field{Name: "state", Type: dict.String, Kind: dict.KindSubdivision},
		dict.Field{Name: "currency", Type: dict.String, Kind: dict.KindCurrency},
		dict.Field{Name: "qty", Type: dict.Integer, Range: dict.Between(0, 1e6)},
		dict.Field{Name: "price", Type: dict.Number, Range: dict.AtLeast(0)},
		dict.Field{Name: "level", Type: dict.Number, Allowed: []concord.Value{1, 2.5, json.Number("1e3")}},
		dict.Field{Name: "total", Type: dict.Decimal, Range: dict.AtMost(1e9), Pattern: `-?[0-9]+\.[0-9]{2}`},
		dict.Field{Name: "ok", Type: dict.Bool},
		dict.Field{Name: "at", Type: dict.Time},
		dict.Field{Name: "tags", Type: dict.List, MaxLen: 3},
		dict.Field{Name: "attrs", Type: dict.Map, MinLen: 1},
	)
	if err != nil {
		panic(err)
	}
	return d
}()

// fuzzFieldValue makes a value of one of many types from fuzz input.
func fuzzFieldValue(kind byte, s string, n int64) concord.Value {
	switch kind % 16 {
	case 0:
		return nil
	case 1:
		return s
	case 2:
		return json.Number(s)
	case 3:
		return n
	case 4:
		return math.Float64frombits(uint64(n))
	case 5:
		return float32(math.Float32frombits(uint32(n)))
	case 6:
		return uint64(n)
	case 7:
		return int8(n)
	case 8:
		return n%2 == 0
	case 9:
		return time.Unix(n, 0).In(time.FixedZone(s[:min(len(s), 3)], int(n%100000)))
	case 10:
		return []any{s, n}
	case 11:
		return strings.Fields(s)
	case 12:
		return map[string]any{s: n}
	case 13:
		return map[string]string{}
	case 14:
		return []byte(s)
	}
	return struct{ S string }{s} // not a Value at all
}

// FuzzDictionaryValidate: the dictionary's validators, on records built
// from fuzz input, never panic, are deterministic, and every violation
// names its record and a field of the record or the dictionary, in its
// error text too; a field value CheckValue refuses is never valid.
func FuzzDictionaryValidate(f *testing.F) {
	for _, seed := range []struct {
		field string
		kind  byte
		s     string
		n     int64
	}{
		{"name", 1, "Ada", 0}, {"name", 1, "caf\xe9", 0}, {"name", 1, strings.Repeat("x", 21), 0},
		{"code", 1, "AB-12", 0}, {"status", 1, "open", 0}, {"email", 1, "ada@example.com", 0},
		{"phone", 1, "+41446681800", 0}, {"day", 1, "10000-01-01", 0}, {"country", 1, "DE", 0},
		{"state", 1, "US-CA", 0}, {"currency", 1, "CHF", 0}, {"qty", 2, "1e999999", 0}, {"qty", 2, "1" + strings.Repeat("0", 400), 0},
		{"qty", 2, "0e44444444444444444444", 0}, {"price", 4, "", int64(math.Float64bits(math.NaN()))}, {"level", 2, "1000", 0},
		{"total", 1, "12.50", 0}, {"at", 9, "LMT", -1893456000}, {"at", 9, "", 253402300800}, {"tags", 10, "x", 1},
		{"attrs", 13, "", 0}, {"unknown", 1, "x", 0}, {"\xff", 1, "x", 0}, {"ok", 15, "x", 0}, {"qty", 6, "", -1},
	} {
		f.Add(seed.field, seed.kind, seed.s, seed.n, "k1")
	}
	names := []string{"name"}
	for _, fd := range fuzzDictionary.Fields() {
		names = append(names, fd.Name)
	}
	f.Fuzz(func(t *testing.T, field string, kind byte, s string, n int64, key string) {
		if i, err := strconv.Atoi(field); err == nil && i >= 0 {
			field = names[i%len(names)] // reach the declared fields often
		}
		v := fuzzFieldValue(kind, s, n)
		rec := concord.Record{Key: key, Fields: map[string]concord.Value{"name": "Ada", field: v}}
		err := fuzzDictionary.Validate(rec)
		again := fuzzDictionary.Validate(rec.Clone())
		if (err == nil) != (again == nil) || (err != nil && err.Error() != again.Error()) {
			t.Fatalf("not deterministic: %v, then %v", err, again)
		}
		if err == nil {
			if v != nil && concord.CheckValue(v) != nil {
				t.Fatalf("field %q value %#v is valid, but CheckValue refuses it: %v", field, v, concord.CheckValue(v))
			}
			return
		}
		var vs *dict.Violations
		if !errors.As(err, &vs) || vs.Key != key || len(vs.List) == 0 {
			t.Fatalf("Validate = %v (%T); want *dict.Violations for %q", err, err, key)
		}
		for _, viol := range vs.List {
			if viol.Key != key || (viol.Field != field && !slices.Contains(names, viol.Field)) {
				t.Fatalf("violation %v names key %q field %q; record %q has field %q", viol, viol.Key, viol.Field, key, field)
			}
			if !errors.Is(viol, viol.Rule) || !errors.Is(err, viol.Rule) {
				t.Fatalf("violation %v does not match its rule %v", viol, viol.Rule)
			}
			if !strings.Contains(viol.Error(), strconv.Quote(viol.Field)) || !strings.Contains(err.Error(), strconv.Quote(viol.Field)) {
				t.Fatalf("message %q does not name field %q", viol.Error(), viol.Field)
			}
		}
	})
}
