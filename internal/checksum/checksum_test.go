package checksum

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealRoundTrip(t *testing.T) {
	for _, value := range [][]byte{nil, {}, []byte("CANARY"), bytes.Repeat([]byte{0xff}, 5000)} {
		sealed := Seal([]byte("prefix"), "states", []byte("k1"), value)
		if !bytes.HasPrefix(sealed, []byte("prefix")) || len(sealed) != len("prefix")+len(value)+Size {
			t.Fatalf("Seal appended %d bytes to the prefix; want %d", len(sealed)-len("prefix"), len(value)+Size)
		}
		got, err := Unseal("states", []byte("k1"), sealed[len("prefix"):])
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Unseal(Seal(%.20q)) = %.20q, %v", value, got, err)
		}
	}
}

// Every single flipped bit, and every pair of flipped bits, anywhere in a
// sealed value (checksum included) is detected.
func TestUnsealDetectsEveryFlippedBit(t *testing.T) {
	sealed := Seal(nil, "states", []byte("k1"), []byte("CANARY and a few more bytes"))
	nbits := len(sealed) * 8
	flip := func(b []byte, bit int) { b[bit/8] ^= 1 << (bit % 8) }
	for i := range nbits {
		for j := i; j < nbits; j++ {
			d := bytes.Clone(sealed)
			flip(d, i)
			if j != i {
				flip(d, j)
			}
			if _, err := Unseal("states", []byte("k1"), d); !errors.Is(err, ErrMismatch) {
				t.Fatalf("bits %d and %d flipped: Unseal = %v; want ErrMismatch", i, j, err)
			}
		}
	}
}

// A value is bound to its key and domain: a sealed value moved under
// another key, or into another bucket, does not verify.
func TestUnsealBindsKeyAndDomain(t *testing.T) {
	sealed := Seal(nil, "states", []byte("k1"), []byte("v"))
	for _, c := range []struct{ domain, key string }{
		{"states", "k2"}, {"cursors", "k1"}, {"state", "sk1"}, {"", "statesk1"}, {"states", ""},
	} {
		if _, err := Unseal(c.domain, []byte(c.key), sealed); !errors.Is(err, ErrMismatch) {
			t.Errorf("Unseal(%q, %q) of a value sealed for (states, k1) = %v; want ErrMismatch", c.domain, c.key, err)
		}
	}
}

func TestUnsealShortValue(t *testing.T) {
	for n := range Size {
		_, err := Unseal("d", nil, make([]byte, n))
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "too short") {
			t.Errorf("Unseal of %d bytes = %v; want ErrMismatch saying too short", n, err)
		}
	}
}
