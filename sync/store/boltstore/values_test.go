package boltstore

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

// testdata/format2.db.gz is a store file written by the format 2 code
// (commit cd50a29, before values and the audit log), on a little-endian
// machine (bbolt lays its pages out in the machine's byte order), by:
//
//	clock := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
//	s, _ := Open(path, WithClock(func() time.Time { return clock }), WithWitness(path+".w"))
//	s.Actor(ctx, "system/a"); s.Actor(ctx, "system/b")
//	l, _ := s.AcquireLease(ctx, "default", "host-1", time.Hour)
//	s.Commit(ctx, &store.Commit{Lease: &l,
//		Cursors: map[concord.SystemID]connector.Cursor{"a": "c-9"},
//		States:  []store.State{storetest.State("k1", true, false), storetest.State("k2", false, true), storetest.State("é", false, false)},
//		DeadLetters: []store.DeadLetter{{Data: storetest.Data("d1", 3)}, {Data: storetest.Data("d2", 3)}},
//	})
//	s.Commit(ctx, &store.Commit{Lease: &l, RemoveDeadLetters: []uint64{1}})
func format2File(t *testing.T) string {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the format 2 fixture was written on a little-endian machine; bbolt files are not portable across byte orders")
	}
	f, err := os.Open(filepath.Join("testdata", "format2.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "concord.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A file written by the format 2 code opens: it is migrated to the
// current format (empty values and audit log added), everything in it
// reads back as written, and the new parts work and persist.
func TestOpensAFormat2FileWrittenByTheOldCode(t *testing.T) {
	path := format2File(t)
	var epoch uint64
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if v, _ := getUint(tx.Bucket(bMeta), kFormat); v != 2 {
			t.Fatalf("the fixture is format %d; want 2", v)
		}
		if tx.Bucket(bValues) != nil || tx.Bucket(bAudit) != nil {
			t.Fatal("the format 2 fixture has the buckets of format 3")
		}
		epoch, err = getMeta(tx, kEpoch)
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	clock := time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC)
	s := open(t, path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithClock(func() time.Time { return clock }))
	if !strings.Contains(logs.String(), "migrated the file format") || !strings.Contains(logs.String(), fmt.Sprintf("format=%d", FormatVersion)) {
		t.Errorf("no migration to format %d logged; log:\n%s", FormatVersion, logs.String())
	}
	if s.Restored() || mustEpoch(t, s) != epoch {
		t.Errorf("after migration: restored %v, epoch %d; want not restored, epoch %d", s.Restored(), mustEpoch(t, s), epoch)
	}
	for name, want := range map[string]int{"system/a": 1, "system/b": 2, "system/c": 3} {
		if a, err := s.Actor(ctx, name); err != nil || int(a) != want {
			t.Errorf("Actor(%s) = %d, %v; want %d", name, a, err, want)
		}
	}
	if c, err := s.Cursor(ctx, "a"); err != nil || c != "c-9" {
		t.Errorf("Cursor(a) = %q, %v; want c-9", c, err)
	}
	got, err := s.Load(ctx, []string{"k1", "k2", "é"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.State{storetest.State("k1", true, false), storetest.State("k2", false, true), storetest.State("é", false, false)} {
		g := got[want.Key]
		if g.Rev != 1 || g.Pending != want.Pending || g.Held != want.Held || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("Load(%s) = rev %d pending %v held %v, %d bytes; want as written", want.Key, g.Rev, g.Pending, g.Held, len(g.Data))
		}
	}
	if p, _ := s.Pending(ctx, 10); !slices.Equal(p, []string{"k1"}) {
		t.Errorf("Pending = %q; want [k1]", p)
	}
	if h, _ := s.Held(ctx); !slices.Equal(h, []string{"k2"}) {
		t.Errorf("Held = %q; want [k2]", h)
	}
	if d, err := s.DeadLetters(ctx); err != nil || len(d) != 1 || d[0].ID != 2 || !bytes.Equal(d[0].Data, storetest.Data("d2", 3)) {
		t.Errorf("DeadLetters = %+v, %v; want dead letter 2 as written", d, err)
	}
	if _, err := s.AcquireLease(ctx, "default", "host-2", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Errorf("the lease after migration: %v; want ErrLeaseHeld (held by host-1)", err)
	}
	// The new parts: empty, then written.
	if v, err := s.Value(ctx, "scan/a"); v != nil || err != nil {
		t.Errorf("Value after migration = %q, %v; want none", v, err)
	}
	if h, err := s.AuditHead(ctx); h.Seq != 0 || err != nil {
		t.Errorf("AuditHead after migration = %d, %v; want 0", h.Seq, err)
	}
	if k, err := s.Keys(ctx, "", 10); err != nil || !slices.Equal(k, []string{"k1", "k2", "é"}) {
		t.Errorf("Keys = %q, %v; want [k1 k2 é]", k, err)
	}
	if err := s.Commit(ctx, &store.Commit{Values: map[string][]byte{"scan/a": []byte("7")}, Audit: storetest.Entries(1, 3)}); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)

	logs.Reset()
	s = open(t, path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if strings.Contains(logs.String(), "migrated") {
		t.Errorf("migrated twice; log:\n%s", logs.String())
	}
	if v, err := s.Value(ctx, "scan/a"); string(v) != "7" || err != nil {
		t.Errorf("Value after reopening = %q, %v; want 7", v, err)
	}
	if es, err := s.AuditEntries(ctx, 0, 10); err != nil || len(es) != 3 || !bytes.Equal(es[2].Data, storetest.Entry(3).Data) {
		t.Errorf("AuditEntries after reopening = %d entries, %v; want 3 as written", len(es), err)
	}
}

// A format 2 file that a migration to format 3 cannot have come from (it
// has a bucket of format 3 already) is refused, and left as it was.
func TestFormat2FileWithFormat3BucketIsRefused(t *testing.T) {
	path := format2File(t)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bAudit)
		return err
	})
	refused(t, path, ErrDamaged, []string{`"audit"`})
}

