package state_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

var cmpRecord = cmp.Options{
	cmpopts.IgnoreUnexported(state.Record{}), // a decoded record's cache of its highest counters
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b map[string]concord.Value) bool { return (a == nil) == (b == nil) && concord.EqualValues(a, b) }),
}

// Every flipped bit of a format 3 state or dead letter is refused: by the
// checksum, or (in the header) as foreign or newer data. Never changed data.
func TestFormat3ChecksumFindsEveryFlippedBit(t *testing.T) {
	st, err := state.EncodeState(nil, state.Sample("k", true, true))
	if err != nil {
		t.Fatal(err)
	}
	dl, err := state.EncodeDeadLetter(nil, state.DeadLetter{System: "a", Key: "k", Inbound: true, Reason: "bad",
		Record: concord.Record{Key: "k", Fields: map[string]concord.Value{"n": "CANARY"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		b      []byte
		decode func([]byte) error
	}{
		"state":       {st, func(b []byte) error { _, err := state.DecodeState(b); return err }},
		"dead letter": {dl, func(b []byte) error { _, err := state.DecodeDeadLetter(b); return err }},
	} {
		if err := c.decode(c.b); err != nil {
			t.Fatalf("%s: undamaged: %v", name, err)
		}
		for i := range len(c.b) * 8 {
			d := append([]byte(nil), c.b...)
			d[i/8] ^= 1 << (i % 8)
			err := c.decode(d)
			if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrNewerFormat) {
				t.Fatalf("%s: bit %d flipped: %v; want an error", name, i, err)
			}
			if i/8 >= 4 && !errors.Is(err, state.ErrChecksum) {
				t.Fatalf("%s: bit %d flipped (past the header): %v; want ErrChecksum", name, i, err)
			}
		}
		// Truncated at every length.
		for n := range len(c.b) {
			if err := c.decode(c.b[:n]); err == nil {
				t.Fatalf("%s: truncated to %d bytes: decoded", name, n)
			}
		}
	}
}

// Format 2 (no checksum) still decodes, to the same state.
func TestFormat2StillDecodes(t *testing.T) {
	want := state.Sample("k", false, true)
	b, err := state.Codec{}.EncodeLegacyState(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	v2 := append([]byte(nil), b[:len(b)-4]...)
	v2[3] = 2
	got, err := state.DecodeState(v2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpRecord); diff != "" {
		t.Fatalf("format 2 state (-want +got):\n%s", diff)
	}
	// A format 2 encoding with a checksum appended is trailing garbage.
	if _, err := state.DecodeState(append(v2, b[len(b)-4:]...)); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("format 2 with 4 trailing bytes: %v; want ErrCorrupt", err)
	}
}

// Format 3 keeps a dead letter's per-field modification times.
func TestDeadLetterKeepsFieldModified(t *testing.T) {
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	d := state.DeadLetter{System: "a", Key: "k", Record: concord.Record{Key: "k", Fields: map[string]concord.Value{"x": 1, "y": 2},
		FieldModified: map[string]time.Time{"x": at, "y": at.Add(time.Hour)}}}
	b, err := state.EncodeDeadLetter(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := state.DecodeDeadLetter(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Record.FieldModified, got.Record.FieldModified, cmpRecord); diff != "" {
		t.Fatalf("FieldModified (-want +got):\n%s", diff)
	}
}

// Decode checks the store's key and revision against the encoded ones.
func TestDecodeChecksKeyAndRevision(t *testing.T) {
	st := state.Sample("k", false, false)
	ss, err := state.Encode(st) // encoded at Rev 1, the revision it will have
	if err != nil {
		t.Fatal(err)
	}
	ss.Rev = 1
	if _, err := state.Decode("k", ss); err != nil {
		t.Fatalf("Decode of a well stored state: %v", err)
	}
	for name, c := range map[string]struct {
		key string
		ss  store.State
	}{
		"another key asked":  {"other", ss},
		"stored under other": {"k", store.State{Key: "other", Rev: 1, Data: ss.Data}},
		"revision ahead":     {"k", store.State{Key: "k", Rev: 2, Data: ss.Data}},
		"revision behind":    {"k", store.State{Key: "k", Rev: 0, Data: ss.Data}},
		"no data":            {"k", store.State{Key: "k", Rev: 1}},
	} {
		if _, err := state.Decode(c.key, c.ss); !errors.Is(err, store.ErrDamaged) {
			t.Errorf("%s: %v; want store.ErrDamaged", name, err)
		}
	}
}
