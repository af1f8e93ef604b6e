package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrBadSignature reports a checkpoint whose signature does not verify
// with the key given, or that was signed by another key.
var ErrBadSignature = errors.New("audit: bad checkpoint signature")

// Checkpoint states that entry Seq of the audit log named Log has hash
// Hash, at Time. Signed ([SignCheckpoint]) and kept apart from the log, it
// lets anyone holding the public key check offline that the log still
// holds that entry, and all the entries before it, unchanged.
type Checkpoint struct {
	// Log names the log (a pipeline): 1 to 256 bytes of UTF-8 with no
	// control characters.
	Log string
	// Seq is the entry, from 1.
	Seq uint64
	// Hash is the entry's hash.
	Hash [32]byte
	// Time is when the checkpoint was made; it is written in UTC with
	// nanoseconds (years 0 to 9999).
	Time time.Time
}

// Head returns the checkpoint's entry as a Head, to anchor the
// verification of a log that continues after it ([WithAnchor]).
func (cp Checkpoint) Head() Head { return Head{Seq: cp.Seq, Hash: cp.Hash} }

// SignedCheckpoint is a Checkpoint with an ed25519 signature.
//
// Its text form (MarshalText, [ParseCheckpoint]) is seven lines, each
// ending in "\n":
//
//	concord-audit-checkpoint v1
//	log <Log>
//	seq <Seq in decimal>
//	hash <Hash in 64 lower-case hex digits>
//	time <Time in RFC 3339 with nanoseconds, UTC, as Go's time.RFC3339Nano>
//	<an empty line>
//	sig <KeyID in 16 lower-case hex digits> <Signature in standard base64>
//
// The signature is ed25519 over the first five lines exactly as written,
// their line breaks included.
type SignedCheckpoint struct {
	Checkpoint
	// KeyID names the public key that verifies the signature ([KeyID]).
	KeyID [8]byte
	// Signature is the ed25519 signature of the first five lines.
	Signature []byte
}

const checkpointHeader = "concord-audit-checkpoint v1\n"

// KeyID is the first 8 bytes of the SHA-256 of pub: a short name for the
// key that a checkpoint carries, so that a checkpoint checked with the
// wrong key says so.
func KeyID(pub ed25519.PublicKey) [8]byte {
	sum := sha256.Sum256(pub)
	return [8]byte(sum[:8])
}

// SignCheckpoint signs cp with priv. It fails, wrapping [ErrMalformed],
// when cp cannot be written (see [Checkpoint]), or when priv is not an
// ed25519 private key.
func SignCheckpoint(priv ed25519.PrivateKey, cp Checkpoint) (SignedCheckpoint, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return SignedCheckpoint{}, fmt.Errorf("%w: private key of %d bytes, want %d", ErrMalformed, len(priv), ed25519.PrivateKeySize)
	}
	cp.Time = cp.Time.UTC().Round(0)
	body, err := cp.body()
	if err != nil {
		return SignedCheckpoint{}, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	return SignedCheckpoint{Checkpoint: cp, KeyID: KeyID(pub), Signature: ed25519.Sign(priv, body)}, nil
}

// body is the signed text: the first five lines.
func (cp *Checkpoint) body() ([]byte, error) {
	if err := checkLogName(cp.Log); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: log name: %v", ErrMalformed, err)
	}
	if cp.Seq == 0 {
		return nil, fmt.Errorf("%w: checkpoint of log %q: seq 0 names no entry", ErrMalformed, cp.Log)
	}
	if y := cp.Time.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: checkpoint of log %q: time %v is out of range", ErrMalformed, cp.Log, cp.Time)
	}
	var b bytes.Buffer
	b.WriteString(checkpointHeader)
	b.WriteString("log " + cp.Log + "\n")
	b.WriteString("seq " + strconv.FormatUint(cp.Seq, 10) + "\n")
	b.WriteString("hash " + hex.EncodeToString(cp.Hash[:]) + "\n")
	b.WriteString("time " + cp.Time.UTC().Format(time.RFC3339Nano) + "\n")
	return b.Bytes(), nil
}

