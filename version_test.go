package concord_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/concordsync/concord"
)

// genVersion draws a version over a few actors, as the engine uses them.
func genVersion(t *rapid.T, label string) concord.Version {
	n := rapid.IntRange(0, 5).Draw(t, label+"-n")
	var dots []concord.Dot
	for a := range n {
		c := rapid.Uint64Range(0, 4).Draw(t, label+"-c")
		dots = append(dots, concord.Dot{Actor: concord.Actor(a + 1), Counter: c})
	}
	return concord.MustVersion(dots...)
}

// leq is the reference order: every counter of a is at most b's.
func leq(a, b concord.Version) bool {
	for i := range a.Len() {
		d := a.Dot(i)
		if d.Counter > b.Get(d.Actor) {
			return false
		}
	}
	return true
}

func TestVersionCompareMatchesPointwiseOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genVersion(t, "a"), genVersion(t, "b")
		var want concord.Order
		switch ab, ba := leq(a, b), leq(b, a); {
		case ab && ba:
			want = concord.Equal
		case ab:
			want = concord.Before
		case ba:
			want = concord.After
		default:
			want = concord.Concurrent
		}
		if got := a.Compare(b); got != want {
			t.Fatalf("%v.Compare(%v) = %v; want %v", a, b, got, want)
		}
		// Antisymmetry: the reverse comparison mirrors it.
		mirror := map[concord.Order]concord.Order{concord.Equal: concord.Equal, concord.Before: concord.After,
			concord.After: concord.Before, concord.Concurrent: concord.Concurrent}
		if got := b.Compare(a); got != mirror[want] {
			t.Fatalf("%v.Compare(%v) = %v; want %v", b, a, got, mirror[want])
		}
	})
}

func TestVersionJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genVersion(t, "a"), genVersion(t, "b"), genVersion(t, "c")
		eq := func(x, y concord.Version) bool { return x.Compare(y) == concord.Equal }
		if !eq(a.Join(b), b.Join(a)) {
			t.Fatalf("join not commutative: %v, %v", a, b)
		}
		if !eq(a.Join(b).Join(c), a.Join(b.Join(c))) {
			t.Fatalf("join not associative: %v, %v, %v", a, b, c)
		}
		if !eq(a.Join(a), a) {
			t.Fatalf("join not idempotent: %v", a)
		}
		j := a.Join(b)
		if !j.Descends(a) || !j.Descends(b) {
			t.Fatalf("join %v does not descend from %v and %v", j, a, b)
		}
		// Least upper bound: any common descendant descends from the join.
		if c.Descends(a) && c.Descends(b) && !c.Descends(j) {
			t.Fatalf("%v descends from %v and %v but not from their join %v", c, a, b, j)
		}
	})
}

// TestVersionWithDotIsJoin: WithDot is Join with a one-dot version, and
// refuses a new actor past MaxDots as Inc does.
func TestVersionWithDotIsJoin(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genVersion(t, "a")
		d := concord.Dot{Actor: concord.Actor(rapid.IntRange(1, 9).Draw(t, "actor")), Counter: rapid.Uint64Range(0, 12).Draw(t, "counter")}
		before := a.String()
		got, err := a.WithDot(d)
		if err != nil {
			t.Fatal(err)
		}
		one, _ := concord.NewVersion(d)
		if want := a.Join(one); got.Compare(want) != concord.Equal || got.String() != want.String() {
			t.Fatalf("%v.WithDot(%v) = %v, want %v", a, d, got, want)
		}
		if a.String() != before {
			t.Fatalf("WithDot changed its receiver")
		}
	})
	var dots []concord.Dot
	for i := range concord.MaxDots {
		dots = append(dots, concord.Dot{Actor: concord.Actor(i + 1), Counter: 1})
	}
	full := concord.MustVersion(dots...)
	if _, err := full.WithDot(concord.Dot{Actor: concord.MaxDots + 1, Counter: 1}); !errors.Is(err, concord.ErrVersionFull) {
		t.Fatalf("WithDot past MaxDots: %v", err)
	}
	if v, err := full.WithDot(concord.Dot{Actor: 1, Counter: 5}); err != nil || v.Get(1) != 5 || full.Get(1) != 1 {
		t.Fatalf("WithDot of a known actor on a full version: %v, %v (receiver %v)", v, err, full)
	}
}

