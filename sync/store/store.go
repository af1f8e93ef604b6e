package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// ErrStale is returned by [Committer.Commit] when a state was changed by
// someone else since it was loaded (its Rev no longer matches), or when the
// commit's lease token was superseded (another instance took the lease:
// fencing). Nothing of the commit is applied; the engine re-runs the work
// in its next cycle.
var ErrStale = errors.New("concord: record state changed concurrently")

// ErrLeaseHeld is returned by [Leases.AcquireLease] while another holder's
// lease has not expired.
var ErrLeaseHeld = errors.New("concord: lease held by another instance")

// ErrNotFound is returned by [DeadLetters.DeadLetter] for an ID that is not
// (or no longer) stored.
var ErrNotFound = errors.New("concord: dead letter not found")

// ErrDamaged is wrapped by errors about stored data that is damaged: a
// checksum that does not match, bytes that do not decode. The error names
// what is damaged (the record key, the dead letter's ID). Stores wrap it
// (or a sentinel of their own that matches it with errors.Is) for what
// they detect; the engine wraps it for Data its codec refuses.
var ErrDamaged = errors.New("concord: stored data damaged")

// ErrInvalidName is wrapped by the error of a [Committer.Commit] or
// [Meta.Value] given a value name that no store may hold (see
// [CheckValueName]). A commit refused for it applies nothing.
var ErrInvalidName = errors.New("concord: invalid value name")

// Store is everything the engine needs from the place its state lives.
// Every method is safe for concurrent use, honours its context (a cancelled
// context is an error, and nothing is changed), and returns data the caller
// owns: a store copies what it is given and what it returns.
//
// Implementations in this module: [Memory], boltstore (a local file) and
// pgstore (PostgreSQL). storetest.Run checks any implementation.
type Store interface {
	Meta
	Leases
	Records
	DeadLetters
	AuditLog
	Committer
}

// Meta holds the identities the engine's versions are made of, the
// systems' cursors and the engine's own named values.
type Meta interface {
	// Actor returns the actor number for name, assigning the next unused
	// one (from 1) the first time a name is seen. Numbers are never
	// reused, and concurrent first calls for one name get one number.
	Actor(ctx context.Context, name string) (concord.Actor, error)
	// Epoch returns the engine's current epoch: a number that changes
	// whenever the store's state cannot be proven continuous (a restore
	// from a backup). The engine puts it in its own identity and in every
	// idempotency key, so that counters reissued after a restore never
	// match writes made before it. A new store starts at a random epoch
	// ([NextEpoch] of 0).
	Epoch(ctx context.Context) (uint64, error)
	// NewEpoch moves to a new epoch ([NextEpoch] of the current one) and
	// returns it. Durable stores call it themselves when they detect a
	// restore; hosts call it after restoring a store by other means.
	NewEpoch(ctx context.Context) (uint64, error)
	// Cursor returns the stored cursor of a system ("" if none). Cursors
	// are written by [Commit.Cursors]; they are the connectors' business,
	// any bytes, returned byte for byte.
	Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error)
	// Value returns the engine value stored under name, or nil (and no
	// error) if there is none. Values are written by [Commit.Values]. A
	// value stored empty is returned as a non-nil empty slice. A name
	// that [CheckValueName] refuses is an error wrapping [ErrInvalidName].
	Value(ctx context.Context, name string) ([]byte, error)
}

// Leases keeps time-limited exclusive rights to run cycles of a pipeline.
// [NextLease] is the rule every store applies; a store only has to apply it
// atomically, at the time of its clock.
type Leases interface {
	// AcquireLease takes or renews the lease name for holder until now +
	// ttl. It fails with an error wrapping [ErrLeaseHeld] while another
	// holder's lease has not expired. Renewal by the same holder keeps
	// the token; a new holder gets a greater one.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if its holder still holds it with
	// its token; otherwise it does nothing. The token is kept, so that
	// the next holder's is greater.
	ReleaseLease(ctx context.Context, l Lease) error
}

