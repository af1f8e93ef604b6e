package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/seal"
)

// Version is the format version of a dead letter (and of a state written
// by [Codec.EncodeLegacyState]) that holds no sealed value: such an
// encoding is byte for byte what it was before sealing existed.
const Version = 3

// SealedVersion is the format version of a dead letter (or legacy state)
// that holds a sealed value: format 3 plus the sealed-value tag.
const SealedVersion = 4

// AuthoredVersion is the format version of a legacy state whose held
// candidates say who made them (resolve.Candidate.By): format 4 plus that
// string after each candidate. It is the newest version of a dead letter
// this package reads; states have [CompactVersion].
const AuthoredVersion = 5

var (
	magicState = [3]byte{'C', 'S', 'R'}
	magicDead  = [3]byte{'C', 'S', 'D'}
)

// ErrCorrupt is wrapped by every decoding error: truncated, malformed or
// foreign data.
var ErrCorrupt = errors.New("state: corrupt or foreign data")

// ErrNewerFormat is returned for data written in a format version newer
// than this package knows: written by a newer Concord. Nothing is decoded.
var ErrNewerFormat = errors.New("state: data written by a newer format version")

// ErrChecksum is wrapped by the decoding error of format 3 data whose
// checksum does not match: damaged, whatever store kept it. It wraps
// [ErrCorrupt].
var ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrCorrupt)

// castagnoli is the CRC-32C table: any 1, 2 or 3 flipped bits in an
// encoding shorter than 256 MiB are detected, other damage with
// probability 1 - 2^-32.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal appends the CRC-32C of everything encoded from start.
func (e *encoder) seal(start int) {
	if e.err == nil {
		e.b = binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b[start:], castagnoli))
	}
}

// EncodeState appends the encoding of st to b, with the zero [Codec]:
// nothing is sealed.
func EncodeState(b []byte, st *Record) ([]byte, error) { return Codec{}.EncodeState(b, st) }

// EncodeState appends the encoding of st to b, the values of sensitive
// fields sealed, in format [CompactVersion].
func (c Codec) EncodeState(b []byte, st *Record) ([]byte, error) {
	b, _, err := c.encodeCompact(b, st)
	return b, err
}

// EncodeLegacyState appends the encoding of st to b as Concord wrote it
// before format 6: format 3, or 4 if it holds a sealed value, or 5 if a
// held candidate says who made it. Any Concord since format 5 decodes it
// (one since format 3 if it holds neither): for data that an older Concord
// must read, and for tests of the older formats. It is larger and slower
// to decode than EncodeState's.
func (c Codec) EncodeLegacyState(b []byte, st *Record) ([]byte, error) {
	start := len(b)
	e := encoder{b: append(b, magicState[0], magicState[1], magicState[2], Version), c: c, key: st.Key}
	e.authored = authored(st)
	e.str(st.Key)
	e.uint(st.Rev)
	e.bool(st.Deleted)
	e.time(st.Diverged)
	e.fields(st.Fields)
	e.uint(uint64(len(st.Units)))
	for _, x := range st.Units {
		name, u := x.Name, x.Value
		e.str(name)
		e.version(u.Version)
		e.str(string(u.Winner))
		e.str(u.Rule)
		e.time(u.Changed)
		e.time(u.Modified)
		e.optFields(u.PrevValues().Map())
		e.version(u.PrevVersion())
		e.bool(u.PrevDeleted())
		e.bool(u.Hold != nil)
		if h := u.Hold; h != nil {
			e.uint(uint64(len(h.Candidates)))
			for _, c := range h.Candidates {
				e.candidate(c)
			}
			e.optFields(h.Base)
			e.bool(h.BaseKnown)
			e.str(h.Rule)
			e.str(h.Reason)
			e.time(h.Since)
		}
	}
	e.uint(uint64(len(st.Systems)))
	for _, id := range sortedKeys(st.Systems) {
		v := st.Systems[id]
		e.str(string(id))
		e.bool(v.Seen)
		e.bool(v.Deleted)
		e.str(v.Tag)
		e.time(v.Modified)
		e.uint(uint64(len(v.Units)))
		for _, x := range v.Units {
			e.str(x.Name)
			e.hash(x.Value.Hash)
			e.version(x.Value.Version)
		}
		e.uint(uint64(len(v.Native)))
		for _, x := range v.Native {
			e.str(x.Name)
			e.hash(x.Value)
		}
		e.uint(uint64(v.Attempts))
		e.time(v.FirstFailed)
		e.str(v.LastError)
		e.bool(v.Parked)
		e.uint(uint64(len(v.Sent)))
		for _, x := range v.Sent {
			e.str(x.Name)
			e.uint(uint64(len(x.Value)))
			for _, h := range x.Value {
				e.hash(h.Hash)
				e.version(h.Version)
			}
		}
	}
	e.finish(start)
	return e.b, e.err
}