func TestVersionIncIsStrictlyAfter(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genVersion(t, "a")
		actor := concord.Actor(rapid.IntRange(1, 7).Draw(t, "actor"))
		b, err := a.Inc(actor)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Compare(a); got != concord.After {
			t.Fatalf("%v.Inc(%d) = %v compares %v to it; want after", a, actor, b, got)
		}
		if b.Get(actor) != a.Get(actor)+1 {
			t.Fatalf("Inc(%d) counter %d; want %d", actor, b.Get(actor), a.Get(actor)+1)
		}
		// Two systems incrementing the same base are concurrent.
		other := actor%7 + 1
		c, _ := a.Inc(other)
		if got := b.Compare(c); got != concord.Concurrent {
			t.Fatalf("%v vs %v = %v; want concurrent", b, c, got)
		}
	})
}

func TestVersionEncodingRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := genVersion(t, "a")
		bin, _ := a.MarshalBinary()
		var b concord.Version
		if err := b.UnmarshalBinary(bin); err != nil {
			t.Fatal(err)
		}
		txt, _ := a.MarshalText()
		var c concord.Version
		if err := c.UnmarshalText(txt); err != nil {
			t.Fatal(err)
		}
		if a.Compare(b) != concord.Equal || a.Compare(c) != concord.Equal {
			t.Fatalf("round trip of %v gave %v (binary) and %v (text)", a, b, c)
		}
	})
}

func TestVersionRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"empty", nil},
		{"zero counter", []byte{1, 1, 0}},
		{"unsorted", []byte{2, 2, 1, 1, 1}},
		{"duplicate", []byte{2, 1, 1, 1, 1}},
		{"truncated", []byte{2, 1, 1}},
		{"trailing", []byte{0, 9}},
	} {
		var v concord.Version
		if err := v.UnmarshalBinary(tc.bin); err == nil {
			t.Errorf("%s: UnmarshalBinary(%v) = nil; want an error", tc.name, tc.bin)
		}
	}
	if _, err := concord.NewVersion(concord.Dot{Actor: 1, Counter: 1}, concord.Dot{Actor: 1, Counter: 2}); err == nil {
		t.Error("NewVersion with a duplicate actor = nil error")
	}
}

func TestVersionFullIsAnErrorNotAPrune(t *testing.T) {
	var v concord.Version
	var err error
	for a := range concord.MaxDots {
		if v, err = v.Inc(concord.Actor(a)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Inc(concord.MaxDots + 1); err == nil {
		t.Fatalf("Inc past MaxDots = nil error")
	}
	if v.Len() != concord.MaxDots {
		t.Fatalf("Len = %d; want %d", v.Len(), concord.MaxDots)
	}
}

func TestVersionCompareAllocatesNothing(t *testing.T) {
	a := concord.MustVersion(concord.Dot{Actor: 1, Counter: 3}, concord.Dot{Actor: 2, Counter: 1}, concord.Dot{Actor: 4, Counter: 7})
	b := concord.MustVersion(concord.Dot{Actor: 1, Counter: 3}, concord.Dot{Actor: 3, Counter: 1}, concord.Dot{Actor: 4, Counter: 7})
	if n := testing.AllocsPerRun(100, func() { _ = a.Compare(b) }); n != 0 {
		t.Fatalf("Compare allocates %v times; want 0", n)
	}
}

func BenchmarkVersionCompare(b *testing.B) {
	// Four systems and the engine, as in a typical pipeline.
	x := concord.MustVersion(concord.Dot{Actor: 1, Counter: 12}, concord.Dot{Actor: 2, Counter: 3}, concord.Dot{Actor: 3, Counter: 9}, concord.Dot{Actor: 4, Counter: 1})
	y := concord.MustVersion(concord.Dot{Actor: 1, Counter: 12}, concord.Dot{Actor: 2, Counter: 4}, concord.Dot{Actor: 3, Counter: 9}, concord.Dot{Actor: 5, Counter: 1})
	b.Run("vector", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = x.Compare(y)
		}
	})
	// The floor: comparing two wall-clock timestamps, all that a
	// last-writer-wins sync does.
	t1, t2 := int64(1700000000123), int64(1700000000456)
	b.Run("lww-floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = t1 < t2
		}
	})
}

