package store

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	gosync "sync"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Memory is a [Store] in memory, for tests and for hosts that rebuild their
// state on start: it forgets everything when the process ends. Create it
// with [NewMemory]; its zero value is not usable.
type Memory struct {
	mu      gosync.Mutex
	epoch   uint64
	now     func() time.Time
	leases  map[string]Lease
	actors  map[string]concord.Actor
	cursors map[concord.SystemID]connector.Cursor
	states  map[string]State
	pending *keySet
	held    *keySet
	dead    map[uint64]DeadLetter
	deadSeq uint64
	// The dead letters' IDs by Key and by Class: DeadLettersOf and
	// DeadLettersOfClass read only the letters they return.
	deadByKey   map[string]map[uint64]struct{}
	deadByClass map[string]map[uint64]struct{}
	keys        []string // the keys of states, sorted: Keys pages through it
	values      map[string][]byte
	audit       []AuditEntry // entry n is audit[n-1]
}

var _ Store = (*Memory)(nil)

// MemoryOption configures [NewMemory].
type MemoryOption func(*Memory)

// WithClock sets the clock by which a [Memory] takes leases and lets them
// expire; the default is time.Now. A nil clock is ignored.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// NewMemory returns an empty in-memory store at a random epoch.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		epoch:   NextEpoch(0),
		now:     time.Now,
		leases:  map[string]Lease{},
		actors:  map[string]concord.Actor{},
		cursors: map[concord.SystemID]connector.Cursor{},
		states:  map[string]State{},
		pending: newKeySet(),
		held:    newKeySet(),
		dead:    map[uint64]DeadLetter{},
		values:  map[string][]byte{},

		deadByKey:   map[string]map[uint64]struct{}{},
		deadByClass: map[string]map[uint64]struct{}{},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Snapshot returns an independent copy of the store, clock included: a
// backup, for tests and tools. A host that restores a backup into service
// must call NewEpoch on it (see [Meta.Epoch]).
func (s *Memory) Snapshot() *Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := NewMemory(WithClock(s.now))
	c.epoch, c.deadSeq = s.epoch, s.deadSeq
	maps.Copy(c.leases, s.leases)
	maps.Copy(c.actors, s.actors)
	maps.Copy(c.cursors, s.cursors)
	c.pending, c.held = s.pending.clone(), s.held.clone()
	for k, st := range s.states {
		c.states[k] = cloneState(st)
	}
	for _, d := range s.dead {
		c.addDead(cloneDead(d))
	}
	c.keys = slices.Clone(s.keys)
	for name, v := range s.values {
		c.values[name] = slices.Clone(v)
	}
	c.audit = make([]AuditEntry, len(s.audit))
	for i, e := range s.audit {
		c.audit[i] = cloneEntry(e)
	}
	return c
}

// cloneBytes copies b, keeping nil nil and empty empty.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func cloneEntry(e AuditEntry) AuditEntry {
	e.Data = cloneBytes(e.Data)
	return e
}

func cloneState(st State) State {
	st.Data = slices.Clone(st.Data)
	return st
}

func cloneDead(d DeadLetter) DeadLetter {
	d.Data = slices.Clone(d.Data)
	return d
}

// lock takes the mutex unless ctx has ended.
func (s *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	return nil
}

// Actor implements [Meta].
func (s *Memory) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if a, ok := s.actors[name]; ok {
		return a, nil
	}
	a := concord.Actor(len(s.actors) + 1)
	s.actors[name] = a
	return a, nil
}

// Epoch implements [Meta].
func (s *Memory) Epoch(ctx context.Context) (uint64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.epoch, nil
}

// NewEpoch implements [Meta].
func (s *Memory) NewEpoch(ctx context.Context) (uint64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.epoch = NextEpoch(s.epoch)
	return s.epoch, nil
}

// Cursor implements [Meta].
func (s *Memory) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	if err := s.lock(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	return s.cursors[system], nil
}

