package store_test

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/storetest"
)

// mapStore is a store written from scratch against the exported API only,
// as a third party would: one mutex, plain maps, copies in and out. It
// shares no code with store.Memory.
type mapStore struct {
	mu      gosync.Mutex
	now     func() time.Time
	epoch   uint64
	actors  []string // actor n is actors[n-1]
	cursors map[concord.SystemID]connector.Cursor
	states  map[string]store.State
	dead    map[uint64]store.DeadLetter
	lastID  uint64
	leases  map[string]store.Lease
	sorted  []string // every key of states, in order
	values  map[string][]byte
	log     []store.AuditEntry
}

var _ store.Store = (*mapStore)(nil)

func newMapStore(now func() time.Time) *mapStore {
	return &mapStore{now: now, epoch: store.NextEpoch(0), cursors: map[concord.SystemID]connector.Cursor{},
		states: map[string]store.State{}, dead: map[uint64]store.DeadLetter{}, leases: map[string]store.Lease{},
		values: map[string][]byte{}}
}

func (s *mapStore) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	return nil
}

func (s *mapStore) Actor(ctx context.Context, name string) (concord.Actor, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if i := slices.Index(s.actors, name); i >= 0 {
		return concord.Actor(i + 1), nil
	}
	s.actors = append(s.actors, name)
	return concord.Actor(len(s.actors)), nil
}

func (s *mapStore) Epoch(ctx context.Context) (uint64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return s.epoch, nil
}

func (s *mapStore) NewEpoch(ctx context.Context) (uint64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.epoch = store.NextEpoch(s.epoch)
	return s.epoch, nil
}

func (s *mapStore) Cursor(ctx context.Context, system concord.SystemID) (connector.Cursor, error) {
	if err := s.enter(ctx); err != nil {
		return "", err
	}
	defer s.mu.Unlock()
	return s.cursors[system], nil
}

func (s *mapStore) Value(ctx context.Context, name string) ([]byte, error) {
	if err := store.CheckValueName(name); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if v, ok := s.values[name]; ok {
		return append([]byte{}, v...), nil
	}
	return nil, nil
}

func (s *mapStore) Keys(ctx context.Context, after string, limit int) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []string
	i, _ := slices.BinarySearch(s.sorted, after)
	for ; i < len(s.sorted) && len(out) < limit; i++ {
		if s.sorted[i] > after {
			out = append(out, s.sorted[i])
		}
	}
	return out, nil
}

func (s *mapStore) AuditHead(ctx context.Context) (store.AuditEntry, error) {
	if err := s.enter(ctx); err != nil {
		return store.AuditEntry{}, err
	}
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		return store.AuditEntry{}, nil
	}
	e := s.log[len(s.log)-1]
	e.Data = append([]byte{}, e.Data...)
	return e, nil
}

func (s *mapStore) AuditEntries(ctx context.Context, after uint64, limit int) ([]store.AuditEntry, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []store.AuditEntry
	for seq := after + 1; seq > after && seq <= uint64(len(s.log)) && len(out) < limit; seq++ {
		e := s.log[seq-1]
		e.Data = append([]byte{}, e.Data...)
		out = append(out, e)
	}
	return out, nil
}

func (s *mapStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (store.Lease, error) {
	if err := s.enter(ctx); err != nil {
		return store.Lease{}, err
	}
	defer s.mu.Unlock()
	l, err := store.NextLease(s.leases[name], name, holder, ttl, s.now())
	if err == nil {
		s.leases[name] = l
	}
	return l, err
}

func (s *mapStore) ReleaseLease(ctx context.Context, l store.Lease) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if cur := s.leases[l.Name]; cur.Holder == l.Holder && cur.Token == l.Token {
		cur.Holder, cur.Expires = "", time.Time{}
		s.leases[l.Name] = cur
	}
	return nil
}

func (s *mapStore) Load(ctx context.Context, keys []string) (map[string]store.State, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := map[string]store.State{}
	for _, k := range keys {
		if st, ok := s.states[k]; ok {
			st.Data = slices.Clone(st.Data)
			out[k] = st
		}
	}
	return out, nil
}

