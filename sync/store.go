package sync

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	gosync "sync"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// ErrStale is returned by [Store.Commit] when a state was changed by someone
// else since it was loaded (its Rev no longer matches), or when the commit's
// lease token was superseded (another instance took the lease: fencing).
// Nothing of the commit is applied; the engine re-runs the work in its next
// cycle.
var ErrStale = errors.New("concord: record state changed concurrently")

// ErrLeaseHeld is returned by [Store.AcquireLease] while another instance
// holds the lease, and so by [Engine.RunCycle] and [Engine.Ingest] when
// another instance is running a cycle of the same pipeline: nothing was done.
var ErrLeaseHeld = errors.New("concord: lease held by another instance")

// Lease is a time-limited exclusive right to run cycles of one pipeline.
type Lease struct {
	Name   string
	Holder string
	// Token increases with every acquisition by a new holder (or after
	// an expiry): a commit carrying an older token is refused, so an
	// instance that paused past its lease cannot overwrite the work of
	// the next holder.
	Token   uint64
	Expires time.Time
}

// Store holds the engine's state: actor numbers, cursors, per-record states
// and dead letters. Every method is safe for concurrent use.
//
// Implementations: [NewMemoryStore] here; durable stores live in
// sub-packages. A store returns copies: callers may modify what they load
// and the store must not modify what it is given after Commit returns.
type Store interface {
	// Actor returns the actor number for name, assigning the next unused
	// one the first time a name is seen. Numbers are never reused.
	Actor(ctx context.Context, name string) (concord.Actor, error)
	// Epoch returns the engine's current epoch: a number that changes
	// whenever the store's state cannot be proven continuous (a restore
	// from a backup). The engine puts it in its own identity and in every
	// idempotency key, so that counters reissued after a restore never
	// match writes made before it. A new store starts at a random epoch.
	Epoch(ctx context.Context) (uint64, error)
	// NewEpoch moves to a new epoch and returns it. Durable stores call it
	// themselves when they detect a restore; hosts call it after
	// restoring a store by other means.
	NewEpoch(ctx context.Context) (uint64, error)
	// AcquireLease takes or renews the lease name for holder until now +
	// ttl. It fails with [ErrLeaseHeld] while another holder's lease has not
	// expired. Renewal by the same holder keeps the token.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// ReleaseLease gives the lease up if holder still holds it with token.
	ReleaseLease(ctx context.Context, l Lease) error
	// Cursor returns the stored cursor of a system ("" if none).
	Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error)
	// Load returns the states of the keys that have one.
	Load(ctx context.Context, keys []string) (map[string]*RecordState, error)
	// Pending returns up to limit keys, in key order, whose state is
	// [RecordState.Pending]: writes outstanding to some system.
	Pending(ctx context.Context, limit int) ([]string, error)
	// Held returns the keys, in order, of states with a unit held for a
	// person.
	Held(ctx context.Context) ([]string, error)
	// DeadLetters returns the dead letters, oldest first, with their IDs.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// Commit applies c atomically: all of it or, on error, none of it.
	Commit(ctx context.Context, c *Commit) error
}

// Commit is one atomic change to a Store.
type Commit struct {
	// Lease, when not nil, must still be the current lease of its name
	// (same token, same holder), else the commit fails with ErrStale.
	Lease *Lease
	// Cursors to store, by system.
	Cursors map[concord.SystemID]connector.Cursor
	// States to store. Each state's Rev must equal the stored one (zero
	// for a new key), else the commit fails with ErrStale. On success the
	// store increments Rev, in its copy and in the given state.
	States []*RecordState
	// DeadLetters to add; the store assigns their IDs.
	DeadLetters []DeadLetter
	// RemoveDeadLetters lists the IDs of dead letters settled by this
	// commit (replayed or discarded). IDs that are gone already are
	// ignored, so a settlement may be committed twice.
	RemoveDeadLetters []uint64
}

