package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
)

// refused opens path expecting an error wrapping want that names path and
// every string in naming, and checks that the refusal left the file and
// its witness as they were.
func refused(t *testing.T, path string, want error, naming []string, opts ...Option) error {
	t.Helper()
	before, _ := os.ReadFile(path)
	witness, _ := os.ReadFile(witnessPath(path))
	s, err := Open(path, append([]Option{WithLogger(quiet)}, opts...)...)
	if err == nil {
		s.Close()
		t.Fatalf("Open succeeded; want %v", want)
	}
	if !errors.Is(err, want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v; want %v naming %s", err, want, path)
	}
	for _, n := range naming {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("Open = %v; want it to say %q", err, n)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("Open changed the file it refused")
	}
	if after, _ := os.ReadFile(witnessPath(path)); !bytes.Equal(witness, after) {
		t.Fatalf("Open changed the witness of a file it refused: %q, then %q", witness, after)
	}
	return err
}

func TestTruncatedFileIsRefusedNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "pristine.db")
	writeFixture(t, fixture)
	pristine, witness := readFile(t, fixture), readFile(t, witnessPath(fixture))
	ps := int64(os.Getpagesize())
	for _, c := range []struct {
		cut    int64
		naming string
	}{
		{100, "less than the two meta pages"},
		{2*ps - 1, "less than the two meta pages"},
		{2*ps + 1, "truncated: the meta page"},
		{int64(len(pristine)) / 3, "truncated: the meta page"},
	} {
		t.Run(fmt.Sprint(c.cut), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "concord.db")
			damage{cut: c.cut}.apply(t, pristine, witness, path)
			refused(t, path, ErrDamaged, []string{c.naming})
		})
	}
}

// A flipped bit in a stored value (CANARY became BANARY) is found when the
// file is opened, and, if it happens while the store is open, when the
// value is loaded: an error naming the record, never the changed value.
func TestFlippedBitInAValueIsFound(t *testing.T) {
	dir := t.TempDir()
	fixture := filepath.Join(dir, "pristine.db")
	writeFixture(t, fixture)
	pristine, witness := readFile(t, fixture), readFile(t, witnessPath(fixture))
	// Older copies of the record may lie in free pages: change them all.
	var flips []flip
	for off := 0; ; {
		i := bytes.Index(pristine[off:], []byte("CANARY"))
		if i < 0 {
			break
		}
		flips = append(flips, flip{off: int64(off + i), mask: 'C' ^ 'B'})
		off += i + 1
	}
	if len(flips) == 0 {
		t.Fatal("no CANARY in the fixture")
	}

	t.Run("on open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "concord.db")
		damage{cut: -1, flips: flips}.apply(t, pristine, witness, path)
		refused(t, path, ErrDamaged, []string{`record "k00"`, "checksum mismatch"})
	})

	t.Run("on load", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "concord.db")
		damage{cut: -1}.apply(t, pristine, witness, path)
		s := open(t, path)
		if m, err := state.Load(ctx, s, []string{"k00"}); err != nil || m["k00"].Fields["bird"] != "CANARY" {
			t.Fatalf("Load before the damage = %v, %v", m, err)
		}
		// The disk changes under the open store (bbolt maps the file
		// shared, so it sees the change).
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range flips {
			if _, err := f.WriteAt([]byte{'B'}, fl.off); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		m, err := state.Load(ctx, s, []string{"k01", "k00"})
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), `record "k00"`) || m != nil {
			t.Fatalf("Load after CANARY became BANARY = %v, %v; want ErrDamaged naming record \"k00\"", m, err)
		}
	})
}

// A store file that is missing, empty or an empty database while its
// witness records that the store wrote data is refused (the state was
// lost, and starting over would reissue the engine's counters), unless the
// host says StartFresh: then a new store starts with a new epoch.
func TestLostFileIsRefusedUnlessStartFresh(t *testing.T) {
	for _, c := range []struct {
		name, state string
		lose        func(t *testing.T, path string)
	}{
		{"missing", "missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"zero length", "empty (0 bytes)", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty database", "an empty database", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "concord.db")
			s := open(t, path)
			for i := range 41 {
				mustCommit(t, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": connector.Cursor(fmt.Sprint(i))}})
			}
			old := mustEpoch(t, s)
			closeStore(t, s)
			if w, err := readWitness(witnessPath(path)); err != nil || w != 41 {
				t.Fatalf("witness = %d, %v; want 41", w, err)
			}
			c.lose(t, path)
			_, statErr := os.Stat(path)
			refused(t, path, ErrMissing, []string{c.state, "generation 41", "StartFresh"})
			if _, err := os.Stat(path); (err == nil) != (statErr == nil) {
				t.Fatalf("the refused Open created or removed the file: %v", err)
			}

			s = open(t, path, StartFresh())
			if !s.Restored() || mustEpoch(t, s) == old {
				t.Fatalf("StartFresh: Restored %v, epoch %d (was %d); want a new epoch", s.Restored(), mustEpoch(t, s), old)
			}
			if cur, _ := s.Cursor(ctx, "a"); cur != "" {
				t.Fatalf("a fresh store has cursor %q", cur)
			}
			fresh := mustEpoch(t, s)
			closeStore(t, s)
			if w, _ := readWitness(witnessPath(path)); w <= 41 {
				t.Fatalf("witness after StartFresh = %d; want past 41, so generations never repeat", w)
			}
			// From now on it is an ordinary store.
			s = open(t, path)
			if s.Restored() || mustEpoch(t, s) != fresh {
				t.Fatalf("reopen after StartFresh: Restored %v, epoch changed %v", s.Restored(), mustEpoch(t, s) != fresh)
			}
		})
	}
}

