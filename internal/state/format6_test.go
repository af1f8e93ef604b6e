package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata")

// unitHash and nativeHash are the hashes the engine stores for a system
// holding value v of a single-field unit name: what format 6 predicts.
func unitHash(name string, v concord.Value) uint64 {
	b, err := concord.AppendCanonical(append([]byte(name), 0), v)
	if err != nil {
		panic(err)
	}
	return concord.HashBytes(b)
}

func nativeHash(v concord.Value) uint64 {
	h, err := concord.HashValue(v)
	if err != nil {
		panic(err)
	}
	return h
}

// genTime6 draws times of every kind format 6 tells apart: zero, UTC or
// zoned (the zone of the time before, often), close to each other or
// years apart, at the ends of what time.Time holds.
func genTime6(base time.Time) *rapid.Generator[time.Time] {
	return rapid.Custom(func(t *rapid.T) time.Time {
		switch rapid.IntRange(0, 9).Draw(t, "time kind") {
		case 0:
			return time.Time{}
		case 1:
			return time.Time{}.In(time.FixedZone("Z0", 0)) // the zero instant, zoned
		case 2:
			return genValueTime().Draw(t, "far")
		case 3:
			return time.Unix(rapid.Int64().Draw(t, "any sec"), rapid.Int64Range(0, 1e9-1).Draw(t, "ns")).UTC()
		case 4:
			return base.In(time.FixedZone(rapid.SampledFrom([]string{"UTC", "CET", ""}).Draw(t, "zone"), rapid.IntRange(-50400, 50400).Draw(t, "off")))
		}
		return base.Add(time.Duration(rapid.Int64Range(-1e12, 1e12).Draw(t, "delta")))
	})
}

