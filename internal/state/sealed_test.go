package state_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/seal"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

const canary = "CANARY-ssn-123-45-6789"

var testHashKey = bytes.Repeat([]byte{0xa5}, seal.MinHashKeySize)

// keyRing returns a ring sealing under current and holding ids; key bytes
// are derived from the ID, so that two rings agree on a key's bytes.
func keyRing(t testing.TB, current seal.KeyID, ids ...seal.KeyID) *seal.KeyRing {
	t.Helper()
	keys := map[seal.KeyID][]byte{}
	for _, id := range ids {
		k := make([]byte, seal.KeySize)
		copy(k, "key:"+id)
		keys[id] = k
	}
	r, err := seal.NewKeyRing(current, keys, seal.WithHashKey(testHashKey))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sensitive(fields ...string) func(string) bool {
	return func(f string) bool {
		for _, s := range fields {
			if f == s {
				return true
			}
		}
		return false
	}
}

func codec(t testing.TB, r seal.Sealer) state.Codec {
	return state.Codec{Sealer: r, Sensitive: sensitive("ssn", "iban", "secrets", "tax_id"), Context: "test-pipeline"}
}

// canaryState holds the canary in every place a state holds values of a
// sensitive field: canonical, previous, a hold's candidates and base, and
// nested inside a sensitive map.
func canaryState(key string) *state.Record {
	st := state.Sample(key, true, true)
	st.Fields["ssn"] = canary
	st.Fields["secrets"] = map[string]any{"list": []any{canary, int64(7)}, "inner": canary}
	st.Units.Set("ssn", &state.Unit{Version: v(1, 4), Winner: "a", Rule: "fast-forward",
		Prev: &state.Prev{Values: state.Table[concord.Value]{{Name: "ssn", Value: canary + "-old"}}, Version: v(1, 3)}})
	st.Units.Value("phone").Hold.Candidates[0].Values["ssn"] = canary
	st.Units.Value("phone").Hold.Candidates[1].Values["ssn"] = []byte(canary)
	st.Units.Value("phone").Hold.Base["ssn"] = canary
	return st
}

func canaryLetter(key string) state.DeadLetter {
	return state.DeadLetter{System: "erp", Key: key, Inbound: true, Reason: "validation failed", Class: "invalid",
		Record:      concord.Record{Key: "E-1", Fields: map[string]concord.Value{"tax_id": canary, "name": "Ada"}, Tag: "9"},
		Transformed: concord.Record{Key: key, Fields: map[string]concord.Value{"ssn": canary, "name": "Ada"}},
		When:        time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
}

func v(dots ...uint64) concord.Version {
	var ds []concord.Dot
	for i := 0; i+1 < len(dots); i += 2 {
		ds = append(ds, concord.Dot{Actor: concord.Actor(dots[i]), Counter: dots[i+1]})
	}
	return concord.MustVersion(ds...)
}

// assertNoCanary fails if b holds the canary or any 6-byte piece of it.
func assertNoCanary(t *testing.T, what string, b []byte) {
	t.Helper()
	for i := 0; i+6 <= len(canary); i++ {
		if p := canary[i : i+6]; bytes.Contains(b, []byte(p)) {
			t.Fatalf("%s (%d bytes) holds %q of the canary at %d", what, len(b), p, bytes.Index(b, []byte(p)))
		}
	}
}

// The canary appears nowhere in the encodings, nor in a store's bytes: a
// bolt file written through Commit.Apply, dumped whole.
func TestCanaryIsNowhereAtRest(t *testing.T) {
	c := codec(t, keyRing(t, "k1", "k1"))
	st, dl := canaryState("rec-1"), canaryLetter("rec-1")

	// Check that the plain encodings do hold it, so that the test can fail.
	plain, _ := state.EncodeState(nil, st)
	plainDL, _ := state.EncodeDeadLetter(nil, dl)
	if !bytes.Contains(plain, []byte(canary)) || !bytes.Contains(plainDL, []byte(canary)) {
		t.Fatal("the unsealed encodings lack the canary: the test proves nothing")
	}

	sb, err := c.EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "sealed state", sb)
	db, err := c.EncodeDeadLetter(nil, dl)
	if err != nil {
		t.Fatal(err)
	}
	assertNoCanary(t, "sealed dead letter", db)

	// They decode to what was encoded.
	got, err := c.DecodeState(sb)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got, stateCmp); diff != "" {
		t.Fatalf("sealed state round trip (-want +got):\n%s", diff)
	}
	gotDL, err := c.DecodeDeadLetter(db)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dl, gotDL, stateCmp); diff != "" {
		t.Fatalf("sealed dead letter round trip (-want +got):\n%s", diff)
	}

	// Through a store: memory, and bolt dumped byte for byte.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "concord.db")
	bs, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory()
	for name, s := range map[string]store.Store{"memory": mem, "bolt": bs} {
		rec := canaryState("rec-1")
		commit := &state.Commit{Codec: c, States: []*state.Record{rec}, DeadLetters: []state.DeadLetter{canaryLetter("rec-1")}}
		if err := commit.Apply(ctx, s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw, err := s.Load(ctx, []string{"rec-1"})
		if err != nil {
			t.Fatal(err)
		}
		assertNoCanary(t, name+" state", raw["rec-1"].Data)
		dls, err := s.DeadLetters(ctx)
		if err != nil || len(dls) != 1 {
			t.Fatalf("%s: dead letters %v, %v", name, dls, err)
		}
		assertNoCanary(t, name+" dead letter", dls[0].Data)
		loaded, err := c.Load(ctx, s, []string{"rec-1"})
		if err != nil {
			t.Fatal(err)
		}
		if loaded["rec-1"].Fields["ssn"] != canary {
			t.Fatalf("%s: loaded ssn %v", name, loaded["rec-1"].Fields["ssn"])
		}
		letters, err := c.LoadDeadLetters(ctx, s)
		if err != nil || letters[0].Transformed.Fields["ssn"] != canary {
			t.Fatalf("%s: loaded dead letters %v, %v", name, letters, err)
		}
		// The zero codec cannot read them, and says so without calling
		// them damaged.
		if _, err := state.Load(ctx, s, []string{"rec-1"}); !errors.Is(err, state.ErrNoSealer) || errors.Is(err, store.ErrDamaged) {
			t.Fatalf("%s: zero codec Load = %v; want ErrNoSealer, not ErrDamaged", name, err)
		}
	}
	if err := bs.Close(); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dump, []byte("rec-1")) {
		t.Fatal("the bolt file lacks the record key: the dump proves nothing")
	}
	assertNoCanary(t, "bolt file", dump)
}

