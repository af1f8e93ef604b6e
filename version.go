package concord

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Actor is the small number that stands for one configured system (or one
// epoch of the engine) inside a [Version]. The engine's store assigns actors
// to system names once and never reuses them.
type Actor uint32

// Dot is one entry of a version vector: how many edits by Actor a version
// has seen.
type Dot struct {
	Actor   Actor
	Counter uint64
}

// MaxDots is the most actors one Version may name. Vectors are never pruned;
// an increment that would exceed MaxDots fails with [ErrVersionFull].
const MaxDots = 64

// ErrVersionFull is returned when a Version would name more than [MaxDots]
// actors.
var ErrVersionFull = errors.New("concord: version vector is full")

// ErrBadVersion is returned when decoding or building a malformed Version.
var ErrBadVersion = errors.New("concord: malformed version vector")

// Order is the causal relation between two Versions.
type Order int8

// The four possible results of [Version.Compare].
const (
	// Equal: both versions have seen exactly the same edits.
	Equal Order = iota
	// Before: the receiver has seen a strict subset of the argument's edits.
	Before
	// After: the receiver has seen a strict superset of the argument's edits.
	After
	// Concurrent: each has seen an edit the other has not.
	Concurrent
)

// String returns "equal", "before", "after" or "concurrent".
func (o Order) String() string {
	switch o {
	case Equal:
		return "equal"
	case Before:
		return "before"
	case After:
		return "after"
	case Concurrent:
		return "concurrent"
	}
	return "Order(" + strconv.Itoa(int(o)) + ")"
}

// Version is a version vector: for each actor, the number of its edits that a
// value has seen. The zero Version has seen nothing.
//
// A Version is immutable: every method returns a new Version and never
// changes its receiver or arguments, so Versions may be shared freely.
type Version struct {
	dots []Dot // sorted by Actor, every Counter > 0
}

// NewVersion builds a Version from dots in any order. Dots with a zero
// counter are ignored; an actor named twice is an error ([ErrBadVersion]),
// and so are more than [MaxDots] actors ([ErrVersionFull]). It runs in
// O(n log n) time for n dots.
func NewVersion(dots ...Dot) (Version, error) {
	out := make([]Dot, 0, len(dots))
	for _, d := range dots {
		if d.Counter != 0 {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Dot) int { return cmp.Compare(a.Actor, b.Actor) })
	for i := 1; i < len(out); i++ {
		if out[i-1].Actor == out[i].Actor {
			return Version{}, fmt.Errorf("%w: actor %d named twice", ErrBadVersion, out[i].Actor)
		}
	}
	if len(out) > MaxDots {
		return Version{}, fmt.Errorf("%w: %d actors, at most %d", ErrVersionFull, len(out), MaxDots)
	}
	if len(out) == 0 {
		return Version{}, nil
	}
	return Version{dots: out}, nil
}

// MustVersion is NewVersion for literals in tests and examples; it panics on
// error.
func MustVersion(dots ...Dot) Version {
	v, err := NewVersion(dots...)
	if err != nil {
		panic(err)
	}
	return v
}

func search(dots []Dot, a Actor) int {
	lo, hi := 0, len(dots)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if dots[m].Actor < a {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// IsZero reports whether v has seen no edit.
func (v Version) IsZero() bool { return len(v.dots) == 0 }

// Len returns the number of actors v names.
func (v Version) Len() int { return len(v.dots) }

// Dot returns the i-th entry, in increasing actor order.
func (v Version) Dot(i int) Dot { return v.dots[i] }

// Dots returns a copy of the entries in increasing actor order.
func (v Version) Dots() []Dot { return append([]Dot(nil), v.dots...) }

// Get returns how many edits by a the version has seen.
func (v Version) Get(a Actor) uint64 {
	i := search(v.dots, a)
	if i < len(v.dots) && v.dots[i].Actor == a {
		return v.dots[i].Counter
	}
	return 0
}

// Compare returns the causal order of v relative to w. It allocates nothing.
func (v Version) Compare(w Version) Order {
	a, b := v.dots, w.dots
	if len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) {
		return Equal // the same version (versions are immutable: copies share their dots)
	}
	vBigger, wBigger := false, false
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].Actor == b[j].Actor:
			if a[i].Counter > b[j].Counter {
				vBigger = true
			} else if a[i].Counter < b[j].Counter {
				wBigger = true
			}
			i++
			j++
		case a[i].Actor < b[j].Actor:
			vBigger = true
			i++
		default:
			wBigger = true
			j++
		}
		if vBigger && wBigger {
			return Concurrent
		}
	}
	if i < len(a) {
		vBigger = true
	}
	if j < len(b) {
		wBigger = true
	}
	switch {
	case vBigger && wBigger:
		return Concurrent
	case vBigger:
		return After
	case wBigger:
		return Before
	}
	return Equal
}