// DeadLetter is a record the engine could not use or deliver, kept with the
// reason so that nothing is lost.
type DeadLetter struct {
	// ID is assigned by the store when the dead letter is committed:
	// unique, increasing, never reused.
	ID uint64
	// System the record came from (inbound) or was bound for (outbound).
	System concord.SystemID
	// Key of the record, empty if it had none.
	Key string
	// Inbound is true for a record read from System, false for a write.
	Inbound bool
	// Record is the payload as the system sent it (inbound) or the patch
	// fields (outbound).
	Record concord.Record
	// Transformed is the payload after the inbound transforms, when they
	// succeeded (a record the dictionary refused), or the canonical
	// record an outbound transform was given; zero otherwise.
	Transformed concord.Record
	// Reason is the error message; Class its class ("transient", ...).
	Reason string
	Class  string
	// Attempts made before giving up, and when the first one failed
	// (outbound writes only).
	Attempts    int
	FirstFailed time.Time
	// When the record was dead-lettered.
	When time.Time
	// Textual lists the fields of Record whose values no store can
	// encode (a struct, a channel: the reason the record was refused);
	// they are kept as their Go syntax (fmt's %#v) in a string, so that
	// nothing is lost and the commit cannot fail. Such a payload is not
	// replayed as it is: Replay reads the record again from its system.
	Textual []string
	// Whole reports that Record is the whole record as the system's change
	// feed reported it (not a pushed, possibly partial one): a field it
	// lacks is gone from the system.
	Whole bool
}

// storable returns rec with every value that no store can encode replaced
// by its Go syntax in a string, and the names of those fields.
func storable(rec concord.Record) (concord.Record, []string) {
	rec = rec.Clone()
	var textual []string
	for _, f := range sortedFields(rec.Fields) {
		if v := rec.Fields[f]; concord.CheckValue(v) != nil {
			rec.Fields[f] = fmt.Sprintf("%#v", v)
			textual = append(textual, f)
		}
	}
	rec.Modified = utc(rec.Modified)
	for f, t := range rec.FieldModified {
		rec.FieldModified[f] = utc(t)
	}
	return rec, textual
}

// MemoryStore is a Store in memory, for tests and for hosts that rebuild
// state on start. Its zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu      gosync.Mutex
	epoch   uint64
	leases  map[string]Lease
	now     func() time.Time
	actors  map[string]concord.Actor
	cursors map[concord.SystemID]connector.Cursor
	states  map[string]*RecordState
	pending map[string]bool
	held    map[string]bool
	dead    []DeadLetter
	deadSeq uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		epoch:   rand.Uint64(),
		leases:  map[string]Lease{},
		now:     time.Now,
		actors:  map[string]concord.Actor{},
		cursors: map[concord.SystemID]connector.Cursor{},
		states:  map[string]*RecordState{},
		pending: map[string]bool{},
		held:    map[string]bool{},
	}
}

// Actor implements [Store].
func (s *MemoryStore) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.actors[name]; ok {
		return a, nil
	}
	a := concord.Actor(len(s.actors) + 1)
	s.actors[name] = a
	return a, nil
}

// Snapshot returns an independent copy of the store: a backup, for tests
// and tools. A host that restores a backup into service must call NewEpoch
// on it (see [Store.Epoch]).
func (s *MemoryStore) Snapshot() *MemoryStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := NewMemoryStore()
	c.epoch, c.now, c.deadSeq = s.epoch, s.now, s.deadSeq
	maps.Copy(c.leases, s.leases)
	maps.Copy(c.actors, s.actors)
	maps.Copy(c.cursors, s.cursors)
	maps.Copy(c.pending, s.pending)
	maps.Copy(c.held, s.held)
	for k, st := range s.states {
		c.states[k] = st.Clone()
	}
	for _, d := range s.dead {
		d.Record = d.Record.Clone()
		c.dead = append(c.dead, d)
	}
	return c
}

