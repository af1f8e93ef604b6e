package state

import (
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

func v(dots ...uint64) concord.Version {
	var ds []concord.Dot
	for i := 0; i+1 < len(dots); i += 2 {
		ds = append(ds, concord.Dot{Actor: concord.Actor(dots[i]), Counter: dots[i+1]})
	}
	return concord.MustVersion(ds...)
}

// Sample returns a record state with every kind of content the engine
// stores, for tests of the codec and of stores: typed values, units with
// history, a hold (if held), and system views (one system lacks the record
// if pending).
func Sample(key string, pending, held bool) *Record {
	at := time.Date(2026, 5, 1, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	st := &Record{
		Key: key,
		Fields: map[string]concord.Value{
			"name": "Ada", "n": int64(3), "price": 19.99, "ok": true, "none": nil, "at": at,
			"tags": []any{"a", int64(1)}, "meta": map[string]any{"x": "y"},
		},
		Units: TableOf(map[string]*Unit{
			resolve.RecordUnit: {Version: v(1, 1, 2, 1), Winner: "a", Rule: "equal-values", Changed: at, Modified: at},
			"name":             {Version: v(1, 2), Winner: "a", Rule: "fast-forward", Prev: &Prev{Values: Table[concord.Value]{{"name", "Ad"}}, Version: v(1, 1)}},
		}),
		Systems: map[concord.SystemID]*View{
			"a": {Seen: true, Tag: "7", Modified: at, Units: TableOf(map[string]Copy{resolve.RecordUnit: {Hash: 1, Version: v(1, 1, 2, 1)}, "name": {Hash: 42, Version: v(1, 2)}}),
				Native: Table[uint64]{{"name", 99}}},
			"b": {Seen: !pending, Units: TableOf(map[string]Copy{resolve.RecordUnit: {Hash: 1, Version: v(1, 1, 2, 1)}, "name": {Hash: 42, Version: v(1, 2)}}),
				Native: Table[uint64]{}},
		},
	}
	if held {
		st.Units.Set("phone", &Unit{Hold: &Hold{
			Candidates: []resolve.Candidate{
				{System: "a", Values: map[string]concord.Value{"phone": "1"}, Version: v(1, 3)},
				{System: "b", Values: map[string]concord.Value{"phone": "2"}, Version: v(2, 2)},
			},
			BaseKnown: true, Base: map[string]concord.Value{"phone": "0"}, Rule: "hold", Reason: "a person decides", Since: at,
		}})
	}
	return st
}
