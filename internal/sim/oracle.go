package sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// hist is a set of edit ids: the edits something causally follows.
type hist map[int]bool

func (h hist) with(o hist) hist {
	out := maps.Clone(h)
	if out == nil {
		out = hist{}
	}
	maps.Copy(out, o)
	return out
}

// edit is one change a simulated person made in one system.
type edit struct {
	id   int
	sys  concord.SystemID
	key  string
	unit string // a unit name, or recordUnit for a creation or a delete
	// vals are the unit's fields as sys held them right after the edit
	// (a field absent there is absent here).
	vals    map[string]concord.Value
	deleted bool // recordUnit: a delete (else a creation)
	// ahead: made on its system's clock 80 years ahead (featAhead).
	ahead  bool
	hist   hist // the edits it causally follows, itself included
	step   int
	cycles int // engine cycles run before it
	// private: a delete of a record its system created and deleted
	// between two cycles: no engine can see that incarnation.
	private bool
	// invisible: between two engine steps its system changed the unit
	// (or the record's existence) and changed it back: nothing any
	// reader of the system could see (see oracle.boundary).
	invisible bool
	// before: of a field edit in a system that held the record, what
	// the system held of the unit just before it (existed).
	before  map[string]concord.Value
	existed bool
	// held: of a delete, what its system held of each unit of the record
	// as it was deleted, and since when (see oracle.heldAtAgreement).
	held map[string]heldUnit
	// goneFrom: of a creation, the step since which its system had held
	// the record gone (0: never held it; see oracle.createdOverHeldDelete).
	goneFrom int
	// liveFrom: of a delete, the step since which its system had held
	// the record (0: since the start; see oracle.deletedOverHeldCreate).
	liveFrom int
}

// heldUnit is what a system held of one unit of a record, and the step
// since which it held that without a change (a missing field counting as
// nil).
type heldUnit struct {
	vals map[string]concord.Value
	from int
}

// agreement is an engine decision of equal values ("equal-values") on one
// unit, at a step: the engine recorded every system that held these values
// as holding the merged version. (oracle.reports keeps the edits the engine
// observed in a system in the same form: a step and the unit's values.)
type agreement struct {
	step int
	vals map[string]concord.Value
}

func (e *edit) String() string {
	if e.unit == recordUnit {
		what := "create"
		if e.deleted {
			what = "delete"
		}
		return fmt.Sprintf("e%d(%s %s %s @step %d)", e.id, e.sys, what, e.key, e.step)
	}
	return fmt.Sprintf("e%d(%s %s/%s=%s @step %d)", e.id, e.sys, e.key, e.unit, show(e.vals), e.step)
}

// snap is what the oracle last saw of one record in one system.
type snap struct {
	live   bool
	fields map[string]concord.Value
}

// oracle knows every edit and checks the engine's outcome against the
// rules; see the package documentation.
type oracle struct {
	w     *world
	edits []*edit
	byKU  map[string][]*edit // key/unit -> its edits
	// know[s][key/unit]: the edits system s has held the value of (its own,
	// and those the engine delivered to it); a person's edit in s follows
	// all of them.
	know map[concord.SystemID]map[string]hist
	last map[concord.SystemID]map[string]snap
	// decided[key/unit]: values that a recorded decision named (conflict
	// candidates, refused changes, held candidates).
	decided map[string][]map[string]concord.Value
	// recordDecidedAt: key -> the step of its latest decision about the
	// record's existence (absent: none). An edit made after it was
	// overridden by none.
	recordDecidedAt map[string]int
	decidedAt       map[string]int // key -> the step of its latest existence decision
	lastSeen        map[string]int // system/key -> the last step the engine read or wrote that record there
	// seenRec: system/key -> what the system held of the record when the
	// engine last read or wrote it there (what the engine's state records
	// for it, and so what a snapshot of the store holds).
	seenRec map[string]snap
	// seenAt: system/key -> every step at which the engine read or wrote
	// that record there, with what the system then held of it;
	// heldFrom[s][key/unit]: the step since which s has held its current
	// values of the unit (or since the record appeared or went there);
	// agreed[key/unit]: the engine's equal-values decisions on the unit.
	seenAt    map[string][]seenState
	heldFrom  map[concord.SystemID]map[string]int
	agreed    map[string][]agreement
	recreated map[string]bool // key/unit -> emptied when a deleted record was created again
	seen      int             // audit events processed
	// snaps[i] is what each system held when store snapshot i was taken;
	// restores lists the snapshots restored, and when.
	snaps    []snapshot
	restores []restore
	// at is what each system held at the last engine step (system ->
	// key/unit -> values, and key -> live), and since the edits made
	// after it.
	at     map[concord.SystemID]map[string]map[string]concord.Value
	atLive map[concord.SystemID]map[string]bool
	since  []*edit
	// judged are the edits the last boundary judged; unlearned the
	// records a cycle dead-lettered as it read them (see afterCycle).
	judged    []*edit
	unlearned map[sysKey]bool
	// stored: the records a cycle dead-lettered as it read them for a
	// failed merge, with what that read saw (see storedRead).
	stored map[sysKey]storedRead
	// dropped: such reads that the engine never merged: a fresher read
	// of the record in that system superseded the kept one first (see
	// remerged, and undoneBeforeMerge).
	dropped map[sysKey][]droppedRead
	// mergeDead reports whether the store holds a merge dead letter of
	// a record read from a system (world.mergeDeadLetter).
	mergeDead func(sysKey) bool
	excused   map[int]bool // edits an ambiguity rule let pass
	// unconf lists writes whose outcome the engine never learned (no
	// reply: lost, a failed or timed-out call, a panicking connector; or a
	// crash before it committed), applied or not, and
	// attempted[system][key/unit] every value the engine tried to write
	// there; cleanCycles the steps of cycles that ended without a crash.
	unconf      []unconfirmed
	attempted   map[concord.SystemID]map[string][]map[string]concord.Value
	cleanCycles []int
	// readIn: the steps of the cycles among cleanCycles that read the
	// record from the system (its feed or a read by key returned it). A
	// cycle whose read of the system failed (a rate limit, a timeout) did
	// not: the system's state stayed unseen.
	readIn map[sysKey][]int
	// unmerged lists, per key, the steps of cycles in which the record's
	// state read damaged (KindDamage): such a cycle neither merged nor
	// wrote the record anywhere, so for it the cycle did not happen
	// (see merged).
	unmerged map[string][]int
	// creates lists the engine's creates of a record in a system that the
	// system never applied and whose outcome the engine never learned
	// (see alikeCreations).
	creates []unconfirmedCreate
	// appliedCreates are the engine's creates that a system applied
	// without the engine learning so (a lost reply, a crash): a delete
	// there before any read is the undo revertAmbiguous names.
	appliedCreates []unconfirmedCreate
	// deleteMerged: key -> the merges that made a system's delete the
	// record's state (merge.decided of the record, deleted), in order
	// (see createdOverHeldDelete).
	deleteMerged map[string][]existMerge
	// wroteLive[system/key]: the steps at which an engine write of the
	// record (not a delete) to the system succeeded (see
	// deletedOverHeldCreate).
	wroteLive map[string][]int
	// typedNulls are the nulls a person typed into a field that their
	// system, which keeps field times, did not have (see personEdit):
	// no edit, as the value is the null the field held, but the
	// system stamps the field's time (see setBackAmbiguous).
	typedNulls []*edit
	// reports[system/key/unit]: the edits of the unit the engine
	// observed in the system (edit.observed), at a step, with the values
	// it took for them (see heldAtAgreement).
	reports map[string][]agreement
}

// storedRead is what a cycle read of a record in a system whose merge
// failed: the engine keeps that read in a merge dead letter and merges it
// again at a later engine step (Engine.Ingest, a cycle, a replay of another
// system's report of the same merge), from the dead letter, unless a fresher
// read of the record in that system supersedes it. vals and live are what
// the system held of the record as it was read (key/unit -> values; the
// cycle wrote nothing there), and verdicts the invisibility of the edits
// made there before the read, as the boundary before it judged them; step
// is the step that read it.
type storedRead struct {
	vals     map[string]map[string]concord.Value
	live     bool
	verdicts map[*edit]bool
	step     int
}

// droppedRead is a read of a record, at step read, kept for a failed merge
// and superseded, at step by, by a fresher read before the engine merged
// it.
type droppedRead struct{ read, by int }

// unconfirmedCreate is an engine create of key in sys, at step, that sys
// never applied and whose outcome the engine never learned.
type unconfirmedCreate struct {
	sys  concord.SystemID
	key  string
	step int
}

// unconfirmed is a write of unit of key in sys, at step, whose outcome the
// engine never learned: the values sys held before it, the values it
// carried, and whether sys applied it.
type unconfirmed struct {
	sys     concord.SystemID
	key     string
	unit    string
	before  map[string]concord.Value
	set     map[string]concord.Value
	applied bool
	step    int
}

// existMerge is an engine decision, at step, that the record's state is
// sys's report of it (merge.decided of the record unit).
type existMerge struct {
	sys  concord.SystemID
	step int
}

// seenState is what a system held of a record at a step at which the
// engine read or wrote it there.
type seenState struct {
	step int
	rec  snap
}

