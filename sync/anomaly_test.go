package sync_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

func withAnomalies(rules ...resolve.AnomalyRule) rigOption {
	return func(c *recsync.Config) { c.Anomalies = rules }
}

func TestAPriceDropFrom100To1WaitsForAPersonWhileA5PercentChangePasses(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"erp", "shop"},
		withAnomalies(resolve.AnomalyRule{Field: "price", MaxChange: math.Inf(1), K: 5, MinSamples: 10}))
	erp := r.sys["erp"]

	// A history of ordinary price changes: a few percent either way.
	for i := range 30 {
		erp.Edit(fmt.Sprintf("p%02d", i), map[string]any{"price": 100.0})
	}
	r.settle()
	for i := range 30 {
		erp.Edit(fmt.Sprintf("p%02d", i), map[string]any{"price": 100.0 * (1 + float64(i%7-3)/100)})
	}
	r.settle()

	// A restart keeps what was learned: the statistics are in the store.
	r.engine = r.newEngine()

	erp.Edit("p01", map[string]any{"price": 1.0, "name": "Widget"}) // 100 → 1, with an ordinary edit beside it
	erp.Edit("p02", map[string]any{"price": 102.9})                 // about +5%
	r.settle()

	if got := r.fields("shop", "p02")["price"]; got != 102.9 {
		t.Errorf("shop p02 price = %v; want the 5%% change, passed", got)
	}
	if got := r.fields("shop", "p01"); got["price"] == 1.0 || got["name"] != "Widget" {
		t.Errorf("shop p01 = %v; want the price held and the name synced", got)
	}
	holds, err := r.engine.Holds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(holds) != 1 || holds[0].Key != "p01" || holds[0].Unit != "price" || holds[0].Rule != resolve.RuleAnomaly {
		t.Fatalf("holds %+v; want p01's price held by the anomaly rule", holds)
	}
	if !strings.Contains(holds[0].Reason, "−99%") || !strings.Contains(holds[0].Reason, "typical") {
		t.Errorf("hold reason %q; want the evidence (−99%%, typical ...)", holds[0].Reason)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictHeld, Key: "p01", Unit: "price"})

	// A person approves: the change reaches the shop.
	h := holds[0]
	pick := -1
	for i, c := range h.Candidates {
		if !c.Canonical {
			pick = i
		}
	}
	if err := r.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: pick,
		Person: "pricing@example.com", Reason: "clearance sale, confirmed"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	if got := r.fields("shop", "p01")["price"]; got != 1.0 {
		t.Errorf("after approval shop p01 price = %v; want 1", got)
	}
}

func twoFakes() recsync.Config {
	return recsync.Config{Systems: []recsync.System{{ID: "a", Connector: fake.New("a")}, {ID: "b", Connector: fake.New("b")}},
		Store: store.NewMemory()}
}

func TestAnomalyRulesAreChecked(t *testing.T) {
	defer func() {
		if recover() != nil {
			t.Fatal("New panicked")
		}
	}()
	for _, rules := range [][]resolve.AnomalyRule{
		{{Field: "price"}}, // no MaxChange
		{{Field: "price", MaxChange: 1}, {Field: "price", MaxChange: 2}},
	} {
		cfg := twoFakes()
		cfg.Anomalies = rules
		if _, err := recsync.New(cfg); err == nil {
			t.Errorf("New with anomaly rules %+v succeeded; want ErrConfig", rules)
		}
	}
}
