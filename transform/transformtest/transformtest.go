// Package transformtest helps a host unit-test its own transforms: the
// [transform.Mapping] of each system, and any [transform.Transformer] it
// writes by hand.
//
// A typical test file for one system's mapping:
//
//	var portal = transform.MustMapping(
//		transform.Rename("zip", "postal_code"),
//		transform.Drop("internal_id"),
//	)
//
//	func TestPortalInbound(t *testing.T) {
//		transformtest.Table(t, portal.Inbound(), []transformtest.Case{
//			{Name: "rename", In: rec("c1", "zip", "1000"), Want: rec("c1", "postal_code", "1000")},
//			{Name: "partial", In: rec("c1"), Want: rec("c1")},
//		})
//	}
//
//	func TestPortalLaws(t *testing.T) {
//		samples := loadRecordedWebhooks(t) // records as the portal reports them
//		canonical := []concord.Record{rec("c1", "postal_code", "1000", "note", "x")}
//		transformtest.RoundTrip(t, portal.Inbound(), portal.Outbound(), samples...)
//		transformtest.CanonicalRoundTrip(t, portal.Inbound(), portal.Outbound(), canonical...)
//		transformtest.NoMutation(t, portal.Inbound(), samples...)
//		transformtest.NoMutation(t, portal.Outbound(), canonical...)
//	}
//
// [RoundTrip] and [CanonicalRoundTrip] check the laws that keep a sync
// pipeline quiet: nothing is lost on the way through a system, and writing
// back what was read is not an edit (otherwise the engine would see its own
// writes as changes and ping-pong between systems). [Idempotent] checks
// normalisers. [NoMutation] checks the rule every Transformer must keep.
//
// For property tests, [GenRecord] and [GenValue] generate random records
// with pgregory.net/rapid, and [RapidTB] lets the helpers report to rapid
// so that it shrinks a failing record:
//
//	rapid.Check(t, func(rt *rapid.T) {
//		rec := transformtest.GenRecord("zip", "tel", "note").Draw(rt, "rec")
//		transformtest.RoundTrip(transformtest.RapidTB(t, rt), m.Inbound(), m.Outbound(), rec)
//	})
//
// Every helper reports failures with t.Errorf and a cmp.Diff (-want +got),
// and keeps going, so that one run shows every failing record. Records are
// compared with [CmpOptions]: field values by [concord.EqualValues] (1 and
// 1.0 are equal), a nil Fields map equal to an empty one. A helper given no
// records fails: a check of nothing is not a pass.
package transformtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// CmpOptions returns the options the helpers pass to cmp.Diff when they
// compare records: field values are compared with [concord.EqualValues],
// and a nil Fields map equals an empty one. Key, Deleted, Modified (as an
// instant) and Tag are compared as they are.
func CmpOptions() cmp.Options {
	return cmp.Options{
		cmp.FilterPath(isFields, cmpopts.EquateEmpty()),
		cmp.FilterPath(isFieldValue, cmp.Comparer(concord.EqualValues)),
	}
}

// isFields matches Record.Fields itself.
func isFields(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	return ok && sf.Name() == "Fields"
}

// isFieldValue matches one value in Record.Fields.
func isFieldValue(p cmp.Path) bool {
	if len(p) < 2 {
		return false
	}
	_, ok := p.Last().(cmp.MapIndex)
	return ok && isFields(p[:len(p)-1])
}

// Case is one row of a [Table] test.
type Case struct {
	// Name of the case, used as the subtest name.
	Name string
	// In is the record given to the Transformer.
	In concord.Record
	// Want is the record it must return, when no error is expected.
	Want concord.Record
	// WantErr, if set, is an error the returned error must match with
	// errors.Is (for example [transform.ErrWrongType]).
	WantErr error
	// WantErrContains, if set, is text the returned error's message must
	// contain (for example the field name).
	WantErrContains string
}

