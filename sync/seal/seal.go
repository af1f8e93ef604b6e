// Package seal encrypts sensitive values at rest: AES-256-GCM under a key
// ring that the host builds and rotates, with associated data that binds
// each ciphertext to where it belongs (for the engine: its record and
// field), and a keyed hash for comparing sealed values without their
// plaintext.
//
// # Sealed values
//
// [KeyRing.Seal] encrypts under the ring's current key with a random 96-bit
// nonce and returns a self-describing byte string:
//
//	format (1 byte, 1) | key ID length (1 byte, 1..255) | key ID | nonce (12 bytes) | ciphertext | tag (16 bytes)
//
// The header (format, key ID) is authenticated together with the caller's
// associated data, so that neither can be changed without [KeyRing.Open]
// failing with [ErrTampered]. Open picks the key by the ID the value names:
// values sealed under any key still in the ring open, whichever is
// current. [KeyOf] and [KeyRing.NeedsReseal] tell which values a
// re-encryption pass must seal again after a rotation.
//
// The length of a ciphertext is the length of its plaintext plus 30 bytes
// and the key ID: sealing hides the content of a value, not its length.
//
// # Rotation
//
// A new key is added with [KeyRing.Rotate] (or by building a new ring): it
// seals from then on, and the older keys still open what they sealed. Once
// a pass has sealed everything again under the new key (the engine's
// codec does it with its Reseal helpers), [KeyRing.Retire] removes an old
// key; a value still sealed under it then fails with [ErrUnknownKey].
// Random nonces are safe for about 2^32 seals per key (NIST SP 800-38D):
// rotate well before that.
//
// # Keyed hashes
//
// [KeyRing.Hash] is an HMAC-SHA256 under a dedicated hash key that never
// rotates with the encryption keys: two equal values hash the same before
// and after a rotation, which is what equality and echo detection need.
// See [KeyRing.Hash] for what the hash does and does not protect.
//
// # Key material
//
// A KeyRing never prints, logs or marshals key bytes: fmt (every verb),
// log/slog and encoding/json see only key IDs.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Sealer seals and opens byte strings with associated data: what the
// engine's codec needs of a [KeyRing], so that a host (or a test) can give
// it another implementation. Open must fail for any sealed value not made
// by Seal with the same associated data.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Hasher computes keyed hashes of field values ([KeyRing.Hash]).
type Hasher interface {
	Hash(field string, value []byte) uint64
}

// KeyID names a key of a [KeyRing]. It is stored in the clear in every
// value sealed under the key, so it must not itself be secret: a date or a
// counter ("2026-05") does. It is 1 to 255 bytes long.
type KeyID string

// Sizes of the sealed format.
const (
	// KeySize is the size of every key: AES-256.
	KeySize = 32
	// MinHashKeySize is the least size of the hash key.
	MinHashKeySize = 32
	// NonceSize is the size of the random nonce of every sealed value.
	NonceSize = 12
	// Overhead is what a sealed value adds to its plaintext, besides its
	// key ID: the format byte, the key ID length, the nonce and the
	// 16-byte authentication tag.
	Overhead = 2 + NonceSize + 16

	format1  = 1
	maxKeyID = 255
)

// Sentinel errors; every error of this package wraps one of them, inside
// an [*Error].
var (
	// ErrBadKey: a key or key ID that a ring refuses (wrong size, empty or
	// too long ID, an ID reused for other bytes, no hash key, a current
	// key not in the ring, retiring the current key).
	ErrBadKey = errors.New("seal: bad key")
	// ErrUnknownKey: a sealed value names a key that the ring does not
	// hold (retired, or never given to it). The value is not damaged.
	ErrUnknownKey = errors.New("seal: unknown key")
	// ErrTampered: authentication failed. The value was changed, or moved
	// to where other associated data is given (another record or field),
	// or the ring holds other bytes under its key ID.
	ErrTampered = errors.New("seal: authentication failed")
	// ErrMalformed: the bytes are not a sealed value of a format this
	// package knows (truncated, unknown format byte, bad key ID length).
	ErrMalformed = errors.New("seal: malformed sealed value")
)

// Error is the error of an operation of this package: what was done, the
// key concerned (empty if none), and why (wrapping a sentinel).
type Error struct {
	// Op is the operation: "new key ring", "rotate", "retire", "seal",
	// "open" or "key of".
	Op string
	// Key is the key ID concerned, if any.
	Key KeyID
	// Err wraps one of the sentinel errors.
	Err error
}

