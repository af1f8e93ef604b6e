package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

var quiet = slog.New(slog.DiscardHandler)

// open opens the store at path and closes it at the end of the test.
func open(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(path, append([]Option{WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// witnessPath is where a store keeps its witness by default.
func witnessPath(path string) string { return path + ".witness" }

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustCommit(t testing.TB, s store.Store, c *state.Commit) {
	t.Helper()
	if err := c.Apply(ctx, s); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustEpoch(t testing.TB, s store.Store) uint64 {
	t.Helper()
	e, err := s.Epoch(ctx)
	if err != nil {
		t.Fatalf("Epoch: %v", err)
	}
	return e
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, readFile(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rawUpdate changes a closed store's file through bbolt directly.
func rawUpdate(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// cmpState compares states by meaning, as storetest does.
var cmpState = cmp.Options{
	cmpopts.IgnoreUnexported(state.Record{}), // a decoded record's cache of its highest counters
	cmp.Comparer(func(a, b concord.Version) bool { return a.Compare(b) == concord.Equal }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b map[string]concord.Value) bool { return (a == nil) == (b == nil) && concord.EqualValues(a, b) }),
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB, now func() time.Time) store.Store {
		return open(t, filepath.Join(t.TempDir(), "concord.db"), WithClock(now))
	})
}

// snapshot is everything a store holds that its API shows.
type snapshot struct {
	Epoch   uint64
	Actors  map[string]concord.Actor
	Cursors map[concord.SystemID]connector.Cursor
	States  map[string]*state.Record
	Pending []string
	Held    []string
	Dead    []state.DeadLetter
}

func snap(t testing.TB, s *Store, keys, actors []string, systems []concord.SystemID) snapshot {
	t.Helper()
	sn := snapshot{Epoch: mustEpoch(t, s), Actors: map[string]concord.Actor{}, Cursors: map[concord.SystemID]connector.Cursor{}}
	var err error
	for _, name := range actors {
		if sn.Actors[name], err = s.Actor(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, sys := range systems {
		if sn.Cursors[sys], err = s.Cursor(ctx, sys); err != nil {
			t.Fatal(err)
		}
	}
	if sn.States, err = state.Load(ctx, s, keys); err != nil {
		t.Fatal(err)
	}
	if sn.Pending, err = s.Pending(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if sn.Held, err = s.Held(ctx); err != nil {
		t.Fatal(err)
	}
	if sn.Dead, err = state.LoadDeadLetters(ctx, s); err != nil {
		t.Fatal(err)
	}
	return sn
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	clock := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s := open(t, path, WithClock(func() time.Time { return clock }))
	for _, name := range []string{"system/a", "system/b"} {
		if _, err := s.Actor(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.NewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	lease, err := s.AcquireLease(ctx, "default", "host-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	mustCommit(t, s, &state.Commit{
		Lease:       &lease,
		Cursors:     map[concord.SystemID]connector.Cursor{"a": "c-1", "b": "c-2"},
		States:      []*state.Record{state.Sample("k1", true, false), state.Sample("k2", false, true), state.Sample("k3", false, false)},
		DeadLetters: []state.DeadLetter{{System: "a", Key: "bad", Inbound: true, Reason: "no key", Class: "invalid", When: at}},
	})
	keys, actors, systems := []string{"k1", "k2", "k3", "k4"}, []string{"system/a", "system/b"}, []concord.SystemID{"a", "b"}
	want := snap(t, s, keys, actors, systems)
	closeStore(t, s)

	s = open(t, path, WithClock(func() time.Time { return clock }))
	if s.Restored() {
		t.Error("Restored() after a clean close and reopen")
	}
	got := snap(t, s, keys, actors, systems)
	if diff := cmp.Diff(want, got, cmpState); diff != "" {
		t.Fatalf("after reopen (-before +after):\n%s", diff)
	}
	// The lease survived too: another holder is refused, and the next
	// token after expiry continues from the stored one.
	if _, err := s.AcquireLease(ctx, "default", "host-2", time.Minute); !errors.Is(err, store.ErrLeaseHeld) {
		t.Fatalf("AcquireLease by another holder after reopen = %v; want ErrLeaseHeld", err)
	}
	clock = clock.Add(2 * time.Minute)
	next, err := s.AcquireLease(ctx, "default", "host-2", time.Minute)
	if err != nil || next.Token != lease.Token+1 {
		t.Fatalf("AcquireLease after expiry = %+v, %v; want token %d", next, err, lease.Token+1)
	}
	if a, err := s.Actor(ctx, "system/c"); err != nil || a != 3 {
		t.Fatalf("new actor after reopen = %d, %v; want 3", a, err)
	}
}

func TestRestoreDetection(t *testing.T) {
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "concord.db"), filepath.Join(dir, "backup.db")
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	commitN := func(s *Store, from, n int) {
		for i := from; i < from+n; i++ {
			mustCommit(t, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": connector.Cursor(fmt.Sprint(i))}})
		}
	}

	s := open(t, path)
	commitN(s, 0, 3)
	first := mustEpoch(t, s)
	closeStore(t, s)
	copyFile(t, path, backup) // a backup after commit 3

	s = open(t, path, WithLogger(logger))
	if s.Restored() || mustEpoch(t, s) != first {
		t.Fatalf("reopen without restore: Restored %v, epoch %d; want false, %d", s.Restored(), mustEpoch(t, s), first)
	}
	commitN(s, 3, 5)
	closeStore(t, s)

	copyFile(t, backup, path) // the restore
	s = open(t, path, WithLogger(logger))
	second := mustEpoch(t, s)
	if !s.Restored() || second == first {
		t.Fatalf("after restoring a backup: Restored %v, epoch %d (was %d); want a new epoch", s.Restored(), second, first)
	}
	if cur, _ := s.Cursor(ctx, "a"); cur != "2" {
		t.Fatalf("restored cursor = %q; want the backup's %q", cur, "2")
	}
	if !strings.Contains(logs.String(), "older than its witness") {
		t.Errorf("no warning logged for the restore; log:\n%s", logs.String())
	}
	commitN(s, 3, 1)
	closeStore(t, s)

	// The new epoch is persisted, and the next Open sees no restore.
	s = open(t, path)
	if s.Restored() || mustEpoch(t, s) != second {
		t.Fatalf("reopen after the restore: Restored %v, epoch %d; want false, %d", s.Restored(), mustEpoch(t, s), second)
	}
	closeStore(t, s)

	// Generations never repeat: the same backup restored again, after
	// fewer commits than it had missed, is still detected.
	copyFile(t, backup, path)
	s = open(t, path)
	if !s.Restored() || mustEpoch(t, s) == second {
		t.Fatalf("second restore of the backup: Restored %v; want a new epoch", s.Restored())
	}
	closeStore(t, s)

	// Without a witness there is nothing to compare: no restore.
	copyFile(t, backup, path)
	if err := os.Remove(witnessPath(path)); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	if s.Restored() {
		t.Fatal("Restored() without a witness")
	}
}

// storeFile creates a store file and changes it with fn (nil: as is).
func storeFile(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	s := open(t, path)
	mustCommit(t, s, &state.Commit{States: []*state.Record{state.Sample("k", true, false)}})
	closeStore(t, s)
	if fn != nil {
		rawUpdate(t, path, fn)
	}
}

func TestOpenRefusesAndLeavesFileAlone(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want error
	}{
		{"random bytes", func(t *testing.T, path string) {
			b := make([]byte, 3*4096)
			for i := range b {
				b[i] = byte(i*7919 + i>>3)
			}
			os.WriteFile(path, b, 0o600)
		}, ErrNotAStore},
		{"text file", func(t *testing.T, path string) {
			os.WriteFile(path, []byte("name,phone\nAda,+44 1\n"), 0o600)
		}, ErrNotAStore},
		{"directory", func(t *testing.T, path string) { os.Mkdir(path, 0o700) }, ErrNotAStore},
		{"other bbolt file", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("users"))
				if err != nil {
					return err
				}
				return b.Put([]byte("ada"), []byte("admin"))
			})
		}, ErrNotAStore},
		{"bbolt file with another meta", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bMeta)
				if err != nil {
					return err
				}
				return b.Put(kKind, []byte("someone/else"))
			})
		}, ErrNotAStore},
		{"newer format", func(t *testing.T, path string) {
			storeFile(t, path, func(tx *bolt.Tx) error { return putUint(tx.Bucket(bMeta), kFormat, FormatVersion+1) })
		}, ErrNewerFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file")
			tt.make(t, path)
			var before []byte
			if fi, err := os.Stat(path); err != nil {
				t.Fatal(err)
			} else if !fi.IsDir() {
				before = readFile(t, path)
			}
			witness, _ := os.ReadFile(witnessPath(path))
			s, err := Open(path, WithLogger(quiet))
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded; want %v", tt.want)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v; want %v naming %s", err, tt.want, path)
			}
			if before != nil && !bytes.Equal(before, readFile(t, path)) {
				t.Fatal("Open changed the file it refused")
			}
			if after, _ := os.ReadFile(witnessPath(path)); !bytes.Equal(witness, after) {
				t.Fatalf("Open changed the witness of a file it refused: %q, then %q", witness, after)
			}
		})
	}
}

func TestOpenLockedFileTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	s := open(t, path)
	mustCommit(t, s, &state.Commit{States: []*state.Record{state.Sample("k", false, false)}})
	before := readFile(t, path)
	start := time.Now()
	second, err := Open(path, WithTimeout(100*time.Millisecond), WithLogger(quiet))
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open = %v; want ErrLocked naming the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v; want about the timeout", d)
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Fatal("the refused Open changed the file")
	}
	// The first store is unaffected.
	if m, err := state.Load(ctx, s, []string{"k"}); err != nil || len(m) != 1 {
		t.Fatalf("Load on the first store = %v, %v", m, err)
	}
}

func TestMigration(t *testing.T) {
	next := func(fail bool) layout {
		return layout{version: FormatVersion + 1, migrations: append(currentLayout().migrations, func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("extra"))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("x"), []byte("y")); err != nil {
				return err
			}
			if fail {
				return errors.New("disk full")
			}
			return nil
		})}
	}
	path := filepath.Join(t.TempDir(), "concord.db")
	storeFile(t, path, nil)
	before := readFile(t, path)

	if _, err := Open(path, WithLogger(quiet), withLayout(next(true))); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Open with a failing migration = %v; want its error", err)
	}
	if !bytes.Equal(before, readFile(t, path)) {
		t.Fatal("a failed migration changed the file")
	}

	s := open(t, path, withLayout(next(false)))
	if m, err := state.Load(ctx, s, []string{"k"}); err != nil || len(m) != 1 {
		t.Fatalf("Load after migration = %v, %v", m, err)
	}
	closeStore(t, s)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if v, _ := getUint(tx.Bucket(bMeta), kFormat); v != FormatVersion+1 {
			t.Errorf("format after migration = %d; want %d", v, FormatVersion+1)
		}
		if b := tx.Bucket([]byte("extra")); b == nil || string(b.Get([]byte("x"))) != "y" {
			t.Error("the migration's change is missing")
		}
		return nil
	})
	db.Close()
	// This build now refuses the file.
	if _, err := Open(path, WithLogger(quiet)); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("Open of the migrated file by format %d = %v; want ErrNewerFormat", FormatVersion, err)
	}
}

