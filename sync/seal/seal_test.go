package seal_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/concordsync/concord/sync/seal"
)

// key returns a distinct 32-byte key for a label.
func key(label byte) []byte { return bytes.Repeat([]byte{label}, seal.KeySize) }

var hashKey = bytes.Repeat([]byte{0x5a}, seal.MinHashKeySize)

func ring(t testing.TB, current seal.KeyID, ids ...seal.KeyID) *seal.KeyRing {
	t.Helper()
	keys := map[seal.KeyID][]byte{}
	for _, id := range ids {
		keys[id] = key(id[len(id)-1])
	}
	r, err := seal.NewKeyRing(current, keys, seal.WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpenRoundTrip(t *testing.T) {
	r := ring(t, "k1", "k1")
	for _, plain := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("abc"), 1000)} {
		aad := seal.AAD("ctx", "record", "ssn")
		s, err := r.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != len(plain)+seal.Overhead+len("k1") {
			t.Errorf("sealed %d bytes to %d; want %d", len(plain), len(s), len(plain)+seal.Overhead+2)
		}
		if len(plain) >= 3 && bytes.Contains(s, plain) {
			t.Error("sealed value holds its plaintext")
		}
		got, err := r.Open(s, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q; want %q", got, plain)
		}
		if id, err := seal.KeyOf(s); err != nil || id != "k1" {
			t.Fatalf("KeyOf = %q, %v", id, err)
		}
	}
	// Random nonces: the same plaintext seals differently.
	a, _ := r.Seal([]byte("same"), nil)
	b, _ := r.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are equal: nonce reused")
	}
}

func TestOpenRefusesOtherAAD(t *testing.T) {
	r := ring(t, "k1", "k1")
	s, err := r.Seal([]byte("123-45-6789"), seal.AAD("ctx", "r1", "ssn"))
	if err != nil {
		t.Fatal(err)
	}
	for name, aad := range map[string][]byte{
		"other record":  seal.AAD("ctx", "r2", "ssn"),
		"other field":   seal.AAD("ctx", "r1", "iban"),
		"other context": seal.AAD("", "r1", "ssn"),
		"shifted parts": seal.AAD("ctx", "r1s", "sn"),
		"none":          nil,
	} {
		_, err := r.Open(s, aad)
		var se *seal.Error
		if !errors.Is(err, seal.ErrTampered) || !errors.As(err, &se) || se.Key != "k1" || se.Op != "open" {
			t.Errorf("%s: Open = %v; want ErrTampered naming key k1", name, err)
		}
	}
}

// Every flipped bit of a sealed value is refused, and so is every
// truncation and extension.
func TestOpenRefusesEveryFlippedBit(t *testing.T) {
	r := ring(t, "k1", "k1")
	aad := seal.AAD("r", "f")
	s, err := r.Seal([]byte("payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(s) * 8 {
		d := bytes.Clone(s)
		d[i/8] ^= 1 << (i % 8)
		_, err := r.Open(d, aad)
		if !errors.Is(err, seal.ErrTampered) && !errors.Is(err, seal.ErrMalformed) && !errors.Is(err, seal.ErrUnknownKey) {
			t.Fatalf("bit %d flipped: Open = %v; want an error", i, err)
		}
		if i/8 >= 2+len("k1") && !errors.Is(err, seal.ErrTampered) {
			t.Fatalf("bit %d flipped (past the header): %v; want ErrTampered", i, err)
		}
	}
	for n := range len(s) {
		if _, err := r.Open(s[:n], aad); err == nil {
			t.Fatalf("truncated to %d bytes: opened", n)
		}
	}
	if _, err := r.Open(append(bytes.Clone(s), 0), aad); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("one byte appended: %v; want ErrTampered", err)
	}
}

func TestOpenMalformed(t *testing.T) {
	r := ring(t, "k1", "k1")
	good, _ := r.Seal([]byte("x"), nil)
	for name, b := range map[string][]byte{
		"empty":        nil,
		"one byte":     {1},
		"format 0":     append([]byte{0}, good[1:]...),
		"format 2":     append([]byte{2}, good[1:]...),
		"empty key ID": append([]byte{1, 0}, good[2:]...),
		"key ID past":  {1, 200, 'k'},
		"no tag":       good[:2+2+seal.NonceSize+15],
	} {
		_, err := r.Open(b, nil)
		if !errors.Is(err, seal.ErrMalformed) {
			t.Errorf("%s: Open = %v; want ErrMalformed", name, err)
		}
		if _, err := seal.KeyOf(b); !errors.Is(err, seal.ErrMalformed) {
			t.Errorf("%s: KeyOf = %v; want ErrMalformed", name, err)
		}
		if !r.NeedsReseal(b) {
			t.Errorf("%s: NeedsReseal = false for a malformed value", name)
		}
	}
}

