package sync

import (
	"context"
	"errors"
	"slices"
	gosync "sync"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// ErrStale is returned by [Store.Commit] when a state was changed by someone
// else since it was loaded (its Rev no longer matches). Nothing of the
// commit is applied; the engine re-runs the work in its next cycle.
var ErrStale = errors.New("concord: record state changed concurrently")

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
	// DeadLetters returns the dead letters, oldest first.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// Commit applies c atomically: all of it or, on error, none of it.
	Commit(ctx context.Context, c *Commit) error
}

// Commit is one atomic change to a Store.
type Commit struct {
	// Cursors to store, by system.
	Cursors map[concord.SystemID]connector.Cursor
	// States to store. Each state's Rev must equal the stored one (zero
	// for a new key), else the commit fails with ErrStale. On success the
	// store increments Rev, in its copy and in the given state.
	States []*RecordState
	// DeadLetters to add.
	DeadLetters []DeadLetter
}

// DeadLetter is a record the engine could not use or deliver, kept with the
// reason so that nothing is lost.
type DeadLetter struct {
	// System the record came from (inbound) or was bound for (outbound).
	System concord.SystemID
	// Key of the record, empty if it had none.
	Key string
	// Inbound is true for a record read from System, false for a write.
	Inbound bool
	// Record is the payload as the system sent it (inbound) or the patch
	// fields (outbound).
	Record concord.Record
	// Reason is the error message; Class its class ("transient", ...).
	Reason string
	Class  string
	// When the record was dead-lettered.
	When time.Time
}

// MemoryStore is a Store in memory, for tests and for hosts that rebuild
// state on start. Its zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu      gosync.Mutex
	actors  map[string]concord.Actor
	cursors map[concord.SystemID]connector.Cursor
	states  map[string]*RecordState
	pending map[string]bool
	held    map[string]bool
	dead    []DeadLetter
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
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
	for _, st := range c.States {
		var rev uint64
		if old, ok := s.states[st.Key]; ok {
			rev = old.Rev
		}
		if st.Rev != rev {
			return ErrStale
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
	for _, d := range c.DeadLetters {
		d.Record = d.Record.Clone()
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
