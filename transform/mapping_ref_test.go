package transform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
)

// referenceTransform is Transform as it was before its fast paths: every
// rule through its ValueFunc, every field of the record walked for the
// pass-through. TestMappingFastPathsMatchReference holds the two equal.
func referenceTransform(t direction, rec concord.Record) (concord.Record, error) {
	if rec.Deleted {
		return rec, nil
	}
	out := make(map[string]concord.Value, len(rec.Fields)+1)
	for _, r := range t.m.rules {
		from, to, fn := r.sys, r.canon, r.in
		if t.d == outbound {
			from, to, fn = r.canon, r.sys, r.out
		}
		if fn == nil {
			continue
		}
		args, err := gather(rec, from, r)
		if err != nil {
			return concord.Record{}, err
		}
		if args == nil && len(from) > 0 {
			continue
		}
		res, err := fn(args)
		if err == nil && len(res) != len(to) {
			err = fmt.Errorf("%s returned %d values for %d fields %q", r.desc, len(res), len(to), to)
		}
		if err != nil {
			return concord.Record{}, fieldError(rec.Key, from, args, err)
		}
		for i, name := range to {
			out[name] = res[i]
		}
	}
	if !t.m.strict {
		for name, v := range rec.Fields {
			if !t.m.claimed[name] {
				out[name] = v
			}
		}
	}
	rec.Fields = out
	return rec, nil
}

// TestMappingFastPathsMatchReference draws mappings of every kind of rule
// over a small set of names (so that rules, pass-through fields and
// records collide), and records with any of those fields, nil values and
// values of the wrong type: both directions give what the reference
// gives, the same fields and values, or the same error.
func TestMappingFastPathsMatchReference(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := drawMapping(rt, "")
		rec := concord.Record{Key: "k", Fields: map[string]concord.Value{}, Deleted: rapid.IntRange(0, 9).Draw(rt, "deleted") == 0}
		for _, n := range refNames {
			if rapid.Bool().Draw(rt, "has "+n) {
				rec.Fields[n] = rapid.SampledFrom(refValues).Draw(rt, "value of "+n)
			}
		}
		for _, d := range []direction{{m, inbound}, {m, outbound}} {
			got, gotErr := d.Transform(context.Background(), rec)
			want, wantErr := referenceTransform(d, rec)
			if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
				rt.Fatalf("%s: error %v, reference %v", d, gotErr, wantErr)
			}
			var fe *FieldError
			if gotErr != nil && errors.As(wantErr, &fe) {
				var gfe *FieldError
				if !errors.As(gotErr, &gfe) || !cmp.Equal(gfe.Value, fe.Value) || gfe.Field != fe.Field || gfe.Key != fe.Key {
					rt.Fatalf("%s: field error %#v, reference %#v", d, gotErr, wantErr)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				rt.Fatalf("%s of %v (-reference +fast):\n%s", d, rec, diff)
			}
		}
	})
}