// DecodeState decodes what EncodeState wrote, with the zero [Codec]: a
// sealed value is an error wrapping [ErrNoSealer].
func DecodeState(b []byte) (*Record, error) { return Codec{}.DecodeState(b) }

// DecodeState decodes what [Codec.EncodeState] (of any Codec) wrote,
// opening sealed values.
func (c Codec) DecodeState(b []byte) (*Record, error) {
	st, _, err := c.decodeState(b, false)
	return st, err
}

// decodeState decodes a state; with track, it also reports whether
// re-encoding it would seal differently (see Reseal).
func (c *Codec) decodeState(b []byte, track bool) (*Record, bool, error) {
	return c.decodeStateWith(b, track, nil)
}

// decodeStateWith is decodeState, a format 6 state decoded with the
// caches of dc (nil: of a pooled decoder).
func (c *Codec) decodeStateWith(b []byte, track bool, dc *dec6Cache) (*Record, bool, error) {
	d := decoder{b: b, c: *c, track: track}
	d.header(magicState, CompactVersion)
	if d.ver == CompactVersion {
		return decodeCompact(d, dc)
	}
	st := &Record{Key: d.str(), Rev: d.uint(), Deleted: d.bool(), Diverged: d.time()}
	d.key = st.Key
	st.Fields = d.fields()
	n := d.count()
	st.Units = make(Table[*Unit], 0, n)
	for range n {
		name := d.str()
		u := &Unit{Version: d.version(), Winner: concord.SystemID(d.str()), Rule: d.str(),
			Changed: d.time(), Modified: d.time()}
		p := Prev{Values: TableOfMap(d.optFields()), Version: d.version(), Deleted: d.bool()}
		if p.Values != nil || !p.Version.IsZero() || p.Deleted {
			u.Prev = &p
		}
		if d.bool() {
			h := &Hold{}
			nc := d.count()
			for range nc {
				h.Candidates = append(h.Candidates, d.candidate())
			}
			h.Base, h.BaseKnown, h.Rule, h.Reason, h.Since = d.optFields(), d.bool(), d.str(), d.str(), d.time()
			u.Hold = h
		}
		st.Units.Set(name, u)
	}
	n = d.count()
	st.Systems = make(map[concord.SystemID]*View, n)
	for range n {
		id := concord.SystemID(d.str())
		v := &View{Seen: d.bool(), Deleted: d.bool(), Tag: d.str(), Modified: d.time()}
		nu := d.count()
		v.Units = make(Table[Copy], 0, nu)
		for range nu {
			name := d.str()
			v.Units.Set(name, Copy{Hash: d.hash(), Version: d.version()})
		}
		nn := d.count()
		v.Native = make(Table[uint64], 0, nn)
		for range nn {
			name := d.str()
			v.Native.Set(name, d.hash())
		}
		v.Attempts, v.FirstFailed, v.LastError, v.Parked = int(d.uint()), d.time(), d.str(), d.bool()
		if d.ver >= 2 {
			if ns := d.count(); ns > 0 {
				v.Sent = make(Table[[]Copy], 0, ns)
				for range ns {
					name := d.str()
					nh := d.count()
					for range nh {
						v.Sent.Set(name, append(v.Sent.Value(name), Copy{Hash: d.hash(), Version: d.version()}))
					}
				}
			}
		}
		st.Systems[id] = v
	}
	if err := d.finish(); err != nil {
		return nil, false, err
	}
	return st, d.stale, nil
}

