package sync_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
)

// hist is the set of edits a value descends from: the oracle's explicit
// causal history, independent of the engine's version vectors.
type hist map[int]bool

func (h hist) union(o hist) hist {
	out := maps.Clone(h)
	if out == nil {
		out = hist{}
	}
	for k := range o {
		out[k] = true
	}
	return out
}

func (h hist) subset(o hist) bool {
	for k := range h {
		if !o[k] {
			return false
		}
	}
	return true
}

func (h hist) String() string {
	ids := slices.Sorted(maps.Keys(h))
	return fmt.Sprint(ids)
}

var oracleUnits = []string{"a", "b", "addr"}

// oracle tracks every edit made in every system, and checks each decision
// of the engine against the explicit histories.
type oracle struct {
	t       *rapid.T
	r       *rig
	ids     int
	edits   map[int]hist               // edit -> its history
	unitOf  map[int][2]string          // edit -> key, unit
	local   map[string]map[string]hist // system/key -> unit -> history of its value
	canon   map[string]hist            // key/unit -> history of the canonical value
	cands   map[string]hist            // key/unit -> union of the last conflict's candidates
	seen    int                        // audit events processed
	dirty   map[string]bool            // system/key edited since its last successful read
	valueID map[string]int             // key/unit -> the edit whose value is canonical
}

func (o *oracle) idOf(unit string, vals map[string]any) int {
	v := vals[unit]
	if unit == "addr" {
		v = vals["zip"]
	}
	s, _ := v.(string)
	var id int
	if _, err := fmt.Sscanf(strings.TrimSuffix(s, "z"), "e%d", &id); err != nil {
		o.t.Fatalf("value %v of %s is not an edit's", vals, unit)
	}
	return id
}

func (o *oracle) edit(s concord.SystemID, key, unit string) {
	o.ids++
	id := o.ids
	lk := string(s) + "/" + key
	if o.local[lk] == nil {
		o.local[lk] = map[string]hist{}
	}
	h := o.local[lk][unit].union(hist{id: true})
	o.edits[id], o.unitOf[id] = h, [2]string{key, unit}
	o.local[lk][unit] = h
	o.dirty[lk] = true
	f := map[string]any{}
	switch unit {
	case "addr":
		// Sometimes a whole new address, sometimes a postal-code fix
		// (of an address the system has: systems carry whole groups).
		rec, _ := o.r.sys[s].Record(key)
		if _, has := rec.Fields["street"]; !has || rapid.Bool().Draw(o.t, "whole") {
			f["street"] = fmt.Sprintf("e%d", id)
		}
		f["zip"] = fmt.Sprintf("e%dz", id)
	default:
		f[unit] = fmt.Sprintf("e%d", id)
	}
	o.r.sys[s].Edit(key, f)
}

// check processes the audit events of the cycles run since the last call.
func (o *oracle) check() {
	events := o.r.audit.Events()
	for _, ev := range events[o.seen:] {
		for _, u := range ev.UnitNames() { // a coalesced event is each unit's
			if u != resolve.RecordUnit {
				o.unitEvent(&ev, u)
			}
		}
	}
	o.seen = len(events)
	// What the engine records as in sync must be what the system holds.
	keys := []string{"k1", "k2"}
	states := storedStates(o.t, o.r.store, keys...)
	for _, key := range keys {
		st := states[key]
		if st == nil {
			continue
		}
		for s, f := range o.r.sys {
			view := st.Systems[s]
			rec, ok := f.Record(key)
			if view == nil || !ok || o.dirty[string(s)+"/"+key] {
				continue // an edit the engine has not read yet
			}
			for _, u := range oracleUnits {
				cu, held := st.Units.Value(u), view.Units.Value(u)
				if cu == nil || held.Version.Compare(cu.Version) != concord.Equal {
					continue
				}
				for _, field := range fieldsOf(u) {
					if !concord.EqualValues(rec.Fields[field], st.Fields[field]) {
						for _, ev := range o.r.audit.Events() {
							if ev.Key == key && (ev.Covers(u) || ev.Unit == resolve.RecordUnit) {
								o.t.Logf("%d %s %s %s %v %v->%v %s %v %s", ev.Cycle, ev.Kind, ev.System, ev.Unit, ev.Version, ev.From, ev.To, ev.Rule, ev.Candidates, ev.Error)
							}
						}
						o.t.Fatalf("%s %s: engine says in sync on %s but %s=%v, canonical %v", s, key, u, field, rec.Fields[field], st.Fields[field])
					}
				}
				lk := string(s) + "/" + key
				if o.local[lk] == nil {
					o.local[lk] = map[string]hist{}
				}
				o.local[lk][u] = o.canon[key+"/"+u]
			}
		}
	}
}

