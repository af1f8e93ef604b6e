package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	gosync "sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/statecodec"
	recsync "github.com/concordsync/concord/sync"
)

var (
	// ErrNotAStore is returned by [Open] for a file that is not a Concord
	// store: not a bbolt database, or one holding something else. The
	// file is not modified.
	ErrNotAStore = errors.New("boltstore: not a Concord store")
	// ErrNewerFormat is returned by [Open] for a store written by a newer
	// Concord (a newer [FormatVersion]), and by Load and DeadLetters for a
	// value encoded in a newer statecodec format. Nothing is written.
	ErrNewerFormat = errors.New("boltstore: written by a newer format version")
	// ErrCorrupt is wrapped by errors about stored data that cannot be
	// decoded; the error names the record key, dead letter or lease.
	ErrCorrupt = errors.New("boltstore: corrupt data")
	// ErrLocked is returned by [Open] when another Store (in this or
	// another process) still has the file open after the timeout.
	ErrLocked = errors.New("boltstore: file locked by another store")
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("boltstore: store closed")
)

// DefaultTimeout is how long [Open] waits for the file lock unless
// [WithTimeout] says otherwise.
const DefaultTimeout = time.Second

// Option configures [Open].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	now     func() time.Time
	timeout time.Duration
	log     *slog.Logger
	layout  layout
}

// WithClock sets the clock for lease expiry; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// WithTimeout sets how long Open waits for a file locked by another Store
// before failing with [ErrLocked]; it must be positive. The default is
// [DefaultTimeout].
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.timeout = d })
}

// WithLogger sets the logger for what Open finds (a migration, a restore)
// and for failures to write the witness file; the default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.log = l })
}

// withLayout replaces the format version and migrations (for tests).
func withLayout(l layout) Option {
	return optionFunc(func(o *options) { o.layout = l })
}

// Store is a [recsync.Store] in a bbolt file. Create it with [Open]; it is
// safe for concurrent use by several goroutines.
type Store struct {
	db       *bolt.DB
	path     string
	now      func() time.Time
	log      *slog.Logger
	restored bool
	closed   atomic.Bool

	wmu       gosync.Mutex // serialises witness writes
	witnessed uint64       // the generation last recorded in the witness
}

var _ recsync.Store = (*Store)(nil)

// Open opens the store in the file at path, creating it if it does not
// exist, migrating it if it has an older format, and checking the witness
// for a restore (see the package doc). The caller must Close the Store.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, timeout: DefaultTimeout, log: slog.Default(), layout: currentLayout()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	switch {
	case o.now == nil:
		return nil, fmt.Errorf("boltstore: open %s: nil clock", path)
	case o.timeout <= 0:
		return nil, fmt.Errorf("boltstore: open %s: timeout %v is not positive", path, o.timeout)
	case o.log == nil:
		return nil, fmt.Errorf("boltstore: open %s: nil logger", path)
	}
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return nil, fmt.Errorf("boltstore: open %s: %w: a directory", path, ErrNotAStore)
	case err == nil && info.Size() > 0:
		// Inspect an existing file read-only first, so that a foreign or
		// newer file is never opened for writing.
		if err := inspect(path, o); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.timeout})
	if err != nil {
		return nil, openErr(path, o.timeout, err)
	}
	// Read the witness under the file lock: no other Store writes it now.
	witness, werr := readWitness(path)
	if werr != nil {
		o.log.Warn("boltstore: ignoring unreadable witness", "path", path, "err", werr)
	}
	p, err := prepare(db, o.layout, witness)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: o.now, log: o.log, restored: p.restored, witnessed: witness}
	if p.migratedTo != 0 {
		o.log.Info("boltstore: migrated the file format", "path", path, "format", p.migratedTo)
	}
	if p.restored {
		o.log.Warn("boltstore: the file is older than its witness (restored from a backup?); moved to a new epoch",
			"path", path, "file_generation", p.fileGen, "witness_generation", witness,
			"old_epoch", p.oldEpoch, "epoch", p.epoch)
	}
	s.witness(p.generation)
	return s, nil
}

// inspect checks an existing file through a read-only handle.
func inspect(path string, o options) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: o.timeout})
	if err != nil {
		return openErr(path, o.timeout, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		_, err := classify(tx, o.layout)
		return err
	})
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return nil
}

func openErr(path string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return fmt.Errorf("boltstore: open %s: %w: still locked after %v", path, ErrLocked, timeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum):
		return fmt.Errorf("boltstore: open %s: %w: not a bbolt database: %w", path, ErrNotAStore, err)
	}
	return fmt.Errorf("boltstore: open %s: %w", path, err)
}

