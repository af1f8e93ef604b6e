package storetest

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/sync/store"
)

// longKey returns a key of exactly n bytes that does not compress (a
// store that compresses keys must still index the longest one): random
// runes of one to four bytes, valid UTF-8, without a NUL byte.
func longKey(r *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		c := rune(1 + r.IntN(0x10FFFF-1))
		if !utf8.ValidRune(c) || b.Len()+utf8.RuneLen(c) > n {
			c = rune('a' + r.IntN(26))
		}
		b.WriteRune(c)
	}
	return b.String()
}

// checkLongKeys: a store holds states whose keys are as long as a record's
// may be (concord.MaxKeyBytes), and indexes dead letters by keys of any
// bytes that long. A key it cannot hold would fail every commit of the
// pipeline that read the record.
func checkLongKeys(t *testing.T, s store.Store, _ *clock) {
	r := rand.New(rand.NewPCG(1, 2))
	var keys []string
	for range 3 {
		keys = append(keys, longKey(r, concord.MaxKeyBytes))
	}
	slices.Sort(keys)
	var states []store.State
	for i, k := range keys {
		states = append(states, State(k, i != 1, i == 2))
	}
	commit(t, s, &store.Commit{States: states})
	if got := load(t, s, keys...); len(got) != len(keys) {
		t.Fatalf("Load of %d long keys = %d states", len(keys), len(got))
	}
	if got, err := s.Keys(ctx, "", 10); err != nil || !slices.Equal(got, keys) {
		t.Fatalf("Keys = %d keys, %v; want the %d long ones", len(got), err, len(keys))
	}
	if got, err := s.Pending(ctx, 10); err != nil || !slices.Equal(got, []string{keys[0], keys[2]}) {
		t.Fatalf("Pending = %d keys, %v; want 2", len(got), err)
	}
	// Dead letters: any bytes, NUL and invalid UTF-8 included.
	raw := make([]byte, concord.MaxKeyBytes)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	letterKey := string(raw)
	commit(t, s, &store.Commit{DeadLetters: []store.DeadLetter{
		{System: "a", Key: letterKey, Class: "invalid", Data: Data("long", 1)},
		{System: "a", Key: keys[0], Class: "invalid", Data: Data("long", 2)},
	}})
	for _, k := range []string{letterKey, keys[0]} {
		if got, err := s.DeadLettersOf(ctx, []string{k}); err != nil || len(got) != 1 {
			t.Fatalf("DeadLettersOf(a key of %d bytes) = %d letters, %v; want 1", len(k), len(got), err)
		}
	}
}

// checkCursorBytes: cursors are the connectors' business, any bytes; the
// store returns them byte for byte. One it could not store would fail
// every commit of the pipeline.
func checkCursorBytes(t *testing.T, s store.Store, _ *clock) {
	curs := map[concord.SystemID]connector.Cursor{
		"nul":     "a\x00b",
		"binary":  "\xff\xfe\x00\x01",
		"escaped": "\x01b64:AAAA", // what a store might use to escape others
		"text":    "page=2&after=é",
		"long":    connector.Cursor(strings.Repeat("c", 64<<10)),
	}
	commit(t, s, &store.Commit{Cursors: curs})
	for sys, want := range curs {
		if got, err := s.Cursor(ctx, sys); err != nil || got != want {
			t.Errorf("Cursor(%s) = %q (%d bytes), %v; want %q (%d bytes)", sys, got[:min(len(got), 32)], len(got), err, want[:min(len(want), 32)], len(want))
		}
	}
}
