package state

import (
	"bytes"
	"errors"
	"fmt"
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
	viewPartial
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

// enc6 encodes a Record in format 6. Encoders are pooled: besides the
// backing arrays of their tables, each keeps the name table of the last
// record it encoded (see gather), which the records of one pipeline
// almost always share.
type enc6 struct {
	encoder
	// names is the name table (sorted, distinct), index the index of
	// each name in it and prefix the FNV-1a state after each name and a
	// 0 byte: kept from record to record while the names are the same.
	names  []string
	index  map[string]int32
	prefix []uint64

	atoms    []string
	versions []concord.Version
	regs     [numSlots]tref
	last     int    // the slot last written (see ref)
	scratch  []byte // scratch: canonical encodings
	pred     []pred
	// lazy holds the canonical values a resumed encoding has not
	// gathered: predicted gathers them if it needs them. (Not the
	// Record: a pointer kept here would make every caller's Record
	// escape.)
	lazy map[string]concord.Value
	// The record's content by name index: the canonical values and
	// units, which of them exist, and the systems' views in order.
	fieldVal []concord.Value
	fieldSet bitset
	unitOf   []*Unit
	unitSet  bitset
	extra    bitset // the names of Prev, Hold.Base and candidates' Values
	views    []viewSlots
	sys      []sysView
	// Scratch: indices of a set (vidx: of a value set within a unit),
	// and a value set's entries.
	idx, vidx []int
	kv        []kvEntry
	// Backing arrays of the tables, enough for most records.
	atomsArr    [8]string
	versionsArr [8]concord.Version
	scratchArr  [128]byte
	// values counts the bytes of the encodings of the canonical values.
	values int
	// size is the length of the last encoding this encoder wrote: the
	// capacity it gives the next one when the caller passes no buffer
	// (the records of one pipeline have about the same size), so that
	// most encodings allocate their bytes once.
	size int
}

// bitset is a set of name indices.
type bitset []uint64

func (s bitset) add(i int)      { s[i>>6] |= 1 << (i & 63) }
func (s bitset) has(i int) bool { return s[i>>6]&(1<<(i&63)) != 0 }

// appendTo appends the indices of s, in increasing order, to dst.
func (s bitset) appendTo(dst []int) []int {
	for w, x := range s {
		for x != 0 {
			dst = append(dst, w<<6|bits.TrailingZeros64(x))
			x &= x - 1
		}
	}
	return dst
}

// viewSlots holds a view's maps by name index.
type viewSlots struct {
	v         *View
	units     []Copy
	unitSet   bitset
	native    []uint64
	nativeSet bitset
	sent      [][]Copy
	sentSet   bitset
}

// sysView is a system and its view.
type sysView struct {
	id concord.SystemID
	v  *View
}

// kvEntry is an entry of a value set: a name index and its value.
type kvEntry struct {
	i int
	v concord.Value
}

// maxCachedNames bounds the name table (and per-name scratch) an encoder
// keeps in the pool: a record with more names is encoded as well, its
// table dropped afterwards.
const maxCachedNames = 1024

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

// errChanged is the error of a record whose maps changed while it was
// encoded (by another goroutine: a caller's data race).
var errChanged = errors.New("state: the record changed while it was encoded")

// encodeCompact appends the format 6 encoding of st to b, and returns the
// bytes of it that encode the canonical values.
// A nil b gets a capacity from the encoder's last encoding.
func (c Codec) encodeCompact(b []byte, st *Record) ([]byte, int, error) {
	b, values, _, err := c.encodeResumable(b, st, nil, false)
	return b, values, err
}

// encodeResumable is encodeCompact that resumes from in (nil: none), if it
// is still st's (see enc6.resume), and keeps a resume point if keep.
func (c Codec) encodeResumable(b []byte, st *Record, in *resumePoint, keep bool) ([]byte, int, *resumePoint, error) {
	e := enc6Pool.Get().(*enc6)
	defer func() {
		e.release()
		enc6Pool.Put(e)
	}()
	if b == nil {
		b = make([]byte, 0, max(minEncodeCap, e.size+e.size/8+16))
	}
	start := len(b)
	b, values, out, err := e.encode(c, b, st, in, keep)
	if err == nil {
		e.size = min(len(b)-start, maxEncodeHint)
	}
	return b, values, out, err
}

// minEncodeCap is the capacity of a buffer encodeCompact allocates, at
// least; maxEncodeHint bounds the size it takes from the last encoding,
// so that one huge record does not make every later one allocate big.
const (
	minEncodeCap  = 256
	maxEncodeHint = 64 << 10
)

// encode appends the format 6 encoding of st to b, sealed by c, and
// returns the bytes of it that encode the canonical values. It resumes from
// in (nil: none) if in is still st's, and returns a resume point if keep.
func (e *enc6) encode(c Codec, b []byte, st *Record, in *resumePoint, keep bool) ([]byte, int, *resumePoint, error) {
	start := len(b)
	e.reset(append(b, magicState[0], magicState[1], magicState[2], CompactVersion), c, st)
	var flags byte
	if st.Deleted {
		flags |= 1
	}
	e.b = append(e.b, flags)
	e.str(st.Key)
	e.uint(st.Rev)
	body := len(e.b)
	if in == nil || !e.resume(in, st) {
		if err := e.body(st); err != nil {
			return e.b, 0, nil, err
		}
	}
	var out *resumePoint
	if keep && e.err == nil {
		out = e.keep(st, e.b[body:])
	}

	e.uint(uint64(len(e.sys)))
	for k, s := range e.sys {
		e.atom(string(s.id))
		var prev *viewSlots
		if k > 0 {
			prev = &e.views[k-1]
		}
		e.view(&e.views[k], prev)
	}
	e.seal(start)
	if e.err != nil {
		out = nil
	} else if out != nil && len(e.pred) == len(e.names) {
		out.pred = slices.Clone(e.pred)
	}
	return e.b, e.values, out, e.err
}

// body writes what comes after the revision and before the views: the
// time the systems diverged, the name table, the canonical values and the
// units.
func (e *enc6) body(st *Record) error {
	e.time6(st.Diverged, slotMisc)

	e.systems(st)
	if !e.gather(st) {
		e.buildNames(st)
		if !e.gather(st) {
			return fmt.Errorf("%w (key %q)", errChanged, st.Key)
		}
	}
	e.nameTable()

	e.idx = e.fieldSet.appendTo(e.idx[:0])
	e.set(e.idx)
	for _, i := range e.idx {
		n := len(e.b)
		e.field(e.names[i], e.fieldVal[i])
		e.values += len(e.b) - n
	}

	e.idx = e.unitSet.appendTo(e.idx[:0])
	e.set(e.idx)
	prev := &Unit{}
	for _, i := range e.idx {
		u := e.unitOf[i]
		e.unit(i, u, prev)
		prev = u
	}
	return nil
}

// resumePoint is what an encoding of a record keeps (Record.KeepEncoding)
// to encode the record again, after a change of its views alone, without
// encoding the rest again: the bytes body wrote, and the encoder's state
// after them. The engine's commit after its writes changes only the views
// of the systems written (and perhaps the record's Diverged time): with a
// resume point, that encoding writes the views alone, and copies the rest
// from the encoding before the writes.
type resumePoint struct {
	// What the body depends on beyond the fields and units: checked
	// again. The caller promises the fields and units unchanged: the
	// units' names are gathered again, the fields' are not (fields).
	deleted  bool
	key      string
	diverged time.Time
	body     []byte   // a part of the kept encoding, which nobody writes to
	names    []string // the name table: buildNames never writes to one again
	extra    bitset   // the names of the units' Prev and holds
	fields   bitset   // the names of the canonical values
	pred     []pred   // the predictions the views' encoding made
	atoms    []string
	versions []concord.Version
	regs     [numSlots]tref
	last     int
	values   int
	sealed   bool
	// Backing arrays, enough for most records: one allocation in all.
	extraArr    [1]uint64
	fieldsArr   [1]uint64
	atomsArr    [4]string
	versionsArr [4]concord.Version
}

// keep returns the resume point of the encoding of st whose body is body.
func (e *enc6) keep(st *Record, body []byte) *resumePoint {
	words := (len(e.names) + 63) / 64
	r := &resumePoint{deleted: st.Deleted, key: st.Key, diverged: st.Diverged, body: body[:len(body):len(body)],
		names: e.names, regs: e.regs, last: e.last, values: e.values, sealed: e.sealed}
	r.extra = append(r.extraArr[:0], e.extra[:words]...)
	r.fields = append(r.fieldsArr[:0], e.fieldSet[:words]...)
	r.atoms = append(r.atomsArr[:0], e.atoms...)
	r.versions = append(r.versionsArr[:0], e.versions...)
	return r
}

// resume readies e to write the views of st after in's body, which it
// appends, and reports whether it could: st has the key, deletion and
// Diverged time that in was kept with, and its units and views name
// nothing but the names of in's table, and with its fields' names (not
// gathered again: the caller promises them unchanged) every one of them.
// Otherwise it appends nothing, and the body must be written in full. The
// canonical values are gathered only if a prediction in's encoding did not
// make is needed (lazy).
func (e *enc6) resume(in *resumePoint, st *Record) bool {
	if st.Deleted != in.deleted || st.Key != in.key || st.Diverged != in.diverged {
		return false
	}
	n := len(in.names)
	if len(e.names) != n || (n > 0 && &e.names[0] != &in.names[0]) {
		e.useNames(in.names)
	}
	words := (n + 63) / 64
	e.extra = grow(e.extra, words)
	copy(e.extra, in.extra)
	e.systems(st)
	if !e.gatherUnits(st, n, words, false) || !e.gatherViews(n, words) {
		return false
	}
	copy(e.fieldSet, in.fields) // gatherUnits cleared it
	if !e.covers(n, words) {
		return false
	}
	if len(in.pred) == n {
		e.pred = in.pred // in serves once: its array is e's now
	}
	e.lazy = st.Fields
	e.atoms = append(e.atoms[:0], in.atoms...)
	e.versions = append(e.versions[:0], in.versions...)
	e.regs, e.last = in.regs, in.last
	e.values, e.sealed = in.values, in.sealed
	e.b = append(e.b, in.body...)
	return true
}

// useNames makes names (sorted, distinct) e's name table.
func (e *enc6) useNames(names []string) {
	if e.index == nil {
		e.index = make(map[string]int32, len(names))
	} else {
		clear(e.index)
	}
	e.names = names
	e.prefix = grow(e.prefix, len(names))
	for i, n := range names {
		e.index[n] = int32(i)
		e.prefix[i] = fnvName(n)
	}
}

// enc6Pool keeps encoders, whose tables' backing arrays are too large to
// clear and allocate for every record, and whose name tables the next
// record likely shares.
var enc6Pool = sync.Pool{New: func() any { return new(enc6) }}

// reset readies e to encode st after b.
func (e *enc6) reset(b []byte, c Codec, st *Record) {
	e.encoder = encoder{b: b, c: c, key: st.Key}
	e.pred, e.values = e.pred[:0], 0
	e.atoms, e.versions, e.scratch = e.atomsArr[:0], e.versionsArr[:0], e.scratchArr[:0]
	e.regs, e.last = [numSlots]tref{}, 0
	e.lazy = nil
}

// release drops what e refers to of the record (it keeps the name table),
// for e to go back to the pool.
func (e *enc6) release() {
	clear(e.atoms)
	clear(e.versions)
	clear(e.fieldVal[:cap(e.fieldVal)])
	clear(e.unitOf[:cap(e.unitOf)])
	clear(e.kv[:cap(e.kv)])
	clear(e.sys[:cap(e.sys)])
	vs := e.views[:cap(e.views)]
	for k := range vs {
		w := &vs[k]
		w.v = nil
		clear(w.units[:cap(w.units)])
		clear(w.sent[:cap(w.sent)])
	}
	e.encoder = encoder{}
	e.lazy = nil
	if len(e.names) > maxCachedNames || cap(e.fieldVal) > maxCachedNames || len(e.views) > 64 {
		*e = enc6{} // too large to keep
	}
}

// systems sorts the systems of st into e.sys.
func (e *enc6) systems(st *Record) {
	e.sys = e.sys[:0]
	for id, v := range st.Systems {
		e.sys = append(e.sys, sysView{id, v})
	}
	slices.SortFunc(e.sys, func(a, b sysView) int { return strings.Compare(string(a.id), string(b.id)) })
}

// gather stores the content of st by the index of its names in the name
// table e holds, and reports whether that table is exactly st's: every
// name of st is in it (each found by one lookup) and every name of it is
// one of st's (the union of the sets found covers it). Otherwise the
// indices are meaningless and the table must be built again.
func (e *enc6) gather(st *Record) bool {
	n := len(e.names)
	words := (n + 63) / 64
	e.extra = zeroSet(e.extra, words)
	return e.gatherUnits(st, n, words, true) && e.gatherViews(n, words) && e.covers(n, words)
}

// gatherUnits is gather for the canonical values and the units; with mark,
// it adds the names of the units' previous values and holds to e.extra.
// Without mark (resume) it gathers the units alone.
func (e *enc6) gatherUnits(st *Record, n, words int, mark bool) bool {
	e.fieldVal = grow(e.fieldVal, n)
	e.unitOf = grow(e.unitOf, n)
	e.fieldSet = zeroSet(e.fieldSet, words)
	e.unitSet = zeroSet(e.unitSet, words)
	if mark && !scatter(e, st.Fields, e.fieldVal, e.fieldSet) {
		return false
	}
	i := 0 // st.Units and the name table are sorted: one walk of each
	for _, x := range st.Units {
		u := x.Value
		if j := e.walkTo(i, x.Name); j >= 0 {
			i = j
		} else if k, ok := e.index[x.Name]; ok { // out of order: see scatterLookup
			i = int(k)
		} else {
			return false
		}
		e.unitOf[i] = u
		e.unitSet.add(i)
		if !mark {
			i++
			continue
		}
		if !markTable(e, u.PrevValues(), i) {
			return false
		}
		i++
		if h := u.Hold; h != nil {
			if !markKeys(e, h.Base) {
				return false
			}
			for _, c := range h.Candidates {
				if !markKeys(e, c.Values) {
					return false
				}
			}
		}
	}
	return true
}

// gatherViews is gather for the views of the systems in e.sys.
func (e *enc6) gatherViews(n, words int) bool {
	if cap(e.views) < len(e.sys) {
		e.views = slices.Grow(e.views[:cap(e.views)], len(e.sys)-cap(e.views))
	}
	e.views = e.views[:len(e.sys)]
	for k, s := range e.sys {
		w := &e.views[k]
		w.v = s.v
		w.units = grow(w.units, n)
		w.native = grow(w.native, n)
		w.unitSet = zeroSet(w.unitSet, words)
		w.nativeSet = zeroSet(w.nativeSet, words)
		w.sentSet = zeroSet(w.sentSet, words)
		if !scatterTable(e, s.v.Units, w.units, w.unitSet) || !scatterTable(e, s.v.Native, w.native, w.nativeSet) {
			return false
		}
		if len(s.v.Sent) > 0 {
			w.sent = grow(w.sent, n)
			if !scatterTable(e, s.v.Sent, w.sent, w.sentSet) {
				return false
			}
		}
	}
	return true
}

// covers reports whether the names of the content gathered cover the name
// table (of n names, in sets of words words).
func (e *enc6) covers(n, words int) bool {
	covered := 0
	for j := range words {
		x := e.fieldSet[j] | e.unitSet[j] | e.extra[j]
		for k := range e.views {
			x |= e.views[k].unitSet[j] | e.views[k].nativeSet[j] | e.views[k].sentSet[j]
		}
		covered += bits.OnesCount64(x)
	}
	return covered == n
}

// grow returns s with length n, its first n elements as they were.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		s = slices.Grow(s[:0], n)
	}
	return s[:n]
}