// genRealistic draws a record shaped as the engine makes them: views that
// hold the canonical values (predicted hashes, canonical versions), two
// views alike, shared versions and rules, times close together, and every
// exception to each of these.
func genRealistic(t *rapid.T) *state.Record {
	base := time.Date(2026, 5, 1, 12, 0, 0, rapid.IntRange(0, 1e9-1).Draw(t, "base ns"), time.UTC)
	if rapid.Bool().Draw(t, "local base") {
		base = base.In(time.FixedZone("UTC", 0))
	}
	tm := genTime6(base)
	st := &state.Record{Key: rapid.String().Draw(t, "key"), Rev: rapid.Uint64().Draw(t, "rev"), Deleted: rapid.Bool().Draw(t, "deleted"),
		Diverged: tm.Draw(t, "diverged"), Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{}, Systems: map[concord.SystemID]*state.View{}}
	names := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z]{0,3}[0-9]{0,2}`), 0, 12, rapid.ID).Draw(t, "names")
	versions := []concord.Version{{}, v(1, 1), v(1, 2, 2, 1), v(3, 7)}
	genV := rapid.Custom(func(t *rapid.T) concord.Version {
		if rapid.Bool().Draw(t, "shared version") {
			return rapid.SampledFrom(versions).Draw(t, "version")
		}
		return genVersion().Draw(t, "new version")
	})
	for _, n := range names {
		if rapid.IntRange(0, 4).Draw(t, "has value") > 0 {
			st.Fields[n] = genValue(0).Draw(t, "value")
		}
	}
	units := append(slices.Clone(names), resolve.RecordUnit)
	for _, n := range units {
		if rapid.IntRange(0, 4).Draw(t, "is unit") == 0 {
			continue
		}
		u := &state.Unit{Version: genV.Draw(t, "v"), Winner: concord.SystemID(rapid.SampledFrom([]string{"a", "b", "", "crm"}).Draw(t, "winner")),
			Rule: rapid.SampledFrom([]string{"fast-forward", "last-writer-wins", ""}).Draw(t, "rule"), Changed: tm.Draw(t, "changed"),
			Modified: tm.Draw(t, "modified")}
		p := state.Prev{Version: genV.Draw(t, "pv"), Deleted: rapid.Bool().Draw(t, "pd")}
		if rapid.IntRange(0, 3).Draw(t, "prev") == 0 {
			p.Values = state.TableOfMap(genValues().Draw(t, "prev values"))
		}
		if p.Values != nil || !p.Version.IsZero() || p.Deleted { // as decoded
			u.Prev = &p
		}
		if rapid.IntRange(0, 5).Draw(t, "hold") == 0 {
			h := &state.Hold{BaseKnown: rapid.Bool().Draw(t, "bk"), Rule: "hold", Reason: rapid.String().Draw(t, "reason"), Since: tm.Draw(t, "since")}
			for range rapid.IntRange(0, 3).Draw(t, "cands") {
				c := resolve.Candidate{System: concord.SystemID(rapid.SampledFrom([]string{"a", "b"}).Draw(t, "cs")), Canonical: rapid.Bool().Draw(t, "canon"),
					Deleted: rapid.Bool().Draw(t, "cd"), Version: genV.Draw(t, "cver"), Modified: tm.Draw(t, "cm"), By: rapid.SampledFrom([]string{"", "ana@example.com"}).Draw(t, "by")}
				if rapid.Bool().Draw(t, "cvals") {
					c.Values = genValues().Draw(t, "cv")
				}
				h.Candidates = append(h.Candidates, c)
			}
			if rapid.Bool().Draw(t, "base") {
				h.Base = genValues().Draw(t, "base values")
			}
			u.Hold = h
		}
		st.Units.Set(n, u)
	}
	hashOf := func(t *rapid.T, label, name string, native bool, own, prev *uint64) uint64 {
		val, ok := st.Fields[name]
		switch rapid.IntRange(0, 6).Draw(t, label) {
		case 0, 1, 2:
			if ok {
				if native {
					return nativeHash(val)
				}
				return unitHash(name, val)
			}
		case 3:
			if prev != nil {
				return *prev
			}
		case 4:
			if own != nil {
				return *own
			}
		case 5:
			return rapid.SampledFrom([]uint64{0, 1, 2, 1 << 40, 1<<56 - 1, 1 << 56}).Draw(t, label+" small")
		}
		return rapid.Uint64().Draw(t, label+" raw")
	}
	var prev *state.View
	for _, id := range rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"a", "b", "crm", "erp"}), 0, 3, rapid.ID).Draw(t, "systems") {
		v := &state.View{Seen: rapid.Bool().Draw(t, "seen"), Deleted: rapid.Bool().Draw(t, "vd"), Tag: rapid.StringN(0, 3, -1).Draw(t, "tag"),
			Modified: tm.Draw(t, "vm"), Units: state.Table[state.Copy]{}, Native: state.Table[uint64]{}, Parked: rapid.Bool().Draw(t, "parked"), Partial: rapid.Bool().Draw(t, "partial")}
		if rapid.IntRange(0, 3).Draw(t, "failing") == 0 {
			v.Attempts, v.FirstFailed, v.LastError = rapid.IntRange(0, 9).Draw(t, "attempts"), tm.Draw(t, "ff"), rapid.String().Draw(t, "lasterr")
		}
		for _, n := range units {
			if rapid.IntRange(0, 5).Draw(t, "view has unit") == 0 {
				continue
			}
			var p *uint64
			if c, ok := (viewOf{prev}).unit(n); ok {
				p = &c.Hash
			}
			c := state.Copy{Hash: hashOf(t, "unit hash", n, false, nil, p), Version: genV.Draw(t, "copy version")}
			if u, ok := st.Units.Get(n); ok && rapid.IntRange(0, 3).Draw(t, "canonical version") > 0 {
				c.Version = u.Version
			}
			v.Units.Set(n, c)
			if rapid.IntRange(0, 6).Draw(t, "sent") == 0 {
				for range rapid.IntRange(1, 3).Draw(t, "sent n") {
					v.AddSent(n, state.Copy{Hash: hashOf(t, "sent hash", n, false, nil, nil), Version: genV.Draw(t, "sent version")})
				}
			}
		}
		for _, n := range names {
			if rapid.IntRange(0, 5).Draw(t, "view has native") == 0 {
				continue
			}
			var own, p *uint64
			if c, ok := v.Units.Get(n); ok {
				own = &c.Hash
			}
			if prev != nil {
				if h, ok := prev.Native.Get(n); ok {
					p = &h
				}
			}
			v.Native.Set(n, hashOf(t, "native hash", n, true, own, p))
		}
		st.Systems[concord.SystemID(id)] = v
		prev = v
	}
	return st
}

// unit returns the view's copy of unit n (the view may be nil).
func (w viewOf) unit(n string) (state.Copy, bool) {
	if w.View == nil {
		return state.Copy{}, false
	}
	return w.Units.Get(n)
}

// carryPartial sets the Partial flag of dst's views (decoded from a legacy
// format, which has none: records are written in format 6 only) as src's,
// the record encoded: format 6 must keep it.
func carryPartial(dst, src *state.Record) {
	for id, v := range dst.Systems {
		if w := src.Systems[id]; w != nil {
			v.Partial = w.Partial
		}
	}
}

// viewOf is a view that may be nil.
type viewOf struct{ *state.View }

// Format 6 round-trips every record, re-encodes to the same bytes, decodes
// to what the legacy format decodes to, holds nothing of its input, and
// EncodedSize agrees with it.
func TestFormat6RoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genRealistic(t)
		if rapid.Bool().Draw(t, "random shape") {
			st = genState(t)
		}
		b, err := state.EncodeState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		if b[3] != state.CompactVersion {
			t.Fatalf("format %d", b[3])
		}
		got, err := state.DecodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		checkZones(t, st, got)
		again, err := state.EncodeState(nil, got)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding gives other bytes (%v)", err)
		}
		legacy, err := state.Codec{}.EncodeLegacyState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		old, err := state.DecodeState(legacy)
		if err != nil {
			t.Fatal(err)
		}
		carryPartial(old, st)
		if diff := cmp.Diff(old, got, stateCmp); diff != "" {
			t.Fatalf("format %d and format 6 decode differently (-legacy +6):\n%s", legacy[3], diff)
		}
		clear(b) // the decoded record holds nothing of its input
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("the decoded record changed with its input (-want +got):\n%s", diff)
		}
		total, values, err := state.Codec{}.EncodedSize(st)
		if err != nil || total != len(again) || values < 0 || values > total {
			t.Fatalf("EncodedSize = %d, %d, %v; encoding of %d bytes", total, values, err, len(again))
		}
	})
}

// checkZones: every time of the record comes back in a zone of the same
// name and offset (UTC as UTC), as format 5 keeps them.
func checkZones(t *rapid.T, want, got *state.Record) {
	same := func(what string, a, b time.Time) {
		an, ao := a.Zone()
		bn, bo := b.Zone()
		if an != bn || ao != bo || (a.Location() == time.UTC) != (b.Location() == time.UTC) {
			t.Fatalf("%s: %v came back as %v", what, a, b)
		}
	}
	same("diverged", want.Diverged, got.Diverged)
	for _, x := range want.Units {
		n, u := x.Name, x.Value
		g := got.Units.Value(n)
		same("changed "+n, u.Changed, g.Changed)
		same("modified "+n, u.Modified, g.Modified)
		if u.Hold != nil {
			same("since "+n, u.Hold.Since, g.Hold.Since)
			for i, c := range u.Hold.Candidates {
				same("candidate "+n, c.Modified, g.Hold.Candidates[i].Modified)
			}
		}
	}
	for id, v := range want.Systems {
		same("view modified "+string(id), v.Modified, got.Systems[id].Modified)
		same("first failed "+string(id), v.FirstFailed, got.Systems[id].FirstFailed)
	}
}

// Sealed values in format 6 round-trip and decode as in format 4/5.
func TestFormat6SealedMatchesLegacy(t *testing.T) {
	c := state.Codec{Sealer: keyRing(t, "k1", "k1"), Context: "ctx"}
	rapid.Check(t, func(t *rapid.T) {
		prefix := rapid.StringN(0, 1, -1).Draw(t, "sensitive prefix")
		c.Sensitive = func(f string) bool { return len(f) > 0 && f[:1] == prefix }
		st := genRealistic(t)
		b, err := c.EncodeState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		legacy, err := c.EncodeLegacyState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.DecodeState(b)
		if err != nil {
			t.Fatal(err)
		}
		old, err := c.DecodeState(legacy)
		if err != nil {
			t.Fatal(err)
		}
		carryPartial(old, st)
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(old, got, stateCmp); diff != "" {
			t.Fatalf("legacy and format 6 differ (-legacy +6):\n%s", diff)
		}
	})
}

// goldenRecord holds every kind of content, each compact form of format 6
// and its exceptions.
func goldenRecord() *state.Record {
	st := state.Sample("customer-42", false, true)
	at := time.Date(2026, 5, 1, 12, 30, 0, 123456789, time.UTC)
	local := at.In(time.FixedZone("UTC", 0))
	st.Diverged = at.Add(-time.Hour)
	for i := range 4 {
		n := fmt.Sprintf("field%02d", i)
		st.Fields[n] = fmt.Sprintf("value %d", i)
		st.Units.Set(n, &state.Unit{Version: v(1, 1), Winner: "a", Rule: "fast-forward", Changed: local.Add(time.Duration(i) * time.Microsecond), Modified: at})
		for id, view := range st.Systems {
			view.Units.Set(n, state.Copy{Hash: unitHash(n, st.Fields[n]), Version: v(1, 1)})
			view.Native.Set(n, nativeHash(st.Fields[n]))
			if id == "b" && i == 3 {
				view.Native.Set(n, 7) // another notation
			}
		}
	}
	st.Units.Value("phone").Hold.Candidates[1].By = "ana@example.com"
	st.Units.Value("phone").Hold.Candidates[0].Modified = time.Date(1840, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", -75))
	a := st.Systems["a"]
	a.Attempts, a.FirstFailed, a.LastError, a.Parked = 3, at.Add(time.Minute), "HTTP 503", true
	a.AddSent("field01", state.Copy{Hash: unitHash("field01", "next"), Version: v(1, 2)})
	a.AddSent("field01", state.Copy{Hash: 99, Version: v(1, 3)})
	st.Systems["gone"] = &state.View{Seen: true, Deleted: true, Tag: "9", Modified: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		Units:  state.TableOf(map[string]state.Copy{resolve.RecordUnit: {Hash: 2, Version: v(1, 1, 2, 1)}, "name": {Hash: state.NoValue, Version: v(1, 2)}}),
		Native: state.Table[uint64]{}}
	return st
}

// The golden files pin the encodings: format 6 as EncodeState writes it,
// format 5 as EncodeLegacyState does. Both decode to the golden record
// (go test -run Golden -update rewrites them after a deliberate change).
func TestGoldenFormats(t *testing.T) {
	st := goldenRecord()
	for _, g := range []struct {
		file   string
		format byte
		enc    func([]byte, *state.Record) ([]byte, error)
	}{
		{"state-format6.golden", state.CompactVersion, state.Codec{}.EncodeState},
		{"state-format5.golden", state.AuthoredVersion, state.Codec{}.EncodeLegacyState},
	} {
		path := filepath.Join("testdata", g.file)
		b, err := g.enc(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		if b[3] != g.format {
			t.Fatalf("%s: format %d; want %d", g.file, b[3], g.format)
		}
		if *update {
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: the encoding changed:\n got %x\nwant %x", g.file, b, want)
		}
		got, err := state.DecodeState(want)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Errorf("%s decodes to another record (-want +got):\n%s", g.file, diff)
		}
	}
}

// crc appends the CRC-32C trailer to a hand-made encoding.
func crc(parts ...[]byte) []byte {
	b := slices.Concat(parts...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// Hand-made format 6 encodings, each wrong in one way the checksum does
// not see: every one is refused as corrupt, none panics.
func TestFormat6RefusesMalformed(t *testing.T) {
	hdr := []byte("CSR\x06\x00\x01k\x00") // flags, key "k", rev 0
	zero := []byte{0}
	oneName := []byte{1, 0, 1, 'a'} // the names: "a"
	empty := []byte{0}              // an empty set
	unitA := []byte{2, 0}           // the set {a} (gaps: index 0)
	plainUnit := make([]byte, 9)    // flags 0; version 0, winner "" and rule "" (inline), times zero, prev version 0
	okUnit := []byte{unitSameWinner6 | unitSameRule6, 0, 0, 0, 0}
	view := func(flags, copyFlags byte) []byte { // one view "s" holding unit a
		return slices.Concat([]byte{1, 0, 1, 's', flags, 0, 0}, unitA, []byte{copyFlags}, empty)
	}
	good := crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 4|8))
	if _, err := state.DecodeState(good); err != nil {
		t.Fatalf("the well-formed base: %v", err)
	}
	if _, err := state.DecodeState(crc(hdr, zero, oneName, empty, unitA, plainUnit, []byte{0})); err != nil {
		t.Fatalf("a unit with inline strings: %v", err)
	}
	for name, b := range map[string][]byte{
		"record flags":                 crc([]byte("CSR\x06\x02\x01k\x00"), zero, oneName, empty, empty, zero),
		"time kind 6":                  crc(hdr, []byte{6}, oneName, empty, empty, zero),
		"zero time with payload":       crc(hdr, []byte{8}, oneName, empty, empty, zero),
		"delta without reference":      crc(hdr, []byte{1 | 2<<3}, oneName, empty, empty, zero),
		"UTC zero time as UTC":         crc(hdr, []byte{timeUTCAbs6}, binary.AppendVarint(nil, time.Time{}.Unix()), zero, oneName, empty, empty, zero),
		"nanoseconds past 1e9":         crc(hdr, []byte{timeUTCAbs6, 2}, binary.AppendUvarint(nil, 1e9), oneName, empty, empty, zero),
		"names out of order":           crc(hdr, zero, []byte{2, 0, 1, 'b', 0, 1, 'a'}, empty, empty, zero),
		"name twice":                   crc(hdr, zero, []byte{2, 0, 1, 'a', 1, 0}, empty, empty, zero),
		"prefix past the name":         crc(hdr, zero, []byte{2, 0, 1, 'a', 2, 1, 'b'}, empty, empty, zero),
		"prefix past the bound":        crc(hdr, zero, []byte{2, 0, 64}, bytes.Repeat([]byte{'a'}, 64), []byte{64, 1, 'b'}, empty, empty, zero),
		"too many names":               crc(hdr, zero, []byte{100, 0, 1, 'a'}, empty, empty, zero),
		"set index past names":         crc(hdr, zero, oneName, []byte{2, 1}, empty, zero),
		"set larger than names":        crc(hdr, zero, oneName, []byte{4, 0, 0}, empty, zero),
		"bitmap bit past names":        crc(hdr, zero, oneName, []byte{3, 2}, empty, zero),
		"bitmap count wrong":           crc(hdr, zero, oneName, []byte{5, 1}, empty, zero),
		"unit flag bit 7":              crc(hdr, zero, oneName, empty, unitA, []byte{0x80 | unitSameWinner6 | unitSameRule6, 0, 0, 0, 0}, zero),
		"version reference":            crc(hdr, zero, oneName, empty, unitA, []byte{unitSameWinner6 | unitSameRule6, 5, 0, 0, 0}, zero),
		"version of 0 dots":            crc(hdr, zero, oneName, empty, unitA, []byte{unitSameWinner6 | unitSameRule6, 1, 0, 0, 0, 0}, zero),
		"version zero counter":         crc(hdr, zero, oneName, empty, unitA, []byte{unitSameWinner6 | unitSameRule6, 1, 1, 1, 0, 0, 0, 0}, zero),
		"version actor > 2^32":         crc(hdr, zero, oneName, empty, unitA, []byte{unitSameWinner6 | unitSameRule6, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 0, 0, 0}, zero),
		"string reference":             crc(hdr, zero, oneName, empty, unitA, []byte{unitSameRule6, 3, 0, 0, 0}, zero),
		"units past the bytes":         crc(hdr, zero, oneName, empty, []byte{3, 1}, zero),
		"views past the bytes":         crc(hdr, zero, oneName, empty, empty, []byte{9, 0, 0, 0}),
		"view flags":                   crc(hdr, zero, oneName, empty, unitA, okUnit, view(0x40, 4|8)),
		"systems out of order":         crc(hdr, zero, oneName, empty, empty, []byte{2, 0, 1, 'b', 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 0, 0, 0}),
		"system twice":                 crc(hdr, zero, oneName, empty, empty, []byte{2, 0, 1, 'b', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}),
		"copy flags":                   crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 0x10|4)),
		"hash kind 7":                  crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 7)),
		"copy: own-unit kind":          crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 5|8)),
		"predicted without value":      crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 2|8)),
		"previous view missing":        crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 3|8)),
		"small hash not small":         crc(hdr, zero, oneName, empty, unitA, okUnit, slices.Concat([]byte{1, 0, 1, 's', 0, 0, 0}, unitA, []byte{1 | 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, empty)),
		"canonical version of no unit": crc(hdr, zero, oneName, empty, empty, slices.Concat([]byte{1, 0, 1, 's', 0, 0, 0}, unitA, []byte{4 | 8}, empty)),
		"empty sent":                   crc(hdr, zero, oneName, empty, unitA, okUnit, slices.Concat([]byte{1, 0, 1, 's', 0x10, 0, 0}, unitA, []byte{4 | 8}, empty, empty)),
		"trailing byte":                crc(hdr, zero, oneName, empty, unitA, okUnit, view(0, 4|8), zero),
	} {
		st, err := state.DecodeState(b)
		if !errors.Is(err, state.ErrCorrupt) || errors.Is(err, state.ErrChecksum) {
			t.Errorf("%s: %v (%+v); want ErrCorrupt, not a checksum error", name, err, st)
		}
	}
}

// Flags of format 6 (format6.go) the hand-made encodings use.
const (
	unitSameWinner6 = 1 << 4
	unitSameRule6   = 1 << 5
	timeUTCAbs6     = 2
)

// With the checksum recomputed, every flipped bit and every truncation of
// a format 6 encoding either fails (as corrupt, or as a sealed value
// without a Sealer) or decodes to a record that
// encodes and decodes again: the decoder does not trust the content.
func TestFormat6DamagePastTheChecksum(t *testing.T) {
	for _, st := range []*state.Record{goldenRecord(), state.Sample("k", true, true)} {
		b, err := state.EncodeState(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		check := func(what string, d []byte) {
			got, err := state.DecodeState(d)
			if err != nil {
				var se *state.SealError // a value tag flipped to the sealed one
				if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrNewerFormat) && !errors.As(err, &se) {
					t.Fatalf("%s: %v", what, err)
				}
				return
			}
			again, err := state.EncodeState(nil, got)
			if err != nil {
				t.Fatalf("%s: decoded, does not encode: %v", what, err)
			}
			if _, err := state.DecodeState(again); err != nil {
				t.Fatalf("%s: re-encoded, does not decode: %v", what, err)
			}
		}
		for i := range (len(b) - 4) * 8 {
			d := bytes.Clone(b)
			d[i/8] ^= 1 << (i % 8)
			check(fmt.Sprintf("bit %d", i), reCRC(d))
		}
		for n := 4; n < len(b)-4; n++ {
			check(fmt.Sprintf("cut at %d", n), crc(b[:n]))
		}
	}
}

// suiteRecord is a record as the engine keeps it after syncing 20 fields
// between two systems (BenchmarkSuiteFootprint's): every unit
// fast-forwarded from system a, both systems holding the canonical values.
func suiteRecord(i int) *state.Record {
	at := time.Date(2026, 5, 1, 7, 47, 28, 303041570, time.UTC)
	local := at.In(time.FixedZone("UTC", 0))
	st := &state.Record{Key: fmt.Sprintf("rec-%06d", i), Rev: 3, Fields: map[string]concord.Value{}, Units: state.Table[*state.Unit]{},
		Systems: map[concord.SystemID]*state.View{}}
	for _, id := range []concord.SystemID{"a", "z"} {
		st.Systems[id] = &state.View{Seen: true, Tag: "1", Modified: at.Add(time.Duration(len(id)) * time.Millisecond),
			Units: state.Table[state.Copy]{{Name: resolve.RecordUnit, Value: state.Copy{Hash: 1, Version: v(1, 1)}}}, Native: state.Table[uint64]{}}
	}
	st.Units.Set(resolve.RecordUnit, &state.Unit{Version: v(1, 1), Winner: "a", Rule: "fast-forward", Changed: local.Add(1300 * time.Microsecond), Modified: at})
	for j := range 20 {
		name := fmt.Sprintf("field%02d", j)
		var val concord.Value
		switch j % 4 {
		case 0:
			val = int64(i*20 + j)
		case 1:
			val = j%8 == 1
		default:
			val = fmt.Sprintf("value %d of record %d", j, i)
		}
		st.Fields[name] = val
		st.Units.Set(name, &state.Unit{Version: v(1, 1), Winner: "a", Rule: "fast-forward",
			Changed: local.Add(time.Duration(1200+j*7) * time.Microsecond), Modified: at})
		for _, view := range st.Systems {
			view.Units.Set(name, state.Copy{Hash: unitHash(name, val), Version: v(1, 1)})
			view.Native.Set(name, nativeHash(val))
		}
	}
	return st
}

// BenchmarkStateFormats: a 20-field record of two systems (suiteRecord)
// encoded and decoded in format 5 (EncodeLegacyState) and format 6
// (EncodeState), in the same run. B/field is the encoding's size per field,
// meta-B/field the part that is not the values'.
func BenchmarkStateFormats(b *testing.B) {
	st := suiteRecord(42)
	c := state.Codec{}
	_, values, err := c.EncodedSize(st)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name string
		enc  func([]byte, *state.Record) ([]byte, error)
	}{{"format=5", c.EncodeLegacyState}, {"format=6", c.EncodeState}} {
		data, err := f.enc(nil, st)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("op=encode/"+f.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.enc(buf[:0], st); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data))/20, "B/field")
			b.ReportMetric(float64(len(data)-values)/20, "meta-B/field")
		})
		b.Run("op=decode/"+f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.DecodeState(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
