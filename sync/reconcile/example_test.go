package reconcile_test

import (
	"context"
	"fmt"
	"os"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/sync/reconcile"
	"github.com/concordsync/concord/transform"
)

// A CRM and an ERP (which names its fields differently) compared in
// canonical form; the ERP owns credit limits.
func ExampleRun() {
	crm, erp := fake.New("crm"), fake.New("erp")
	crm.Edit("C-1", map[string]concord.Value{"name": "Ada", "credit_limit": 500})
	crm.Edit("C-2", map[string]concord.Value{"name": "Alan", "credit_limit": 100})
	crm.Edit("C-3", map[string]concord.Value{"name": "Grace", "credit_limit": 0})
	erp.Edit("C-1", map[string]concord.Value{"customer": "Ada", "limit": 500.0})
	erp.Edit("C-2", map[string]concord.Value{"customer": "Alan", "limit": 250})
	inbound := transform.MustMapping(transform.Rename("customer", "name"), transform.Rename("limit", "credit_limit")).Inbound()

	rep, err := reconcile.Run(context.Background(), reconcile.Config{
		Sides: []reconcile.Side{
			{System: "crm", Scanner: crm},
			{System: "erp", Scanner: erp, Transformer: inbound},
		},
		Owners: map[string]concord.SystemID{"credit_limit": "erp"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("checked:", rep.Checked["crm"], "in crm,", rep.Checked["erp"], "in erp")
	for _, d := range rep.Differences {
		fmt.Println(d.Key, d.Field, d.Class)
	}
	for _, r := range rep.Plan.Repairs {
		fmt.Printf("correct %s in %s: %s from %s\n", r.Key, r.System, r.Fixes[0].Field, r.Fixes[0].Winner)
	}
	for _, it := range rep.Plan.NeedsPerson {
		fmt.Println("needs a person:", it.Key, it.Field)
	}
	// Output:
	// checked: 3 in crm, 2 in erp
	// C-2 credit_limit conflicting
	// C-3 (record) missing
	// correct C-2 in crm: credit_limit from erp
	// needs a person: C-3 (record)
}

// A count check is one call: active customers in the CRM and in
// marketing.
func ExampleCountCheck() {
	crm, mkt := fake.New("crm"), fake.New("marketing")
	for _, k := range []string{"1", "2", "3"} {
		crm.Edit(k, map[string]concord.Value{"active": k != "2"})
		mkt.Edit(k, map[string]concord.Value{"active": true})
	}
	active := func(r concord.Record) bool { return r.Fields["active"] == true }

	c, err := reconcile.CountCheck(context.Background(),
		reconcile.Side{System: "crm", Scanner: crm}, reconcile.Side{System: "marketing", Scanner: mkt}, active)
	fmt.Println(c.Selected, err)
	// Output:
	// [2 3] reconcile: count check: counts differ: "crm" has 2, "marketing" has 3 (of 3 and 3 records)
}

// Repairs go through the engine (here a stand-in that prints), which
// writes the canonical values as an ordinary audited change.
func ExampleApplyRepairs() {
	a, b := fake.New("a"), fake.New("b")
	a.Edit("k", map[string]concord.Value{"email": "new@example.com"})
	b.Edit("k", map[string]concord.Value{"email": "old@example.com"})
	engine := reconcile.KnowledgeFunc(func(_ context.Context, keys []string) (map[string]reconcile.KeyState, error) {
		return map[string]reconcile.KeyState{"k": {
			Canonical: map[string]concord.Value{"email": "new@example.com"},
			Behind:    map[concord.SystemID][]string{"b": {"email"}}, // a write to b failed
		}}, nil
	})
	rep, err := reconcile.Run(context.Background(), reconcile.Config{
		Sides:     []reconcile.Side{{System: "a", Scanner: a}, {System: "b", Scanner: b}},
		Knowledge: engine,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	repairer := reconcile.RepairerFunc(func(_ context.Context, key string, system concord.SystemID, person, reason string) error {
		fmt.Printf("repair %s in %s for %s: %s\n", key, system, person, reason)
		return nil
	})
	n, err := reconcile.ApplyRepairs(context.Background(), rep.Plan, repairer, "ops@example.com", "monthly check")
	fmt.Println(rep.Differences[0].Class, n, err)
	// Output:
	// repair k in b for ops@example.com: monthly check (reconcile: email from the canonical value)
	// stale 1 <nil>
}

// The report renders as Markdown (and as JSON and self-contained HTML).
func ExampleReport_WriteMarkdown() {
	a, b := fake.New("a"), fake.New("b")
	a.Edit("k", map[string]concord.Value{"x": 1})
	b.Edit("k", map[string]concord.Value{"x": 2})
	rep, _ := reconcile.Run(context.Background(), reconcile.Config{
		Sides: []reconcile.Side{{System: "a", Scanner: a}, {System: "b", Scanner: b}}})
	_ = rep.WriteMarkdown(os.Stdout)
	// Output:
	// # Reconciliation: a, b
	//
	// | system | records checked |
	// |---|---:|
	// | a | 1 |
	// | b | 1 |
	//
	// 1 keys, 0 equal on every side, 1 differences.
	//
	// | field | conflicting | missing | stale | in-flight |
	// |---|---:|---:|---:|---:|
	// | **all** | 1 | 0 | 0 | 0 |
	// | x | 1 | 0 | 0 | 0 |
	//
	// ## Differences
	//
	// | key | field | class | values |
	// |---|---|---|---|
	// | k | x | conflicting | a: 1; b: 2 |
	//
	// ## Repair plan
	//
	// 0 repairs, 1 need a person, 0 in flight.
	//
	// | needs a person | field | why |
	// |---|---|---|
	// | k | x | nobody owns the field here and the engine has no canonical value |
}