// Records reads the per-record states.
type Records interface {
	// Load returns the states of the keys that have one, by key. Keys
	// without a state are left out.
	Load(ctx context.Context, keys []string) (map[string]State, error)
	// Pending returns up to limit keys, in byte order, of states stored
	// with Pending set: writes outstanding to some system.
	Pending(ctx context.Context, limit int) ([]string, error)
	// Held returns the keys, in byte order, of states stored with Held
	// set: a unit waits for a person.
	Held(ctx context.Context) ([]string, error)
	// Keys returns up to limit keys of stored states, in byte order,
	// greater than after ("" starts at the first). It must not read every
	// state to do so. (For passes over every record: re-encryption after a
	// key rotation, reconciliation.) A limit that is not positive returns
	// no keys.
	Keys(ctx context.Context, after string, limit int) ([]string, error)
}

// DeadLetters reads the dead letters.
type DeadLetters interface {
	// DeadLetters returns every dead letter, oldest (lowest ID) first.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// DeadLetter returns the dead letter with the ID, or an error
	// wrapping [ErrNotFound]. It must not scan every dead letter: the
	// engine calls it to replay or discard one.
	DeadLetter(ctx context.Context, id uint64) (DeadLetter, error)
	// DeadLettersOf returns the dead letters committed with one of keys
	// as their [DeadLetter.Key], oldest (lowest ID) first, each once
	// however often its key is given. Keys with none add nothing; no keys
	// return none. Its cost grows with the number of keys and of letters
	// returned, not with the number stored: the store keeps an index by
	// key, maintained by every Commit (the engine calls it in every cycle
	// that reads records).
	DeadLettersOf(ctx context.Context, keys []string) ([]DeadLetter, error)
	// DeadLettersOfClass returns the dead letters committed with class
	// as their [DeadLetter.Class] ("" included), oldest first. Like
	// DeadLettersOf, its cost grows with the number of letters returned,
	// not with the number stored (an index by class): the engine calls it
	// in every cycle for the failed merges it retries.
	DeadLettersOfClass(ctx context.Context, class string) ([]DeadLetter, error)
}

// AuditLog reads the audit log: entries the engine committed with
// [Commit.Audit].
//
// The log is an outbox: each entry is committed in the same atomic commit
// as the state it describes, and delivered to sinks afterwards. The store
// numbers nothing itself; the engine gives each entry its Seq (and chains
// their hashes inside Data), and the store only refuses entries that do not
// continue the log (see [CheckAudit]).
type AuditLog interface {
	// AuditHead returns the entry with the greatest Seq, or the zero
	// AuditEntry (Seq 0) if the log is empty.
	AuditHead(ctx context.Context) (AuditEntry, error)
	// AuditEntries returns up to limit entries with Seq > after, in Seq
	// order. It must not read the whole log to do so (index by Seq). A
	// limit that is not positive returns no entries.
	AuditEntries(ctx context.Context, after uint64, limit int) ([]AuditEntry, error)
}

// AuditEntry is one entry of the audit log as stored.
type AuditEntry struct {
	// Seq numbers the entries 1, 2, 3, ... with no gaps.
	Seq uint64
	// Data is the engine's encoding of the entry, returned byte for byte.
	Data []byte
}

// Committer applies changes.
type Committer interface {
	// Commit applies c atomically: all of it or, on error, none of it.
	// It checks the lease and every state's Rev before writing anything
	// (see [Commit]). It does not modify c.
	Commit(ctx context.Context, c *Commit) error
}

// State is what a store persists per record key. Data is the engine's
// encoding of what it knows about the record: opaque to the store (and to
// hosts). The other fields are what a store needs to check and index it.
type State struct {
	// Key of the record: never empty, valid UTF-8 without a NUL byte, at
	// most concord.MaxKeyBytes long (what concord.Record.Validate lets
	// in). A store must hold every such key.
	Key string
	// Rev is the store's revision of the state, for optimistic
	// concurrency. In a [Commit] it is the revision the state had when it
	// was loaded (0 for a new key); the store refuses the commit with
	// [ErrStale] unless it holds exactly that revision, and on success
	// stores the state at Rev+1. From Load it is the stored revision.
	Rev uint64
	// Pending reports that some system lacks the record's canonical
	// values: [Records.Pending] lists the key.
	Pending bool
	// Held reports that a unit of the record waits for a person:
	// [Records.Held] lists the key.
	Held bool
	// Data is the engine's encoding of the state, returned byte for byte.
	Data []byte
}

