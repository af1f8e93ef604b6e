package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordsync/concord"
)

// This file holds the encoder the chain used before the direct one, frozen
// (refWireEvent, refToWire, refFormatVersion, refEncodeEvent: toWire and
// encoding/json as they were), and checks the direct encoder against it
// on random and fuzzed events.

type refWireEvent struct {
	Seq        uint64                   `json:"seq,omitempty"`
	Time       time.Time                `json:"time"`
	Kind       Kind                     `json:"kind"`
	Cycle      uint64                   `json:"cycle,omitempty"`
	System     concord.SystemID         `json:"system,omitempty"`
	Key        string                   `json:"key,omitempty"`
	Unit       string                   `json:"unit,omitempty"`
	Units      []string                 `json:"units,omitempty"`
	Fields     []string                 `json:"fields,omitempty"`
	From       map[string]concord.Value `json:"from,omitempty"`
	To         map[string]concord.Value `json:"to,omitempty"`
	Deleted    bool                     `json:"deleted,omitempty"`
	Version    string                   `json:"version"`
	Candidates []refWireCandidate       `json:"candidates,omitempty"`
	Rule       concord.Rule             `json:"rule,omitempty"`
	Reason     string                   `json:"reason,omitempty"`
	Error      string                   `json:"error,omitempty"`
	ErrorClass string                   `json:"error_class,omitempty"`
	Modified   time.Time                `json:"modified,omitzero"`
	By         string                   `json:"by,omitempty"`
	Actors     map[string]concord.Actor `json:"actors,omitempty"`
}

type refWireCandidate struct {
	System    concord.SystemID         `json:"system"`
	Canonical bool                     `json:"canonical,omitempty"`
	Version   string                   `json:"version"`
	Values    map[string]concord.Value `json:"values,omitempty"`
	Deleted   bool                     `json:"deleted,omitempty"`
}

