package transform_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/transformtest"
)

// portalRules is the mapping the tests exercise: every kind of rule.
func portalRules() []transform.Rule {
	return []transform.Rule{
		transform.Rename("zip", "postal_code"),
		transform.Rename("tel", "phone"),
		transform.RenameWith("vip", "is_vip", transform.BoolString("yes", "no")),
		transform.Computed([]string{"name"}, []string{"first_name", "last_name"}, splitName, joinName),
		transform.Drop("internal_id"),
		transform.Constant("source", "concord"),
	}
}

var portal = transform.MustMapping(portalRules()...)

// rec builds a record from alternating field names and values.
func rec(key string, kv ...any) concord.Record {
	r := concord.Record{Key: key, Fields: map[string]concord.Value{}}
	for i := 0; i < len(kv); i += 2 {
		r.Fields[kv[i].(string)] = kv[i+1]
	}
	return r
}

func TestMappingInbound(t *testing.T) {
	modified := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	withMeta := func(r concord.Record) concord.Record {
		r.Modified, r.Tag = modified, "etag-7"
		return r
	}
	deleted := concord.Record{Key: "c9", Deleted: true, Fields: map[string]concord.Value{"zip": "1000"}}
	transformtest.Table(t, portal.Inbound(), []transformtest.Case{{
		Name: "full record",
		In: withMeta(rec("c1", "zip", "1000", "tel", "+43 1", "vip", "no", "name", "Ada Lovelace",
			"internal_id", 7, "source", "portal", "note", "hi")),
		Want: withMeta(rec("c1", "postal_code", "1000", "phone", "+43 1", "is_vip", false,
			"first_name", "Ada", "last_name", "Lovelace", "note", "hi")),
	}, {
		Name: "partial record produces only what it reports",
		In:   rec("c1", "zip", "1010"),
		Want: rec("c1", "postal_code", "1010"),
	}, {
		Name: "empty stays empty, not absent",
		In:   rec("c1", "zip", nil, "vip", nil, "name", nil),
		Want: rec("c1", "postal_code", nil, "is_vip", nil, "first_name", nil, "last_name", nil),
	}, {
		Name: "no fields",
		In:   concord.Record{Key: "c1"},
		Want: rec("c1"),
	}, {
		Name: "system field named like a canonical target is dropped",
		In:   rec("c1", "postal_code", "stale", "first_name", "x"),
		Want: rec("c1"),
	}, {
		Name: "deleted record passes untouched",
		In:   deleted,
		Want: deleted,
	}, {
		Name:            "bad bool string",
		In:              rec("c2", "vip", "maybe"),
		WantErr:         transform.ErrBadValue,
		WantErrContains: `record "c2" field "vip" value "maybe"`,
	}, {
		Name:            "computed input of wrong type",
		In:              rec("c3", "name", 42),
		WantErr:         transform.ErrWrongType,
		WantErrContains: `field "name" value 42`,
	}})
}

func TestMappingOutbound(t *testing.T) {
	deleted := concord.Record{Key: "c9", Deleted: true, Fields: map[string]concord.Value{"postal_code": "1000"}}
	transformtest.Table(t, portal.Outbound(), []transformtest.Case{{
		Name: "full record",
		In: rec("c1", "postal_code", "1000", "phone", nil, "is_vip", true,
			"first_name", "Ada", "last_name", "Lovelace", "note", "hi"),
		Want: rec("c1", "zip", "1000", "tel", nil, "vip", "yes", "name", "Ada Lovelace",
			"note", "hi", "source", "concord"),
	}, {
		Name: "constant is written on every record",
		In:   rec("c1"),
		Want: rec("c1", "source", "concord"),
	}, {
		Name: "canonical fields named like system fields are not written",
		In:   rec("c1", "internal_id", 5, "zip", "9999", "source", "elsewhere"),
		Want: rec("c1", "source", "concord"),
	}, {
		Name: "deleted record passes untouched",
		In:   deleted,
		Want: deleted,
	}, {
		Name:            "fields computed together must come together",
		In:              rec("c4", "first_name", "Ada"),
		WantErr:         transform.ErrMissingField,
		WantErrContains: `record "c4" field "last_name": missing field`,
	}, {
		Name:            "bool expected",
		In:              rec("c5", "is_vip", "yes"),
		WantErr:         transform.ErrWrongType,
		WantErrContains: `field "is_vip"`,
	}, {
		Name:            "computed error names all input fields",
		In:              rec("c6", "first_name", 1, "last_name", "L"),
		WantErr:         transform.ErrWrongType,
		WantErrContains: `field "first_name,last_name" value [1 L]`,
	}})
}

func TestMappingStrict(t *testing.T) {
	m := transform.MustMapping(transform.Strict(), transform.Rename("sku", "sku"), transform.Rename("qty", "quantity"))
	transformtest.Table(t, m.Inbound(), []transformtest.Case{{
		Name: "unmentioned fields dropped",
		In:   rec("p1", "sku", "A-1", "qty", 3, "colour", "red"),
		Want: rec("p1", "sku", "A-1", "quantity", 3),
	}})
	transformtest.Table(t, m.Outbound(), []transformtest.Case{{
		Name: "unmentioned fields dropped",
		In:   rec("p1", "sku", "A-1", "quantity", 3, "colour", "red"),
		Want: rec("p1", "sku", "A-1", "qty", 3),
	}})
}