// Close closes the file, waiting for running transactions. Closing a closed
// Store does nothing.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the file the Store was opened from.
func (s *Store) Path() string { return s.path }

// Restored reports whether Open found the file older than its witness and
// therefore moved to a new epoch (see "Restore detection" in the package
// doc).
func (s *Store) Restored() bool { return s.restored }

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return s.wrap(op, err)
	}
	return s.wrap(op, s.db.View(fn))
}

// update runs fn in a read-write transaction, increments the generation in
// the same transaction and records it in the witness. fn may return
// errNoChange to roll back without an error.
func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return s.wrap(op, err)
	}
	var gen uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		// The context may have ended while waiting for the writer lock.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		g, _ := getUint(meta, kGeneration)
		gen = g + 1
		return putUint(meta, kGeneration, gen)
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return s.wrap(op, err)
	}
	s.witness(gen)
	return nil
}

func (s *Store) usable(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return fmt.Errorf("boltstore: %s %s: %w", op, s.path, err)
}

// witness records generation gen in the witness file. A failure is logged,
// not returned: the write it follows is already durable, and a stale
// witness only weakens restore detection.
func (s *Store) witness(gen uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if gen <= s.witnessed {
		return
	}
	if err := writeWitness(s.path, gen); err != nil {
		s.log.Warn("boltstore: cannot write the witness file", "path", s.path, "generation", gen, "err", err)
		return
	}
	s.witnessed = gen
}

// Actor implements [recsync.Store]. Numbers are given in order from 1 and
// are never reused.
func (s *Store) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if name == "" {
		return 0, fmt.Errorf("boltstore: actor: empty name")
	}
	op := fmt.Sprintf("actor %q", name)
	var a concord.Actor
	var found bool
	get := func(tx *bolt.Tx) error {
		v := tx.Bucket(bActors).Get([]byte(name))
		if v == nil {
			return nil
		}
		if len(v) != 4 {
			return fmt.Errorf("%w: actor %q has %d bytes", ErrCorrupt, name, len(v))
		}
		a, found = concord.Actor(binary.BigEndian.Uint32(v)), true
		return nil
	}
	if err := s.view(ctx, op, get); err != nil || found {
		return a, err
	}
	err := s.update(ctx, op, func(tx *bolt.Tx) error {
		// Another caller may have assigned it since the read above.
		if err := get(tx); err != nil {
			return err
		}
		if found {
			return errNoChange
		}
		b := tx.Bucket(bActors)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		if n > math.MaxUint32 {
			return fmt.Errorf("actor numbers exhausted")
		}
		a = concord.Actor(n)
		return b.Put([]byte(name), binary.BigEndian.AppendUint32(nil, uint32(n)))
	})
	return a, err
}

// Epoch implements [recsync.Store].
func (s *Store) Epoch(ctx context.Context) (uint64, error) {
	var e uint64
	err := s.view(ctx, "epoch", func(tx *bolt.Tx) error {
		var ok bool
		if e, ok = getUint(tx.Bucket(bMeta), kEpoch); !ok {
			return fmt.Errorf("%w: bad epoch", ErrCorrupt)
		}
		return nil
	})
	return e, err
}

// NewEpoch implements [recsync.Store]: the new epoch is
// [recsync.NextEpoch] of the old one, persisted.
func (s *Store) NewEpoch(ctx context.Context) (uint64, error) {
	var e uint64
	err := s.update(ctx, "new epoch", func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		old, ok := getUint(meta, kEpoch)
		if !ok {
			return fmt.Errorf("%w: bad epoch", ErrCorrupt)
		}
		e = recsync.NextEpoch(old)
		return putUint(meta, kEpoch, e)
	})
	return e, err
}

// AcquireLease implements [recsync.Store] by [recsync.NextLease], in one
// transaction, at the time of the Store's clock.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (recsync.Lease, error) {
	if name == "" {
		return recsync.Lease{}, fmt.Errorf("boltstore: acquire lease: empty name")
	}
	var l recsync.Lease
	err := s.update(ctx, fmt.Sprintf("acquire lease %q", name), func(tx *bolt.Tx) error {
		b := tx.Bucket(bLeases)
		cur, err := getLease(b, name)
		if err != nil {
			return err
		}
		if l, err = recsync.NextLease(cur, name, holder, ttl, s.now()); err != nil {
			return err
		}
		return putLease(b, l)
	})
	if err != nil {
		return recsync.Lease{}, err
	}
	return l, nil
}

