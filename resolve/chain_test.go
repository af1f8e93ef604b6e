package resolve_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	"github.com/google/go-cmp/cmp"
)

// both is a member that is a Resolver and a Gate.
type both struct {
	resolve.Func
	resolve.GateFunc
}

// fixed returns a resolver that always answers d.
func fixed(d resolve.Decision) resolve.Func {
	return func(context.Context, resolve.Conflict) (resolve.Decision, error) { return d, nil }
}

// notCalled returns a resolver and gate that fail the test when asked.
func notCalled(tb testing.TB) both {
	return both{
		Func: func(context.Context, resolve.Conflict) (resolve.Decision, error) {
			tb.Error("Resolve called after the chain had decided")
			return resolve.Decision{}, nil
		},
		GateFunc: func(context.Context, resolve.Change) (resolve.Verdict, error) {
			tb.Error("Check called after a gate had decided")
			return resolve.Verdict{}, nil
		},
	}
}

func verdict(o resolve.VerdictOutcome, rule resolve.Rule) resolve.GateFunc {
	return func(context.Context, resolve.Change) (resolve.Verdict, error) {
		return resolve.Verdict{Outcome: o, Rule: rule}, nil
	}
}

var errBoom = errors.New("boom")

func TestChainResolve(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"})
	standard := resolve.Chain(sor, resolve.LastWriterWins(), resolve.Hold("nobody knows"))
	var (
		wh     = edit("warehouse", ver(1, 1), t0, 1)
		portal = edit("portal", ver(2, 1), t1, 2)
		crm    = edit("crm", ver(3, 1), t0, 3)
		noTime = resolve.Candidate{System: "crm", Version: ver(3, 1)} // no Modified: LWW is undecided
	)
	runResolveCases(t, []resolveCase{
		{name: "first rule decides", r: standard, c: conflict("stock", portal, wh), want: picked(wh, resolve.RuleSystemOfRecord)},
		{name: "undecided falls through", r: standard, c: conflict("price", wh, portal), want: picked(portal, resolve.RuleLastWriterWins)},
		{name: "to the last", r: standard, c: conflict("price", wh, portal, noTime),
			want: result{Outcome: "hold", Rule: resolve.RuleHold}, reason: "nobody knows"},
		{name: "all undecided", r: resolve.Chain(sor, resolve.Priority("erp")), c: conflict("price", wh, crm), want: undecided},
		{name: "empty chain", r: resolve.Chain(), c: conflict("price", wh, crm), want: undecided},
		{name: "later members are not asked", r: resolve.Chain(fixed(resolve.Decision{}), resolve.Priority("crm"), notCalled(t)),
			c: conflict("price", wh, crm), want: picked(crm, resolve.RulePriority)},
		{name: "merge passes through", r: resolve.Chain(fixed(resolve.Decision{Outcome: resolve.Merge, Rule: "sum"}), notCalled(t)),
			c: conflict("price", wh, crm), want: result{Outcome: "merge", Rule: "sum"}},
		{name: "nested chains", r: resolve.Chain(resolve.Chain(resolve.Priority("erp")), resolve.Chain(resolve.Priority("crm"))),
			c: conflict("price", wh, crm), want: picked(crm, resolve.RulePriority)},
	})

	t.Run("members are copied", func(t *testing.T) {
		rs := []resolve.Resolver{resolve.Priority("crm")}
		ch := resolve.Chain(rs...)
		rs[0] = resolve.Priority("warehouse")
		c := conflict("price", wh, crm)
		if diff := cmp.Diff(picked(crm, resolve.RulePriority), resultOf(t, c, mustResolve(t, ch, c))); diff != "" {
			t.Errorf("decision (-want +got):\n%s", diff)
		}
	})
}