// Values and audit entries are sealed like every other value: damage on
// disk is refused at Open, naming the value or the entry; an entry lost
// from the middle of the log is found too.
func TestDamagedValuesAndAuditEntries(t *testing.T) {
	u64 := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	flip := func(bucket, key []byte) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			v := bytes.Clone(tx.Bucket(bucket).Get(key))
			v[len(v)/2] ^= 0x20
			return tx.Bucket(bucket).Put(key, v)
		}
	}
	setCount := func(tx *bolt.Tx, bucket []byte, n uint64) error { return putMeta(tx, countKey(bucket), n) }
	for _, c := range []struct {
		name   string
		change func(tx *bolt.Tx) error
		naming string
	}{
		{"value flipped", flip(bValues, []byte("scan/crm")), `value "scan/crm"`},
		{"empty value flipped", flip(bValues, []byte("mark")), `value "mark"`},
		{"audit entry flipped", flip(bAudit, u64(2)), "audit entry 2"},
		{"audit entry moved to another seq", func(tx *bolt.Tx) error {
			b := tx.Bucket(bAudit)
			return firstErr(b.Put(u64(3), b.Get(u64(2))))
		}, "audit entry 3"},
		{"last audit entry lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bAudit).Delete(u64(3))
		}, `bucket "audit" has 2 entries; the meta bucket counts 3`},
		{"audit entry lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bAudit).Delete(u64(2))
		}, "audit entry 3 follows entry 1"},
		{"audit entry lost and the count lowered", func(tx *bolt.Tx) error {
			return firstErr(tx.Bucket(bAudit).Delete(u64(2)), setCount(tx, bAudit, 2))
		}, "audit entry 3 follows entry 1"},
		{"audit key of 3 bytes", func(tx *bolt.Tx) error {
			return firstErr(sealedPut(tx, bAudit, []byte{0, 0, 4}, []byte("x")), setCount(tx, bAudit, 4))
		}, "audit entry key 000004"},
		{"value under a name no store writes", func(tx *bolt.Tx) error {
			return firstErr(sealedPut(tx, bValues, []byte("a\x00b"), []byte("x")), setCount(tx, bValues, 3))
		}, `value "a\x00b"`},
		{"values count lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Delete(countKey(bValues))
		}, `meta "count/values"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "concord.db")
			s := open(t, path)
			if err := s.Commit(ctx, &store.Commit{
				Values: map[string][]byte{"scan/crm": []byte("page 7"), "mark": {}},
				Audit:  storetest.Entries(1, 3),
			}); err != nil {
				t.Fatal(err)
			}
			closeStore(t, s)
			rawUpdate(t, path, c.change)
			refused(t, path, ErrDamaged, []string{c.naming})
		})
	}
}

// Damage that happens while the store is open is found when it is read:
// every read verifies what it returns, AuditEntries notices an entry
// missing in what it reads, and AuditHead (and so a commit appending to
// the log) a last entry missing.
func TestDamageWhileOpenIsFoundOnRead(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "concord.db"))
	if err := s.Commit(ctx, &store.Commit{
		States: []store.State{storetest.State("k", false, false)},
		Values: map[string][]byte{"v": []byte("value")},
		Audit:  storetest.Entries(1, 5),
	}); err != nil {
		t.Fatal(err)
	}
	u64 := func(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
	err := s.db.Update(func(tx *bolt.Tx) error {
		v := bytes.Clone(tx.Bucket(bValues).Get([]byte("v")))
		v[0] ^= 1
		k := bytes.Clone(tx.Bucket(bStates).Get([]byte("k")))
		k[9] ^= 1
		return firstErr(tx.Bucket(bValues).Put([]byte("v"), v), tx.Bucket(bStates).Put([]byte("k"), k), tx.Bucket(bAudit).Delete(u64(3)), tx.Bucket(bAudit).Delete(u64(5)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Value(ctx, "v"); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), `value "v"`) {
		t.Errorf("Value of a flipped value = %v; want ErrDamaged naming it", err)
	}
	if _, err := s.Keys(ctx, "", 10); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), `record "k"`) {
		t.Errorf("Keys over a flipped state = %v; want ErrDamaged naming it", err)
	}
	if _, err := s.AuditEntries(ctx, 1, 10); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "entry 3 should be") {
		t.Errorf("AuditEntries over a lost entry = %v; want ErrDamaged naming the gap", err)
	}
	if es, err := s.AuditEntries(ctx, 3, 10); err != nil || len(es) != 1 || es[0].Seq != 4 {
		t.Errorf("AuditEntries after the gap = %d, %v; want entry 4", len(es), err)
	}
	if _, err := s.AuditHead(ctx); !errors.Is(err, store.ErrDamaged) || !strings.Contains(err.Error(), "counts 5") {
		t.Errorf("AuditHead with one entry lost = %v; want ErrDamaged (the count is 5, the log shorter)", err)
	}
	if err := s.Commit(ctx, &store.Commit{Audit: storetest.Entries(6, 1)}); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("Commit appending to a damaged log = %v; want ErrDamaged", err)
	}
}

// bbolt keys are bytes: Keys pages in byte order through keys that are not
// UTF-8 either.
func TestKeysInByteOrder(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "concord.db"))
	keys := []string{"\xff", "\xfe\x00", "a", "a\x00", "a\x00\x00", "a\xff", "\x01", "é"}
	var states []store.State
	for _, k := range keys {
		states = append(states, storetest.State(k, false, false))
	}
	if err := s.Commit(ctx, &store.Commit{States: states}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var got []string
	for after := ""; ; {
		page, err := s.Keys(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("Keys paged by 3 = %q; want %q", got, keys)
	}
}
