package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord/audit"
)

// testKey is a fixed key, so that signatures (ed25519 is deterministic)
// and outputs are reproducible.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func TestCheckpointRoundTrip(t *testing.T) {
	pub, priv := testKey(1)
	hash := audit.EntryHash(1, [32]byte{}, []byte(`{"kind":"k"}`))
	cet := time.FixedZone("CET", 3600)
	scp, err := audit.SignCheckpoint(priv, audit.Checkpoint{Log: "crm→erp pipeline", Seq: 4711, Hash: hash, Time: time.Date(2025, 3, 14, 10, 26, 53, 589793238, cet)})
	require.NoError(t, err)
	text, err := scp.MarshalText()
	require.NoError(t, err)
	want := fmt.Sprintf("concord-audit-checkpoint v1\nlog crm→erp pipeline\nseq 4711\nhash %x\ntime 2025-03-14T09:26:53.589793238Z\n\nsig %x ", hash, audit.KeyID(pub))
	require.True(t, strings.HasPrefix(string(text), want), "text form:\n%s", text)
	require.Equal(t, string(text), scp.String())

	got, err := audit.ParseCheckpoint(text)
	require.NoError(t, err)
	require.NoError(t, got.Verify(pub), "verified offline with only the public key")
	require.Equal(t, scp.Seq, got.Seq)
	require.Equal(t, scp.Hash, got.Hash)
	require.True(t, got.Time.Equal(scp.Time))
	require.Equal(t, audit.Head{Seq: 4711, Hash: hash}, got.Head())
	again, err := got.MarshalText()
	require.NoError(t, err)
	require.Equal(t, text, again)
}

func TestCheckpointWrongKeyOrContents(t *testing.T) {
	pub, priv := testKey(1)
	otherPub, otherPriv := testKey(2)
	scp, err := audit.SignCheckpoint(priv, audit.Checkpoint{Log: "p", Seq: 10, Hash: [32]byte{9}, Time: t0})
	require.NoError(t, err)

	err = scp.Verify(otherPub)
	require.ErrorIs(t, err, audit.ErrBadSignature)
	require.Contains(t, err.Error(), fmt.Sprintf("signed by key %x, not by key %x", audit.KeyID(pub), audit.KeyID(otherPub)))

	// A signature by another key under this key's id.
	forged, err := audit.SignCheckpoint(otherPriv, scp.Checkpoint)
	require.NoError(t, err)
	forged.KeyID = scp.KeyID
	require.ErrorIs(t, forged.Verify(pub), audit.ErrBadSignature)

	// Each field changed after signing.
	text, _ := scp.MarshalText()
	for name, change := range map[string][2]string{
		"log":  {"log p\n", "log q\n"},
		"seq":  {"seq 10\n", "seq 11\n"},
		"hash": {"hash 09", "hash 08"},
		"time": {"time 2025", "time 2024"},
	} {
		t.Run(name, func(t *testing.T) {
			changed := strings.Replace(string(text), change[0], change[1], 1)
			require.NotEqual(t, string(text), changed)
			got, err := audit.ParseCheckpoint([]byte(changed))
			require.NoError(t, err)
			require.ErrorIs(t, got.Verify(pub), audit.ErrBadSignature)
		})
	}
	sig := scp
	sig.Signature = bytes.Clone(sig.Signature)
	sig.Signature[0] ^= 1
	require.ErrorIs(t, sig.Verify(pub), audit.ErrBadSignature)

	require.ErrorIs(t, scp.Verify(pub[:31]), audit.ErrMalformed)
}

func TestSignCheckpointRefuses(t *testing.T) {
	_, priv := testKey(1)
	for name, cp := range map[string]audit.Checkpoint{
		"empty log name":   {Seq: 1},
		"newline in name":  {Log: "a\nseq 99", Seq: 1},
		"control in name":  {Log: "a\x1b[31m", Seq: 1},
		"line separator":   {Log: "a\u2028b", Seq: 1},
		"not UTF-8":        {Log: "a\xff", Seq: 1},
		"long name":        {Log: strings.Repeat("x", 257), Seq: 1},
		"seq 0":            {Log: "p"},
		"year out of form": {Log: "p", Seq: 1, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := audit.SignCheckpoint(priv, cp)
			require.ErrorIs(t, err, audit.ErrMalformed)
		})
	}
	_, err := audit.SignCheckpoint(priv[:10], audit.Checkpoint{Log: "p", Seq: 1})
	require.ErrorIs(t, err, audit.ErrMalformed)
}