// DeadLetter is a dead letter as stored: a record the engine could not use
// or deliver, encoded by the engine in Data (opaque to the store).
type DeadLetter struct {
	// ID is assigned by the store when the dead letter is committed:
	// unique, increasing, never reused, never 0. It is ignored in
	// [Commit.DeadLetters].
	ID uint64
	// System and Key say which record it is about (Key may be empty, and
	// any bytes up to concord.MaxKeyBytes: a letter may be about a record
	// refused for its key), and Class the engine's class of the failure
	// ("invalid", "merge", ...). They are copies of what Data holds, given in
	// [Commit.DeadLetters]: the store indexes Key and Class for
	// [DeadLetters.DeadLettersOf] and [DeadLetters.DeadLettersOfClass]. A
	// store may leave them out of what it returns, and the engine reads
	// Data.
	System concord.SystemID
	Key    string
	Class  string
	// Data is the engine's encoding of the dead letter, returned byte for
	// byte.
	Data []byte
}

// Commit is one atomic change to a [Store].
type Commit struct {
	// Lease, when not nil, must still be the current lease of its name
	// (same token, same holder), else the commit fails with [ErrStale].
	Lease *Lease
	// Cursors to store, by system.
	Cursors map[concord.SystemID]connector.Cursor
	// States to store. Each state's Rev must equal the stored one (zero
	// for a new key), else the commit fails with [ErrStale]; on success
	// the stored revision is Rev+1. A key given twice is checked twice
	// against the revision stored before the commit.
	States []State
	// DeadLetters to add; the store assigns their IDs, in order.
	DeadLetters []DeadLetter
	// RemoveDeadLetters lists the IDs of dead letters settled by this
	// commit (replayed or discarded). IDs that are gone already are
	// ignored, so a settlement may be committed twice.
	RemoveDeadLetters []uint64
	// Values to store, by name; a nil value deletes the name, a non-nil
	// empty one stores an empty value. Names are not empty, at most
	// [MaxValueName] bytes, valid UTF-8 and without NUL bytes (see
	// [CheckValueName]), else the commit is refused with an error wrapping
	// [ErrInvalidName] and nothing is applied.
	Values map[string][]byte
	// Audit entries to append. The first one's Seq must be the stored
	// head's Seq+1 and the rest consecutive, else the commit fails with
	// [ErrStale] (another writer appended meanwhile) and nothing is
	// applied. Stores check it with [CheckAudit].
	Audit []AuditEntry
}

// MaxValueName is the greatest length in bytes of the name of an engine
// value ([Commit.Values]).
const MaxValueName = 200

// CheckValueName returns nil if name may name an engine value in every
// store: not empty, at most [MaxValueName] bytes, valid UTF-8 and without
// NUL bytes (so that a database may keep it as text). Otherwise it returns
// an error wrapping [ErrInvalidName] that quotes the name. Every store in
// this module applies this one rule, in Commit and in Value.
func CheckValueName(name string) error {
	var why string
	switch {
	case name == "":
		why = "empty"
	case len(name) > MaxValueName:
		return fmt.Errorf("%w: %.40q... is %d bytes long, more than %d", ErrInvalidName, name, len(name), MaxValueName)
	case !utf8.ValidString(name):
		why = "not valid UTF-8"
	case strings.IndexByte(name, 0) >= 0:
		why = "holds a NUL byte"
	default:
		return nil
	}
	return fmt.Errorf("%w: %q is %s", ErrInvalidName, name, why)
}

// CheckValueNames applies [CheckValueName] to every name of values, in
// byte order, and returns the first error.
func CheckValueNames(values map[string][]byte) error {
	if len(values) == 0 {
		return nil
	}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := CheckValueName(name); err != nil {
			return err
		}
	}
	return nil
}

