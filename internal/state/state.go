package state

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// Record is what the engine knows about one record: the canonical
// values with a version per unit (field or field group), and for every
// system what that system held when the engine last read from or wrote to
// it.
//
// The engine encodes a Record with [EncodeState] into a store's State.Data
// and decodes it with [DecodeState] when it loads it; only the engine
// interprets it.
type Record struct {
	// Key of the record.
	Key string
	// Rev is the store's revision of this state, for optimistic
	// concurrency: a store refuses to commit a state whose Rev is not the
	// one it holds (store.ErrStale). Zero means "not stored yet".
	Rev uint64
	// Deleted reports that the record is canonically deleted.
	Deleted bool
	// Diverged is when the engine first saw the systems disagree about
	// the record (an edit not yet everywhere); zero while they agree. The
	// time from it to agreement is the record's time to resolution.
	Diverged time.Time
	// Fields are the canonical values.
	Fields map[string]concord.Value
	// Units holds the canonical metadata per unit name; the existence of
	// the record is the unit [resolve.RecordUnit].
	Units Table[*Unit]
	// Systems holds each system's view of the record.
	Systems map[concord.SystemID]*View

	// Touched reports that the engine changed the record since it was
	// loaded: a record it did not change is not encoded or committed
	// again. It is not encoded; a new Record is one nobody stored yet,
	// which the engine marks touched.
	Touched bool

	// keep asks the next encoding to keep a resume point (KeepEncoding);
	// resume is the one the last encoding kept, for the next to use.
	keep   bool
	resume *resumePoint

	// top holds, once topKnown, the highest counter of each actor (sorted
	// by actor) in the record's versions: see TopCounter. It is not
	// encoded; the decoder computes it from the versions it decodes.
	top      []concord.Dot
	topKnown bool
}

// KeepEncoding asks the next [Codec.Encode] of st to keep what it needs to
// encode st once more, after a change of its views alone, without encoding
// the rest again: that encoding then writes the views (Systems) and copies
// the rest from this one. The engine calls it before the commit that
// precedes its writes, whose results change only the written systems'
// views before the commit after them.
//
// Between the two encodings the caller changes nothing of st but its
// views, its Diverged time and its Rev: its Fields and Units stay as they
// were, in place too. The second encoding checks the key, the deletion,
// the Diverged time and the names the units and views use, and encodes
// the whole record if any of them changed; it reads the canonical values
// only for a hash prediction the first did not make, and cannot see a
// unit or a value changed in place. With [Strict] set, the second
// encoding is checked byte for byte against a whole one (a record with
// sealed values excepted: sealing is not deterministic). A resume point
// is used once, by the next encoding.
func (st *Record) KeepEncoding() { st.keep = true }

// TopCounter returns a counter at least as high as every counter of actor
// a in the versions of st (its units', their held candidates', and every
// view's copies): a dot of a after it is new to the record. The first call
// on a record neither decoded nor cloned scans it; NoteDot keeps the answer
// from then on. A Record is therefore given versions only as dots that
// NoteDot is told of, and as joins and copies of the versions it holds.
func (st *Record) TopCounter(a concord.Actor) uint64 {
	if !st.topKnown {
		st.scanTop()
	}
	for _, d := range st.top {
		if d.Actor == a {
			return d.Counter
		}
	}
	return 0
}

// NoteDot records that a version of st now holds dot d (see TopCounter).
func (st *Record) NoteDot(d concord.Dot) {
	if !st.topKnown {
		st.scanTop()
	}
	st.top = joinDot(st.top, d)
}

// joinDot returns top with d's actor's counter raised to d's, if higher;
// top stays sorted by actor.
func joinDot(top []concord.Dot, d concord.Dot) []concord.Dot {
	i, found := slices.BinarySearchFunc(top, d.Actor, func(x concord.Dot, a concord.Actor) int { return cmp.Compare(x.Actor, a) })
	if found {
		top[i].Counter = max(top[i].Counter, d.Counter)
		return top
	}
	return slices.Insert(top, i, d)
}

// joinTop raises top to every dot of v.
func joinTop(top []concord.Dot, v concord.Version) []concord.Dot {
	for i := range v.Len() {
		top = joinDot(top, v.Dot(i))
	}
	return top
}