func refFormatVersion(v concord.Version, names map[concord.Actor]string, used map[string]concord.Actor) string {
	if len(names) == 0 {
		return v.String()
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := range v.Len() {
		d := v.Dot(i)
		if i > 0 {
			b.WriteByte(',')
		}
		name, ok := names[d.Actor]
		if ok && used != nil {
			if other, taken := used[name]; taken && other != d.Actor {
				ok = false
			} else {
				used[name] = d.Actor
			}
		}
		switch {
		case !ok:
			b.WriteString(strconv.FormatUint(uint64(d.Actor), 10))
		case bareName(name):
			b.WriteString(name)
		default:
			b.WriteString(strconv.Quote(name))
		}
		b.WriteByte(':')
		b.WriteString(strconv.FormatUint(d.Counter, 10))
	}
	b.WriteByte('}')
	return b.String()
}

func refToWire(ev *Event) *refWireEvent {
	var used map[string]concord.Actor
	if len(ev.Actors) > 0 {
		used = map[string]concord.Actor{}
	}
	w := refWireEvent{Seq: ev.Seq, Time: ev.Time, Kind: ev.Kind, Cycle: ev.Cycle, System: ev.System, Key: ev.Key, Unit: ev.Unit,
		Units: ev.Units, Fields: ev.Fields, From: ev.From, To: ev.To, Deleted: ev.Deleted, Version: refFormatVersion(ev.Version, ev.Actors, used),
		Rule: ev.Rule, Reason: ev.Reason, Error: ev.Error, ErrorClass: ev.ErrorClass, Modified: ev.Modified, By: ev.By}
	for _, c := range ev.Candidates {
		w.Candidates = append(w.Candidates, refWireCandidate{System: c.System, Canonical: c.Canonical,
			Version: refFormatVersion(c.Version, ev.Actors, used), Values: c.Values, Deleted: c.Deleted})
	}
	if len(used) > 0 {
		w.Actors = used
	}
	return &w
}

// refEncodeEvent is encodeEvent as it was before the direct encoder.
func refEncodeEvent(ev *Event) ([]byte, error) {
	w := refToWire(ev)
	w.Seq = 0
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSameBytes encodes ev both ways and fails t if they differ: bytes,
// or error (the same message). It reports whether the direct encoder
// took the event (true) or left it to encoding/json.
func checkSameBytes(t testing.TB, enc *eventEncoder, ev *Event) (direct bool) {
	t.Helper()
	want, wantErr := refEncodeEvent(ev)
	prefix := []byte("prefix")
	got, err := enc.appendEvent(prefix, ev)
	switch {
	case wantErr != nil && err == nil:
		t.Fatalf("reference fails with %v, the encoder gives %s\nevent: %#v", wantErr, got, ev)
	case wantErr == nil && err != nil:
		t.Fatalf("the encoder fails with %v, the reference gives %s\nevent: %#v", err, want, ev)
	case wantErr != nil:
		if err.Error() != wantErr.Error() {
			t.Fatalf("errors differ:\n got %v\nwant %v", err, wantErr)
		}
		if string(got) != "prefix" {
			t.Fatalf("a failed encoding left %q after the prefix", got[len(prefix):])
		}
	case !bytes.Equal(got[len(prefix):], want) || !bytes.HasPrefix(got, prefix):
		t.Fatalf("bytes differ:\n got %s\nwant %s\nevent: %#v", got, want, ev)
	}
	if !directEncoding {
		return false
	}
	d, ok := enc.appendDirect(nil, ev)
	if ok {
		if wantErr != nil || !bytes.Equal(d, want) {
			t.Fatalf("direct path differs:\n got %s\nwant %s (%v)", d, want, wantErr)
		}
		if !json.Valid(d) || bytes.ContainsAny(d, "\r\n") {
			t.Fatalf("direct path gives invalid JSON: %s", d)
		}
	}
	return ok
}

// gen makes hostile events from a source of numbers and bytes: a seeded
// PRNG (property test) or the fuzzer's bytes.
type gen struct {
	r   *rand.Rand // when nil, data drives the choices
	buf []byte
}

func (g *gen) u64() uint64 {
	if g.r != nil {
		return g.r.Uint64()
	}
	var x uint64
	for i := 0; i < 8 && len(g.buf) > 0; i++ {
		x = x<<8 | uint64(g.buf[0])
		g.buf = g.buf[1:]
	}
	return x
}

func (g *gen) n(k int) int { return int(g.u64() % uint64(k)) }

// raw gives up to n bytes as they come (any bytes at all).
func (g *gen) raw(n int) []byte {
	n = g.n(n + 1)
	if g.r == nil {
		n = min(n, len(g.buf))
		b := g.buf[:n]
		g.buf = g.buf[n:]
		return b
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

var awkward = []string{
	"", "a", "email", "Zürich", "<b>&amp;</b>", `"`, `\`, `\"`, "\x00", "\x1f", "\x7f", "\b\f\n\r\t",
	"\u2028", "\u2029", "x\u2028y", "\ufffd", "\xff", "\xc3", "\xc3(", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"😀", "e\u0301", "\u00a0", "</script>", "key with spaces", "1e3", "null", "true",
	strings.Repeat("long ", 200), "\x01\x02\x03\xe2\x80\xa8",
}

func (g *gen) str() string {
	switch g.n(4) {
	case 0:
		return string(g.raw(24))
	case 1:
		return awkward[g.n(len(awkward))] + awkward[g.n(len(awkward))]
	default:
		return awkward[g.n(len(awkward))]
	}
}

type textish string // a string type concord.Value does not list

type marshaler struct{ s string }

func (m marshaler) MarshalJSON() ([]byte, error) { return json.Marshal(m.s) }

type failing struct{}

func (failing) MarshalJSON() ([]byte, error) { return nil, errors.New("refused") }

var numbers = []string{"", "0", "-0", "1", "-1", "01", "1.", ".5", "+1", "1e", "1e+", "1E-07", "-0.0e00",
	"123456789012345678901234567890", "1e400", "-", "0x10", "1_000", "NaN", " 1", "1 ", "2.50", "1.5e308"}

var specialFloats = []float64{0, math.Copysign(0, -1), 1e21, 1e21 - 65536, 9.999999999999999e20, 1e-6, 9.99999999e-7,
	1e-7, math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 0.1, 1.0 / 3, 1 << 53, 123456789,
	math.NaN(), math.Inf(1), math.Inf(-1), float64(math.MaxFloat32), 1e-45, 3.4e38}

func (g *gen) float() float64 {
	switch g.n(3) {
	case 0:
		return specialFloats[g.n(len(specialFloats))]
	case 1:
		return math.Float64frombits(g.u64())
	default:
		return float64(int64(g.u64())) / float64(uint64(1)<<uint(g.n(64)))
	}
}

func (g *gen) time() time.Time {
	switch g.n(8) {
	case 0:
		return time.Time{}
	case 1:
		return time.Time{}.In(time.FixedZone("X", 3600))
	case 2: // out of JSON's range: year or zone
		return []time.Time{
			time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 25*3600)),
			time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("m", -2*3600)),
		}[g.n(4)]
	}
	sec := int64(g.u64()%(10000*366*86400)) - 62135596800 // years 0000 to ~9999
	t := time.Unix(sec, int64(g.n(1e9)))
	zones := []*time.Location{time.UTC, time.FixedZone("", 0), time.FixedZone("A", 5*3600+30*60),
		time.FixedZone("B", -(9*3600 + 17)), time.FixedZone("C", 23*3600+59*60+59), time.FixedZone("D", -86399)}
	return t.In(zones[g.n(len(zones))])
}

func (g *gen) value(depth int) concord.Value {
	leafOnly := depth > 3
	k := g.n(24)
	if leafOnly {
		k = g.n(17)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return g.n(2) == 1
	case 2, 3:
		return g.str()
	case 4:
		if g.n(4) == 0 {
			return []byte(nil)
		}
		return g.raw(40)
	case 5:
		return int(g.u64())
	case 6:
		return []any{int8(g.u64()), int16(g.u64()), int32(g.u64()), int64(g.u64())}[g.n(4)]
	case 7:
		return []any{uint(g.u64()), uint8(g.u64()), uint16(g.u64()), uint32(g.u64()), uint64(g.u64()), uint64(math.MaxUint64)}[g.n(6)]
	case 8:
		return float32(g.float())
	case 9:
		return g.float()
	case 10:
		if g.n(2) == 0 {
			return json.Number(numbers[g.n(len(numbers))])
		}
		return json.Number(g.raw(12))
	case 11:
		return g.time()
	case 12:
		return json.Number(strconv.FormatFloat(g.float(), 'g', -1, 64))
	case 13: // not a concord.Value: encoding/json decides
		return []any{textish(g.str()), &struct{ A int }{1}, map[string]int{"a": 1}, []int{1, 2}, marshaler{g.str()},
			failing{}, new(time.Time), complex(1, 2), struct{}{}, func() {}, make(chan int), map[int]string{2: "b", 10: "a"}}[g.n(12)]
	case 14:
		if g.n(3) == 0 {
			return []string(nil)
		}
		s := make([]string, g.n(4))
		for i := range s {
			s[i] = g.str()
		}
		return s
	case 15:
		if g.n(3) == 0 {
			return map[string]string(nil)
		}
		m := map[string]string{}
		for range g.n(4) {
			m[g.str()] = g.str()
		}
		return m
	case 16:
		return []any{"", 0, false, json.Number("0")}[g.n(4)]
	case 17, 18, 19:
		if g.n(5) == 0 {
			return []any(nil)
		}
		l := make([]any, g.n(4))
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return l
	case 20:
		return deep(g.n(4)+concord.MaxValueDepth-1, g.n(2) == 0)
	default:
		if g.n(5) == 0 {
			return map[string]any(nil)
		}
		return g.valueMap(depth + 1)
	}
}

// deep nests n lists (or maps) around a string.
func deep(n int, maps bool) concord.Value {
	var v concord.Value = "bottom"
	for range n {
		if maps {
			v = map[string]any{"k": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

func (g *gen) valueMap(depth int) map[string]any {
	m := map[string]any{}
	for range g.n(5) {
		m[g.str()] = g.value(depth)
	}
	return m
}

func (g *gen) fields() map[string]concord.Value {
	switch g.n(4) {
	case 0:
		return nil
	case 1:
		return map[string]concord.Value{}
	}
	return g.valueMap(0)
}

func (g *gen) version() concord.Version {
	var dots []concord.Dot
	for range g.n(5) {
		c := g.u64()
		if g.n(2) == 0 {
			c %= 100
		}
		dots = append(dots, concord.Dot{Actor: concord.Actor(g.n(12) + 1), Counter: c})
	}
	v, err := concord.NewVersion(dots...)
	if err != nil {
		return concord.Version{}
	}
	return v
}

var actorNames = []string{"portal", "crm", "erp", "a:b", "1", "12", "_x", "x-1.y/z@w", "", `q"uote`, "back\\slash",
	"näme", "\u2028", "\xff", "tab\t", "<&>", "crm"}

func (g *gen) event() Event {
	ev := Event{
		Seq: g.u64() % 3, Time: g.time(), Kind: Kind(g.str()), Cycle: g.u64() % 4,
		System: concord.SystemID(g.str()), Key: g.str(), Unit: g.str(),
		From: g.fields(), To: g.fields(), Deleted: g.n(2) == 0, Version: g.version(),
		Rule: concord.Rule(g.str()), Reason: g.str(), Error: g.str(), ErrorClass: g.str(), By: g.str(),
	}
	switch g.n(3) {
	case 0:
		ev.Fields = []string{}
	case 1:
		for range g.n(4) {
			ev.Fields = append(ev.Fields, g.str())
		}
	}
	// As the engine makes them, Fields are most often From's or To's
	// keys, sorted (the encoder then takes them in that order), or the
	// same names out of order, or as many other ones.
	switch m := []map[string]concord.Value{ev.From, ev.To}[g.n(2)]; g.n(5) {
	case 0, 1:
		ev.Fields = slices.Sorted(maps.Keys(m))
	case 2:
		ev.Fields = slices.Sorted(maps.Keys(m))
		slices.Reverse(ev.Fields)
	case 3:
		ev.Fields = slices.Sorted(maps.Keys(m))
		if len(ev.Fields) > 0 {
			ev.Fields[g.n(len(ev.Fields))] = g.str()
		}
	}
	switch g.n(3) {
	case 0:
		ev.Units = []string{}
	case 1:
		for range g.n(4) {
			ev.Units = append(ev.Units, g.str())
		}
	}
	if g.n(2) == 0 {
		ev.Modified = g.time()
	}
	switch g.n(4) {
	case 0:
		ev.Actors = map[concord.Actor]string{}
	case 1, 2:
		ev.Actors = map[concord.Actor]string{}
		for range g.n(14) {
			name := actorNames[g.n(len(actorNames))]
			if g.n(4) == 0 {
				name = g.str()
			}
			ev.Actors[concord.Actor(g.n(12)+1)] = name
		}
	}
	switch g.n(3) {
	case 0:
		ev.Candidates = []Candidate{}
	case 1:
		for range g.n(5) {
			ev.Candidates = append(ev.Candidates, Candidate{System: concord.SystemID(g.str()), Canonical: g.n(2) == 0,
				Version: g.version(), Values: g.fields(), Deleted: g.n(2) == 0})
		}
	}
	return ev
}

// TestDirectEncoderMatchesReflect encodes random hostile events both ways.
func TestDirectEncoderMatchesReflect(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	g := &gen{r: rand.New(rand.NewPCG(1, 2))}
	enc := &eventEncoder{} // one encoder for all, as a Chain keeps one
	direct := 0
	for range n {
		ev := g.event()
		if checkSameBytes(t, enc, &ev) {
			direct++
		}
	}
	t.Logf("%d of %d events encoded directly", direct, n)
	if !directEncoding {
		return // GOEXPERIMENT=jsonv2: encoding/json alone, compared above with itself
	}
	// The generator is hostile; most events must still take the direct
	// path, or this test checks little of it.
	if direct < n/4 {
		t.Fatalf("only %d of %d events took the direct path", direct, n)
	}
}

// TestDirectEncoderTypical checks that plain events take the direct path
// (a fallback would be slow, not wrong, so nothing else would show it).
func TestDirectEncoderTypical(t *testing.T) {
	if !directEncoding {
		t.Skip("the direct encoder is off with GOEXPERIMENT=jsonv2")
	}
	enc := &eventEncoder{}
	evs := []Event{typicalEvent(), {}, {Kind: MergeDecided, Candidates: []Candidate{{}}, Actors: map[concord.Actor]string{}}}
	full := typicalEvent()
	full.To = map[string]concord.Value{"v": []any{nil, true, "s", []byte("b"), 1, int8(-1), int16(2), int32(3), int64(4),
		uint(5), uint8(6), uint16(7), uint32(8), uint64(9), float32(0.1), 0.2, json.Number("1e3"), time.Unix(0, 1).UTC(),
		[]string{"x"}, map[string]string{"k": "v"}, map[string]any{"z": 1, "a": 2}, deep(concord.MaxValueDepth-1, true)}, "deep": deep(concord.MaxValueDepth, false)}
	full.Candidates = []Candidate{{System: "crm", Canonical: true, Version: full.Version, Values: full.To, Deleted: true}}
	full.Modified, full.Deleted, full.Fields = t0(), true, []string{"a", "b"}
	evs = append(evs, full)
	for i := range evs {
		if !checkSameBytes(t, enc, &evs[i]) {
			t.Errorf("event %d left to encoding/json", i)
		}
	}
}

// TestDirectEncoderStrings compares strings one by one, over every byte
// value and the runes around U+2028, in keys and in values.
func TestDirectEncoderStrings(t *testing.T) {
	if !directEncoding {
		t.Skip("the direct encoder is off with GOEXPERIMENT=jsonv2")
	}
	var strs []string
	for c := range 256 {
		strs = append(strs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	for r := rune(0x2020); r < 0x2030; r++ {
		strs = append(strs, string(r), "x"+string(r))
	}
	strs = append(strs, awkward...)
	enc := &eventEncoder{}
	for _, s := range strs {
		ev := Event{Kind: Kind(s), Key: s, Fields: []string{s}, To: map[string]concord.Value{s: s},
			Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 1}), Actors: map[concord.Actor]string{1: s}}
		if !checkSameBytes(t, enc, &ev) {
			t.Errorf("%q left to encoding/json", s)
		}
	}
}

// TestDirectEncoderNumbers compares floats and json.Numbers: random bits,
// the format boundaries, and what encoding/json refuses.
func TestDirectEncoderNumbers(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(3, 4))}
	enc := &eventEncoder{}
	for i := range 20000 {
		f := g.float()
		var v concord.Value = f
		if i%2 == 1 {
			v = float32(f)
		}
		ev := Event{To: map[string]concord.Value{"f": v}}
		checkSameBytes(t, enc, &ev)
	}
	for _, f := range specialFloats {
		for _, v := range []concord.Value{f, -f, float32(f), -float32(f), math.Nextafter(f, 0), math.Nextafter(f, math.Inf(1))} {
			ev := Event{To: map[string]concord.Value{"f": v}}
			checkSameBytes(t, enc, &ev)
		}
	}
	for _, s := range numbers {
		ev := Event{To: map[string]concord.Value{"n": json.Number(s)}}
		checkSameBytes(t, enc, &ev)
	}
}

// TestDirectEncoderErrors checks that what encoding/json refuses is still
// refused, with its error, through Chain.Append (an EventError naming the
// event).
func TestDirectEncoderErrors(t *testing.T) {
	bad := map[string]concord.Value{
		"NaN":       math.NaN(),
		"+Inf32":    float32(math.Inf(1)),
		"number":    json.Number("1."),
		"year":      time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		"zone":      time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)),
		"channel":   make(chan int),
		"marshaler": failing{},
		"nested":    []any{map[string]any{"x": math.Inf(-1)}},
	}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			ev := typicalEvent()
			ev.To = map[string]concord.Value{"v": v}
			checkSameBytes(t, &eventEncoder{}, &ev)
			_, refErr := refEncodeEvent(&ev)
			c := NewChain(Head{Seq: 4})
			_, err := c.Append(typicalEvent(), ev)
			var ee *EventError
			if !errors.As(err, &ee) || ee.Index != 1 || ee.Key != ev.Key || ee.Kind != ev.Kind {
				t.Fatalf("Append: %v, want an EventError for event 1", err)
			}
			if refErr == nil || ee.Err.Error() != refErr.Error() {
				t.Fatalf("cause %v, want %v", ee.Err, refErr)
			}
			if c.Head() != (Head{Seq: 4}) {
				t.Fatalf("a failed Append moved the head to %v", c.Head())
			}
		})
	}
	// A bad time at the top level, too.
	ev := typicalEvent()
	ev.Modified = time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)
	checkSameBytes(t, &eventEncoder{}, &ev)
	if _, err := NewChain(Head{}).Append(ev); err == nil {
		t.Fatal("a time past the JSON range was encoded")
	}
}