// Sealed states and dead letters round-trip, whatever fields are
// sensitive; re-encoding what was decoded decodes the same again.
func TestSealedRoundTrip(t *testing.T) {
	r := keyRing(t, "k1", "k1")
	rapid.Check(t, func(t *rapid.T) {
		prefix := rapid.StringN(0, 1, -1).Draw(t, "sensitive prefix")
		c := state.Codec{Sealer: r, Sensitive: func(f string) bool { return strings.HasPrefix(f, prefix) }, Context: "ctx"}
		st := genState(t)
		got, b := recordRoundTrip(t, c, st)
		if diff := cmp.Diff(st, got, stateCmp); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
		again, err := c.EncodeState(nil, got)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(b) || again[3] != b[3] {
			t.Fatalf("re-encoding: %d bytes, format %d; first %d bytes, format %d", len(again), again[3], len(b), b[3])
		}
		dl := state.DeadLetter{System: "p", Key: st.Key, Record: concord.Record{Key: "x", Fields: st.Fields}, Transformed: concord.Record{Fields: genValues().Draw(t, "tf")}}
		db, err := c.EncodeDeadLetter(nil, dl)
		if err != nil {
			t.Fatal(err)
		}
		gotDL, err := c.DecodeDeadLetter(db)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(dl, gotDL, stateCmp); diff != "" {
			t.Fatalf("dead letter round trip (-want +got):\n%s", diff)
		}
	})
}