// Descends reports whether v has seen every edit w has (v is After or Equal).
func (v Version) Descends(w Version) bool {
	o := v.Compare(w)
	return o == After || o == Equal
}

// Join returns the least version that descends from both v and w: the
// entry-wise maximum. When one already descends from the other it is
// returned as is, without allocating.
func (v Version) Join(w Version) Version {
	switch v.Compare(w) {
	case After, Equal:
		return v
	case Before:
		return w
	}
	a, b := v.dots, w.dots
	out := make([]Dot, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Actor < b[j].Actor):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Actor < a[i].Actor:
			out = append(out, b[j])
			j++
		default:
			d := a[i]
			d.Counter = max(d.Counter, b[j].Counter)
			out = append(out, d)
			i++
			j++
		}
	}
	// Two vectors of at most MaxDots actors each can join to more; callers
	// that must stay within the cap check Len after joining.
	return Version{dots: out}
}

// Inc returns v with one more edit by a. It fails with [ErrVersionFull] if
// a is new and v already names [MaxDots] actors.
func (v Version) Inc(a Actor) (Version, error) {
	i := search(v.dots, a)
	if i < len(v.dots) && v.dots[i].Actor == a {
		out := make([]Dot, len(v.dots))
		copy(out, v.dots)
		out[i].Counter++
		return Version{dots: out}, nil
	}
	if len(v.dots) >= MaxDots {
		return v, fmt.Errorf("%w: adding actor %d to %v", ErrVersionFull, a, v)
	}
	out := make([]Dot, len(v.dots)+1)
	copy(out, v.dots[:i])
	out[i] = Dot{Actor: a, Counter: 1}
	copy(out[i+1:], v.dots[i:])
	return Version{dots: out}, nil
}

// WithDot returns v joined with the single dot d (v.Join of the version
// {d}), in one allocation, or none when v already has d's counter or a
// higher one for d's actor. A zero counter leaves v as it is. It fails
// with [ErrVersionFull] if d's actor is new and v already names
// [MaxDots] actors.
func (v Version) WithDot(d Dot) (Version, error) {
	i := search(v.dots, d.Actor)
	if i < len(v.dots) && v.dots[i].Actor == d.Actor {
		if v.dots[i].Counter >= d.Counter {
			return v, nil
		}
		out := make([]Dot, len(v.dots))
		copy(out, v.dots)
		out[i].Counter = d.Counter
		return Version{dots: out}, nil
	}
	if d.Counter == 0 {
		return v, nil
	}
	if len(v.dots) >= MaxDots {
		return v, fmt.Errorf("%w: adding actor %d to %v", ErrVersionFull, d.Actor, v)
	}
	out := make([]Dot, len(v.dots)+1)
	copy(out, v.dots[:i])
	out[i] = d
	copy(out[i+1:], v.dots[i:])
	return Version{dots: out}, nil
}

// String formats v as {actor:counter,...}, for logs and tests.
func (v Version) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, d := range v.dots {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.FormatUint(uint64(d.Actor), 10))
		sb.WriteByte(':')
		sb.WriteString(strconv.FormatUint(d.Counter, 10))
	}
	sb.WriteByte('}')
	return sb.String()
}

