package state_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
)

// changeViews changes st's views as a cycle's writes do, and more: tags,
// times, flags, copies and hashes set, replaced and removed, attempts
// noted and confirmed, a view added or dropped, now and then a name no
// unit or field has. With diverged, it may change what the encoding
// before the views holds too (the Diverged time, the deletion), which a
// resumed encoding must notice.
func changeViews(t *rapid.T, st *state.Record, diverged bool) {
	names := []string{resolve.RecordUnit}
	for _, x := range st.Units {
		names = append(names, x.Name)
	}
	for n := range st.Fields {
		names = append(names, n)
	}
	if rapid.IntRange(0, 9).Draw(t, "a new name") == 0 {
		names = append(names, "zz-new")
	}
	name := rapid.SampledFrom(names)
	tm := genTime6(st.Diverged)
	ids := []concord.SystemID{"a", "b", "crm", "erp"}
	for range rapid.IntRange(0, 8).Draw(t, "changes") {
		id := rapid.SampledFrom(ids).Draw(t, "system")
		v := st.Systems[id]
		if v == nil {
			v = &state.View{Units: state.Table[state.Copy]{}, Native: state.Table[uint64]{}}
			st.Systems[id] = v
		}
		switch rapid.IntRange(0, 9).Draw(t, "change") {
		case 0:
			v.Tag = rapid.StringN(0, 3, -1).Draw(t, "tag")
		case 1:
			v.Modified = tm.Draw(t, "modified")
		case 2:
			v.Seen, v.Deleted, v.Parked, v.Partial = !v.Seen, rapid.Bool().Draw(t, "deleted"), rapid.Bool().Draw(t, "parked"), false
		case 3:
			n := name.Draw(t, "unit")
			c := state.Copy{Hash: rapid.Uint64().Draw(t, "hash")}
			if u, ok := st.Units.Get(n); ok && rapid.Bool().Draw(t, "canonical") {
				c.Version, c.Hash = u.Version, unitHash(n, st.Fields[n])
			}
			v.Units.Set(n, c)
		case 4:
			v.Units.Delete(name.Draw(t, "unit"))
		case 5:
			v.Native.Set(name.Draw(t, "native"), rapid.Uint64Range(0, 300).Draw(t, "native hash"))
		case 6:
			n := name.Draw(t, "sent")
			v.AddSent(n, state.Copy{Hash: rapid.Uint64().Draw(t, "sent hash"), Version: v2(rapid.Uint64Range(1, 9).Draw(t, "c"))})
		case 7:
			v.Sent = nil
		case 8:
			v.Attempts, v.FirstFailed, v.LastError = rapid.IntRange(0, 3).Draw(t, "attempts"), tm.Draw(t, "failed"), "boom"
		case 9:
			delete(st.Systems, id)
		}
	}
	if diverged && rapid.IntRange(0, 3).Draw(t, "header") == 0 {
		if rapid.Bool().Draw(t, "deletion") {
			st.Deleted = !st.Deleted
		} else {
			st.Diverged = tm.Draw(t, "diverged")
		}
	}
}

func v2(c uint64) concord.Version { return concord.MustVersion(concord.Dot{Actor: 2, Counter: c}) }