// sealedPut puts payload sealed, as the store would, so that what is
// damaged is the payload's meaning, not its checksum.
func sealedPut(tx *bolt.Tx, bucket, key, payload []byte) error {
	return tx.Bucket(bucket).Put(key, seal(bucket, key, payload))
}

func TestCorruptData(t *testing.T) {
	load := func(s *Store) error { _, err := state.Load(ctx, s, []string{"k"}); return err }
	statePayload := func(tx *bolt.Tx) []byte {
		p, err := unseal(bStates, []byte("k"), tx.Bucket(bStates).Get([]byte("k")))
		if err != nil {
			panic(err)
		}
		return bytes.Clone(p)
	}
	tests := []struct {
		name   string
		change func(tx *bolt.Tx) error
		read   func(s *Store) error // nil: Open must fail
		want   error
		naming string
	}{
		{"state garbage", func(tx *bolt.Tx) error {
			return sealedPut(tx, bStates, []byte("k"), []byte("\x00\x00\x00\x00\x00\x00\x00\x01garbage"))
		}, load, store.ErrDamaged, `record "k"`}, // sealed by the store: the engine's codec finds it
		{"state data changed under a valid seal", func(tx *bolt.Tx) error {
			nv := statePayload(tx)
			nv[len(nv)/2] ^= 0x10 // the engine's own checksum finds it, whatever the store
			return sealedPut(tx, bStates, []byte("k"), nv)
		}, load, store.ErrDamaged, `record "k"`},
		{"state without checksum", func(tx *bolt.Tx) error {
			return tx.Bucket(bStates).Put([]byte("k"), []byte("CS"))
		}, nil, ErrDamaged, `record "k"`},
		{"state without revision", func(tx *bolt.Tx) error {
			return sealedPut(tx, bStates, []byte("k"), []byte("CS"))
		}, nil, ErrDamaged, `record "k"`},
		{"state in a newer codec", func(tx *bolt.Tx) error {
			nv := statePayload(tx)
			nv[8+3] = 99 // statecodec header: "CSR" then the version
			return sealedPut(tx, bStates, []byte("k"), nv)
		}, load, state.ErrNewerFormat, `record "k"`},
		{"revisions disagree", func(tx *bolt.Tx) error {
			nv := statePayload(tx)
			nv[7] = 9
			return sealedPut(tx, bStates, []byte("k"), nv)
		}, load, store.ErrDamaged, `record "k"`},
		{"dead letter garbage", func(tx *bolt.Tx) error {
			return sealedPut(tx, bDeadLetters, []byte("\x00\x00\x00\x00\x00\x00\x00\x01"), []byte("CSD\x01"))
		}, func(s *Store) error { _, err := state.LoadDeadLetters(ctx, s); return err }, store.ErrDamaged, "dead letter 1"},
		{"state flipped on disk", func(tx *bolt.Tx) error {
			v := bytes.Clone(tx.Bucket(bStates).Get([]byte("k")))
			v[20] ^= 1
			return tx.Bucket(bStates).Put([]byte("k"), v)
		}, nil, ErrDamaged, `record "k"`},
		{"dead letter beyond its sequence", func(tx *bolt.Tx) error {
			v := tx.Bucket(bDeadLetters).Get([]byte("\x00\x00\x00\x00\x00\x00\x00\x01"))
			p, _ := unseal(bDeadLetters, []byte("\x00\x00\x00\x00\x00\x00\x00\x01"), v)
			k := []byte("\x00\x00\x00\x00\x00\x00\x00\x07")
			return firstErr(tx.Bucket(bDeadLetters).Delete([]byte("\x00\x00\x00\x00\x00\x00\x00\x01")), sealedPut(tx, bDeadLetters, k, p))
		}, nil, ErrDamaged, "dead letter 0000000000000007"},
		{"lease garbage", func(tx *bolt.Tx) error {
			return sealedPut(tx, bLeases, []byte("p"), []byte{1})
		}, nil, ErrDamaged, `lease "p"`},
		{"cursor without checksum", func(tx *bolt.Tx) error {
			return tx.Bucket(bCursors).Put([]byte("a"), []byte("c-1"))
		}, nil, ErrDamaged, `cursor of system "a"`},
		{"epoch without checksum", func(tx *bolt.Tx) error {
			return putUint(tx.Bucket(bMeta), kEpoch, 7)
		}, nil, ErrDamaged, `meta "epoch"`},
		{"a state lost", func(tx *bolt.Tx) error {
			return tx.Bucket(bStates).Delete([]byte("k"))
		}, nil, ErrDamaged, `bucket "states" has 0 entries; the meta bucket counts 1`},
		{"an extra bucket", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("extra"))
			return err
		}, nil, ErrDamaged, `"extra"`},
		{"a bucket inside a bucket", func(tx *bolt.Tx) error {
			_, err := tx.Bucket(bCursors).CreateBucket([]byte("b"))
			return err
		}, nil, ErrDamaged, `cursor of system "b" is a bucket`},
		{"format version garbage", func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(kFormat, []byte{2})
		}, nil, ErrDamaged, `format version`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "concord.db")
			s := open(t, path)
			mustCommit(t, s, &state.Commit{
				States:      []*state.Record{state.Sample("k", true, false)},
				DeadLetters: []state.DeadLetter{{System: "a", Key: "bad", Reason: "r"}},
			})
			closeStore(t, s)
			rawUpdate(t, path, tt.change)
			var err error
			if tt.read == nil {
				s, err = Open(path, WithLogger(quiet))
				if err == nil {
					s.Close()
				}
			} else {
				err = tt.read(open(t, path))
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.naming) {
				t.Fatalf("got %v; want %v naming %s", err, tt.want, tt.naming)
			}
			if tt.read == nil && !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v; want it to name the file", err)
			}
		})
	}
}

