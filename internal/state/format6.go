package state

import (
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
)

// CompactVersion is the format version [Codec.EncodeState] writes (see the
// package documentation, "Version 6"): every name once, versions, system
// names, rules and times by reference or delta, hashes that the values
// predict left out. Sealed values and candidates' authors are part of it.
// It is the newest version this package reads.
const CompactVersion = 6

// Time kinds of format 6 (the low 3 bits of a time's header).
const (
	timeZero     = 0 // the zero time.Time
	timeSame     = 1 // nanoseconds from the reference time, in its zone
	timeUTCAbs   = 2 // UTC, Unix seconds and nanoseconds
	timeZoDelta  = 3 // zoned, delta, then offset and zone name
	timeZoAbs    = 4 // zoned, absolute, then offset and zone name
	timeUTCDelta = 5 // UTC, delta (from a zoned reference)
)

// Time slots: each delta-encoded time refers to the previous time of its
// slot, or (the first of its slot) to the previous time of any slot.
const (
	slotMisc = iota
	slotChanged
	slotModified
	slotView
	slotFailed
	slotHold
	numSlots
)

// maxDeltaSec bounds the seconds between a time and its reference for a
// delta encoding (about 17 years); maxRefSec bounds the reference itself,
// so that no sum or difference overflows.
const (
	maxDeltaSec = 1 << 29
	maxRefSec   = 1 << 62
)

// Hash kinds of a copy (the low 3 bits of its flags byte) and of a native
// hash (the whole kind byte).
const (
	hashRaw       = 0 // 8 bytes, big-endian
	hashSmall     = 1 // an unsigned varint
	hashPredicted = 2 // what the canonical value of the field predicts
	hashPrevView  = 3 // the same as in the previous view
	hashZero      = 4 // 0 ([NoValue])
	hashOwnUnit   = 5 // native only: the view's hash of the unit of that name
)

// copySameVersion is the flag of a copy whose version is the canonical
// unit's.
const copySameVersion = 1 << 3

// Unit flags.
const (
	unitPrev = 1 << iota
	unitPrevDeleted
	unitHold
	unitSameVersion
	unitSameWinner
	unitSameRule
	unitSamePrevVersion
)

// View flags.
const (
	viewSeen = 1 << iota
	viewDeleted
	viewParked
	viewFailing
	viewSent
)

// Candidate and hold flags.
const (
	candCanonical = 1 << iota
	candDeleted
	candValues
)

const (
	holdBase = 1 << iota
	holdBaseKnown
)

// searchWindow bounds how many entries of the string and version tables
// the encoder searches for a match; past it, it writes the entry again.
const searchWindow = 64

// tref is a reference time: its Unix seconds and nanoseconds, and its
// zone (nil: UTC).
type tref struct {
	sec  int64
	nsec int64
	set  bool
	name string
	off  int
	loc  *time.Location // the decoder's, to share
}

// enc6 encodes a Record in format 6.
type enc6 struct {
	encoder
	names    []string // sorted, distinct
	atoms    []string
	versions []concord.Version
	regs     [numSlots]tref
	last     tref
	idx      []int  // scratch: a name set
	scratch  []byte // scratch: canonical encodings
	fields   map[string]concord.Value
	pred     []pred
	prevView *View
	// Backing arrays of the tables, enough for most records.
	atomsArr    [8]string
	versionsArr [8]concord.Version
	idxArr      [64]int
	scratchArr  [128]byte
	predArr     [32]pred
	unitArr     [32]*Unit
	// unitOf holds the canonical unit of each name (nil if none).
	unitOf []*Unit
	// viewIdx holds, per view in order, the indices of the names of its
	// Units and Native (nil: to compute), taken from arena.
	viewIdx    [][2][]int
	viewIdxArr [4][2][]int
	arena      []int
	arenaArr   [192]int
	// values counts the bytes of the encodings of the canonical values.
	values int
}

// pred is the prediction of a field's hashes from its canonical value:
// unit is the hash of a single-field unit of that name, native the hash of
// the value alone (see the package documentation).
type pred struct {
	unit, native uint64
	state        uint8 // 0: not computed, 1: computed, 2: none
}

// EncodedSize returns the length of the encoding of st (as
// [Codec.EncodeState] writes it) and how many of its bytes encode the
// canonical values (Record.Fields: each value's tag and content, sealed if
// the Codec seals it). The rest is metadata.
func (c Codec) EncodedSize(st *Record) (total, values int, err error) {
	b, values, err := c.encodeCompact(nil, st)
	return len(b), values, err
}