func checkLogName(s string) error {
	if s == "" || len(s) > 256 {
		return fmt.Errorf("%d bytes, want 1 to 256", len(s))
	}
	if !utf8.ValidString(s) {
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// MarshalText returns the text form (see [SignedCheckpoint]).
func (s SignedCheckpoint) MarshalText() ([]byte, error) {
	body, err := s.body()
	if err != nil {
		return nil, err
	}
	if len(s.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: checkpoint of log %q: signature of %d bytes, want %d", ErrMalformed, s.Log, len(s.Signature), ed25519.SignatureSize)
	}
	body = append(body, "\nsig "...)
	body = hex.AppendEncode(body, s.KeyID[:])
	body = append(body, ' ')
	body = base64.StdEncoding.AppendEncode(body, s.Signature)
	return append(body, '\n'), nil
}

// String returns the text form, or the error that prevents it.
func (s SignedCheckpoint) String() string {
	b, err := s.MarshalText()
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// ParseCheckpoint reads the text form of a signed checkpoint (see
// [SignedCheckpoint]) and does not check the signature: call Verify. It
// accepts only the exact form MarshalText writes; anything else, such as
// a missing line break or a time not in UTC, is refused with an error that
// wraps [ErrMalformed] and gives the line.
func ParseCheckpoint(b []byte) (SignedCheckpoint, error) {
	var s SignedCheckpoint
	bad := func(line int, format string, args ...any) (SignedCheckpoint, error) {
		return SignedCheckpoint{}, fmt.Errorf("%w: checkpoint: line %d: %s", ErrMalformed, line, fmt.Sprintf(format, args...))
	}
	text := string(b)
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != 7 {
		return bad(min(len(lines), 8), "a checkpoint has 7 lines, each ending with a line break; this has %d", len(lines))
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, "\n") {
			return bad(i+1, "no line break")
		}
		lines[i] = l[:len(l)-1]
	}
	if lines[0]+"\n" != checkpointHeader {
		return bad(1, "want %q", strings.TrimSpace(checkpointHeader))
	}
	field := func(i int, name string) (string, bool) {
		return strings.CutPrefix(lines[i], name+" ")
	}
	var ok bool
	if s.Log, ok = field(1, "log"); !ok {
		return bad(2, `want "log <name>"`)
	}
	seq, ok := field(2, "seq")
	if !ok || !bareNumber(seq) || (len(seq) > 1 && seq[0] == '0') {
		return bad(3, `want "seq <decimal>"`)
	}
	var err error
	if s.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return bad(3, "seq out of range")
	}
	h, ok := field(3, "hash")
	if !ok || !parseHash([]byte(h), &s.Hash) {
		return bad(4, `want "hash <64 lower-case hex digits>"`)
	}
	t, ok := field(4, "time")
	if !ok {
		return bad(5, `want "time <RFC 3339 UTC>"`)
	}
	if s.Time, err = time.Parse(time.RFC3339Nano, t); err != nil || s.Time.Format(time.RFC3339Nano) != t || !strings.HasSuffix(t, "Z") {
		return bad(5, "time %q is not RFC 3339 in UTC as written by Go's time.RFC3339Nano", t)
	}
	if lines[5] != "" {
		return bad(6, "want an empty line")
	}
	sig, ok := field(6, "sig")
	id, sig64, ok2 := strings.Cut(sig, " ")
	if !ok || !ok2 || len(id) != 16 || strings.ToLower(id) != id {
		return bad(7, `want "sig <16 hex digits> <base64>"`)
	}
	if _, err := hex.Decode(s.KeyID[:], []byte(id)); err != nil {
		return bad(7, "key id: %v", err)
	}
	if s.Signature, err = base64.StdEncoding.Strict().DecodeString(sig64); err != nil || len(s.Signature) != ed25519.SignatureSize {
		return bad(7, "signature is not %d bytes in standard base64", ed25519.SignatureSize)
	}
	if base64.StdEncoding.EncodeToString(s.Signature) != sig64 {
		return bad(7, "signature is not in canonical base64")
	}
	if _, err := s.body(); err != nil {
		return SignedCheckpoint{}, err
	}
	return s, nil
}

// Verify checks the signature with pub. It returns an error that wraps
// [ErrBadSignature] when the checkpoint names another key or the
// signature does not verify, and one that wraps [ErrMalformed] when pub
// is not an ed25519 public key or the checkpoint cannot be written.
func (s SignedCheckpoint) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes, want %d", ErrMalformed, len(pub), ed25519.PublicKeySize)
	}
	body, err := s.body()
	if err != nil {
		return err
	}
	if id := KeyID(pub); id != s.KeyID {
		return fmt.Errorf("%w: checkpoint of log %q at entry %d was signed by key %x, not by key %x",
			ErrBadSignature, s.Log, s.Seq, s.KeyID, id)
	}
	if !ed25519.Verify(pub, body, s.Signature) {
		return fmt.Errorf("%w: checkpoint of log %q at entry %d: the signature does not match its contents",
			ErrBadSignature, s.Log, s.Seq)
	}
	return nil
}

// The words that start key files.
const (
	privateKeyWord = "concord-audit-ed25519-private "
	publicKeyWord  = "concord-audit-ed25519-public "
)

// MarshalPrivateKey writes priv as one line of text: the word
// "concord-audit-ed25519-private", a space, and the key's 32-byte seed in
// standard base64. Keep it secret (a file of mode 0600).
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key of %d bytes, want %d", ErrMalformed, len(priv), ed25519.PrivateKeySize)
	}
	return []byte(privateKeyWord + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"), nil
}

// MarshalPublicKey writes pub as one line of text: the word
// "concord-audit-ed25519-public", a space, and the 32 bytes in standard
// base64.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key of %d bytes, want %d", ErrMalformed, len(pub), ed25519.PublicKeySize)
	}
	return []byte(publicKeyWord + base64.StdEncoding.EncodeToString(pub) + "\n"), nil
}

// ParsePrivateKey reads what [MarshalPrivateKey] writes (surrounding
// white space is ignored). A public key is refused.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	seed, err := parseKey(b, privateKeyWord, publicKeyWord, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrMalformed, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ParsePublicKey reads what [MarshalPublicKey] writes (surrounding white
// space is ignored). A private key is refused.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	k, err := parseKey(b, publicKeyWord, privateKeyWord, ed25519.PublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	return ed25519.PublicKey(k), nil
}

func parseKey(b []byte, word, other string, size int) ([]byte, error) {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, other) {
		return nil, fmt.Errorf("this is a %s key", strings.Fields(other)[0])
	}
	k64, ok := strings.CutPrefix(s, word)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", strings.TrimSpace(word))
	}
	k, err := base64.StdEncoding.Strict().DecodeString(k64)
	if err != nil || len(k) != size {
		return nil, fmt.Errorf("want %d bytes in standard base64", size)
	}
	return k, nil
}