func TestClosedStore(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "concord.db"))
	closeStore(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	calls := map[string]func() error{
		"Actor":           func() error { _, err := s.Actor(ctx, "a"); return err },
		"Epoch":           func() error { _, err := s.Epoch(ctx); return err },
		"NewEpoch":        func() error { _, err := s.NewEpoch(ctx); return err },
		"AcquireLease":    func() error { _, err := s.AcquireLease(ctx, "p", "h", time.Minute); return err },
		"ReleaseLease":    func() error { return s.ReleaseLease(ctx, store.Lease{Name: "p", Holder: "h"}) },
		"Cursor":          func() error { _, err := s.Cursor(ctx, "a"); return err },
		"Load":            func() error { _, err := state.Load(ctx, s, []string{"k"}); return err },
		"Pending":         func() error { _, err := s.Pending(ctx, 10); return err },
		"Held":            func() error { _, err := s.Held(ctx); return err },
		"DeadLetters":     func() error { _, err := state.LoadDeadLetters(ctx, s); return err },
		"Commit":          func() error { return s.Commit(ctx, &store.Commit{}) },
		"Value":           func() error { _, err := s.Value(ctx, "v"); return err },
		"Keys":            func() error { _, err := s.Keys(ctx, "", 10); return err },
		"Keys(0)":         func() error { _, err := s.Keys(ctx, "", 0); return err },
		"AuditHead":       func() error { _, err := s.AuditHead(ctx); return err },
		"AuditEntries":    func() error { _, err := s.AuditEntries(ctx, 0, 10); return err },
		"AuditEntries(0)": func() error { _, err := s.AuditEntries(ctx, 0, 0); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed store = %v; want ErrClosed", name, err)
		}
	}
}

func TestOpenOptionsValidated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	for name, opt := range map[string]Option{
		"zero timeout": WithTimeout(0),
		"nil clock":    WithClock(nil),
		"nil logger":   WithLogger(nil),
	} {
		if s, err := Open(path, opt); err == nil {
			s.Close()
			t.Errorf("Open with %s succeeded", name)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open with a bad option created the file: %v", err)
	}
}

func TestCommitLeavesInputAloneOnFailure(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "concord.db"))
	mustCommit(t, s, &state.Commit{States: []*state.Record{state.Sample("old", false, false)}})
	fresh, stale := state.Sample("new", false, false), state.Sample("old", false, false)
	err := (&state.Commit{States: []*state.Record{fresh, stale}}).Apply(ctx, s)
	if !errors.Is(err, store.ErrStale) || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("Commit = %v; want ErrStale naming \"old\"", err)
	}
	if fresh.Rev != 0 || stale.Rev != 0 {
		t.Fatalf("a failed commit changed the given revisions to %d and %d", fresh.Rev, stale.Rev)
	}
	if diff := cmp.Diff(state.Sample("new", false, false), fresh, cmpState); diff != "" {
		t.Fatalf("Commit changed its input (-want +got):\n%s", diff)
	}
}