// scanTop computes st.top from the versions st holds.
func (st *Record) scanTop() {
	st.top = st.top[:0]
	for _, x := range st.Units {
		u := x.Value
		st.top = joinTop(st.top, u.Version)
		if u.Hold != nil {
			for _, c := range u.Hold.Candidates {
				st.top = joinTop(st.top, c.Version)
			}
		}
	}
	for _, v := range st.Systems {
		for _, h := range v.Units {
			st.top = joinTop(st.top, h.Value.Version)
		}
	}
	st.topKnown = true
}

// Unit is the canonical metadata of one unit.
type Unit struct {
	// Version of the canonical value.
	Version concord.Version
	// Winner is the system whose edit set the value (empty if the value
	// was set by a merge of several).
	Winner concord.SystemID
	// Rule that set the value ("fast-forward", a resolver's rule, ...).
	Rule string
	// Changed is when the engine set the value.
	Changed time.Time
	// Modified is the winning system's own modification time of the
	// value (the latest of the candidates' for a merged value): what
	// last-writer-wins compares the canonical value by.
	Modified time.Time
	// Prev is the previous canonical value: one step of history, used
	// as the base of a conflict when every candidate descends from it.
	// Nil until the unit first changes. Behind a pointer, so that a unit
	// that never changed does not carry room for it (a first sync makes
	// a unit per field, decoded by every cycle that reads the record).
	Prev *Prev
	// Hold is non-nil while the unit waits for a person. A held unit is
	// not written to any system.
	Hold *Hold
}

// Prev is a unit's previous canonical value, version and existence.
type Prev struct {
	// Values are the unit's fields as they were: nil if it held none
	// (its fields were not set), empty but not nil as decoded from an
	// empty set. A table, not a map:
	// most units have one field, and a long-lived record has a Prev in
	// most units.
	Values Table[concord.Value]
	// Version is the version of those values, Deleted whether the
	// record was deleted then.
	Version concord.Version
	Deleted bool
}

// PrevValues returns u.Prev.Values, nil if u has no Prev.
func (u *Unit) PrevValues() Table[concord.Value] {
	if u.Prev == nil {
		return nil
	}
	return u.Prev.Values
}

// PrevVersion returns u.Prev.Version, the zero Version if u has no Prev.
func (u *Unit) PrevVersion() concord.Version {
	if u.Prev == nil {
		return concord.Version{}
	}
	return u.Prev.Version
}

// PrevDeleted returns u.Prev.Deleted, false if u has no Prev.
func (u *Unit) PrevDeleted() bool { return u.Prev != nil && u.Prev.Deleted }

// Hold is a conflict or gated change waiting for a person. It keeps every
// competing value with its version and, when known, the common base.
type Hold struct {
	// Candidates in the order the resolver saw them.
	Candidates []resolve.Candidate
	// Base and BaseKnown as in [resolve.Conflict].
	Base      map[string]concord.Value
	BaseKnown bool
	// Rule and Reason of the resolver or gate that held the unit.
	Rule   string
	Reason string
	// Since is when the unit was first held.
	Since time.Time
}

// View is what one system held of a record when the engine last read
// from or wrote to it.
type View struct {
	// Seen reports that the system is known to have (or have deleted)
	// the record; false for a system the record has not reached yet.
	Seen bool
	// Deleted reports that the record is deleted in the system.
	Deleted bool
	// Tag and Modified as the system last reported them.
	Tag      string
	Modified time.Time
	// Units holds, per unit, the hash of the values the system reported
	// (canonical shape) and their version.
	Units Table[Copy]
	// Native holds the hash of every field in the system's own shape,
	// to compute minimal patches.
	Native Table[uint64]
	// Sent holds, per unit, the writes the engine attempted to the
	// system that it has not seen confirmed or superseded yet (at most
	// maxSent, newest last): a write whose reply was lost may have been
	// applied, and when the system reports its value it is the engine's
	// own write (an echo), never the system's edit.
	Sent Table[[]Copy]
	// Attempts counts the consecutive failed writes of this record to
	// the system, since FirstFailed; LastError is the latest reason.
	Attempts    int
	FirstFailed time.Time
	LastError   string
	// Parked reports that the writes were dead-lettered: the record is
	// not written to this system again until replayed.
	Parked bool
	// Partial reports that the engine knows the state at Tag only in
	// part: a report that may carry some of the fields (a webhook, see
	// sync.Engine.Ingest) set Tag, and no whole report of the record
	// (the change feed's) has come since. A report of the state at Tag
	// is then compared field by field, not taken for the state seen
	// already, so that the fields the partial one left out are read.
	Partial bool
}