// Table runs tr on each case's In and checks the result against Want, or
// the error against WantErr and WantErrContains (either or both; Want is
// then ignored).
//
// If t is a *testing.T, each case runs as a subtest named by Case.Name, so
// one case can be run with go test -run; otherwise the cases run in order
// and each failure names its case.
func Table(t testing.TB, tr transform.Transformer, cases []Case) {
	t.Helper()
	if len(cases) == 0 {
		t.Errorf("transformtest.Table: no cases")
		return
	}
	for _, c := range cases {
		if tt, ok := t.(*testing.T); ok {
			tt.Run(c.Name, func(t *testing.T) {
				t.Helper()
				checkCase(t, "", tr, c)
			})
			continue
		}
		checkCase(t, fmt.Sprintf("case %q: ", c.Name), tr, c)
	}
}

func checkCase(t testing.TB, prefix string, tr transform.Transformer, c Case) {
	t.Helper()
	got, err := tr.Transform(t.Context(), c.In)
	if c.WantErr != nil || c.WantErrContains != "" {
		switch {
		case err == nil:
			t.Errorf("%sgot no error; want %s", prefix, describeWant(c))
		case c.WantErr != nil && !errors.Is(err, c.WantErr):
			t.Errorf("%sgot error %q; want one matching %q (errors.Is)", prefix, err, c.WantErr)
		case !strings.Contains(err.Error(), c.WantErrContains):
			t.Errorf("%sgot error %q; want one containing %q", prefix, err, c.WantErrContains)
		}
		return
	}
	if err != nil {
		t.Errorf("%sunexpected error: %v", prefix, err)
		return
	}
	if d := cmp.Diff(c.Want, got, CmpOptions()); d != "" {
		t.Errorf("%srecord %q: result differs (-want +got):\n%s", prefix, c.In.Key, d)
	}
}

func describeWant(c Case) string {
	var parts []string
	if c.WantErr != nil {
		parts = append(parts, fmt.Sprintf("one matching %q", c.WantErr))
	}
	if c.WantErrContains != "" {
		parts = append(parts, fmt.Sprintf("one containing %q", c.WantErrContains))
	}
	return "an error: " + strings.Join(parts, " and ")
}

// RoundTrip checks two laws for each system-shaped record x (a record as
// the system reports it, possibly partial):
//
//  1. No echo: writing back what was read changes nothing the system
//     reported. outbound(inbound(x)) agrees with x on every field both
//     have, and on Key, Deleted, Modified and Tag. Fields of x that are
//     not written back (system-only fields) and fields x lacks that are
//     written (constants) are allowed.
//  2. Stable canonical form: reading back what was written gives the same
//     canonical record: inbound(outbound(inbound(x))) equals inbound(x).
//
// A field that inbound maps but outbound loses breaks law 2. A field that
// inbound never maps is invisible from system records: check the other
// direction with [CanonicalRoundTrip]. Each record reports at most one
// failure, the first law it breaks; an error from either transformer fails
// the check for that record.
func RoundTrip(t testing.TB, inbound, outbound transform.Transformer, system ...concord.Record) {
	t.Helper()
	if len(system) == 0 {
		t.Errorf("transformtest.RoundTrip: no records")
	}
	for _, x := range system {
		c, ok := apply(t, inbound, x, "inbound(x)")
		if !ok {
			continue
		}
		s, ok := apply(t, outbound, c, "outbound(inbound(x))")
		if !ok {
			continue
		}
		want, got := shared(x, s)
		if d := cmp.Diff(want, got, CmpOptions()); d != "" {
			t.Errorf("RoundTrip: record %q: writing back what was read changes it: outbound(inbound(x)) differs from x on their common fields (-x +written):\n%s", x.Key, d)
			continue // one failure per record: law 2 would only repeat it
		}
		c2, ok := apply(t, inbound, s, "inbound(outbound(inbound(x)))")
		if !ok {
			continue
		}
		if d := cmp.Diff(c, c2, CmpOptions()); d != "" {
			t.Errorf("RoundTrip: record %q: canonical record changes on a trip through the system: inbound(outbound(c)) differs from c = inbound(x) (-c +got):\n%s", x.Key, d)
		}
	}
}