// zeroSet returns an empty set of the given number of words.
func zeroSet(s bitset, words int) bitset {
	s = grow(s, words)
	clear(s)
	return s
}

// scatter stores each value of m at the index of its name in slots, and
// adds the index to set; false if a name is not in the table.
func scatter[V any](e *enc6, m map[string]V, slots []V, set bitset) bool {
	for k, v := range m {
		i, ok := e.index[k]
		if !ok {
			return false
		}
		slots[i] = v
		set.add(int(i))
	}
	return true
}

// scatterTable is scatter for a Table. Both t and the name table are
// sorted: one walk of each finds every name, without a lookup.
func scatterTable[V any](e *enc6, t Table[V], slots []V, set bitset) bool {
	i := 0
	for k, x := range t {
		if i = e.walkTo(i, x.Name); i < 0 {
			return scatterLookup(e, t[k:], slots, set)
		}
		slots[i] = x.Value
		set.add(i)
		i++
	}
	return true
}

// walkTo returns the index of name in e's name table at i or after it,
// -1 if it is not there: a walk of a sorted table over the sorted name
// table. Comparing for equality only is cheap (the names are most often
// the very strings of the table, or differ in length).
func (e *enc6) walkTo(i int, name string) int {
	for ; i < len(e.names); i++ {
		if e.names[i] == name {
			return i
		}
	}
	return -1
}