// With a Sealer and no sensitive field, the encoding is the zero codec's,
// byte for byte (in format 6; format 3 for the legacy encoder): sealing
// changes nothing until it seals.
func TestNothingSensitiveIsByteForByte(t *testing.T) {
	r := keyRing(t, "k1", "k1")
	for name, c := range map[string]state.Codec{
		"nil Sensitive":  {Sealer: r, Context: "ctx"},
		"none sensitive": {Sealer: r, Sensitive: func(string) bool { return false }, Context: "ctx"},
	} {
		rapid.Check(t, func(t *rapid.T) {
			st := genState(t)
			want, _ := state.EncodeState(nil, st)
			got, err := c.EncodeState(nil, st)
			if err != nil || !bytes.Equal(got, want) || got[3] != state.CompactVersion {
				t.Fatalf("%s: %v\n got %x\nwant %x", name, err, got, want)
			}
			want, _ = state.Codec{}.EncodeLegacyState(nil, st)
			got, err = c.EncodeLegacyState(nil, st)
			if err != nil || !bytes.Equal(got, want) || got[3] != state.Version {
				t.Fatalf("%s, legacy: %v\n got %x\nwant %x", name, err, got, want)
			}
			dl := state.DeadLetter{Key: st.Key, Record: concord.Record{Fields: st.Fields}}
			wantDL, _ := state.EncodeDeadLetter(nil, dl)
			gotDL, err := c.EncodeDeadLetter(nil, dl)
			if err != nil || !bytes.Equal(gotDL, wantDL) {
				t.Fatalf("%s: dead letter differs", name)
			}
		})
	}
	// A sealed encoding is format 6; 4 for the legacy encoder.
	b, _ := codec(t, r).EncodeState(nil, canaryState("k"))
	if b[3] != state.CompactVersion {
		t.Fatalf("sealed encoding in format %d; want %d", b[3], state.CompactVersion)
	}
	b, _ = codec(t, r).EncodeLegacyState(nil, canaryState("k"))
	if b[3] != state.SealedVersion {
		t.Fatalf("legacy sealed encoding in format %d; want %d", b[3], state.SealedVersion)
	}
}

// recorder wraps a Sealer and keeps what it sealed, in order.
type recorder struct {
	seal.Sealer
	mu     sync.Mutex
	sealed [][]byte
}

func (r *recorder) Seal(p, aad []byte) ([]byte, error) {
	s, err := r.Sealer.Seal(p, aad)
	r.mu.Lock()
	r.sealed = append(r.sealed, s)
	r.mu.Unlock()
	return s, err
}