// ReleaseLease implements [recsync.Store]. The token is kept, so that the
// next holder's is greater.
func (s *Store) ReleaseLease(ctx context.Context, l recsync.Lease) error {
	if l.Name == "" {
		return fmt.Errorf("boltstore: release lease: empty name")
	}
	return s.update(ctx, fmt.Sprintf("release lease %q", l.Name), func(tx *bolt.Tx) error {
		b := tx.Bucket(bLeases)
		cur, err := getLease(b, l.Name)
		if err != nil {
			return err
		}
		if cur.Holder != l.Holder || cur.Token != l.Token {
			return errNoChange
		}
		cur.Holder, cur.Expires = "", time.Time{}
		return putLease(b, cur)
	})
}

// getLease returns the stored lease name (the zero Lease if none).
func getLease(b *bolt.Bucket, name string) (recsync.Lease, error) {
	v := b.Get([]byte(name))
	if v == nil {
		return recsync.Lease{}, nil
	}
	bad := fmt.Errorf("%w: lease %q", ErrCorrupt, name)
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return recsync.Lease{}, bad
	}
	l := recsync.Lease{Name: name, Token: binary.BigEndian.Uint64(v)}
	if err := l.Expires.UnmarshalBinary(v[9 : 9+int(v[8])]); err != nil {
		return recsync.Lease{}, fmt.Errorf("%w: expiry: %w", bad, err)
	}
	l.Holder = string(v[9+int(v[8]):])
	return l, nil
}

func putLease(b *bolt.Bucket, l recsync.Lease) error {
	t, err := l.Expires.MarshalBinary()
	if err != nil {
		return fmt.Errorf("lease %q expiry: %w", l.Name, err)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(t)+len(l.Holder)), l.Token)
	v = append(append(append(v, byte(len(t))), t...), l.Holder...)
	return b.Put([]byte(l.Name), v)
}

// Cursor implements [recsync.Store].
func (s *Store) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	var c connector.Cursor
	err := s.view(ctx, fmt.Sprintf("cursor of %s", system), func(tx *bolt.Tx) error {
		if system != "" {
			c = connector.Cursor(tx.Bucket(bCursors).Get([]byte(system)))
		}
		return nil
	})
	return c, err
}