// Value implements [Meta].
func (s *Memory) Value(ctx context.Context, name string) ([]byte, error) {
	if err := CheckValueName(name); err != nil {
		return nil, fmt.Errorf("concord: memory store: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	v, ok := s.values[name]
	if !ok {
		return nil, nil
	}
	return append(make([]byte, 0, len(v)), v...), nil
}

// AcquireLease implements [Leases] by [NextLease].
func (s *Memory) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	if err := s.lock(ctx); err != nil {
		return Lease{}, err
	}
	defer s.mu.Unlock()
	l, err := NextLease(s.leases[name], name, holder, ttl, s.now())
	if err == nil {
		s.leases[name] = l
	}
	return l, err
}

// ReleaseLease implements [Leases].
func (s *Memory) ReleaseLease(ctx context.Context, l Lease) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if cur := s.leases[l.Name]; cur.Holder == l.Holder && cur.Token == l.Token {
		cur.Holder, cur.Expires = "", time.Time{}
		s.leases[l.Name] = cur
	}
	return nil
}

// Load implements [Records].
func (s *Memory) Load(ctx context.Context, keys []string) (map[string]State, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make(map[string]State, len(keys))
	for _, k := range keys {
		if st, ok := s.states[k]; ok {
			out[k] = cloneState(st)
		}
	}
	return out, nil
}

// Pending implements [Records].
func (s *Memory) Pending(ctx context.Context, limit int) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.pending.first(limit), nil
}

// Held implements [Records].
func (s *Memory) Held(ctx context.Context) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.held.first(math.MaxInt), nil
}

// Keys implements [Records] by a binary search in the sorted keys.
func (s *Memory) Keys(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	i, found := slices.BinarySearch(s.keys, after)
	if found {
		i++
	}
	rest := s.keys[i:]
	return slices.Clone(rest[:min(len(rest), max(limit, 0))]), nil
}

// AuditHead implements [AuditLog].
func (s *Memory) AuditHead(ctx context.Context) (AuditEntry, error) {
	if err := s.lock(ctx); err != nil {
		return AuditEntry{}, err
	}
	defer s.mu.Unlock()
	if len(s.audit) == 0 {
		return AuditEntry{}, nil
	}
	return cloneEntry(s.audit[len(s.audit)-1]), nil
}

// AuditEntries implements [AuditLog]: entry n is at index n-1.
func (s *Memory) AuditEntries(ctx context.Context, after uint64, limit int) ([]AuditEntry, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := []AuditEntry{}
	if after >= uint64(len(s.audit)) || limit <= 0 {
		return out, nil
	}
	rest := s.audit[after:]
	for _, e := range rest[:min(len(rest), limit)] {
		out = append(out, cloneEntry(e))
	}
	return out, nil
}

// DeadLetters implements [DeadLetters].
func (s *Memory) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]DeadLetter, 0, len(s.dead))
	for _, id := range slices.Sorted(maps.Keys(s.dead)) {
		out = append(out, cloneDead(s.dead[id]))
	}
	return out, nil
}

