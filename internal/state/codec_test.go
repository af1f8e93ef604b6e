package state_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// genValue draws Values that concord.CheckValue accepts, of every Go type
// the codec keeps.
func genValue(depth int) *rapid.Generator[concord.Value] {
	return rapid.Custom(func(t *rapid.T) concord.Value {
		kinds := 13
		if depth > 2 {
			kinds = 10
		}
		switch rapid.IntRange(0, kinds-1).Draw(t, "kind") {
		case 0:
			return nil
		case 1:
			return rapid.Bool().Draw(t, "bool")
		case 2:
			return rapid.String().Draw(t, "string")
		case 3:
			return rapid.SampledFrom([]concord.Value{rapid.Int64().Draw(t, "int"), rapid.Int().Draw(t, "int"), rapid.Int8().Draw(t, "int8"),
				rapid.Int16().Draw(t, "int16"), rapid.Int32().Draw(t, "int32"), rapid.Uint().Draw(t, "uint"), rapid.Uint8().Draw(t, "uint8"),
				rapid.Uint16().Draw(t, "uint16"), rapid.Uint32().Draw(t, "uint32"), rapid.Uint64().Draw(t, "uint64")}).Draw(t, "integer")
		case 4:
			f := rapid.Float64().Filter(func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }).Draw(t, "float")
			if rapid.Bool().Draw(t, "32") && !math.IsInf(float64(float32(f)), 0) {
				return float32(f)
			}
			return f
		case 5:
			return json.Number(rapid.StringMatching(`-?(0|[1-9][0-9]{0,80})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?`).Draw(t, "number"))
		case 6:
			return genValueTime().Draw(t, "time")
		case 7:
			return rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "bytes")
		case 8:
			return rapid.MapOfN(rapid.StringN(1, 5, -1), rapid.String(), 0, 3).Draw(t, "string map")
		case 9:
			return rapid.SliceOfN(rapid.String(), 0, 3).Draw(t, "strings")
		case 10:
			return rapid.SliceOfN(genValue(depth+1), 0, 3).Draw(t, "list")
		default:
			return rapid.MapOfN(rapid.StringN(1, 5, -1), genValue(depth+1), 0, 3).Draw(t, "map")
		}
	})
}

// genValueTime draws times in the years a Value may hold, in zones with
// odd offsets (sub-minute ones among them).
func genValueTime() *rapid.Generator[time.Time] {
	return rapid.Custom(func(t *rapid.T) time.Time {
		const lo, hi = -62167219200 + 86400, 253402300799 - 86400 // 0000-01-02 .. 9999-12-30
		at := time.Unix(rapid.Int64Range(lo, hi).Draw(t, "sec"), rapid.Int64Range(0, 1e9-1).Draw(t, "ns"))
		switch rapid.IntRange(0, 3).Draw(t, "zone") {
		case 0:
			return at.UTC()
		case 1:
			return at.In(time.FixedZone("z", 3600*rapid.IntRange(-12, 12).Draw(t, "tz")))
		case 2:
			return at.In(time.FixedZone(rapid.StringN(0, 4, -1).Draw(t, "name"), rapid.IntRange(-86399, 86399).Draw(t, "offset")))
		}
		return at.In(time.Local)
	})
}

func genValues() *rapid.Generator[map[string]concord.Value] {
	return rapid.MapOfN(rapid.StringN(1, 8, -1), genValue(0), 0, 4)
}

func genVersion() *rapid.Generator[concord.Version] {
	return rapid.Custom(func(t *rapid.T) concord.Version {
		var dots []concord.Dot
		for a := range rapid.IntRange(0, 4).Draw(t, "n") {
			dots = append(dots, concord.Dot{Actor: concord.Actor(a + 1), Counter: rapid.Uint64Range(1, 1<<40).Draw(t, "c")})
		}
		return concord.MustVersion(dots...)
	})
}

func genTime() *rapid.Generator[time.Time] {
	return rapid.Custom(func(t *rapid.T) time.Time {
		if rapid.Bool().Draw(t, "zero") {
			return time.Time{}
		}
		return time.Unix(rapid.Int64Range(0, 1<<35).Draw(t, "s"), 0).UTC()
	})
}