func TestRotation(t *testing.T) {
	aad := seal.AAD("r", "f")
	old := ring(t, "k1", "k1")
	s1, err := old.Seal([]byte("v"), aad)
	if err != nil {
		t.Fatal(err)
	}
	both := ring(t, "k2", "k1", "k2")
	if got, err := both.Open(s1, aad); err != nil || string(got) != "v" {
		t.Fatalf("a ring holding the old key: Open = %q, %v", got, err)
	}
	if !both.NeedsReseal(s1) {
		t.Fatal("NeedsReseal = false for a value under an old key")
	}
	s2, err := both.Seal([]byte("v"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.KeyOf(s2); id != "k2" || both.NeedsReseal(s2) {
		t.Fatalf("sealed under %q (NeedsReseal %v); want k2", id, both.NeedsReseal(s2))
	}
	onlyNew := ring(t, "k2", "k2")
	if _, err := onlyNew.Open(s2, aad); err != nil {
		t.Fatalf("ring {k2}: Open of a value sealed under k2: %v", err)
	}
	_, err = onlyNew.Open(s1, aad)
	var se *seal.Error
	if !errors.Is(err, seal.ErrUnknownKey) || !errors.As(err, &se) || se.Key != "k1" || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("ring {k2}: Open of a value under k1 = %v; want ErrUnknownKey naming k1", err)
	}

	// The same, in place: Rotate, then Retire.
	if err := old.Rotate("k2", key('2')); err != nil {
		t.Fatal(err)
	}
	if old.Current() != "k2" || !old.NeedsReseal(s1) {
		t.Fatalf("after Rotate: current %q", old.Current())
	}
	if _, err := old.Open(s1, aad); err != nil {
		t.Fatalf("after Rotate, the old key's value: %v", err)
	}
	if s, _ := old.Seal(nil, nil); must(seal.KeyOf(s)) != "k2" {
		t.Fatal("after Rotate, Seal does not use the new key")
	}
	if err := old.Retire("k2"); !errors.Is(err, seal.ErrBadKey) {
		t.Fatalf("Retire(current) = %v; want ErrBadKey", err)
	}
	if err := old.Retire("k9"); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("Retire(unknown) = %v; want ErrUnknownKey", err)
	}
	if err := old.Retire("k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Open(s1, aad); !errors.Is(err, seal.ErrUnknownKey) {
		t.Fatalf("after Retire: %v; want ErrUnknownKey", err)
	}
	if got := old.KeyIDs(); len(got) != 1 || got[0] != "k2" {
		t.Fatalf("KeyIDs = %v", got)
	}
	// Rotating back to a held key with the same bytes is allowed; other
	// bytes under a held ID are not.
	if err := old.Rotate("k2", key('2')); err != nil {
		t.Fatalf("Rotate to the held key with its bytes: %v", err)
	}
	if err := old.Rotate("k2", key('3')); !errors.Is(err, seal.ErrBadKey) {
		t.Fatalf("Rotate with other bytes under a held ID = %v; want ErrBadKey", err)
	}
	if err := old.Rotate("k4", hashKey); !errors.Is(err, seal.ErrBadKey) {
		t.Fatalf("Rotate to the hash key = %v; want ErrBadKey", err)
	}
	if old.Current() != "k2" {
		t.Fatalf("a refused Rotate changed the current key to %q", old.Current())
	}
}