// unitEvent processes what ev says of unit u.
func (o *oracle) unitEvent(ev *audit.Event, u string) {
	ku := ev.Key + "/" + u
	switch ev.Kind {
	case audit.ConflictDetected:
		var hs []hist
		union := hist{}
		for _, c := range ev.Candidates {
			h := o.canon[ku]
			if !c.Canonical {
				h = o.edits[o.idOf(u, c.Values)]
			}
			hs = append(hs, h)
			union = union.union(h)
		}
		for i := range hs {
			for j := range hs {
				if i != j && hs[i].subset(hs[j]) {
					o.t.Fatalf("false conflict on %s: candidate %d %v descends into %d %v", ku, i, hs[i], j, hs[j])
				}
			}
		}
		o.cands[ku] = union
	case audit.MergeDecided:
		id := o.idOf(u, ev.To)
		switch ev.Rule {
		case "fast-forward":
			// The edit must have seen the canonical value it
			// replaces; losers of earlier decisions stay in the
			// history (they were decided, not lost).
			if cur, ok := o.valueID[ku]; ok && !o.edits[id][cur] {
				o.t.Fatalf("silent overwrite on %s: edit e%d %v fast-forwarded over e%d", ku, id, o.edits[id], cur)
			}
			o.canon[ku] = o.canon[ku].union(o.edits[id])
		case "equal-values":
			o.canon[ku] = o.canon[ku].union(o.edits[id])
		default:
			o.canon[ku] = o.canon[ku].union(o.cands[ku])
		}
		o.valueID[ku] = id
	}
}

func fieldsOf(u string) []string {
	if u == "addr" {
		return []string{"street", "zip"}
	}
	return []string{u}
}

// Random edits in 2-5 systems, cycles with failed reads and writes: every
// conflict the engine raises is between truly concurrent edits, no edit
// fast-forwards over one it did not see, the systems converge, and every
// edit ever made is in the history of the final value (no lost update).
func TestEngineAgainstOracle(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(rt, "systems")
		var names []concord.SystemID
		for i := range n {
			names = append(names, concord.SystemID(fmt.Sprintf("s%d", i)))
		}
		r := newRig(rt, names, withGroups(map[string][]string{"addr": {"street", "zip"}}),
			withResolver(resolve.Chain(resolve.LastWriterWins(), resolve.Priority(names...))))
		o := &oracle{t: rt, r: r, edits: map[int]hist{}, unitOf: map[int][2]string{}, local: map[string]map[string]hist{},
			canon: map[string]hist{}, cands: map[string]hist{}, dirty: map[string]bool{}, valueID: map[string]int{}}
		steps := rapid.IntRange(1, 25).Draw(rt, "steps")
		for range steps {
			if rapid.IntRange(0, 2).Draw(rt, "action") > 0 {
				s := rapid.SampledFrom(names).Draw(rt, "system")
				o.edit(s, rapid.SampledFrom([]string{"k1", "k2"}).Draw(rt, "key"), rapid.SampledFrom(oracleUnits).Draw(rt, "unit"))
				continue
			}
			for _, s := range names {
				if rapid.IntRange(0, 4).Draw(rt, "read-fails") == 0 {
					r.sys[s].FailNext(fake.OpChanges, 1, connector.Transient(errors.New("read down")))
				} else {
					o.dirty[string(s)+"/k1"], o.dirty[string(s)+"/k2"] = false, false
				}
				if rapid.IntRange(0, 4).Draw(rt, "write-fails") == 0 {
					r.sys[s].FailNext(fake.OpApply, 1, connector.Transient(errors.New("write down")))
				}
			}
			r.cycle()
			o.check()
		}
		for s := range r.sys { // clear unconsumed faults
			r.sys[s].FailNext(fake.OpChanges, 0, nil)
			r.sys[s].FailNext(fake.OpApply, 0, nil)
		}
		clear(o.dirty)
		for range 6 {
			rep := r.cycle()
			o.check()
			writes := 0
			for _, s := range rep.Systems {
				writes += s.Writes
			}
			if writes == 0 && r.lastErr == nil {
				break
			}
		}
		for _, key := range []string{"k1", "k2"} {
			var first map[string]any
			for i, s := range names {
				rec, _ := r.sys[s].Record(key)
				if i == 0 {
					first = rec.Fields
				} else if !concord.EqualValues(first, rec.Fields) {
					rt.Fatalf("%s: %s has %v, %s has %v", key, names[0], first, s, rec.Fields)
				}
			}
		}
		for id, ku := range o.unitOf {
			if !o.canon[ku[0]+"/"+ku[1]][id] {
				for _, ev := range r.audit.Events() {
					if ev.Key == ku[0] && (ev.Covers(ku[1]) || ev.Unit == resolve.RecordUnit) {
						rt.Logf("%d %s %s %s %v %v->%v %s %v %s", ev.Cycle, ev.Kind, ev.System, ev.Unit, ev.Version, ev.From, ev.To, ev.Rule, ev.Candidates, ev.Error)
					}
				}
				rt.Fatalf("edit e%d of %s/%s is lost: final history %v", id, ku[0], ku[1], o.canon[ku[0]+"/"+ku[1]])
			}
		}
		if holds, _ := r.engine.Holds(context.Background()); len(holds) != 0 {
			rt.Fatalf("holds left: %+v", holds)
		}
	})
}
