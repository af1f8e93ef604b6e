package dict_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dict"
	"github.com/concordsync/concord/transform/transformtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// rec builds a record from alternating field names and values.
func rec(key string, kv ...any) concord.Record {
	r := concord.Record{Key: key, Fields: map[string]concord.Value{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i].(string)] = kv[i+1]
	}
	return r
}

// brief is a violation reduced to what the table tests compare.
type brief struct {
	Field string
	Rule  error
}

// violations validates r with d and returns the violations found, failing
// the test if the error is not a *dict.Violations for r.
func violations(t testing.TB, d *dict.Dictionary, r concord.Record) []brief {
	t.Helper()
	err := d.Validate(r)
	if err == nil {
		return nil
	}
	var vs *dict.Violations
	if !errors.As(err, &vs) {
		t.Fatalf("Validate(%q) = %v (%T); want a *dict.Violations", r.Key, err, err)
	}
	if vs.Key != r.Key {
		t.Errorf("Violations.Key = %q; want %q", vs.Key, r.Key)
	}
	var out []brief
	for _, v := range vs.List {
		if v.Key != r.Key {
			t.Errorf("Violation.Key = %q; want %q", v.Key, r.Key)
		}
		if !errors.Is(err, v.Rule) {
			t.Errorf("errors.Is(err, %v) = false for a violation of that rule", v.Rule)
		}
		out = append(out, brief{v.Field, v.Rule})
	}
	return out
}

