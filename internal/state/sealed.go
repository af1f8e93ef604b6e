package state

import (
	"errors"
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/sync/seal"
)

// Codec encodes and decodes states and dead letters, sealing the values of
// sensitive fields (see the package documentation, "Sealed values"). The
// zero Codec seals nothing: it is what the package-level functions
// ([EncodeState], [Decode], [Load] ...) use, and it fails to decode a
// sealed value with [ErrNoSealer].
//
// A Codec is a value: copy it freely. It is safe for concurrent use if its
// Sealer, Hasher and Sensitive are.
type Codec struct {
	// Sealer seals the values of sensitive fields and opens sealed values
	// (a *seal.KeyRing). Nil: nothing is sealed, and a sealed value does
	// not decode. If it has a method NeedsReseal([]byte) bool (as
	// *seal.KeyRing has), the Reseal helpers re-encode only what it says
	// is not under its current key; otherwise every sealed value is
	// sealed again.
	Sealer seal.Sealer
	// Sensitive reports whether the values of a field are sealed; nil:
	// none is. It is asked of every field name as it appears: the
	// canonical names of a state, and in a dead letter the system's own
	// names (Record) as well as the canonical ones (Transformed).
	Sensitive func(field string) bool
	// Context is the first part of every sealed value's associated data
	// (seal.AAD(Context, record key, field)): a sealed value opens only
	// under the same Context, record key and field. Give each deployment
	// (pipeline) its own, so that values cannot be moved between them
	// either.
	Context string
	// Hasher, if set, stands in for the plaintext of sensitive fields'
	// values in [Codec.Revision].
	Hasher seal.Hasher
	// Systems, if not nil, are the configured systems: a state is stored
	// as pending (store.State.Pending) only if one of them lacks some
	// canonical value (Record.PendingAmong).
	Systems []concord.SystemID
}

// tagSealed is the value tag of a sealed value (format 4): the sealed
// bytes, length-prefixed, of the encoding of the plaintext value.
const tagSealed = 'S'

// ErrNoSealer is wrapped by the error for a sealed value decoded by a Codec
// without a Sealer, and for a value of a sensitive field encoded by one.
// The data is not damaged: configure the key ring.
var ErrNoSealer = errors.New("state: no Sealer configured")

// ErrPanic is wrapped by the error for a Sealer, Hasher or Sensitive that
// panicked: the codec recovers it.
var ErrPanic = errors.New("state: user code panicked")

// SealError is the error for a value of a field that could not be sealed or
// opened: which record and field, and why. Err wraps [ErrNoSealer],
// [ErrPanic] or the Sealer's error (seal.ErrUnknownKey, seal.ErrTampered,
// seal.ErrMalformed ...); for malformed sealed bytes, or a plaintext that
// does not decode, it also wraps [ErrCorrupt], and [Decode] and the other
// store-facing functions wrap store.ErrDamaged. An unknown key, a value
// that fails authentication (moved to another record or field, or a ring
// holding other bytes under the key's ID) and a missing Sealer are not
// damage: they say what is wrong with the configuration or the data's
// provenance, and the stored bytes are left as they are.
type SealError struct {
	// Key is the record key (a dead letter's Key).
	Key string
	// Field is the field whose value it is.
	Field string
	// Op is "sealing" or "opening".
	Op string
	// Err says why.
	Err error
}

// Error names the record, the field and the reason.
func (e *SealError) Error() string {
	return fmt.Sprintf("state: record %q, field %q: %s the value: %v", e.Key, e.Field, e.Op, e.Err)
}

// Unwrap returns Err.
func (e *SealError) Unwrap() error { return e.Err }

// resealer is the optional method of a Sealer that tells which sealed
// values are not under its current key.
type resealer interface {
	NeedsReseal(sealed []byte) bool
}

func panicErr(what string, v any) error { return fmt.Errorf("%w: %s: %v", ErrPanic, what, v) }

// sensitive calls Sensitive, recovering a panic.
func (c Codec) sensitive(field string) (yes bool, err error) {
	if c.Sensitive == nil {
		return false, nil
	}
	defer func() {
		if v := recover(); v != nil {
			yes, err = true, panicErr(fmt.Sprintf("Sensitive(%q)", field), v)
		}
	}()
	return c.Sensitive(field), nil
}

// sealValue calls Sealer.Seal, recovering a panic.
func (c Codec) sealValue(plain, aad []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, panicErr("Sealer.Seal", v)
		}
	}()
	return c.Sealer.Seal(plain, aad)
}

// openValue calls Sealer.Open, recovering a panic.
func (c Codec) openValue(sealed, aad []byte) (out []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, panicErr("Sealer.Open", v)
		}
	}()
	return c.Sealer.Open(sealed, aad)
}

// needsReseal reports whether a sealed value is to be sealed again: not
// under the Sealer's current key, or (a Sealer that cannot tell, or that
// panics) always.
func (c Codec) needsReseal(sealed []byte) (yes bool) {
	r, ok := c.Sealer.(resealer)
	if !ok {
		return true
	}
	defer func() {
		if recover() != nil {
			yes = true
		}
	}()
	return r.NeedsReseal(sealed)
}

// aad is the associated data of the value of field in the record key.
func (c Codec) aad(key, field string) []byte { return seal.AAD(c.Context, key, field) }

// Reseal re-encodes the encoding of a state or a dead letter (as
// [Codec.EncodeState] or [Codec.EncodeDeadLetter] wrote it, in any format
// version) if the Codec would seal some value of it differently: sealed
// under a key that is no longer the Sealer's current one, a sensitive
// field's value in the clear, a sealed value of a field no longer
// sensitive. It returns the new encoding and true, or data and false. The
// content is kept as it is, the revision of a state included: for a state
// to commit to a store, use [Codec.ResealState], which encodes it at its
// next revision.
//
// key is the record key the encoding must hold (a dead letter's Key);
// another one is an error wrapping [ErrCorrupt]. Decoding errors are as
// [Codec.DecodeState]'s.
func (c Codec) Reseal(data []byte, key string) ([]byte, bool, error) {
	var (
		got   string
		stale bool
		err   error
		enc   func() ([]byte, error)
	)
	switch {
	case len(data) >= 3 && [3]byte(data[:3]) == magicState:
		var st *Record
		st, stale, err = c.decodeState(data, true)
		if st != nil {
			got, enc = st.Key, func() ([]byte, error) { return c.EncodeState(nil, st) }
		}
	case len(data) >= 3 && [3]byte(data[:3]) == magicDead:
		var dl DeadLetter
		dl, stale, err = c.decodeDeadLetter(data, true)
		got, enc = dl.Key, func() ([]byte, error) { return c.EncodeDeadLetter(nil, dl) }
	default:
		return data, false, fmt.Errorf("%w: neither a state nor a dead letter", ErrCorrupt)
	}
	if err != nil {
		return data, false, err
	}
	if got != key {
		return data, false, fmt.Errorf("%w: encoded for record %q, not %q", ErrCorrupt, got, key)
	}
	if !stale {
		return data, false, nil
	}
	out, err := enc()
	if err != nil {
		return data, false, err
	}
	return out, true, nil
}
