package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

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
	Committer
}

// Meta holds the identities the engine's versions are made of, and the
// systems' cursors.
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
	// are written by [Commit.Cursors].
	Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error)
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
}

// DeadLetters reads the dead letters.
type DeadLetters interface {
	// DeadLetters returns every dead letter, oldest (lowest ID) first.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// DeadLetter returns the dead letter with the ID, or an error
	// wrapping [ErrNotFound]. It must not scan every dead letter: the
	// engine calls it to replay or discard one.
	DeadLetter(ctx context.Context, id uint64) (DeadLetter, error)
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
	// Key of the record; never empty.
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
	// System and Key say which record it is about (Key may be empty),
	// for a store that indexes dead letters by them. They are copies of
	// what Data holds: a store may leave them out of what it returns,
	// and the engine reads Data.
	System concord.SystemID
	Key    string
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
// (same token, new expiry); anyone else gets an error wrapping
// [ErrLeaseHeld]. An empty holder or a ttl that is not positive is an
// error.
func NextLease(cur Lease, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if holder == "" || ttl <= 0 {
		return Lease{}, fmt.Errorf("concord: lease %q needs a holder and a positive ttl", name)
	}
	switch {
	case cur.Holder == holder && now.Before(cur.Expires):
		cur.Expires = now.Add(ttl)
		return cur, nil
	case cur.Holder != "" && now.Before(cur.Expires):
		return Lease{}, fmt.Errorf("%w: %q held by %q until %s", ErrLeaseHeld, name, cur.Holder, cur.Expires.Format(time.RFC3339))
	}
	return Lease{Name: name, Holder: holder, Token: cur.Token + 1, Expires: now.Add(ttl)}, nil
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