// AuditSeqError is the error of a commit whose audit entries do not
// continue the log: the first entry is not the head's Seq+1, or the
// entries are not consecutive. It matches [ErrStale] with errors.Is (in
// the engine's use, another writer appended meanwhile).
type AuditSeqError struct {
	// Head is the Seq of the stored head (0 for an empty log).
	Head uint64
	// Index is the position in [Commit.Audit] of the first entry out of
	// sequence, and Seq that entry's Seq; Want is the Seq it needed.
	Index     int
	Seq, Want uint64
}

// Error names the entry out of sequence and the Seq the log expected.
func (e *AuditSeqError) Error() string {
	return fmt.Sprintf("%v: audit entry %d of the commit has seq %d, not %d (the log's head is at seq %d)",
		ErrStale, e.Index, e.Seq, e.Want, e.Head)
}

// Unwrap returns [ErrStale].
func (e *AuditSeqError) Unwrap() error { return ErrStale }

// CheckAudit returns nil if entries continue a log whose head has Seq head:
// the first has Seq head+1, the next head+2, and so on. Otherwise it
// returns an *[AuditSeqError], which matches [ErrStale]. No entries always
// continue the log. A store calls it inside its commit's transaction, with
// the head it holds then.
func CheckAudit(head uint64, entries []AuditEntry) error {
	want := head
	for i, e := range entries {
		if want == math.MaxUint64 || e.Seq != want+1 {
			return &AuditSeqError{Head: head, Index: i, Seq: e.Seq, Want: want + 1}
		}
		want++
	}
	return nil
}

// Lease is a time-limited exclusive right to run cycles of one pipeline.
type Lease struct {
	// Name of the lease: the pipeline.
	Name string
	// Holder is the instance holding it; empty once released.
	Holder string
	// Token increases with every acquisition by a new holder (or after
	// an expiry): a commit carrying an older token is refused, so an
	// instance that paused past its lease cannot overwrite the work of
	// the next holder.
	Token uint64
	// Expires is when the lease lapses unless renewed.
	Expires time.Time
}

// NextLease computes the outcome of holder asking for lease name (currently
// cur, the zero Lease if none) at now, for stores to share one rule: a free
// or expired lease is taken with the next token; the holder renews its own
// (same token, expiry now + ttl) once at most half of ttl remains, and
// before that gets cur unchanged, which the store need not write (see
// [Lease.Same]); anyone else gets an error wrapping [ErrLeaseHeld]. An
// empty holder or a ttl that is not positive is an error.
//
// Renewing only in the second half of the ttl spares an engine that runs
// cycles more often than ttl/2 a write per cycle, and a holder still owns
// at least ttl/2 from any acquisition. It does not weaken fencing: a
// commit is checked against the stored token and holder (see
// [Commit.Lease]), never against an expiry the holder believes in.
func NextLease(cur Lease, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if holder == "" || ttl <= 0 {
		return Lease{}, fmt.Errorf("concord: lease %q needs a holder and a positive ttl", name)
	}
	switch {
	case cur.Holder == holder && now.Before(cur.Expires):
		if cur.Expires.Sub(now) <= ttl/2 {
			cur.Expires = now.Add(ttl)
		}
		return cur, nil
	case cur.Holder != "" && now.Before(cur.Expires):
		return Lease{}, fmt.Errorf("%w: %q held by %q until %s", ErrLeaseHeld, name, cur.Holder, cur.Expires.Format(time.RFC3339))
	}
	return Lease{Name: name, Holder: holder, Token: cur.Token + 1, Expires: now.Add(ttl)}, nil
}

// Same reports whether l and o are the same lease: name, holder, token
// and expiry (compared with time.Time.Equal). A store whose [NextLease]
// returned the stored lease unchanged has nothing to write.
func (l Lease) Same(o Lease) bool {
	return l.Name == o.Name && l.Holder == o.Holder && l.Token == o.Token && l.Expires.Equal(o.Expires)
}

// NextEpoch returns a fresh epoch different from old and from 0: random, so
// that two copies of one store restored separately do not share their next
// epoch.
func NextEpoch(old uint64) uint64 {
	for {
		if e := rand.Uint64(); e != old && e != 0 {
			return e
		}
	}
}
