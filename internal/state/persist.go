package state

import (
	"context"
	"errors"
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/sync/store"
)

// Commit is one atomic change to a store in the engine's terms: records and
// dead letters rather than their encodings. [Commit.Apply] encodes it into a
// store.Commit.
type Commit struct {
	Lease             *store.Lease
	Cursors           map[concord.SystemID]connector.Cursor
	Values            map[string][]byte
	Audit             []store.AuditEntry
	States            []*Record
	DeadLetters       []DeadLetter
	RemoveDeadLetters []uint64
}

// Apply encodes c and commits it to s. Each state is encoded at the
// revision it has once stored (Rev+1), with the Pending and Held flags the
// store indexes; on success the given states' Rev are incremented. A state
// or dead letter that cannot be encoded fails the commit with an error
// naming it, and nothing is applied.
func (c *Commit) Apply(ctx context.Context, s store.Committer) error {
	sc := &store.Commit{Lease: c.Lease, Cursors: c.Cursors, Values: c.Values, Audit: c.Audit, RemoveDeadLetters: c.RemoveDeadLetters}
	if len(c.States) > 0 {
		sc.States = make([]store.State, len(c.States))
	}
	for i, st := range c.States {
		ss, err := Encode(st)
		if err != nil {
			return err
		}
		sc.States[i] = ss
	}
	if len(c.DeadLetters) > 0 {
		sc.DeadLetters = make([]store.DeadLetter, len(c.DeadLetters))
	}
	for i, d := range c.DeadLetters {
		data, err := EncodeDeadLetter(nil, d)
		if err != nil {
			return fmt.Errorf("concord: encoding the dead letter of record %q from %s: %w", d.Key, d.System, err)
		}
		sc.DeadLetters[i] = store.DeadLetter{System: d.System, Key: d.Key, Data: data}
	}
	if err := s.Commit(ctx, sc); err != nil {
		return err
	}
	for _, st := range c.States {
		st.Rev++
	}
	return nil
}

// Encode returns the store.State that stores st: its encoding at the
// revision it has once committed (Rev+1: the encoding carries its key and
// revision, which [Decode] checks against the store's), and its flags.
func Encode(st *Record) (store.State, error) {
	cp := *st // shallow: only Rev differs, nothing is written through it
	cp.Rev++
	data, err := EncodeState(make([]byte, 0, 512), &cp)
	if err != nil {
		return store.State{}, fmt.Errorf("concord: encoding the state of record %q: %w", st.Key, err)
	}
	return store.State{Key: st.Key, Rev: st.Rev, Pending: st.Pending(), Held: st.Held(), Data: data}, nil
}

// Decode decodes the state a store returned for key, and checks that the
// key and revision it was encoded with are the store's. Damage is an error
// wrapping store.ErrDamaged, data of a newer format one wrapping
// [ErrNewerFormat]; both name the key.
func Decode(key string, ss store.State) (*Record, error) {
	st, err := DecodeState(ss.Data)
	if err != nil {
		return nil, codecErr(fmt.Sprintf("record %q", key), err)
	}
	if st.Key != key || ss.Key != key || st.Rev != ss.Rev {
		return nil, fmt.Errorf("%w: record %q: stored under %q at revision %d, encoded as %q at revision %d",
			store.ErrDamaged, key, ss.Key, ss.Rev, st.Key, st.Rev)
	}
	return st, nil
}

// DecodeLetter decodes a dead letter a store returned, with its ID.
func DecodeLetter(sd store.DeadLetter) (DeadLetter, error) {
	d, err := DecodeDeadLetter(sd.Data)
	if err != nil {
		return DeadLetter{}, codecErr(fmt.Sprintf("dead letter %d", sd.ID), err)
	}
	d.ID = sd.ID
	return d, nil
}

func codecErr(what string, err error) error {
	if errors.Is(err, ErrNewerFormat) {
		return fmt.Errorf("concord: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", store.ErrDamaged, what, err)
}

// Load loads the states of keys from s and decodes them.
func Load(ctx context.Context, s store.Records, keys []string) (map[string]*Record, error) {
	stored, err := s.Load(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Record, len(stored))
	for k, ss := range stored {
		st, err := Decode(k, ss)
		if err != nil {
			return nil, err
		}
		out[k] = st
	}
	return out, nil
}

// LoadDeadLetters loads every dead letter from s, oldest first, decoded.
func LoadDeadLetters(ctx context.Context, s store.DeadLetters) ([]DeadLetter, error) {
	stored, err := s.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(stored))
	for i, sd := range stored {
		if out[i], err = DecodeLetter(sd); err != nil {
			return nil, err
		}
	}
	return out, nil
}
