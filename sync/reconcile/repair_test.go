package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
)

// fakeEngine is what the engine will be to reconcile: it knows canonical
// values and, asked to repair, writes them to the system's records.
type fakeEngine struct {
	canonical map[string]map[string]concord.Value
	systems   map[concord.SystemID]*sliceScanner
	calls     []string
	fail      map[string]error
}

func (e *fakeEngine) Known(_ context.Context, keys []string) (map[string]KeyState, error) {
	out := map[string]KeyState{}
	for _, k := range keys {
		if c, ok := e.canonical[k]; ok {
			out[k] = KeyState{Canonical: c}
		}
	}
	return out, nil
}

func (e *fakeEngine) Repair(_ context.Context, key string, system concord.SystemID, person, reason string) error {
	e.calls = append(e.calls, key+"@"+string(system)+" by "+person+": "+reason)
	if err := e.fail[key]; err != nil {
		return err
	}
	s := e.systems[system]
	for i, r := range s.recs {
		if r.Key == key {
			s.recs[i] = concord.Record{Key: key, Fields: concord.CloneFields(e.canonical[key])}
			return nil
		}
	}
	s.recs = append(s.recs, concord.Record{Key: key, Fields: concord.CloneFields(e.canonical[key])})
	return nil
}

// Repairs through the engine make the systems agree: a second check finds
// nothing left but what needs a person.
func TestApplyRepairsThenRecheck(t *testing.T) {
	a := scanner(rec("k1", "x", 1), rec("k2", "x", 1), rec("k3", "x", 1))
	b := scanner(rec("k1", "x", 2), rec("k3", "x", 3))
	e := &fakeEngine{
		canonical: map[string]map[string]concord.Value{"k1": {"x": 1}, "k2": {"x": 1}},
		systems:   map[concord.SystemID]*sliceScanner{"a": a, "b": b},
	}
	cfg := two(a, b)
	cfg.Knowledge = e
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ApplyRepairs(context.Background(), rep.Plan, e, "ops@example.com", "ticket 42")
	if err != nil || n != 2 {
		t.Fatalf("ApplyRepairs = %d, %v; want 2, nil", n, err)
	}
	want := []string{
		"k1@b by ops@example.com: ticket 42 (reconcile: x from the canonical value)",
		"k2@b by ops@example.com: ticket 42 (reconcile: (record) from the canonical value)",
	}
	if diff := cmp.Diff(want, e.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	rep, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"k3/x=conflicting"}, ids(rep)); diff != "" {
		t.Errorf("after repair (-want +got):\n%s", diff)
	}
}

func TestApplyRepairsFailures(t *testing.T) {
	plan := Plan{Repairs: []Repair{
		{Key: "k1", System: "a", Fixes: []Fix{{Field: "x", Rule: RuleCanonical}}},
		{Key: "k2", System: "a", Fixes: []Fix{{Field: "x", Rule: RuleCanonical}}},
		{Key: "k3", System: "b", Fixes: []Fix{{Field: "x", Rule: RuleSystemOfRecord, Winner: "a"}}},
	}}
	boom := errors.New("boom")
	var seen []string
	r := RepairerFunc(func(_ context.Context, key string, _ concord.SystemID, _, _ string) error {
		seen = append(seen, key)
		switch key {
		case "k1":
			return boom
		case "k2":
			panic("engine exploded")
		}
		return nil
	})
	n, err := ApplyRepairs(context.Background(), plan, r, "ops", "why")
	if n != 1 || len(seen) != 3 {
		t.Fatalf("applied %d of %v; want 1 applied, all 3 tried", n, seen)
	}
	var re *RepairError
	if !errors.Is(err, ErrRepair) || !errors.Is(err, boom) || !errors.Is(err, ErrPanic) || !errors.As(err, &re) || re.Key != "k1" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(err.Error(), `record "k2" in system "a"`) {
		t.Errorf("err %q does not name k2", err)
	}
	if _, err := ApplyRepairs(context.Background(), plan, r, "", "why"); !errors.Is(err, ErrConfig) {
		t.Errorf("no person: %v", err)
	}
	if _, err := ApplyRepairs(context.Background(), plan, nil, "p", "why"); !errors.Is(err, ErrConfig) {
		t.Errorf("nil repairer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seen = nil
	if n, err := ApplyRepairs(ctx, plan, r, "p", "why"); n != 0 || len(seen) != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %d, %v, %v", n, seen, err)
	}
}

func TestCountCheck(t *testing.T) {
	active := func(r concord.Record) bool { return r.Fields["active"] == true }
	a := scanner(rec("1", "active", true), rec("2", "active", false), rec("3", "active", true))
	b := scanner(rec("1", "active", true), rec("3", "active", true), rec("4", "active", false))
	c, err := CountCheck(context.Background(), Side{System: "crm", Scanner: a}, Side{System: "mkt", Scanner: b}, active)
	if err != nil || !c.Equal() || c.Selected != [2]int64{2, 2} || c.Checked != [2]int64{3, 3} {
		t.Fatalf("CountCheck = %+v, %v", c, err)
	}
	b.recs = b.recs[:1]
	c, err = CountCheck(context.Background(), Side{System: "crm", Scanner: a}, Side{System: "mkt", Scanner: b}, active)
	if !errors.Is(err, ErrCountMismatch) || !strings.Contains(err.Error(), `"crm" has 2, "mkt" has 1`) || c.Equal() {
		t.Errorf("mismatch: %+v, %v", c, err)
	}
	if _, err := CountCheck(context.Background(), Side{System: "crm", Scanner: a}, Side{System: "mkt", Scanner: scanner()}, nil); !errors.Is(err, ErrNothingChecked) {
		t.Errorf("empty side: %v", err)
	}
	c, err = CountCheck(context.Background(), Side{System: "crm", Scanner: a}, Side{System: "mkt", Scanner: a}, nil)
	if err != nil || c.Selected != [2]int64{3, 3} {
		t.Errorf("nil filter: %+v, %v", c, err)
	}
	_, err = CountCheck(context.Background(), Side{System: "crm", Scanner: a}, Side{System: "mkt", Scanner: b},
		func(concord.Record) bool { panic("filter exploded") })
	var se *SideError
	if !errors.Is(err, ErrPanic) || !errors.As(err, &se) || se.Key != "1" {
		t.Errorf("panicking filter: %v", err)
	}
	if _, err := CountCheck(context.Background(), Side{System: "x", Scanner: a}, Side{System: "x", Scanner: b}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("same names: %v", err)
	}
}