// An encoding that resumes from the one before (KeepEncoding) is the
// whole encoding of the record, byte for byte, whatever its views became
// in between, other records encoded meanwhile or not; the record decodes
// from it as it is.
func TestResumedEncodingIsTheWholeOne(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := genRealistic(t)
		st.Rev = rapid.Uint64Range(0, 1<<40).Draw(t, "rev")
		if rapid.IntRange(0, 4).Draw(t, "wide") == 0 { // over 64 names: sets of more than one word
			for i := range 70 {
				f := fmt.Sprintf("w%02d", i)
				st.Fields[f] = int64(i)
				st.Units.Set(f, &state.Unit{Version: v2(uint64(i + 1))})
			}
		}
		st.KeepEncoding()
		if _, err := state.Encode(st); err != nil {
			t.Fatal(err)
		}
		st.Rev++
		changeViews(t, st, true)
		for range rapid.IntRange(0, 2).Draw(t, "others") {
			if _, err := state.Encode(genRealistic(t)); err != nil { // another name table in the pool's encoders
				t.Fatal(err)
			}
		}
		again := rapid.Bool().Draw(t, "keep again")
		if again {
			st.KeepEncoding()
		}
		got, err := state.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		cp := *st
		cp.Rev++
		whole, err := state.EncodeState(nil, &cp)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, whole) {
			t.Fatalf("resumed encoding of %d bytes differs from the whole one of %d", len(got.Data), len(whole))
		}
		got.Rev++ // as the store returns it
		back, err := state.Decode(st.Key, got)
		if err != nil {
			t.Fatal(err)
		}
		want := cp
		if diff := cmp.Diff(&want, back, stateCmp); diff != "" {
			t.Fatalf("decoded (-want +got):\n%s", diff)
		}
		if again { // kept from a resumed encoding: resumes as well
			st.Rev++
			changeViews(t, st, false)
			got, err := state.Encode(st)
			if err != nil {
				t.Fatal(err)
			}
			cp := *st
			cp.Rev++
			if whole, _ := state.EncodeState(nil, &cp); !bytes.Equal(got.Data, whole) {
				t.Fatal("a second resumed encoding differs from the whole one")
			}
		}
	})
}

// keptSample returns state.Sample("k", ...) encoded once with a resume
// point kept.
func keptSample(t *testing.T) *state.Record {
	t.Helper()
	st := state.Sample("k", false, false)
	st.KeepEncoding()
	if _, err := state.Encode(st); err != nil {
		t.Fatal(err)
	}
	return st
}

// With Strict set, an encoding resumed over a record whose unit changed in
// place (the caller broke KeepEncoding's promise) panics rather than store
// the old unit.
func TestStrictCatchesAChangeBeyondTheViews(t *testing.T) {
	st := keptSample(t)
	st.Units.Value("name").Winner = "b"
	old := state.Strict
	state.Strict = true
	defer func() { state.Strict = old }()
	defer func() {
		if r := recover(); r == nil || !bytes.Contains([]byte(r.(string)), []byte(`record "k"`)) {
			t.Fatalf("recovered %v; want a panic naming the record", r)
		}
	}()
	_, _ = state.Encode(st)
	t.Fatal("no panic")
}

// A resume point serves once: the encoding after the next one is whole.
func TestResumePointServesOnce(t *testing.T) {
	st := keptSample(t)
	if _, err := state.Encode(st); err != nil {
		t.Fatal(err)
	}
	st.Fields["name"] = "Grace" // changed, as a new cycle would, without KeepEncoding
	st.Units.Value("name").Version = v2(9)
	got, err := state.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	got.Rev++ // as the store returns it
	back, err := state.Decode("k", got)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fields["name"] != "Grace" || !slices.Equal(back.Units.Value("name").Version.Dots(), v2(9).Dots()) {
		t.Fatalf("decoded %v, %v: an old resume point was used", back.Fields["name"], back.Units.Value("name").Version)
	}
}

// A resumed encoding of a record with sealed values keeps the values as
// the first encoding sealed them (sealing is not deterministic, so the
// bytes are not a whole encoding's), and decodes to the record with its
// views as they became; the canary stays sealed.
func TestResumedEncodingOfSealedValues(t *testing.T) {
	c := codec(t, keyRing(t, "k1", "k1"))
	st := canaryState("r")
	st.KeepEncoding()
	if _, err := c.Encode(st); err != nil {
		t.Fatal(err)
	}
	st.Rev++
	v := st.Systems["a"]
	v.Tag, v.Sent = "8", nil
	v.Units.Set("ssn", state.Copy{Hash: 77, Version: v2(3)})
	got, err := c.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "a resumed encoding", got.Data)
	got.Rev++
	back, err := c.Decode("r", got)
	if err != nil {
		t.Fatal(err)
	}
	want := *st
	want.Rev++
	if diff := cmp.Diff(&want, back, stateCmp); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
}