// reCRC recomputes the checksum of a format 3 or 4 encoding, as someone
// who changes stored bytes on purpose would.
func reCRC(b []byte) []byte {
	n := len(b) - 4
	binary.BigEndian.PutUint32(b[n:], crc32.Checksum(b[:n], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// A sealed value moved to another record or another field (checksum
// recomputed) does not open: the error names the record and the field,
// wraps seal.ErrTampered, and is not damage.
func TestMovedSealedValueIsRefused(t *testing.T) {
	rec := &recorder{Sealer: keyRing(t, "k1", "k1")}
	c := codec(t, rec)
	mk := func(key, ssn, iban string) ([]byte, []byte, []byte) {
		rec.sealed = nil
		b, err := c.EncodeState(nil, &state.Record{Key: key, Fields: map[string]concord.Value{"iban": iban, "name": "x", "ssn": ssn}})
		if err != nil || len(rec.sealed) != 2 {
			t.Fatalf("encoding: %v, %d sealed", err, len(rec.sealed))
		}
		return b, rec.sealed[0], rec.sealed[1] // sorted: iban, ssn
	}
	r1, iban1, ssn1 := mk("r1", "123-45-6789", "DE000000001")
	r2, _, ssn2 := mk("r2", "987-65-4321", "DE000000002")
	swap := func(b, from, to []byte) []byte {
		i := bytes.Index(b, from)
		if i < 0 || len(from) != len(to) {
			t.Fatal("sealed value not found, or of another length")
		}
		out := bytes.Clone(b)
		copy(out[i:], to)
		return reCRC(out)
	}
	for name, tc := range map[string]struct {
		b           []byte
		key, field  string
		codecChange func(*state.Codec)
	}{
		"ssn of r2 into r1":          {swap(r1, ssn1, ssn2), "r1", "ssn", nil},
		"ssn of r1 into r2":          {swap(r2, ssn2, ssn1), "r2", "ssn", nil},
		"iban into ssn, same record": {swap(swap(r1, ssn1, bytes.Repeat([]byte{0}, len(ssn1))), iban1, ssn1), "r1", "iban", nil},
		"other context":              {r1, "r1", "iban", func(c *state.Codec) { c.Context = "other-pipeline" }},
	} {
		cc := c
		if tc.codecChange != nil {
			tc.codecChange(&cc)
		}
		_, err := cc.DecodeState(tc.b)
		var se *state.SealError
		if !errors.Is(err, seal.ErrTampered) || !errors.As(err, &se) || se.Key != tc.key || se.Field != tc.field {
			t.Errorf("%s: %v; want a SealError for record %q field %q wrapping seal.ErrTampered", name, err, tc.key, tc.field)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `"`+tc.key+`"`) || !strings.Contains(msg, `"`+tc.field+`"`) {
			t.Errorf("%s: message %q does not name the record and field", name, msg)
		}
		if _, err := cc.Decode(tc.key, store.State{Key: tc.key, Data: tc.b}); errors.Is(err, store.ErrDamaged) || !errors.Is(err, seal.ErrTampered) {
			t.Errorf("%s: Decode = %v; want seal.ErrTampered, not store.ErrDamaged", name, err)
		}
	}
	// Unmoved, both decode.
	for _, b := range [][]byte{r1, r2} {
		if _, err := c.DecodeState(b); err != nil {
			t.Fatal(err)
		}
	}
}

// Rotation: sealed under k1; a ring {k1, k2 current} opens it and Reseal
// moves it to k2; a ring {k2} alone then opens the result, and refuses the
// original naming k1.
func TestRotationAndReseal(t *testing.T) {
	ctx := context.Background()
	old := codec(t, keyRing(t, "k1", "k1"))
	both := codec(t, keyRing(t, "k2", "k1", "k2"))
	onlyNew := codec(t, keyRing(t, "k2", "k2"))

	st := canaryState("rec-1")
	sb, err := old.EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	db, err := old.EncodeDeadLetter(nil, canaryLetter("rec-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := both.DecodeState(sb); err != nil {
		t.Fatalf("ring {k1, k2}: %v", err)
	}
	_, err = onlyNew.DecodeState(sb)
	var ke *seal.Error
	if !errors.Is(err, seal.ErrUnknownKey) || !errors.As(err, &ke) || ke.Key != "k1" || !strings.Contains(err.Error(), `"rec-1"`) {
		t.Fatalf("ring {k2} on a k1 state: %v; want seal.ErrUnknownKey naming k1 and the record", err)
	}
	if _, err := onlyNew.Decode("rec-1", store.State{Key: "rec-1", Rev: st.Rev, Data: sb}); errors.Is(err, store.ErrDamaged) {
		t.Fatalf("an unknown key is not damage: %v", err)
	}

	for name, data := range map[string][]byte{"state": sb, "dead letter": db} {
		out, changed, err := both.Reseal(data, "rec-1")
		if err != nil || !changed {
			t.Fatalf("%s: Reseal = %v, %v; want changed", name, changed, err)
		}
		assertNoCanary(t, name+" resealed", out)
		if _, _, err := onlyNew.Reseal(out, "rec-1"); err != nil {
			t.Fatalf("%s: ring {k2} on the resealed encoding: %v", name, err)
		}
		again, changed, err := both.Reseal(out, "rec-1")
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("%s: Reseal of a resealed encoding = changed %v, %v; want unchanged", name, changed, err)
		}
		if _, _, err := both.Reseal(data, "rec-2"); !errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("%s: Reseal for another key = %v; want ErrCorrupt", name, err)
		}
	}
	got, err := onlyNew.DecodeState(must(both.Reseal(sb, "rec-1")))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got, stateCmp); diff != "" {
		t.Fatalf("resealed state (-want +got):\n%s", diff)
	}

	// The pass over a store: ResealState and ResealLetter give what to
	// commit; after it, the ring {k2} alone loads everything.
	s := store.NewMemory()
	if err := (&state.Commit{Codec: old, States: []*state.Record{canaryState("rec-1"), canaryState("rec-2")},
		DeadLetters: []state.DeadLetter{canaryLetter("rec-1")}}).Apply(ctx, s); err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Load(ctx, []string{"rec-1", "rec-2"})
	letters, _ := s.DeadLetters(ctx)
	pass := &store.Commit{}
	for _, k := range []string{"rec-1", "rec-2"} {
		ss, changed, err := both.ResealState(k, stored[k])
		if err != nil || !changed {
			t.Fatalf("ResealState(%s) = %v, %v", k, changed, err)
		}
		pass.States = append(pass.States, ss)
	}
	for _, sd := range letters {
		nd, changed, err := both.ResealLetter(sd)
		if err != nil || !changed {
			t.Fatalf("ResealLetter = %v, %v", changed, err)
		}
		pass.DeadLetters = append(pass.DeadLetters, nd)
		pass.RemoveDeadLetters = append(pass.RemoveDeadLetters, sd.ID)
	}
	if err := s.Commit(ctx, pass); err != nil {
		t.Fatal(err)
	}
	loaded, err := onlyNew.Load(ctx, s, []string{"rec-1", "rec-2"})
	if err != nil || len(loaded) != 2 || loaded["rec-2"].Rev != 2 {
		t.Fatalf("after the pass, ring {k2}: %v, %v", loaded, err)
	}
	if dls, err := onlyNew.LoadDeadLetters(ctx, s); err != nil || len(dls) != 1 || dls[0].Transformed.Fields["ssn"] != canary {
		t.Fatalf("after the pass, ring {k2} dead letters: %v, %v", dls, err)
	}
	// A second pass finds nothing to do.
	stored, _ = s.Load(ctx, []string{"rec-1"})
	if _, changed, err := onlyNew.ResealState("rec-1", stored["rec-1"]); err != nil || changed {
		t.Fatalf("second pass: %v, %v", changed, err)
	}
	letters, _ = s.DeadLetters(ctx)
	if _, changed, err := onlyNew.ResealLetter(letters[0]); err != nil || changed {
		t.Fatalf("second pass, dead letter: %v, %v", changed, err)
	}
}

// Reseal also seals what was stored in the clear before a field became
// sensitive, and opens what was sealed before a field stopped being.
func TestResealFollowsSensitivity(t *testing.T) {
	c := codec(t, keyRing(t, "k1", "k1"))
	plain, err := state.EncodeState(nil, canaryState("r"))
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := c.Reseal(plain, "r")
	if err != nil || !changed || out[3] != state.CompactVersion {
		t.Fatalf("Reseal of a plain state = %v, %v", changed, err)
	}
	assertNoCanary(t, "resealed plain state", out)
	// A legacy (format 3) plain state is resealed into format 6.
	legacy, err := state.Codec{}.EncodeLegacyState(nil, canaryState("r"))
	if err != nil {
		t.Fatal(err)
	}
	lout, changed, err := c.Reseal(legacy, "r")
	if err != nil || !changed || lout[3] != state.CompactVersion {
		t.Fatalf("Reseal of a format 3 plain state = %v, %v", changed, err)
	}
	assertNoCanary(t, "resealed format 3 state", lout)
	if got, err := c.DecodeState(lout); err != nil || cmp.Diff(canaryState("r"), got, stateCmp) != "" {
		t.Fatalf("resealed format 3 state decodes to another state: %v", err)
	}

	loose := c
	loose.Sensitive = nil
	back, changed, err := loose.Reseal(out, "r")
	if err != nil || !changed || back[3] != state.CompactVersion || !bytes.Contains(back, []byte(canary)) {
		t.Fatalf("Reseal with nothing sensitive = %v, %v", changed, err)
	}
	// Nothing to do for a plain state without sensitive fields.
	if _, changed, err := loose.Reseal(back, "r"); err != nil || changed {
		t.Fatalf("Reseal with nothing to do = %v, %v", changed, err)
	}
	// A Sealer that cannot tell keys apart: every sealed value is sealed
	// again.
	opaque := c
	opaque.Sealer = struct{ seal.Sealer }{c.Sealer}
	if _, changed, err := opaque.Reseal(out, "r"); err != nil || !changed {
		t.Fatalf("Reseal with an opaque Sealer = %v, %v; want changed", changed, err)
	}
	if _, _, err := c.Reseal([]byte("XYZ\x03"), "r"); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("Reseal of foreign bytes = %v", err)
	}
}