// maxSent bounds View.Sent per unit: older unconfirmed writes are
// forgotten first.
const maxSent = 4

// AddSent notes that a write of unit u with hash h (as the system will report
// it back) at version v is about to be attempted.
func (v *View) AddSent(u string, h Copy) {
	if v.Pending(u, h) {
		return
	}
	l := v.Sent.Value(u)
	if len(l) >= maxSent {
		l = slices.Delete(l, 0, len(l)-maxSent+1)
	}
	v.Sent.Set(u, append(l, h))
}

// Pending reports whether a write of unit u with copy h is already noted
// as attempted and not yet confirmed or superseded.
func (v *View) Pending(u string, h Copy) bool {
	return slices.ContainsFunc(v.Sent.Value(u), h.Same)
}

// AddSentFrom is AddSent that, for a unit with no attempt pending, takes
// the list's room from spare (advancing it) instead of allocating: a
// caller that records attempts at many units allocates their lists at
// once. Lists from spare have room for one Copy only, so that appending
// to one never writes into the next.
func (v *View) AddSentFrom(u string, h Copy, spare *[]Copy) {
	if len(v.Sent.Value(u)) > 0 || len(*spare) == 0 {
		v.AddSent(u, h)
		return
	}
	if v.Sent == nil {
		v.Sent = make(Table[[]Copy], 0, len(*spare)) // room for the spare's units
	}
	l := (*spare)[:1:1]
	*spare = (*spare)[1:]
	l[0] = h
	v.Sent.Set(u, l)
}

// Attempt is the attempted write of one unit to a system: the unit's name
// and the copy the system will report once it holds it.
type Attempt struct {
	Unit string
	Copy Copy
}

// Unsend forgets attempts that the system answered were not applied.
func (v *View) Unsend(sent []Attempt) {
	for _, a := range sent {
		l := slices.DeleteFunc(v.Sent.Value(a.Unit), a.Copy.Same)
		if len(l) == 0 {
			v.Sent.Delete(a.Unit)
		} else {
			v.Sent.Set(a.Unit, l)
		}
	}
}

// ForgetValues notes that the record is gone from the system: it holds no
// value of any unit (the versions it knew stay: what it reports if it
// creates the record again is its edit), no field in its own shape, and
// nothing written to it before is pending.
func (v *View) ForgetValues() {
	for i := range v.Units {
		if v.Units[i].Name != resolve.RecordUnit {
			v.Units[i].Value.Hash = NoValue
		}
	}
	v.Native = nil
	v.Sent = nil
}

// Echo returns the attempted write of unit u whose value hashes to h, if
// there is one: the system reports the engine's own write. The writes it
// supersedes (those whose versions it descends from) are forgotten.
func (v *View) Echo(u string, h uint64) (Copy, bool) {
	l := v.Sent.Value(u)
	for i := len(l) - 1; i >= 0; i-- { // the newest write of that value
		if w := l[i]; w.Hash == h {
			v.Confirm(u, w.Version)
			return w, true
		}
	}
	return Copy{}, false
}

// Confirm forgets the attempted writes of unit u that version v descends
// from: the system holds v or something newer.
func (v *View) Confirm(u string, ver concord.Version) {
	l := slices.DeleteFunc(v.Sent.Value(u), func(x Copy) bool { return ver.Descends(x.Version) })
	if len(l) == 0 {
		v.Sent.Delete(u)
		return
	}
	v.Sent.Set(u, l)
}

// Copy is a system's copy of one unit: the hash of its values (in the
// canonical shape; [NoValue] if the system holds none) and their version.
// (Not to be confused with [Hold], a unit waiting for a person.)
type Copy struct {
	Hash    uint64
	Version concord.Version
}

