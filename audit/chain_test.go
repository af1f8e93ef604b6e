package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// chainEvent is event i of a test log: kinds, keys and values vary, and
// some values are awkward (quotes, line breaks, non-ASCII, big numbers).
func chainEvent(i int) audit.Event {
	kinds := []audit.Kind{audit.EditObserved, audit.MergeDecided, audit.WriteAttempted, audit.WriteSucceeded, audit.WriteFailed}
	ev := audit.Event{
		Time: t0.Add(time.Duration(i) * time.Second), Kind: kinds[i%len(kinds)], Cycle: uint64(i/7 + 1),
		System: concord.SystemID([]string{"crm", "erp", "portal"}[i%3]), Key: fmt.Sprintf("cust-%d", i%97),
		Unit: "email", Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: uint64(i + 1)}),
	}
	switch i % 4 {
	case 0:
		ev.To = map[string]concord.Value{"email": fmt.Sprintf("user%d@example.com", i)}
	case 1:
		ev.From = map[string]concord.Value{"note": "line one\nline \"two\" — Zürich <b>&"}
		ev.To = map[string]concord.Value{"credit": 1.5, "big": uint64(math.MaxUint64), "n": i}
	case 2:
		ev.Error, ev.ErrorClass = "503 Service Unavailable", "transient"
	case 3:
		ev.Fields = []string{"email", "phone"}
		ev.Actors = map[concord.Actor]string{1: "portal"}
	}
	return ev
}

func TestAppendLinksEntries(t *testing.T) {
	c := audit.NewChain(audit.Head{})
	var events []audit.Event
	for i := range 5 {
		ev := chainEvent(i)
		ev.Seq = 999 // ignored: the chain numbers its entries
		events = append(events, ev)
	}
	entries, err := c.Append(events[:2]...)
	require.NoError(t, err)
	more, err := c.Append(events[2:]...)
	require.NoError(t, err)
	entries = append(entries, more...)
	var prev [32]byte
	for i, e := range entries {
		require.Equal(t, uint64(i+1), e.Seq, "seq")
		require.Equal(t, prev, e.Prev, "entry %d prev", e.Seq)
		require.Equal(t, manualHash(e.Seq, e.Prev, e.EventJSON), e.Hash, "entry %d hash", e.Seq)
		require.Equal(t, e.Seq, e.Event.Seq, "the entry's event carries its seq")
		require.NotContains(t, string(e.EventJSON), `"seq"`, "the event bytes leave seq to the entry")
		prev = e.Hash
	}
	require.Equal(t, entries[4].Head(), c.Head())
	require.Equal(t, uint64(999), events[0].Seq, "Append left its input alone")

	// A chain continued from a head gives the same entries.
	c2 := audit.NewChain(entries[1].Head())
	again, err := c2.Append(events[2:]...)
	require.NoError(t, err)
	for i := range again {
		require.Equal(t, entries[2+i].Hash, again[i].Hash)
	}
}

// manualHash is EntryHash as the package doc describes it, written out.
func manualHash(seq uint64, prev [32]byte, event []byte) [32]byte {
	var b []byte
	b = append(b, "concord.audit.entry.v1"...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(event)))
	b = append(b, event...)
	return sha256.Sum256(b)
}

// TestEntryHashPinned pins the hash of one entry: a change to the
// encoding breaks every stored log and must be a new version.
func TestEntryHashPinned(t *testing.T) {
	h := audit.EntryHash(1, [32]byte{}, []byte(`{"kind":"edit.observed"}`))
	require.Equal(t, manualHash(1, [32]byte{}, []byte(`{"kind":"edit.observed"}`)), h)
	// Computed apart from Go (Python's hashlib, on the bytes the package
	// doc lists).
	require.Equal(t, "7934394c867c9ce5baeea51f5621666224d96180ee57e3d53d2526b193989e48", hex.EncodeToString(h[:]), "pinned hash")
}

func TestAppendAllOrNothing(t *testing.T) {
	c := audit.NewChain(audit.Head{Seq: 7, Hash: [32]byte{1}})
	bad := chainEvent(0)
	bad.To = map[string]concord.Value{"x": math.NaN()}
	entries, err := c.Append(chainEvent(1), bad, chainEvent(2))
	require.Nil(t, entries)
	var ee *audit.EventError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Index)
	require.Equal(t, audit.Head{Seq: 7, Hash: [32]byte{1}}, c.Head(), "a failed Append leaves the chain alone")

	full := audit.NewChain(audit.Head{Seq: math.MaxUint64})
	_, err = full.Append(chainEvent(0))
	require.ErrorIs(t, err, audit.ErrSeqOverflow)
}

func TestEncodeDecodeEntry(t *testing.T) {
	entries, err := audit.NewChain(audit.Head{}).Append(sampleEvents()...)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := audit.EncodeEntry(e)
		require.NoError(t, err)
		got, err := audit.DecodeEntry(b)
		require.NoError(t, err)
		require.Equal(t, e.Seq, got.Seq)
		require.Equal(t, e.Prev, got.Prev)
		require.Equal(t, e.Hash, got.Hash)
		require.Equal(t, e.EventJSON, got.EventJSON)
		require.Equal(t, e.Seq, got.Event.Seq)
		requireEvents(t, []audit.Event{withoutSeq(got.Event)}, []audit.Event{withoutSeq(e.Event)})
		// The stored form is also the event's JSON, unchanged.
		require.Equal(t, fmt.Sprintf(`{"seq":%d,"prev":"%x","hash":"%x","event":%s}`, e.Seq, e.Prev, e.Hash, e.EventJSON), string(b))
	}
	// Numbers come back as json.Number, as from ReadJSONLines.
	got, err := audit.DecodeEntry(mustEncode(t, entries[2]))
	require.NoError(t, err)
	require.Equal(t, json.Number("18446744073709551615"), got.Event.To["big"])
}