// TestDirectEncoderCycle: a map that holds itself is refused, as
// encoding/json refuses it, not looped over.
func TestDirectEncoderCycle(t *testing.T) {
	m := map[string]any{}
	m["self"] = m
	l := []any{nil}
	l[0] = l
	for _, v := range []concord.Value{m, l} {
		ev := Event{To: map[string]concord.Value{"v": v}}
		checkSameBytes(t, &eventEncoder{}, &ev)
	}
}

// typicalEvent is an EditObserved event as the engine stages them: one
// field, a version of two actors with names.
func typicalEvent() Event {
	return Event{
		Time: t0(), Kind: EditObserved, Cycle: 12, System: "crm", Key: "cust-4711", Unit: "email",
		From:    map[string]concord.Value{"email": "old@example.com"},
		To:      map[string]concord.Value{"email": "new@example.com"},
		Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 7}, concord.Dot{Actor: 2, Counter: 3}),
		Actors:  map[concord.Actor]string{1: "crm", 2: "erp"},
	}
}

func t0() time.Time { return time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC) }

// FuzzDirectEncoder builds an event from the fuzzer's bytes (and puts its
// string, number and float in the event as they are) and encodes it both
// ways.
func FuzzDirectEncoder(f *testing.F) {
	f.Add([]byte{}, "", "0", 0.0)
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"), "a\u2028b", "1e3", 1e21)
	f.Add(bytes.Repeat([]byte{0xff, 0x13, 0x7f, 0x00}, 40), "\xff<>&\"\\", "-0.5E-7", 1e-7)
	f.Add([]byte("hostile \x1f bytes \xed\xa0\x80 and more to drive the generator"), "\x7f", "01", math.Copysign(0, -1))
	enc := &eventEncoder{}
	f.Fuzz(func(t *testing.T, data []byte, s, num string, fl float64) {
		g := &gen{buf: data}
		ev := g.event()
		if ev.To == nil {
			ev.To = map[string]concord.Value{}
		}
		ev.To[s] = []any{s, json.Number(num), fl, float32(fl), []byte(s)}
		ev.Key = s
		if ev.Actors != nil {
			ev.Actors[1] = s
			ev.Version = concord.MustVersion(concord.Dot{Actor: 1, Counter: 1})
		}
		checkSameBytes(t, enc, &ev)
	})
}