// NoValue is the hash of a unit in a system that deleted the record: it
// holds no value of it.
const NoValue = 0

// Same reports whether x is the same copy as h: the same hash and version.
func (h Copy) Same(x Copy) bool {
	return x.Hash == h.Hash && x.Version.Compare(h.Version) == concord.Equal
}

// Held reports whether any unit of the record is held for a person.
func (st *Record) Held() bool {
	for _, u := range st.Units {
		if u.Value.Hold != nil {
			return true
		}
	}
	return false
}

// Pending reports whether some system does not yet hold the canonical
// value of some unit that is not held: the record has writes outstanding.
func (st *Record) Pending() bool { return st.PendingAmong(nil) }

// PendingAmong is Pending counting only the views of systems (all of them
// if systems is nil): a system no longer configured has nothing written to
// it, and the record is not pending for it.
func (st *Record) PendingAmong(systems []concord.SystemID) bool {
	for id, v := range st.Systems {
		if (systems == nil || slices.Contains(systems, id)) && st.Stale(v) {
			return true
		}
	}
	return false
}

// Stale reports whether v lacks some canonical value and is not parked:
// the engine has a write to make to that system.
func (st *Record) Stale(v *View) bool { return !v.Parked && st.Behind(v) }

// Disagree reports whether some system does not hold the canonical values,
// dead-lettered writes included.
func (st *Record) Disagree() bool { return st.DisagreeAmong(nil) }

// DisagreeAmong is Disagree counting only the views of systems (all of
// them if systems is nil).
func (st *Record) DisagreeAmong(systems []concord.SystemID) bool {
	for id, v := range st.Systems {
		if (systems == nil || slices.Contains(systems, id)) && st.Behind(v) {
			return true
		}
	}
	return false
}

// Behind reports whether v lacks some canonical value of a unit that is not
// held.
func (st *Record) Behind(v *View) bool {
	if st.Existence() == nil {
		return false
	}
	if st.Existence().Hold != nil && (!v.Seen || v.Deleted != st.Deleted) {
		// Whether the record exists waits for a person: it is neither
		// created nor deleted anywhere until then.
		return false
	}
	if !v.Seen {
		return !st.Deleted
	}
	// Both tables are sorted by name: one walk of each. The view's next
	// entry is most often the unit's own (a view of every unit): checked
	// first, for equality only.
	j := 0
	for _, x := range st.Units {
		name, u := x.Name, x.Value
		k := j
		if k >= len(v.Units) || v.Units[k].Name != name {
			for k < len(v.Units) && v.Units[k].Name < name {
				k++
			}
		}
		found := k < len(v.Units) && v.Units[k].Name == name
		if j = k; found {
			j++
		}
		if u.Hold != nil {
			continue
		}
		if st.Deleted && name != resolve.RecordUnit {
			continue
		}
		if !found || !v.holds(name, v.Units[k].Value, u.Version) {
			return true
		}
	}
	return false
}

// Holds reports whether the system of v holds unit name at version
// version: it has that version and a value of the unit, not the NoValue
// of a record it deleted and created again without the unit (whose
// version is still the one it had before the delete).
func (v *View) Holds(name string, version concord.Version) bool {
	h, ok := v.Units.Get(name)
	return ok && v.holds(name, h, version)
}

// HoldsAt is Holds, looking first at index i of v.Units (see Table.At).
func (v *View) HoldsAt(i int, name string, version concord.Version) bool {
	h, ok := v.Units.At(i, name)
	return ok && v.holds(name, h, version)
}

// holds is Holds for h, v's copy of unit name.
func (v *View) holds(name string, h Copy, version concord.Version) bool {
	if h.Version.Compare(version) != concord.Equal {
		return false
	}
	return h.Hash != NoValue || name == resolve.RecordUnit || v.Deleted
}

// Strict makes [Codec.Encode] check every record with CheckTables before
// encoding it and panic with its error if a table is broken: tests set it, so that code
// that breaks a table (a clear or an append where Set belongs) fails
// where it did so rather than encode whatever the table then holds.
var Strict bool

// ErrBrokenTable is wrapped by the errors of [Record.CheckTables].
var ErrBrokenTable = errors.New("state: broken table")