// noteWrite records an engine write attempted in s at this step, and, if
// unknown, as one whose outcome the engine never learned.
func (o *oracle) noteWrite(aw appliedWrite, unknown bool) {
	for _, u := range aw.units() {
		if o.attempted[aw.sys] == nil {
			o.attempted[aw.sys] = map[string][]map[string]concord.Value{}
		}
		o.attempted[aw.sys][ku(aw.key, u)] = append(o.attempted[aw.sys][ku(aw.key, u)], unitVals(u, aw.set))
	}
	if unknown {
		o.writeUnknown(aw, o.w.step)
	}
}

// writeUnknown records the write aw, attempted at step, as one whose
// outcome the engine never learned (or learned, and forgot in a crash).
func (o *oracle) writeUnknown(aw appliedWrite, step int) {
	if aw.create && !aw.applied {
		o.creates = append(o.creates, unconfirmedCreate{sys: aw.sys, key: aw.key, step: step})
	}
	if aw.create && aw.applied {
		o.appliedCreates = append(o.appliedCreates, unconfirmedCreate{sys: aw.sys, key: aw.key, step: step})
	}
	for _, u := range aw.units() {
		o.unconf = append(o.unconf, unconfirmed{sys: aw.sys, key: aw.key, unit: u, before: unitVals(u, aw.before),
			set: unitVals(u, aw.set), applied: aw.applied, step: step})
	}
}