// EncodeDeadLetter appends the encoding of dl to b, with the zero [Codec]:
// nothing is sealed.
func EncodeDeadLetter(b []byte, dl DeadLetter) ([]byte, error) {
	return Codec{}.EncodeDeadLetter(b, dl)
}

// EncodeDeadLetter appends the encoding of dl to b, the values of
// sensitive fields (of Record and of Transformed) sealed, bound to dl.Key.
func (c Codec) EncodeDeadLetter(b []byte, dl DeadLetter) ([]byte, error) {
	start := len(b)
	e := encoder{b: append(b, magicDead[0], magicDead[1], magicDead[2], Version), c: c, key: dl.Key}
	e.str(string(dl.System))
	e.str(dl.Key)
	e.bool(dl.Inbound)
	e.str(dl.Record.Key)
	e.optFields(dl.Record.Fields)
	e.bool(dl.Record.Deleted)
	e.time(dl.Record.Modified)
	e.str(dl.Record.Tag)
	e.str(dl.Transformed.Key)
	e.optFields(dl.Transformed.Fields)
	e.bool(dl.Transformed.Deleted)
	e.str(dl.Reason)
	e.str(dl.Class)
	e.uint(uint64(dl.Attempts))
	e.time(dl.FirstFailed)
	e.time(dl.When)
	e.uint(uint64(len(dl.Textual)))
	for _, f := range dl.Textual {
		e.str(f)
	}
	e.bool(dl.Whole)
	e.uint(uint64(len(dl.Record.FieldModified)))
	for _, f := range sortedKeys(dl.Record.FieldModified) {
		e.str(f)
		e.time(dl.Record.FieldModified[f])
	}
	e.finish(start)
	return e.b, e.err
}

// DecodeDeadLetter decodes what EncodeDeadLetter wrote, with the zero
// [Codec]: a sealed value is an error wrapping [ErrNoSealer].
func DecodeDeadLetter(b []byte) (DeadLetter, error) { return Codec{}.DecodeDeadLetter(b) }

// DecodeDeadLetter decodes what [Codec.EncodeDeadLetter] (of any Codec)
// wrote, opening sealed values.
func (c Codec) DecodeDeadLetter(b []byte) (DeadLetter, error) {
	dl, _, err := c.decodeDeadLetter(b, false)
	return dl, err
}

func (c *Codec) decodeDeadLetter(b []byte, track bool) (DeadLetter, bool, error) {
	return decodeLetter(&decoder{b: b, c: *c, track: track})
}

// LetterIndex returns what a store indexes of a dead letter that
// EncodeDeadLetter (of any Codec) wrote: its system, key and class. It
// passes over sealed values without opening them, and needs no Codec: for
// stores that index letters committed before they kept these apart.
// Damaged bytes are an error wrapping [ErrCorrupt] or [ErrChecksum].
func LetterIndex(b []byte) (system concord.SystemID, key, class string, err error) {
	dl, _, err := decodeLetter(&decoder{b: b, skipSealed: true})
	return dl.System, dl.Key, dl.Class, err
}