func genState(t *rapid.T) *state.Record {
	st := &state.Record{Key: rapid.String().Draw(t, "key"), Rev: rapid.Uint64().Draw(t, "rev"), Deleted: rapid.Bool().Draw(t, "deleted"),
		Diverged: genTime().Draw(t, "diverged"),
		Fields:   genValues().Draw(t, "fields"), Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}
	for i := range rapid.IntRange(0, 3).Draw(t, "units") {
		u := &state.Unit{Version: genVersion().Draw(t, "v"), Winner: concord.SystemID(rapid.String().Draw(t, "winner")),
			Rule: rapid.String().Draw(t, "rule"), Changed: genTime().Draw(t, "changed"), Modified: genTime().Draw(t, "modified")}
		p := state.Prev{Version: genVersion().Draw(t, "pv"), Deleted: rapid.Bool().Draw(t, "pd")}
		if rapid.Bool().Draw(t, "prev") {
			p.Values = state.TableOfMap(genValues().Draw(t, "prev-values"))
		}
		if p.Values != nil || !p.Version.IsZero() || p.Deleted { // as decoded
			u.Prev = &p
		}
		if rapid.Bool().Draw(t, "hold") {
			h := &state.Hold{BaseKnown: rapid.Bool().Draw(t, "bk"), Rule: "r", Reason: rapid.String().Draw(t, "reason"), Since: genTime().Draw(t, "since")}
			for range rapid.IntRange(1, 3).Draw(t, "cands") {
				h.Candidates = append(h.Candidates, resolve.Candidate{System: "s", Canonical: rapid.Bool().Draw(t, "canon"),
					Values: genValues().Draw(t, "cv"), Deleted: rapid.Bool().Draw(t, "cd"), Version: genVersion().Draw(t, "cver"), Modified: genTime().Draw(t, "cm")})
			}
			if rapid.Bool().Draw(t, "base") {
				h.Base = genValues().Draw(t, "base-values")
			}
			u.Hold = h
		}
		st.Units.Set([]string{"a", "b", "(record)"}[i], u)
	}
	for i := range rapid.IntRange(0, 3).Draw(t, "systems") {
		v := &state.View{Seen: rapid.Bool().Draw(t, "seen"), Deleted: rapid.Bool().Draw(t, "vd"), Tag: rapid.String().Draw(t, "tag"),
			Modified: genTime().Draw(t, "vm"), Units: state.Table[state.Copy]{}, Native: state.Table[uint64]{},
			Attempts: rapid.IntRange(0, 20).Draw(t, "attempts"), FirstFailed: genTime().Draw(t, "ff"),
			LastError: rapid.String().Draw(t, "lasterr"), Parked: rapid.Bool().Draw(t, "parked")}
		for range rapid.IntRange(0, 3).Draw(t, "held") {
			v.Units.Set(rapid.StringN(1, 4, -1).Draw(t, "hu"), state.Copy{Hash: rapid.Uint64().Draw(t, "h"), Version: genVersion().Draw(t, "hv")})
		}
		for range rapid.IntRange(0, 3).Draw(t, "native") {
			v.Native.Set(rapid.StringN(1, 4, -1).Draw(t, "nf"), rapid.Uint64().Draw(t, "nh"))
		}
		for range rapid.IntRange(0, 2).Draw(t, "sent") {
			if v.Sent == nil {
				v.Sent = state.Table[[]state.Copy]{}
			}
			u := rapid.StringN(1, 4, -1).Draw(t, "su")
			for range rapid.IntRange(1, 3).Draw(t, "sn") {
				v.Sent.Set(u, append(v.Sent.Value(u), state.Copy{Hash: rapid.Uint64().Draw(t, "sh"), Version: genVersion().Draw(t, "sv")}))
			}
		}
		st.Systems[concord.SystemID([]string{"p", "w", "c"}[i])] = v
	}
	return st
}

// sameDecoded compares what two decodings gave: stateCmp, where values
// that have no canonical encoding (a time past year 9999, which only old
// or damaged data holds) compare as identical.
var sameDecoded = cmp.Options{
	cmpopts.IgnoreUnexported(state.Record{}), // a decoded record's cache of its highest counters
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.FilterPath(func(p cmp.Path) bool {
		_, ok := p.Last().(cmp.MapIndex)
		return ok && p.Last().Type().Kind() == reflect.Interface // a Value
	}, cmp.Comparer(func(a, b any) bool { return concord.EqualValues(a, b) || identical(a, b) })),
}

