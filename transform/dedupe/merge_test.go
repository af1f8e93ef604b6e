package dedupe_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform/dedupe"
)

func TestMerge(t *testing.T) {
	t1 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	a := concord.Record{Key: "a", Tag: "v1", Modified: t1, Fields: map[string]concord.Value{
		"name": "Ada", "email": "ada@a.test", "phone": nil, "tags": []any{"x"},
	}}
	b := concord.Record{Key: "b", Tag: "v9", Modified: t2, Fields: map[string]concord.Value{
		"name": "Ada L.", "email": "ada@b.test", "phone": "+41446681800", "city": "Zurich",
	}}
	tests := []struct {
		name   string
		policy dedupe.Policy
		want   map[string]concord.Value
	}{
		{"prefer a", dedupe.Policy{}, map[string]concord.Value{
			"name": "Ada", "email": "ada@a.test", "phone": "+41446681800", "tags": []any{"x"}, "city": "Zurich"}},
		{"prefer b", dedupe.Policy{Prefer: dedupe.PreferB}, map[string]concord.Value{
			"name": "Ada L.", "email": "ada@b.test", "phone": "+41446681800", "tags": []any{"x"}, "city": "Zurich"}},
		{"prefer newer", dedupe.Policy{Prefer: dedupe.PreferNewer}, map[string]concord.Value{
			"name": "Ada L.", "email": "ada@b.test", "phone": "+41446681800", "tags": []any{"x"}, "city": "Zurich"}},
		{"per field", dedupe.Policy{Prefer: dedupe.PreferB, Fields: map[string]dedupe.Prefer{"email": dedupe.PreferA}},
			map[string]concord.Value{"name": "Ada L.", "email": "ada@a.test", "phone": "+41446681800", "tags": []any{"x"}, "city": "Zurich"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			aa, bb := a.Clone(), b.Clone()
			got, err := dedupe.Merge(aa, bb, tt.policy)
			require.NoError(t, err)
			want := concord.Record{Key: "a", Modified: t2, Fields: tt.want}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Merge differs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]concord.Record{a, b}, []concord.Record{aa, bb}); diff != "" {
				t.Errorf("Merge modified its inputs (-want +got):\n%s", diff)
			}
			got.Fields["tags"].([]any)[0] = "changed"
			if aa.Fields["tags"].([]any)[0] != "x" {
				t.Errorf("merged record shares a slice with its input")
			}
		})
	}
	t.Run("prefer newer without times keeps a", func(t *testing.T) {
		got, err := dedupe.Merge(concord.Record{Key: "a", Fields: map[string]concord.Value{"n": 1}},
			concord.Record{Key: "b", Fields: map[string]concord.Value{"n": 2}}, dedupe.Policy{Prefer: dedupe.PreferNewer})
		if err != nil || got.Fields["n"] != 1 {
			t.Errorf("Merge = %v, %v; want n=1", got, err)
		}
	})
}

func TestMergeErrors(t *testing.T) {
	ok := concord.Record{Key: "a"}
	tests := []struct {
		name string
		a, b concord.Record
		p    dedupe.Policy
	}{
		{"no key", ok, concord.Record{}, dedupe.Policy{}},
		{"same key", ok, ok, dedupe.Policy{}},
		{"deleted", ok, concord.Record{Key: "b", Deleted: true}, dedupe.Policy{}},
		{"bad prefer", ok, concord.Record{Key: "b"}, dedupe.Policy{Prefer: 9}},
		{"bad field prefer", ok, concord.Record{Key: "b"}, dedupe.Policy{Fields: map[string]dedupe.Prefer{"x": -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := dedupe.Merge(tt.a, tt.b, tt.p); !errors.Is(err, dedupe.ErrMerge) {
				t.Errorf("Merge error = %v; want ErrMerge", err)
			}
		})
	}
}