func decodeLetter(d *decoder) (DeadLetter, bool, error) {
	d.header(magicDead, AuthoredVersion)
	dl := DeadLetter{System: concord.SystemID(d.str()), Key: d.str(), Inbound: d.bool()}
	d.key = dl.Key
	dl.Record = concord.Record{Key: d.str(), Fields: d.optFields(), Deleted: d.bool(), Modified: d.time(), Tag: d.str()}
	dl.Transformed = concord.Record{Key: d.str(), Fields: d.optFields(), Deleted: d.bool()}
	dl.Reason, dl.Class, dl.Attempts, dl.FirstFailed, dl.When = d.str(), d.str(), int(d.uint()), d.time(), d.time()
	if d.ver >= 2 {
		for range d.count() {
			dl.Textual = append(dl.Textual, d.str())
		}
		dl.Whole = d.bool()
	}
	if d.ver >= 3 {
		if n := d.count(); n > 0 {
			dl.Record.FieldModified = make(map[string]time.Time, n)
			for range n {
				f := d.str()
				dl.Record.FieldModified[f] = d.time()
			}
		}
	}
	if err := d.finish(); err != nil {
		return DeadLetter{}, false, err
	}
	return dl, d.stale, nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

type encoder struct {
	b   []byte
	err error
	// c seals the values of sensitive fields of the record key; sealed
	// reports that one was.
	c      Codec
	key    string
	sealed bool
	// authored: candidates carry their By (AuthoredVersion).
	authored bool
}

// authored reports whether a held candidate of st says who made it.
func authored(st *Record) bool {
	for _, x := range st.Units {
		if u := x.Value; u.Hold != nil {
			for _, c := range u.Hold.Candidates {
				if c.By != "" {
					return true
				}
			}
		}
	}
	return false
}

// finish sets the format version (SealedVersion if a value was sealed)
// of the encoding that starts at start, and appends its checksum.
func (e *encoder) finish(start int) {
	switch {
	case e.authored:
		e.b[start+3] = AuthoredVersion
	case e.sealed:
		e.b[start+3] = SealedVersion
	}
	e.seal(start)
}

func (e *encoder) uint(u uint64) { e.b = binary.AppendUvarint(e.b, u) }
func (e *encoder) int(i int64)   { e.b = binary.AppendVarint(e.b, i) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) hash(h uint64) { e.b = binary.BigEndian.AppendUint64(e.b, h) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// time encodes any time.Time: see the package documentation. A malformed
// time with nanoseconds past a second (only Time.UnmarshalBinary of damaged
// bytes makes one) is stored as the same instant, well formed.
func (e *encoder) time(t time.Time) {
	sec, nsec := t.Unix(), t.Nanosecond()
	sec, nsec = sec+int64(nsec/1e9), nsec%1e9
	if t.Location() == time.UTC {
		e.b = append(e.b, 0)
		e.int(sec)
		e.uint(uint64(nsec))
		return
	}
	name, off := t.Zone()
	e.b = append(e.b, 1)
	e.int(sec)
	e.uint(uint64(nsec))
	e.int(int64(off))
	e.str(name)
}

func (e *encoder) version(v concord.Version) { e.b, _ = v.AppendBinary(e.b) }

func (e *encoder) candidate(c resolve.Candidate) {
	e.str(string(c.System))
	e.bool(c.Canonical)
	e.optFields(c.Values)
	e.bool(c.Deleted)
	e.version(c.Version)
	e.time(c.Modified)
	if e.authored {
		e.str(c.By)
	}
}

// optFields encodes a map that may be nil (nil and empty differ).
func (e *encoder) optFields(m map[string]concord.Value) {
	e.bool(m != nil)
	if m != nil {
		e.fields(m)
	}
}

// fields encodes the values of fields: every value of a field that the
// engine stores, canonical or a system's, goes through here.
func (e *encoder) fields(m map[string]concord.Value) {
	e.uint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.str(k)
		e.field(k, m[k])
	}
}

// field encodes the value of field f: as it is, or, for a sensitive field,
// the sealed-value tag and the sealed encoding of the value, bound to the
// record key and f.
func (e *encoder) field(f string, v concord.Value) {
	sensitive, err := e.c.sensitive(f)
	if err == nil && !sensitive {
		e.value(v, f)
		return
	}
	if e.err != nil {
		return
	}
	if err == nil && e.c.Sealer == nil {
		err = ErrNoSealer
	}
	if err != nil {
		e.err = &SealError{Key: e.key, Field: f, Op: "sealing", Err: err}
		return
	}
	plain := encoder{}
	plain.value(v, f)
	if plain.err != nil {
		e.err = plain.err
		return
	}
	sealed, err := e.c.sealValue(plain.b, e.c.aad(e.key, f))
	if err != nil {
		e.err = &SealError{Key: e.key, Field: f, Op: "sealing", Err: err}
		return
	}
	e.b = append(e.b, tagSealed)
	e.uint(uint64(len(sealed)))
	e.b = append(e.b, sealed...)
	e.sealed = true
}

// Width bytes of the I and U tags.
const (
	widthInt = 0 // int or uint
	width8   = 8
	width16  = 16
	width32  = 32
)

func (e *encoder) value(v concord.Value, path string) { e.valueAt(v, path, 0) }

func (e *encoder) sized(tag byte, width byte) { e.b = append(e.b, tag, width) }

func (e *encoder) valueAt(v concord.Value, path string, depth int) {
	if depth > concord.MaxValueDepth {
		if e.err == nil {
			e.err = fmt.Errorf("state: value at %s: nested more than %d deep: %w", path, concord.MaxValueDepth, concord.ErrUnsupportedValue)
		}
		return
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, 'z')
	case bool:
		if x {
			e.b = append(e.b, 't')
		} else {
			e.b = append(e.b, 'f')
		}
	case string:
		e.b = append(e.b, 's')
		e.str(x)
	case []byte:
		e.b = append(e.b, 'b')
		e.str(string(x))
	case int:
		e.sized('I', widthInt)
		e.int(int64(x))
	case int8:
		e.sized('I', width8)
		e.int(int64(x))
	case int16:
		e.sized('I', width16)
		e.int(int64(x))
	case int32:
		e.sized('I', width32)
		e.int(int64(x))
	case int64:
		e.b = append(e.b, 'i')
		e.int(x)
	case uint:
		e.sized('U', widthInt)
		e.uint(uint64(x))
	case uint8:
		e.sized('U', width8)
		e.uint(uint64(x))
	case uint16:
		e.sized('U', width16)
		e.uint(uint64(x))
	case uint32:
		e.sized('U', width32)
		e.uint(uint64(x))
	case uint64:
		e.b = append(e.b, 'u')
		e.uint(x)
	case float32:
		e.b = append(e.b, 'g')
		e.b = binary.BigEndian.AppendUint32(e.b, math.Float32bits(x))
	case float64:
		e.b = append(e.b, 'd')
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(x))
	case json.Number:
		e.b = append(e.b, 'n')
		e.str(string(x))
	case time.Time:
		e.b = append(e.b, 'T')
		e.time(x)
	case []any:
		e.b = append(e.b, 'l')
		e.uint(uint64(len(x)))
		for i, el := range x {
			e.valueAt(el, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case []string:
		e.b = append(e.b, 'L')
		e.uint(uint64(len(x)))
		for _, el := range x {
			e.str(el)
		}
	case map[string]any:
		e.b = append(e.b, 'm')
		e.uint(uint64(len(x)))
		for _, k := range sortedKeys(x) {
			e.str(k)
			e.valueAt(x[k], path+"."+k, depth+1)
		}
	case map[string]string:
		e.b = append(e.b, 'M')
		e.uint(uint64(len(x)))
		for _, k := range sortedKeys(x) {
			e.str(k)
			e.str(x[k])
		}
	default:
		if e.err == nil {
			e.err = fmt.Errorf("state: value at %s: %w", path, concord.CheckValue(v))
		}
	}
}

type decoder struct {
	b   []byte
	err error
	ver byte // format version, from the header
	// c opens sealed values of the record key. With track, stale reports
	// that the Codec would seal some value differently: a sealed value
	// not under the Sealer's current key, a sensitive field's value not
	// sealed, or a sealed value of a field no longer sensitive.
	c     Codec
	key   string
	track bool
	stale bool
	// skipSealed passes over sealed values (decoded as nil) instead of
	// opening them: for LetterIndex, which reads no field value.
	skipSealed bool
	// With share, the strings read are substrings of whole, a copy of
	// body (made at the first string that needs it): one allocation for
	// all of them. b is then always a suffix of body.
	share bool
	body  []byte
	whole string
}

// maxShared bounds the input whose strings share one copy of it: a string
// kept from a decoded record keeps that copy (at most this size) alive.
const maxShared = 16 << 10

// shareStrings makes the strings read from here on substrings of one copy
// of what is left of the input, if it is not larger than maxShared.
func (d *decoder) shareStrings() {
	if len(d.b) <= maxShared {
		d.share, d.body = true, d.b
	}
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

// header checks the magic and the format version (at most newest) and the
// checksum, and leaves what is between them.
func (d *decoder) header(magic [3]byte, newest byte) {
	if len(d.b) < 4 || d.b[0] != magic[0] || d.b[1] != magic[1] || d.b[2] != magic[2] {
		d.err = fmt.Errorf("%w: no %s header", ErrCorrupt, string(magic[:]))
		d.b = nil
		return
	}
	if d.b[3] > newest {
		d.err = fmt.Errorf("%w: version %d, this Concord reads up to %d", ErrNewerFormat, d.b[3], newest)
		d.b = nil
		return
	}
	if d.b[3] == 0 {
		d.fail("format version 0")
		return
	}
	d.ver = d.b[3]
	if d.ver >= 3 {
		n := len(d.b) - crc32.Size
		if n < 4 {
			d.fail("checksum: too short to hold one")
			return
		}
		if stored, sum := binary.BigEndian.Uint32(d.b[n:]), crc32.Checksum(d.b[:n], castagnoli); stored != sum {
			d.err = fmt.Errorf("%w: stored %08x, computed %08x over %d bytes", ErrChecksum, stored, sum, n)
			d.b = nil
			return
		}
		d.b = d.b[:n]
	}
	d.b = d.b[4:]
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return d.err
}

func (d *decoder) uint() uint64 {
	u, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("unsigned integer")
		return 0
	}
	d.b = d.b[n:]
	return u
}

func (d *decoder) int() int64 {
	i, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return i
}

// count reads a length and checks it against what is left, so that a
// corrupt length cannot make the decoder allocate gigabytes.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail("length")
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count()
	var s string
	if d.share && n > 1 { // a string of one byte allocates nothing
		s = d.sub(n)
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

// sub returns the next n bytes (there are n) as a substring of d.whole.
func (d *decoder) sub(n int) string {
	if d.whole == "" {
		d.whole = string(d.body)
	}
	at := len(d.body) - len(d.b)
	return d.whole[at : at+n]
}

func (d *decoder) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("boolean")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) hash() uint64 {
	if len(d.b) < 8 {
		d.fail("hash")
		return 0
	}
	h := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return h
}

func (d *decoder) time() time.Time {
	if d.ver == 1 {
		s := d.str()
		var t time.Time
		if d.err == nil {
			if err := t.UnmarshalBinary([]byte(s)); err != nil || t.Nanosecond() >= 1e9 {
				d.fail("time")
			}
		}
		return t
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("time zone")
		return time.Time{}
	}
	zoned := d.b[0] == 1
	d.b = d.b[1:]
	sec, nsec := d.int(), d.uint()
	if nsec >= 1e9 {
		d.fail("time nanoseconds")
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec))
	if !zoned {
		return t.UTC()
	}
	off := d.int()
	name := d.str()
	if int64(int(off)) != off {
		d.fail("time zone offset")
		return time.Time{}
	}
	return t.In(time.FixedZone(name, int(off)))
}