var stateCmp = cmp.Options{
	cmpopts.IgnoreUnexported(state.Record{}), // a decoded record's cache of its highest counters
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.FilterPath(func(p cmp.Path) bool {
		_, ok := p.Last().(cmp.MapIndex)
		return ok && p.Last().Type().Kind() == reflect.Interface // a Value
	}, cmp.Comparer(func(a, b any) bool { return concord.EqualValues(a, b) || (a == nil && b == nil) })),
}

// recordRoundTrip encodes st with c and decodes it again, failing t on an
// error; it returns the record decoded and the bytes. (roundTrip does the
// same for one value.)
func recordRoundTrip(t fataler, c state.Codec, st *state.Record) (*state.Record, []byte) {
	t.Helper()
	b, err := c.EncodeState(nil, st)
	if err != nil {
		t.Fatalf("encoding record %q: %v", st.Key, err)
	}
	got, err := c.DecodeState(b)
	if err != nil {
		t.Fatalf("decoding record %q: %v", st.Key, err)
	}
	return got, b
}

func TestStateRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genState(t)
		got, b := recordRoundTrip(t, state.Codec{}, st)
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		// Values keep their type family: a stored time is still a time.
		for k, v := range st.Fields {
			if _, isTime := v.(time.Time); isTime {
				if _, ok := got.Fields[k].(time.Time); !ok {
					t.Fatalf("field %s: time came back as %T", k, got.Fields[k])
				}
			}
		}
		// Deterministic: the same state encodes to the same bytes.
		again, _ := state.EncodeState(nil, got)
		if string(again) != string(b) {
			t.Fatal("re-encoding gives different bytes")
		}
	})
}

func TestDeadLetterRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dl := state.DeadLetter{System: "portal", Key: rapid.String().Draw(t, "key"), Inbound: rapid.Bool().Draw(t, "in"),
			Record:      concord.Record{Key: "k", Fields: genValues().Draw(t, "f"), Tag: "7", Modified: genTime().Draw(t, "m")},
			Transformed: concord.Record{Key: "k", Fields: genValues().Draw(t, "tf")},
			Reason:      rapid.String().Draw(t, "reason"), Class: "invalid", When: genTime().Draw(t, "when"),
			Attempts: rapid.IntRange(0, 9).Draw(t, "attempts"), FirstFailed: genTime().Draw(t, "ff")}
		b, err := state.EncodeDeadLetter(nil, dl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := state.DecodeDeadLetter(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(dl, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}

func TestBadInput(t *testing.T) {
	st := &state.Record{Key: "k", Fields: map[string]concord.Value{"a": "x"}}
	good, err := state.EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	newer := append([]byte(nil), good...)
	newer[3] = state.CompactVersion + 1
	newerDead := mustDead(t)
	newerDead[3] = state.AuthoredVersion + 1
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, state.ErrCorrupt},
		{"foreign", []byte("SQLite format 3\x00"), state.ErrCorrupt},
		{"dead letter as state", mustDead(t), state.ErrCorrupt},
		{"truncated", good[:len(good)-1], state.ErrCorrupt},
		{"trailing", append(append([]byte(nil), good...), 0), state.ErrCorrupt},
		{"newer format", newer, state.ErrNewerFormat},
	} {
		if _, err := state.DecodeState(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeState = %v; want %v", tc.name, err, tc.want)
		}
	}
	// Dead letters have no format 6: this Concord did not write it.
	if _, err := state.DecodeDeadLetter(newerDead); !errors.Is(err, state.ErrNewerFormat) {
		t.Errorf("dead letter in format 6: %v; want ErrNewerFormat", err)
	}
	if _, err := state.EncodeState(nil, &state.Record{Fields: map[string]concord.Value{"x": struct{}{}}}); !errors.Is(err, concord.ErrUnsupportedValue) {
		t.Errorf("encoding an unsupported value = %v; want ErrUnsupportedValue", err)
	}
}