// encodeCompact appends the format 6 encoding of st to b, and returns the
// bytes of it that encode the canonical values.
func (c Codec) encodeCompact(b []byte, st *Record) ([]byte, int, error) {
	start := len(b)
	e := enc6Pool.Get().(*enc6)
	defer e.release()
	e.reset(append(b, magicState[0], magicState[1], magicState[2], CompactVersion), c, st)
	var flags byte
	if st.Deleted {
		flags |= 1
	}
	e.b = append(e.b, flags)
	e.str(st.Key)
	e.uint(st.Rev)
	e.time6(st.Diverged, slotMisc)

	ids := sortedKeys(st.Systems)
	e.names = e.nameTableOf(st, ids)
	e.nameTable()

	idx := members(e, st.Fields, e.idx)
	e.set(idx)
	for _, i := range idx {
		n := len(e.b)
		e.field(e.names[i], st.Fields[e.names[i]])
		e.values += len(e.b) - n
	}

	units := members(e, st.Units, nil)
	e.set(units)
	if len(e.names) <= len(e.unitArr) {
		e.unitOf = e.unitArr[:len(e.names)]
		clear(e.unitOf)
	} else {
		e.unitOf = make([]*Unit, len(e.names))
	}
	prev := &Unit{}
	for _, i := range units {
		u := st.Units[e.names[i]]
		e.unitOf[i] = u
		e.unit(u, prev)
		prev = u
	}

	e.uint(uint64(len(ids)))
	for i, id := range ids {
		v := st.Systems[id]
		e.atom(string(id))
		var known [2][]int
		if i < len(e.viewIdx) {
			known = e.viewIdx[i]
		}
		e.view(v, known)
		e.prevView = v
	}
	e.seal(start)
	return e.b, e.values, e.err
}

// enc6Pool keeps encoders, whose tables' backing arrays are too large to
// clear and allocate for every record.
var enc6Pool = sync.Pool{New: func() any { return new(enc6) }}

// noRecord is what a released encoder is reset to.
var noRecord Record

// reset readies e to encode st after b.
func (e *enc6) reset(b []byte, c Codec, st *Record) {
	e.encoder = encoder{b: b, c: c, key: st.Key}
	e.names, e.fields, e.pred, e.prevView, e.unitOf, e.values = nil, st.Fields, nil, nil, nil, 0
	e.atoms, e.versions, e.idx, e.scratch = e.atomsArr[:0], e.versionsArr[:0], e.idxArr[:0], e.scratchArr[:0]
	e.arena, e.viewIdx = e.arenaArr[:0], e.viewIdxArr[:0]
	e.regs, e.last = [numSlots]tref{}, tref{}
}

// release drops what e refers to of the record and returns it to the pool.
func (e *enc6) release() {
	clear(e.atoms)
	clear(e.versions)
	clear(e.unitOf)
	clear(e.viewIdx)
	e.reset(nil, Codec{}, &noRecord)
	e.fields = nil
	enc6Pool.Put(e)
}