// units returns the units of the fields aw wrote, each once, in the order
// of its fields.
func (aw appliedWrite) units() []string {
	var out []string
	for _, f := range aw.fields {
		if u := unitOf(f); !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// revertAmbiguous reports whether e set back the value its system held
// before an engine write that it applied and whose outcome the engine never
// learned (directly, or after other edits of the unit there), before any
// cycle read the record there (a cycle that could not
// read the system, rate limited say, does not count: see readIn), in a
// system without field times: what the system then reports is exactly
// what it reports if the write was never applied, and the engine (which
// assumes that, and writes again) cannot tell them apart. With field
// times the engine reads such a set-back as an edit made after the write
// (its rule 4), and keeps it: what it cannot tell there is the opposite
// case, a write never applied (see setBackAmbiguous).
func (o *oracle) revertAmbiguous(e *edit) bool {
	if e.unit == recordUnit && e.deleted {
		// The same for existence, with or without field times (a
		// delete carries none): an engine create applied there whose
		// outcome the engine never learned, then deleted by the
		// system's person before any cycle read the system, reads as
		// the create never applied, and the engine creates it again.
		// A read that a store restore made the engine forget (its
		// snapshot taken before the read, as for a field below) counts
		// as none: seed 178,872, where the restored store knew the
		// record deleted there, as before the create.
		return slices.ContainsFunc(o.appliedCreates, func(c unconfirmedCreate) bool {
			return c.sys == e.sys && c.key == e.key && c.step < e.step &&
				!slices.ContainsFunc(o.readIn[sysKey{e.sys, e.key}], func(r int) bool { return r > c.step && r < e.step && !o.forgotten(r) })
		})
	}
	if e.unit == recordUnit {
		return false
	}
	for _, uc := range o.unconf {
		if !uc.applied || uc.sys != e.sys || uc.key != e.key || uc.unit != e.unit || uc.step >= e.step || !sameVals(e.unit, uc.before, e.vals) {
			continue
		}
		if o.w.fieldTimes[e.sys] && !o.madeAhead(e.key, e.unit, uc.set) {
			// Field times tell a setting back made after the write,
			// unless the value written was made at a time no clock
			// has reached (featAhead): it puts every field time
			// before it, and the engine takes the write for never
			// applied, as without field times.
			continue
		}
		if slices.ContainsFunc(o.readIn[sysKey{e.sys, e.key}], func(c int) bool { return c > uc.step && c < e.step && !o.forgotten(c) }) {
			continue // a cycle read the write back before e
		}
		// Edits of the unit there between the write and e (a detour:
		// false, true, then nil) change nothing a reader sees: no read
		// came between, and e ends where the write started.
		return true
	}
	return false
}

// undoneBeforeMerge reports whether the delete e undid an engine create
// that its system applied and whose outcome the engine never learned, as
// in revertAmbiguous, where the cycles that read the record there between
// the create and e did so only for a merge that failed (the record's state
// read damaged, say): the engine kept each such read in a merge dead
// letter, and a fresher read of the record there, made after e, superseded
// it before the engine merged it (see remerged; a fresher read before e, a
// person's replay say, taught the engine the record's state there). The
// engine never learned from those reads that the create was applied: what
// it merged is the delete it knew there before the create, reported again,
// which reads as the create never applied, and it creates the record there
// again, as in revertAmbiguous. A kept read that the engine did merge (at a
// later step, even after e) taught it the create's echo, and then e reads
// as the delete it is: such a read counts as one.
//
// Seed 143,718: s2's person deleted k0, which the engine created there
// again in a cycle whose final commit failed (the outcome lost); in the
// three cycles after, k0's state read damaged, and the one that read s2
// kept k0 in a merge dead letter; s2's person then deleted k0 again, and
// the next cycle's read of s2 (the delete) superseded the letter.
func (o *oracle) undoneBeforeMerge(e *edit) bool {
	if e.unit != recordUnit || !e.deleted {
		return false
	}
	sk := sysKey{e.sys, e.key}
	return slices.ContainsFunc(o.appliedCreates, func(c unconfirmedCreate) bool {
		between := func(r int) bool { return r > c.step && r < e.step }
		dropped := func(r int) bool {
			return slices.ContainsFunc(o.dropped[sk], func(d droppedRead) bool { return d.read == r && d.by > e.step })
		}
		return c.sys == e.sys && c.key == e.key && c.step < e.step && slices.ContainsFunc(o.readIn[sk], between) &&
			!slices.ContainsFunc(o.readIn[sk], func(r int) bool { return between(r) && !dropped(r) })
	})
}

// madeAhead reports whether the values vals of key's unit were made by an
// edit on a clock 80 years ahead (featAhead).
func (o *oracle) madeAhead(key, unit string, vals map[string]concord.Value) bool {
	return slices.ContainsFunc(o.byKU[ku(key, unit)], func(w *edit) bool { return w.ahead && sameVals(unit, w.vals, vals) })
}

// forgotten reports whether what the engine learned at step c was undone
// by a store restore since: a snapshot taken before c put back after it.
func (o *oracle) forgotten(c int) bool {
	return slices.ContainsFunc(o.restores, func(r restore) bool { return r.snap.step < c && r.step > c })
}

// setBackAmbiguous reports whether an engine may read r as made after e
// although r did not follow e, in a system with field times: an engine
// write carried e's value to r's system, which never applied it, and the
// engine never learned that (the connector panicked before it called the
// system, the call failed whole or outlasted its deadline, or the cycle
// crashed); then, before any cycle read the system, its person changed the
// unit (an edit or a delete made after the engine last read the record
// there, before or after the write) and r set it back to the value the
// engine last knew there, which the engine's next read of the system saw.
//
// The engine then reads the value it believes the system holds, with the
// write still unconfirmed and a field time later than its last read and
// than e: sync's rule 4 (revertedWrite) takes r as set back after the
// write. Two histories fit what the system reports: the write applied and
// the person setting the old value back after it (r follows e), or the
// write never applied and the person leaving the value and coming back to
// it (the truth here, r concurrent with e). In both the field's time is
// r's, later than the write; the record's tag is opaque, and the patch's
// other fields prove nothing (the connector contract does not make a patch
// all-or-nothing): no engine can tell the two apart. A set-back without a
// change before it moves no field time, but it is no edit either (r would
// not exist); and in a system without field times the engine reads r as no
// edit at all (revertAmbiguous covers that case).
//
// e then counts as followed by r, as the engine takes it, and is accounted
// for if r is.
//
// r may also be a null typed into the field where r's system lacked it (a
// record created again there without the field: typedNulls), which is no
// edit, as the field held that null already: the system stamps the
// field's time all the same, and reports exactly what a person setting the
// null back after the write applied reports (seed 128,370: s1's person
// deleted k1 and created it again without flag, s0's false went to s1 in
// a write whose connector panicked, and s1's person then typed a null
// into flag). The change before it is the typed null itself, a move of
// the field's time.
func (o *oracle) setBackAmbiguous(r, e *edit) bool {
	if r.unit == recordUnit || r.unit != e.unit || r.key != e.key || r.sys == e.sys || !o.w.fieldTimes[r.sys] {
		return false
	}
	// The value the engine last knew there: the value it believes the
	// system holds, so that the next read finds no change of value.
	known, ok := o.knownBefore(r.sys, r.key, r.step)
	if !ok || !known.live || !sameVals(r.unit, unitVals(r.unit, known.fields), r.vals) {
		return false
	}
	// The engine's next read of the system sees r: no later change there,
	// of the unit or of the record's existence, before the next cycle.
	next := math.MaxInt
	if i := slices.IndexFunc(o.cleanCycles, func(c int) bool { return c > r.step }); i >= 0 {
		next = o.cleanCycles[i]
	}
	later := func(x *edit) bool { return x.sys == r.sys && x.id > r.id && x.step < next }
	if slices.ContainsFunc(o.byKU[ku(r.key, r.unit)], later) || slices.ContainsFunc(o.byKU[ku(r.key, recordUnit)], later) {
		return false
	}
	return slices.ContainsFunc(o.unconf, func(uc unconfirmed) bool {
		// A write carrying e's value (the fields it carried: a patch
		// leaves out a group's fields the system holds already), made
		// after e, and no cycle between it and r.
		return !uc.applied && uc.sys == r.sys && uc.key == r.key && uc.unit == r.unit && uc.step > e.step && uc.step < r.step &&
			len(uc.set) > 0 && reportedIn(uc.set, e.vals) &&
			!slices.ContainsFunc(o.cleanCycles, func(c int) bool { return c > uc.step && c < r.step && o.merged(r.key, c) })
	})
}

// alikeCreations returns the creations of e's record that an engine cannot
// tell from the creation e: e and each of them are one value to it (a record
// that exists), and it takes them for one version of the record's existence.
//
// That is so of a creation p made by a person in a system S while an engine
// create w of the record to S was pending (S never applied it, the engine
// never learned so; see unconfirmedCreate), with no cycle between w and p,
// and p standing until the next cycle; and the creations x made in other
// systems before w, in the incarnation w carried (no delete that followed x
// came before w). The engine's next read of S finds the record that it
// believes it created there (rule 4 of package sync: S reporting what the
// engine wrote is its echo), and what S reports is exactly what S reports
// had w been applied and its person changed the fields since: a creation
// carries no identity, field times are the person's in both histories, the
// record's tag is opaque, and fields w carried that S lacks prove nothing,
// as the connector contract does not make a patch all-or-nothing. The
// engine counts S as holding the version of the existence w carried, which
// descends x: a delete in S after p then descends x, and a delete that
// followed x descends p. Each counts as followed by a delete that follows
// the other (see checkLost).
func (o *oracle) alikeCreations(e *edit) []*edit {
	if e.unit != recordUnit || e.deleted {
		return nil
	}
	creations := o.byKU[ku(e.key, recordUnit)]
	// carried reports whether w (to system s, at step) carried the
	// creation x: made elsewhere before w, and not deleted after it
	// before w.
	carried := func(x *edit, s concord.SystemID, step int) bool {
		return !x.deleted && x.sys != s && x.step < step && !slices.ContainsFunc(creations, func(d *edit) bool {
			return d.deleted && d.hist[x.id] && d.step < step
		})
	}
	// takenFor returns the pending create that the engine takes the
	// creation p for, if any.
	takenFor := func(p *edit) (unconfirmedCreate, bool) {
		if p.deleted {
			return unconfirmedCreate{}, false
		}
		next := math.MaxInt
		if i := slices.IndexFunc(o.cleanCycles, func(c int) bool { return c > p.step }); i >= 0 {
			next = o.cleanCycles[i]
		}
		if slices.ContainsFunc(creations, func(x *edit) bool { return x.sys == p.sys && x.id > p.id && x.step < next }) {
			return unconfirmedCreate{}, false // p did not stand until the engine could read it
		}
		for _, w := range slices.Backward(o.creates) {
			// No cycle between w and p, and no restore since w of a
			// store copied before it (which forgets w).
			if w.sys == p.sys && w.key == p.key && w.step < p.step &&
				!slices.ContainsFunc(o.cleanCycles, func(c int) bool { return c > w.step && c < p.step && o.merged(p.key, c) }) &&
				!slices.ContainsFunc(o.restores, func(r restore) bool { return r.step > w.step && r.snap.step < w.step }) {
				return w, true
			}
		}
		return unconfirmedCreate{}, false
	}
	var out []*edit
	if w, ok := takenFor(e); ok {
		for _, x := range creations {
			if carried(x, w.sys, w.step) {
				out = append(out, x)
			}
		}
	}
	for _, p := range creations {
		if w, ok := takenFor(p); ok && p.sys != e.sys && carried(e, w.sys, w.step) {
			out = append(out, p)
		}
	}
	return out
}

// merged reports whether the cycle at step could merge the record key: its
// state did not read damaged then. A cycle that could not left the record
// as it was in every system: it wrote it nowhere, and what it read of it
// waits in a dead letter.
func (o *oracle) merged(key string, step int) bool {
	return !slices.Contains(o.unmerged[key], step)
}

// knownBefore returns what s held of record key when the engine last read
// or wrote it there before step.
func (o *oracle) knownBefore(s concord.SystemID, key string, step int) (snap, bool) {
	seen := o.seenAt[string(s)+"/"+key]
	for i := len(seen) - 1; i >= 0; i-- {
		if seen[i].step < step {
			return seen[i].rec, true
		}
	}
	return snap{}, false
}

// boundary is called before every cycle: edits since the previous one that
// left their unit (or the record's existence) as the previous cycle left it
// (afterCycle) are invisible to any engine, which reads systems' current
// states only in its cycles (webhooks bring states the engine has seen, or
// older ones).
func (o *oracle) boundary() {
	cur, live := o.holdings()
	if o.at != nil {
		for _, e := range o.since {
			o.judge(e, cur, live)
		}
	}
	o.judged = append(o.judged[:0], o.since...)
	o.since = o.since[:0]
}

// judge marks e invisible if its system holds its unit (or the record's
// existence) now as it did when the engine last learned it (o.at).
func (o *oracle) judge(e *edit, cur map[concord.SystemID]map[string]map[string]concord.Value, live map[concord.SystemID]map[string]bool) {
	if e.unit == recordUnit {
		e.invisible = live[e.sys][e.key] == o.atLive[e.sys][e.key]
		return
	}
	if !live[e.sys][e.key] || !o.atLive[e.sys][e.key] {
		return
	}
	prev, had := o.at[e.sys][ku(e.key, e.unit)]
	now, has := cur[e.sys][ku(e.key, e.unit)]
	e.invisible = had && has && sameVals(e.unit, prev, now)
}

// beforeReplay is the boundary of a replay of a record that was
// dead-lettered as a cycle read it (see afterCycle): the replay reads that
// record, and only it, from its system again, so the edits made there
// since the engine last learned it are judged now, as a cycle's boundary
// judges every system's. It returns them, for afterReplay.
func (o *oracle) beforeReplay(s concord.SystemID, key string) []*edit {
	if o.at == nil {
		return nil
	}
	cur, live := o.holdings()
	var judged []*edit
	o.since = slices.DeleteFunc(o.since, func(e *edit) bool {
		if e.sys != s || e.key != key {
			return false
		}
		o.judge(e, cur, live)
		judged = append(judged, e)
		return true
	})
	return judged
}

// afterReplay notes what s holds of key once the replay judged by
// beforeReplay ended: what the engine believes it holds. A replay that
// learned nothing (it failed, crashed or dead-lettered the record again)
// leaves the previous state standing, and the edits are judged at the next
// read.
func (o *oracle) afterReplay(s concord.SystemID, key string, judged []*edit, learned bool) {
	if o.at == nil {
		return
	}
	if !learned {
		// Failed again as it read the record afresh: the new letter
		// keeps this read (remerged dropped the one kept before).
		cur, live := o.holdings()
		o.keepRead(sysKey{s, key}, cur, live, judged)
		for _, e := range judged {
			e.invisible = false
		}
		o.since = append(o.since, judged...)
		return
	}
	cur, live := o.holdings()
	o.learnAt(s, key, cur[s], live[s][key])
}

// learnAt notes that the engine believes s holds of key the values vals
// (key/unit -> values) and the existence live.
func (o *oracle) learnAt(s concord.SystemID, key string, vals map[string]map[string]concord.Value, live bool) {
	for _, u := range units {
		if v, ok := vals[ku(key, u)]; ok {
			o.at[s][ku(key, u)] = v
		} else {
			delete(o.at[s], ku(key, u))
		}
	}
	o.atLive[s][key] = live
}

// wroteAt notes, after an engine step that is not a cycle (a webhook's
// Ingest, a replay, a settlement), that the engine believes aw's system
// holds what aw, applied and answered, left of the units it wrote.
func (o *oracle) wroteAt(aw appliedWrite) {
	if o.at == nil {
		return
	}
	cur, live := o.holdings()
	for _, u := range aw.units() {
		if v, ok := cur[aw.sys][ku(aw.key, u)]; ok {
			o.at[aw.sys][ku(aw.key, u)] = v
		} else {
			delete(o.at[aw.sys], ku(aw.key, u))
		}
	}
	o.atLive[aw.sys][aw.key] = live[aw.sys][aw.key]
}

// afterCycle notes what each system holds once a cycle wrote to it: what
// the engine believes it holds. A record the cycle dead-lettered as it read
// it (a panicking resolver, gate or transform) was not learned: the engine
// reads it again from its system when the dead letter is replayed, so for
// that system and record the previous state still stands, and the edits
// made since are judged at the next read: the replay's (beforeReplay), or
// the next cycle's boundary.
func (o *oracle) afterCycle() {
	at, live := o.holdings()
	if o.at != nil {
		for sk := range o.unlearned {
			o.keepRead(sk, at, live, o.judged)
			for _, u := range units {
				if v, ok := o.at[sk.s][ku(sk.key, u)]; ok {
					at[sk.s][ku(sk.key, u)] = v
				} else {
					delete(at[sk.s], ku(sk.key, u))
				}
			}
			live[sk.s][sk.key] = o.atLive[sk.s][sk.key]
			for _, e := range o.judged {
				if e.sys == sk.s && e.key == sk.key {
					e.invisible = false
					o.since = append(o.since, e)
				}
			}
		}
	}
	clear(o.unlearned)
	o.at, o.atLive = at, live
}

// keepRead notes, for a record sk that the step now ending dead-lettered
// as it read it for a failed merge (and that no earlier read waits for),
// what the system held as it was read (at, live: every system's holdings)
// and how the edits judged at that read were judged: the engine merges
// that read from the letter later (remerged).
func (o *oracle) keepRead(sk sysKey, at map[concord.SystemID]map[string]map[string]concord.Value, live map[concord.SystemID]map[string]bool, judged []*edit) {
	if _, kept := o.stored[sk]; kept || !o.mergeDead(sk) {
		return
	}
	sr := storedRead{vals: map[string]map[string]concord.Value{}, live: live[sk.s][sk.key], verdicts: map[*edit]bool{}, step: o.w.step}
	for _, u := range units {
		if v, ok := at[sk.s][ku(sk.key, u)]; ok {
			sr.vals[ku(sk.key, u)] = v
		}
	}
	for _, e := range judged {
		if e.sys == sk.s && e.key == sk.key {
			sr.verdicts[e] = e.invisible
		}
	}
	o.stored[sk] = sr
}

// remerged is called after every engine step (what: "cycle", "ingest",
// "replay", ...) with the records it read from the systems (fresh) and,
// for a person's replay, the one it read again: a record a cycle
// dead-lettered as it read it for a failed merge (o.stored) whose dead
// letter is now gone was merged at this step from the read it kept, unless
// the step read the record there afresh (judged at the boundary before a
// cycle, or by beforeReplay). Merged from the kept read, the engine learned
// what the system held then: the edits made there before that read are
// judged as the boundary before it judged them (a value set and set back
// before it is as invisible as ever), and the engine believes the system
// holds that read with this step's writes.
func (o *oracle) remerged(what string, fresh []sysKey) {
	for sk, sr := range o.stored {
		read := (what == "cycle" || what == "replay") && slices.Contains(fresh, sk)
		if o.mergeDead(sk) {
			if read {
				// Read afresh and failed again: the new dead letter
				// keeps this read (afterCycle notes it).
				delete(o.stored, sk)
				o.dropRead(sk, sr.step)
			}
			continue // merged again from the kept read and failed again, or not merged yet
		}
		delete(o.stored, sk)
		if read {
			o.dropRead(sk, sr.step)
			continue
		}
		for e, inv := range sr.verdicts {
			e.invisible = inv
		}
		o.since = slices.DeleteFunc(o.since, func(e *edit) bool { _, ok := sr.verdicts[e]; return ok })
		// Edits made there after the read are judged at the next one.
		later := slices.ContainsFunc(o.since, func(e *edit) bool { return e.sys == sk.s && e.key == sk.key })
		if o.at == nil {
			continue
		}
		if later {
			o.learnAt(sk.s, sk.key, sr.vals, sr.live)
		} else {
			cur, live := o.holdings()
			o.learnAt(sk.s, sk.key, cur[sk.s], live[sk.s][sk.key])
		}
	}
}

// dropRead notes that the read of sk at step, kept for a failed merge, was
// superseded by a fresher read, at this step, before the engine merged it.
func (o *oracle) dropRead(sk sysKey, step int) {
	if o.dropped == nil {
		o.dropped = map[sysKey][]droppedRead{}
	}
	o.dropped[sk] = append(o.dropped[sk], droppedRead{read: step, by: o.w.step})
}

// forgetReads notes that the cycle now ending learned nothing of what it
// read (it crashed before its first commit): for every system and record
// the previous state still stands, as for a record dead-lettered as it was
// read (see afterCycle).
func (o *oracle) forgetReads() {
	for _, s := range o.w.names {
		for _, key := range o.w.keys {
			o.unlearned[sysKey{s, key}] = true
		}
	}
}

// readFailed notes that the cycle now ending failed to read s's changes:
// what it had read of them before the failure is kept, and nothing else.
// Every record of s that the cycle neither received from s (learned[key]:
// a page of the feed or a read by key that succeeded) nor wrote there
// successfully was not learned: the previous state still stands, and the
// edits made there since are judged at the next read, as for a record
// dead-lettered as it was read (see afterCycle). A set-back made before that
// read is then invisible to an engine as one made between two reads is (a
// failed read shows nothing of what the system held in between).
func (o *oracle) readFailed(s concord.SystemID, learned map[string]bool) {
	for _, key := range o.w.keys {
		if !learned[key] {
			o.unlearned[sysKey{s, key}] = true
		}
	}
}

// holdings returns what each system holds now.
func (o *oracle) holdings() (map[concord.SystemID]map[string]map[string]concord.Value, map[concord.SystemID]map[string]bool) {
	cur := map[concord.SystemID]map[string]map[string]concord.Value{}
	live := map[concord.SystemID]map[string]bool{}
	for _, s := range o.w.names {
		cur[s] = map[string]map[string]concord.Value{}
		live[s] = map[string]bool{}
		for _, key := range o.w.keys {
			rec, ok := o.w.fakes[s].Record(key)
			live[s][key] = ok
			if !ok {
				continue
			}
			for f := range rec.Fields {
				u := unitOf(f)
				cur[s][ku(key, u)] = unitVals(u, rec.Fields)
			}
		}
	}
	return cur, live
}

// snapshot is what the systems held (system -> key/unit -> values) when a
// store snapshot was taken, at step.
type snapshot struct {
	step int
	vals map[concord.SystemID]map[string]map[string]concord.Value
	live map[concord.SystemID]map[string]bool
	sent map[concord.SystemID]map[string][]map[string]concord.Value // attempted writes, as oracle.attempted
	// seen is what each system held (system -> key/unit -> values) when
	// the engine last read or wrote the record there before the snapshot:
	// what the store's copy records for it, which lags vals when a system
	// changed since (an edit the engine had not read yet).
	seen map[concord.SystemID]map[string]map[string]concord.Value
	// seenLive is, for each record the engine had read or written in a
	// system before the snapshot, whether it exists there as the engine
	// last knew it (system -> key): what the store's copy records, which
	// lags live the same way.
	seenLive map[concord.SystemID]map[string]bool
}

type restore struct {
	snap snapshot
	step int
}

// snapshot notes what every system holds as the store is copied.
func (o *oracle) snapshot() {
	sn := snapshot{step: o.w.step, vals: map[concord.SystemID]map[string]map[string]concord.Value{},
		live: map[concord.SystemID]map[string]bool{}, sent: map[concord.SystemID]map[string][]map[string]concord.Value{},
		seen: map[concord.SystemID]map[string]map[string]concord.Value{}, seenLive: map[concord.SystemID]map[string]bool{}}
	for s, m := range o.attempted {
		sn.sent[s] = maps.Clone(m) // the lists are only appended to: sharing their prefix is safe
	}
	for _, s := range o.w.names {
		sn.vals[s] = map[string]map[string]concord.Value{}
		sn.live[s] = map[string]bool{}
		sn.seen[s] = map[string]map[string]concord.Value{}
		sn.seenLive[s] = map[string]bool{}
		for _, key := range o.w.keys {
			if r, ok := o.seenRec[string(s)+"/"+key]; ok {
				sn.seenLive[s][key] = r.live
				if r.live {
					for f := range r.fields {
						u := unitOf(f)
						sn.seen[s][ku(key, u)] = unitVals(u, r.fields)
					}
				}
			}
			rec, ok := o.w.fakes[s].Record(key)
			if !ok {
				continue
			}
			sn.live[s][key] = true
			for f := range rec.Fields {
				u := unitOf(f)
				sn.vals[s][ku(key, u)] = unitVals(u, rec.Fields)
			}
		}
	}
	o.snaps = append(o.snaps, sn)
}

// restored notes that store snapshot i was restored now.
func (o *oracle) restored(i int) {
	o.restores = append(o.restores, restore{snap: o.snaps[i], step: o.w.step})
}

// restoreAmbiguous reports whether e set a value its system also held when
// a snapshot was taken before e that was restored (before or after e): the
// restored state says the system holds that value, and nothing it reports
// can tell that it left it and came back (an engine without field times
// cannot; see the engine's docs).
func (o *oracle) ambiguous(e *edit) bool {
	rule := ""
	switch {
	case o.restoreAmbiguous(e):
		rule = "restore"
	case o.revertAmbiguous(e):
		rule = "undo-after-unknown-write"
	case o.undoneBeforeMerge(e):
		rule = "undo-before-kept-read-merged"
	default:
		return false
	}
	return o.excuse(e, rule)
}

// excuse counts e as let pass by the ambiguity rule named rule (once per
// edit), and returns true.
func (o *oracle) excuse(e *edit, rule string) bool {
	if !o.excused[e.id] {
		o.excused[e.id] = true
		o.w.res.Excused[rule]++
	}
	return true
}

// heldAtAgreement reports whether the delete d was made in a system that
// held the values of the edit e (made elsewhere) all along from before an
// engine cycle after e until d, and in that cycle the engine read or wrote
// the record there and recorded an agreement of equal values ("equal-values")
// on e's unit with e's values. The engine then counts the system as holding
// e's version (the versions of equal values are joined), so d descends e
// and wins outright; physically the system never received e, but the person
// who deleted saw exactly the value e made, and any reader of the system
// could see nothing else. Only values that cannot carry an edit's identity
// (bools and nil) are judged so: a system holding any other value of e's
// holds it because the engine delivered it, and then d follows e anyway.
//
// The engine need not see the record there in the agreement's cycle: what
// it counts as the system's values is what it last learned there, and if
// that was the system's own report of e's very values (an edit it
// observed there, edit.observed) made after the system began to hold them
// and no later than the agreement, the agreement joined that report's
// version, or found it canonical already, all the same (counted as
// held-at-agreement-reported). Seed 141,144: a person typed a null into
// the flag their system (with field times) lacked, which is no edit to
// the oracle but moves the field's time; a late webhook carried that
// state, and the engine took it for an edit to nil; a person elsewhere
// set the flag to false and back to nil; a cycle that could not read the
// first system (a timeout) read that nil and recorded the two nils as an
// agreement; then the first system's person, who had seen nil all along,
// deleted the record. No engine could tell the two nils apart, and the
// person who deleted saw exactly the value the other edit made.
func (o *oracle) heldAtAgreement(d, e *edit) bool {
	h, ok := heldByDeleter(d, e)
	if !ok {
		return false
	}
	seen := o.seenAt[string(d.sys)+"/"+e.key]
	reported := o.reports[string(d.sys)+"/"+ku(e.key, e.unit)]
	same := func(vals map[string]concord.Value) bool {
		return sameVals(e.unit, vals, e.vals) || sameAuditForm(e.vals, vals, false)
	}
	rule := ""
	for _, a := range o.agreed[ku(e.key, e.unit)] {
		if a.step <= e.step || a.step <= h.from || a.step >= d.step || !same(a.vals) {
			continue
		}
		if slices.ContainsFunc(seen, func(x seenState) bool { return x.step == a.step }) {
			rule = "held-at-agreement"
			break
		}
		if slices.ContainsFunc(reported, func(r agreement) bool { return r.step > h.from && r.step <= a.step && same(r.vals) }) {
			rule = "held-at-agreement-reported"
		}
	}
	if rule == "" {
		return false
	}
	return o.excuse(e, rule)
}

// heldAtEcho is heldAtAgreement where the engine took e for the echo of its
// own write rather than recording an agreement: e set in its system the
// very values (bools or nil, as there) of an engine write there made before
// e, whose outcome the engine never learned (o.unconf, applied or not); a
// cycle then read e's system after e, while the system of the delete d held
// those values, from before that read until d. A system reporting a value
// the engine attempted to write there is the engine's write to it (rule 4
// of package sync), so the engine counts e's system as holding the write's
// version, which d's system holds too, and d descends it; physically d's
// system never received e, but the person who deleted saw exactly the
// value e made. No engine can tell e from the write applied: e carries no
// identity, and the write's outcome is unknown.
func (o *oracle) heldAtEcho(d, e *edit) bool {
	h, ok := heldByDeleter(d, e)
	if !ok {
		return false
	}
	if !slices.ContainsFunc(o.unconf, func(uc unconfirmed) bool {
		return uc.sys == e.sys && uc.key == e.key && uc.unit == e.unit && uc.step < e.step &&
			len(uc.set) > 0 && sameVals(e.unit, uc.set, e.vals)
	}) {
		return false
	}
	if !slices.ContainsFunc(o.readIn[sysKey{e.sys, e.key}], func(c int) bool { return c > e.step && c > h.from && c < d.step }) {
		return false
	}
	return o.excuse(e, "held-at-echo")
}

// echoTaken reports whether an engine may take e for the echo of its own
// write, which w then supersedes: an engine write there, made before e and
// whose outcome the engine never learned (o.unconf, applied or not), carried
// e's very values (bools or nil, as there); a cycle read e's system after
// e; and w, made in another system after the write, changed that system's
// unit from those same values, the version the write carried. A system
// reporting a value the engine attempted to write there is the engine's
// write to it (rule 4 of package sync), so the engine counts e's system as
// holding the write's version, which w follows, and w wins outright. No
// engine can tell e from the write applied: e carries no identity, and the
// write's outcome is unknown. heldAtEcho is the same case with a delete
// for w.
func (o *oracle) echoTaken(e, w *edit) bool {
	if e.unit == recordUnit || w.unit != e.unit || w.key != e.key || w.sys == e.sys || !w.existed || !anonymous(e.vals) {
		return false
	}
	return slices.ContainsFunc(o.unconf, func(uc unconfirmed) bool {
		return uc.sys == e.sys && uc.key == e.key && uc.unit == e.unit && uc.step < e.step && uc.step < w.step &&
			len(uc.set) > 0 && sameVals(e.unit, uc.set, e.vals) && sameVals(e.unit, w.before, uc.set)
	}) && slices.ContainsFunc(o.readIn[sysKey{e.sys, e.key}], func(c int) bool { return c > e.step })
}

// heldByDeleter returns what the system of the delete d held of e's unit
// as it deleted, and since when, if that is e's values: e an edit of a
// field unit made before d in another system, to values that cannot carry
// an edit's identity (bools and nil). Both heldAtAgreement and heldAtEcho
// start from it.
func heldByDeleter(d, e *edit) (heldUnit, bool) {
	if e.unit == recordUnit || d.sys == e.sys || d.step <= e.step || !anonymous(e.vals) {
		return heldUnit{}, false
	}
	h, ok := d.held[e.unit]
	if !ok || !sameVals(e.unit, h.vals, e.vals) {
		return heldUnit{}, false
	}
	return h, true
}

// createdOverHeldDelete reports whether the creation c follows the delete
// e made in another system because c's system held the record gone, as e
// left it, all along from before the engine took e for the record's state
// until c: the engine merged e (a merge.decided of the record, deleted,
// from e's system, after e and before c), and read or wrote the record in
// c's system while it held it gone (so that its state there said gone).
// Existence is a value that cannot carry an edit's identity, as bools and
// nil cannot (heldAtAgreement): a system whose state says gone while the
// record's state is gone is in sync, and the engine counts it as holding
// the record's version (push.go's synced joins the versions of equal
// states, with no event to say so), so c descends e and wins outright.
// Physically c's system never received e, but the person who created the
// record saw exactly what e made, and any reader of the system could see
// nothing else. Seed 95,080: a system deleted the record, two others
// created it again, a cycle that could not read the first (its feed stuck)
// wrote it nothing, a person deleted it in the second, and then one in the
// first, which had held it gone all along, created it.
func (o *oracle) createdOverHeldDelete(c, e *edit) bool {
	if c.unit != recordUnit || c.deleted || e.unit != recordUnit || !e.deleted || c.key != e.key || c.sys == e.sys || c.step <= e.step {
		return false
	}
	if !slices.ContainsFunc(o.deleteMerged[e.key], func(m existMerge) bool { return m.sys == e.sys && m.step > e.step && m.step < c.step }) {
		return false
	}
	if !slices.ContainsFunc(o.seenAt[string(c.sys)+"/"+c.key], func(x seenState) bool {
		return x.step >= c.goneFrom && x.step < c.step && !x.rec.live
	}) {
		return false
	}
	return o.excuse(e, "held-at-sync")
}

// deletedOverHeldCreate is createdOverHeldDelete the other way round:
// whether the delete d follows the creation e made in another system
// because d's system held the record, as e left it (live), all along from
// before the engine took e into the record's state until d. The engine
// read the record in e's system, live, after e (a creation of a record
// whose state is live, or made live again, joins it, with no decision
// when the state was live already), and in that cycle or a later one,
// before d, wrote the record to d's system, which held it all along, and
// the write succeeded: the engine counts d's system as holding the
// record's version, which descends e, so d wins outright. Physically the
// write brought d's system nothing of e (existence names no edit, and e's
// system's values lost, or matched what was there), but the person who
// deleted saw exactly what e made and all the engine delivered. Seed
// 181,478: a system whose writes of the record failed created it, the
// engine merged it (its fields losing every conflict) and wrote another
// system, whose person then deleted it. Seed 208,571: the engine's delete
// of the record never reached a system; another system created it again,
// and the engine wrote the re-created record over the first, whose person
// then deleted it.
func (o *oracle) deletedOverHeldCreate(d, e *edit) bool {
	if e.unit != recordUnit || e.deleted || d.unit != recordUnit || !d.deleted || d.key != e.key || d.sys == e.sys || d.step <= e.step {
		return false
	}
	took := slices.IndexFunc(o.seenAt[string(e.sys)+"/"+e.key], func(x seenState) bool {
		return x.step > e.step && x.step > d.liveFrom && x.step < d.step && x.rec.live
	})
	if took < 0 {
		return false
	}
	m := o.seenAt[string(e.sys)+"/"+e.key][took].step
	if !slices.ContainsFunc(o.wroteLive[string(d.sys)+"/"+d.key], func(x int) bool { return x >= m && x < d.step }) {
		return false
	}
	return o.excuse(e, "held-live-at-write")
}

func (o *oracle) restoreAmbiguous(e *edit) bool {
	if e.unit == recordUnit && e.deleted {
		// A delete after a restore of a snapshot in which the record
		// was already gone from the system, or in which the engine
		// knew it gone there (the system had created it again since,
		// unread): the restored state says it is deleted there, and so
		// it is.
		for _, r := range o.restores {
			seen, known := r.snap.seenLive[e.sys][e.key]
			if r.snap.step < e.step && (!r.snap.live[e.sys][e.key] || known && !seen) {
				return true
			}
		}
		return false
	}
	if e.unit == recordUnit {
		// A create after a restore of a snapshot in which the system
		// held the record, or the engine knew it held it: the restored
		// state says it holds it, and existence names no value that
		// would tell a record deleted and created again since from one
		// held all along.
		for _, r := range o.restores {
			if r.snap.step < e.step && (r.snap.live[e.sys][e.key] || r.snap.seenLive[e.sys][e.key]) {
				return true
			}
		}
		return false
	}
	for _, r := range o.restores {
		if r.snap.step > e.step {
			continue
		}
		if v, ok := r.snap.vals[e.sys][ku(e.key, e.unit)]; ok && sameVals(e.unit, v, e.vals) {
			return true
		}
		// The value the restored state records for the system: what it
		// held when the engine last read or wrote the record there, which
		// an edit made after that read and before the snapshot changed
		// (the snapshot's vals) without the engine knowing.
		if v, ok := r.snap.seen[e.sys][ku(e.key, e.unit)]; ok && sameVals(e.unit, v, e.vals) {
			return true
		}
		// A value the engine had tried to write there: the restored
		// state remembers the attempt, and takes the value for it.
		if slices.ContainsFunc(r.snap.sent[e.sys][ku(e.key, e.unit)], func(v map[string]concord.Value) bool { return sameVals(e.unit, v, e.vals) }) {
			return true
		}
	}
	return false
}

func newOracle(w *world) *oracle {
	o := &oracle{w: w, byKU: map[string][]*edit{}, know: map[concord.SystemID]map[string]hist{},
		last: map[concord.SystemID]map[string]snap{}, decided: map[string][]map[string]concord.Value{},
		recordDecidedAt: map[string]int{}, deleteMerged: map[string][]existMerge{}, wroteLive: map[string][]int{}, recreated: map[string]bool{}, decidedAt: map[string]int{}, lastSeen: map[string]int{}, seenRec: map[string]snap{},
		attempted: map[concord.SystemID]map[string][]map[string]concord.Value{}, unlearned: map[sysKey]bool{}, stored: map[sysKey]storedRead{}, excused: map[int]bool{}, readIn: map[sysKey][]int{}, unmerged: map[string][]int{},
		seenAt: map[string][]seenState{}, heldFrom: map[concord.SystemID]map[string]int{}, agreed: map[string][]agreement{}, reports: map[string][]agreement{}}
	o.mergeDead = w.mergeDeadLetter
	for _, s := range w.names {
		o.know[s] = map[string]hist{}
		o.last[s] = map[string]snap{}
		o.heldFrom[s] = map[string]int{}
	}
	return o
}

func ku(key, unit string) string { return key + "/" + unit }

func (o *oracle) newEdit(s concord.SystemID, key, unit string, vals map[string]concord.Value, deleted bool, h hist) *edit {
	e := &edit{id: len(o.edits) + 1, sys: s, key: key, unit: unit, vals: vals, deleted: deleted, step: o.w.step, cycles: o.w.res.Cycles,
		ahead: o.w.ahead == s}
	e.hist = h.with(hist{e.id: true})
	o.edits = append(o.edits, e)
	o.since = append(o.since, e)
	o.byKU[ku(key, unit)] = append(o.byKU[ku(key, unit)], e)
	o.know[s][ku(key, unit)] = e.hist
	o.w.res.Edits++
	o.w.logf("  person %s", e)
	return e
}

// nextID is the id the next edit will get (values embed it).
func (o *oracle) nextID() int { return len(o.edits) + 1 }

// personEdit makes a person's edit of fields in s and records one edit per
// unit it touched (and a creation if the record was not live in s).
func (o *oracle) personEdit(s concord.SystemID, f *fake.System, key string, fields map[string]concord.Value) {
	prev, had := f.Record(key)
	rec := f.Edit(key, fields)
	if !had {
		goneFrom := o.heldFrom[s][ku(key, recordUnit)]
		o.changedAll(s, key)
		var h hist
		for u, k := range o.know[s] {
			if strings.HasPrefix(u, key+"/") {
				h = h.with(k)
			}
		}
		o.newEdit(s, key, recordUnit, nil, false, h).goneFrom = goneFrom
	}
	var touched []string
	for fl := range fields {
		if u := unitOf(fl); !slices.Contains(touched, u) {
			touched = append(touched, u)
		}
	}
	slices.Sort(touched)
	for _, u := range touched {
		if had && sameVals(u, unitVals(u, prev.Fields), unitVals(u, rec.Fields)) {
			// The person typed what was there: nothing changed that
			// any reader could see, so it is no edit. Save the field's
			// time, in a system that keeps field times, when the
			// field was missing (a record created again without it):
			// the null typed there is the null it held, but the
			// system stamps the field as changed now, which is
			// exactly what a person setting back the null the field
			// held before an engine write reports. Kept aside, not
			// an edit: it names and follows nothing, and only the
			// set-back rule reads it (setBackAmbiguous).
			if o.w.fieldTimes[s] && slices.ContainsFunc(fieldsOf(u), func(fl string) bool {
				_, typed := fields[fl]
				_, held := prev.Fields[fl]
				return typed && !held
			}) {
				// Its id is the last edit's before it: it has none
				// of its own, and no edit's hist names it.
				o.typedNulls = append(o.typedNulls, &edit{id: len(o.edits), sys: s, key: key, unit: u,
					vals: unitVals(u, rec.Fields), step: o.w.step, cycles: o.w.res.Cycles})
			}
			continue
		}
		// Program order: the edit follows what s held of the record's
		// existence (a delete it saw, a re-creation).
		h := o.know[s][ku(key, u)].with(o.know[s][ku(key, recordUnit)])
		if had {
			// s held the value of every edit whose value it shows: the
			// person saw it (an engine merge of equal values makes
			// several edits one value).
			pv := unitVals(u, prev.Fields)
			for _, e := range o.byKU[ku(key, u)] {
				if len(pv) > 0 && sameVals(u, e.vals, pv) {
					h = h.with(e.hist)
				}
			}
		}
		e := o.newEdit(s, key, u, unitVals(u, rec.Fields), false, h)
		if had {
			e.before, e.existed = unitVals(u, prev.Fields), true
		}
		o.heldFrom[s][ku(key, u)] = o.w.step
	}
	o.last[s][key] = snap{live: true, fields: rec.Fields}
}

// personDelete deletes the record in s (if live) and records the delete: it
// follows everything s knew of the record.
func (o *oracle) personDelete(s concord.SystemID, f *fake.System, key string) {
	prev, _ := f.Record(key)
	if !f.Delete(key) {
		return
	}
	held := make(map[string]heldUnit, len(units))
	for _, u := range units {
		held[u] = heldUnit{vals: unitVals(u, prev.Fields), from: o.heldFrom[s][ku(key, u)]}
	}
	liveFrom := o.heldFrom[s][ku(key, recordUnit)]
	o.changedAll(s, key)
	var h hist
	for u, k := range o.know[s] {
		if strings.HasPrefix(u, key+"/") {
			h = h.with(k)
		}
	}
	// Private: s created this incarnation of the record since the last
	// cycle, or since the engine last did anything with it there (its
	// reads failed), so no engine ever saw it.
	private := slices.ContainsFunc(o.byKU[ku(key, recordUnit)], func(x *edit) bool {
		return x.sys == s && !x.deleted && (x.cycles == o.w.res.Cycles || x.step > o.lastSeen[string(s)+"/"+key])
	})
	d := o.newEdit(s, key, recordUnit, nil, true, h)
	d.private, d.held, d.liveFrom = private, held, liveFrom
	o.last[s][key] = snap{}
}

// changedAll notes that s's record key appeared or went now: every unit of
// it is held (or not) since now.
func (o *oracle) changedAll(s concord.SystemID, key string) {
	for _, u := range units {
		o.heldFrom[s][ku(key, u)] = o.w.step
	}
	o.heldFrom[s][ku(key, recordUnit)] = o.w.step
}

func unitVals(u string, fields map[string]concord.Value) map[string]concord.Value {
	out := map[string]concord.Value{}
	for _, f := range fieldsOf(u) {
		if v, ok := fields[f]; ok {
			out[f] = v
		}
	}
	return out
}

// sameVals compares a unit's values, a missing field counting as nil.
func sameVals(u string, a, b map[string]concord.Value) bool {
	for _, f := range fieldsOf(u) {
		if !concord.EqualValues(a[f], b[f]) {
			return false
		}
	}
	return true
}

// observe looks at every system after an engine step: what changed there
// was written by the engine. A written value must be one that some edit
// produced (or empty); the system now knows the edits that produced it.
func (o *oracle) observe() {
	for _, s := range o.w.names {
		f := o.w.fakes[s]
		for _, key := range o.w.keys {
			rec, live := f.Record(key)
			prev := o.last[s][key]
			cur := snap{live: live, fields: rec.Fields}
			if prev.live != live {
				o.changedAll(s, key)
				for _, e := range o.byKU[ku(key, recordUnit)] {
					if e.deleted == !live {
						o.learn(s, ku(key, recordUnit), e.hist)
					}
				}
			}
			if live {
				for _, u := range units {
					uv := unitVals(u, cur.fields)
					if prev.live && !sameVals(u, uv, unitVals(u, prev.fields)) {
						o.heldFrom[s][ku(key, u)] = o.w.step
					}
					if prev.live && sameVals(u, uv, unitVals(u, prev.fields)) && len(uv) == len(unitVals(u, prev.fields)) {
						continue
					}
					o.written(s, key, u, uv)
				}
			}
			o.last[s][key] = cur
		}
	}
	o.events()
}

// written handles the values uv of unit u that the engine wrote into s.
func (o *oracle) written(s concord.SystemID, key, u string, uv map[string]concord.Value) {
	matched := false
	for _, e := range o.byKU[ku(key, u)] {
		// A group reported in part was completed by the engine: the
		// system that receives it learns that edit too. In part as
		// the edit's system reports it (reported), not as it stores
		// it: a system that leaves nulls out (featSparse) keeps a null
		// the engine wrote to a group's member as a field, and its
		// person's edit of the other member then holds that null, but
		// no report of it carries the null, and the engine completes
		// the group from the value it knows for the rest, as it does
		// for a member the system never had. That value is the null
		// the engine wrote unless something made it forget the write
		// (seed 91,653: a store restore of a snapshot taken before it,
		// after which it knows the value the snapshot recorded there);
		// accounted judges such an edit by the fields it reported, and
		// the systems that receive the completed group learn it so.
		vals := o.reported(e)
		if sameVals(u, e.vals, uv) || (len(vals) < len(fieldsOf(u)) && len(vals) > 0 && reportedIn(vals, uv)) {
			o.learn(s, ku(key, u), e.hist)
			matched = true
		}
	}
	if matched {
		return
	}
	for _, fl := range fieldsOf(u) {
		v := uv[fl]
		if v == nil {
			continue
		}
		known := false
		for _, e := range o.byKU[ku(key, u)] {
			if x, ok := e.vals[fl]; ok && concord.EqualValues(x, v) {
				known = true
			}
		}
		if !known {
			o.w.res.Unexpected++
			o.w.failf(ClassUnexpected, "%s %s/%s holds %s (%T), which no edit of that field produced", s, key, fl, show(v), v)
		}
	}
}

func (o *oracle) learn(s concord.SystemID, unit string, h hist) {
	o.know[s][unit] = o.know[s][unit].with(h)
}

// events reads the audit events emitted since the last call: the recorded
// decisions, and the person's settlements.
func (o *oracle) events() {
	evs := o.w.audit.Events()
	for _, ev := range evs[o.seen:] {
		if ev.Kind != audit.WriteAttempted && ev.Kind != audit.WriteSucceeded {
			line := fmt.Sprintf("    audit %s %s %s/%s", ev.Kind, ev.System, ev.Key, strings.Join(ev.UnitNames(), ","))
			if ev.Rule != "" {
				line += " rule=" + ev.Rule.String()
			}
			if ev.To != nil || ev.Deleted {
				line += fmt.Sprintf(" to=%s deleted=%v", show(ev.To), ev.Deleted)
			}
			for _, c := range ev.Candidates {
				line += fmt.Sprintf(" [%s canonical=%v %s deleted=%v]", c.System, c.Canonical, show(c.Values), c.Deleted)
			}
			if ev.Error != "" {
				line += " error=" + ev.Error
			}
			o.w.res.Log = append(o.w.res.Log, line) // not in the trace hash: messages may carry nondeterministic detail
		}
		k := ku(ev.Key, ev.Unit)
		if ev.System != "" && ev.Key != "" && (ev.Kind == audit.EditObserved || ev.Kind == audit.WriteSucceeded || ev.Kind == audit.ReadSuperseded) {
			sk := string(ev.System) + "/" + ev.Key
			o.lastSeen[sk] = o.w.step
			rec, live := o.w.fakes[ev.System].Record(ev.Key)
			seen := snap{live: live, fields: maps.Clone(rec.Fields)}
			if prev := o.seenRec[sk]; ev.Kind == audit.WriteSucceeded && live && !ev.Deleted && len(ev.Fields) > 0 {
				// A write teaches the engine the fields it wrote, not
				// the others (a person may have changed them since its
				// last read): those it knows as it last saw them. (A
				// write the engine names no field of created an empty
				// record; the oracle's own tests name none either.)
				seen.fields = map[string]concord.Value{}
				if prev.live {
					maps.Copy(seen.fields, prev.fields)
				}
				for _, f := range ev.Fields {
					if v, ok := rec.Fields[f]; ok {
						seen.fields[f] = v
					}
				}
			}
			o.seenRec[sk] = seen
			if n := len(o.seenAt[sk]); n == 0 || o.seenAt[sk][n-1].step != o.w.step {
				o.seenAt[sk] = append(o.seenAt[sk], seenState{step: o.w.step, rec: o.seenRec[sk]})
			}
		}
		if ev.Kind == audit.WriteSucceeded && ev.System != "" && ev.Key != "" && !ev.Deleted {
			sk := string(ev.System) + "/" + ev.Key
			o.wroteLive[sk] = append(o.wroteLive[sk], o.w.step)
		}
		if ev.Kind == audit.EditObserved && ev.System != "" && ev.Key != "" && ev.Unit != resolve.RecordUnit {
			for _, u := range ev.UnitNames() { // edits of one system's report may be one event
				sku := string(ev.System) + "/" + ku(ev.Key, u)
				o.reports[sku] = append(o.reports[sku], agreement{step: o.w.step, vals: unitVals(u, ev.To)})
			}
		}
		switch ev.Kind {
		case audit.RecordQuarantined:
			// Dead-lettered as the step read it: not learned. The
			// stored letter says so too (world.account), but a cycle
			// whose final commit failed stores no letter, and its next
			// cycle reads the record there again from the same cursor.
			if ev.System != "" && ev.Key != "" {
				o.unlearned[sysKey{ev.System, ev.Key}] = true
			}
		case audit.ConflictDetected, audit.ConflictHeld:
			for _, c := range ev.Candidates {
				o.decided[k] = append(o.decided[k], c.Values)
			}
			if ev.Unit == resolve.RecordUnit {
				o.recordDecidedAt[ev.Key] = o.w.step
			}
		case audit.ChangeRefused:
			o.decided[k] = append(o.decided[k], ev.To)
			if ev.Unit == resolve.RecordUnit {
				o.recordDecidedAt[ev.Key] = o.w.step
			}
		case audit.MergeDecided:
			if ev.Unit == resolve.RecordUnit && ev.Deleted && ev.System != "" {
				o.deleteMerged[ev.Key] = append(o.deleteMerged[ev.Key], existMerge{sys: ev.System, step: o.w.step})
			}
			if ev.Unit == resolve.RecordUnit && ev.Rule != "fast-forward" {
				o.recordDecidedAt[ev.Key] = o.w.step
				if ev.Deleted {
					o.decidedAt[ev.Key] = o.w.step
				}
			}
			if ev.Rule == recsync.RuleRecreated {
				for _, u := range ev.UnitNames() { // decisions alike may be one event
					o.recreated[ku(ev.Key, u)] = true
				}
			}
			if ev.Rule == recsync.RuleEqualValues && ev.Unit != resolve.RecordUnit {
				for _, u := range ev.UnitNames() {
					o.agreed[ku(ev.Key, u)] = append(o.agreed[ku(ev.Key, u)], agreement{step: o.w.step, vals: unitVals(u, ev.To)})
				}
			}
		}
	}
	o.seen = len(evs)
}

// reported returns e's values as its system's reports carry them: without
// the nulls of a system whose reports never carry one (featSparse), where a
// group's null member is the engine's to fill as it takes absence (the
// group reported in part).
func (o *oracle) reported(e *edit) map[string]concord.Value {
	if !o.w.sparse[e.sys] {
		return e.vals
	}
	return nonNull(e.vals)
}

func (o *oracle) isDecided(e *edit) bool {
	vals := o.reported(e)
	partial := len(vals) < len(fieldsOf(e.unit))
	for _, v := range o.decided[ku(e.key, e.unit)] {
		if sameVals(e.unit, v, vals) || (partial && reportedIn(vals, v)) || sameAuditForm(vals, v, partial) {
			return true
		}
	}
	return false
}

// sameAuditForm compares an edit's values with values an audit event
// named in their JSON form: events delivered from the store's audit log
// (after a crash or a failing sink) carry values as decoded from JSON
// (numbers as json.Number, times as text), which name the same edit.
func sameAuditForm(vals, named map[string]concord.Value, partial bool) bool {
	form := func(v concord.Value) string {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprintf("unencodable %T %v", v, v)
		}
		return string(b)
	}
	for f, v := range vals {
		if form(v) != form(named[f]) {
			return false
		}
	}
	return partial || len(vals) == len(named) || func() bool {
		for f, v := range named {
			if _, ok := vals[f]; !ok && v != nil {
				return false
			}
		}
		return true
	}()
}

// final checks the converged systems: agreement, and no lost edit.
func (o *oracle) final() {
	for _, key := range o.w.keys {
		recs := make([]concord.Record, len(o.w.names))
		lives := make([]bool, len(o.w.names))
		for i, s := range o.w.names {
			recs[i], lives[i] = o.w.fakes[s].Record(key)
		}
		if slices.Contains(lives, !lives[0]) {
			o.w.res.Divergent++
			var b strings.Builder
			for i, s := range o.w.names {
				fmt.Fprintf(&b, " %s:live=%v", s, lives[i])
			}
			o.w.failf(ClassDivergent, "record %s exists in some systems only:%s", key, b.String())
			continue
		}
		if lives[0] {
			fields := map[string]bool{}
			for _, r := range recs {
				for f := range r.Fields {
					fields[f] = true
				}
			}
			for _, f := range slices.Sorted(maps.Keys(fields)) {
				for i := 1; i < len(recs); i++ {
					if !concord.EqualValues(recs[0].Fields[f], recs[i].Fields[f]) {
						o.w.res.Divergent++
						o.w.failf(ClassDivergent, "%s/%s: %s holds %s, %s holds %s", key, f, o.w.names[0], show(recs[0].Fields[f]),
							o.w.names[i], show(recs[i].Fields[f]))
						break
					}
				}
			}
		}
		o.checkLost(key, lives[0], recs[0].Fields)
	}
}

// recordDecidedAfter reports whether a decision about e's record's
// existence (a conflict on it, detected or held, a refusal, a decision
// other than a fast-forward) came after e was made: it may have overridden
// e. An edit made after the record's last such decision was overridden by
// none.
func (o *oracle) recordDecidedAfter(e *edit) bool {
	at, ok := o.recordDecidedAt[e.key]
	return ok && e.step < at
}

// recordDecided reports whether any decision about key's existence was
// recorded.
func (o *oracle) recordDecided(key string) bool {
	_, ok := o.recordDecidedAt[key]
	return ok
}

// checkLost reports every edit of key that the final state neither holds
// nor supersedes by a causally later edit or a recorded decision.
func (o *oracle) checkLost(key string, live bool, final map[string]concord.Value) {
	deletes := slices.DeleteFunc(slices.Clone(o.byKU[ku(key, recordUnit)]), func(e *edit) bool { return !e.deleted })
	// deletedAfter: a delete followed edit id, or followed an edit of the
	// same unit and value (equal values are one value to any reader).
	// Or its system held e's value when the engine recorded that as an
	// agreement (heldAtAgreement), or took it for its own write's echo
	// (heldAtEcho).
	deletedAfter := func(id int) bool {
		e := o.edits[id-1]
		return slices.ContainsFunc(deletes, func(d *edit) bool {
			return d.hist[id] || (e.unit != recordUnit && slices.ContainsFunc(o.byKU[ku(e.key, e.unit)], func(x *edit) bool {
				return d.hist[x.id] && sameValue(e, x)
			}))
		}) || slices.ContainsFunc(deletes, func(d *edit) bool {
			return o.heldAtAgreement(d, e) || o.heldAtEcho(d, e) || o.deletedOverHeldCreate(d, e)
		})
	}
	for _, e := range o.edits {
		if e.key != key {
			continue
		}
		if e.invisible {
			o.w.res.Excused["undone-before-read"]++
			continue
		}
		var why string
		switch {
		case e.unit == recordUnit && e.deleted && live:
			// Deletes are equal values: a later (or concurrent) delete
			// elsewhere that an edit followed superseded this one too.
			followedEqual := slices.ContainsFunc(deletes, func(d *edit) bool {
				return d.id != e.id && (d.step >= e.step || !d.hist[e.id] && !e.hist[d.id]) && slices.ContainsFunc(o.edits, func(w *edit) bool {
					return w.key == key && w.id != d.id && w.hist[d.id]
				})
			})
			if followedEqual || e.private || o.ambiguous(e) || o.recordDecidedAfter(e) || slices.ContainsFunc(o.edits, func(w *edit) bool { return w.key == key && w.id != e.id && w.hist[e.id] }) {
				continue
			}
			if slices.ContainsFunc(o.byKU[ku(key, recordUnit)], func(c *edit) bool { return o.createdOverHeldDelete(c, e) }) {
				continue
			}
			why = "the record exists again everywhere, but no edit followed the delete and no decision overrode it"
		case !live:
			if (e.unit == recordUnit && e.deleted) || o.recordDecidedAfter(e) {
				continue
			}
			// Deleted after it, decided, or superseded by a later edit
			// that is.
			var gone func(e *edit, depth int) bool
			gone = func(e *edit, depth int) bool {
				if deletedAfter(e.id) || (e.unit != recordUnit && o.isDecided(e)) || o.ambiguous(e) {
					return true
				}
				// A delete after e that followed a creation the engine
				// takes e for.
				if slices.ContainsFunc(o.alikeCreations(e), func(x *edit) bool {
					return slices.ContainsFunc(deletes, func(d *edit) bool { return d.step > e.step && d.hist[x.id] })
				}) {
					return o.excuse(e, "create-taken-for-write")
				}
				return depth < 64 && slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool {
					return w.id != e.id && w.hist[e.id] && gone(w, depth+1)
				})
			}
			if gone(e, 0) {
				continue
			}
			why = "the record is deleted everywhere by a delete that did not follow this edit, and no decision overrode it"
		case e.unit == recordUnit:
			continue // a creation of a record that exists
		default:
			fv := unitVals(e.unit, final)
			// Accounted for: the final value, named by a recorded
			// decision, deleted by a later delete, or superseded by a
			// causally later edit that is accounted for itself.
			// Memoised: 1 while being decided (a cycle is no proof), 2
			// yes, 3 no.
			memo := map[int]int8{}
			var accounted func(e *edit) bool
			accounted = func(e *edit) bool {
				switch memo[e.id] {
				case 1, 3:
					return false
				case 2:
					return true
				}
				memo[e.id] = 1
				ok := func() bool {
					if sameVals(e.unit, e.vals, fv) || o.isDecided(e) || deletedAfter(e.id) || o.ambiguous(e) {
						return true
					}
					if vals := o.reported(e); reportedIn(vals, fv) && len(vals) < len(fieldsOf(e.unit)) {
						// A group reported in part keeps the fields its
						// system did not have (a report never deletes by
						// omission): the fields it had are what counts.
						return true
					}
					if (o.recreated[ku(key, e.unit)] || o.recordDecided(key)) &&
						(o.decidedAt[key] >= e.step || slices.ContainsFunc(deletes, func(d *edit) bool { return d.step >= e.step })) {
						// Deleted after it (by a decision, if not by an
						// edit that followed it), and created again
						// without it: the engine's "re-created" decision.
						return true
					}
					// A later edit that followed e, or followed an edit
					// of the same value (equal values are one value to
					// any reader), and is accounted for itself.
					if slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool {
						if w.id == e.id {
							return false
						}
						follows := w.hist[e.id] || slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(x *edit) bool {
							return x.id != w.id && w.hist[x.id] && sameValue(e, x)
						})
						return follows && accounted(w)
					}) {
						return true
					}
					// Failing that, a set-back that no engine could
					// tell from one made after e's value reached its
					// system, and is accounted for itself.
					if slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool {
						return w.id != e.id && o.setBackAmbiguous(w, e) && accounted(w) && o.excuse(e, "set-back-after-unknown-write")
					}) {
						return true
					}
					// Or a null typed into the field where its system
					// lacked it, which the engine reads the same way: it
					// counts if the null is the final value, or if a
					// later edit of the unit in that system (which
					// follows it in program order, as an edit's hist
					// would say) is accounted for.
					if slices.ContainsFunc(o.typedNulls, func(t *edit) bool {
						return t.key == key && t.unit == e.unit && o.setBackAmbiguous(t, e) &&
							(sameVals(e.unit, t.vals, fv) || slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool {
								return w.sys == t.sys && w.id > t.id && accounted(w)
							})) && o.excuse(e, "set-back-by-typed-null")
					}) {
						return true
					}
					// Or an edit that no engine could tell from the
					// echo of its own write, superseded by an edit
					// that followed the write's version.
					return slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool {
						return w.id != e.id && o.echoTaken(e, w) && accounted(w) && o.excuse(e, "taken-for-echo")
					})
				}()
				memo[e.id] = 3
				if ok {
					memo[e.id] = 2
				}
				return ok
			}
			if accounted(e) {
				continue
			}
			if (o.recordDecided(key) || o.recreated[ku(key, e.unit)]) && len(deletes) > 0 && allNil(fv) {
				// The record was deleted (by an edit that followed
				// this one, or by a recorded decision) and created
				// again without this unit: the new record does not
				// carry the deleted record's values (the engine's
				// "re-created" decision).
				continue
			}
			if slices.ContainsFunc(o.byKU[ku(key, e.unit)], func(w *edit) bool { return w.hist[e.id] && sameVals(e.unit, w.vals, fv) }) {
				continue
			}
			why = fmt.Sprintf("final value %s; no edit holding it followed this one and no decision named it", show(fv))
		}
		o.w.res.Lost++
		o.w.failf(ClassLost, "edit %s is lost: %s", e, why)
	}
}