// hostileVersionLine is the 1.2 MB line that cost 8.5 s of CPU when parsing
// was quadratic: 200,000 distinct actors in decreasing order (each one
// inserted at the front).
func hostileVersionLine() []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 200000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(200000 - i))
		b.WriteString(":1")
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestVersionTextStopsAtTheActorCap(t *testing.T) {
	line := hostileVersionLine()
	if len(line) < 1_200_000 {
		t.Fatalf("hostile line is %d bytes", len(line))
	}
	v := concord.MustVersion(concord.Dot{Actor: 7, Counter: 7})
	start := time.Now()
	err := v.UnmarshalText(line)
	if d := time.Since(start); d > time.Second {
		t.Errorf("UnmarshalText of a %d-byte line took %v", len(line), d)
	}
	if !errors.Is(err, concord.ErrVersionFull) {
		t.Fatalf("UnmarshalText = %v; want ErrVersionFull", err)
	}
	if len(err.Error()) > 200 {
		t.Errorf("error message is %d bytes long", len(err.Error()))
	}
	if v.Get(7) != 7 || v.Len() != 1 {
		t.Errorf("a failed UnmarshalText changed the receiver to %v", v)
	}
	// MaxDots entries parse; one more does not.
	var b strings.Builder
	b.WriteByte('{')
	for i := range concord.MaxDots {
		fmt.Fprintf(&b, "%d:%d,", concord.MaxDots-i, i+1) // any order
	}
	full := strings.TrimSuffix(b.String(), ",") + "}"
	if err := v.UnmarshalText([]byte(full)); err != nil || v.Len() != concord.MaxDots {
		t.Fatalf("UnmarshalText of %d entries = %v (len %d)", concord.MaxDots, err, v.Len())
	}
	if err := v.UnmarshalText([]byte(strings.TrimSuffix(full, "}") + ",999:1}")); !errors.Is(err, concord.ErrVersionFull) {
		t.Fatalf("UnmarshalText of %d entries = %v; want ErrVersionFull", concord.MaxDots+1, err)
	}
}

func TestVersionTextRejectsMalformed(t *testing.T) {
	for _, s := range []string{"", "{", "}", "{,}", "{1:1,}", "{,1:1}", "{1:0}", "{1:1,1:2}", "{1:1:1}", "{-1:1}", "{1:-1}", "{+1:1}",
		"{4294967296:1}", "{1:18446744073709551616}", "{ 1:1}", "{1:1 }", "[1:1]", "{1:1}{2:2}", "{1:" + strings.Repeat("9", 1<<20) + "}"} {
		var v concord.Version
		err := v.UnmarshalText([]byte(s))
		if !errors.Is(err, concord.ErrBadVersion) {
			t.Errorf("UnmarshalText(%.30q) = %v; want ErrBadVersion", s, err)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("UnmarshalText(%.30q): %d-byte message", s, len(err.Error()))
		}
	}
}

func TestVersionBinaryDecodingIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"length past the cap", []byte{concord.MaxDots + 1, 1, 1}},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"overlong varint", []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
		{"actor past 32 bits", []byte{1, 0x80, 0x80, 0x80, 0x80, 0x10, 1}},
		{"counter overflow", []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}},
		{"cut in a counter", []byte{1, 1, 0x80}},
	} {
		var v concord.Version
		if err := v.UnmarshalBinary(tc.bin); !errors.Is(err, concord.ErrBadVersion) {
			t.Errorf("%s: UnmarshalBinary = %v; want ErrBadVersion", tc.name, err)
		}
		if _, _, err := concord.DecodeVersion(tc.bin); err == nil {
			t.Errorf("%s: DecodeVersion = nil error", tc.name)
		}
	}
}