// CheckTables reports the first of st's tables (its units, and each view's
// units, native hashes and attempts) whose names are not in increasing
// order each once, or that holds an entry no encoding has: a nil unit, an
// empty list of attempts.
func (st *Record) CheckTables() error {
	if !st.Units.Ordered() {
		return fmt.Errorf("%w: record %q: units out of order: %q", ErrBrokenTable, st.Key, st.Units.Names())
	}
	for _, x := range st.Units {
		if x.Value == nil {
			return fmt.Errorf("%w: record %q: unit %q is nil", ErrBrokenTable, st.Key, x.Name)
		}
	}
	for id, v := range st.Systems {
		if v == nil {
			return fmt.Errorf("%w: record %q: system %s has a nil view", ErrBrokenTable, st.Key, id)
		}
		for _, x := range v.Sent {
			if len(x.Value) == 0 {
				return fmt.Errorf("%w: record %q, system %s: no attempt listed for unit %q", ErrBrokenTable, st.Key, id, x.Name)
			}
		}
		switch {
		case !v.Units.Ordered():
			return fmt.Errorf("%w: record %q, system %s: view units out of order: %q", ErrBrokenTable, st.Key, id, v.Units.Names())
		case !v.Native.Ordered():
			return fmt.Errorf("%w: record %q, system %s: native hashes out of order: %q", ErrBrokenTable, st.Key, id, v.Native.Names())
		case !v.Sent.Ordered():
			return fmt.Errorf("%w: record %q, system %s: attempts out of order: %q", ErrBrokenTable, st.Key, id, v.Sent.Names())
		}
	}
	return nil
}

// Existence returns the unit of the record's existence
// ([resolve.RecordUnit]), nil if there is none yet.
func (st *Record) Existence() *Unit {
	if len(st.Units) > 0 && st.Units[0].Name == resolve.RecordUnit {
		return st.Units[0].Value // where it usually sorts: "(" is before letters and digits
	}
	return st.Units.Value(resolve.RecordUnit)
}

// Clone returns a deep copy of st. Values are copied with
// [concord.CloneValue]; Versions are immutable and shared.
func (st *Record) Clone() *Record {
	out := &Record{Key: st.Key, Rev: st.Rev, Deleted: st.Deleted, Diverged: st.Diverged,
		top: slices.Clone(st.top), topKnown: st.topKnown}
	out.Fields = concord.CloneFields(st.Fields)
	out.Units = make(Table[*Unit], len(st.Units))
	slab := make([]Unit, len(st.Units))
	n, np := 0, 0
	for _, x := range st.Units {
		if p := x.Value.Prev; p != nil {
			n += len(p.Values)
			np++
		}
	}
	// Every unit's Prev, and their values, in one allocation each.
	prevs, vals := make([]Prev, np), make(Table[concord.Value], 0, n)
	for i, x := range st.Units {
		u := x.Value
		cu := &slab[i]
		*cu = *u
		if u.Prev != nil {
			p := &prevs[0]
			prevs = prevs[1:]
			*p = *u.Prev
			if u.Prev.Values != nil {
				start := len(vals)
				for _, e := range u.Prev.Values {
					vals = append(vals, Entry[concord.Value]{e.Name, concord.CloneValue(e.Value)})
				}
				p.Values = vals[start:len(vals):len(vals)]
			}
			cu.Prev = p
		}
		if u.Hold != nil {
			h := *u.Hold
			h.Base = concord.CloneFields(h.Base)
			h.Candidates = slices.Clone(h.Candidates)
			for i := range h.Candidates {
				h.Candidates[i].Values = concord.CloneFields(h.Candidates[i].Values)
			}
			cu.Hold = &h
		}
		out.Units[i] = Entry[*Unit]{x.Name, cu}
	}
	out.Systems = make(map[concord.SystemID]*View, len(st.Systems))
	for k, v := range st.Systems {
		cv := *v
		cv.Units = v.Units.Clone()
		cv.Native = v.Native.Clone()
		cv.Sent = v.Sent.Clone()
		for i := range cv.Sent {
			cv.Sent[i].Value = slices.Clone(cv.Sent[i].Value)
		}
		out.Systems[k] = &cv
	}
	return out
}