// show formats a value or a map of values compactly, with Go types for
// numbers and times.
func show(v any) string {
	switch x := v.(type) {
	case map[string]concord.Value:
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(x)) {
			parts = append(parts, k+":"+show(x[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "nil"
	}
	return fmt.Sprintf("%v(%T)", v, v)
}

// anonymous reports whether every value in vals is a bool or nil: values
// that cannot name the edit that made them.
func anonymous(vals map[string]concord.Value) bool {
	for _, v := range vals {
		if _, ok := v.(bool); !ok && v != nil {
			return false
		}
	}
	return true
}

// allNil reports whether every value in vals is nil (a missing field counts
// as nil).
func allNil(vals map[string]concord.Value) bool {
	for _, v := range vals {
		if v != nil {
			return false
		}
	}
	return true
}

// reportedIn reports whether every field of vals has the same value in fv.
func reportedIn(vals, fv map[string]concord.Value) bool {
	for f, v := range vals {
		if !concord.EqualValues(v, fv[f]) {
			return false
		}
	}
	return true
}

// sameValue reports whether x holds e's value: the same values, or, for a
// group e reported in part, the fields e had.
func sameValue(e, x *edit) bool {
	if sameVals(e.unit, x.vals, e.vals) {
		return true
	}
	return len(e.vals) > 0 && len(e.vals) < len(fieldsOf(e.unit)) && reportedIn(e.vals, x.vals)
}
