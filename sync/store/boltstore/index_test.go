package boltstore

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// testdata/format3.db.gz is a store file written by the format 3 code
// (commit 66f4e1a, before the dead letters' index), on a little-endian
// machine: one state, a value, an audit entry and six dead letters in the
// engine's encoding, then number 6 removed. By ID, their system, key,
// class: 1 a "k1" merge; 2 b "k1" permanent; 3 a "" invalid; 4 a "k2"
// invalid; 5 b "k\x00é" merge; (6 a "k3" invalid, removed).
func format3File(t *testing.T) string {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the format 3 fixture was written on a little-endian machine")
	}
	f, err := os.Open(filepath.Join("testdata", "format3.db.gz"))
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

func idsOf(t *testing.T, what string, ds []store.DeadLetter, err error) []uint64 {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := []uint64{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// A file written by the format 3 code is migrated: its dead letters are
// indexed by the key and class their encoding holds, the file checks whole
// as format 4, and the index stays right through commits and reopening.
func TestMigratesAFormat3FileIndexingItsDeadLetters(t *testing.T) {
	path := format3File(t)
	rawView(t, path, func(tx *bolt.Tx) error {
		if v, _ := getUint(tx.Bucket(bMeta), kFormat); v != 3 {
			t.Fatalf("the fixture is format %d; want 3", v)
		}
		if n := tx.Bucket(bDeadLetters).Stats().KeyN; n != 5 {
			t.Fatalf("the fixture holds %d dead letters; want 5", n)
		}
		return nil
	})
	s := open(t, path)
	check := func(step string) {
		t.Helper()
		for key, want := range map[string][]uint64{"k1": {1, 2}, "": {3}, "k2": {4}, "k\x00é": {5}, "k3": {}, "k": {}} {
			got, err := s.DeadLettersOf(ctx, []string{key})
			if g := idsOf(t, "DeadLettersOf", got, err); !slices.Equal(g, want) {
				t.Errorf("%s: DeadLettersOf(%q) = %v; want %v", step, key, g, want)
			}
		}
		for class, want := range map[string][]uint64{"merge": {1, 5}, "permanent": {2}, "invalid": {3, 4}, "": {}} {
			got, err := s.DeadLettersOfClass(ctx, class)
			if g := idsOf(t, "DeadLettersOfClass", got, err); !slices.Equal(g, want) {
				t.Errorf("%s: DeadLettersOfClass(%q) = %v; want %v", step, class, g, want)
			}
		}
		got, err := s.DeadLettersOf(ctx, []string{"k1"})
		if err != nil || len(got) != 2 {
			t.Fatalf("%s: DeadLettersOf(k1) = %v, %v", step, got, err)
		}
		if d, err := state.DecodeLetter(got[1]); err != nil || d.Class != "permanent" || d.System != "b" {
			t.Errorf("%s: dead letter 2 decodes as %+v, %v", step, d, err)
		}
	}
	check("after migration")
	closeStore(t, s)
	rawView(t, path, func(tx *bolt.Tx) error {
		if v, _ := getUint(tx.Bucket(bMeta), kFormat); v != FormatVersion {
			t.Fatalf("after migration the file is format %d; want %d", v, FormatVersion)
		}
		return checkContents(tx, FormatVersion)
	})
	s = open(t, path)
	check("reopened")
	dl, err := state.EncodeDeadLetter(nil, state.DeadLetter{System: "a", Key: "k2", Class: "merge"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &store.Commit{RemoveDeadLetters: []uint64{1, 4}, DeadLetters: []store.DeadLetter{{System: "a", Key: "k2", Class: "merge", Data: dl}}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeadLettersOfClass(ctx, "merge")
	if g := idsOf(t, "DeadLettersOfClass", got, err); !slices.Equal(g, []uint64{5, 7}) {
		t.Errorf("after a commit: merge letters %v; want [5 7] (IDs continue after 6)", g)
	}
	got, err = s.DeadLettersOf(ctx, []string{"k2", "k1"})
	if g := idsOf(t, "DeadLettersOf", got, err); !slices.Equal(g, []uint64{2, 7}) {
		t.Errorf("after a commit: letters of k1, k2 %v; want [2 7]", g)
	}
	closeStore(t, s)
	rawView(t, path, func(tx *bolt.Tx) error { return checkContents(tx, FormatVersion) })
}

// An index that disagrees with the dead letters is damage that Open finds:
// an entry lost with its count, an entry naming a letter never given, an
// entry that does not parse.
func TestDamagedDeadLetterIndexRefused(t *testing.T) {
	for name, damage := range map[string]func(tx *bolt.Tx) error{
		"entry by key lost": func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bDeadKeys).Cursor().First()
			n, err := getMeta(tx, countKey(bDeadKeys))
			return firstErr(err, tx.Bucket(bDeadKeys).Delete(k), putMeta(tx, countKey(bDeadKeys), n-1))
		},
		"entry by class names a letter never given": func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bDeadClasses).Cursor().Last()
			k2 := append(bytes.Clone(k[:len(k)-8]), binary.BigEndian.AppendUint64(nil, 99)...)
			return firstErr(tx.Bucket(bDeadClasses).Delete(k), tx.Bucket(bDeadClasses).Put(k2, seal(bDeadClasses, k2, nil)))
		},
		"index entry not a key and class": func(tx *bolt.Tx) error {
			k, _ := tx.Bucket(bDeadIndex).Cursor().First()
			return tx.Bucket(bDeadIndex).Put(k, seal(bDeadIndex, k, []byte{0xff}))
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "concord.db")
			s := open(t, path)
			if err := s.Commit(ctx, &store.Commit{DeadLetters: []store.DeadLetter{{Key: "a", Class: "x", Data: []byte("1")}, {Key: "b", Class: "y", Data: []byte("2")}}}); err != nil {
				t.Fatal(err)
			}
			closeStore(t, s)
			rawUpdate(t, path, damage)
			s, err := Open(path)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("Open of a file whose %s = %v; want ErrDamaged", name, err)
			}
		})
	}
}

// rawView reads the file at path with bbolt alone.
func rawView(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(fn); err != nil {
		t.Fatal(err)
	}
}