func mustDead(t *testing.T) []byte {
	b, err := state.EncodeDeadLetter(nil, state.DeadLetter{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeState: no input makes the decoder panic or allocate without
// bound; whatever decodes re-encodes to a state that decodes the same.
func FuzzDecodeState(f *testing.F) {
	good, _ := state.EncodeState(nil, &state.Record{Key: "k", Fields: map[string]concord.Value{"a": []any{1.5, "x"}},
		Units: state.Table[*state.Unit]{{Name: "a", Value: &state.Unit{Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 2})}}}})
	f.Add(good)
	f.Add([]byte("CSR\x01"))
	f.Add([]byte("CSR\x02"))
	v1, _ := hex.DecodeString(version1State)
	f.Add(v1)
	london := time.Date(1840, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -75))
	every, _ := state.EncodeState(nil, &state.Record{Key: "k", Diverged: london, Fields: map[string]concord.Value{
		"t": london, "b": []byte{0, 0xff}, "i8": int8(-1), "u16": uint16(7), "f32": float32(0.1), "n": json.Number("1e300"),
		"l": []any{int(1), uint(2), map[string]any{"x": int32(3)}}, "L": []string{"a"}, "M": map[string]string{"k": "v"}}})
	f.Add(every)
	// Format 6 with each of its compact forms, and the same records in the
	// legacy formats.
	for _, st := range []*state.Record{suiteRecord(7), goldenRecord(), state.Sample("k", true, true)} {
		for _, enc := range []func([]byte, *state.Record) ([]byte, error){state.Codec{}.EncodeState, state.Codec{}.EncodeLegacyState} {
			b, err := enc(nil, st)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := state.DecodeState(b)
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrNewerFormat) && !errors.Is(err, state.ErrNoSealer) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		// Whatever decodes keeps the tables' order (a legacy format's
		// names may come in any order and twice: its decoder sorts).
		if err := st.CheckTables(); err != nil {
			t.Fatalf("decoded state breaks its tables: %v", err)
		}
		again, err := state.EncodeState(nil, st)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		got, err := state.DecodeState(again)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		// What decodes means the same in format 6 and in the legacy format.
		if diff := cmp.Diff(st, got, sameDecoded); diff != "" {
			t.Fatalf("re-encoded in format 6, decodes differently (-first +again):\n%s", diff)
		}
		legacy, err := state.Codec{}.EncodeLegacyState(nil, st)
		if err != nil {
			t.Fatalf("decoded state does not encode in the legacy format: %v", err)
		}
		old, err := state.DecodeState(legacy)
		if err != nil {
			t.Fatalf("legacy encoding does not decode: %v", err)
		}
		if diff := cmp.Diff(st, old, sameDecoded); diff != "" {
			t.Fatalf("re-encoded in the legacy format, decodes differently (-first +legacy):\n%s", diff)
		}
	})
}

// A held candidate that says who made it is kept: in format 6, and by the
// legacy encoder in format 5 (a state without one in format 3 as before).
func TestCandidateAuthorRoundTrip(t *testing.T) {
	t.Run("legacy", func(t *testing.T) {
		checkCandidateAuthor(t, state.Version, state.AuthoredVersion, state.Codec{}.EncodeLegacyState)
	})
	t.Run("format 6", func(t *testing.T) {
		checkCandidateAuthor(t, state.CompactVersion, state.CompactVersion, state.Codec{}.EncodeState)
	})
}

func checkCandidateAuthor(t *testing.T, plainVersion, authoredVersion byte, enc func([]byte, *state.Record) ([]byte, error)) {
	st := state.Sample("k1", false, true)
	var hold *state.Hold
	for _, x := range st.Units {
		if u := x.Value; u.Hold != nil {
			hold = u.Hold
		}
	}
	if hold == nil || len(hold.Candidates) == 0 {
		t.Fatal("the sample has no held candidates")
	}
	plain, err := enc(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	if plain[3] != plainVersion {
		t.Fatalf("without authors: format %d; want %d", plain[3], plainVersion)
	}
	hold.Candidates[len(hold.Candidates)-1].By = "ana@example.com"
	b, err := enc(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	if b[3] != authoredVersion {
		t.Fatalf("with an author: format %d; want %d", b[3], authoredVersion)
	}
	got, err := state.DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range got.Units {
		if u := x.Value; u.Hold != nil {
			if by := u.Hold.Candidates[len(u.Hold.Candidates)-1].By; by != "ana@example.com" {
				t.Fatalf("decoded author %q; want ana@example.com", by)
			}
			return
		}
	}
	t.Fatal("the decoded state has no hold")
}