// TestAppendEncoded: the stored forms are EncodeEntry's bytes, the
// entries those of Append, and each slice is capped at its end.
func TestAppendEncoded(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(5, 6))}
	var events []Event
	for len(events) < 300 {
		ev := g.event()
		if _, err := refEncodeEvent(&ev); err == nil {
			events = append(events, ev)
		}
	}
	head := Head{Seq: 41, Hash: [32]byte{9}}
	a, b, c := NewChain(head), NewChain(head), NewChain(head)
	for _, batch := range [][]Event{events[:1], events[1:100], events[100:]} {
		entries, err := a.Append(batch...)
		if err != nil {
			t.Fatal(err)
		}
		entries2, stored, err := b.AppendEncoded(batch...)
		if err != nil {
			t.Fatal(err)
		}
		only, err := c.AppendStored(batch...)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(batch) || len(entries2) != len(batch) || len(stored) != len(batch) || len(only) != len(batch) {
			t.Fatalf("lengths %d, %d, %d, %d for %d events", len(entries), len(entries2), len(stored), len(only), len(batch))
		}
		for i := range only {
			if !bytes.Equal(only[i], stored[i]) || cap(only[i]) != len(only[i]) {
				t.Fatalf("entry %d: AppendStored\n%s\nwant %s", entries[i].Seq, only[i], stored[i])
			}
		}
		if c.Head() != b.Head() {
			t.Fatalf("AppendStored head %v, AppendEncoded head %v", c.Head(), b.Head())
		}
		for i := range entries {
			e, e2 := entries[i], entries2[i]
			want, _ := refEncodeEvent(&batch[i])
			if !bytes.Equal(e.EventJSON, want) || !bytes.Equal(e2.EventJSON, want) {
				t.Fatalf("entry %d: EventJSON\n%s\n%s\nwant %s", e.Seq, e.EventJSON, e2.EventJSON, want)
			}
			if e.Seq != e2.Seq || e.Prev != e2.Prev || e.Hash != e2.Hash || e.Hash != EntryHash(e.Seq, e.Prev, want) {
				t.Fatalf("entry %d: seq, prev or hash differ", e.Seq)
			}
			line, err := EncodeEntry(e2)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(line, stored[i]) {
				t.Fatalf("entry %d: stored\n%s\nwant %s", e.Seq, stored[i], line)
			}
			if cap(e.EventJSON) != len(e.EventJSON) || cap(e2.EventJSON) != len(e2.EventJSON) || cap(stored[i]) != len(stored[i]) {
				t.Fatalf("entry %d: a slice is not capped at its end", e.Seq)
			}
			if back, err := parseEntry(stored[i]); err != nil || back.Hash != e.Hash || !bytes.Equal(back.EventJSON, want) {
				t.Fatalf("entry %d: parseEntry: %v", e.Seq, err)
			}
			if e2.Event.Seq != e2.Seq || e2.Event.Key != batch[i].Key {
				t.Fatalf("entry %d: Event not the event with its seq", e.Seq)
			}
		}
	}
	if a.Head() != b.Head() || a.Head().Seq != head.Seq+uint64(len(events)) {
		t.Fatalf("heads %v and %v", a.Head(), b.Head())
	}
	// All or nothing, and the overflow check.
	bad := typicalEvent()
	bad.From = map[string]concord.Value{"x": math.NaN()}
	if entries, stored, err := b.AppendEncoded(typicalEvent(), bad); err == nil || entries != nil || stored != nil {
		t.Fatalf("AppendEncoded of a NaN: %v", err)
	}
	if b.Head() != a.Head() {
		t.Fatal("a failed AppendEncoded moved the head")
	}
	if stored, err := c.AppendStored(typicalEvent(), bad); err == nil || stored != nil || c.Head() != a.Head() {
		t.Fatalf("AppendStored of a NaN: %v, head moved: %v", err, c.Head() != a.Head())
	}
	full := NewChain(Head{Seq: math.MaxUint64 - 1})
	if _, _, err := full.AppendEncoded(typicalEvent(), typicalEvent()); !errors.Is(err, ErrSeqOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	if _, stored, err := full.AppendEncoded(typicalEvent()); err != nil || !bytes.HasPrefix(stored[0], []byte(fmt.Sprintf(`{"seq":%d,`, uint64(math.MaxUint64)))) {
		t.Fatalf("last seq: %v", err)
	}
}