// scatterLookup is scatterTable by lookups: for a name the walk did not
// find (not in the table, or a Table out of order, which is then not
// trusted to be in order at all).
func scatterLookup[V any](e *enc6, t Table[V], slots []V, set bitset) bool {
	for _, x := range t {
		i, ok := e.index[x.Name]
		if !ok {
			return false
		}
		slots[i] = x.Value
		set.add(int(i))
	}
	return true
}

// markKeys adds the names of m to e.extra; false if one is not in the
// table.
func markKeys(e *enc6, m map[string]concord.Value) bool {
	for k := range m {
		i, ok := e.index[k]
		if !ok {
			return false
		}
		e.extra.add(int(i))
	}
	return true
}

// markTable adds the names of t to e.extra; false if one is not in the
// table. The names of a unit's Prev are most often the unit's own name
// alone, at index hint: looked at first, then the name after the one
// before.
func markTable(e *enc6, t Table[concord.Value], hint int) bool {
	i := hint
	for _, x := range t {
		if i >= len(e.names) || e.names[i] != x.Name {
			k, ok := e.index[x.Name]
			if !ok {
				return false
			}
			i = int(k)
		}
		e.extra.add(i)
		i++
	}
	return true
}

// buildNames makes e's name table that of st: every unit and field name
// of it (of its units, fields, units' Prev, holds and views), sorted,
// each once.
func (e *enc6) buildNames(st *Record) {
	if e.index == nil {
		e.index = make(map[string]int32, len(st.Units)+len(st.Fields))
	} else {
		clear(e.index)
	}
	// A new table, never the old one's array: resume points share it.
	e.names = make([]string, 0, len(st.Units)+len(st.Fields))
	addNames(e, st.Fields)
	addTableNames(e, st.Units)
	for _, x := range st.Units {
		u := x.Value
		addTableNames(e, u.PrevValues())
		if h := u.Hold; h != nil {
			addNames(e, h.Base)
			for _, c := range h.Candidates {
				addNames(e, c.Values)
			}
		}
	}
	for _, s := range e.sys {
		addTableNames(e, s.v.Units)
		addTableNames(e, s.v.Native)
		addTableNames(e, s.v.Sent)
	}
	slices.Sort(e.names)
	e.prefix = grow(e.prefix, len(e.names))
	for i, n := range e.names {
		e.index[n] = int32(i)
		e.prefix[i] = fnvName(n)
	}
}

