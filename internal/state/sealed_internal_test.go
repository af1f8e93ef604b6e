package state

import (
	"bytes"
	"slices"
	"testing"

	"github.com/concordsync/concord"
)

// identity "seals" by copying: the sealed bytes are the plaintext.
type identity struct{}

func (identity) Seal(p, aad []byte) ([]byte, error) { return slices.Clone(p), nil }
func (identity) Open(s, aad []byte) ([]byte, error) { return slices.Clone(s), nil }

// Values of fields that are not sensitive are encoded byte for byte as
// without sealing, next to sealed ones: with a Sealer that copies, the
// sealed encoding is the plain encoding of the state whose sensitive
// values are replaced by the bytes of their encoding, but for the tag of
// those values (S for b), the version byte and the checksum.
func TestNonSensitiveValuesUnchangedByteForByte(t *testing.T) {
	st := Sample("k", true, true)
	st.Fields["ssn"] = "123-45-6789"
	st.Fields["secret"] = map[string]any{"pin": int64(1234), "l": []any{"x"}}
	st.Units.Value("name").Prev.Values.Set("ssn", "old")
	st.Units.Value("phone").Hold.Candidates[0].Values["ssn"] = "1"
	st.Units.Value("phone").Hold.Base["secret"] = nil
	isSensitive := func(f string) bool { return f == "ssn" || f == "secret" }
	c := Codec{Sealer: identity{}, Sensitive: isSensitive}

	for _, f := range []struct {
		name          string
		sealed, plain byte
		enc           func(Codec, *Record) ([]byte, error)
	}{
		{"format 6", CompactVersion, CompactVersion, func(c Codec, st *Record) ([]byte, error) { return c.EncodeState(nil, st) }},
		{"legacy", SealedVersion, Version, func(c Codec, st *Record) ([]byte, error) { return c.EncodeLegacyState(nil, st) }},
	} {
		t.Run(f.name, func(t *testing.T) { checkSealedBytes(t, st, c, isSensitive, f.sealed, f.plain, f.enc) })
	}
}

func checkSealedBytes(t *testing.T, st *Record, c Codec, isSensitive func(string) bool, sealedVersion, plainVersion byte,
	enc func(Codec, *Record) ([]byte, error)) {
	sealed, err := enc(c, st)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	asBytes := func(m map[string]concord.Value) {
		for f, v := range m {
			if isSensitive(f) {
				e := encoder{}
				e.value(v, f)
				m[f] = e.b
				n++
			}
		}
	}
	cp := st.Clone()
	asBytes(cp.Fields)
	for _, x := range cp.Units {
		u := x.Value
		for i, p := range u.PrevValues() {
			m := map[string]concord.Value{p.Name: p.Value}
			asBytes(m)
			u.Prev.Values[i].Value = m[p.Name]
		}
		if u.Hold != nil {
			asBytes(u.Hold.Base)
			for _, c := range u.Hold.Candidates {
				asBytes(c.Values)
			}
		}
	}
	plain, err := enc(Codec{}, cp)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != len(sealed) || n != 5 {
		t.Fatalf("%d bytes sealed, %d plain, %d sensitive values", len(sealed), len(plain), n)
	}
	if sealed[3] != sealedVersion || plain[3] != plainVersion {
		t.Fatalf("versions %d and %d", sealed[3], plain[3])
	}
	tags := 0
	for i := 4; i < len(plain)-4; i++ {
		if plain[i] == sealed[i] {
			continue
		}
		if plain[i] != 'b' || sealed[i] != tagSealed {
			t.Fatalf("byte %d: %q sealed, %q plain", i, sealed[i], plain[i])
		}
		tags++
	}
	if tags != n {
		t.Fatalf("%d tags differ; want %d", tags, n)
	}
	// And it decodes back to the state.
	got, err := c.DecodeState(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !concord.EqualValues(got.Fields, st.Fields) || !bytes.Equal(mustEncode(t, got), mustEncode(t, st)) {
		t.Fatal("the decoded state differs")
	}
}

func mustEncode(t *testing.T, st *Record) []byte {
	b, err := EncodeState(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
