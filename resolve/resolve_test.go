package resolve_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

type resolveCase struct {
	name   string
	r      resolve.Resolver
	c      resolve.Conflict
	want   result
	reason string // a substring the Reason must contain, if set
}

func runResolveCases(t *testing.T, cases []resolveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := mustResolve(t, tc.r, tc.c)
			if diff := cmp.Diff(tc.want, resultOf(t, tc.c, d)); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			assert.Contains(t, d.Reason, tc.reason, "Reason")
		})
	}
}

func TestLastWriterWins(t *testing.T) {
	lww := resolve.LastWriterWins()
	const rule = resolve.RuleLastWriterWins
	var (
		portalLate   = edit("portal", ver(1, 1), t1, "late")
		whEarly      = edit("warehouse", ver(2, 1), t0, "early")
		billing      = edit("billing", ver(3, 1), t0, "b")
		portal       = edit("portal", ver(1, 1), t0, "p")
		portalCanon  = canon("portal", ver(1, 1), t0, "old")
		portalEdit   = edit("portal", ver(2, 1), t0, "new")
		portalEditV1 = edit("portal", concord.MustVersion(concord.Dot{Actor: 1, Counter: 3}), t0, "x")
		portalEditV2 = edit("portal", concord.MustVersion(concord.Dot{Actor: 1, Counter: 2}, concord.Dot{Actor: 2, Counter: 1}), t0, "y")
		noTime       = edit("warehouse", ver(2, 1), time.Time{}, "no clock")
	)
	runResolveCases(t, []resolveCase{
		{name: "latest wins whatever the name", r: lww, c: conflict("f", whEarly, portalLate),
			want: picked(portalLate, rule), reason: `"portal" modified it last, at 2024-05-01T10:01:00Z (record time)`},
		{name: "latest wins over canonical", r: lww, c: conflict("f", canon("warehouse", ver(2, 1), t1, "c"), edit("portal", ver(1, 1), t0, "e")),
			want: picked(canon("warehouse", ver(2, 1), t1, "c"), rule)},
		{name: "equal times: smallest system name", r: lww, c: conflict("f", portal, billing),
			want: picked(billing, rule), reason: "tied with 1 other"},
		{name: "equal instants in different zones are a tie", r: lww,
			c:    conflict("f", edit("billing", ver(3, 1), t0CEST, "b"), portal),
			want: picked(billing, rule)},
		{name: "same system and time: edit beats canonical", r: lww, c: conflict("f", portalCanon, portalEdit),
			want: picked(portalEdit, rule)},
		{name: "same system and time, two edits: smaller version in dot order", r: lww, c: conflict("f", portalEditV1, portalEditV2),
			want: picked(portalEditV2, rule)},
		{name: "shorter version that is a prefix comes first", r: lww,
			c: conflict("f",
				edit("portal", concord.MustVersion(concord.Dot{Actor: 1, Counter: 2}, concord.Dot{Actor: 2, Counter: 1}), t0, "long"),
				edit("portal", concord.MustVersion(concord.Dot{Actor: 1, Counter: 2}), t0, "short")),
			want: picked(edit("portal", concord.MustVersion(concord.Dot{Actor: 1, Counter: 2}), t0, ""), rule)},
		{name: "a zero time makes it undecided", r: lww, c: conflict("f", portalLate, noTime), want: undecided},
		{name: "a zero canonical time makes it undecided", r: lww, c: conflict("f", canon("portal", ver(1, 1), time.Time{}, "c"), portalLate), want: undecided},
		{name: "deletes take part", r: lww, c: conflict(resolve.RecordUnit, del("portal", ver(1, 1), t1), whEarly),
			want: picked(del("portal", ver(1, 1), t1), rule)},
	})
}

func TestPriority(t *testing.T) {
	p := resolve.Priority("erp", "crm", "portal")
	const rule = resolve.RulePriority
	var (
		erp       = edit("erp", ver(1, 1), t0, "e")
		crm       = edit("crm", ver(2, 1), t1, "c")
		portal    = edit("portal", ver(3, 1), t1, "p")
		other     = edit("aaa-unlisted", ver(4, 1), t1, "o")
		erpCanon  = canon("erp", ver(1, 1), t1, "old")
		erpEdit   = edit("erp", ver(2, 1), t0, "new")
		crmCanon  = canon("crm", ver(2, 1), t0, "c")
		erpEditV2 = edit("erp", concord.MustVersion(concord.Dot{Actor: 1, Counter: 1}, concord.Dot{Actor: 5, Counter: 1}), t0, "x")
	)
	runResolveCases(t, []resolveCase{
		{name: "first listed wins", r: p, c: conflict("f", portal, crm, erp), want: picked(erp, rule), reason: `"erp" ranks highest in erp > crm > portal`},
		{name: "unlisted systems never win", r: p, c: conflict("f", other, portal), want: picked(portal, rule)},
		{name: "listed canonical beats lower edit", r: p, c: conflict("f", crmCanon, portal), want: picked(crmCanon, rule), reason: `"crm" (canonical)`},
		{name: "same system: edit beats canonical", r: p, c: conflict("f", erpCanon, erpEdit), want: picked(erpEdit, rule)},
		{name: "same system, two edits: smaller version", r: p, c: conflict("f", erpEditV2, erpEdit), want: picked(erpEditV2, rule)},
		{name: "no listed system", r: p, c: conflict("f", other, edit("zzz", ver(5, 1), t0, "z")), want: undecided},
		{name: "empty priority list", r: resolve.Priority(), c: conflict("f", erp, crm), want: undecided},
	})
}