// addNames adds the names of m that are not in e's table yet.
func addNames[V any](e *enc6, m map[string]V) {
	for k := range m {
		if _, ok := e.index[k]; !ok {
			e.index[k] = -1
			e.names = append(e.names, k)
		}
	}
}

// addTableNames is addNames for a Table.
func addTableNames[V any](e *enc6, t Table[V]) {
	for _, x := range t {
		if _, ok := e.index[x.Name]; !ok {
			e.index[x.Name] = -1
			e.names = append(e.names, x.Name)
		}
	}
}

// FNV-1a, as [concord.HashBytes] computes it, in parts.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvName returns the FNV-1a state after name and a 0 byte: where the
// hash of a single-field unit of that name continues with the value.
func fnvName(name string) uint64 {
	h := uint64(fnvOffset)
	for i := range len(name) {
		h ^= uint64(name[i])
		h *= fnvPrime
	}
	return h * fnvPrime // ^= 0
}

// fnvBoth continues the FNV-1a state unit and a fresh one with b: the
// hashes of a unit of one field (unit: the state after its name) and of
// its value alone, in one pass.
func fnvBoth(unit uint64, b []byte) (uint64, uint64) {
	native := uint64(fnvOffset)
	for _, c := range b {
		unit = (unit ^ uint64(c)) * fnvPrime
		native = (native ^ uint64(c)) * fnvPrime
	}
	return unit, native
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
	kv := e.kv[:0]
	for k, v := range m {
		i, ok := e.index[k]
		if !ok {
			if e.err == nil {
				e.err = fmt.Errorf("%w (key %q, name %q)", errChanged, e.key, k)
			}
			return
		}
		kv = append(kv, kvEntry{int(i), v})
	}
	e.writeValues(kv, len(kv) <= 1)
}

// writeValues writes the entries of kv (e.kv's space), sorting them by name
// index unless sorted, as a set of names and their values in order.
func (e *enc6) writeValues(kv []kvEntry, sorted bool) {
	if !sorted {
		slices.SortFunc(kv, func(a, b kvEntry) int { return a.i - b.i })
	}
	idx := e.vidx[:0]
	for _, x := range kv {
		idx = append(idx, x.i)
	}
	e.vidx = idx
	e.set(idx)
	for _, x := range kv {
		e.field(e.names[x.i], x.v)
	}
	clear(kv)
	e.kv = kv[:0]
}