func (d *decoder) version() concord.Version {
	if d.err != nil {
		return concord.Version{}
	}
	v, rest, err := concord.DecodeVersion(d.b)
	if err != nil {
		d.fail("version vector")
		return concord.Version{}
	}
	d.b = rest
	return v
}

func (d *decoder) candidate() resolve.Candidate {
	c := resolve.Candidate{System: concord.SystemID(d.str()), Canonical: d.bool(), Values: d.optFields(),
		Deleted: d.bool(), Version: d.version(), Modified: d.time()}
	if d.ver >= AuthoredVersion {
		c.By = d.str()
	}
	return c
}

func (d *decoder) optFields() map[string]concord.Value {
	if !d.bool() {
		return nil
	}
	return d.fields()
}

func (d *decoder) fields() map[string]concord.Value {
	n := d.count()
	m := make(map[string]concord.Value, n)
	for range n {
		k := d.str()
		m[k] = d.field(k)
	}
	return m
}

// field decodes the value of field f, opening it if it is sealed.
func (d *decoder) field(f string) concord.Value {
	if len(d.b) == 0 || d.b[0] != tagSealed {
		v := d.value(0)
		if d.track && d.err == nil {
			if sensitive, err := d.c.sensitive(f); err != nil {
				d.sealErr(f, err)
			} else if sensitive {
				d.stale = true
			}
		}
		return v
	}
	if d.ver < SealedVersion {
		d.fail(fmt.Sprintf("sealed value in format version %d", d.ver))
		return nil
	}
	d.b = d.b[1:]
	n := d.count()
	sealed := d.b[:n:n]
	d.b = d.b[n:]
	if d.err != nil || d.skipSealed {
		return nil
	}
	if d.c.Sealer == nil {
		d.sealErr(f, ErrNoSealer)
		return nil
	}
	plain, err := d.c.openValue(sealed, d.c.aad(d.key, f))
	if err != nil {
		if errors.Is(err, seal.ErrMalformed) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		d.sealErr(f, err)
		return nil
	}
	pd := decoder{b: plain, ver: d.ver}
	v := pd.value(0)
	if err := pd.finish(); err != nil {
		d.sealErr(f, fmt.Errorf("the opened value: %w", err))
		return nil
	}
	if d.track {
		if sensitive, err := d.c.sensitive(f); err != nil {
			d.sealErr(f, err)
		} else if !sensitive || d.c.needsReseal(sealed) {
			d.stale = true
		}
	}
	return v
}