func TestSystemOfRecord(t *testing.T) {
	owners := map[string]concord.SystemID{"stock": "warehouse", resolve.RecordUnit: "erp"}
	s := resolve.SystemOfRecord(owners)
	const rule = resolve.RuleSystemOfRecord
	var (
		wh       = edit("warehouse", ver(1, 1), t0, 5)
		whCanon  = canon("warehouse", ver(1, 1), t1, 7)
		whEdit   = edit("warehouse", ver(2, 1), t0, 6)
		portal   = edit("portal", ver(3, 1), t1, 9)
		crm      = edit("crm", ver(4, 1), t1, 8)
		crmCanon = canon("crm", ver(4, 1), t0, 4)
	)
	runResolveCases(t, []resolveCase{
		{name: "owner's edit wins", r: s, c: conflict("stock", portal, wh), want: picked(wh, rule), reason: `"warehouse" owns "stock"`},
		{name: "owner's canonical value wins over a non-owner edit", r: s, c: conflict("stock", whCanon, portal), want: picked(whCanon, rule)},
		{name: "owner's edit wins over owner's canonical value", r: s, c: conflict("stock", whCanon, whEdit, portal), want: picked(whEdit, rule)},
		{name: "owner absent: canonical stays", r: s, c: conflict("stock", crmCanon, portal),
			want: picked(crmCanon, rule), reason: `"warehouse" owns "stock" and has not edited it`},
		{name: "owner absent, no canonical", r: s, c: conflict("stock", crm, portal), want: undecided},
		{name: "unowned unit", r: s, c: conflict("price", wh, portal), want: undecided},
		{name: "record unit owned", r: s, c: conflict(resolve.RecordUnit, del("portal", ver(3, 1), t1), edit("erp", ver(5, 1), t0, nil)),
			want: picked(edit("erp", ver(5, 1), t0, nil), rule), reason: `"erp" owns "(record)"`},
	})

	t.Run("owners map is copied", func(t *testing.T) {
		owners["price"] = "portal"
		delete(owners, "stock")
		sys, ok := s.Owner("stock")
		assert.True(t, ok, `Owner("stock") is owned`)
		assert.Equal(t, concord.SystemID("warehouse"), sys, `Owner("stock")`)
		sys, ok = s.Owner("price")
		assert.False(t, ok, `Owner("price") = %q; want unowned`, sys)
	})
}