// AppendBinary appends a compact encoding of v to b: the number of dots,
// then each actor and counter, all as unsigned varints.
func (v Version) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(v.dots)))
	for _, d := range v.dots {
		b = binary.AppendUvarint(b, uint64(d.Actor))
		b = binary.AppendUvarint(b, d.Counter)
	}
	return b, nil
}

// MarshalBinary returns the encoding of [Version.AppendBinary].
func (v Version) MarshalBinary() ([]byte, error) { return v.AppendBinary(nil) }

// UnmarshalBinary decodes what [Version.MarshalBinary] produced. It rejects
// unsorted, duplicate or zero entries with [ErrBadVersion].
func (v *Version) UnmarshalBinary(b []byte) error {
	rest, err := v.decode(b)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadVersion, len(rest))
	}
	return nil
}

// DecodeVersion decodes one Version from the front of b and returns the
// bytes after it.
func DecodeVersion(b []byte) (Version, []byte, error) {
	var v Version
	rest, err := v.decode(b)
	return v, rest, err
}

func (v *Version) decode(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > MaxDots {
		return nil, fmt.Errorf("%w: bad length", ErrBadVersion)
	}
	b = b[k:]
	var dots []Dot
	if n > 0 {
		dots = make([]Dot, n)
	}
	for i := range dots {
		a, k := binary.Uvarint(b)
		if k <= 0 || a > uint64(^Actor(0)) {
			return nil, fmt.Errorf("%w: bad actor", ErrBadVersion)
		}
		b = b[k:]
		c, k := binary.Uvarint(b)
		if k <= 0 || c == 0 {
			return nil, fmt.Errorf("%w: bad counter", ErrBadVersion)
		}
		b = b[k:]
		dots[i] = Dot{Actor: Actor(a), Counter: c}
		if i > 0 && dots[i-1].Actor >= dots[i].Actor {
			return nil, fmt.Errorf("%w: actors out of order", ErrBadVersion)
		}
	}
	v.dots = dots
	return b, nil
}

// MarshalText formats v as [Version.String] does.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses the format of [Version.String]: "{}" or
// "{actor:counter,...}" with decimal numbers, entries in any order. It runs
// in time linear in len(t) and stops with [ErrVersionFull] at the entry
// past [MaxDots], however long the rest of the input; a malformed entry,
// a zero counter or an actor named twice is an [ErrBadVersion]. On error v
// is unchanged.
func (v *Version) UnmarshalText(t []byte) error {
	if len(t) < 2 || t[0] != '{' || t[len(t)-1] != '}' {
		return fmt.Errorf("%w: %s is not {actor:counter,...}", ErrBadVersion, quoteCut(t))
	}
	body := t[1 : len(t)-1]
	var dots []Dot
	for len(body) > 0 || dots != nil {
		if len(dots) == MaxDots {
			return fmt.Errorf("%w: more than %d entries", ErrVersionFull, MaxDots)
		}
		part := body
		i := bytes.IndexByte(body, ',')
		if i >= 0 {
			part, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		as, cs, ok := bytes.Cut(part, []byte{':'})
		a, err1 := strconv.ParseUint(string(as), 10, 32)
		c, err2 := strconv.ParseUint(string(cs), 10, 64)
		if !ok || err1 != nil || err2 != nil || c == 0 {
			return fmt.Errorf("%w: entry %s", ErrBadVersion, quoteCut(part))
		}
		dots = append(dots, Dot{Actor: Actor(a), Counter: c})
		if i < 0 {
			break
		}
	}
	nv, err := NewVersion(dots...)
	if err != nil {
		return err
	}
	*v = nv
	return nil
}

// quoteCut quotes b for an error message, cut to a few dozen bytes so that a
// hostile input does not make a hostile message.
func quoteCut(b []byte) string {
	const n = 40
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "..."
	}
	return strconv.Quote(string(b))
}
