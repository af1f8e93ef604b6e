package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/store"
)

// ErrStale is store.ErrStale, for errors.Is on what [Engine.RunCycle] and
// the other methods return: a commit refused because another instance
// changed the state or took the lease since it was loaded. Nothing of the
// commit was applied; the next cycle re-runs the work.
var ErrStale = store.ErrStale

// ErrLeaseHeld is store.ErrLeaseHeld: returned by [Engine.RunCycle] and
// [Engine.Ingest] when another instance is running a cycle of the same
// pipeline. Nothing was done.
var ErrLeaseHeld = store.ErrLeaseHeld

// ErrDamaged is store.ErrDamaged: wrapped by the error for stored state or
// a stored dead letter that is damaged (its checksum does not match, or it
// does not decode), naming the record key or dead letter. The stores wrap
// it too, or sentinels of their own that errors.Is matches with it.
var ErrDamaged = store.ErrDamaged

// ErrNewerFormat is wrapped by the error for stored state or a stored dead
// letter written by a newer Concord (a newer encoding than this one
// reads). Nothing is changed; upgrade Concord.
var ErrNewerFormat = errors.New("concord: stored state written by a newer Concord")

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

// stateStore is the engine's view of its store.Store: it encodes the
// engine's states and dead letters into the store's opaque Data, and
// decodes them when it loads them.
type stateStore struct {
	store.Store
	codec state.Codec // seals the values of sensitive fields
	// commits counts the commits attempted through Commit, successful or
	// not: begin's release gives the lease back only after a cycle that
	// attempted one.
	commits *atomic.Uint64
}

// batch is one atomic change to the store, in the engine's terms; Commit
// turns it into a store.Commit.
type batch struct {
	Lease             *store.Lease
	Cursors           map[concord.SystemID]connector.Cursor
	Values            map[string][]byte
	States            []*state.Record
	DeadLetters       []DeadLetter
	RemoveDeadLetters []uint64
	// Audit holds the encoded audit log entries (Engine.stage); chain
	// made them (nil: none staged), its head the last of them; entries
	// are the same entries decoded, in parts, kept only when a sink will
	// take them.
	Audit   []store.AuditEntry
	chain   *audit.Chain
	entries [][]audit.Entry
}

// Commit encodes b and commits it (state.Commit.Apply): on success the
// given states' Rev are incremented.
func (s stateStore) Commit(ctx context.Context, b *batch) error {
	c := &state.Commit{Lease: b.Lease, Cursors: b.Cursors, Values: b.Values, Audit: b.Audit, States: b.States, RemoveDeadLetters: b.RemoveDeadLetters}
	for _, d := range b.DeadLetters {
		c.DeadLetters = append(c.DeadLetters, state.DeadLetter(d))
	}
	c.Codec = s.codec
	if s.commits != nil {
		s.commits.Add(1)
	}
	return c.Apply(ctx, s.Store)
}

// Load loads and decodes the states of keys.
func (s stateStore) Load(ctx context.Context, keys []string) (map[string]*state.Record, error) {
	out, err := s.codec.Load(ctx, s.Store, keys)
	return out, newerErr(err)
}

// LoadEach loads the states of keys and decodes each on its own (see
// state.Codec.LoadEach): the errors of those that do not decode are in
// bad, by key.
func (s stateStore) LoadEach(ctx context.Context, keys []string) (map[string]*state.Record, map[string]error, error) {
	out, bad, err := s.codec.LoadEach(ctx, s.Store, keys)
	for k, e := range bad {
		bad[k] = newerErr(e)
	}
	return out, bad, err
}

// newerErr adds ErrNewerFormat to an error about data of a newer format.
func newerErr(err error) error {
	if errors.Is(err, state.ErrNewerFormat) {
		return fmt.Errorf("%w: %w", ErrNewerFormat, err)
	}
	return err
}

// indexKeys returns keys as the store indexes dead letters by them
// (state.IndexKey): keys itself unless one is too long.
func indexKeys(keys []string) []string {
	for i, k := range keys {
		if ik := state.IndexKey(k); ik != k {
			keys = slices.Clone(keys) // the caller's stay as they are
			keys[i] = ik
			for j := i + 1; j < len(keys); j++ {
				keys[j] = state.IndexKey(keys[j])
			}
			break
		}
	}
	return keys
}

// badLetter is a stored dead letter that does not decode: damaged, of a
// newer format, or sealed under a key the ring no longer has.
type badLetter struct {
	id     uint64
	system concord.SystemID // as the store indexed it, if it returns it
	key    string
	err    error
}

// decodeEach decodes each of stored on its own: those that do not decode
// are in bad.
func (s stateStore) decodeEach(stored []store.DeadLetter) (out []DeadLetter, bad []badLetter) {
	out = make([]DeadLetter, 0, len(stored))
	for _, sd := range stored {
		d, err := s.codec.DecodeLetter(sd)
		if err != nil {
			bad = append(bad, badLetter{sd.ID, sd.System, sd.Key, newerErr(err)})
			continue
		}
		out = append(out, DeadLetter(d))
	}
	return out, bad
}

// DeadLettersOf loads and decodes the dead letters of keys, oldest first,
// by the store's index (state.IndexKey): it reads no other letter. Each
// letter decodes on its own: those that do not are in bad.
func (s stateStore) DeadLettersOf(ctx context.Context, keys []string) ([]DeadLetter, []badLetter, error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	stored, err := s.Store.DeadLettersOf(ctx, indexKeys(keys))
	if err != nil {
		return nil, nil, err
	}
	out, bad := s.decodeEach(stored)
	return out, bad, nil
}

// DeadLettersOfClass loads and decodes the dead letters of class, oldest
// first, by the store's index: it reads no other letter. Each letter
// decodes on its own: those that do not are in bad.
func (s stateStore) DeadLettersOfClass(ctx context.Context, class connector.Class) ([]DeadLetter, []badLetter, error) {
	stored, err := s.Store.DeadLettersOfClass(ctx, class.String())
	if err != nil {
		return nil, nil, err
	}
	out, bad := s.decodeEach(stored)
	return out, bad, nil
}

// DeadLetter loads and decodes the dead letter id; one that is not stored
// is ErrNoDeadLetter.
func (s stateStore) DeadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	sd, err := s.Store.DeadLetter(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNoDeadLetter, id)
	}
	if err != nil {
		return DeadLetter{}, err
	}
	if sd.ID != id {
		return DeadLetter{}, fmt.Errorf("%w: dead letter %d: the store returned dead letter %d", ErrDamaged, id, sd.ID)
	}
	d, err := s.codec.DecodeLetter(sd)
	return DeadLetter(d), newerErr(err)
}