func TestNewVersionRefusesTooManyActors(t *testing.T) {
	dots := make([]concord.Dot, 100000)
	for i := range dots {
		dots[i] = concord.Dot{Actor: concord.Actor(len(dots) - i), Counter: 1}
	}
	start := time.Now()
	if _, err := concord.NewVersion(dots...); !errors.Is(err, concord.ErrVersionFull) {
		t.Fatalf("NewVersion of %d actors = %v; want ErrVersionFull", len(dots), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("NewVersion of %d dots took %v", len(dots), d)
	}
	if _, err := concord.NewVersion(concord.Dot{Actor: 3, Counter: 1}, concord.Dot{Actor: 1, Counter: 0}, concord.Dot{Actor: 3, Counter: 2}); !errors.Is(err, concord.ErrBadVersion) {
		t.Errorf("NewVersion with a duplicate = %v; want ErrBadVersion", err)
	}
}

func BenchmarkVersionUnmarshalTextHostile(b *testing.B) {
	line := hostileVersionLine()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		var v concord.Version
		_ = v.UnmarshalText(line)
	}
}

// FuzzVersionText: no input panics; whatever decodes has at most MaxDots
// actors, formats to text that decodes to an equal Version, and the same
// text formats the same way.
func FuzzVersionText(f *testing.F) {
	for _, s := range []string{"{}", "{1:1}", "{2:5,1:3}", "{1:1,}", "{1:0}", "{1:1,1:1}", "{4294967295:18446744073709551615}", "{+1:1}", "{", ""} {
		f.Add([]byte(s))
	}
	f.Add(hostileVersionLine()[:4000])
	f.Fuzz(func(t *testing.T, b []byte) {
		var v concord.Version
		if err := v.UnmarshalText(b); err != nil {
			if !errors.Is(err, concord.ErrBadVersion) && !errors.Is(err, concord.ErrVersionFull) {
				t.Fatalf("UnmarshalText(%q) = %v: neither ErrBadVersion nor ErrVersionFull", b, err)
			}
			return
		}
		if v.Len() > concord.MaxDots {
			t.Fatalf("decoded %d actors", v.Len())
		}
		txt, _ := v.MarshalText()
		var w concord.Version
		if err := w.UnmarshalText(txt); err != nil || w.Compare(v) != concord.Equal {
			t.Fatalf("%q -> %v -> %q -> %v, %v", b, v, txt, w, err)
		}
		bin, _ := v.MarshalBinary()
		if err := w.UnmarshalBinary(bin); err != nil || w.Compare(v) != concord.Equal {
			t.Fatalf("binary round trip of %v: %v, %v", v, w, err)
		}
	})
}

// FuzzVersionBinary: no input panics; whatever decodes re-encodes to bytes
// that decode to an equal Version, and DecodeVersion agrees with
// UnmarshalBinary.
func FuzzVersionBinary(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{2, 1, 3, 2, 5})
	f.Add([]byte{2, 2, 1, 1, 1})
	f.Add([]byte{concord.MaxDots + 1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := concord.DecodeVersion(b)
		var u concord.Version
		uerr := u.UnmarshalBinary(b)
		if err != nil {
			if !errors.Is(err, concord.ErrBadVersion) || uerr == nil {
				t.Fatalf("DecodeVersion = %v, UnmarshalBinary = %v", err, uerr)
			}
			return
		}
		if (uerr == nil) != (len(rest) == 0) {
			t.Fatalf("UnmarshalBinary = %v with %d bytes left", uerr, len(rest))
		}
		if v.Len() > concord.MaxDots {
			t.Fatalf("decoded %d actors", v.Len())
		}
		bin, _ := v.MarshalBinary()
		w, rest2, err := concord.DecodeVersion(bin)
		if err != nil || len(rest2) != 0 || w.Compare(v) != concord.Equal {
			t.Fatalf("round trip of %v: %v, %v", v, w, err)
		}
		txt, _ := v.MarshalText()
		if err := w.UnmarshalText(txt); err != nil || w.Compare(v) != concord.Equal {
			t.Fatalf("text round trip of %v: %v, %v", v, w, err)
		}
	})
}