func TestParseCheckpointStrict(t *testing.T) {
	_, priv := testKey(1)
	scp, err := audit.SignCheckpoint(priv, audit.Checkpoint{Log: "p", Seq: 10, Hash: [32]byte{0xab, 0xcd}, Time: t0})
	require.NoError(t, err)
	text := scp.String()
	hash := hex.EncodeToString(scp.Hash[:])
	for name, in := range map[string]string{
		"empty":             "",
		"no final newline":  strings.TrimSuffix(text, "\n"),
		"extra line":        text + "\n",
		"CRLF":              strings.ReplaceAll(text, "\n", "\r\n"),
		"other header":      strings.Replace(text, "v1", "v2", 1),
		"seq leading zero":  strings.Replace(text, "seq 10", "seq 010", 1),
		"seq negative":      strings.Replace(text, "seq 10", "seq -10", 1),
		"seq 0":             strings.Replace(text, "seq 10", "seq 0", 1),
		"seq too big":       strings.Replace(text, "seq 10", "seq 99999999999999999999", 1),
		"hash upper case":   strings.Replace(text, hash, strings.ToUpper(hash), 1),
		"hash short":        strings.Replace(text, hash, hash[:60], 1),
		"time not UTC":      strings.Replace(text, "09:26:53.589793238Z", "10:26:53.589793238+01:00", 1),
		"time trailing 0":   strings.Replace(text, ".589793238Z", ".5897932380Z", 1),
		"no blank line":     strings.Replace(text, "\n\nsig", "\nx\nsig", 1),
		"key id upper case": strings.Replace(text, fmt.Sprintf("%x", scp.KeyID), fmt.Sprintf("%X", scp.KeyID), 1),
		"sig not base64":    strings.Replace(text, "sig ", "sig !", 1)[:len(text)-3] + "!!\n",
		"sig short":         text[:len(text)-10] + "\n",
		"field renamed":     strings.Replace(text, "log p", "name p", 1),
		"empty log name":    strings.Replace(text, "log p", "log ", 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := audit.ParseCheckpoint([]byte(in))
			require.ErrorIs(t, err, audit.ErrMalformed)
		})
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	_, priv := testKey(1)
	for _, cp := range []audit.Checkpoint{
		{Log: "p", Seq: 1, Time: t0},
		{Log: "crm → erp", Seq: 18446744073709551615, Hash: [32]byte{1, 2, 3}, Time: time.Unix(0, 0)},
	} {
		scp, err := audit.SignCheckpoint(priv, cp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(scp.String()))
	}
	f.Add([]byte("concord-audit-checkpoint v1\n"))
	pub := priv.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		scp, err := audit.ParseCheckpoint(b)
		if err != nil {
			if !errors.Is(err, audit.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		text, err := scp.MarshalText()
		if err != nil || !bytes.Equal(text, b) {
			t.Fatalf("accepted\n%q\nwrites back\n%q (%v)", b, text, err)
		}
		if err := scp.Verify(pub); err != nil && !errors.Is(err, audit.ErrBadSignature) {
			t.Fatalf("Verify: %v", err)
		}
	})
}

func TestKeyFiles(t *testing.T) {
	pub, priv := testKey(3)
	privText, err := audit.MarshalPrivateKey(priv)
	require.NoError(t, err)
	pubText, err := audit.MarshalPublicKey(pub)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(privText), "concord-audit-ed25519-private "))
	require.True(t, strings.HasPrefix(string(pubText), "concord-audit-ed25519-public "))

	priv2, err := audit.ParsePrivateKey(append([]byte("  "), privText...))
	require.NoError(t, err)
	require.True(t, priv.Equal(priv2))
	pub2, err := audit.ParsePublicKey(bytes.TrimSpace(pubText))
	require.NoError(t, err)
	require.True(t, pub.Equal(pub2))

	// A private key given as public, and the other way round.
	_, err = audit.ParsePublicKey(privText)
	require.ErrorIs(t, err, audit.ErrMalformed)
	require.Contains(t, err.Error(), "private")
	_, err = audit.ParsePrivateKey(pubText)
	require.ErrorIs(t, err, audit.ErrMalformed)

	for _, bad := range []string{"", "concord-audit-ed25519-public", "concord-audit-ed25519-public AAAA", "concord-audit-ed25519-public " + strings.Repeat("A", 44) + "x"} {
		_, err := audit.ParsePublicKey([]byte(bad))
		require.ErrorIs(t, err, audit.ErrMalformed, "%q", bad)
	}
	_, err = audit.MarshalPublicKey(pub[:5])
	require.ErrorIs(t, err, audit.ErrMalformed)
	_, err = audit.MarshalPrivateKey(priv[:5])
	require.ErrorIs(t, err, audit.ErrMalformed)
}
