package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/checksum"
	"github.com/concordsync/concord/sync/store"
)

var (
	// ErrNotAStore is returned by [Open] for a file that is not a Concord
	// store: not a bbolt database, or one holding something else. The
	// file is not modified.
	ErrNotAStore = errors.New("boltstore: not a Concord store")
	// ErrNewerFormat is returned by [Open] for a store written by a newer
	// Concord (a newer [FormatVersion]). Nothing is written.
	ErrNewerFormat = errors.New("boltstore: written by a newer format version")
	// ErrDamaged is wrapped by every error about a damaged file: one that
	// is truncated, whose bbolt structure is inconsistent, whose values do
	// not match their checksums or cannot be decoded, or on which bbolt
	// panicked or faulted. The error names the file and what is wrong: the
	// page, or the record key, dead letter, actor, cursor or lease. Open
	// refuses such a file without writing to it; restore it from a backup
	// (and see "Restore detection" in the package doc). errors.Is
	// matches it with store.ErrDamaged too.
	ErrDamaged error = damagedError("boltstore: damaged store file")
	// ErrCorrupt is ErrDamaged, under its former name.
	//
	// Deprecated: use ErrDamaged.
	ErrCorrupt = ErrDamaged
	// ErrMissing is returned by [Open] when the store file is missing,
	// empty, or an empty database, while its witness file records that the
	// store had written data: the store's state was lost. Open refuses to
	// start over unless the host says so with [StartFresh].
	ErrMissing = errors.New("boltstore: store file missing or empty, but its witness says it held data")
	// ErrLocked is returned by [Open] when another Store (in this or
	// another process) still has the file open after the timeout.
	ErrLocked = errors.New("boltstore: file locked by another store")
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("boltstore: store closed")
)

// damagedError is the type of ErrDamaged: a sentinel with its own text
// that errors.Is also matches with store.ErrDamaged, so that hosts can test
// for damage whatever the store.
type damagedError string

func (e damagedError) Error() string { return string(e) }

// Is reports whether target is store.ErrDamaged.
func (e damagedError) Is(target error) bool { return target == store.ErrDamaged }

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
	witness string // "" for the default, path + ".witness"
	fresh   bool
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

// WithWitness keeps the witness file (see "Restore detection" in the
// package doc) at path instead of beside the store file. Put it where a
// restore of the store's folder does not reach (another volume, a
// directory the backup leaves out): then restoring the folder, database
// and all, is detected too. Each store needs a witness of its own. The
// path must not be empty or the store file's own.
func WithWitness(path string) Option {
	return optionFunc(func(o *options) { o.witness = path })
}

// StartFresh lets Open create a new, empty store where the file is
// missing, empty or an empty database although the witness records that
// the store had written data (without it, Open fails with [ErrMissing]).
// The new store has a new epoch, its generations continue past the
// witness's, and [Store.Restored] reports true. StartFresh changes nothing
// for a file that holds a store, and a damaged file is refused with or
// without it: move it away first.
func StartFresh() Option {
	return optionFunc(func(o *options) { o.fresh = true })
}

// withLayout replaces the format version and migrations (for tests).
func withLayout(l layout) Option {
	return optionFunc(func(o *options) { o.layout = l })
}

// Store is a [store.Store] in a bbolt file. Create it with [Open]; it is
// safe for concurrent use by several goroutines.
type Store struct {
	db       *bolt.DB
	path     string
	wpath    string // the witness file
	now      func() time.Time
	log      *slog.Logger
	restored bool
	closed   atomic.Bool

	wmu       gosync.Mutex // serialises witness writes
	witnessed uint64       // the generation last recorded in the witness
}

var _ store.Store = (*Store)(nil)

