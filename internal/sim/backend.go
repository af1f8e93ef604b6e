package sim

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// Backend is a durable store the engine's state lives in during a run
// (Options.Backend), beside the default store.Memory. The harness calls it
// as a process's life would: Open when a process starts, Close when it
// ends (a crash, a panic, the end of the run), and Snapshot and Restore for
// KindRestore (a backup taken, and an older one put back).
type Backend interface {
	// Name is the backend's -sim.store name.
	Name() string
	// Open opens the store, as a (re)started process does; clock is the
	// simulation's.
	Open(clock func() time.Time) (store.Store, error)
	// Close closes what Open returned.
	Close() error
	// Snapshot copies the store's contents as a backup does. It may
	// close and reopen the store (Open's store is then replaced by the
	// one it returns; nil if it was not).
	Snapshot() (snap any, reopened store.Store, err error)
	// Restore puts snapshot back in place of the store's contents, moved
	// to a new epoch, and returns the store as the next process opens it.
	// A store that must detect a restore by itself (a bbolt file and its
	// witness) is checked to have done so (ErrUndetected); for the others
	// the backend starts the new epoch, as an operator restoring a
	// database does.
	Restore(snap any) (reopened store.Store, err error)
}

// ErrUndetected is Restore's error when a store that must detect a restored
// copy by itself did not.
var ErrUndetected = errors.New("the store did not detect that an older copy was restored")

// Bolt returns the backend of a bbolt store (sync/store/boltstore) in dir:
// a crash closes the file and the next instance opens it again, a snapshot
// is a copy of the database file, and a restore writes an old copy back
// under the witness file the store keeps beside it, which must detect it
// and move to a new epoch by itself.
func Bolt(dir string) Backend { return &boltBackend{dir: dir} }

type boltBackend struct {
	dir string
	st  *boltstore.Store
	now func() time.Time
}

func (b *boltBackend) Name() string { return "bolt" }

func (b *boltBackend) path() string { return filepath.Join(b.dir, "concord.db") }

func (b *boltBackend) Open(clock func() time.Time) (store.Store, error) {
	b.now = clock
	st, err := boltstore.Open(b.path(), boltstore.WithClock(clock), boltstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, fmt.Errorf("opening the bbolt store: %w", err)
	}
	b.st = st
	return st, nil
}

func (b *boltBackend) Close() error {
	if b.st == nil {
		return nil
	}
	err := b.st.Close()
	b.st = nil
	return err
}

// Snapshot copies the file, closed: what a backup of a stopped process
// holds.
func (b *boltBackend) Snapshot() (any, store.Store, error) {
	if err := b.Close(); err != nil {
		return nil, nil, err
	}
	snap, err := os.ReadFile(b.path())
	if err != nil {
		return nil, nil, err
	}
	st, err := b.Open(b.now)
	return snap, st, err
}

func (b *boltBackend) Restore(snap any) (store.Store, error) {
	if err := b.Close(); err != nil {
		return nil, err
	}
	old := snap.([]byte)
	cur, err := os.ReadFile(b.path())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(b.path(), old, 0o600); err != nil {
		return nil, err
	}
	st, err := b.Open(b.now) // the witness beside it tells the store it was restored
	if err != nil {
		return nil, err
	}
	if !b.st.Restored() && !bytes.Equal(cur, old) {
		return st, ErrUndetected
	}
	return st, nil
}
