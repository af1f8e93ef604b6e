package state_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/sync/seal"
)

func exampleRing(current seal.KeyID, ids ...seal.KeyID) *seal.KeyRing {
	keys := map[seal.KeyID][]byte{}
	for _, id := range ids {
		keys[id] = bytes.Repeat([]byte(id[:1]), seal.KeySize)
	}
	r, err := seal.NewKeyRing(current, keys, seal.WithHashKey(bytes.Repeat([]byte{'h'}, seal.MinHashKeySize)))
	if err != nil {
		panic(err)
	}
	return r
}

// A Codec seals the values of sensitive fields: they are not in the bytes,
// and they decode back.
func ExampleCodec_EncodeState() {
	c := state.Codec{
		Sealer:    exampleRing("a2026", "a2026"),
		Sensitive: func(f string) bool { return f == "ssn" },
		Context:   "crm-erp",
	}
	st := &state.Record{Key: "customer-42", Fields: map[string]concord.Value{"name": "Ada", "ssn": "123-45-6789"}}
	b, err := c.EncodeState(nil, st)
	if err != nil {
		panic(err)
	}
	fmt.Println("format", b[3], "holds the name:", bytes.Contains(b, []byte("Ada")), "holds the ssn:", bytes.Contains(b, []byte("123-45")))

	got, err := c.DecodeState(b)
	fmt.Println(got.Fields["ssn"], err)

	_, err = state.DecodeState(b) // no Sealer
	fmt.Println(errors.Is(err, state.ErrNoSealer))
	// Output:
	// format 6 holds the name: true holds the ssn: false
	// 123-45-6789 <nil>
	// true
}

// After a key rotation, Reseal seals again what is under the old key.
func ExampleCodec_Reseal() {
	sensitive := func(f string) bool { return f == "ssn" }
	before := state.Codec{Sealer: exampleRing("a2025", "a2025"), Sensitive: sensitive}
	b, _ := before.EncodeState(nil, &state.Record{Key: "customer-42", Fields: map[string]concord.Value{"ssn": "123-45-6789"}})

	after := state.Codec{Sealer: exampleRing("b2026", "a2025", "b2026"), Sensitive: sensitive}
	out, changed, err := after.Reseal(b, "customer-42")
	fmt.Println(changed, err)
	_, changed, _ = after.Reseal(out, "customer-42")
	fmt.Println(changed)

	retired := state.Codec{Sealer: exampleRing("b2026", "b2026"), Sensitive: sensitive}
	_, err = retired.DecodeState(out)
	fmt.Println(err)
	_, err = retired.DecodeState(b)
	fmt.Println(err)
	// Output:
	// true <nil>
	// false
	// <nil>
	// state: record "customer-42", field "ssn": opening the value: seal: open: key "a2025": unknown key
}