// Open opens the store in the file at path, creating it if it does not
// exist, migrating it if it has an older format, and checking the witness
// for a restore (see the package doc). An existing file is checked whole
// before bbolt maps it, and every value's checksum is verified: a damaged
// file is refused with an error wrapping [ErrDamaged] and left as it is.
// The caller must Close the Store.
func Open(path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, timeout: DefaultTimeout, log: slog.Default(), layout: currentLayout()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.witness == "" {
		o.witness = path + ".witness"
	}
	switch {
	case o.now == nil:
		return nil, fmt.Errorf("boltstore: open %s: nil clock", path)
	case o.timeout <= 0:
		return nil, fmt.Errorf("boltstore: open %s: timeout %v is not positive", path, o.timeout)
	case o.log == nil:
		return nil, fmt.Errorf("boltstore: open %s: nil logger", path)
	case filepath.Clean(o.witness) == filepath.Clean(path):
		return nil, fmt.Errorf("boltstore: open %s: the witness cannot be the store file", path)
	}
	var fc fileCheck
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return nil, fmt.Errorf("boltstore: open %s: %w: a directory", path, ErrNotAStore)
	case err == nil && info.Size() > 0:
		// Check an existing file with ordinary reads, then through a
		// read-only handle, so that a damaged, foreign or newer file is
		// never mapped unchecked nor opened for writing.
		if fc, err = checkFile(path); err != nil {
			return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
		}
		if err := inspect(path, o); err != nil {
			return nil, err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	default: // missing or empty
		w, werr := readWitness(o.witness)
		if werr != nil {
			o.log.Warn("boltstore: ignoring unreadable witness", "path", path, "witness", o.witness, "err", werr)
		}
		if w > 0 && !o.fresh {
			state := "missing"
			if err == nil {
				state = "empty (0 bytes)"
			}
			return nil, fmt.Errorf("boltstore: open %s: %w: the file is %s, but the witness %s records generation %d (use StartFresh to start a new store)",
				path, ErrMissing, state, o.witness, w)
		}
	}
	var db *bolt.DB
	err = guard("open", func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: o.timeout})
		return err
	})
	if err != nil {
		return nil, openErr(path, o.timeout, err)
	}
	// Read the witness under the file lock: no other Store writes it now.
	witness, werr := readWitness(o.witness)
	if werr != nil {
		o.log.Warn("boltstore: ignoring unreadable witness", "path", path, "witness", o.witness, "err", werr)
	}
	var p prepared
	err = guard("open", func() error {
		var err error
		p, err = prepare(db, o.layout, witness, fc.fellBack, o.fresh)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, wpath: o.witness, now: o.now, log: o.log, restored: p.restored, witnessed: witness}
	if p.migratedTo != 0 {
		o.log.Info("boltstore: migrated the file format", "path", path, "format", p.migratedTo)
	}
	switch {
	case p.fresh:
		o.log.Warn("boltstore: started a new store although the witness records data (StartFresh)",
			"path", path, "witness", o.witness, "witness_generation", witness, "epoch", p.epoch)
	case p.restored:
		o.log.Warn("boltstore: the file is older than its witness (restored from a backup?); moved to a new epoch",
			"path", path, "witness", o.witness, "file_generation", p.fileGen, "witness_generation", witness,
			"old_epoch", p.oldEpoch, "epoch", p.epoch)
	case fc.fellBack != "":
		o.log.Warn("boltstore: the newest meta page is invalid (a torn write?); using the previous transaction, which the witness does not contradict",
			"path", path, "detail", fc.fellBack)
	}
	s.witness(p.generation)
	return s, nil
}

// inspect checks an existing file through a read-only handle: what it is,
// and for format 2 and later, every value's checksum and every bucket's
// count.
func inspect(path string, o options) error {
	var db *bolt.DB
	err := guard("open", func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: o.timeout})
		return err
	})
	if err != nil {
		return openErr(path, o.timeout, err)
	}
	defer db.Close()
	err = guard("check", func() error {
		return db.View(func(tx *bolt.Tx) error {
			v, err := classify(tx, o.layout)
			if err != nil || v < 2 {
				return err
			}
			return checkContents(tx, v)
		})
	})
	if err != nil {
		return fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	return nil
}

// guard runs fn, which calls into bbolt, and turns a panic in it into an
// error wrapping ErrDamaged. A memory fault (bbolt reading a page that is
// not in the file) becomes such a panic too, instead of killing the
// process: bbolt's reads happen in the calling goroutine, for which guard
// sets debug.SetPanicOnFault.
func guard(op string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt failed during %s: %v", ErrDamaged, op, r)
		}
	}()
	return fn()
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