func TestValidateRules(t *testing.T) {
	d, err := dict.New(
		dict.Field{Name: "name", Type: dict.String, Required: true, MinLen: 1, MaxLen: 5},
		dict.Field{Name: "status", Type: dict.String, Allowed: []concord.Value{"active", "closed"}},
		dict.Field{Name: "sku", Type: dict.String, Pattern: `[A-Z]{3}-[0-9]+`},
		dict.Field{Name: "qty", Type: dict.Integer, Range: dict.Between(0, 100)},
		dict.Field{Name: "weight", Type: dict.Number, Range: dict.AtLeast(0)},
		dict.Field{Name: "discount", Type: dict.Number, Range: dict.AtMost(0.5)},
		dict.Field{Name: "price", Type: dict.Decimal, Range: dict.AtLeast(0), Pattern: `-?[0-9]+\.[0-9]{2}`},
		dict.Field{Name: "vip", Type: dict.Bool},
		dict.Field{Name: "born", Type: dict.Time},
		dict.Field{Name: "tags", Type: dict.List, MaxLen: 2},
		dict.Field{Name: "attrs", Type: dict.Map, MinLen: 1},
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail},
		dict.Field{Name: "phone", Type: dict.String, Kind: dict.KindE164},
		dict.Field{Name: "since", Type: dict.String, Kind: dict.KindDate(time.DateOnly)},
	)
	require.NoError(t, err)
	ok := func(kv ...any) concord.Record { return rec("c1", append([]any{"name", "Ada"}, kv...)...) }
	tests := []struct {
		name string
		rec  concord.Record
		want []brief
	}{
		{"minimal", ok(), nil},
		{"all valid", ok("status", "active", "sku", "ABC-12", "qty", 100, "weight", 0.0, "discount", 0.5,
			"price", "12.50", "vip", true, "born", time.Now(), "tags", []string{"a", "b"},
			"attrs", map[string]any{"k": 1}, "email", "ada@example.com", "phone", "+41446681800",
			"since", "2024-02-29"), nil},
		{"nil optional fields", ok("status", nil, "qty", nil, "email", nil), nil},
		{"required missing", rec("c1"), []brief{{"name", dict.ErrRequired}}},
		{"required nil", rec("c1", "name", nil), []brief{{"name", dict.ErrRequired}}},
		{"length below min", ok("name", ""), []brief{{"name", dict.ErrRange}}},
		{"length counts characters", ok("name", "Zoë Ö"), nil},
		{"length above max", ok("name", "Adelaide"), []brief{{"name", dict.ErrRange}}},
		{"string type", ok("name", 42), []brief{{"name", dict.ErrType}}},
		{"allowed", ok("status", "open"), []brief{{"status", dict.ErrAllowed}}},
		{"pattern", ok("sku", "abc-12"), []brief{{"sku", dict.ErrPattern}}},
		{"pattern is anchored", ok("sku", "xABC-12x"), []brief{{"sku", dict.ErrPattern}}},
		{"integer range max", ok("qty", 101), []brief{{"qty", dict.ErrRange}}},
		{"integer range min", ok("qty", int8(-1)), []brief{{"qty", dict.ErrRange}}},
		{"integer from float", ok("qty", 3.0), nil},
		{"integer from json number", ok("qty", json.Number("3.00")), nil},
		{"integer fraction", ok("qty", 2.5), []brief{{"qty", dict.ErrType}}},
		{"integer json fraction", ok("qty", json.Number("2.5")), []brief{{"qty", dict.ErrType}}},
		{"number type", ok("weight", "3"), []brief{{"weight", dict.ErrType}}},
		{"number NaN", ok("weight", math.NaN()), []brief{{"weight", dict.ErrType}}},
		{"number at least", ok("weight", -0.1), []brief{{"weight", dict.ErrRange}}},
		{"number at most", ok("discount", json.Number("0.51")), []brief{{"discount", dict.ErrRange}}},
		{"decimal not decimal", ok("price", "12,50"), []brief{{"price", dict.ErrType}}},
		{"decimal as number", ok("price", 12.5), []brief{{"price", dict.ErrType}}},
		{"decimal range and pattern", ok("price", "-1.5"), []brief{{"price", dict.ErrPattern}, {"price", dict.ErrRange}}},
		{"bool type", ok("vip", "yes"), []brief{{"vip", dict.ErrType}}},
		{"time type", ok("born", "2024-01-01"), []brief{{"born", dict.ErrType}}},
		{"list type", ok("tags", "a"), []brief{{"tags", dict.ErrType}}},
		{"list length", ok("tags", []any{"a", "b", "c"}), []brief{{"tags", dict.ErrRange}}},
		{"list unsupported element", ok("tags", []any{struct{}{}}), []brief{{"tags", dict.ErrType}}},
		{"map type", ok("attrs", []any{}), []brief{{"attrs", dict.ErrType}}},
		{"map length", ok("attrs", map[string]string{}), []brief{{"attrs", dict.ErrRange}}},
		{"email", ok("email", "ada@example"), []brief{{"email", dict.ErrFormat}}},
		{"email display name", ok("email", "Ada <ada@example.com>"), []brief{{"email", dict.ErrFormat}}},
		{"e164 no plus", ok("phone", "0446681800"), []brief{{"phone", dict.ErrFormat}}},
		{"e164 too long", ok("phone", "+1234567890123456"), []brief{{"phone", dict.ErrFormat}}},
		{"date layout", ok("since", "29.02.2024"), []brief{{"since", dict.ErrFormat}}},
		{"date invalid day", ok("since", "2023-02-29"), []brief{{"since", dict.ErrFormat}}},
		{"every violation at once", rec("c1", "status", "open", "qty", 1.5, "email", "x"),
			[]brief{{"name", dict.ErrRequired}, {"status", dict.ErrAllowed}, {"qty", dict.ErrType}, {"email", dict.ErrFormat}}},
		{"unknown fields allowed", ok("note", "anything"), nil},
		{"deleted record", concord.Record{Key: "c1", Deleted: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations(t, d, tt.rec)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("violations differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejectUnknown(t *testing.T) {
	d, err := dict.Options{Unknown: dict.RejectUnknown}.New(dict.Field{Name: "name", Type: dict.String})
	require.NoError(t, err)
	got := violations(t, d, rec("c1", "name", "Ada", "zeta", 1, "alpha", nil))
	want := []brief{{"alpha", dict.ErrUnknown}, {"zeta", dict.ErrUnknown}}
	if diff := cmp.Diff(want, got, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("violations differ (-want +got):\n%s", diff)
	}
}

func TestViolationErrors(t *testing.T) {
	d := dict.MustNew(
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail, Required: true},
		dict.Field{Name: "qty", Type: dict.Integer, Range: dict.AtMost(10)},
	)
	err := d.Validate(rec("order-7", "email", "nope", "qty", 11))
	const want = `record "order-7": 2 dictionary violations: field "email" value "nope": bad format (email: not an e-mail address); field "qty" value 11: out of range (above maximum 10)`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate error = %v\nwant %s", err, want)
	}
	for _, sentinel := range []error{dict.ErrFormat, dict.ErrRange} {
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(err, %v) = false; want true", sentinel)
		}
	}
	if errors.Is(err, dict.ErrRequired) {
		t.Errorf("errors.Is(err, ErrRequired) = true; want false")
	}
	var v dict.Violation
	if !errors.As(err, &v) {
		t.Fatalf("errors.As(err, *Violation) = false")
	}
	if v.Field != "email" || v.Cause == nil || !errors.Is(v, v.Cause) {
		t.Errorf("first violation = %+v; want field email with the kind's error as Cause", v)
	}
	if got, want := v.Error(), `record "order-7" field "email" value "nope": bad format: email: not an e-mail address`; got != want {
		t.Errorf("Violation.Error() = %q; want %q", got, want)
	}
	err = d.Validate(rec("order-8"))
	if got, want := err.Error(), `record "order-8": 1 dictionary violation: field "email": required (missing)`; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestNewRejectsBadDeclarations(t *testing.T) {
	tests := []struct {
		name  string
		field dict.Field
		want  string
	}{
		{"empty name", dict.Field{Type: dict.String}, "empty name"},
		{"no type", dict.Field{Name: "a"}, `unknown type ""`},
		{"bad type", dict.Field{Name: "a", Type: "text"}, `unknown type "text"`},
		{"bad pattern", dict.Field{Name: "a", Type: dict.String, Pattern: "("}, "pattern: error parsing regexp"},
		{"pattern on number", dict.Field{Name: "a", Type: dict.Number, Pattern: "1"}, "pattern on a number field"},
		{"range on string", dict.Field{Name: "a", Type: dict.String, Range: dict.AtLeast(1)}, "range on a string field"},
		{"empty range", dict.Field{Name: "a", Type: dict.Number, Range: &dict.Range{}}, "range without bounds"},
		{"inverted range", dict.Field{Name: "a", Type: dict.Number, Range: dict.Between(2, 1)}, "minimum 2 above maximum 1"},
		{"length on bool", dict.Field{Name: "a", Type: dict.Bool, MaxLen: 1}, "length on a bool field"},
		{"negative length", dict.Field{Name: "a", Type: dict.String, MinLen: -1}, "negative length"},
		{"inverted length", dict.Field{Name: "a", Type: dict.String, MinLen: 3, MaxLen: 2}, "minimum length 3 above maximum 2"},
		{"unknown kind", dict.Field{Name: "a", Type: dict.String, Kind: dict.KindCountry}, "unknown kind"},
		{"kind on number", dict.Field{Name: "a", Type: dict.Number, Kind: dict.KindEmail}, "kind \"email\" on a number field"},
		{"allowed of wrong type", dict.Field{Name: "a", Type: dict.Integer, Allowed: []concord.Value{1, "2"}}, "allowed value 2 is not a valid integer"},
		{"allowed nil", dict.Field{Name: "a", Type: dict.String, Allowed: []concord.Value{nil}}, "allowed value <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dict.New(tt.field)
			if !errors.Is(err, dict.ErrInvalidDictionary) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want ErrInvalidDictionary containing %q", err, tt.want)
			}
		})
	}
	t.Run("duplicates and several problems", func(t *testing.T) {
		_, err := dict.New(
			dict.Field{Name: "a", Type: dict.String},
			dict.Field{Name: "a", Type: dict.String},
			dict.Field{Name: "b", Type: "x"},
		)
		for _, want := range []string{`field 2 "a": declared twice`, `field 3 "b": unknown type`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("New error = %v; want it to contain %q", err, want)
			}
		}
	})
	t.Run("bad policy", func(t *testing.T) {
		if _, err := (dict.Options{Unknown: 7}).New(); !errors.Is(err, dict.ErrInvalidDictionary) {
			t.Errorf("New error = %v; want ErrInvalidDictionary", err)
		}
	})
}