func TestChainResolveErrors(t *testing.T) {
	fail := resolve.Func(func(context.Context, resolve.Conflict) (resolve.Decision, error) { return resolve.Decision{}, errBoom })
	c := conflict("price", edit("crm", ver(1, 1), t0, 1), edit("erp", ver(2, 1), t0, 2))
	for _, tc := range []struct {
		name    string
		r       resolve.Resolver
		is      error
		message string
	}{
		{"member error", resolve.Chain(resolve.Priority("x"), fail, notCalled(t)), errBoom,
			`resolve: record "order-1" unit "price": chain member 1 (resolve.Func): boom`},
		{"nested member error is wrapped once", resolve.Chain(resolve.Chain(resolve.Priority("x"), fail)), errBoom,
			`resolve: record "order-1" unit "price": chain member 1 (resolve.Func): boom`},
		{"pick out of range", resolve.Chain(fixed(resolve.Decision{Outcome: resolve.Pick, Winner: 2, Rule: "mine"})), resolve.ErrBadDecision,
			`resolve: record "order-1" unit "price": chain member 0 (resolve.Func): invalid decision: rule "mine" picked candidate 2 of 2`},
		{"negative pick", resolve.Chain(fixed(resolve.Decision{Outcome: resolve.Pick, Winner: -1})), resolve.ErrBadDecision, ""},
		{"unknown outcome", resolve.Chain(fixed(resolve.Decision{Outcome: 9})), resolve.ErrBadDecision, ""},
		{"per-unit member error", resolve.PerUnit(map[string]resolve.Resolver{"price": fail}, nil), errBoom,
			`resolve: record "order-1" unit "price": boom`},
		{"per-unit around a chain is wrapped once", resolve.PerUnit(nil, resolve.Chain(fail)), errBoom,
			`resolve: record "order-1" unit "price": chain member 0 (resolve.Func): boom`},
		{"per-unit bad decision", resolve.PerUnit(nil, fixed(resolve.Decision{Outcome: resolve.Pick, Winner: 7})), resolve.ErrBadDecision, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.r.Resolve(context.Background(), c)
			if !errors.Is(err, tc.is) {
				t.Fatalf("Resolve = %+v, %v; want an error matching %v", d, err, tc.is)
			}
			ue, ok := errors.AsType[*resolve.UnitError](err)
			if !ok || ue.Key != "order-1" || ue.Unit != "price" {
				t.Errorf("error %v is not a *UnitError for order-1/price", err)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Errorf("error = %q; want %q", err, tc.message)
			}
		})
	}
}