func (s *mapStore) flagged(pick func(store.State) bool, limit int) []string {
	var keys []string
	for k, st := range s.states {
		if pick(st) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys[:min(len(keys), max(limit, 0))]
}

func (s *mapStore) Pending(ctx context.Context, limit int) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.flagged(func(st store.State) bool { return st.Pending }, limit), nil
}

func (s *mapStore) Held(ctx context.Context) ([]string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return s.flagged(func(st store.State) bool { return st.Held }, len(s.states)), nil
}

func (s *mapStore) DeadLetters(ctx context.Context) ([]store.DeadLetter, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []store.DeadLetter
	for id := range s.lastID + 1 {
		if d, ok := s.dead[id]; ok {
			d.Data = slices.Clone(d.Data)
			out = append(out, d)
		}
	}
	return out, nil
}

// DeadLettersOf and DeadLettersOfClass filter every dead letter: simple
// rather than indexed (the contract's cost bound is not this store's aim),
// which makes them an oracle for the indexed stores.
func (s *mapStore) DeadLettersOf(ctx context.Context, keys []string) ([]store.DeadLetter, error) {
	all, err := s.DeadLetters(ctx)
	return slices.DeleteFunc(all, func(d store.DeadLetter) bool { return !slices.Contains(keys, d.Key) }), err
}

func (s *mapStore) DeadLettersOfClass(ctx context.Context, class string) ([]store.DeadLetter, error) {
	all, err := s.DeadLetters(ctx)
	return slices.DeleteFunc(all, func(d store.DeadLetter) bool { return d.Class != class }), err
}

func (s *mapStore) DeadLetter(ctx context.Context, id uint64) (store.DeadLetter, error) {
	if err := s.enter(ctx); err != nil {
		return store.DeadLetter{}, err
	}
	defer s.mu.Unlock()
	d, ok := s.dead[id]
	if !ok {
		return store.DeadLetter{}, fmt.Errorf("map store: %w: %d", store.ErrNotFound, id)
	}
	d.Data = slices.Clone(d.Data)
	return d, nil
}

func (s *mapStore) Commit(ctx context.Context, c *store.Commit) error {
	if err := store.CheckValueNames(c.Values); err != nil {
		return fmt.Errorf("map store: %w", err)
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if l := c.Lease; l != nil {
		if cur := s.leases[l.Name]; cur.Token != l.Token || cur.Holder != l.Holder {
			return fmt.Errorf("map store: %w: lease %q", store.ErrStale, l.Name)
		}
	}
	for _, st := range c.States {
		if st.Rev != s.states[st.Key].Rev {
			return fmt.Errorf("map store: %w: record %q", store.ErrStale, st.Key)
		}
	}
	if err := store.CheckAudit(uint64(len(s.log)), c.Audit); err != nil {
		return fmt.Errorf("map store: %w", err)
	}
	for sys, cur := range c.Cursors {
		s.cursors[sys] = cur
	}
	for _, st := range c.States {
		if i, found := slices.BinarySearch(s.sorted, st.Key); !found {
			s.sorted = slices.Insert(s.sorted, i, st.Key)
		}
		st.Rev++
		st.Data = slices.Clone(st.Data)
		s.states[st.Key] = st
	}
	for _, id := range c.RemoveDeadLetters {
		delete(s.dead, id)
	}
	for _, d := range c.DeadLetters {
		s.lastID++
		d.ID, d.Data = s.lastID, slices.Clone(d.Data)
		s.dead[d.ID] = d
	}
	for name, v := range c.Values {
		if v == nil {
			delete(s.values, name)
		} else {
			s.values[name] = append([]byte{}, v...)
		}
	}
	for _, e := range c.Audit {
		e.Data = append([]byte(nil), e.Data...)
		s.log = append(s.log, e)
	}
	return nil
}

// A store written outside the store packages, against the exported API
// only, passes the conformance suite.
func TestThirdPartyStore(t *testing.T) {
	storetest.Run(t, func(_ testing.TB, now func() time.Time) store.Store { return newMapStore(now) })
}