// Epoch implements [Store].
func (s *MemoryStore) Epoch(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, nil
}

// NewEpoch implements [Store].
func (s *MemoryStore) NewEpoch(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch = NextEpoch(s.epoch)
	return s.epoch, nil
}

// NextEpoch returns a fresh epoch different from old: random, so that two
// copies of one store restored separately do not share their next epoch.
func NextEpoch(old uint64) uint64 {
	for {
		if e := rand.Uint64(); e != old && e != 0 {
			return e
		}
	}
}

// AcquireLease implements [Store].
func (s *MemoryStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := NextLease(s.leases[name], name, holder, ttl, s.now())
	if err == nil {
		s.leases[name] = l
	}
	return l, err
}

// NextLease computes the outcome of holder asking for lease name (currently
// cur) at now, for stores to share one rule: a free or expired lease is
// taken with the next token; the holder renews its own; anyone else gets
// ErrLeaseHeld.
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

// ReleaseLease implements [Store].
func (s *MemoryStore) ReleaseLease(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.leases[l.Name]; cur.Holder == l.Holder && cur.Token == l.Token {
		cur.Holder, cur.Expires = "", time.Time{}
		s.leases[l.Name] = cur
	}
	return nil
}

// Cursor implements [Store].
func (s *MemoryStore) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[system], nil
}

// Load implements [Store].
func (s *MemoryStore) Load(ctx context.Context, keys []string) (map[string]*RecordState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]*RecordState, len(keys))
	for _, k := range keys {
		if st, ok := s.states[k]; ok {
			out[k] = st.Clone()
		}
	}
	return out, nil
}

// Pending implements [Store].
func (s *MemoryStore) Pending(ctx context.Context, limit int) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return firstKeys(s.pending, limit), nil
}

// Held implements [Store].
func (s *MemoryStore) Held(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return firstKeys(s.held, len(s.held)), nil
}

func firstKeys(set map[string]bool, limit int) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if len(keys) > limit {
		keys = keys[:limit]
	}
	return keys
}

// DeadLetters implements [Store].
func (s *MemoryStore) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DeadLetter, len(s.dead))
	for i, d := range s.dead {
		d.Record = d.Record.Clone()
		out[i] = d
	}
	return out, nil
}

// Commit implements [Store].
func (s *MemoryStore) Commit(ctx context.Context, c *Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Lease != nil {
		if cur := s.leases[c.Lease.Name]; cur.Token != c.Lease.Token || cur.Holder != c.Lease.Holder {
			return fmt.Errorf("%w: lease %q token %d superseded by %d", ErrStale, c.Lease.Name, c.Lease.Token, cur.Token)
		}
	}
	for _, st := range c.States {
		var rev uint64
		if old, ok := s.states[st.Key]; ok {
			rev = old.Rev
		}
		if st.Rev != rev {
			return fmt.Errorf("%w: record %q is at revision %d, not %d", ErrStale, st.Key, rev, st.Rev)
		}
	}
	for sys, cur := range c.Cursors {
		s.cursors[sys] = cur
	}
	for _, st := range c.States {
		cp := st.Clone()
		cp.Rev++
		st.Rev = cp.Rev
		s.states[st.Key] = cp
		setFlag(s.pending, st.Key, cp.Pending())
		setFlag(s.held, st.Key, cp.Held())
	}
	if len(c.RemoveDeadLetters) > 0 {
		s.dead = slices.DeleteFunc(s.dead, func(d DeadLetter) bool { return slices.Contains(c.RemoveDeadLetters, d.ID) })
	}
	for _, d := range c.DeadLetters {
		d.Record = d.Record.Clone()
		s.deadSeq++
		d.ID = s.deadSeq
		s.dead = append(s.dead, d)
	}
	return nil
}

func setFlag(set map[string]bool, key string, on bool) {
	if on {
		set[key] = true
	} else {
		delete(set, key)
	}
}