func TestSystemOfRecordCheck(t *testing.T) {
	s := resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"})
	change := func(unit string, sys concord.SystemID, resolved bool) resolve.Change {
		return resolve.Change{Key: "sku-1", Unit: unit, Fields: []string{unit}, System: sys,
			From: map[string]concord.Value{unit: 1}, To: map[string]concord.Value{unit: 2}, Resolved: resolved}
	}
	for _, tc := range []struct {
		name string
		c    resolve.Change
		want resolve.Verdict
	}{
		{"owner", change("stock", "warehouse", false),
			resolve.Verdict{Outcome: resolve.Accept, Rule: "system-of-record", Reason: `"warehouse" owns "stock"`}},
		{"non-owner", change("stock", "portal", false),
			resolve.Verdict{Outcome: resolve.Refuse, Rule: "system-of-record", Reason: `"warehouse" owns "stock"; "portal" may not change it`}},
		{"resolution for a non-owner", change("stock", "portal", true),
			resolve.Verdict{Outcome: resolve.Refuse, Rule: "system-of-record", Reason: `"warehouse" owns "stock"; "portal" may not change it`}},
		{"unowned", change("price", "portal", false), resolve.Verdict{Outcome: resolve.Accept}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustCheck(t, s, tc.c)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

func mustCheck(tb testing.TB, g resolve.Gate, c resolve.Change) resolve.Verdict {
	tb.Helper()
	v, err := g.Check(context.Background(), c)
	if err != nil {
		tb.Fatalf("Check: %v", err)
	}
	return v
}

func TestHold(t *testing.T) {
	c := conflict("iban", edit("crm", ver(1, 1), t0, "DE1"), edit("erp", ver(2, 1), t1, "DE2"))
	for _, tc := range []struct {
		r      *resolve.HoldResolver
		reason string
	}{
		{resolve.Hold("bank details need a person"), "bank details need a person"},
		{resolve.Hold(""), "held for a person"},
		{&resolve.HoldResolver{}, "held for a person"},
	} {
		d := mustResolve(t, tc.r, c)
		want := resolve.Decision{Outcome: resolve.HoldForPerson, Rule: resolve.RuleHold, Reason: tc.reason}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Errorf("decision (-want +got):\n%s", diff)
		}
	}
}

func TestDeleteAndUpdateWins(t *testing.T) {
	var (
		delP   = del("portal", ver(1, 1), t1)
		delW   = del("warehouse", ver(2, 1), t0)
		crm    = edit("crm", ver(3, 1), t0, "a")
		erp    = edit("erp", ver(4, 1), t0, "a")
		erpB   = edit("erp", ver(4, 1), t0, "b")
		erpNil = edit("erp", ver(4, 1), t0, nil)
		crmCan = canon("crm", ver(5, 1), t0, "a")
		noVals = resolve.Candidate{System: "erp", Version: ver(4, 1), Modified: t0}
	)
	dw, uw := resolve.DeleteWins(), resolve.UpdateWins()
	const dr, ur = resolve.RuleDeleteWins, resolve.RuleUpdateWins
	runResolveCases(t, []resolveCase{
		{name: "delete wins", r: dw, c: conflict(resolve.RecordUnit, crm, delP), want: picked(delP, dr), reason: `"portal" deleted the record`},
		{name: "two deletes: smallest system", r: dw, c: conflict(resolve.RecordUnit, delW, crm, delP), want: picked(delP, dr)},
		{name: "delete wins: no delete", r: dw, c: conflict(resolve.RecordUnit, crm, erpB), want: undecided},
		{name: "delete wins: field unit", r: dw, c: conflict("f", crm, delP), want: undecided},
		{name: "update wins", r: uw, c: conflict(resolve.RecordUnit, delP, crm), want: picked(crm, ur), reason: `"crm" kept the record`},
		{name: "update wins: equal updates, smallest system", r: uw, c: conflict(resolve.RecordUnit, erp, delP, crm), want: picked(crm, ur)},
		{name: "update wins: equal update and canonical, edit first", r: uw, c: conflict(resolve.RecordUnit, crmCan, delP, crm), want: picked(crm, ur)},
		{name: "update wins: different updates", r: uw, c: conflict(resolve.RecordUnit, erpB, delP, crm), want: undecided},
		{name: "update wins: nil is not absent", r: uw, c: conflict(resolve.RecordUnit, noVals, delP, erpNil), want: undecided},
		{name: "update wins: only deletes", r: uw, c: conflict(resolve.RecordUnit, delP, delW), want: undecided},
		{name: "update wins: no delete", r: uw, c: conflict(resolve.RecordUnit, crm, erpB), want: undecided},
		{name: "update wins: field unit", r: uw, c: conflict("f", crm, delP), want: undecided},
	})
}

func TestEmptyConflictIsAnError(t *testing.T) {
	c := resolve.Conflict{Key: "order-9", Unit: "stock"}
	for _, r := range []resolve.Resolver{
		resolve.LastWriterWins(), resolve.Priority("erp"), resolve.DeleteWins(), resolve.UpdateWins(),
		resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "erp"}),
	} {
		_, err := r.Resolve(context.Background(), c)
		require.ErrorIs(t, err, resolve.ErrNoCandidates, "%T", r)
		var ue *resolve.UnitError
		require.ErrorAs(t, err, &ue, "%T", r)
		assert.Equal(t, "order-9", ue.Key, "%T", r)
		assert.Equal(t, "stock", ue.Unit, "%T", r)
	}
}

func TestConstructorsPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"nil chain member", func() { resolve.Chain(resolve.Hold(""), nil) }},
		{"nil Func chain member", func() { resolve.Chain(resolve.Func(nil)) }},
		{"nil per-unit resolver", func() { resolve.PerUnit(map[string]resolve.Resolver{"f": nil}, nil) }},
		{"nil Func fallback", func() { resolve.PerUnit(nil, resolve.Func(nil)) }},
		{"empty owner", func() { resolve.SystemOfRecord(map[string]concord.SystemID{"f": ""}) }},
		{"empty unit", func() { resolve.SystemOfRecord(map[string]concord.SystemID{"": "erp"}) }},
		{"empty priority system", func() { resolve.Priority("erp", "") }},
		{"duplicate priority system", func() { resolve.Priority("erp", "crm", "erp") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}