// Error says what failed, on which key, and why.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("seal: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", string(e.Key))
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "seal: "))
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

func fail(op string, key KeyID, sentinel error, format string, args ...any) error {
	err := sentinel
	if format != "" {
		err = fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
	}
	return &Error{Op: op, Key: key, Err: err}
}

// Option configures a [KeyRing].
type Option func(*options)

type options struct {
	hashKey []byte
}

// WithHashKey gives the ring its hash key for [KeyRing.Hash], at least
// [MinHashKeySize] bytes and different from every encryption key. It is
// required. Unlike the encryption keys it never rotates: changing it
// changes every hash, so that stored hashes no longer match their values.
func WithHashKey(key []byte) Option {
	return func(o *options) { o.hashKey = slices.Clone(key) }
}

// KeyRing holds the encryption keys and the hash key. It is safe for
// concurrent use, [KeyRing.Rotate] and [KeyRing.Retire] included: a seal
// or open sees the ring either before or after a change.
type KeyRing struct {
	mu      sync.Mutex // serializes Rotate and Retire
	keys    atomic.Pointer[keys]
	hashKey []byte
	hmacs   sync.Pool // of hash.Hash keyed with hashKey
}

// keys is an immutable snapshot of the encryption keys.
type keys struct {
	current KeyID
	aead    map[KeyID]cipher.AEAD
	// sum is a SHA-256 of each key's bytes, to compare keys without
	// keeping them.
	sum map[KeyID][sha256.Size]byte
}

// NewKeyRing returns a ring of keys (each [KeySize] bytes) that seals
// under current, which must be one of them, and hashes under the key given
// with [WithHashKey]. The ring keeps no reference to the given slices.
func NewKeyRing(current KeyID, keyBytes map[KeyID][]byte, opts ...Option) (*KeyRing, error) {
	const op = "new key ring"
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ks := &keys{current: current, aead: make(map[KeyID]cipher.AEAD, len(keyBytes)), sum: make(map[KeyID][sha256.Size]byte, len(keyBytes))}
	for _, id := range slices.Sorted(maps.Keys(keyBytes)) {
		if err := ks.add(op, id, keyBytes[id]); err != nil {
			return nil, err
		}
	}
	if _, ok := ks.aead[current]; !ok {
		return nil, fail(op, current, ErrBadKey, "the current key is not among the %d keys given", len(keyBytes))
	}
	if len(o.hashKey) == 0 {
		return nil, fail(op, "", ErrBadKey, "no hash key: give one with WithHashKey (it must not rotate with the encryption keys)")
	}
	if len(o.hashKey) < MinHashKeySize {
		return nil, fail(op, "", ErrBadKey, "hash key of %d bytes, want at least %d", len(o.hashKey), MinHashKeySize)
	}
	hs := sha256.Sum256(o.hashKey)
	for _, id := range slices.Sorted(maps.Keys(ks.sum)) {
		if s := ks.sum[id]; subtle.ConstantTimeCompare(s[:], hs[:]) == 1 {
			return nil, fail(op, id, ErrBadKey, "the hash key is this encryption key: use a key of its own")
		}
	}
	r := &KeyRing{hashKey: o.hashKey}
	r.hmacs.New = func() any { return hmac.New(sha256.New, r.hashKey) }
	r.keys.Store(ks)
	return r, nil
}