// Every flipped bit of a sealed encoding is refused (the checksum). With
// the checksum recomputed, every flipped bit inside a sealed value is
// still refused: by authentication, or as malformed or of an unknown key.
func TestFlippedBitsInSealedValues(t *testing.T) {
	rec := &recorder{Sealer: keyRing(t, "k1", "k1")}
	c := codec(t, rec)
	b, err := c.EncodeState(nil, &state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": canary}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) * 8 {
		d := bytes.Clone(b)
		d[i/8] ^= 1 << (i % 8)
		if _, err := c.DecodeState(d); err == nil {
			t.Fatalf("bit %d flipped: decoded", i)
		}
	}
	blob := rec.sealed[0]
	at := bytes.Index(b, blob)
	for i := range len(blob) * 8 {
		d := bytes.Clone(b)
		d[at+i/8] ^= 1 << (i % 8)
		_, err := c.DecodeState(reCRC(d))
		var se *state.SealError
		if !errors.As(err, &se) || se.Field != "ssn" || se.Key != "r" {
			t.Fatalf("bit %d of the sealed value flipped: %v; want a SealError for r/ssn", i, err)
		}
		malformed := errors.Is(err, seal.ErrMalformed)
		if malformed != errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("bit %d: %v: ErrCorrupt exactly when malformed", i, err)
		}
		if !malformed && !errors.Is(err, seal.ErrTampered) && !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("bit %d: %v", i, err)
		}
		_, derr := c.Decode("r", store.State{Key: "r", Data: d})
		if errors.Is(derr, store.ErrDamaged) != malformed {
			t.Fatalf("bit %d: Decode = %v; store.ErrDamaged exactly when malformed", i, derr)
		}
	}
	// The sealed tag in a format 3 encoding is corrupt.
	d, err := c.EncodeLegacyState(nil, &state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": canary}})
	if err != nil || d[3] != state.SealedVersion {
		t.Fatalf("legacy sealed encoding: format %d, %v", d[3], err)
	}
	d[3] = state.Version
	if _, err := c.DecodeState(reCRC(d)); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("sealed value in format 3: %v; want ErrCorrupt", err)
	}
}