// Restored reports whether Open found the store's state not continuous
// with what its witness recorded, and therefore moved to a new epoch: the
// file was older than the witness (restored from a backup), or it was
// missing or empty and [StartFresh] started a new store (see "Restore
// detection" in the package doc).
func (s *Store) Restored() bool { return s.restored }

// Witness returns the path of the witness file.
func (s *Store) Witness() string { return s.wpath }

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := s.usable(ctx); err != nil {
		return s.wrap(op, err)
	}
	return s.wrap(op, guard(op, func() error { return s.db.View(fn) }))
}

// update runs fn in a read-write transaction, increments the generation in
// the same transaction and records it in the witness. fn may return
// errNoChange to roll back without an error.
func (s *Store) update(ctx context.Context, op string, fn func(w *wtx) error) error {
	if err := s.usable(ctx); err != nil {
		return s.wrap(op, err)
	}
	var gen uint64
	err := guard(op, func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			// The context may have ended while waiting for the writer lock.
			if err := ctx.Err(); err != nil {
				return err
			}
			w := newWtx(tx)
			if err := fn(w); err != nil {
				return err
			}
			if err := w.finish(); err != nil {
				return err
			}
			g, err := getMeta(tx, kGeneration)
			if err != nil {
				return err
			}
			gen = g + 1
			return putMeta(tx, kGeneration, gen)
		})
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
	if err := writeWitness(s.wpath, gen); err != nil {
		s.log.Warn("boltstore: cannot write the witness file", "path", s.path, "witness", s.wpath, "generation", gen, "err", err)
		return
	}
	s.witnessed = gen
}

// Actor implements [store.Store]. Numbers are given in order from 1 and
// are never reused.
func (s *Store) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if name == "" {
		return 0, fmt.Errorf("boltstore: actor: empty name")
	}
	op := fmt.Sprintf("actor %q", name)
	var a concord.Actor
	var found bool
	get := func(tx *bolt.Tx) error {
		v, err := get(tx, bActors, []byte(name))
		if v == nil || err != nil {
			return err
		}
		if len(v) != 4 {
			return fmt.Errorf("%w: actor %q has %d bytes", ErrDamaged, name, len(v))
		}
		a, found = concord.Actor(binary.BigEndian.Uint32(v)), true
		return nil
	}
	if err := s.view(ctx, op, get); err != nil || found {
		return a, err
	}
	err := s.update(ctx, op, func(w *wtx) error {
		// Another caller may have assigned it since the read above.
		if err := get(w.tx); err != nil {
			return err
		}
		if found {
			return errNoChange
		}
		n, err := w.next(kActorSeq)
		if err != nil {
			return err
		}
		if n > math.MaxUint32 {
			return fmt.Errorf("actor numbers exhausted")
		}
		a = concord.Actor(n)
		return w.put(bActors, []byte(name), binary.BigEndian.AppendUint32(nil, uint32(n)))
	})
	return a, err
}

// Epoch implements [store.Store].
func (s *Store) Epoch(ctx context.Context) (uint64, error) {
	var e uint64
	err := s.view(ctx, "epoch", func(tx *bolt.Tx) error {
		var err error
		e, err = getMeta(tx, kEpoch)
		return err
	})
	return e, err
}

// NewEpoch implements [store.Store]: the new epoch is
// [store.NextEpoch] of the old one, persisted.
func (s *Store) NewEpoch(ctx context.Context) (uint64, error) {
	var e uint64
	err := s.update(ctx, "new epoch", func(w *wtx) error {
		old, err := getMeta(w.tx, kEpoch)
		if err != nil {
			return err
		}
		e = store.NextEpoch(old)
		return putMeta(w.tx, kEpoch, e)
	})
	return e, err
}