// TestChainScratchBounded: after a huge event the chain does not expect
// huge ones, calls never share bytes, and a call that outgrows the
// estimate still encodes every event whole.
func TestChainScratchBounded(t *testing.T) {
	c := NewChain(Head{})
	big := typicalEvent()
	big.Reason = strings.Repeat("r", 1<<20)
	if _, err := c.Append(big); err != nil {
		t.Fatal(err)
	}
	if c.b.avg > maxAvg {
		t.Fatalf("expects %d bytes per entry after a huge one", c.b.avg)
	}
	first, err := c.Append(typicalEvent())
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Append(typicalEvent())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first[0].EventJSON, second[0].EventJSON) || &first[0].EventJSON[0] == &second[0].EventJSON[0] {
		t.Fatal("entries of two calls share their bytes or differ")
	}
	// An estimate too small for a call only costs growth: many large
	// events after small ones come out whole.
	var many []Event
	for i := range 300 {
		ev := typicalEvent()
		ev.Reason = strings.Repeat(string(rune('a'+i%26)), 2000+i)
		many = append(many, ev)
	}
	entries, err := c.Append(many...)
	if err != nil {
		t.Fatal(err)
	}
	for i, en := range entries {
		want, _ := refEncodeEvent(&many[i])
		if !bytes.Equal(en.EventJSON, want) {
			t.Fatalf("entry %d after growth differs", i)
		}
	}
}

// TestChainCopies: a Chain is a value; copies used from two goroutines
// share no scratch space (run with -race), and give the same entries.
func TestChainCopies(t *testing.T) {
	c := NewChain(Head{})
	if _, err := c.Append(typicalEvent()); err != nil { // grows c's scratch
		t.Fatal(err)
	}
	copies := []Chain{*c, *c}
	results := make([][]Entry, 2)
	done := make(chan struct{})
	for i := range copies {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				entries, err := copies[i].Append(typicalEvent(), typicalEvent())
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = append(results[i], entries...)
			}
		}()
	}
	<-done
	<-done
	if copies[0].Head() != copies[1].Head() || len(results[0]) != 100 {
		t.Fatalf("copies diverged: %v, %v", copies[0].Head(), copies[1].Head())
	}
	for i := range results[0] {
		if !bytes.Equal(results[0][i].EventJSON, results[1][i].EventJSON) || results[0][i].Hash != results[1][i].Hash {
			t.Fatalf("entry %d differs between the copies", i)
		}
	}
}