func withoutSeq(ev audit.Event) audit.Event { ev.Seq = 0; return ev }

func mustEncode(t testing.TB, e audit.Entry) []byte {
	t.Helper()
	b, err := audit.EncodeEntry(e)
	require.NoError(t, err)
	return b
}

func TestEncodeEntryRefuses(t *testing.T) {
	entries, err := audit.NewChain(audit.Head{}).Append(chainEvent(1))
	require.NoError(t, err)
	good := entries[0]
	rehash := func(e audit.Entry) audit.Entry { e.Hash = audit.EntryHash(e.Seq, e.Prev, e.EventJSON); return e }
	tests := map[string]audit.Entry{
		"seq 0":          rehash(audit.Entry{Seq: 0, EventJSON: good.EventJSON}),
		"wrong hash":     func() audit.Entry { e := good; e.Hash[0] ^= 1; return e }(),
		"not an object":  rehash(audit.Entry{Seq: 1, EventJSON: []byte(`[1]`)}),
		"line break":     rehash(audit.Entry{Seq: 1, EventJSON: []byte("{\"kind\":\n\"x\"}")}),
		"invalid JSON":   rehash(audit.Entry{Seq: 1, EventJSON: []byte(`{"kind":`)}),
		"empty event":    rehash(audit.Entry{Seq: 1}),
		"trailing bytes": rehash(audit.Entry{Seq: 1, EventJSON: []byte(`{"kind":"x"} {}`)}),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := audit.EncodeEntry(e)
			require.ErrorIs(t, err, audit.ErrMalformed)
		})
	}
}

// TestDecodeEntryStrict: any byte of the stored form that differs from
// what EncodeEntry writes is refused, so that one entry has one form.
func TestDecodeEntryStrict(t *testing.T) {
	entries, err := audit.NewChain(audit.Head{}).Append(chainEvent(1))
	require.NoError(t, err)
	b := string(mustEncode(t, entries[0]))
	prev := strings.Repeat("0", 64)
	hash := hex.EncodeToString(entries[0].Hash[:])
	ev := string(entries[0].EventJSON)
	tests := map[string]string{
		"empty":             "",
		"not JSON":          "hello",
		"space after brace": strings.Replace(b, `{"seq"`, `{ "seq"`, 1),
		"leading zero":      strings.Replace(b, `"seq":1`, `"seq":01`, 1),
		"seq 0":             strings.Replace(b, `"seq":1`, `"seq":0`, 1),
		"seq too big":       strings.Replace(b, `"seq":1`, `"seq":18446744073709551616`, 1),
		"negative seq":      strings.Replace(b, `"seq":1`, `"seq":-1`, 1),
		"upper-case hex":    strings.Replace(b, hash, strings.ToUpper(hash), 1),
		"short prev":        strings.Replace(b, prev, prev[:62], 1),
		"keys swapped":      fmt.Sprintf(`{"seq":1,"hash":"%s","prev":"%s","event":%s}`, hash, prev, ev),
		"extra key":         strings.Replace(b, `,"event":`, `,"x":1,"event":`, 1),
		"trailing newline":  b + "\n",
		"trailing space":    b + " ",
		"event not object":  fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":"x"}`, prev, hash),
		"event cut":         b[:len(b)-3] + "}",
		"event no kind":     fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":{"key":"k"}}`, prev, hash),
		"event other seq":   fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":{"seq":2,"kind":"k"}}`, prev, hash),
		"event bad version": fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":{"kind":"k","version":"{x}"}}`, prev, hash),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := audit.DecodeEntry([]byte(in))
			require.ErrorIs(t, err, audit.ErrMalformed)
		})
	}
	// The same seq in the event is accepted.
	_, err = audit.DecodeEntry([]byte(fmt.Sprintf(`{"seq":1,"prev":"%s","hash":"%s","event":{"seq":1,"kind":"k"}}`, prev, hash)))
	require.NoError(t, err)
}

// FuzzDecodeEntry: DecodeEntry never panics, and what it accepts is the
// one form of an entry: encoding it again gives the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	entries, err := audit.NewChain(audit.Head{}).Append(append(sampleEvents(), chainEvent(1), chainEvent(3))...)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, _ := audit.EncodeEntry(e)
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(bytes.Replace(b, []byte(`"seq":`), []byte(`"seq":0`), 1))
	}
	f.Add([]byte(`{"seq":1,"prev":"` + strings.Repeat("0", 64) + `","hash":"` + strings.Repeat("a", 64) + `","event":{"kind":"k"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, audit.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if e.Seq == 0 || e.Event.Kind == "" || e.Event.Seq != e.Seq {
			t.Fatalf("accepted %+v", e)
		}
		e.Hash = audit.EntryHash(e.Seq, e.Prev, e.EventJSON)
		again, err := audit.EncodeEntry(e)
		if err != nil {
			t.Fatalf("EncodeEntry of a decoded entry: %v", err)
		}
		// Only the hash may differ (DecodeEntry does not check it).
		if len(again) != len(b) || !bytes.Equal(again[:len(`{"seq":`)], b[:len(`{"seq":`)]) {
			t.Fatalf("re-encoded\n%s\nwas\n%s", again, b)
		}
		i := bytes.Index(b, []byte(`","hash":"`)) + len(`","hash":"`)
		if !bytes.Equal(again[:i], b[:i]) || !bytes.Equal(again[i+64:], b[i+64:]) {
			t.Fatalf("re-encoded\n%s\nwas\n%s", again, b)
		}
	})
}