// AcquireLease implements [store.Store] by [store.NextLease], in one
// transaction, at the time of the Store's clock.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if name == "" {
		return store.Lease{}, fmt.Errorf("boltstore: acquire lease: empty name")
	}
	// A read first: while the holder's lease has more than half its ttl
	// left NextLease leaves it as it is, and while another holds it
	// NextLease refuses: either way nothing is written (no write
	// transaction, no fsync, no witness update).
	op := fmt.Sprintf("acquire lease %q", name)
	var l store.Lease
	var done bool
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		cur, err := getLease(tx, name)
		if err != nil {
			return err
		}
		next, err := store.NextLease(cur, name, holder, ttl, s.now())
		if err != nil {
			return err
		}
		l, done = next, next.Same(cur)
		return nil
	})
	switch {
	case err != nil:
		return store.Lease{}, err
	case done:
		return l, nil
	}
	err = s.update(ctx, op, func(w *wtx) error {
		cur, err := getLease(w.tx, name)
		if err != nil {
			return err
		}
		if l, err = store.NextLease(cur, name, holder, ttl, s.now()); err != nil {
			return err
		}
		if l.Same(cur) {
			return errNoChange
		}
		return putLease(w, l)
	})
	if err != nil {
		return store.Lease{}, err
	}
	return l, nil
}

// ReleaseLease implements [store.Store]. The token is kept, so that the
// next holder's is greater.
func (s *Store) ReleaseLease(ctx context.Context, l store.Lease) error {
	if l.Name == "" {
		return fmt.Errorf("boltstore: release lease: empty name")
	}
	return s.update(ctx, fmt.Sprintf("release lease %q", l.Name), func(w *wtx) error {
		cur, err := getLease(w.tx, l.Name)
		if err != nil {
			return err
		}
		if cur.Holder != l.Holder || cur.Token != l.Token {
			return errNoChange
		}
		cur.Holder, cur.Expires = "", time.Time{}
		return putLease(w, cur)
	})
}

// getLease returns the stored lease name (the zero Lease if none).
func getLease(tx *bolt.Tx, name string) (store.Lease, error) {
	v, err := get(tx, bLeases, []byte(name))
	if v == nil || err != nil {
		return store.Lease{}, err
	}
	return decodeLease(name, v)
}

// decodeLease decodes a lease: the token, one length byte and the expiry
// (time.Time.MarshalBinary), then the holder.
func decodeLease(name string, v []byte) (store.Lease, error) {
	bad := fmt.Errorf("%w: lease %q", ErrDamaged, name)
	if len(v) < 9 || len(v) < 9+int(v[8]) {
		return store.Lease{}, bad
	}
	l := store.Lease{Name: name, Token: binary.BigEndian.Uint64(v)}
	if err := l.Expires.UnmarshalBinary(v[9 : 9+int(v[8])]); err != nil {
		return store.Lease{}, fmt.Errorf("%w: expiry: %w", bad, err)
	}
	l.Holder = string(v[9+int(v[8]):])
	return l, nil
}

func putLease(w *wtx, l store.Lease) error {
	t, err := l.Expires.MarshalBinary()
	if err != nil {
		return fmt.Errorf("lease %q expiry: %w", l.Name, err)
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(t)+len(l.Holder)), l.Token)
	v = append(append(append(v, byte(len(t))), t...), l.Holder...)
	return w.put(bLeases, []byte(l.Name), v)
}

// Cursor implements [store.Store].
func (s *Store) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	var c connector.Cursor
	err := s.view(ctx, fmt.Sprintf("cursor of %s", system), func(tx *bolt.Tx) error {
		if system == "" {
			return nil
		}
		v, err := get(tx, bCursors, []byte(system))
		c = connector.Cursor(v)
		return err
	})
	return c, err
}

