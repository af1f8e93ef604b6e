package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// Codec encodes the states and dead letters; the zero Codec seals
	// nothing.
	Codec             Codec
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
		ss, err := c.Codec.Encode(st)
		if err != nil {
			return err
		}
		sc.States[i] = ss
	}
	if len(c.DeadLetters) > 0 {
		sc.DeadLetters = make([]store.DeadLetter, len(c.DeadLetters))
	}
	for i, d := range c.DeadLetters {
		data, err := c.Codec.EncodeDeadLetter(nil, d)
		if err != nil {
			return fmt.Errorf("concord: encoding the dead letter of record %q from %s: %w", d.Key, d.System, err)
		}
		sc.DeadLetters[i] = store.DeadLetter{System: d.System, Key: IndexKey(d.Key), Class: d.Class, Data: data}
	}
	if err := s.Commit(ctx, sc); err != nil {
		return err
	}
	for _, st := range c.States {
		st.Rev++
	}
	return nil
}

// IndexKey is the key a store indexes a dead letter of the record key by
// (store.DeadLetter.Key): the key itself, or, for a key longer than
// concord.MaxKeyBytes (a record refused for it), its first bytes and the
// SHA-256 of all of it, MaxKeyBytes long, which every store can hold. The
// letter's data keeps the whole key.
func IndexKey(key string) string {
	if len(key) <= concord.MaxKeyBytes {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	return key[:concord.MaxKeyBytes-len(h)-1] + "#" + h
}

// Encode is [Codec.Encode] of the zero Codec: nothing is sealed.
func Encode(st *Record) (store.State, error) { return Codec{}.Encode(st) }

// Encode returns the store.State that stores st: its encoding at the
// revision it has once committed (Rev+1: the encoding carries its key and
// revision, which [Decode] checks against the store's), and its flags.
func (c Codec) Encode(st *Record) (store.State, error) {
	if Strict {
		if err := st.CheckTables(); err != nil {
			panic(err) // it names the record, the system and the table
		}
	}
	cp := *st // shallow: only Rev differs, nothing is written through it
	cp.Rev++
	in, keep := st.resume, st.keep
	st.resume, st.keep = nil, false
	data, _, out, err := c.encodeResumable(nil, &cp, in, keep) // sized from the last encoding (encodeCompact)
	if err != nil {
		return store.State{}, fmt.Errorf("concord: encoding the state of record %q: %w", st.Key, err)
	}
	st.resume = out
	if Strict && in != nil && !in.sealed {
		if whole, _ := c.EncodeState(nil, &cp); !bytes.Equal(whole, data) {
			panic(fmt.Sprintf("state: the encoding of record %q resumed after KeepEncoding differs from its whole encoding: something beyond its views changed in between", st.Key))
		}
	}
	return store.State{Key: st.Key, Rev: st.Rev, Pending: st.PendingAmong(c.Systems), Held: st.Held(), Data: data}, nil
}

// Decode is [Codec.Decode] of the zero Codec: a sealed value does not
// decode.
func Decode(key string, ss store.State) (*Record, error) { return Codec{}.Decode(key, ss) }

// Decode decodes the state a store returned for key, and checks that the
// key and revision it was encoded with are the store's. Damage is an error
// wrapping store.ErrDamaged, data of a newer format one wrapping
// [ErrNewerFormat]; both name the key. A sealed value that does not open
// is a [*SealError], wrapping store.ErrDamaged only if its bytes are
// malformed.
func (c Codec) Decode(key string, ss store.State) (*Record, error) {
	st, _, err := c.decodeStored(key, ss, false)
	return st, err
}

func (c *Codec) decodeStored(key string, ss store.State, track bool) (*Record, bool, error) {
	st, stale, err := c.decodeState(ss.Data, track)
	if err != nil {
		return nil, false, codecErr(fmt.Sprintf("record %q", key), err)
	}
	if st.Key != key || ss.Key != key || st.Rev != ss.Rev {
		return nil, false, fmt.Errorf("%w: record %q: stored under %q at revision %d, encoded as %q at revision %d",
			store.ErrDamaged, key, ss.Key, ss.Rev, st.Key, st.Rev)
	}
	return st, stale, nil
}

// DecodeLetter is [Codec.DecodeLetter] of the zero Codec.
func DecodeLetter(sd store.DeadLetter) (DeadLetter, error) { return Codec{}.DecodeLetter(sd) }

// DecodeLetter decodes a dead letter a store returned, with its ID. Errors
// are as [Codec.Decode]'s.
func (c Codec) DecodeLetter(sd store.DeadLetter) (DeadLetter, error) {
	d, err := c.DecodeDeadLetter(sd.Data)
	if err != nil {
		return DeadLetter{}, codecErr(fmt.Sprintf("dead letter %d", sd.ID), err)
	}
	d.ID = sd.ID
	return d, nil
}

// codecErr names what failed to decode, and adds store.ErrDamaged unless
// the data is not damaged: of a newer format, or holding a sealed value
// that does not open for another reason than malformed bytes.
func codecErr(what string, err error) error {
	var se *SealError
	if errors.Is(err, ErrNewerFormat) || (errors.As(err, &se) && !errors.Is(err, ErrCorrupt)) {
		return fmt.Errorf("concord: %s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", store.ErrDamaged, what, err)
}

// Load is [Codec.Load] of the zero Codec.
func Load(ctx context.Context, s store.Records, keys []string) (map[string]*Record, error) {
	return Codec{}.Load(ctx, s, keys)
}

// Load loads the states of keys from s and decodes them.
func (c Codec) Load(ctx context.Context, s store.Records, keys []string) (map[string]*Record, error) {
	out, bad, err := c.LoadEach(ctx, s, keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := bad[k]; err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LoadEach loads the states of keys from s and decodes each on its own: a
// state that does not decode (damaged, of a newer format, a sealed value
// whose key the Codec lacks) is left out of the states and its error put
// in bad, by key. err is the store's failure to load at all.
func (c Codec) LoadEach(ctx context.Context, s store.Records, keys []string) (states map[string]*Record, bad map[string]error, err error) {
	stored, err := s.Load(ctx, keys)
	if err != nil {
		return nil, nil, err
	}
	states = make(map[string]*Record, len(stored))
	for k, ss := range stored {
		st, err := c.Decode(k, ss)
		if err != nil {
			if bad == nil {
				bad = map[string]error{}
			}
			bad[k] = err
			continue
		}
		states[k] = st
	}
	return states, bad, nil
}

// LoadDeadLetters is [Codec.LoadDeadLetters] of the zero Codec.
func LoadDeadLetters(ctx context.Context, s store.DeadLetters) ([]DeadLetter, error) {
	return Codec{}.LoadDeadLetters(ctx, s)
}

// LoadDeadLetters loads every dead letter from s, oldest first, decoded.
func (c Codec) LoadDeadLetters(ctx context.Context, s store.DeadLetters) ([]DeadLetter, error) {
	stored, err := s.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(stored))
	for i, sd := range stored {
		if out[i], err = c.DecodeLetter(sd); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ResealState is the re-encryption pass's step for one stored state: if
// the Codec would seal some value of it differently (a value sealed under
// a key that is no longer the Sealer's current one, a sensitive field's
// value stored in the clear, a sealed value of a field no longer
// sensitive), it returns the state re-encoded as [Codec.Encode] does, for
// the pass to commit (store.Commit checks ss.Rev, so a concurrent change
// wins and the pass retries), and true. Otherwise it returns ss and false.
// Errors are as [Codec.Decode]'s: a value under a retired key is an error
// wrapping seal.ErrUnknownKey.
func (c Codec) ResealState(key string, ss store.State) (store.State, bool, error) {
	st, stale, err := c.decodeStored(key, ss, true)
	if err != nil || !stale {
		return ss, false, err
	}
	out, err := c.Encode(st)
	if err != nil {
		return ss, false, err
	}
	return out, true, nil
}

// ResealLetter is ResealState for a stored dead letter: if it is to be
// sealed differently, it returns its new encoding (ID zero) for the pass
// to add in the commit that removes sd.ID, and true.
func (c Codec) ResealLetter(sd store.DeadLetter) (store.DeadLetter, bool, error) {
	dl, stale, err := c.decodeDeadLetter(sd.Data, true)
	if err != nil {
		return sd, false, codecErr(fmt.Sprintf("dead letter %d", sd.ID), err)
	}
	if !stale {
		return sd, false, nil
	}
	data, err := c.EncodeDeadLetter(nil, dl)
	if err != nil {
		return sd, false, fmt.Errorf("concord: encoding the dead letter of record %q from %s: %w", dl.Key, dl.System, err)
	}
	// The decoded letter's System, Key and Class, for the store's indexes:
	// a store may not have returned them in sd.
	return store.DeadLetter{System: dl.System, Key: dl.Key, Class: dl.Class, Data: data}, true, nil
}