// nameTableOf returns every unit and field name of st, sorted, each once.
// Most names are those of Units and Fields: the others are looked for in
// them first.
func (e *enc6) nameTableOf(st *Record, ids []concord.SystemID) []string {
	names := make([]string, 0, len(st.Units)+len(st.Fields))
	for k := range st.Units {
		names = append(names, k)
	}
	known := func(k string) bool {
		if _, ok := st.Units[k]; ok {
			return true
		}
		_, ok := st.Fields[k]
		return ok
	}
	for k := range st.Fields {
		if _, ok := st.Units[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var extra []string
	for _, u := range st.Units {
		extra, _ = addUnknown(extra, names, u.Prev, known, nil)
		if h := u.Hold; h != nil {
			extra, _ = addUnknown(extra, names, h.Base, known, nil)
			for _, c := range h.Candidates {
				extra, _ = addUnknown(extra, names, c.Values, known, nil)
			}
		}
	}
	e.viewIdx = e.viewIdxArr[:0]
	for _, id := range ids {
		v := st.Systems[id]
		var ui, ni []int
		extra, ui = addUnknown(extra, names, v.Units, known, &e.arena)
		extra, ni = addUnknown(extra, names, v.Native, known, &e.arena)
		extra, _ = addUnknown(extra, names, v.Sent, known, nil)
		e.viewIdx = append(e.viewIdx, [2][]int{ui, ni})
	}
	if len(extra) == 0 {
		return names
	}
	e.viewIdx = e.viewIdx[:0] // the indices change: computed again
	names = append(names, extra...)
	slices.Sort(names)
	return slices.Compact(names)
}

// addUnknown appends to extra the keys of m that are not known. If m
// holds a good part of names (sorted), counting those of names it holds
// tells whether there is any; then, given an arena, it also returns the
// indices of the keys (taken from the arena), nil otherwise.
func addUnknown[V any](extra, names []string, m map[string]V, known func(string) bool, arena *[]int) ([]string, []int) {
	if len(m) == 0 {
		return extra, nil
	}
	if len(m) <= len(names) && len(m)*4 >= len(names) {
		var idx []int
		if arena != nil {
			idx = (*arena)[len(*arena):]
		}
		n := 0
		for i, k := range names {
			if _, ok := m[k]; ok {
				n++
				if arena != nil {
					idx = append(idx, i)
				}
			}
		}
		if n == len(m) {
			if arena != nil {
				if cap(*arena)-len(*arena) >= len(idx) {
					*arena = (*arena)[:len(*arena)+len(idx)]
				}
				idx = idx[:len(idx):len(idx)]
			}
			return extra, idx
		}
	}
	for k := range m {
		if !known(k) {
			extra = append(extra, k)
		}
	}
	return extra, nil
}

// members returns the indices in the name table of the keys of m, in
// increasing order, appended to dst[:0]: by a walk over the table if m
// holds a good part of it, else by sorting.
func members[V any](e *enc6, m map[string]V, dst []int) []int {
	out := dst[:0]
	if len(m) == len(e.names) { // every map's keys are names: all of them
		for i := range e.names {
			out = append(out, i)
		}
		return out
	}
	if len(m)*4 >= len(e.names) {
		for i, n := range e.names {
			if _, ok := m[n]; ok {
				out = append(out, i)
			}
		}
		return out
	}
	for k := range m {
		i, _ := slices.BinarySearch(e.names, k)
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// maxPrefix bounds the prefix a name shares with the one before, so that
// a name table cannot make the decoder build more than 32 bytes of names
// per byte of it.
const maxPrefix = 63

// nameTable writes the names, each as the length of the prefix it shares
// with the one before, then the rest (a string).
func (e *enc6) nameTable() {
	e.uint(uint64(len(e.names)))
	prev := ""
	for _, n := range e.names {
		p := 0
		for p < maxPrefix && p < len(prev) && p < len(n) && prev[p] == n[p] {
			p++
		}
		e.uint(uint64(p))
		e.str(n[p:])
		prev = n
	}
}

// set writes a set of names (their indices in the table, increasing) as
// the count and either the gaps between the indices or a bitmap over the
// table, whichever is shorter.
func (e *enc6) set(idx []int) {
	gaps, prev := 0, -1
	for _, i := range idx {
		gaps += uvarintLen(uint64(i - prev - 1))
		prev = i
	}
	nb := (len(e.names) + 7) / 8
	if nb < gaps {
		e.uint(uint64(len(idx))<<1 | 1)
		start := len(e.b)
		e.b = append(e.b, make([]byte, nb)...)
		for _, i := range idx {
			e.b[start+i/8] |= 1 << (i % 8)
		}
		return
	}
	e.uint(uint64(len(idx)) << 1)
	prev = -1
	for _, i := range idx {
		e.uint(uint64(i - prev - 1))
		prev = i
	}
}

func uvarintLen(u uint64) int { return (bits.Len64(u|1) + 6) / 7 }

// valueSet writes the names of m as a set, then their values in order.
func (e *enc6) valueSet(m map[string]concord.Value) {
	e.idx = members(e, m, e.idx)
	e.set(e.idx)
	for _, i := range e.idx {
		e.field(e.names[i], m[e.names[i]])
	}
}

// atom writes a string of the record's string table: a reference to an
// earlier one, or 0 and the string, which joins the table.
func (e *enc6) atom(s string) {
	lo := max(0, len(e.atoms)-searchWindow)
	for i := len(e.atoms) - 1; i >= lo; i-- {
		if e.atoms[i] == s {
			e.uint(uint64(i) + 1)
			return
		}
	}
	e.uint(0)
	e.str(s)
	e.atoms = append(e.atoms, s)
}

// version writes a reference to a version: 0 for the zero version, 1 and
// the version (which joins the table), or 2+i for the i-th of the table.
// A version is its number of dots, then each dot's actor (the first as
// is, the others as the gap after the one before) and counter.
func (e *enc6) version6(v concord.Version) {
	if v.IsZero() {
		e.uint(0)
		return
	}
	lo := max(0, len(e.versions)-searchWindow)
	for i := len(e.versions) - 1; i >= lo; i-- {
		if e.versions[i].Compare(v) == concord.Equal {
			e.uint(uint64(i) + 2)
			return
		}
	}
	e.uint(1)
	e.uint(uint64(v.Len()))
	var prev concord.Actor
	for i := range v.Len() {
		d := v.Dot(i)
		if i == 0 {
			e.uint(uint64(d.Actor))
		} else {
			e.uint(uint64(d.Actor - prev - 1))
		}
		e.uint(d.Counter)
		prev = d.Actor
	}
	e.versions = append(e.versions, v)
}

// ref is the reference time of a time of slot: the previous time of the
// slot, or the previous time of any slot.
func ref(regs *[numSlots]tref, last tref, slot int) tref {
	if regs[slot].set {
		return regs[slot]
	}
	return last
}

// normalTime returns the Unix seconds and nanoseconds of t, a malformed
// time's nanoseconds past a second carried into the seconds.
func normalTime(t time.Time) (int64, int64) {
	sec, nsec := t.Unix(), t.Nanosecond()
	return sec + int64(nsec/1e9), int64(nsec % 1e9)
}

// zonedMark marks the encoder's reference times that are not UTC.
var zonedMark = time.FixedZone("", 0)

// zeroUnix is the Unix time of the zero time.Time.
var zeroUnix = time.Time{}.Unix()

// time6 writes t: a header (an unsigned varint: the kind in the low 3 bits,
// for a delta kind the zigzag nanoseconds from the reference time above
// them), then for an absolute kind the Unix seconds and nanoseconds, then
// for a zoned kind the offset and the zone name (a string of the table).
func (e *enc6) time6(t time.Time, slot int) {
	sec, nsec := normalTime(t)
	utc := t.Location() == time.UTC
	if utc && sec == zeroUnix && nsec == 0 {
		e.uint(timeZero)
		return
	}
	var name string
	var off int
	zoned := zonedMark
	if utc {
		zoned = nil
	} else {
		name, off = t.Zone()
	}
	r := ref(&e.regs, e.last, slot)
	var kind, payload uint64
	if d := sec - r.sec; r.set && sec > -maxRefSec && sec < maxRefSec && r.sec > -maxRefSec && r.sec < maxRefSec &&
		d > -maxDeltaSec && d < maxDeltaSec {
		ns := d*1e9 + nsec - r.nsec
		payload = uint64(ns<<1) ^ uint64(ns>>63)
		switch {
		case utc == (r.loc == nil) && (utc || name == r.name && off == r.off):
			kind = timeSame
		case utc:
			kind = timeUTCDelta
		default:
			kind = timeZoDelta
		}
	} else if utc {
		kind = timeUTCAbs
	} else {
		kind = timeZoAbs
	}
	e.uint(payload<<3 | kind)
	if kind == timeUTCAbs || kind == timeZoAbs {
		e.int(sec)
		e.uint(uint64(nsec))
	}
	if kind == timeZoDelta || kind == timeZoAbs {
		e.int(int64(off))
		e.atom(name)
	}
	e.regs[slot] = tref{sec: sec, nsec: nsec, set: true, name: name, off: off, loc: zoned}
	e.last = e.regs[slot]
}

// predict returns the hashes the canonical value of field name predicts,
// and whether it does (a field of the record whose value has a canonical
// encoding).
func predict(m map[string]concord.Value, name string, scratch *[]byte) (pred, bool) {
	v, ok := m[name]
	if !ok {
		return pred{state: 2}, false
	}
	b := append((*scratch)[:0], name...)
	b = append(b, 0)
	b, err := concord.AppendCanonical(b, v)
	*scratch = b
	if err != nil {
		return pred{state: 2}, false
	}
	return pred{unit: concord.HashBytes(b), native: concord.HashBytes(b[len(name)+1:]), state: 1}, true
}

// predicted returns the prediction for name (index i of the names).
func (e *enc6) predicted(i int) (pred, bool) {
	if e.pred == nil {
		if len(e.names) <= len(e.predArr) {
			e.pred = e.predArr[:len(e.names)]
			clear(e.pred)
		} else {
			e.pred = make([]pred, len(e.names))
		}
	}
	p := &e.pred[i]
	if p.state == 0 {
		*p, _ = predict(e.fields, e.names[i], &e.scratch)
	}
	return *p, p.state == 1
}

// predictedUnit reports whether h is the predicted hash of unit i.
func (e *enc6) predictedUnit(i int, h uint64) bool {
	p, ok := e.predicted(i)
	return ok && p.unit == h
}

// hashKind returns the kind of a hash h that no value predicts: zero, the
// same as prev (the previous view's, if havePrev), small or raw.
func hashKind(h uint64, prev uint64, havePrev bool) uint64 {
	switch {
	case h == 0:
		return hashZero
	case havePrev && h == prev:
		return hashPrevView
	case uvarintLen(h) < 8:
		return hashSmall
	}
	return hashRaw
}

func (e *enc6) hashPayload(kind, h uint64) {
	switch kind {
	case hashRaw:
		e.hash(h)
	case hashSmall:
		e.uint(h)
	}
}

func (e *enc6) unit(u, prev *Unit) {
	var flags byte
	if u.Prev != nil {
		flags |= unitPrev
	}
	if u.PrevDeleted {
		flags |= unitPrevDeleted
	}
	if u.Hold != nil {
		flags |= unitHold
	}
	sameV := u.Version.Compare(prev.Version) == concord.Equal
	samePV := u.PrevVersion.Compare(prev.PrevVersion) == concord.Equal
	if sameV {
		flags |= unitSameVersion
	}
	if u.Winner == prev.Winner {
		flags |= unitSameWinner
	}
	if u.Rule == prev.Rule {
		flags |= unitSameRule
	}
	if samePV {
		flags |= unitSamePrevVersion
	}
	e.b = append(e.b, flags)
	if !sameV {
		e.version6(u.Version)
	}
	if u.Winner != prev.Winner {
		e.atom(string(u.Winner))
	}
	if u.Rule != prev.Rule {
		e.atom(u.Rule)
	}
	e.time6(u.Changed, slotChanged)
	e.time6(u.Modified, slotModified)
	if u.Prev != nil {
		e.valueSet(u.Prev)
	}
	if !samePV {
		e.version6(u.PrevVersion)
	}
	if h := u.Hold; h != nil {
		e.uint(uint64(len(h.Candidates)))
		for _, c := range h.Candidates {
			e.atom(string(c.System))
			var cf byte
			if c.Canonical {
				cf |= candCanonical
			}
			if c.Deleted {
				cf |= candDeleted
			}
			if c.Values != nil {
				cf |= candValues
			}
			e.b = append(e.b, cf)
			if c.Values != nil {
				e.valueSet(c.Values)
			}
			e.version6(c.Version)
			e.time6(c.Modified, slotHold)
			e.atom(c.By)
		}
		var hf byte
		if h.Base != nil {
			hf |= holdBase
		}
		if h.BaseKnown {
			hf |= holdBaseKnown
		}
		e.b = append(e.b, hf)
		if h.Base != nil {
			e.valueSet(h.Base)
		}
		e.atom(h.Rule)
		e.str(h.Reason)
		e.time6(h.Since, slotHold)
	}
}

// copy6 writes a copy of unit name: its flags (hash kind, whether the
// version is canonical), the hash and the version as they say.
func (e *enc6) copy6(i int, h Copy, prevView *View) {
	canon := e.unitOf[i]
	var kind uint64
	switch {
	case h.Hash == 0:
		kind = hashZero
	case e.predictedUnit(i, h.Hash):
		kind = hashPredicted
	default:
		var prev Copy
		havePrev := false
		if prevView != nil {
			prev, havePrev = prevView.Units[e.names[i]]
		}
		kind = hashKind(h.Hash, prev.Hash, havePrev)
	}
	flags := byte(kind)
	sameV := canon != nil && h.Version.Compare(canon.Version) == concord.Equal
	if sameV {
		flags |= copySameVersion
	}
	e.b = append(e.b, flags)
	e.hashPayload(kind, h.Hash)
	if !sameV {
		e.version6(h.Version)
	}
}

func (e *enc6) view(v *View, known [2][]int) {
	failing := v.Attempts != 0 || !isZeroTime(v.FirstFailed) || v.LastError != ""
	var flags byte
	if v.Seen {
		flags |= viewSeen
	}
	if v.Deleted {
		flags |= viewDeleted
	}
	if v.Parked {
		flags |= viewParked
	}
	if failing {
		flags |= viewFailing
	}
	if len(v.Sent) > 0 {
		flags |= viewSent
	}
	e.b = append(e.b, flags)
	e.str(v.Tag)
	e.time6(v.Modified, slotView)

	idx := known[0]
	if idx == nil {
		idx = members(e, v.Units, e.idx)
		e.idx = idx
	}
	e.set(idx)
	for _, i := range idx {
		e.copy6(i, v.Units[e.names[i]], e.prevView)
	}

	idx = known[1]
	if idx == nil {
		idx = members(e, v.Native, e.idx)
		e.idx = idx
	}
	e.set(idx)
	for _, i := range idx {
		name := e.names[i]
		h := v.Native[name]
		var kind uint64
		if h == 0 {
			kind = hashZero
		} else if p, ok := e.predicted(i); ok && p.native == h {
			kind = hashPredicted
		} else if own, ok := v.Units[name]; ok && own.Hash == h {
			kind = hashOwnUnit
		} else {
			prev, havePrev := uint64(0), false
			if e.prevView != nil {
				prev, havePrev = e.prevView.Native[name]
			}
			kind = hashKind(h, prev, havePrev)
		}
		e.b = append(e.b, byte(kind))
		e.hashPayload(kind, h)
	}

	if failing {
		e.uint(uint64(v.Attempts))
		e.time6(v.FirstFailed, slotFailed)
		e.str(v.LastError)
	}
	if len(v.Sent) > 0 {
		idx = members(e, v.Sent, e.idx)
		e.idx = idx
		e.set(idx)
		for _, i := range idx {
			name := e.names[i]
			l := v.Sent[name]
			e.uint(uint64(len(l)))
			for _, h := range l {
				e.copy6(i, h, nil)
			}
		}
	}
}

// isZeroTime reports whether t is the zero time.Time as format 6 writes
// it in one byte: the zero instant, in UTC.
func isZeroTime(t time.Time) bool {
	sec, nsec := normalTime(t)
	return t.Location() == time.UTC && sec == zeroUnix && nsec == 0
}

// dec6 decodes format 6.
type dec6 struct {
	*decoder
	names    []string
	atoms    []string
	versions []concord.Version
	regs     [numSlots]tref
	last     tref
	idx      []int
	scratch  []byte
	fields   map[string]concord.Value
	pred     []pred
	zones    []zone
}

// zone is a decoded time zone, kept so that times of one zone share it.
type zone struct {
	name string
	off  int
	loc  *time.Location
}

func (d *decoder) stateCompact() *Record {
	x := dec6{decoder: d}
	return x.record()
}

func (d *dec6) record() *Record {
	flags := d.byte()
	if flags&^1 != 0 {
		d.fail("record flags")
	}
	st := &Record{Deleted: flags&1 != 0, Key: d.str(), Rev: d.uint(), Diverged: d.time6(slotMisc)}
	d.key = st.Key
	d.nameTable()
	st.Fields = d.valueSet()
	d.fields = st.Fields

	// Every unit takes at least 3 bytes, every view 6: what is left
	// bounds what is allocated for them.
	idx := d.set(nil)
	if len(idx) > len(d.b)/3 {
		d.fail("unit count")
		return nil
	}
	st.Units = make(map[string]*Unit, len(idx))
	units := make([]Unit, len(idx))
	var zero Unit
	prev := &zero
	for i, n := range idx {
		u := &units[i]
		d.unit(u, prev)
		st.Units[d.names[n]] = u
		prev = u
	}

	n := d.count()
	if n > len(d.b)/6 {
		d.fail("view count")
		return nil
	}
	st.Systems = make(map[concord.SystemID]*View, n)
	views := make([]View, n)
	var prevID string
	var prevView *View
	for i := range n {
		id := d.atom()
		if i > 0 && id <= prevID {
			d.fail("system order")
		}
		if d.err != nil {
			return nil
		}
		v := &views[i]
		d.view(st, v, prevView)
		st.Systems[concord.SystemID(id)] = v
		prevID, prevView = id, v
	}
	return st
}

func (d *dec6) byte() byte {
	if len(d.b) == 0 {
		d.fail("flags")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec6) nameTable() {
	n := d.count()
	if d.err != nil {
		return
	}
	// Each name takes at least two bytes: half the rest bounds the count.
	if n > len(d.b)/2 {
		d.fail("name count")
		return
	}
	// A first pass checks the table and sums the lengths of the names, so
	// that they are built in one string.
	total, prevLen, rest := 0, 0, d.b
	for range n {
		p := d.uint()
		s := d.count()
		if d.err != nil {
			return
		}
		if p > uint64(prevLen) || p > maxPrefix {
			d.fail("name prefix")
			return
		}
		d.b = d.b[s:]
		prevLen = int(p) + s
		total += prevLen
	}
	d.b = rest
	var sb strings.Builder
	sb.Grow(total)
	d.names = make([]string, n)
	prev := ""
	for i := range n {
		p, s := int(d.uint()), d.count()
		start := sb.Len()
		sb.WriteString(prev[:p])
		sb.Write(d.b[:s])
		d.b = d.b[s:]
		name := sb.String()[start:]
		if i > 0 && prev >= name {
			d.fail("name order")
			return
		}
		d.names[i], prev = name, name
	}
}

// set reads a set of names and returns their indices, appended to
// dst[:0].
func (d *dec6) set(dst []int) []int {
	h := d.uint()
	n := h >> 1
	out := dst[:0]
	if d.err != nil {
		return nil
	}
	if h&1 == 1 {
		nb := (len(d.names) + 7) / 8
		if n > uint64(len(d.names)) || len(d.b) < nb {
			d.fail("name set")
			return nil
		}
		for i := range len(d.names) {
			if d.b[i/8]&(1<<(i%8)) != 0 {
				out = append(out, i)
			}
		}
		if (len(d.names)%8 != 0 && d.b[nb-1]>>(len(d.names)%8) != 0) || uint64(len(out)) != n {
			d.fail("name set bitmap")
			return nil
		}
		d.b = d.b[nb:]
		return out
	}
	if n > uint64(len(d.b)) || n > uint64(len(d.names)) {
		d.fail("name set")
		return nil
	}
	at := -1
	for range n {
		g := d.uint()
		if d.err != nil || g >= uint64(len(d.names)-at-1) {
			d.fail("name index")
			return nil
		}
		at += 1 + int(g)
		out = append(out, at)
	}
	return out
}

func (d *dec6) valueSet() map[string]concord.Value {
	idx := d.set(d.idx)
	d.idx = idx
	if d.err != nil {
		return nil
	}
	m := make(map[string]concord.Value, min(len(idx), len(d.b)))
	for _, i := range idx {
		m[d.names[i]] = d.field(d.names[i])
	}
	return m
}

func (d *dec6) atom() string {
	r := d.uint()
	if r == 0 {
		s := d.str()
		if d.err == nil {
			d.atoms = append(d.atoms, s)
		}
		return s
	}
	if r > uint64(len(d.atoms)) {
		d.fail("string reference")
		return ""
	}
	return d.atoms[r-1]
}

func (d *dec6) version6() concord.Version {
	r := d.uint()
	switch {
	case d.err != nil || r == 0:
		return concord.Version{}
	case r >= 2:
		if r-2 >= uint64(len(d.versions)) {
			d.fail("version reference")
			return concord.Version{}
		}
		return d.versions[r-2]
	}
	n := d.uint()
	if n == 0 || n > concord.MaxDots || n > uint64(len(d.b)) {
		d.fail("version length")
		return concord.Version{}
	}
	dots := make([]concord.Dot, n)
	var actor uint64
	for i := range dots {
		a, c := d.uint(), d.uint()
		if i > 0 && a <= math.MaxUint32 {
			a += actor + 1
		}
		if d.err != nil || a > math.MaxUint32 || c == 0 {
			d.fail("version vector")
			return concord.Version{}
		}
		dots[i] = concord.Dot{Actor: concord.Actor(a), Counter: c}
		actor = a
	}
	v, err := concord.NewVersion(dots...)
	if err != nil {
		d.fail("version vector")
		return concord.Version{}
	}
	d.versions = append(d.versions, v)
	return v
}

func (d *dec6) time6(slot int) time.Time {
	h := d.uint()
	if d.err != nil {
		return time.Time{}
	}
	kind, payload := h&7, h>>3
	var sec, nsec int64
	r := ref(&d.regs, d.last, slot)
	switch kind {
	case timeZero:
		if payload != 0 {
			d.fail("time")
		}
		return time.Time{}
	case timeSame, timeZoDelta, timeUTCDelta:
		if !r.set || r.sec <= -maxRefSec || r.sec >= maxRefSec {
			d.fail("time reference")
			return time.Time{}
		}
		ns := int64(payload>>1) ^ -int64(payload&1)
		q, rem := ns/1e9, ns%1e9
		nsec = r.nsec + rem
		switch {
		case nsec < 0:
			nsec += 1e9
			q--
		case nsec >= 1e9:
			nsec -= 1e9
			q++
		}
		sec = r.sec + q
	case timeUTCAbs, timeZoAbs:
		if payload != 0 {
			d.fail("time")
			return time.Time{}
		}
		sec = d.int()
		u := d.uint()
		if u >= 1e9 {
			d.fail("time nanoseconds")
			return time.Time{}
		}
		nsec = int64(u)
	default:
		d.fail("time kind")
		return time.Time{}
	}
	if d.err != nil {
		return time.Time{}
	}
	t := time.Unix(sec, nsec)
	reg := tref{sec: sec, nsec: nsec, set: true}
	switch {
	case kind == timeSame && r.loc != nil:
		reg.name, reg.off, reg.loc = r.name, r.off, r.loc
	case kind == timeZoDelta || kind == timeZoAbs:
		off := d.int()
		name := d.atom()
		if int64(int(off)) != off {
			d.fail("time zone offset")
			return time.Time{}
		}
		reg.name, reg.off, reg.loc = name, int(off), d.zone(name, int(off))
		if kind == timeZoDelta && r.loc != nil && r.name == name && r.off == int(off) {
			d.fail("time zone: the reference's, written again")
			return time.Time{}
		}
	case kind == timeUTCDelta && r.loc == nil:
		d.fail("time zone: UTC after UTC")
		return time.Time{}
	}
	if reg.loc == nil {
		t = t.UTC()
		if sec == zeroUnix && nsec == 0 {
			d.fail("time: the zero time not as such")
			return time.Time{}
		}
	} else {
		t = t.In(reg.loc)
	}
	d.regs[slot] = reg
	d.last = reg
	return t
}

// zone returns a fixed zone of that name and offset, the same for the
// times of one record.
func (d *dec6) zone(name string, off int) *time.Location {
	for _, z := range d.zones {
		if z.name == name && z.off == off {
			return z.loc
		}
	}
	loc := time.FixedZone(name, off)
	if len(d.zones) < searchWindow {
		d.zones = append(d.zones, zone{name: name, off: off, loc: loc})
	}
	return loc
}

func (d *dec6) unit(u, prev *Unit) {
	flags := d.byte()
	if flags&0x80 != 0 {
		d.fail("unit flags")
		return
	}
	if flags&unitSameVersion != 0 {
		u.Version = prev.Version
	} else {
		u.Version = d.version6()
	}
	if flags&unitSameWinner != 0 {
		u.Winner = prev.Winner
	} else {
		u.Winner = concord.SystemID(d.atom())
	}
	if flags&unitSameRule != 0 {
		u.Rule = prev.Rule
	} else {
		u.Rule = d.atom()
	}
	u.Changed = d.time6(slotChanged)
	u.Modified = d.time6(slotModified)
	if flags&unitPrev != 0 {
		u.Prev = d.valueSet()
	}
	if flags&unitSamePrevVersion != 0 {
		u.PrevVersion = prev.PrevVersion
	} else {
		u.PrevVersion = d.version6()
	}
	u.PrevDeleted = flags&unitPrevDeleted != 0
	if flags&unitHold == 0 || d.err != nil {
		return
	}
	h := &Hold{}
	nc := d.count()
	for range nc {
		c := resolve.Candidate{System: concord.SystemID(d.atom())}
		cf := d.byte()
		if cf&^(candCanonical|candDeleted|candValues) != 0 {
			d.fail("candidate flags")
			return
		}
		c.Canonical, c.Deleted = cf&candCanonical != 0, cf&candDeleted != 0
		if cf&candValues != 0 {
			c.Values = d.valueSet()
		}
		c.Version = d.version6()
		c.Modified = d.time6(slotHold)
		c.By = d.atom()
		if d.err != nil {
			return
		}
		h.Candidates = append(h.Candidates, c)
	}
	hf := d.byte()
	if hf&^(holdBase|holdBaseKnown) != 0 {
		d.fail("hold flags")
		return
	}
	if hf&holdBase != 0 {
		h.Base = d.valueSet()
	}
	h.BaseKnown = hf&holdBaseKnown != 0
	h.Rule, h.Reason, h.Since = d.atom(), d.str(), d.time6(slotHold)
	u.Hold = h
}

// predicted returns the prediction for name (index i of the names).
func (d *dec6) predicted(i int) (pred, bool) {
	if d.pred == nil {
		d.pred = make([]pred, len(d.names))
	}
	p := &d.pred[i]
	if p.state == 0 {
		*p, _ = predict(d.fields, d.names[i], &d.scratch)
	}
	return *p, p.state == 1
}

// hash reads the payload of a hash of kind; predicted, prev and own give
// the hash of the kinds that refer to another, ok whether they exist.
func (d *dec6) hash6(kind byte, i int, native bool, prev uint64, havePrev bool, own uint64, haveOwn bool) uint64 {
	switch kind {
	case hashRaw:
		return d.hash()
	case hashSmall:
		h := d.uint()
		if d.err == nil && uvarintLen(h) >= 8 {
			d.fail("small hash")
		}
		return h
	case hashPredicted:
		p, ok := d.predicted(i)
		if !ok {
			d.fail("predicted hash of a field without a value")
			return 0
		}
		if native {
			return p.native
		}
		return p.unit
	case hashPrevView:
		if !havePrev {
			d.fail("hash of the previous view")
		}
		return prev
	case hashZero:
		return 0
	case hashOwnUnit:
		if !native || !haveOwn {
			d.fail("hash of the view's unit")
		}
		return own
	}
	d.fail("hash kind")
	return 0
}

func (d *dec6) copy6(i int, canon *Unit, prev *View) Copy {
	flags := d.byte()
	if flags&^(copySameVersion|7) != 0 {
		d.fail("copy flags")
		return Copy{}
	}
	var ph uint64
	havePrev := false
	if prev != nil {
		var pc Copy
		pc, havePrev = prev.Units[d.names[i]]
		ph = pc.Hash
	}
	h := Copy{Hash: d.hash6(flags&7, i, false, ph, havePrev, 0, false)}
	if flags&copySameVersion != 0 {
		if canon == nil {
			d.fail("canonical version of a unit without one")
			return Copy{}
		}
		h.Version = canon.Version
	} else {
		h.Version = d.version6()
	}
	return h
}

func (d *dec6) view(st *Record, v *View, prev *View) {
	flags := d.byte()
	if flags&^(viewSeen|viewDeleted|viewParked|viewFailing|viewSent) != 0 {
		d.fail("view flags")
		return
	}
	v.Seen, v.Deleted, v.Parked = flags&viewSeen != 0, flags&viewDeleted != 0, flags&viewParked != 0
	v.Tag = d.str()
	v.Modified = d.time6(slotView)

	idx := d.set(d.idx)
	d.idx = idx
	v.Units = make(map[string]Copy, min(len(idx), len(d.b)))
	for _, i := range idx {
		name := d.names[i]
		v.Units[name] = d.copy6(i, st.Units[name], prev)
	}

	idx = d.set(d.idx)
	d.idx = idx
	v.Native = make(map[string]uint64, min(len(idx), len(d.b)))
	for _, i := range idx {
		name := d.names[i]
		own, haveOwn := v.Units[name]
		var ph uint64
		havePrev := false
		if prev != nil {
			ph, havePrev = prev.Native[name]
		}
		v.Native[name] = d.hash6(d.byte(), i, true, ph, havePrev, own.Hash, haveOwn)
	}

	if flags&viewFailing != 0 {
		v.Attempts, v.FirstFailed, v.LastError = int(d.uint()), d.time6(slotFailed), d.str()
	}
	if flags&viewSent != 0 {
		idx = d.set(nil)
		if len(idx) == 0 {
			d.fail("empty sent set")
			return
		}
		v.Sent = make(map[string][]Copy, len(idx))
		for _, i := range idx {
			nh := d.count()
			if nh == 0 {
				d.fail("empty sent list")
				return
			}
			l := make([]Copy, 0, nh)
			for range nh {
				l = append(l, d.copy6(i, st.Units[d.names[i]], nil))
			}
			v.Sent[d.names[i]] = l
		}
	}
}