// A key under another ID with the same position is another key: a value
// sealed under "k1" of one ring does not open under "k1" of a ring holding
// other bytes.
func TestOtherBytesUnderTheSameID(t *testing.T) {
	a := ring(t, "k1", "k1")
	b, err := seal.NewKeyRing("k1", map[seal.KeyID][]byte{"k1": key('x')}, seal.WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := a.Seal([]byte("v"), nil)
	if _, err := b.Open(s, nil); !errors.Is(err, seal.ErrTampered) {
		t.Fatalf("Open under other key bytes = %v; want ErrTampered", err)
	}
}

func TestNewKeyRingRefusesBadKeys(t *testing.T) {
	long := seal.KeyID(strings.Repeat("k", 256))
	for name, c := range map[string]struct {
		current seal.KeyID
		keys    map[seal.KeyID][]byte
		opts    []seal.Option
	}{
		"short key":         {"k", map[seal.KeyID][]byte{"k": make([]byte, 16)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"long key":          {"k", map[seal.KeyID][]byte{"k": make([]byte, 33)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"nil key":           {"k", map[seal.KeyID][]byte{"k": nil}, []seal.Option{seal.WithHashKey(hashKey)}},
		"current missing":   {"k2", map[seal.KeyID][]byte{"k": key(1)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"no keys":           {"k", nil, []seal.Option{seal.WithHashKey(hashKey)}},
		"empty ID":          {"", map[seal.KeyID][]byte{"": key(1)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"ID too long":       {long, map[seal.KeyID][]byte{long: key(1)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"no hash key":       {"k", map[seal.KeyID][]byte{"k": key(1)}, nil},
		"short hash key":    {"k", map[seal.KeyID][]byte{"k": key(1)}, []seal.Option{seal.WithHashKey(make([]byte, 31))}},
		"hash key reused":   {"k", map[seal.KeyID][]byte{"k": key(1), "j": key(2)}, []seal.Option{seal.WithHashKey(key(2))}},
		"bad among good":    {"k", map[seal.KeyID][]byte{"k": key(1), "old": make([]byte, 24)}, []seal.Option{seal.WithHashKey(hashKey)}},
		"current bad bytes": {"k", map[seal.KeyID][]byte{"k": make([]byte, 31)}, []seal.Option{seal.WithHashKey(hashKey)}},
	} {
		r, err := seal.NewKeyRing(c.current, c.keys, c.opts...)
		var se *seal.Error
		if !errors.Is(err, seal.ErrBadKey) || !errors.As(err, &se) || r != nil {
			t.Errorf("%s: NewKeyRing = %v, %v; want ErrBadKey", name, r, err)
		}
	}
	// The message names the key and the size, never the bytes.
	_, err := seal.NewKeyRing("k", map[seal.KeyID][]byte{"k": []byte("0123456789abcdef")}, seal.WithHashKey(hashKey))
	if msg := err.Error(); !strings.Contains(msg, `"k"`) || !strings.Contains(msg, "16 bytes") || strings.Contains(msg, "0123456789") {
		t.Fatalf("error %q: want the key ID and size, not the bytes", msg)
	}
}

// The ring copies the key bytes it is given: changing them afterwards
// changes nothing.
func TestRingCopiesKeys(t *testing.T) {
	k, h := key(7), bytes.Clone(hashKey)
	r, err := seal.NewKeyRing("k", map[seal.KeyID][]byte{"k": k}, seal.WithHashKey(h))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Seal([]byte("v"), nil)
	hash := r.Hash("f", []byte("v"))
	clear(k)
	clear(h)
	if _, err := r.Open(s, nil); err != nil {
		t.Fatalf("after the caller cleared its key: %v", err)
	}
	if r.Hash("f", []byte("v")) != hash {
		t.Fatal("after the caller cleared its hash key, the hash changed")
	}
}

func TestZeroKeyRing(t *testing.T) {
	var r seal.KeyRing
	if _, err := r.Seal(nil, nil); !errors.Is(err, seal.ErrBadKey) {
		t.Errorf("zero ring Seal = %v", err)
	}
	if _, err := r.Open([]byte{1, 1, 'k'}, nil); !errors.Is(err, seal.ErrMalformed) {
		t.Errorf("zero ring Open (malformed) = %v", err)
	}
	good, _ := ring(t, "k", "k").Seal(nil, nil)
	if _, err := r.Open(good, nil); !errors.Is(err, seal.ErrBadKey) {
		t.Errorf("zero ring Open = %v", err)
	}
	if err := r.Rotate("k", key(1)); !errors.Is(err, seal.ErrBadKey) {
		t.Errorf("zero ring Rotate = %v", err)
	}
	if r.Current() != "" || r.KeyIDs() != nil || r.String() == "" {
		t.Error("zero ring accessors")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("zero ring Hash did not panic")
			}
		}()
		r.Hash("f", nil)
	}()
}

func TestAADIsUnambiguous(t *testing.T) {
	cases := [][]string{
		{}, {""}, {"", ""}, {"a"}, {"a", ""}, {"", "a"}, {"ab", "c"}, {"a", "bc"}, {"abc"},
		{"a\x00", "b"}, {"a", "\x00b"}, {"\x01a"}, {"\x01", "a"}, {strings.Repeat("x", 200)}, {strings.Repeat("x", 199), "x"},
	}
	seen := map[string][]string{}
	for _, c := range cases {
		k := string(seal.AAD(c...))
		if prev, ok := seen[k]; ok {
			t.Fatalf("AAD(%q) == AAD(%q)", c, prev)
		}
		seen[k] = c
	}
	if !bytes.Equal(seal.AAD("ab", "c"), seal.AAD("ab", "c")) {
		t.Fatal("AAD is not deterministic")
	}
}

func TestHash(t *testing.T) {
	r := ring(t, "k1", "k1")
	h := r.Hash("ssn", []byte("123"))
	if h != r.Hash("ssn", []byte("123")) {
		t.Fatal("Hash is not deterministic")
	}
	for name, other := range map[string]uint64{
		"other value":   r.Hash("ssn", []byte("124")),
		"other field":   r.Hash("iban", []byte("123")),
		"shifted field": r.Hash("ssn1", []byte("23")),
		"empty":         r.Hash("", nil),
	} {
		if other == h {
			t.Errorf("%s hashes the same", name)
		}
	}
	// The hash key does not rotate with the encryption keys.
	if err := r.Rotate("k2", key('2')); err != nil {
		t.Fatal(err)
	}
	if r.Hash("ssn", []byte("123")) != h {
		t.Fatal("Hash changed with the encryption key")
	}
	// Another hash key, another hash.
	o, _ := seal.NewKeyRing("k1", map[seal.KeyID][]byte{"k1": key('1')}, seal.WithHashKey(bytes.Repeat([]byte{1}, 40)))
	if o.Hash("ssn", []byte("123")) == h {
		t.Fatal("Hash does not depend on the hash key")
	}
}

// A known answer, so that the hash cannot change silently between
// versions: stored hashes would no longer match.
func TestHashKnownAnswer(t *testing.T) {
	r := ring(t, "k1", "k1")
	// HMAC-SHA256(0x5a*32, 0x03 "ssn" "123-45-6789")[:8]
	const want = "0bbf439a9ca6424b" // python3: hmac.new(b"\x5a"*32, b"\x03ssn123-45-6789", sha256)
	got := fmt.Sprintf("%016x", r.Hash("ssn", []byte("123-45-6789")))
	if got != want {
		t.Fatalf("Hash = %s; want %s", got, want)
	}
}

// No verb of fmt, no slog handler and no JSON encoding shows key bytes.
func TestKeyRingNeverShowsKeys(t *testing.T) {
	secret := []byte("SECRET-KEY-BYTES-0123456789abcde") // 32 bytes
	hk := []byte("HASH-KEY-BYTES-0123456789abcdefg")
	r, err := seal.NewKeyRing("cur", map[seal.KeyID][]byte{"cur": secret, "old": key(9)}, seal.WithHashKey(hk))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := [][]byte{secret[:8], hk[:8], []byte(hex.EncodeToString(secret[:4])), []byte(hex.EncodeToString(hk[:4])),
		[]byte(hex.EncodeToString(key(9)[:4])), []byte(fmt.Sprint(secret[:4])[1:8])}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%p"} {
		outs = append(outs, fmt.Sprintf(verb, r))
	}
	outs = append(outs, fmt.Sprint(r), fmt.Sprintln(r), fmt.Sprintf("%v", []any{r}), fmt.Sprintf("%+v", struct{ R *seal.KeyRing }{r}))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("ring", "ring", r)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("ring", "ring", r)
	outs = append(outs, buf.String())
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))
	if string(j) != `{"current":"cur","keys":["cur","old"]}` {
		t.Fatalf("JSON %s", j)
	}
	for _, out := range outs {
		for _, f := range forbidden {
			if strings.Contains(out, string(f)) {
				t.Fatalf("%q shows key material %q", out, f)
			}
		}
	}
	if !strings.Contains(outs[0], `"cur"`) || !strings.Contains(buf.String(), "current=cur") {
		t.Fatalf("the description lacks the key IDs: %q / %q", outs[0], buf.String())
	}
}

// Seal, Open, Hash, Rotate and Retire run concurrently (go test -race).
func TestConcurrentUse(t *testing.T) {
	r := ring(t, "k0", "k0")
	aad := seal.AAD("r", "f")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s, err := r.Seal([]byte{byte(g), byte(i)}, aad)
				if err != nil {
					errs <- err
					return
				}
				p, err := r.Open(s, aad)
				if err != nil && !errors.Is(err, seal.ErrUnknownKey) { // retired meanwhile
					errs <- err
					return
				}
				if err == nil && !bytes.Equal(p, []byte{byte(g), byte(i)}) {
					errs <- fmt.Errorf("opened %v", p)
					return
				}
				_ = r.Hash("f", p)
				_ = r.NeedsReseal(s)
			}
		})
	}
	wg.Go(func() {
		for i := 1; i < 50; i++ {
			id := seal.KeyID(fmt.Sprintf("k%d", i))
			if err := r.Rotate(id, key(byte(i))); err != nil {
				errs <- err
				return
			}
			if err := r.Retire(seal.KeyID(fmt.Sprintf("k%d", i-1))); err != nil {
				errs <- err
				return
			}
			_ = r.String()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// FuzzOpen: no input makes Open or KeyOf panic, and only the sealed values
// the seeds made open, with their own associated data.
func FuzzOpen(f *testing.F) {
	r := ring(f, "k2", "k1", "k2")
	// Sealed once (random nonces), so that every fuzzing process knows the
	// same valid values: under k2, k2 and k1, with these associated data.
	valid := map[string]string{
		"01026b3231758f884b19ccf1dbc021a869bd119d332929a60cc3862fa80319a8":                       "",
		"01026b32f9f7778b746c322cc95173e4aefae352e068dd44601fe6200f4f28c86f27040dfead4a634358e2": "\x03ctx\x01k\x03ssn",
		"01026b315d5f1774e17479719acb9857a27bb8926721d01a5c6bde35a5e96ae267":                     "a",
	}
	for h, aad := range valid {
		s, err := hex.DecodeString(h)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := r.Open(s, []byte(aad)); err != nil {
			f.Fatalf("seed %s: %v", h, err)
		}
		f.Add(s, []byte(aad))
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 2, 'k', '9'}, []byte("a"))
	f.Add([]byte{1, 255}, []byte(nil))
	f.Fuzz(func(t *testing.T, b, aad []byte) {
		id, kerr := seal.KeyOf(b)
		p, err := r.Open(b, aad)
		if err == nil {
			if want, ok := valid[hex.EncodeToString(b)]; !ok || want != string(aad) {
				t.Fatalf("Open accepted a value it did not seal (or other aad): %x", b)
			}
			if kerr != nil || (id != "k1" && id != "k2") || p == nil {
				t.Fatalf("opened, but KeyOf = %q, %v", id, kerr)
			}
			return
		}
		var se *seal.Error
		if !errors.As(err, &se) || (!errors.Is(err, seal.ErrMalformed) && !errors.Is(err, seal.ErrUnknownKey) && !errors.Is(err, seal.ErrTampered)) {
			t.Fatalf("Open error %v: not a *seal.Error wrapping a sentinel", err)
		}
		if (kerr != nil) != errors.Is(err, seal.ErrMalformed) {
			t.Fatalf("KeyOf = %v but Open = %v", kerr, err)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// BenchmarkSeal and BenchmarkOpen: a social security number's worth.
func BenchmarkSeal(b *testing.B) {
	r := ring(b, "k1", "k1")
	aad := seal.AAD("ctx", "record-000042", "ssn")
	p := []byte("s\x0b123-45-6789")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Seal(p, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	r := ring(b, "k1", "k1")
	aad := seal.AAD("ctx", "record-000042", "ssn")
	s, _ := r.Seal([]byte("s\x0b123-45-6789"), aad)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Open(s, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	r := ring(b, "k1", "k1")
	v := []byte("123-45-6789")
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Hash("ssn", v)
	}
}
