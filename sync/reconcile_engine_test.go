package sync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/sync/reconcile"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/suggest"
)

// drifted is a system whose scan shows a value the engine never saw: the
// erp restored c2 from a backup behind the feed's back.
type drifted struct{ *fake.System }

func (d drifted) Scan(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := d.System.Scan(ctx, cur, limit)
	for i, r := range b.Records {
		if r.Key == "c2" {
			r = r.Clone()
			r.Fields["name"] = "Bob (restored)"
			b.Records[i] = r
		}
	}
	return b, err
}

func TestReconcileWithTheEngineClassesAndRepairs(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"crm", "erp"})
	crm, erp := r.sys["crm"], r.sys["erp"]
	crm.Edit("c1", map[string]any{"name": "Ada"})
	crm.Edit("c2", map[string]any{"name": "Bob"})
	r.settle()
	// A write the ERP keeps refusing: the engine knows the ERP is behind.
	erp.FailKey("c1", connector.Transient(errors.New("erp: locked")))
	crm.Edit("c1", map[string]any{"name": "Ada L."})
	r.cycle()

	rep, err := reconcile.Run(ctx, reconcile.Config{
		Sides:     []reconcile.Side{{System: "crm", Scanner: crm}, {System: "erp", Scanner: drifted{erp}}},
		Knowledge: r.engine,
	})
	if err != nil {
		t.Fatal(err)
	}
	classes := map[string]reconcile.Class{}
	for _, d := range rep.Differences {
		classes[d.Key+"."+d.Field] = d.Class
	}
	if classes["c1.name"] != reconcile.Stale || classes["c2.name"] != reconcile.Conflicting || len(classes) != 2 {
		t.Fatalf("differences %v; want c1.name stale (a failing write) and c2.name conflicting (drift)", classes)
	}
	n, err := reconcile.ApplyRepairs(ctx, rep.Plan, r.engine, "ops@example.com", "nightly reconciliation")
	if err != nil || n == 0 {
		t.Fatalf("ApplyRepairs: %d, %v", n, err)
	}
	r.audit.Require(t, audittestMatch(audit.RepairRequested, "erp", "c2"))
	erp.ClearFailKey("c1")
	applied := len(erp.Applied())
	r.settle()
	var keys []string
	for _, p := range erp.Applied()[applied:] {
		keys = append(keys, p.Key)
	}
	if len(keys) < 2 {
		t.Fatalf("after the repairs the erp got patches for %v; want c1 and c2 written again", keys)
	}
	r.requireAll("c1", map[string]any{"name": "Ada L."})
}

func TestReconcileReportRedactsSensitiveFields(t *testing.T) {
	crm, erp := fake.New("crm"), fake.New("erp")
	crm.Edit("c1", map[string]any{"iban": "GB82WEST12345698765432"})
	erp.Edit("c1", map[string]any{"iban": "DE89370400440532013000"})
	rep, err := reconcile.Run(context.Background(), reconcile.Config{
		Sides:     []reconcile.Side{{System: "crm", Scanner: crm}, {System: "erp", Scanner: erp}},
		Sensitive: []string{"iban"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if len(rep.Differences) != 1 || strings.Contains(md.String(), "GB82") || strings.Contains(md.String(), "DE89") ||
		!strings.Contains(md.String(), "redacted") {
		t.Fatalf("report with a sensitive difference:\n%s", md.String())
	}
}

func TestReconcileReportSuggestsCleansing(t *testing.T) {
	states, err := suggest.Subdivisions("US")
	if err != nil {
		t.Fatal(err)
	}
	ix := suggest.New(suggest.Options{})
	ix.Add("state", states...)
	crm, erp := fake.New("crm"), fake.New("erp")
	crm.Edit("c1", map[string]any{"state": "Californa"})
	erp.Edit("c1", map[string]any{"state": "California"})
	rep, err := reconcile.Run(context.Background(), reconcile.Config{
		Sides:      []reconcile.Side{{System: "crm", Scanner: crm}, {System: "erp", Scanner: erp}},
		Suggesters: map[string]transform.Suggester{"state": ix},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Differences[0]
	if s := d.Suggestions["crm"]; len(s) == 0 || s[0].Value != "California" || len(d.Suggestions["erp"]) != 0 {
		t.Fatalf("suggestions %+v; want California for the crm's value only", d.Suggestions)
	}
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil || !strings.Contains(md.String(), `suggested: \"California\"`) && !strings.Contains(md.String(), `suggested: "California"`) {
		t.Fatalf("markdown (%v):\n%s", err, md.String())
	}
}
