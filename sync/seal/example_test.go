package seal_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/concordsync/concord/sync/seal"
)

// In production the keys come from the host's secret store (a KMS, a
// vault); here they are fixed bytes.
var (
	key2025 = bytes.Repeat([]byte{0x25}, seal.KeySize)
	key2026 = bytes.Repeat([]byte{0x26}, seal.KeySize)
	hashK   = bytes.Repeat([]byte{0x77}, seal.MinHashKeySize)
)

// Seal a value bound to its record and field, and open it back; moved to
// another field, it does not open.
func ExampleKeyRing_Seal() {
	ring, err := seal.NewKeyRing("2026", map[seal.KeyID][]byte{"2026": key2026}, seal.WithHashKey(hashK))
	if err != nil {
		panic(err)
	}
	sealed, err := ring.Seal([]byte("123-45-6789"), seal.AAD("crm", "customer-42", "ssn"))
	if err != nil {
		panic(err)
	}
	plain, err := ring.Open(sealed, seal.AAD("crm", "customer-42", "ssn"))
	fmt.Println(string(plain), err)

	_, err = ring.Open(sealed, seal.AAD("crm", "customer-42", "iban"))
	fmt.Println(errors.Is(err, seal.ErrTampered))
	fmt.Println(ring)
	// Output:
	// 123-45-6789 <nil>
	// true
	// seal.KeyRing{current: "2026", keys: ["2026"], key bytes redacted}
}

// Rotate: the new key seals, the old one still opens; after a
// re-encryption pass the old key is retired.
func ExampleKeyRing_Rotate() {
	ring, err := seal.NewKeyRing("2025", map[seal.KeyID][]byte{"2025": key2025}, seal.WithHashKey(hashK))
	if err != nil {
		panic(err)
	}
	aad := seal.AAD("crm", "customer-42", "iban")
	old, _ := ring.Seal([]byte("DE89 3704 0044 0532 0130 00"), aad)

	if err := ring.Rotate("2026", key2026); err != nil {
		panic(err)
	}
	fmt.Println("needs reseal:", ring.NeedsReseal(old))

	// The re-encryption pass: open under the old key, seal under the new.
	plain, _ := ring.Open(old, aad)
	resealed, _ := ring.Seal(plain, aad)
	id, _ := seal.KeyOf(resealed)
	fmt.Println("resealed under", id)

	if err := ring.Retire("2025"); err != nil {
		panic(err)
	}
	_, err = ring.Open(old, aad)
	fmt.Println(err)
	// Output:
	// needs reseal: true
	// resealed under 2026
	// seal: open: key "2025": unknown key
}

// Hash compares values without their plaintext, and does not change when
// the encryption key rotates.
func ExampleKeyRing_Hash() {
	ring, err := seal.NewKeyRing("2025", map[seal.KeyID][]byte{"2025": key2025}, seal.WithHashKey(hashK))
	if err != nil {
		panic(err)
	}
	before := ring.Hash("ssn", []byte("123-45-6789"))
	_ = ring.Rotate("2026", key2026)
	fmt.Println(before == ring.Hash("ssn", []byte("123-45-6789")))
	fmt.Println(before == ring.Hash("ssn", []byte("123-45-6780")))
	// Output:
	// true
	// false
}

// AAD length-prefixes its parts: no two lists of parts give the same bytes.
func ExampleAAD() {
	fmt.Printf("%q\n", seal.AAD("ab", "c"))
	fmt.Printf("%q\n", seal.AAD("a", "bc"))
	// Output:
	// "\x02ab\x01c"
	// "\x01a\x02bc"
}

// NewKeyRing refuses a key of the wrong size, naming it.
func ExampleNewKeyRing() {
	_, err := seal.NewKeyRing("2026", map[seal.KeyID][]byte{"2026": []byte("too short")}, seal.WithHashKey(hashK))
	fmt.Println(err)
	fmt.Println(errors.Is(err, seal.ErrBadKey))
	// Output:
	// seal: new key ring: key "2026": bad key: 9 bytes, want 32 (AES-256)
	// true
}