// sealErr fails decoding with a SealError for field f.
func (d *decoder) sealErr(f string, err error) {
	if d.err == nil {
		d.err = &SealError{Key: d.key, Field: f, Op: "opening", Err: err}
	}
	d.b = nil
}

const maxDepth = concord.MaxValueDepth

// newTag reports whether a value tag exists only from format version 2.
func newTag(tag byte) bool { return tag == 'b' || tag == 'I' || tag == 'U' || tag == 'g' }

func (d *decoder) width() byte { return d.take1("integer width") }

// take1 reads one byte; what names it if the input ends.
func (d *decoder) take1(what string) byte {
	if len(d.b) == 0 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) sizedInt() concord.Value {
	w := d.width()
	i := d.int()
	if d.err != nil {
		return nil
	}
	switch {
	case w == widthInt && int64(int(i)) == i:
		return int(i)
	case w == width8 && int64(int8(i)) == i:
		return int8(i)
	case w == width16 && int64(int16(i)) == i:
		return int16(i)
	case w == width32 && int64(int32(i)) == i:
		return int32(i)
	}
	d.fail("sized integer")
	return nil
}

func (d *decoder) sizedUint() concord.Value {
	w := d.width()
	u := d.uint()
	if d.err != nil {
		return nil
	}
	switch {
	case w == widthInt && uint64(uint(u)) == u:
		return uint(u)
	case w == width8 && uint64(uint8(u)) == u:
		return uint8(u)
	case w == width16 && uint64(uint16(u)) == u:
		return uint16(u)
	case w == width32 && uint64(uint32(u)) == u:
		return uint32(u)
	}
	d.fail("sized unsigned integer")
	return nil
}