// valueTable is valueSet for a Table, whose names are most often the
// unit's own (at index hint; see markTable).
func (e *enc6) valueTable(t Table[concord.Value], hint int) {
	kv := e.kv[:0]
	i, sorted := hint, true
	for _, x := range t {
		if i >= len(e.names) || e.names[i] != x.Name {
			k, ok := e.index[x.Name]
			if !ok {
				if e.err == nil {
					e.err = fmt.Errorf("%w (key %q, name %q)", errChanged, e.key, x.Name)
				}
				return
			}
			i = int(k)
		}
		if len(kv) > 0 && i <= kv[len(kv)-1].i {
			sorted = false // a Table out of order: written in order all the same
		}
		kv = append(kv, kvEntry{i, x.Value})
		i++
	}
	e.writeValues(kv, sorted)
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

// ref returns the reference time of a time of slot: the previous time of
// the slot, or the previous time of any slot (regs[last]).
func ref(regs *[numSlots]tref, last int, slot int) *tref {
	if regs[slot].set {
		return &regs[slot]
	}
	return &regs[last]
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
	// In place, field by field: copying whole references (two pointers
	// each) cost a fifth of encoding a record.
	w := &e.regs[slot]
	w.sec, w.nsec, w.set = sec, nsec, true
	if zoned != nil || w.loc != nil {
		w.name, w.off, w.loc = name, off, zoned
	}
	e.last = slot
}

// predict returns the hashes the canonical value v (if ok: the field has
// one) of the field whose name leaves FNV-1a in state prefix (fnvName)
// predicts, and whether it does (the value has a canonical encoding).
func predict(prefix uint64, v concord.Value, ok bool, scratch *[]byte) (pred, bool) {
	if !ok {
		return pred{state: 2}, false
	}
	b, err := concord.AppendCanonical((*scratch)[:0], v)
	*scratch = b
	if err != nil {
		return pred{state: 2}, false
	}
	unit, native := fnvBoth(prefix, b)
	return pred{unit: unit, native: native, state: 1}, true
}

// predicted returns the prediction for name (index i of the names).
func (e *enc6) predicted(i int) (pred, bool) {
	if len(e.pred) != len(e.names) {
		e.pred = grow(e.pred, len(e.names))
		clear(e.pred)
	}
	p := &e.pred[i]
	if p.state == 0 && e.lazy != nil {
		e.gatherLazy()
	}
	if p.state == 0 {
		*p, _ = predict(e.prefix[i], e.fieldVal[i], e.fieldSet.has(i), &e.scratch)
	}
	return *p, p.state == 1
}

// gatherLazy gathers the canonical values of the record a resumed
// encoding did not gather them from (see resume).
func (e *enc6) gatherLazy() {
	fields := e.lazy
	e.lazy = nil
	e.fieldVal = grow(e.fieldVal, len(e.names))
	if !scatter(e, fields, e.fieldVal, e.fieldSet) && e.err == nil {
		e.err = fmt.Errorf("%w (key %q)", errChanged, e.key)
	}
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

func (e *enc6) unit(i int, u, prev *Unit) {
	var flags byte
	pv := u.PrevValues()
	if pv != nil {
		flags |= unitPrev
	}
	if u.PrevDeleted() {
		flags |= unitPrevDeleted
	}
	if u.Hold != nil {
		flags |= unitHold
	}
	sameV := u.Version.Compare(prev.Version) == concord.Equal
	samePV := u.PrevVersion().Compare(prev.PrevVersion()) == concord.Equal
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
	if pv != nil {
		e.valueTable(pv, i)
	}
	if !samePV {
		e.version6(u.PrevVersion())
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
// version is canonical), the hash and the version as they say. prev is
// the previous view (nil: none).
func (e *enc6) copy6(i int, h Copy, prev *viewSlots) {
	var kind uint64
	switch {
	case h.Hash == 0:
		kind = hashZero
	case e.predictedUnit(i, h.Hash):
		kind = hashPredicted
	default:
		var ph uint64
		havePrev := prev != nil && prev.unitSet.has(i)
		if havePrev {
			ph = prev.units[i].Hash
		}
		kind = hashKind(h.Hash, ph, havePrev)
	}
	flags := byte(kind)
	sameV := e.unitSet.has(i) && h.Version.Compare(e.unitOf[i].Version) == concord.Equal
	if sameV {
		flags |= copySameVersion
	}
	e.b = append(e.b, flags)
	e.hashPayload(kind, h.Hash)
	if !sameV {
		e.version6(h.Version)
	}
}

// view writes the view w, prev being the one before (nil: none).
func (e *enc6) view(w, prev *viewSlots) {
	v := w.v
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
	if v.Partial {
		flags |= viewPartial
	}
	e.b = append(e.b, flags)
	e.str(v.Tag)
	e.time6(v.Modified, slotView)

	e.idx = w.unitSet.appendTo(e.idx[:0])
	e.set(e.idx)
	for _, i := range e.idx {
		e.copy6(i, w.units[i], prev)
	}

	e.idx = w.nativeSet.appendTo(e.idx[:0])
	e.set(e.idx)
	for _, i := range e.idx {
		h := w.native[i]
		var kind uint64
		if h == 0 {
			kind = hashZero
		} else if p, ok := e.predicted(i); ok && p.native == h {
			kind = hashPredicted
		} else if w.unitSet.has(i) && w.units[i].Hash == h {
			kind = hashOwnUnit
		} else {
			var ph uint64
			havePrev := prev != nil && prev.nativeSet.has(i)
			if havePrev {
				ph = prev.native[i]
			}
			kind = hashKind(h, ph, havePrev)
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
		e.idx = w.sentSet.appendTo(e.idx[:0])
		e.set(e.idx)
		for _, i := range e.idx {
			l := w.sent[i]
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
	decoder
	*dec6Cache
	names  []string // the name table
	prefix []uint64 // the FNV-1a state after each name and a 0 byte
	regs   [numSlots]tref
	// last is the slot of the previous time (any slot's, none set: the
	// reference of a time is regs[last] when its own slot is not set).
	last int
	// prevVals and prevs are the record's slabs of units' Prev values and
	// Prev structs (see slab); unitsLeft counts the units not decoded yet.
	prevVals  Table[concord.Value]
	prevs     []Prev
	unitsLeft int
}

// dec6Cache is what a decoder keeps from record to record (in a pool):
// the last name table, the zones and strings of the table of strings it
// met, and scratch space by name index.
type dec6Cache struct {
	// table is the encoding of the last name table decoded, names and
	// prefix what it decodes to. Names are immutable strings: decoded
	// records share them.
	table       []byte
	tableNames  []string
	tablePrefix []uint64
	// zones and interned: the fixed zones and the short strings of the
	// string table (systems, rules, zone names) seen lately, shared by
	// the records decoded.
	zones    []zone
	interned map[string]string

	idx, uidx []int
	scratch   []byte
	pred      []pred
	// The record's string and version tables, and the dots of the
	// version being read: scratch, their backing arrays kept.
	atoms    []string
	versions []concord.Version
	dots     []concord.Dot
	// By name index: the canonical values and units, and the maps of the
	// view being decoded and of the one before.
	fieldVal  []concord.Value
	fieldSet  bitset
	unitOf    []*Unit
	cur, prev decView
}

// decView holds a decoded view's units and native hashes by name index:
// the view after it is decoded against them.
type decView struct {
	units     []Copy
	unitSet   bitset
	native    []uint64
	nativeSet bitset
}

// reset readies w for a view of names names (words of a bitset).
func (w *decView) reset(names, words int) {
	w.units = grow(w.units, names)
	w.native = grow(w.native, names)
	w.unitSet = zeroSet(w.unitSet, words)
	w.nativeSet = zeroSet(w.nativeSet, words)
}

// Bounds of what a pooled decoder keeps: the encoding of a name table,
// the number of strings interned, the length of each.
const (
	maxCachedTable = 16 << 10
	maxInterned    = 256
	maxInternedLen = 64
	maxCachedZones = searchWindow
)

// dec6Pool keeps decoder caches.
var dec6Pool = sync.Pool{New: func() any { return newDec6Cache() }}

// zone is a decoded time zone, kept so that times of one zone share it.
type zone struct {
	name string
	off  int
	loc  *time.Location
}

// decodeCompact decodes the rest of d, a record in format 6, with the
// scratch and caches of c (nil: of a pooled one), and reports whether
// re-encoding it would seal differently (with d.track).
func decodeCompact(d decoder, c *dec6Cache) (*Record, bool, error) {
	if c == nil {
		c = dec6Pool.Get().(*dec6Cache)
		defer dec6Pool.Put(c)
	}
	defer c.release()
	x := dec6{decoder: d, dec6Cache: c}
	x.atoms, x.versions = x.atoms[:0], x.versions[:0]
	x.shareStrings()
	st := x.record()
	if err := x.finish(); err != nil {
		return nil, false, err
	}
	return st, x.stale, nil
}

// newDec6Cache returns an empty decoder cache.
func newDec6Cache() *dec6Cache { return &dec6Cache{interned: map[string]string{}} }

// release drops what c refers to of the record decoded (the name table,
// zones and interned strings stay), for c to go back to the pool.
func (c *dec6Cache) release() {
	clear(c.fieldVal[:cap(c.fieldVal)])
	clear(c.unitOf[:cap(c.unitOf)])
	clear(c.cur.units[:cap(c.cur.units)])
	clear(c.prev.units[:cap(c.prev.units)])
	clear(c.atoms[:cap(c.atoms)])
	clear(c.versions[:cap(c.versions)])
	c.atoms, c.versions = c.atoms[:0], c.versions[:0]
	if cap(c.atoms) > maxCachedNames || cap(c.versions) > maxCachedNames || cap(c.dots) > concord.MaxDots {
		c.atoms, c.versions, c.dots = nil, nil, nil
	}
	if cap(c.fieldVal) > maxCachedNames || cap(c.cur.units) > maxCachedNames || cap(c.idx) > maxCachedNames {
		c.fieldVal, c.fieldSet, c.unitOf, c.cur, c.prev, c.idx, c.uidx, c.pred = nil, nil, nil, decView{}, decView{}, nil, nil, nil
	}
	if cap(c.scratch) > 4096 {
		c.scratch = nil
	}
}

func (d *dec6) record() *Record {
	flags := d.byte()
	if flags&^1 != 0 {
		d.fail("record flags")
	}
	// The record is allocated with its views, once their number is known.
	rec := Record{Deleted: flags&1 != 0, Key: d.str(), Rev: d.uint(), Diverged: d.time6(slotMisc)}
	d.key = rec.Key
	d.nameTable()
	n, words := len(d.names), (len(d.names)+63)/64
	d.fieldVal = grow(d.fieldVal, n)
	d.fieldSet = zeroSet(d.fieldSet, words)
	d.unitOf = grow(d.unitOf, n)
	clear(d.unitOf)
	d.pred = grow(d.pred, n)
	clear(d.pred)
	rec.Fields = d.fields6()

	// Every unit takes at least 3 bytes, every view 6: what is left
	// bounds what is allocated for them.
	idx := d.set(d.uidx)
	d.uidx = idx
	if len(idx) > len(d.b)/3 {
		d.fail("unit count")
		return nil
	}
	rec.Units = make(Table[*Unit], len(idx))
	units := make([]Unit, len(idx))
	d.prevVals, d.prevs = nil, nil // this record's own
	var zero Unit
	prev := &zero
	for i, n := range idx {
		u := &units[i]
		d.unitsLeft = len(idx) - i
		d.unit(u, prev)
		rec.Units[i] = Entry[*Unit]{d.names[n], u} // idx ascends: in name order
		d.unitOf[n] = u
		prev = u
	}

	nv := d.count()
	if nv > len(d.b)/6 {
		d.fail("view count")
		return nil
	}
	var st *Record
	var views []View
	if nv == 1 || nv == 2 {
		b := &recordViews{rec: rec}
		st, views = &b.rec, b.views[:nv:nv]
		st.top = b.top[:0]
	} else {
		st, views = new(Record), make([]View, nv)
		*st = rec
	}
	st.Systems = make(map[concord.SystemID]*View, nv)
	var prevID string
	for i := range nv {
		id := d.atom()
		if i > 0 && id <= prevID {
			d.fail("system order")
		}
		if d.err != nil {
			return nil
		}
		v := &views[i]
		d.cur.reset(n, words)
		var pv *decView
		if i > 0 {
			pv = &d.prev
		}
		d.view(v, pv)
		st.Systems[concord.SystemID(id)] = v
		prevID = id
		d.cur, d.prev = d.prev, d.cur
	}
	// Every version of the record was decoded once into the table (or
	// more than once): the highest counters are those of the table.
	for _, v := range d.versions {
		st.top = joinTop(st.top, v)
	}
	st.topKnown = true
	return st
}

// recordViews is a record and the views of its systems, for the common
// record of one or two systems, with room for the highest counters of
// four actors (Record.TopCounter): one allocation.
type recordViews struct {
	rec   Record
	views [2]View
	top   [4]concord.Dot
}

func (d *dec6) byte() byte { return d.take1("flags") }

// nameTable reads the name table; one encoded as the last one this
// decoder read decodes to the same names, not built again.
func (d *dec6) nameTable() {
	start := d.b
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
	enc := start[:len(start)-len(d.b)]
	if d.table != nil && bytes.Equal(enc, d.table) {
		d.names, d.prefix = d.tableNames, d.tablePrefix
		return
	}
	end := d.b
	d.b = rest
	var sb strings.Builder
	sb.Grow(total)
	names := make([]string, n)
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
		names[i], prev = name, name
	}
	d.b = end
	prefix := make([]uint64, n)
	for i, name := range names {
		prefix[i] = fnvName(name)
	}
	d.names, d.prefix = names, prefix
	if len(enc) <= maxCachedTable {
		d.table = append(d.table[:0], enc...)
		d.tableNames, d.tablePrefix = names, prefix
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
		out = slices.Grow(out, int(n))
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
	out = slices.Grow(out, int(n))
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

func (d *dec6) valueSet() map[string]concord.Value { return d.values6(false) }

// valueTable reads a set of values into a Table, taken from the record's
// slab of them (d.prevVals): never nil, so that an empty set stays apart from
// none.
func (d *dec6) valueTable() Table[concord.Value] {
	idx := d.set(d.idx)
	d.idx = idx
	if d.err != nil {
		return nil
	}
	d.prevVals = slab(d.prevVals, len(idx), d.unitsLeft)
	start := len(d.prevVals)
	for _, i := range idx {
		d.prevVals = append(d.prevVals, Entry[concord.Value]{d.names[i], d.field(d.names[i])})
	}
	return d.prevVals[start:len(d.prevVals):len(d.prevVals)]
}

// slab returns s with room for n more elements, or a new slab (never nil)
// twice as large as s up to limit, at least n: a record's slab grows with
// what it holds, so that a record with a few previous values does not
// take room for one per unit (limit, the units left: a unit has one field
// most often). What was taken from the old slab keeps it.
func slab[T any](s []T, n, limit int) []T {
	if s != nil && cap(s)-len(s) >= n {
		return s
	}
	return make([]T, 0, max(n, min(max(4, 2*cap(s)), limit)))
}

// fields6 reads the canonical values, kept by name index too.
func (d *dec6) fields6() map[string]concord.Value { return d.values6(true) }

// values6 reads a set of values; with byIndex, it also keeps them by name
// index (the canonical values, which predicted hashes are computed from).
func (d *dec6) values6(byIndex bool) map[string]concord.Value {
	idx := d.set(d.idx)
	d.idx = idx
	if d.err != nil {
		return nil
	}
	m := make(map[string]concord.Value, min(len(idx), len(d.b)))
	for _, i := range idx {
		v := d.field(d.names[i])
		m[d.names[i]] = v
		if byIndex {
			d.fieldVal[i] = v
			d.fieldSet.add(i)
		}
	}
	return m
}

func (d *dec6) atom() string {
	r := d.uint()
	if r == 0 {
		s := d.intern()
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

// intern reads a string, the same as one read before (by this pooled
// decoder) if it is short.
func (d *dec6) intern() string {
	n := d.count()
	if n > maxInternedLen {
		var s string
		if d.share {
			s = d.sub(n)
		} else {
			s = string(d.b[:n])
		}
		d.b = d.b[n:]
		return s
	}
	raw := d.b[:n]
	d.b = d.b[n:]
	if s, ok := d.interned[string(raw)]; ok {
		return s
	}
	s := string(raw)
	if len(d.interned) >= maxInterned {
		clear(d.interned)
	}
	d.interned[s] = s
	return s
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
	dots := grow(d.dots, int(n))
	d.dots = dots
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
	v, err := concord.NewVersion(dots...) // the one allocation: a copy of dots
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
	r := &d.regs[slot] // as ref, without copying the references
	if !r.set {
		r = &d.regs[d.last]
	}
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
	d.regs[slot] = reg // after the last use of r
	d.last = slot
	return t
}

// zone returns a fixed zone of that name and offset, the same for the
// times of the records a pooled decoder decodes (a fixed zone does not
// change).
func (d *dec6) zone(name string, off int) *time.Location {
	for _, z := range d.zones {
		if z.name == name && z.off == off {
			return z.loc
		}
	}
	loc := time.FixedZone(name, off)
	if len(d.zones) >= maxCachedZones {
		clear(d.zones)
		d.zones = d.zones[:0]
	}
	d.zones = append(d.zones, zone{name: name, off: off, loc: loc})
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
	var p Prev
	if flags&unitPrev != 0 {
		p.Values = d.valueTable()
	}
	if flags&unitSamePrevVersion != 0 {
		p.Version = prev.PrevVersion()
	} else {
		p.Version = d.version6()
	}
	p.Deleted = flags&unitPrevDeleted != 0
	if p.Values != nil || !p.Version.IsZero() || p.Deleted {
		d.prevs = append(slab(d.prevs, 1, d.unitsLeft), p)
		u.Prev = &d.prevs[len(d.prevs)-1]
	}
	if flags&unitHold == 0 || d.err != nil {
		return
	}
	h := &Hold{}
	nc := d.count()
	if nc > 0 {
		h.Candidates = make([]resolve.Candidate, 0, nc)
	}
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
	p := &d.pred[i]
	if p.state == 0 {
		*p, _ = predict(d.prefix[i], d.fieldVal[i], d.fieldSet.has(i), &d.scratch)
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

// copy6 reads a copy of unit i; prev is the view before (nil: none).
func (d *dec6) copy6(i int, prev *decView) Copy {
	flags := d.byte()
	if flags&^(copySameVersion|7) != 0 {
		d.fail("copy flags")
		return Copy{}
	}
	var ph uint64
	havePrev := prev != nil && prev.unitSet.has(i)
	if havePrev {
		ph = prev.units[i].Hash
	}
	h := Copy{Hash: d.hash6(flags&7, i, false, ph, havePrev, 0, false)}
	if flags&copySameVersion != 0 {
		canon := d.unitOf[i]
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

// view reads v into d.cur; prev is the view before (nil: none).
func (d *dec6) view(v *View, prev *decView) {
	flags := d.byte()
	if flags&^(viewSeen|viewDeleted|viewParked|viewFailing|viewSent|viewPartial) != 0 {
		d.fail("view flags")
		return
	}
	v.Seen, v.Deleted, v.Parked = flags&viewSeen != 0, flags&viewDeleted != 0, flags&viewParked != 0
	v.Partial = flags&viewPartial != 0
	v.Tag = d.str()
	v.Modified = d.time6(slotView)
	w := &d.cur

	idx := d.set(d.idx)
	d.idx = idx
	for _, i := range idx {
		w.units[i] = d.copy6(i, prev)
		w.unitSet.add(i)
	}
	if d.err != nil {
		return
	}
	v.Units = slotTable(d.names, idx, w.units)

	idx = d.set(d.idx)
	d.idx = idx
	for _, i := range idx {
		haveOwn := w.unitSet.has(i)
		var own uint64
		if haveOwn {
			own = w.units[i].Hash
		}
		var ph uint64
		havePrev := prev != nil && prev.nativeSet.has(i)
		if havePrev {
			ph = prev.native[i]
		}
		w.native[i] = d.hash6(d.byte(), i, true, ph, havePrev, own, haveOwn)
		w.nativeSet.add(i)
	}
	if d.err != nil {
		return
	}
	v.Native = slotTable(d.names, idx, w.native)

	if flags&viewFailing != 0 {
		v.Attempts, v.FirstFailed, v.LastError = int(d.uint()), d.time6(slotFailed), d.str()
	}
	if flags&viewSent != 0 {
		idx = d.set(d.idx)
		d.idx = idx
		if len(idx) == 0 {
			d.fail("empty sent set")
			return
		}
		v.Sent = make(Table[[]Copy], 0, len(idx))
		// One backing array for the lists of one write each (the common
		// case); a list takes exactly its room of it, so that appending
		// to one never writes into the next.
		slab := make([]Copy, len(idx))
		for _, i := range idx {
			nh := d.count()
			if nh == 0 {
				d.fail("empty sent list")
				return
			}
			var l []Copy
			if nh <= len(slab) {
				l, slab = slab[:nh:nh], slab[nh:]
			} else {
				l = make([]Copy, nh)
			}
			for k := range l {
				l[k] = d.copy6(i, nil)
			}
			v.Sent = append(v.Sent, Entry[[]Copy]{d.names[i], l}) // idx ascends: in name order
		}
	}
}

// slotTable returns the Table of the names at idx (ascending: the names
// are sorted) to their slots.
func slotTable[V any](names []string, idx []int, slots []V) Table[V] {
	t := make(Table[V], len(idx))
	for k, i := range idx {
		t[k] = Entry[V]{names[i], slots[i]}
	}
	return t
}