// TestMappingAllocations: a record every field of which a Rename or a
// RenameWith maps costs its new map alone, in either direction.
func TestMappingAllocations(t *testing.T) {
	var rules []Rule
	rec := concord.Record{Key: "k", Fields: map[string]concord.Value{}}
	for i := range 20 {
		name := fmt.Sprintf("f%02d", i)
		if i%4 == 1 {
			rules = append(rules, RenameWith("z_"+name, name, BoolString("Y", "N")))
			rec.Fields[name] = true
			continue
		}
		rules = append(rules, Rename("z_"+name, name))
		rec.Fields[name] = "value"
	}
	m := MustMapping(rules...)
	ctx := context.Background()
	sys, err := m.Outbound().Transform(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	// A map of 21 entries is a handful of allocations; the slices the
	// rules used to take were two or three per field.
	for _, d := range []Transformer{m.Outbound(), m.Inbound()} {
		in := rec
		if d == m.Inbound() {
			in = sys
		}
		n := testing.AllocsPerRun(100, func() {
			if _, err := d.Transform(ctx, in); err != nil {
				t.Fatal(err)
			}
		})
		if n > 6 {
			t.Errorf("%s: %v allocations per record of 20 mapped fields, want at most 6", d, n)
		}
	}
}

// TestReadOnly: only this package's own transformers vouch for never
// modifying their input, and a Mapping keeps that promise even when its
// rules' functions break theirs: each gets its own copy of a map or slice.
func TestReadOnly(t *testing.T) {
	mutate := func(v concord.Value) (concord.Value, error) {
		if m, ok := v.(map[string]any); ok {
			m["changed"] = true
			return m, nil
		}
		if l, ok := v.([]any); ok && len(l) > 0 {
			l[0] = "changed"
		}
		return v, nil
	}
	mutateAll := func(vs []concord.Value) ([]concord.Value, error) {
		for i, v := range vs {
			vs[i], _ = mutate(v)
		}
		return vs, nil
	}
	m := MustMapping(RenameWith("s", "c", Converter{In: mutate, Out: mutate}),
		Computed([]string{"s1", "s2"}, []string{"c1", "c2"}, mutateAll, mutateAll))
	user := Func(func(_ context.Context, rec concord.Record) (concord.Record, error) { return rec, nil })
	for _, c := range []struct {
		t    Transformer
		want bool
	}{
		{Identity, true}, {m.Inbound(), true}, {m.Outbound(), true},
		{Chain(m.Inbound(), Identity, Chain(m.Outbound())), true},
		{user, false}, {Chain(m.Inbound(), user), false}, {Chain(Chain(user)), false},
	} {
		if got := ReadOnly(c.t); got != c.want {
			t.Errorf("ReadOnly(%T %v) = %v, want %v", c.t, c.t, got, c.want)
		}
	}
	fresh := func(names ...string) concord.Record {
		r := concord.Record{Key: "k", Fields: map[string]concord.Value{}}
		for _, n := range names {
			r.Fields[n] = map[string]any{"list": []any{"x"}}
		}
		return r
	}
	for _, d := range []struct {
		t   Transformer
		rec concord.Record
	}{{m.Inbound(), fresh("s", "s1", "s2")}, {m.Outbound(), fresh("c", "c1", "c2")}} {
		before := concord.CloneFields(d.rec.Fields)
		out, err := d.t.Transform(context.Background(), d.rec)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, d.rec.Fields); diff != "" {
			t.Errorf("%v modified its input through a rule's function (-before +after):\n%s", d.t, diff)
		}
		if len(out.Fields) == 0 {
			t.Errorf("%v: no output", d.t)
		}
	}
}

// refNames and refValues are what the mapping tests draw field names and
// values from: few names, so that rules, pass-through fields and records
// collide.
var (
	refNames  = []string{"a", "b", "c", "d", "e", "f", "g"}
	refValues = []concord.Value{nil, "Y", "N", "x", true, false, int64(7), 1.5, map[string]any{"k": []any{"v"}}}
)

// drawMapping draws a valid mapping of every kind of rule over refNames
// (labels prefixed with p, for a test that draws several).
func drawMapping(rt *rapid.T, p string) *Mapping {
	names := refNames
	yn := BoolString("Y", "N")
	failing := Converter{
		In:  func(concord.Value) (concord.Value, error) { return nil, fmt.Errorf("%w: in", ErrBadValue) },
		Out: func(concord.Value) (concord.Value, error) { return nil, fmt.Errorf("%w: out", ErrBadValue) },
	}
	join := func(v []concord.Value) ([]concord.Value, error) { return []concord.Value{fmt.Sprint(v...)}, nil }
	split := func(v []concord.Value) ([]concord.Value, error) { return []concord.Value{v[0], v[0]}, nil }
	var rules []Rule
	sysFree, canonFree := map[string]bool{}, map[string]bool{}
	for _, n := range names {
		sysFree[n], canonFree[n] = true, true
	}
	take := func(free map[string]bool, label string) (string, bool) {
		n := rapid.SampledFrom(names).Draw(rt, p+label)
		if !free[n] {
			return "", false
		}
		free[n] = false
		return n, true
	}
	for i := range rapid.IntRange(0, 6).Draw(rt, p+"rules") {
		kind := rapid.IntRange(0, 5).Draw(rt, p+fmt.Sprintf("kind%d", i))
		s, okS := take(sysFree, fmt.Sprintf("sys%d", i))
		if !okS {
			continue
		}
		switch kind {
		case 0, 1, 2:
			c, okC := take(canonFree, fmt.Sprintf("canon%d", i))
			if !okC {
				continue
			}
			switch kind {
			case 0:
				rules = append(rules, Rename(s, c))
			case 1:
				rules = append(rules, RenameWith(s, c, yn))
			default:
				rules = append(rules, RenameWith(s, c, failing))
			}
		case 3:
			c1, ok1 := take(canonFree, fmt.Sprintf("canonA%d", i))
			c2, ok2 := take(canonFree, fmt.Sprintf("canonB%d", i))
			if !ok1 || !ok2 {
				continue
			}
			rules = append(rules, Computed([]string{s}, []string{c1, c2}, split, join))
		case 4:
			rules = append(rules, Drop(s))
		default:
			rules = append(rules, Constant(s, "const"))
		}
	}
	if rapid.Bool().Draw(rt, p+"strict") {
		rules = append(rules, Strict())
	}
	m, err := NewMapping(rules...)
	if err != nil {
		rt.Fatalf("drawn mapping refused: %v", err)
	}
	return m
}