func TestKinds(t *testing.T) {
	isCountry := func(s string) error {
		if s != "CH" && s != "DE" {
			return errors.New("not an ISO 3166-1 alpha-2 code")
		}
		return nil
	}
	base := dict.BuiltinKinds()
	kinds := base.With(dict.KindCountry, isCountry)
	if _, ok := base.Lookup(dict.KindCountry); ok {
		t.Errorf("With modified the registry it was called on")
	}
	d, err := dict.Options{Kinds: kinds}.New(dict.Field{Name: "country", Type: dict.String, Kind: dict.KindCountry})
	require.NoError(t, err)
	if err := d.Validate(rec("c1", "country", "CH")); err != nil {
		t.Errorf("Validate(CH) = %v; want nil", err)
	}
	if err := d.Validate(rec("c1", "country", "XX")); !errors.Is(err, dict.ErrFormat) {
		t.Errorf("Validate(XX) = %v; want ErrFormat", err)
	}
	var none *dict.Kinds
	if _, ok := none.Lookup(dict.KindDate("2006")); !ok {
		t.Errorf("nil registry does not resolve a date kind")
	}
	if _, ok := none.Lookup("date:"); ok {
		t.Errorf("date kind without a layout resolved")
	}
	for _, name := range []string{"", "date:x"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("With(%q) did not panic", name)
				}
			}()
			base.With(name, isCountry)
		}()
	}
}