// DeadLetter implements [DeadLetters].
func (s *Memory) DeadLetter(ctx context.Context, id uint64) (DeadLetter, error) {
	if err := s.lock(ctx); err != nil {
		return DeadLetter{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.dead[id]
	if !ok {
		return DeadLetter{}, fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	return cloneDead(d), nil
}

// DeadLettersOf implements [DeadLetters] by the index by key.
func (s *Memory) DeadLettersOf(ctx context.Context, keys []string) ([]DeadLetter, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var ids []uint64
	for _, k := range keys {
		for id := range s.deadByKey[k] {
			ids = append(ids, id)
		}
	}
	return s.deadOf(ids), nil
}

// DeadLettersOfClass implements [DeadLetters] by the index by class.
func (s *Memory) DeadLettersOfClass(ctx context.Context, class string) ([]DeadLetter, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.deadOf(slices.Collect(maps.Keys(s.deadByClass[class]))), nil
}

// deadOf returns copies of the dead letters ids (which may repeat), in ID
// order.
func (s *Memory) deadOf(ids []uint64) []DeadLetter {
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]DeadLetter, 0, len(ids))
	for _, id := range ids {
		out = append(out, cloneDead(s.dead[id]))
	}
	return out
}

// addDead stores d (its ID assigned) and indexes it.
func (s *Memory) addDead(d DeadLetter) {
	s.dead[d.ID] = d
	index(s.deadByKey, d.Key, d.ID)
	index(s.deadByClass, d.Class, d.ID)
}

// removeDead removes the dead letter id, if stored, and its index entries.
func (s *Memory) removeDead(id uint64) {
	d, ok := s.dead[id]
	if !ok {
		return
	}
	delete(s.dead, id)
	unindex(s.deadByKey, d.Key, id)
	unindex(s.deadByClass, d.Class, id)
}

func index(ix map[string]map[uint64]struct{}, k string, id uint64) {
	if ix[k] == nil {
		ix[k] = map[uint64]struct{}{}
	}
	ix[k][id] = struct{}{}
}

func unindex(ix map[string]map[uint64]struct{}, k string, id uint64) {
	delete(ix[k], id)
	if len(ix[k]) == 0 {
		delete(ix, k)
	}
}

// Commit implements [Committer].
func (s *Memory) Commit(ctx context.Context, c *Commit) error {
	if c == nil {
		return fmt.Errorf("concord: memory store: nil Commit")
	}
	if err := CheckValueNames(c.Values); err != nil {
		return fmt.Errorf("concord: memory store: commit: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if c.Lease != nil {
		if cur := s.leases[c.Lease.Name]; cur.Token != c.Lease.Token || cur.Holder != c.Lease.Holder {
			return fmt.Errorf("%w: lease %q token %d superseded by %d", ErrStale, c.Lease.Name, c.Lease.Token, cur.Token)
		}
	}
	for i, st := range c.States {
		if st.Key == "" {
			return fmt.Errorf("concord: memory store: state %d has an empty key", i)
		}
		if rev := s.states[st.Key].Rev; st.Rev != rev {
			return fmt.Errorf("%w: record %q is at revision %d, not %d", ErrStale, st.Key, rev, st.Rev)
		}
	}
	if err := CheckAudit(uint64(len(s.audit)), c.Audit); err != nil {
		return fmt.Errorf("concord: memory store: %w", err)
	}
	maps.Copy(s.cursors, c.Cursors)
	var added []string
	for _, st := range c.States {
		if _, ok := s.states[st.Key]; !ok {
			added = append(added, st.Key)
		}
		cp := cloneState(st)
		cp.Rev++
		s.states[st.Key] = cp
		s.pending.set(st.Key, st.Pending)
		s.held.set(st.Key, st.Held)
	}
	for _, id := range c.RemoveDeadLetters {
		s.removeDead(id)
	}
	for _, d := range c.DeadLetters {
		s.deadSeq++
		d = cloneDead(d)
		d.ID = s.deadSeq
		s.addDead(d)
	}
	for name, v := range c.Values {
		if v == nil {
			delete(s.values, name)
		} else {
			s.values[name] = cloneBytes(v)
		}
	}
	s.appendAudit(c.Audit)
	s.addKeys(added)
	return nil
}

// appendAudit appends copies of entries to the log: their bytes in one
// allocation (entries are never changed or removed, so none of them keeps
// another's bytes alive for longer than its own).
func (s *Memory) appendAudit(entries []AuditEntry) {
	n := 0
	for _, e := range entries {
		n += len(e.Data)
	}
	buf := make([]byte, 0, n)
	if len(s.audit)+len(entries) > cap(s.audit) {
		// Double: append's growth of a long slice (1.25x) copies the
		// whole log over and over as it grows.
		grown := make([]AuditEntry, len(s.audit), max(2*cap(s.audit), len(s.audit)+len(entries)))
		copy(grown, s.audit)
		s.audit = grown
	}
	for _, e := range entries {
		if e.Data != nil {
			start := len(buf)
			buf = append(buf, e.Data...)
			e.Data = buf[start:len(buf):len(buf)]
		}
		s.audit = append(s.audit, e)
	}
}

// addKeys merges new keys (not stored yet; a key may repeat) into the
// sorted keys: one pass, however many there are.
func (s *Memory) addKeys(added []string) {
	if len(added) == 0 {
		return
	}
	slices.Sort(added)
	added = slices.Compact(added)
	merged := make([]string, 0, len(s.keys)+len(added))
	i, j := 0, 0
	for i < len(s.keys) && j < len(added) {
		if s.keys[i] < added[j] {
			merged = append(merged, s.keys[i])
			i++
		} else {
			merged = append(merged, added[j])
			j++
		}
	}
	merged = append(append(merged, s.keys[i:]...), added[j:]...)
	s.keys = merged
}
