package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/transform"
)

// keyDetail is one marked key's canonical records, by side (nil: absent).
type keyDetail struct {
	fields  []map[string]concord.Value
	present []bool
}

// detail runs pass 2: every side again, keeping the canonical records of
// marked keys only.
func (r *run) detail(ctx context.Context, marked map[uint64]struct{}, ix *index) (map[string]*keyDetail, error) {
	details := map[string]*keyDetail{}
	for i, s := range r.sides {
		var want func(string) bool
		if ix.sides[i].keysStable {
			want = func(raw string) bool {
				_, ok := marked[keyHash(raw)]
				return ok
			}
		}
		err := r.scan(ctx, s, want, func(_, canon concord.Record) error {
			if _, ok := marked[keyHash(canon.Key)]; !ok {
				return nil
			}
			d := details[canon.Key]
			if d == nil {
				d = &keyDetail{fields: make([]map[string]concord.Value, len(r.sides)), present: make([]bool, len(r.sides))}
				details[canon.Key] = d
			}
			if d.present[i] {
				return &SideError{System: s.System, Key: canon.Key, Err: fmt.Errorf("%w: the scan returned this key twice", ErrDuplicateKey)}
			}
			d.present[i] = true
			d.fields[i] = r.keep(canon.Fields)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return details, nil
}

// keep copies the compared fields of a record.
func (r *run) keep(fields map[string]concord.Value) map[string]concord.Value {
	out := make(map[string]concord.Value, len(fields))
	if r.fields == nil {
		for f, v := range fields {
			out[f] = concord.CloneValue(v)
		}
		return out
	}
	for _, f := range r.fields {
		if v, ok := fields[f]; ok {
			out[f] = concord.CloneValue(v)
		}
	}
	return out
}

// judge compares the kept records field by field, asks the engine about
// the keys that differ, and fills in the report's differences and plan.
func (r *run) judge(ctx context.Context, rep *Report, details map[string]*keyDetail) error {
	keys := slices.Sorted(maps.Keys(details))
	type found struct {
		key   string
		diffs []Difference
	}
	var all []found
	var differing []string
	for _, k := range keys {
		diffs := r.compare(k, details[k])
		delete(details, k)
		if len(diffs) == 0 {
			rep.Settled++ // differed in pass 1, agrees now: changed meanwhile
			continue
		}
		all = append(all, found{k, diffs})
		differing = append(differing, k)
	}
	known, err := r.known(ctx, differing)
	if err != nil {
		return err
	}
	for _, f := range all {
		ks, ok := known[f.key]
		var fixes []repairFix
		for _, d := range f.diffs {
			d.Class = r.class(d, ks)
			r.suggest(&d)
			rep.add(d)
			fx, item := r.plan(d, ks, ok)
			fixes = append(fixes, fx...)
			switch {
			case d.Class == InFlight:
				rep.Plan.InFlight = append(rep.Plan.InFlight, Item{Key: d.Key, Field: d.Field, Class: d.Class, Reason: "the engine is writing it"})
			case item != "":
				rep.Plan.NeedsPerson = append(rep.Plan.NeedsPerson, Item{Key: d.Key, Field: d.Field, Class: d.Class, Reason: item})
			}
		}
		rep.Plan.Repairs = append(rep.Plan.Repairs, group(f.key, fixes, r.sides)...)
	}
	return nil
}

// compare returns the differences of one key, without their class.
func (r *run) compare(key string, d *keyDetail) []Difference {
	var diffs []Difference
	var present, absent []concord.SystemID
	for i, s := range r.sides {
		if d.present[i] {
			present = append(present, s.System)
		} else {
			absent = append(absent, s.System)
		}
	}
	if len(absent) > 0 {
		diffs = append(diffs, Difference{Key: key, Field: RecordField, Present: present, Absent: absent})
	}
	if len(present) < 2 {
		return diffs
	}
	names := map[string]bool{}
	for i := range r.sides {
		for f := range d.fields[i] {
			names[f] = true
		}
	}
	for _, f := range slices.Sorted(maps.Keys(names)) {
		var first concord.Value
		seen, differ := false, false
		var has, lacks []concord.SystemID
		values := map[concord.SystemID]concord.Value{}
		for i, s := range r.sides {
			if !d.present[i] {
				continue
			}
			v, ok := d.fields[i][f]
			if !ok {
				lacks = append(lacks, s.System)
				differ = true
				continue
			}
			has = append(has, s.System)
			values[s.System] = v
			if !seen {
				first, seen = v, true
			} else if !concord.EqualValues(first, v) {
				differ = true
			}
		}
		if differ {
			diffs = append(diffs, Difference{Key: key, Field: f, Values: values, Present: has, Absent: lacks})
		}
	}
	return diffs
}

// known asks the engine about keys, in batches.
func (r *run) known(ctx context.Context, keys []string) (map[string]KeyState, error) {
	out := map[string]KeyState{}
	if r.cfg.Knowledge == nil {
		return out, nil
	}
	for batch := range slices.Chunk(keys, r.batch) {
		var got map[string]KeyState
		err := guard("Knowledge.Known", func() (err error) {
			got, err = r.cfg.Knowledge.Known(ctx, batch)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reconcile: %w for %d keys from %q: %w", ErrKnowledge, len(batch), batch[0], err)
		}
		for _, k := range batch {
			if ks, ok := got[k]; ok {
				out[k] = ks
			}
		}
	}
	return out, nil
}

// class classes one difference by what the engine knows of its record.
func (r *run) class(d Difference, ks KeyState) Class {
	for _, s := range r.sides {
		if ks.Pending[s.System] {
			return InFlight
		}
	}
	for _, s := range r.sides {
		for _, f := range ks.Behind[s.System] {
			if f == d.Field {
				return Stale
			}
		}
	}
	if d.Field == RecordField {
		return Missing
	}
	return Conflicting
}

// repairFix is one planned fix before grouping by system.
type repairFix struct {
	system concord.SystemID
	fix    Fix
}

// plan picks a winner for d and the systems to correct; a non-empty
// string says why the difference needs a person instead.
func (r *run) plan(d Difference, ks KeyState, knownKey bool) ([]repairFix, string) {
	if d.Class == InFlight {
		return nil, ""
	}
	if d.Field == RecordField {
		if o, ok := r.owners[RecordField]; ok {
			owner := r.sides[o].System
			if !slices.Contains(d.Present, owner) {
				return nil, fmt.Sprintf("its system of record %q lacks the record; deleting it elsewhere is for a person", owner)
			}
			return fixes(d.Absent, Fix{Field: d.Field, Rule: RuleSystemOfRecord, Winner: owner}), ""
		}
		if knownKey && ks.Canonical != nil {
			return fixes(d.Absent, Fix{Field: d.Field, Rule: RuleCanonical}), ""
		}
		return nil, "nobody owns the record and the engine has no canonical record"
	}
	if o, ok := r.owners[d.Field]; ok {
		owner := r.sides[o].System
		if v, has := d.Values[owner]; has {
			return fixes(r.disagree(d, v), Fix{Field: d.Field, Rule: RuleSystemOfRecord, Winner: owner}), ""
		}
	}
	if v, ok := ks.Canonical[d.Field]; ok {
		return fixes(r.disagree(d, v), Fix{Field: d.Field, Rule: RuleCanonical}), ""
	}
	return nil, "nobody owns the field here and the engine has no canonical value"
}

// disagree lists the sides of d whose value is not v (or who lack the field).
func (r *run) disagree(d Difference, v concord.Value) []concord.SystemID {
	out := slices.Clone(d.Absent)
	for _, s := range d.Present {
		if !concord.EqualValues(d.Values[s], v) {
			out = append(out, s)
		}
	}
	return out
}

func fixes(systems []concord.SystemID, f Fix) []repairFix {
	out := make([]repairFix, 0, len(systems))
	for _, s := range systems {
		out = append(out, repairFix{system: s, fix: f})
	}
	return out
}

// group gathers one key's fixes into one Repair per system, in side order.
func group(key string, fx []repairFix, sides []Side) []Repair {
	var out []Repair
	for _, s := range sides {
		var fs []Fix
		for _, f := range fx {
			if f.system == s.System {
				fs = append(fs, f.fix)
			}
		}
		if len(fs) > 0 {
			out = append(out, Repair{Key: key, System: s.System, Fixes: fs})
		}
	}
	return out
}

// suggest adds the cleansing suggestions of each side's value of d.
func (r *run) suggest(d *Difference) {
	sg := r.cfg.Suggesters[d.Field]
	if sg == nil || slices.Contains(r.cfg.Sensitive, d.Field) {
		return
	}
	for s, v := range d.Values {
		str, ok := v.(string)
		if !ok {
			continue
		}
		if list := sg.Suggest(d.Field, str); len(list) > 0 && list[0].Value != str {
			if d.Suggestions == nil {
				d.Suggestions = map[concord.SystemID][]transform.Suggestion{}
			}
			d.Suggestions[s] = list
		}
	}
}