func TestChainCheck(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"})
	holdAll := both{Func: fixed(resolve.Decision{}), GateFunc: verdict(resolve.HoldChange, "anomaly")}
	acceptAll := both{Func: fixed(resolve.Decision{}), GateFunc: verdict(resolve.Accept, "fine")}
	change := func(unit string, sys concord.SystemID) resolve.Change {
		return resolve.Change{Key: "sku-1", Unit: unit, Fields: []string{unit}, System: sys, To: map[string]concord.Value{unit: 1}}
	}
	for _, tc := range []struct {
		name string
		g    resolve.Gate
		c    resolve.Change
		want resolve.Verdict
	}{
		{"first objection wins", resolve.Chain(resolve.LastWriterWins(), sor, notCalled(t)), change("stock", "portal"),
			resolve.Verdict{Outcome: resolve.Refuse, Rule: "system-of-record", Reason: `"warehouse" owns "stock"; "portal" may not change it`}},
		{"accept lets the next gate look", resolve.Chain(sor, acceptAll, holdAll, notCalled(t)), change("stock", "warehouse"),
			resolve.Verdict{Outcome: resolve.HoldChange, Rule: "anomaly"}},
		{"non-gates are skipped", resolve.Chain(resolve.LastWriterWins(), resolve.Hold("x"), holdAll), change("price", "portal"),
			resolve.Verdict{Outcome: resolve.HoldChange, Rule: "anomaly"}},
		{"no objection", resolve.Chain(sor, acceptAll), change("price", "portal"), resolve.Verdict{Outcome: resolve.Accept}},
		{"no gates", resolve.Chain(resolve.LastWriterWins(), resolve.Priority("erp")), change("stock", "portal"), resolve.Verdict{Outcome: resolve.Accept}},
		{"nested chain", resolve.Chain(resolve.Chain(resolve.Chain(sor))), change("stock", "portal"),
			resolve.Verdict{Outcome: resolve.Refuse, Rule: "system-of-record", Reason: `"warehouse" owns "stock"; "portal" may not change it`}},
		{"per-unit member", resolve.Chain(resolve.PerUnit(map[string]resolve.Resolver{"stock": sor}, nil), holdAll), change("stock", "portal"),
			resolve.Verdict{Outcome: resolve.Refuse, Rule: "system-of-record", Reason: `"warehouse" owns "stock"; "portal" may not change it`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, mustCheck(t, tc.g, tc.c)); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("error", func(t *testing.T) {
		fail := both{Func: fixed(resolve.Decision{}), GateFunc: func(context.Context, resolve.Change) (resolve.Verdict, error) {
			return resolve.Verdict{}, errBoom
		}}
		_, err := resolve.Chain(acceptAll, fail, notCalled(t)).Check(context.Background(), change("stock", "portal"))
		if !errors.Is(err, errBoom) {
			t.Fatalf("Check error = %v; want boom", err)
		}
		want := `resolve: record "sku-1" unit "stock" change by "portal": chain member 1 (resolve_test.both): boom`
		if err.Error() != want {
			t.Errorf("error = %q; want %q", err, want)
		}
	})
}

func TestPerUnit(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"stock": "warehouse"})
	m := map[string]resolve.Resolver{"stock": sor, "iban": resolve.Hold("bank details")}
	routed := resolve.PerUnit(m, resolve.LastWriterWins())
	noFallback := resolve.PerUnit(m, nil)
	m["price"] = resolve.Priority("portal") // PerUnit copied m: no effect
	var (
		wh     = edit("warehouse", ver(1, 1), t0, 1)
		portal = edit("portal", ver(2, 1), t1, 2)
	)
	runResolveCases(t, []resolveCase{
		{name: "routed to system of record", r: routed, c: conflict("stock", portal, wh), want: picked(wh, resolve.RuleSystemOfRecord)},
		{name: "routed to hold", r: routed, c: conflict("iban", portal, wh), want: result{Outcome: "hold", Rule: resolve.RuleHold}, reason: "bank details"},
		{name: "fallback", r: routed, c: conflict("price", portal, wh), want: picked(portal, resolve.RuleLastWriterWins)},
		{name: "no fallback", r: noFallback, c: conflict("price", portal, wh), want: undecided},
		{name: "routed undecided is not passed to fallback", r: routed, c: conflict("stock", portal, edit("crm", ver(3, 1), t0, 3)), want: undecided},
	})

	change := func(unit string, sys concord.SystemID) resolve.Change {
		return resolve.Change{Key: "sku-1", Unit: unit, System: sys}
	}
	for _, tc := range []struct {
		name string
		g    resolve.Gate
		c    resolve.Change
		want resolve.VerdictOutcome
	}{
		{"gate of the routed resolver", routed, change("stock", "portal"), resolve.Refuse},
		{"routed resolver is no gate", routed, change("iban", "portal"), resolve.Accept},
		{"fallback gate", resolve.PerUnit(nil, sor), change("stock", "portal"), resolve.Refuse},
		{"nothing to route to", noFallback, change("price", "portal"), resolve.Accept},
	} {
		t.Run("check/"+tc.name, func(t *testing.T) {
			if got := mustCheck(t, tc.g, tc.c).Outcome; got != tc.want {
				t.Errorf("Check outcome = %v; want %v", got, tc.want)
			}
		})
	}

	t.Run("check error", func(t *testing.T) {
		fail := both{Func: fixed(resolve.Decision{}), GateFunc: func(context.Context, resolve.Change) (resolve.Verdict, error) {
			return resolve.Verdict{}, errBoom
		}}
		_, err := resolve.PerUnit(nil, fail).Check(context.Background(), change("stock", "portal"))
		ue, ok := errors.AsType[*resolve.UnitError](err)
		if !errors.Is(err, errBoom) || !ok || ue.System != "portal" || !strings.Contains(err.Error(), `"sku-1"`) {
			t.Errorf("Check error = %v; want a *UnitError naming sku-1, stock and portal, wrapping boom", err)
		}
	})
}