// add checks and adds one key to a snapshot being built.
func (ks *keys) add(op string, id KeyID, key []byte) error {
	if id == "" || len(id) > maxKeyID {
		return fail(op, id, ErrBadKey, "key ID of %d bytes, want 1 to %d", len(id), maxKeyID)
	}
	if len(key) != KeySize {
		return fail(op, id, ErrBadKey, "%d bytes, want %d (AES-256)", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fail(op, id, ErrBadKey, "%v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fail(op, id, ErrBadKey, "%v", err)
	}
	ks.aead[id] = aead
	ks.sum[id] = sha256.Sum256(key)
	return nil
}

func (ks *keys) clone() *keys {
	return &keys{current: ks.current, aead: maps.Clone(ks.aead), sum: maps.Clone(ks.sum)}
}

// Rotate adds key under id, if the ring does not hold it yet, and makes it
// the current key: values are sealed under it from now on, and the older
// keys still open theirs. An id the ring holds with other bytes is
// refused: values sealed under it would no longer open.
func (r *KeyRing) Rotate(id KeyID, key []byte) error {
	const op = "rotate"
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, err := r.load(op)
	if err != nil {
		return err
	}
	ks = ks.clone()
	if old, ok := ks.sum[id]; ok {
		if s := sha256.Sum256(key); len(key) != KeySize || subtle.ConstantTimeCompare(old[:], s[:]) != 1 {
			return fail(op, id, ErrBadKey, "the ring holds other bytes under this key ID")
		}
	} else if err := ks.add(op, id, key); err != nil {
		return err
	}
	if hs, s := sha256.Sum256(r.hashKey), ks.sum[id]; subtle.ConstantTimeCompare(s[:], hs[:]) == 1 {
		return fail(op, id, ErrBadKey, "this key is the hash key: use a key of its own")
	}
	ks.current = id
	r.keys.Store(ks)
	return nil
}

// Retire removes the key id: values still sealed under it no longer open
// ([ErrUnknownKey]). Run a re-encryption pass first. The current key
// cannot be retired.
func (r *KeyRing) Retire(id KeyID) error {
	const op = "retire"
	r.mu.Lock()
	defer r.mu.Unlock()
	ks, err := r.load(op)
	if err != nil {
		return err
	}
	if _, ok := ks.aead[id]; !ok {
		return fail(op, id, ErrUnknownKey, "")
	}
	if id == ks.current {
		return fail(op, id, ErrBadKey, "the current key cannot be retired: rotate first")
	}
	ks = ks.clone()
	delete(ks.aead, id)
	delete(ks.sum, id)
	r.keys.Store(ks)
	return nil
}

// load returns the ring's keys, or an error for a ring not made by
// NewKeyRing.
func (r *KeyRing) load(op string) (*keys, error) {
	if ks := r.keys.Load(); ks != nil {
		return ks, nil
	}
	return nil, fail(op, "", ErrBadKey, "a KeyRing holds keys only if made by NewKeyRing")
}

// Current returns the ID of the key that seals.
func (r *KeyRing) Current() KeyID {
	if ks := r.keys.Load(); ks != nil {
		return ks.current
	}
	return ""
}

// KeyIDs returns the IDs of the keys the ring holds, sorted.
func (r *KeyRing) KeyIDs() []KeyID {
	if ks := r.keys.Load(); ks != nil {
		return slices.Sorted(maps.Keys(ks.aead))
	}
	return nil
}

// Seal encrypts plaintext under the current key, with aad as associated
// data (see [AAD]): Open gives the plaintext back only with the same aad.
// The result is a new slice.
func (r *KeyRing) Seal(plaintext, aad []byte) ([]byte, error) {
	ks, err := r.load("seal")
	if err != nil {
		return nil, err
	}
	id := ks.current
	aead := ks.aead[id]
	hdr := 2 + len(id)
	out := make([]byte, hdr+NonceSize, hdr+NonceSize+len(plaintext)+aead.Overhead())
	out[0] = format1
	out[1] = byte(len(id))
	copy(out[2:], id)
	nonce := out[hdr : hdr+NonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fail("seal", id, err, "")
	}
	return aead.Seal(out, nonce, plaintext, authData(out[:hdr], aad)), nil
}

// authData is what GCM authenticates: the sealed value's header, then the
// caller's associated data.
func authData(hdr, aad []byte) []byte {
	return append(slices.Clip(hdr), aad...)
}

// parse splits a sealed value into its header, key ID, nonce and
// ciphertext (with its tag).
func parse(op string, sealed []byte) (hdr []byte, id KeyID, nonce, ct []byte, err error) {
	if len(sealed) < 2 {
		return nil, "", nil, nil, fail(op, "", ErrMalformed, "%d bytes", len(sealed))
	}
	if sealed[0] != format1 {
		return nil, "", nil, nil, fail(op, "", ErrMalformed, "format %d, this package knows %d", sealed[0], format1)
	}
	n := int(sealed[1])
	if n == 0 {
		return nil, "", nil, nil, fail(op, "", ErrMalformed, "empty key ID")
	}
	if len(sealed) < 2+n+NonceSize+16 {
		return nil, "", nil, nil, fail(op, "", ErrMalformed, "%d bytes, too short for a key ID of %d bytes, a nonce and a tag", len(sealed), n)
	}
	hdr = sealed[:2+n]
	return hdr, KeyID(hdr[2:]), sealed[2+n : 2+n+NonceSize], sealed[2+n+NonceSize:], nil
}

// Open decrypts a value that Seal returned, under whichever key of the ring
// it names, and checks that it was sealed with the same aad. Errors wrap
// [ErrMalformed], [ErrUnknownKey] (naming the key) or [ErrTampered]. The
// result is a new slice.
func (r *KeyRing) Open(sealed, aad []byte) ([]byte, error) {
	const op = "open"
	hdr, id, nonce, ct, err := parse(op, sealed)
	if err != nil {
		return nil, err
	}
	ks, err := r.load(op)
	if err != nil {
		return nil, err
	}
	aead, ok := ks.aead[id]
	if !ok {
		return nil, fail(op, id, ErrUnknownKey, "")
	}
	plain, err := aead.Open(nil, nonce, ct, authData(hdr, aad))
	if err != nil {
		return nil, fail(op, id, ErrTampered, "changed, moved to other associated data, or other key bytes under this ID")
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// KeyOf returns the ID of the key a sealed value was sealed under, or an
// error wrapping [ErrMalformed]. It does not authenticate the value.
func KeyOf(sealed []byte) (KeyID, error) {
	_, id, _, _, err := parse("key of", sealed)
	return id, err
}

// NeedsReseal reports whether a sealed value is not sealed under the
// ring's current key (a malformed one is not): a re-encryption pass opens
// it and seals it again.
func (r *KeyRing) NeedsReseal(sealed []byte) bool {
	id, err := KeyOf(sealed)
	return err != nil || id != r.Current()
}

// AAD returns associated data made of parts, unambiguously: each part is
// length-prefixed, so that ("ab", "c") and ("a", "bc") differ, and so do
// ("a") and ("a", "").
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Hash returns a keyed hash of a value of field: the first 8 bytes of
// HMAC-SHA256 under the ring's hash key of (the length-prefixed field name,
// the value), big-endian. Equal (field, value) pairs hash the same whatever
// the current encryption key: the hash key does not rotate.
//
// Tradeoffs: without the hash key, nobody who reads stored hashes can test
// a guess of a value against them, which an unkeyed hash of a low-entropy
// value (a social security number: about 10^9 values) would allow in
// seconds. With the hash key, they can: the hash hides a value only while
// the hash key stays secret. Truncating to 64 bits costs nothing of that
// (a guess is tested against 64 bits as well as 256); it allows accidental
// collisions, about one among 2^32 distinct values of one field, which is
// why the engine only compares hashes to detect change and echoes and
// keeps sealed values for what it writes.
//
// Hash panics on a KeyRing not made by NewKeyRing: it has no hash key.
func (r *KeyRing) Hash(field string, value []byte) uint64 {
	if r.keys.Load() == nil {
		panic("seal: Hash on a KeyRing not made by NewKeyRing: it has no hash key")
	}
	h := r.hmacs.Get().(hash.Hash)
	defer r.hmacs.Put(h)
	h.Reset()
	var n [binary.MaxVarintLen64]byte
	h.Write(binary.AppendUvarint(n[:0], uint64(len(field))))
	h.Write([]byte(field))
	h.Write(value)
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// String describes the ring by its key IDs, never its key bytes.
func (r *KeyRing) String() string {
	if r == nil {
		return "seal.KeyRing(nil)"
	}
	ks := r.keys.Load()
	if ks == nil {
		return "seal.KeyRing{}"
	}
	ids := slices.Sorted(maps.Keys(ks.aead))
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", string(id))
	}
	return fmt.Sprintf("seal.KeyRing{current: %q, keys: [%s], key bytes redacted}", string(ks.current), strings.Join(q, " "))
}

// GoString is String: %#v shows no key bytes either.
func (r *KeyRing) GoString() string { return r.String() }

// Format writes String for every verb, so that no verb of fmt (%x, %d, %+v
// ...) reaches the ring's fields.
func (r *KeyRing) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(r.String())) }

// LogValue describes the ring to log/slog by its key IDs.
func (r *KeyRing) LogValue() slog.Value {
	if r == nil || r.keys.Load() == nil {
		return slog.StringValue(r.String())
	}
	ks := r.keys.Load()
	ids := slices.Sorted(maps.Keys(ks.aead))
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return slog.GroupValue(slog.String("current", string(ks.current)), slog.Any("keys", s), slog.String("key_bytes", "redacted"))
}

// MarshalJSON describes the ring by its key IDs, as LogValue does:
// {"current": ..., "keys": [...]}.
func (r *KeyRing) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Current KeyID   `json:"current"`
		Keys    []KeyID `json:"keys"`
	}{r.Current(), r.KeyIDs()})
}

var (
	_ Sealer         = (*KeyRing)(nil)
	_ Hasher         = (*KeyRing)(nil)
	_ fmt.Formatter  = (*KeyRing)(nil)
	_ slog.LogValuer = (*KeyRing)(nil)
)