// A missing file with no witness, or a witness at generation 0, is a new
// store: no StartFresh needed.
func TestNewStoreNeedsNoStartFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	s := open(t, path)
	if s.Restored() {
		t.Fatal("a new store reports Restored")
	}
	closeStore(t, s)
	// Opened and closed without a write: witness 0.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	open(t, path)
}

// The whole folder restored (database and witness together) is not
// detected: both say the same older generation. A witness kept elsewhere
// with WithWitness is not restored with the folder, so it is.
func TestWitnessElsewhereDetectsFolderRestore(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		t.Run(fmt.Sprintf("witness elsewhere %v", elsewhere), func(t *testing.T) {
			root := t.TempDir()
			folder, backup := filepath.Join(root, "data"), filepath.Join(root, "backup")
			for _, d := range []string{folder, backup, filepath.Join(root, "other-volume")} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(folder, "concord.db")
			var opts []Option
			if elsewhere {
				opts = append(opts, WithWitness(filepath.Join(root, "other-volume", "concord.witness")))
			}
			commit := func(s *Store, n int) {
				for i := range n {
					mustCommit(t, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": connector.Cursor(fmt.Sprint(i))}})
				}
			}
			copyFolder := func(from, to string) {
				entries, err := os.ReadDir(from)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					copyFile(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
				}
			}
			s := open(t, path, opts...)
			commit(s, 3)
			first := mustEpoch(t, s)
			closeStore(t, s)
			copyFolder(folder, backup)
			s = open(t, path, opts...)
			commit(s, 5)
			closeStore(t, s)
			copyFolder(backup, folder) // the folder restored whole

			s = open(t, path, opts...)
			if s.Restored() != elsewhere {
				t.Fatalf("folder restored, witness elsewhere %v: Restored() = %v; want %v", elsewhere, s.Restored(), elsewhere)
			}
			if elsewhere && mustEpoch(t, s) == first {
				t.Fatal("restore detected but the epoch did not change")
			}
			_, err := os.Stat(witnessPath(path))
			if elsewhere != errors.Is(err, os.ErrNotExist) {
				t.Fatalf("witness beside the file with WithWitness %v: %v", elsewhere, err)
			}
			if elsewhere && s.Witness() != filepath.Join(root, "other-volume", "concord.witness") {
				t.Fatalf("Witness() = %s", s.Witness())
			}
		})
	}
}

func TestWitnessCannotBeTheStoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	for _, w := range []string{path, path + "/", filepath.Join(filepath.Dir(path), ".", "concord.db")} {
		if s, err := Open(path, WithLogger(quiet), WithWitness(w)); err == nil {
			s.Close()
			t.Fatalf("Open with the witness %s at the store file succeeded", w)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused Open created the file: %v", err)
	}
}

// newestMeta returns the offset of the meta page bbolt uses and its
// transaction ID.
func newestMeta(t *testing.T, b []byte) int64 {
	t.Helper()
	ps := os.Getpagesize()
	m0, m1 := parseMeta(b), parseMeta(b[ps:])
	if m0.valid() != nil || m1.valid() != nil {
		t.Fatal("the fixture has an invalid meta page")
	}
	if m1.txid > m0.txid {
		return int64(ps)
	}
	return 0
}

// A damaged newest meta page makes bbolt fall back to the transaction
// before. That is a torn write if the last commit never returned (the
// witness does not record it): the store opens as it was before. If the
// witness records the last commit, it returned, and falling back would
// lose it silently: refused.
func TestDamagedNewestMetaPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "concord.db")
	s := open(t, path)
	for i := range 4 {
		mustCommit(t, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": connector.Cursor(fmt.Sprint(i))}})
	}
	closeStore(t, s)
	b := readFile(t, path)
	off := newestMeta(t, b) + pageHeaderSize + 56 // its checksum
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	refused(t, path, ErrDamaged, []string{"bbolt falls back", "witness records generation 4", "last commits are lost"})

	// The same file after a power failure during commit 4: the witness
	// still says 3.
	if err := writeWitness(witnessPath(path), 3); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	if cur, err := s.Cursor(ctx, "a"); err != nil || cur != "2" || s.Restored() {
		t.Fatalf("after a torn meta write: cursor %q, %v, Restored %v; want the state of commit 3 (cursor 2)", cur, err, s.Restored())
	}
	// The next commit writes over the damaged page.
	mustCommit(t, s, &state.Commit{Cursors: map[concord.SystemID]connector.Cursor{"a": "again"}})
	closeStore(t, s)
	s = open(t, path)
	if cur, _ := s.Cursor(ctx, "a"); cur != "again" {
		t.Fatalf("cursor after the repair = %q", cur)
	}
}
