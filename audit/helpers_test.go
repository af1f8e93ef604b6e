package audit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventCmp compares Events the way the engine does: Versions by Compare,
// field values by concord.EqualValues, times as instants (cmp uses
// time.Time.Equal).
var eventCmp = cmp.Options{
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b map[string]concord.Value) bool {
		if len(a) != len(b) {
			return false
		}
		for k, va := range a {
			vb, ok := b[k]
			if !ok || !concord.EqualValues(va, vb) {
				return false
			}
		}
		return true
	}),
}

// requireEvents fails t with a diff if got and want differ under eventCmp.
func requireEvents(t testing.TB, got, want []audit.Event) {
	t.Helper()
	if diff := cmp.Diff(want, got, eventCmp); diff != "" {
		t.Fatalf("events differ (-want +got):\n%s", diff)
	}
}

// cloneEvents returns a deep copy of events, to check that a sink left
// its input alone.
func cloneEvents(events []audit.Event) []audit.Event {
	out := make([]audit.Event, len(events))
	for i, ev := range events {
		ev.Fields = append([]string(nil), ev.Fields...)
		ev.From = concord.CloneFields(ev.From)
		ev.To = concord.CloneFields(ev.To)
		if ev.Candidates != nil {
			cands := make([]audit.Candidate, len(ev.Candidates))
			for j, c := range ev.Candidates {
				c.Values = concord.CloneFields(c.Values)
				cands[j] = c
			}
			ev.Candidates = cands
		}
		out[i] = ev
	}
	return out
}

var (
	t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	v1 = concord.MustVersion(concord.Dot{Actor: 1, Counter: 2}, concord.Dot{Actor: 3, Counter: 1})
	v2 = concord.MustVersion(concord.Dot{Actor: 2, Counter: 1})
)

// sampleEvents has one event of several kinds, with values of every JSON
// type that round-trips.
func sampleEvents() []audit.Event {
	return []audit.Event{
		{
			Time: t0, Kind: audit.EditObserved, Cycle: 7, System: "portal", Key: "cust-1",
			Unit: "address", Fields: []string{"city", "street"},
			From:    map[string]concord.Value{"street": "Main St 1", "city": "Oslo"},
			To:      map[string]concord.Value{"street": "Main St 2", "city": nil},
			Version: v1,
		},
		{
			Time: t0.In(time.FixedZone("CET", 3600)), Kind: audit.ConflictDetected, Cycle: 7,
			Key: "cust-1", Unit: "credit_limit", Version: v1.Join(v2),
			Candidates: []audit.Candidate{
				{System: "crm", Canonical: true, Version: v1, Values: map[string]concord.Value{"credit_limit": json.Number("1.50")}},
				{System: "erp", Version: v2, Values: map[string]concord.Value{"credit_limit": 1.5}},
				{System: "billing", Version: v2, Deleted: true},
			},
		},
		{
			Time: t0, Kind: audit.MergeDecided, System: "erp", Key: "order <7> & co", Unit: "lines",
			To: map[string]concord.Value{
				"lines": []any{map[string]any{"sku": "A-1", "qty": int64(3), "price": float32(0.1)}},
				"tags":  []string{"b2b", "priority"},
				"attrs": map[string]string{"region": "north"},
				"big":   uint64(18446744073709551615),
				"ok":    true,
				"ratio": 0.1,
				"neg":   int8(-4),
			},
			Version: v2, Rule: "system-of-record", Reason: "erp owns lines",
		},
		{
			Time: t0, Kind: audit.WriteFailed, System: "warehouse", Key: "cust-2",
			Fields: []string{"addr_line"}, Error: "503 Service Unavailable", ErrorClass: "transient",
		},
		{Time: t0, Kind: audit.MergeDecided, Key: "cust-3", Unit: "(record)", Deleted: true, Version: v2},
	}
}