// Value implements [store.Meta] by one lookup of its name.
func (s *Store) Value(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckValueName(name); err != nil {
		return nil, fmt.Errorf("boltstore: value: %w", err)
	}
	var v []byte
	err := s.view(ctx, fmt.Sprintf("value %q", name), func(tx *bolt.Tx) error {
		p, err := get(tx, bValues, []byte(name))
		if p != nil {
			v = append(make([]byte, 0, len(p)), p...) // empty stays non-nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Keys implements [store.Records] by a cursor seek in the states bucket,
// verifying the checksum of every state it passes.
func (s *Store) Keys(ctx context.Context, after string, limit int) ([]string, error) {
	keys := []string{}
	if limit <= 0 {
		if err := s.usable(ctx); err != nil {
			return nil, s.wrap("keys", err)
		}
		return keys, nil
	}
	err := s.view(ctx, "keys", func(tx *bolt.Tx) error {
		c := tx.Bucket(bStates).Cursor()
		k, v := c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
		for ; k != nil && len(keys) < limit; k, v = c.Next() {
			if v == nil {
				return fmt.Errorf("%w: %s is a bucket", ErrDamaged, what(bStates, k))
			}
			if _, err := unseal(bStates, k, v); err != nil {
				return err
			}
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// auditHead returns the Seq and payload of the last audit entry (0 and nil
// for an empty log), checking that it is numbered as the log is long.
func auditHead(tx *bolt.Tx) (uint64, []byte, error) {
	k, v := tx.Bucket(bAudit).Cursor().Last()
	n, err := getMeta(tx, countKey(bAudit))
	switch {
	case err != nil:
		return 0, nil, err
	case k == nil && n == 0:
		return 0, nil, nil
	case k == nil:
		return 0, nil, fmt.Errorf("%w: the audit log is empty; the meta bucket counts %d entries", ErrDamaged, n)
	case v == nil || len(k) != 8:
		return 0, nil, fmt.Errorf("%w: %s: not an entry", ErrDamaged, what(bAudit, k))
	}
	seq := binary.BigEndian.Uint64(k)
	if seq != n {
		return 0, nil, fmt.Errorf("%w: the last %s, but the meta bucket counts %d entries", ErrDamaged, what(bAudit, k), n)
	}
	p, err := unseal(bAudit, k, v)
	return seq, p, err
}

// AuditHead implements [store.AuditLog] by the last key of the audit
// bucket.
func (s *Store) AuditHead(ctx context.Context) (store.AuditEntry, error) {
	var e store.AuditEntry
	err := s.view(ctx, "audit head", func(tx *bolt.Tx) error {
		seq, p, err := auditHead(tx)
		if err == nil && seq > 0 {
			e = store.AuditEntry{Seq: seq, Data: bytes.Clone(p)}
		}
		return err
	})
	if err != nil {
		return store.AuditEntry{}, err
	}
	return e, nil
}

// AuditEntries implements [store.AuditLog] by a cursor seek to after+1 in
// the audit bucket, whose keys are big-endian Seqs: its cost depends on
// limit, not on the length of the log. An entry missing in the range read
// is damage.
func (s *Store) AuditEntries(ctx context.Context, after uint64, limit int) ([]store.AuditEntry, error) {
	out := []store.AuditEntry{}
	if limit <= 0 || after == math.MaxUint64 {
		if err := s.usable(ctx); err != nil {
			return nil, s.wrap("audit entries", err)
		}
		return out, nil
	}
	err := s.view(ctx, fmt.Sprintf("audit entries after %d", after), func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		want := after + 1
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, want)); k != nil && len(out) < limit; k, v = c.Next() {
			if v == nil || len(k) != 8 {
				return fmt.Errorf("%w: %s: not an entry", ErrDamaged, what(bAudit, k))
			}
			if seq := binary.BigEndian.Uint64(k); seq != want {
				return fmt.Errorf("%w: %s where entry %d should be: the log has a gap", ErrDamaged, what(bAudit, k), want)
			}
			p, err := unseal(bAudit, k, v)
			if err != nil {
				return err
			}
			out = append(out, store.AuditEntry{Seq: want, Data: bytes.Clone(p)})
			want++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Load implements [store.Records]. The Data returned are copies: the
// caller owns them.
func (s *Store) Load(ctx context.Context, keys []string) (map[string]store.State, error) {
	out := make(map[string]store.State, len(keys))
	err := s.view(ctx, "load", func(tx *bolt.Tx) error {
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			v, err := get(tx, bStates, []byte(k))
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			if len(v) < 8 {
				return fmt.Errorf("%w: record %q: no revision", ErrDamaged, k)
			}
			out[k] = store.State{Key: k, Rev: binary.BigEndian.Uint64(v), Pending: tx.Bucket(bPending).Get([]byte(k)) != nil,
				Held: tx.Bucket(bHeld).Get([]byte(k)) != nil, Data: bytes.Clone(v[8:])}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Pending implements [store.Store] by a scan of the pending index.
func (s *Store) Pending(ctx context.Context, limit int) ([]string, error) {
	return s.keys(ctx, "pending", bPending, limit)
}

// Held implements [store.Store] by a scan of the held index.
func (s *Store) Held(ctx context.Context) ([]string, error) {
	return s.keys(ctx, "held", bHeld, math.MaxInt)
}

func (s *Store) keys(ctx context.Context, op string, bucket []byte, limit int) ([]string, error) {
	keys := []string{}
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil && len(keys) < limit; k, v = c.Next() {
			if _, err := unseal(bucket, k, v); err != nil {
				return err
			}
			keys = append(keys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// DeadLetters implements [store.DeadLetters]: a scan of the dead letter
// bucket, in ID order. System and Key are not stored (Data holds them) and
// are returned empty.
func (s *Store) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	out := []store.DeadLetter{}
	err := s.view(ctx, "dead letters", func(tx *bolt.Tx) error {
		return forEach(tx, bDeadLetters, func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("%w: dead letter key %x", ErrDamaged, k)
			}
			out = append(out, store.DeadLetter{ID: binary.BigEndian.Uint64(k), Data: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeadLetter implements [store.DeadLetters] by one lookup of its key.
func (s *Store) DeadLetter(ctx context.Context, id uint64) (store.DeadLetter, error) {
	var d store.DeadLetter
	err := s.view(ctx, fmt.Sprintf("dead letter %d", id), func(tx *bolt.Tx) error {
		v, err := get(tx, bDeadLetters, binary.BigEndian.AppendUint64(nil, id))
		switch {
		case err != nil:
			return err
		case v == nil:
			return fmt.Errorf("%w: %d", store.ErrNotFound, id)
		}
		d = store.DeadLetter{ID: id, Data: bytes.Clone(v)}
		return nil
	})
	return d, err
}

// DeadLettersOf implements [store.DeadLetters] by a range scan of the
// index by key per key, then one lookup per letter. System, Key and Class
// are returned empty.
func (s *Store) DeadLettersOf(ctx context.Context, keys []string) ([]store.DeadLetter, error) {
	return s.deadIndexed(ctx, "dead letters by key", bDeadKeys, keys)
}

// DeadLettersOfClass implements [store.DeadLetters] by a range scan of the
// index by class, then one lookup per letter. System, Key and Class are
// returned empty.
func (s *Store) DeadLettersOfClass(ctx context.Context, class string) ([]store.DeadLetter, error) {
	return s.deadIndexed(ctx, fmt.Sprintf("dead letters of class %q", class), bDeadClasses, []string{class})
}

// deadIndexed returns the dead letters that index (bDeadKeys or
// bDeadClasses) lists under any of names, in ID order.
func (s *Store) deadIndexed(ctx context.Context, op string, index []byte, names []string) ([]store.DeadLetter, error) {
	out := []store.DeadLetter{}
	err := s.view(ctx, op, func(tx *bolt.Tx) error {
		var ids []uint64
		c := tx.Bucket(index).Cursor()
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			prefix := lenPrefixed(nil, name)
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if _, err := unseal(index, k, v); err != nil {
					return err
				}
				_, id, ok := parseIndexKey(k)
				if !ok {
					return fmt.Errorf("%w: %s", ErrDamaged, what(index, k))
				}
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			k := binary.BigEndian.AppendUint64(nil, id)
			v, err := get(tx, bDeadLetters, k)
			if err != nil {
				return err
			}
			if v == nil {
				return fmt.Errorf("%w: %s lists dead letter %d, which is not stored", ErrDamaged, index, id)
			}
			out = append(out, store.DeadLetter{ID: id, Data: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Commit implements [store.Committer]: one read-write transaction, fsynced
// before Commit returns. On success each state is stored at Rev+1; on error
// nothing is stored.
func (s *Store) Commit(ctx context.Context, c *store.Commit) error {
	if c == nil {
		return fmt.Errorf("boltstore: commit: nil Commit")
	}
	if err := store.CheckValueNames(c.Values); err != nil {
		return fmt.Errorf("boltstore: commit: %w", err)
	}
	// Seal before taking the writer lock: the revision each state will
	// have, its data, and the checksum over both; the values; the audit
	// entries under their Seq.
	vals := make(map[string][]byte, len(c.Values))
	for name, v := range c.Values {
		if v != nil {
			vals[name] = seal(bValues, []byte(name), v)
		} else {
			vals[name] = nil
		}
	}
	audit := make([][]byte, len(c.Audit))
	for i, e := range c.Audit {
		audit[i] = seal(bAudit, binary.BigEndian.AppendUint64(nil, e.Seq), e.Data)
	}
	enc := make([][]byte, len(c.States))
	for i, st := range c.States {
		if st.Key == "" {
			return fmt.Errorf("boltstore: commit: state %d has an empty key", i)
		}
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(st.Data)+checksum.Size), st.Rev+1)
		enc[i] = seal(bStates, []byte(st.Key), append(v, st.Data...))
	}
	err := s.update(ctx, "commit", func(w *wtx) error {
		if l := c.Lease; l != nil {
			cur, err := getLease(w.tx, l.Name)
			if err != nil {
				return err
			}
			if cur.Token != l.Token || cur.Holder != l.Holder {
				return fmt.Errorf("%w: lease %q token %d superseded by %d", store.ErrStale, l.Name, l.Token, cur.Token)
			}
		}
		// Check every revision against the stored state before writing
		// any, as a duplicate key in one commit sees the old revision.
		for _, st := range c.States {
			v, err := get(w.tx, bStates, []byte(st.Key))
			if err != nil {
				return err
			}
			var rev uint64
			if v != nil {
				if len(v) < 8 {
					return fmt.Errorf("%w: record %q: no revision", ErrDamaged, st.Key)
				}
				rev = binary.BigEndian.Uint64(v)
			}
			if st.Rev != rev {
				return fmt.Errorf("%w: record %q is at revision %d, not %d", store.ErrStale, st.Key, rev, st.Rev)
			}
		}
		if len(c.Audit) > 0 {
			head, _, err := auditHead(w.tx)
			if err != nil {
				return err
			}
			if err := store.CheckAudit(head, c.Audit); err != nil {
				return err
			}
		}
		for sys, cur := range c.Cursors {
			if err := w.put(bCursors, []byte(sys), []byte(cur)); err != nil {
				return err
			}
		}
		for i, st := range c.States {
			k := []byte(st.Key)
			if err := firstErr(w.putSealed(bStates, k, enc[i]), setIndex(w, bPending, k, st.Pending), setIndex(w, bHeld, k, st.Held)); err != nil {
				return err
			}
		}
		for _, id := range c.RemoveDeadLetters {
			if err := removeDead(w, id); err != nil {
				return err
			}
		}
		for _, d := range c.DeadLetters {
			seq, err := w.next(kDeadSeq)
			if err != nil {
				return err
			}
			if err := firstErr(w.put(bDeadLetters, binary.BigEndian.AppendUint64(nil, seq), d.Data), indexDead(w, seq, d.Key, d.Class)); err != nil {
				return fmt.Errorf("dead letter for %q from %s: %w", d.Key, d.System, err)
			}
		}
		for name, v := range vals {
			if v == nil {
				if err := w.del(bValues, []byte(name)); err != nil {
					return err
				}
			} else if err := w.putSealed(bValues, []byte(name), v); err != nil {
				return err
			}
		}
		w.tx.Bucket(bAudit).FillPercent = 1 // appended in key order: fill the pages
		for i, e := range c.Audit {
			if err := w.putSealed(bAudit, binary.BigEndian.AppendUint64(nil, e.Seq), audit[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

func setIndex(w *wtx, bucket, key []byte, on bool) error {
	if on {
		return w.put(bucket, key, nil)
	}
	return w.del(bucket, key)
}