func TestMappingSwap(t *testing.T) {
	// Two rules may exchange names: each side's names are claimed once.
	m := transform.MustMapping(transform.Rename("a", "b"), transform.Rename("b", "a"))
	transformtest.Table(t, m.Inbound(), []transformtest.Case{{
		Name: "swap", In: rec("k", "a", 1, "b", 2, "c", 3), Want: rec("k", "b", 1, "a", 2, "c", 3),
	}})
}

func TestNewMappingErrors(t *testing.T) {
	same := func(v []concord.Value) ([]concord.Value, error) { return v, nil }
	tests := []struct {
		name  string
		rules []transform.Rule
		want  []string // substrings of the error, one per problem
	}{
		{"duplicate system field", []transform.Rule{transform.Rename("zip", "a"), transform.Drop("zip")},
			[]string{`rule 2 Drop("zip"): system field "zip" already claimed by Rename("zip", "a")`}},
		{"duplicate canonical field", []transform.Rule{transform.Rename("a", "x"), transform.Rename("b", "x")},
			[]string{`rule 2 Rename("b", "x"): canonical field "x" already claimed`}},
		{"empty names", []transform.Rule{transform.Rename("", ""), transform.Constant("", 1)},
			[]string{`rule 1 Rename("", ""): empty system field name`, `rule 1 Rename("", ""): empty canonical field name`, `rule 2 Constant(""): empty system field name`}},
		{"nil rule", []transform.Rule{transform.Rename("a", "b"), nil},
			[]string{"rule 2 is nil"}},
		{"field twice in one rule", []transform.Rule{transform.Computed([]string{"a", "a"}, []string{"b"}, same, same)},
			[]string{`system field "a" named twice`}},
		{"computed without fields", []transform.Rule{transform.Computed(nil, []string{"b"}, same, same)},
			[]string{"needs at least one system and one canonical field"}},
		{"computed without function", []transform.Rule{transform.Computed([]string{"a"}, []string{"b"}, same, nil)},
			[]string{"needs both an in and an out function"}},
		{"converter without function", []transform.Rule{transform.RenameWith("a", "b", transform.Converter{In: transform.BoolString("y", "n").In})},
			[]string{"converter needs both In and Out"}},
		{"constant not a value", []transform.Rule{transform.Constant("a", math.NaN())},
			[]string{`rule 1 Constant("a"): unsupported value`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := transform.NewMapping(tt.rules...)
			if err == nil {
				t.Fatalf("NewMapping succeeded; want an error")
			}
			if m != nil {
				t.Errorf("NewMapping returned a mapping with its error")
			}
			if !errors.Is(err, transform.ErrInvalidMapping) {
				t.Errorf("error %q does not match ErrInvalidMapping", err)
			}
			if got := len(strings.Split(err.Error(), "\n")); got != len(tt.want) {
				t.Errorf("error reports %d problems; want %d:\n%v", got, len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestMustMappingPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("MustMapping did not panic on an invalid mapping")
		}
	}()
	transform.MustMapping(transform.Drop(""))
}

func TestComputedErrors(t *testing.T) {
	fail := func(err error) transform.ValueFunc {
		return func([]concord.Value) ([]concord.Value, error) { return nil, err }
	}
	one := func([]concord.Value) ([]concord.Value, error) { return []concord.Value{1}, nil }
	custom := errors.New("custom")
	tests := []struct {
		name string
		in   transform.ValueFunc
		want *transform.FieldError
	}{
		{"plain error is wrapped", fail(custom),
			&transform.FieldError{Key: "k", Field: "a,b", Value: []any{1, nil}, Err: custom}},
		{"field error keeps its field and gets the key", fail(&transform.FieldError{Field: "b", Value: "v", Err: custom}),
			&transform.FieldError{Key: "k", Field: "b", Value: "v", Err: custom}},
		{"field error keeps its key", fail(&transform.FieldError{Key: "other", Err: custom}),
			&transform.FieldError{Key: "other", Field: "a,b", Err: custom}},
		{"wrong number of results", one,
			&transform.FieldError{Key: "k", Field: "a,b", Value: []any{1, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := transform.MustMapping(transform.Computed([]string{"a", "b"}, []string{"x", "y"}, tt.in, tt.in))
			_, err := m.Inbound().Transform(context.Background(), rec("k", "a", 1, "b", nil))
			var got *transform.FieldError
			if !errors.As(err, &got) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if d := cmp.Diff(*tt.want, *got, cmpopts.IgnoreFields(transform.FieldError{}, "Err")); d != "" {
				t.Errorf("FieldError differs (-want +got):\n%s", d)
			}
			if tt.want.Err != nil && got.Err != tt.want.Err {
				t.Errorf("FieldError.Err = %v; want %v", got.Err, tt.want.Err)
			}
			if tt.want.Err == nil && !strings.Contains(err.Error(), "returned 1 values for 2 fields") {
				t.Errorf("error %q does not explain the wrong number of results", err)
			}
		})
	}
}

func TestMappingFields(t *testing.T) {
	want := []string{"first_name", "is_vip", "last_name", "phone", "postal_code"}
	if d := cmp.Diff(want, portal.Fields()); d != "" {
		t.Errorf("Fields() differs (-want +got):\n%s", d)
	}
}

func TestConstantNotShared(t *testing.T) {
	m := transform.MustMapping(transform.Constant("tags", []any{"a"}))
	ctx := context.Background()
	first, err := m.Outbound().Transform(ctx, rec("k"))
	require.NoError(t, err)
	first.Fields["tags"].([]any)[0] = "changed"
	second, err := m.Outbound().Transform(ctx, rec("k"))
	require.NoError(t, err)
	if d := cmp.Diff([]any{"a"}, second.Fields["tags"]); d != "" {
		t.Errorf("constant changed by a caller of an earlier result (-want +got):\n%s", d)
	}
}

func TestMappingLaws(t *testing.T) {
	system := []concord.Record{
		rec("c1", "zip", "1000", "tel", "+43 1", "vip", "yes", "name", "Ada Lovelace", "internal_id", 7, "note", 1.5),
		rec("c2", "name", "Grace", "source", "concord"),
		rec("c3", "vip", nil, "name", nil),
		{Key: "c4", Deleted: true},
	}
	canonical := []concord.Record{
		rec("c1", "postal_code", "1000", "phone", nil, "is_vip", false, "first_name", "Ada", "last_name", "Lovelace",
			"note", map[string]any{"nested": []any{1, "x"}}),
		rec("c2", "first_name", "Grace", "last_name", ""),
	}
	transformtest.RoundTrip(t, portal.Inbound(), portal.Outbound(), system...)
	transformtest.CanonicalRoundTrip(t, portal.Inbound(), portal.Outbound(), canonical...)
	transformtest.NoMutation(t, portal.Inbound(), system...)
	transformtest.NoMutation(t, portal.Outbound(), canonical...)
	transformtest.Idempotent(t, transform.MustMapping(transform.Rename("a", "a")).Inbound(), system...)
}

// Property tests over random records: the Mapping keeps the laws whatever
// fields a (partial) record carries.
func TestMappingProperties(t *testing.T) {
	word := rapid.StringMatching(`[A-Z][a-z]{0,5}`)
	fullName := rapid.StringMatching(`[A-Z][a-z]{0,5}( [A-Z][a-z]{0,5}){0,2}`)
	// Fields the mapping renames (any value), and fields it passes through.
	systemFields := []string{"zip", "tel", "internal_id", "note", "extra"}
	canonicalFields := []string{"postal_code", "phone", "note", "extra"}

	t.Run("no mutation", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			tb := transformtest.RapidTB(t, rt)
			all := append(append([]string{"name", "vip", "source", "first_name", "last_name", "is_vip"}, systemFields...), canonicalFields...)
			r := transformtest.GenRecord(all...).Draw(rt, "record")
			transformtest.NoMutation(tb, portal.Inbound(), r)
			transformtest.NoMutation(tb, portal.Outbound(), r)
		})
	})
	t.Run("system round trip", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			r := transformtest.GenRecord(systemFields...).Draw(rt, "record")
			if rapid.Bool().Draw(rt, "has name") {
				r.Fields["name"] = fullName.Draw(rt, "name")
			}
			if rapid.Bool().Draw(rt, "has vip") {
				r.Fields["vip"] = rapid.SampledFrom([]concord.Value{"yes", "no", nil}).Draw(rt, "vip")
			}
			if rapid.Bool().Draw(rt, "has source") {
				r.Fields["source"] = "concord" // what we write is what the system reports
			}
			transformtest.RoundTrip(transformtest.RapidTB(t, rt), portal.Inbound(), portal.Outbound(), r)
		})
	})
	t.Run("canonical round trip", func(t *testing.T) {
		rapid.Check(t, func(rt *rapid.T) {
			r := transformtest.GenRecord(canonicalFields...).Draw(rt, "record")
			if rapid.Bool().Draw(rt, "has name") {
				r.Fields["first_name"] = word.Draw(rt, "first")
				r.Fields["last_name"] = rapid.OneOf(rapid.Just(""), fullName).Draw(rt, "last")
			}
			if rapid.Bool().Draw(rt, "has vip") {
				r.Fields["is_vip"] = rapid.SampledFrom([]concord.Value{true, false, nil}).Draw(rt, "is_vip")
			}
			transformtest.CanonicalRoundTrip(transformtest.RapidTB(t, rt), portal.Inbound(), portal.Outbound(), r)
		})
	})
}

func TestMappingConcurrent(t *testing.T) {
	in := rec("c1", "zip", "1000", "name", "Ada Lovelace", "note", map[string]any{"a": []any{1}})
	want, err := portal.Inbound().Transform(context.Background(), in)
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				got, err := portal.Inbound().Transform(context.Background(), in)
				if err == nil && !cmp.Equal(want, got) {
					err = fmt.Errorf("concurrent result differs: %s", cmp.Diff(want, got))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