// CanonicalRoundTrip checks, for each canonical record c, that nothing is
// lost or altered on a trip through the system: inbound(outbound(c))
// equals c, every field and Key, Deleted, Modified and Tag. The records
// should hold only fields the system can store: a canonical field that the
// mapping does not write to this system is, rightly, reported as lost.
//
// This catches a field that either direction loses or alters, which
// [RoundTrip] cannot see when inbound never maps it. It also implies the
// no-echo law for every record outbound writes: with s = outbound(c),
// outbound(inbound(s)) = outbound(c) = s. An error from either transformer
// fails the check for that record.
func CanonicalRoundTrip(t testing.TB, inbound, outbound transform.Transformer, canonical ...concord.Record) {
	t.Helper()
	if len(canonical) == 0 {
		t.Errorf("transformtest.CanonicalRoundTrip: no records")
	}
	for _, c := range canonical {
		s, ok := apply(t, outbound, c, "outbound(c)")
		if !ok {
			continue
		}
		c2, ok := apply(t, inbound, s, "inbound(outbound(c))")
		if !ok {
			continue
		}
		if d := cmp.Diff(c, c2, CmpOptions()); d != "" {
			t.Errorf("CanonicalRoundTrip: record %q: inbound(outbound(c)) differs from c (-c +got):\n%s", c.Key, d)
		}
	}
}

// Idempotent checks that applying tr twice gives the same record as
// applying it once: tr(tr(x)) equals tr(x). Normalisers (trimming,
// lower-casing, formatting phone numbers) must be idempotent, or every
// cycle would see a change. An error fails the check for that record.
func Idempotent(t testing.TB, tr transform.Transformer, recs ...concord.Record) {
	t.Helper()
	if len(recs) == 0 {
		t.Errorf("transformtest.Idempotent: no records")
	}
	for _, x := range recs {
		once, ok := apply(t, tr, x, "tr(x)")
		if !ok {
			continue
		}
		twice, ok := apply(t, tr, once, "tr(tr(x))")
		if !ok {
			continue
		}
		if d := cmp.Diff(once, twice, CmpOptions()); d != "" {
			t.Errorf("Idempotent: record %q: tr(tr(x)) differs from tr(x) (-once +twice):\n%s", x.Key, d)
		}
	}
}

// NoMutation checks that tr does not modify its input: not the Fields
// map, and not any map or slice nested in a value. Each record is deep-copied
// ([concord.Record.Clone]) before tr sees it, so the records passed in are
// never modified even by a faulty tr. Errors from tr are ignored: a
// transformer must not modify a record it rejects either. The comparison is
// exact (an int replaced by an equal float is a modification).
func NoMutation(t testing.TB, tr transform.Transformer, recs ...concord.Record) {
	t.Helper()
	if len(recs) == 0 {
		t.Errorf("transformtest.NoMutation: no records")
	}
	for _, x := range recs {
		in, before := x.Clone(), x.Clone()
		_, _ = tr.Transform(t.Context(), in)
		if d := cmp.Diff(before, in); d != "" {
			t.Errorf("NoMutation: record %q: the transformer modified its input (-before +after):\n%s", x.Key, d)
		}
	}
}

// apply runs tr on rec and reports an error as a failure naming what was
// computed.
func apply(t testing.TB, tr transform.Transformer, rec concord.Record, what string) (concord.Record, bool) {
	t.Helper()
	out, err := tr.Transform(t.Context(), rec)
	if err != nil {
		t.Errorf("record %q: %s: %v", rec.Key, what, err)
		return concord.Record{}, false
	}
	return out, true
}

// shared returns a and b restricted to the fields both have.
func shared(a, b concord.Record) (concord.Record, concord.Record) {
	af := make(map[string]concord.Value)
	bf := make(map[string]concord.Value)
	for name, v := range a.Fields {
		if w, ok := b.Fields[name]; ok {
			af[name], bf[name] = v, w
		}
	}
	a.Fields, b.Fields = af, bf
	return a, b
}
