package sync_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/audit/patterns"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// The classic "address reverted": the customer changes the address in the
// portal; the write to the warehouse fails and is retried; meanwhile a
// warehouse job saves the old address again, later; last-writer-wins takes
// the job's value and the portal is set back. The trace shows when and
// where each value came from.
func TestTraceShowsWhyAnAddressReverted(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"},
		withGroups(map[string][]string{"addr": {"street", "zip"}}), withResolver(resolve.LastWriterWins()))
	portal, wh := r.sys["portal"], r.sys["warehouse"]
	portal.Edit("c1", map[string]any{"street": "1 Old Rd", "zip": "AB1"})
	r.settle()

	portal.EditBy("customer", "c1", map[string]any{"street": "2 New St", "zip": "CD2"})
	wh.FailNext(fake.OpApply, 1, connector.Transient(errors.New("warehouse: 503 busy")))
	r.cycle() // the write to the warehouse fails
	// Before the retry, a warehouse job re-keys the address it has (the
	// old one, as "Road"), later than the customer's change.
	wh.EditBy("nightly-job", "c1", map[string]any{"street": "1 Old Road", "zip": "AB1"})
	r.settle()
	r.requireAll("c1", map[string]any{"street": "1 Old Road", "zip": "AB1"})

	tr, err := r.engine.Trace(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	// The story, in order.
	want := []struct {
		kind   audit.Kind
		system concord.SystemID
		by     string
	}{
		{audit.EditObserved, "portal", "customer"},
		{audit.WriteFailed, "warehouse", ""},
		{audit.EditObserved, "warehouse", "nightly-job"},
		{audit.ConflictDetected, "", ""},
		{audit.MergeDecided, "warehouse", ""},
		{audit.WriteSucceeded, "portal", ""},
	}
	i := 0
	for _, ev := range tr.Steps {
		if i < len(want) && ev.Kind == want[i].kind && (want[i].system == "" || ev.System == want[i].system) &&
			(want[i].by == "" || ev.By == want[i].by) && (ev.Kind != audit.EditObserved || ev.Unit == "addr") &&
			(ev.Kind != audit.MergeDecided || ev.Rule == resolve.RuleLastWriterWins) {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("the trace lacks step %d (%+v) in order:\n%s", i, want[i], tr)
	}
	text := tr.String()
	for _, s := range []string{`portal edit.observed addr: {street:"1 Old Rd" zip:"AB1"} → {street:"2 New St" zip:"CD2"}`,
		"by customer", "warehouse write.failed", "warehouse: 503 busy", "by nightly-job", "rule last-writer-wins"} {
		if !strings.Contains(text, s) {
			t.Errorf("the trace text lacks %q:\n%s", s, text)
		}
	}
	for i := 1; i < len(tr.Steps); i++ {
		if tr.Steps[i].Seq <= tr.Steps[i-1].Seq {
			t.Fatalf("steps out of order: %d after %d", tr.Steps[i].Seq, tr.Steps[i-1].Seq)
		}
	}
	b, err := json.Marshal(tr)
	if err != nil || !strings.Contains(string(b), `"key":"c1"`) {
		t.Fatalf("JSON trace: %s, %v", b, err)
	}

	x, err := r.engine.Explain(ctx, "c1", "street")
	if err != nil {
		t.Fatal(err)
	}
	if x.Unit != "addr" || x.Value != "1 Old Road" || x.Winner != "warehouse" || x.Rule != string(resolve.RuleLastWriterWins) || x.Decision == nil {
		t.Fatalf("Explain: %+v", x)
	}
	for _, s := range x.Systems {
		if s.State != "in sync" {
			t.Errorf("Explain: %s is %q; want in sync", s.System, s.State)
		}
	}
	if s := x.String(); !strings.Contains(s, "set by warehouse under rule last-writer-wins") {
		t.Errorf("Explain text:\n%s", s)
	}
}

func TestPlanWritesNothingAndRepairWritesAgain(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"crm", "erp"}, func(c *recsync.Config) {
		c.Gates = []resolve.Gate{resolve.RequireApproval("limit")}
	})
	crm, erp := r.sys["crm"], r.sys["erp"]
	crm.Edit("a1", map[string]any{"name": "Ada", "limit": 100})
	crm.Edit("a2", map[string]any{"name": "Bob"})
	p, err := r.engine.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Patches["erp"]); n != 2 || len(p.Holds) != 1 || p.Holds[0].Unit != "limit" {
		t.Fatalf("plan:\n%s\nwant 2 patches to erp and the limit held", p)
	}
	if erp.Len() != 0 || erp.Calls(fake.OpApply) != 0 {
		t.Fatal("Plan wrote to a system")
	}
	if h, _ := r.engine.Holds(ctx); len(h) != 0 {
		t.Fatalf("Plan committed holds: %+v", h)
	}
	if !strings.Contains(p.String(), "create a1") {
		t.Errorf("plan text:\n%s", p)
	}
	// The real cycle does what the plan said.
	r.cycle()
	if erp.Len() != 2 {
		t.Fatalf("after the cycle erp has %d records; want 2", erp.Len())
	}

	// The ERP drifts without a change the feed reports (restored from
	// a backup, say): Repair has it written again.
	erp.Edit("a2", map[string]any{"name": "B0b"})
	r.settle()
	if err := r.engine.Repair(ctx, "a2", "erp", "ops@example.com", "reconciliation found B0b"); err != nil {
		t.Fatal(err)
	}
	if err := r.engine.Repair(ctx, "zz", "erp", "ops@example.com", "x"); !errors.Is(err, recsync.ErrNoRecord) {
		t.Fatalf("Repair of an unknown record: %v", err)
	}
	r.audit.Require(t, audittestMatch(audit.RepairRequested, "erp", "a2"))
	if rep := r.cycle(); rep.Systems["erp"].Writes != 1 {
		t.Fatalf("after Repair the cycle wrote %d patches to erp; want a2 written again", rep.Systems["erp"].Writes)
	}
	if got := erp.Applied(); got[len(got)-1].Key != "a2" || got[len(got)-1].Set["name"] != "B0b" {
		t.Fatalf("last patch to erp: %+v; want a2 with every canonical value", got[len(got)-1])
	}
}

func audittestMatch(k audit.Kind, s concord.SystemID, key string) audittest.Match {
	return audittest.Match{Kind: k, System: s, Key: key}
}

func TestFailurePatternsFromTheAuditLog(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"crm", "warehouse"})
	for i := range 120 {
		region := "us"
		if i%10 == 0 {
			region = "eu"
		}
		key := fmt.Sprintf("%s-%03d", region, i)
		if region == "eu" {
			r.sys["warehouse"].FailKey(key, connector.Transient(errors.New("warehouse: EU data center down")))
		}
		r.sys["crm"].Edit(key, map[string]any{"name": key})
	}
	for range 3 {
		r.cycle()
	}
	region := func(ev audit.Event) map[string]string {
		if ev.Key == "" {
			return nil
		}
		return map[string]string{"region": ev.Key[:2]}
	}
	ps, err := r.engine.FailurePatterns(ctx, region, patterns.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatal("no pattern found")
	}
	top := fmt.Sprint(ps[0].Items)
	if !strings.Contains(top, "region eu") && !strings.Contains(top, "region=eu") {
		t.Fatalf("top pattern %s (%s); want the EU region", top, ps[0].Text)
	}
	t.Log(ps[0].Text)
}