func TestTransformer(t *testing.T) {
	d := dict.MustNew(dict.Field{Name: "qty", Type: dict.Integer, Required: true})
	tr := transform.Chain(transform.MustMapping(transform.Rename("n", "qty")).Inbound(), d.Transformer())
	transformtest.Table(t, tr, []transformtest.Case{
		{Name: "valid passes through", In: rec("c1", "n", 2, "x", "y"), Want: rec("c1", "qty", 2, "x", "y")},
		{Name: "invalid", In: rec("c1", "n", "two"), WantErr: dict.ErrType, WantErrContains: `step 2 of 2 (dictionary): record "c1"`},
		{Name: "missing", In: rec("c1"), WantErr: dict.ErrRequired},
	})
	transformtest.NoMutation(t, d.Transformer(), rec("c1", "qty", 1), rec("c2", "qty", "x"))
}

func TestFieldsAreCopies(t *testing.T) {
	allowed := []concord.Value{"a", "b"}
	r := dict.Between(0, 1)
	d := dict.MustNew(
		dict.Field{Name: "s", Type: dict.String, Allowed: allowed},
		dict.Field{Name: "n", Type: dict.Number, Range: r},
	)
	allowed[0] = "z"
	r.Max = 100
	got := d.Fields()
	got[0].Allowed[1] = "y"
	if err := d.Validate(rec("c1", "s", "a", "n", 50)); !errors.Is(err, dict.ErrRange) || errors.Is(err, dict.ErrAllowed) {
		t.Errorf("Validate = %v; want only a range violation (declarations must be copied)", err)
	}
	if diff := cmp.Diff([]concord.Value{"a", "b"}, d.Fields()[0].Allowed); diff != "" {
		t.Errorf("Fields()[0].Allowed changed through a returned slice (-want +got):\n%s", diff)
	}
}

// sampleDictionary is the dictionary of the golden file and the example.
func sampleDictionary(t testing.TB) *dict.Dictionary {
	t.Helper()
	kinds := dict.BuiltinKinds().With(dict.KindCountry, func(string) error { return nil })
	d, err := dict.Options{Kinds: kinds, Unknown: dict.RejectUnknown}.New(
		dict.Field{Name: "customer_id", Type: dict.String, Required: true, Pattern: `C[0-9]{6}`,
			Description: "Customer number, assigned by the ERP.", Owner: "Finance (ERP)"},
		dict.Field{Name: "email", Type: dict.String, Kind: dict.KindEmail, MaxLen: 254,
			Description: "Primary contact address.", Owner: "Sales (CRM)"},
		dict.Field{Name: "phone", Type: dict.String, Kind: dict.KindE164, Owner: "Sales (CRM)"},
		dict.Field{Name: "country", Type: dict.String, Required: true, Kind: dict.KindCountry,
			Description: "Billing country.", Owner: "Finance (ERP)"},
		dict.Field{Name: "tier", Type: dict.String, Allowed: []concord.Value{"gold", "silver"},
			Description: "Support tier | SLA.\nSee the contract.", Owner: "Support"},
		dict.Field{Name: "credit_limit", Type: dict.Decimal, Range: dict.Between(0, 1e6), Owner: "Finance (ERP)"},
		dict.Field{Name: "seats", Type: dict.Integer, Range: dict.AtLeast(1)},
		dict.Field{Name: "contract_start", Type: dict.String, Kind: dict.KindDate(time.DateOnly)},
		dict.Field{Name: "tags", Type: dict.List, MaxLen: 10},
		dict.Field{Name: "active", Type: dict.Bool, Required: true},
	)
	require.NoError(t, err)
	return d
}

func TestMarkdownGolden(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, sampleDictionary(t).Markdown(&buf))
	golden := filepath.Join("testdata", "dictionary.md")
	if *update {
		require.NoError(t, os.WriteFile(golden, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("Markdown differs from %s (-want +got):\n%s", golden, diff)
	}
}

// failWriter fails every write.
type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestMarkdownWriteError(t *testing.T) {
	if err := sampleDictionary(t).Markdown(failWriter{}); !errors.Is(err, errWrite) {
		t.Errorf("Markdown error = %v; want %v", err, errWrite)
	}
}

func BenchmarkValidate(b *testing.B) {
	d := sampleDictionary(b)
	r := rec("c1", "customer_id", "C000042", "email", "ada@example.com", "phone", "+41446681800",
		"country", "CH", "tier", "gold", "credit_limit", "5000.00", "seats", 12, "active", true)
	for b.Loop() {
		require.NoError(b, d.Validate(r))
	}
}