// TestLineage draws mappings (and chains of two of their directions), a
// record, and a set of fields to change: their values, or whether they
// are there. Whenever both records transform, the outputs differ only in
// fields Lineage names, and what the transform of an empty record holds
// (a Constant) is named too. A field Lineage leaves out that a change reaches
// is a write the sync engine would not record (plan, affected).
func TestLineage(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m1, m2 := drawMapping(rt, "first "), drawMapping(rt, "second ")
		steps := []Transformer{m1.Inbound(), m1.Outbound(), Chain(m1.Outbound(), m2.Inbound()), Chain(), Identity}
		tr := rapid.SampledFrom(steps).Draw(rt, "transformer")
		rec := concord.Record{Key: "k", Fields: map[string]concord.Value{}}
		for _, n := range refNames {
			if rapid.Bool().Draw(rt, "has "+n) {
				rec.Fields[n] = rapid.SampledFrom(refValues).Draw(rt, "value of "+n)
			}
		}
		changed := concord.Record{Key: "k", Fields: maps.Clone(rec.Fields)}
		var in []string
		for _, n := range refNames {
			if !rapid.Bool().Draw(rt, "change "+n) {
				continue
			}
			in = append(in, n)
			if rapid.Bool().Draw(rt, "drop "+n) {
				delete(changed.Fields, n)
			} else {
				changed.Fields[n] = rapid.SampledFrom(refValues).Draw(rt, "new value of "+n)
			}
		}
		lin, ok := Lineage(tr, in)
		if !ok {
			rt.Fatalf("%v: no lineage", tr)
		}
		if !slices.IsSorted(lin) || len(slices.Compact(slices.Clone(lin))) != len(lin) {
			rt.Fatalf("lineage %q is not sorted without duplicates", lin)
		}
		if none, err := tr.Transform(context.Background(), concord.Record{Key: "k", Fields: map[string]concord.Value{}}); err == nil {
			for f := range none.Fields {
				if !slices.Contains(lin, f) {
					rt.Fatalf("%q, set from no input field, is not in the lineage %q of %q", f, lin, in)
				}
			}
		}
		a, errA := tr.Transform(context.Background(), rec)
		b, errB := tr.Transform(context.Background(), changed)
		if errA != nil || errB != nil {
			return
		}
		for _, f := range refNames {
			va, inA := a.Fields[f]
			vb, inB := b.Fields[f]
			if (inA != inB || !cmp.Equal(va, vb)) && !slices.Contains(lin, f) {
				rt.Fatalf("changing %q of %v changes output field %q (%v -> %v), which Lineage %q leaves out", in, rec.Fields, f, va, vb, lin)
			}
		}
	})
	if _, ok := Lineage(Func(func(_ context.Context, r concord.Record) (concord.Record, error) { return r, nil }), []string{"a"}); ok {
		t.Error("a Func claims a lineage")
	}
	if _, ok := Lineage(Chain(Identity, Func(func(_ context.Context, r concord.Record) (concord.Record, error) { return r, nil })), []string{"a"}); ok {
		t.Error("a Chain with a Func claims a lineage")
	}
}