func (d *decoder) value(depth int) concord.Value {
	if len(d.b) == 0 || depth > maxDepth {
		d.fail("value")
		return nil
	}
	tag := d.b[0]
	d.b = d.b[1:]
	if d.ver < 2 && newTag(tag) {
		d.fail(fmt.Sprintf("value tag %q in format version %d", tag, d.ver))
		return nil
	}
	switch tag {
	case 'z':
		return nil
	case 'f':
		return false
	case 't':
		return true
	case 's':
		return d.str()
	case 'i':
		return d.int()
	case 'u':
		return d.uint()
	case 'b':
		n := d.count()
		out := make([]byte, n)
		copy(out, d.b)
		d.b = d.b[n:]
		return out
	case 'I':
		return d.sizedInt()
	case 'U':
		return d.sizedUint()
	case 'd':
		if len(d.b) < 8 {
			d.fail("float")
			return nil
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(d.b))
		d.b = d.b[8:]
		return f
	case 'g':
		if len(d.b) < 4 {
			d.fail("float32")
			return nil
		}
		f := math.Float32frombits(binary.BigEndian.Uint32(d.b))
		d.b = d.b[4:]
		return f
	case 'n':
		return json.Number(d.str())
	case 'T':
		return d.time()
	case 'l':
		n := d.count()
		out := make([]any, 0, n)
		for range n {
			out = append(out, d.value(depth+1))
		}
		return out
	case 'L':
		n := d.count()
		out := make([]string, 0, n)
		for range n {
			out = append(out, d.str())
		}
		return out
	case 'm':
		n := d.count()
		out := make(map[string]any, n)
		for range n {
			k := d.str()
			out[k] = d.value(depth + 1)
		}
		return out
	case 'M':
		n := d.count()
		out := make(map[string]string, n)
		for range n {
			k := d.str()
			out[k] = d.str()
		}
		return out
	}
	d.fail(fmt.Sprintf("value tag %q", tag))
	return nil
}