// fixedSealer seals by prefixing, so that a test can make sealed bytes
// that authenticate but hold a bad plaintext.
type fixedSealer struct{}

func (fixedSealer) Seal(p, aad []byte) ([]byte, error) { return append([]byte("sealed:"), p...), nil }
func (fixedSealer) Open(s, aad []byte) ([]byte, error) {
	p, ok := bytes.CutPrefix(s, []byte("sealed:"))
	if !ok {
		return nil, fmt.Errorf("%w: no prefix", seal.ErrMalformed)
	}
	return p, nil
}

// An opened plaintext that is not one value encoding is damage.
func TestBadPlaintextIsCorrupt(t *testing.T) {
	c := state.Codec{Sealer: fixedSealer{}, Sensitive: sensitive("ssn")}
	b, err := c.EncodeState(nil, &state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("sealed:s\x01x") // the sealed value as encoded
	i := bytes.Index(b, plain)
	if i < 0 {
		t.Fatal("sealed value not found")
	}
	for name, p := range map[string]string{
		"other content": "sealed:s\x01y", // well formed: decodes
		"nested sealed": "sealed:S\x01x",
		"bad tag":       "sealed:?\x01x",
		"truncated":     "sealed:s\x05x",
	} {
		d := bytes.Clone(b)
		copy(d[i:], p)
		_, err := c.DecodeState(reCRC(d))
		if name == "other content" {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			continue
		}
		var se *state.SealError
		if !errors.Is(err, state.ErrCorrupt) || !errors.As(err, &se) || se.Field != "ssn" {
			t.Errorf("%s: %v; want ErrCorrupt in a SealError", name, err)
		}
	}
}

// A Codec without a Sealer refuses to encode a sensitive value in the
// clear, and to decode a sealed one; neither is damage.
func TestNoSealer(t *testing.T) {
	noSealer := state.Codec{Sensitive: sensitive("ssn")}
	_, err := noSealer.EncodeState(nil, &state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": canary}})
	var se *state.SealError
	if !errors.Is(err, state.ErrNoSealer) || !errors.As(err, &se) || se.Key != "r" || se.Field != "ssn" || se.Op != "sealing" {
		t.Fatalf("encoding without a Sealer: %v", err)
	}
	if _, err := noSealer.Encode(&state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": canary}}); !errors.Is(err, state.ErrNoSealer) {
		t.Fatalf("Encode without a Sealer: %v", err)
	}
	if _, err := noSealer.EncodeDeadLetter(nil, canaryLetter("r")); !errors.Is(err, state.ErrNoSealer) {
		t.Fatalf("EncodeDeadLetter without a Sealer: %v", err)
	}
	db, _ := codec(t, keyRing(t, "k", "k")).EncodeDeadLetter(nil, canaryLetter("r"))
	_, err = state.DecodeLetter(store.DeadLetter{ID: 4, Data: db})
	if !errors.Is(err, state.ErrNoSealer) || errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "dead letter 4") {
		t.Fatalf("DecodeLetter without a Sealer: %v", err)
	}
}

type panicky struct{ seal.Sealer }

func (panicky) Seal(p, aad []byte) ([]byte, error) { panic("seal boom") }
func (panicky) Open(s, aad []byte) ([]byte, error) { panic("open boom") }

// A Sealer or Sensitive that panics is an error, not a crash.
func TestPanickingUserCode(t *testing.T) {
	st := &state.Record{Key: "r", Fields: map[string]concord.Value{"ssn": canary}}
	bad := state.Codec{Sealer: panicky{}, Sensitive: sensitive("ssn")}
	if _, err := bad.EncodeState(nil, st); !errors.Is(err, state.ErrPanic) || !strings.Contains(err.Error(), "seal boom") {
		t.Fatalf("panicking Seal: %v", err)
	}
	good, _ := codec(t, keyRing(t, "k", "k")).EncodeState(nil, st)
	if _, err := bad.DecodeState(good); !errors.Is(err, state.ErrPanic) {
		t.Fatalf("panicking Open: %v", err)
	}
	boom := state.Codec{Sealer: keyRing(t, "k", "k"), Context: "test-pipeline", Sensitive: func(string) bool { panic("sensitive boom") }}
	if _, err := boom.EncodeState(nil, st); !errors.Is(err, state.ErrPanic) {
		t.Fatalf("panicking Sensitive: %v", err)
	}
	if _, _, err := boom.Reseal(good, "r"); !errors.Is(err, state.ErrPanic) {
		t.Fatalf("panicking Sensitive in Reseal: %v", err)
	}
	// A revision with a panicking Sensitive counts the field as sensitive.
	h := &state.Hold{Candidates: []resolve.Candidate{{System: "a", Values: map[string]concord.Value{"ssn": canary}}}}
	boom.Hasher = keyRing(t, "k", "k")
	if boom.Revision(h) == h.Revision() {
		t.Fatal("a panicking Sensitive revealed the plaintext's revision")
	}
}

// With a Hasher, a hold's revision depends on sensitive values only
// through their keyed hash: it still changes with them.
func TestRevisionWithHasher(t *testing.T) {
	r := keyRing(t, "k1", "k1")
	c := codec(t, r)
	c.Hasher = r
	hold := func(ssn string) *state.Hold {
		return &state.Hold{Candidates: []resolve.Candidate{
			{System: "a", Values: map[string]concord.Value{"ssn": ssn, "name": "Ada"}, Version: v(1, 2)},
			{System: "b", Values: map[string]concord.Value{"ssn": "000", "name": "Ada"}, Version: v(2, 1)}}}
	}
	h1, h2 := hold("111"), hold("222")
	if c.Revision(h1) == c.Revision(h2) {
		t.Fatal("the revision does not change with a sensitive value")
	}
	if c.Revision(h1) == h1.Revision() {
		t.Fatal("the revision with a Hasher is the plaintext's")
	}
	if c.Revision(h1) != c.Revision(hold("111")) {
		t.Fatal("the revision is not deterministic")
	}
	// Without sensitive fields (or without a Hasher) it is the plain one.
	plain := state.Codec{Hasher: r}
	if plain.Revision(h1) != h1.Revision() || (state.Codec{Sensitive: sensitive("ssn")}).Revision(h1) != h1.Revision() {
		t.Fatal("the revision changed without a sensitive field hashed")
	}
	// It survives a rotation of the encryption key.
	before := c.Revision(h1)
	if err := r.Rotate("k2", bytes.Repeat([]byte{2}, seal.KeySize)); err != nil {
		t.Fatal(err)
	}
	if c.Revision(h1) != before {
		t.Fatal("the revision changed with the encryption key")
	}
}

// Concurrent encoding and decoding with one Codec (go test -race).
func TestSealedCodecConcurrent(t *testing.T) {
	c := codec(t, keyRing(t, "k1", "k1"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				key := fmt.Sprintf("r%d-%d", i, j)
				b, err := c.EncodeState(nil, canaryState(key))
				if err != nil {
					t.Error(err)
					return
				}
				if st, err := c.DecodeState(b); err != nil || st.Fields["ssn"] != canary {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzDecodeSealedState: with a Sealer configured, no input makes the
// decoder (or Reseal) panic; whatever decodes re-encodes to a state that
// decodes the same.
func FuzzDecodeSealedState(f *testing.F) {
	c := codec(f, keyRing(f, "k2", "k1", "k2"))
	old := codec(f, keyRing(f, "k1", "k1"))
	for _, cc := range []state.Codec{c, old} {
		b, err := cc.EncodeState(nil, canaryState("rec"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		small, _ := cc.EncodeState(nil, &state.Record{Key: "k", Fields: map[string]concord.Value{"ssn": "1", "n": 2}})
		f.Add(small)
		d, _ := cc.EncodeDeadLetter(nil, canaryLetter("rec"))
		f.Add(d)
	}
	plain, _ := state.EncodeState(nil, canaryState("rec"))
	f.Add(plain)
	for _, cc := range []state.Codec{c, {}} {
		legacy, err := cc.EncodeLegacyState(nil, canaryState("rec"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(legacy)
		compact, err := cc.EncodeState(nil, suiteRecord(3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(compact)
	}
	f.Add([]byte("CSR\x04"))
	check := func(t *testing.T, b []byte) {
		_, _, _ = c.Reseal(b, "rec")
		_, _ = c.DecodeDeadLetter(b)
		st, err := c.DecodeState(b)
		if err != nil {
			var se *state.SealError
			if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrNewerFormat) && !errors.As(err, &se) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		again, err := c.EncodeState(nil, st)
		if err != nil {
			t.Fatalf("decoded state does not encode: %v", err)
		}
		if _, err := c.DecodeState(again); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		// Past the checksum: what a mutation does to the content, sealed
		// values included.
		if len(b) >= 8 && b[3] >= 3 {
			check(t, reCRC(bytes.Clone(b)))
		}
	})
}

func must[T any](v T, _ bool, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// benchState is a state of 20 fields, and a Codec sealing sealed of them
// (0 or 2).
func benchState(b *testing.B, sealed int) (state.Codec, *state.Record) {
	st := state.Sample("customer-000042", false, false)
	st.Fields = map[string]concord.Value{}
	for i := range 18 {
		st.Fields[fmt.Sprintf("field%02d", i)] = fmt.Sprintf("value of field %d", i)
	}
	st.Fields["ssn"], st.Fields["iban"] = "123-45-6789", "DE89 3704 0044 0532 0130 00"
	c := state.Codec{Sealer: keyRing(b, "k1", "k1"), Context: "bench"}
	if sealed == 2 {
		c.Sensitive = sensitive("ssn", "iban")
	}
	return c, st
}

// BenchmarkEncodeState: 20 fields, 0 or 2 of them sealed (benchstat groups
// by sealed=).
func BenchmarkEncodeState(b *testing.B) {
	for _, n := range []int{0, 2} {
		b.Run(fmt.Sprintf("fields=20/sealed=%d", n), func(b *testing.B) {
			c, st := benchState(b, n)
			buf := make([]byte, 0, 2048)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.EncodeState(buf[:0], st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeState: the same states, decoded.
func BenchmarkDecodeState(b *testing.B) {
	for _, n := range []int{0, 2} {
		b.Run(fmt.Sprintf("fields=20/sealed=%d", n), func(b *testing.B) {
			c, st := benchState(b, n)
			data, err := c.EncodeState(nil, st)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.DecodeState(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