// Load implements [recsync.Store]. Every state is decoded afresh: the
// caller owns what it gets.
func (s *Store) Load(ctx context.Context, keys []string) (map[string]*recsync.RecordState, error) {
	out := make(map[string]*recsync.RecordState, len(keys))
	err := s.view(ctx, "load", func(tx *bolt.Tx) error {
		b := tx.Bucket(bStates)
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			v := b.Get([]byte(k))
			if v == nil {
				continue
			}
			st, err := decodeState(k, v)
			if err != nil {
				return err
			}
			out[k] = st
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Pending implements [recsync.Store] by a scan of the pending index.
func (s *Store) Pending(ctx context.Context, limit int) ([]string, error) {
	return s.keys(ctx, "pending", bPending, limit)
}

// Held implements [recsync.Store] by a scan of the held index.
func (s *Store) Held(ctx context.Context) ([]string, error) {
	return s.keys(ctx, "held", bHeld, math.MaxInt)
}

func (s *Store) keys(ctx context.Context, op string, bucket []byte, limit int) ([]string, error) {
	keys := []string{}
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// DeadLetters implements [recsync.Store].
func (s *Store) DeadLetters(ctx context.Context) ([]recsync.DeadLetter, error) {
	out := []recsync.DeadLetter{}
	err := s.view(ctx, "dead letters", func(tx *bolt.Tx) error {
		return tx.Bucket(bDeadLetters).ForEach(func(k, v []byte) error {
			dl, err := statecodec.DecodeDeadLetter(v)
			if err != nil {
				return codecErr(fmt.Sprintf("dead letter %x", k), err)
			}
			if len(k) != 8 {
				return fmt.Errorf("%w: dead letter key %x", ErrCorrupt, k)
			}
			dl.ID = binary.BigEndian.Uint64(k)
			out = append(out, dl)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Commit implements [recsync.Store]: one read-write transaction, fsynced
// before Commit returns. On success each given state's Rev is its new
// revision; on error nothing is stored and no Rev changes.
func (s *Store) Commit(ctx context.Context, c *recsync.Commit) error {
	if c == nil {
		return fmt.Errorf("boltstore: commit: nil Commit")
	}
	// Encode before taking the writer lock, each state at the revision it
	// will have.
	enc := make([][]byte, len(c.States))
	for i, st := range c.States {
		if st.Key == "" {
			return fmt.Errorf("boltstore: commit: state %d has an empty key", i)
		}
		var err error
		if enc[i], err = encodeState(st, st.Rev+1); err != nil {
			return fmt.Errorf("boltstore: commit: record %q: %w", st.Key, err)
		}
	}
	dead := make([][]byte, len(c.DeadLetters))
	for i, dl := range c.DeadLetters {
		var err error
		if dead[i], err = statecodec.EncodeDeadLetter(nil, dl); err != nil {
			return fmt.Errorf("boltstore: commit: dead letter for %q from %s: %w", dl.Key, dl.System, err)
		}
	}
	err := s.update(ctx, "commit", func(tx *bolt.Tx) error {
		if l := c.Lease; l != nil {
			cur, err := getLease(tx.Bucket(bLeases), l.Name)
			if err != nil {
				return err
			}
			if cur.Token != l.Token || cur.Holder != l.Holder {
				return fmt.Errorf("%w: lease %q token %d superseded by %d", recsync.ErrStale, l.Name, l.Token, cur.Token)
			}
		}
		states := tx.Bucket(bStates)
		// Check every revision against the stored state before writing
		// any, as a duplicate key in one commit sees the old revision.
		for _, st := range c.States {
			v := states.Get([]byte(st.Key))
			var rev uint64
			if v != nil {
				if len(v) < 8 {
					return fmt.Errorf("%w: record %q: no revision", ErrCorrupt, st.Key)
				}
				rev = binary.BigEndian.Uint64(v)
			}
			if st.Rev != rev {
				return fmt.Errorf("%w: record %q is at revision %d, not %d", recsync.ErrStale, st.Key, rev, st.Rev)
			}
		}
		cursors := tx.Bucket(bCursors)
		for sys, cur := range c.Cursors {
			if err := cursors.Put([]byte(sys), []byte(cur)); err != nil {
				return fmt.Errorf("cursor of %q: %w", sys, err)
			}
		}
		pending, held := tx.Bucket(bPending), tx.Bucket(bHeld)
		for i, st := range c.States {
			k := []byte(st.Key)
			if err := firstErr(states.Put(k, enc[i]), setIndex(pending, k, st.Pending()), setIndex(held, k, st.Held())); err != nil {
				return fmt.Errorf("record %q: %w", st.Key, err)
			}
		}
		dl := tx.Bucket(bDeadLetters)
		for _, id := range c.RemoveDeadLetters {
			if err := dl.Delete(binary.BigEndian.AppendUint64(nil, id)); err != nil {
				return fmt.Errorf("removing dead letter %d: %w", id, err)
			}
		}
		for i, v := range dead {
			seq, err := dl.NextSequence()
			if err != nil {
				return err
			}
			if err := dl.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
				return fmt.Errorf("dead letter for %q from %s: %w", c.DeadLetters[i].Key, c.DeadLetters[i].System, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, st := range c.States {
		st.Rev++
	}
	return nil
}

func setIndex(b *bolt.Bucket, key []byte, on bool) error {
	if on {
		return b.Put(key, nil)
	}
	return b.Delete(key)
}

// encodeState returns the stored form of st at revision rev: rev, then the
// statecodec encoding of st with that Rev. st is not modified.
func encodeState(st *recsync.RecordState, rev uint64) ([]byte, error) {
	cp := *st // shallow: only Rev differs, nothing is written through it
	cp.Rev = rev
	return statecodec.EncodeState(binary.BigEndian.AppendUint64(make([]byte, 0, 512), rev), &cp)
}

// decodeState decodes a stored state and checks that its two revisions
// agree.
func decodeState(key string, v []byte) (*recsync.RecordState, error) {
	if len(v) < 8 {
		return nil, fmt.Errorf("%w: record %q: no revision", ErrCorrupt, key)
	}
	st, err := statecodec.DecodeState(v[8:])
	if err != nil {
		return nil, codecErr(fmt.Sprintf("record %q", key), err)
	}
	if rev := binary.BigEndian.Uint64(v); st.Rev != rev || st.Key != key {
		return nil, fmt.Errorf("%w: record %q: stored as %q at revision %d, indexed at %d", ErrCorrupt, key, st.Key, st.Rev, rev)
	}
	return st, nil
}

// codecErr wraps a statecodec error in this package's sentinel as well.
func codecErr(what string, err error) error {
	if errors.Is(err, statecodec.ErrNewerFormat) {
		return fmt.Errorf("%w: %s: %w", ErrNewerFormat, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, what, err)
}
