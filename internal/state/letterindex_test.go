package state

import (
	"errors"
	"testing"
	"time"

	"github.com/concordsync/concord"
)

func sampleLetters() []DeadLetter {
	when := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	return []DeadLetter{
		{System: "crm", Key: "c1", Inbound: true, Class: "merge", Attempts: 2, When: when, Reason: "merge failed",
			Record:      concord.Record{Key: "c1", Fields: map[string]concord.Value{"ssn": "123", "name": "Ada"}, Modified: when},
			Transformed: concord.Record{Key: "c1", Fields: map[string]concord.Value{"ssn": "123"}}},
		{System: "erp", Key: "", Class: "invalid", Textual: []string{"x"}, Whole: true},
		{System: "", Key: "k\x00é", Class: ""},
	}
}

// LetterIndex reads the system, key and class of letters plain and sealed
// (without a Sealer), and refuses damaged bytes as decoding does.
func TestLetterIndex(t *testing.T) {
	sealing := Codec{Sealer: identity{}, Sensitive: func(f string) bool { return f == "ssn" }}
	for _, c := range []Codec{{}, sealing} {
		for _, dl := range sampleLetters() {
			b, err := c.EncodeDeadLetter(nil, dl)
			if err != nil {
				t.Fatal(err)
			}
			sys, key, class, err := LetterIndex(b)
			if err != nil || sys != dl.System || key != dl.Key || class != dl.Class {
				t.Fatalf("LetterIndex = %q %q %q, %v; want %q %q %q", sys, key, class, err, dl.System, dl.Key, dl.Class)
			}
			if c.Sealer != nil && dl.Record.Fields["ssn"] != nil {
				if _, err := DecodeDeadLetter(b); !errors.Is(err, ErrNoSealer) {
					t.Fatalf("the sealed letter decodes without a Sealer (%v): the test seals nothing", err)
				}
			}
			for i := range b {
				bad := append([]byte(nil), b...)
				bad[i] ^= 0x10
				if _, _, _, err := LetterIndex(bad); err == nil {
					t.Fatalf("LetterIndex accepted the letter with byte %d flipped", i)
				}
			}
			if _, _, _, err := LetterIndex(b[:len(b)-1]); err == nil {
				t.Fatal("LetterIndex accepted a truncated letter")
			}
		}
	}
}

// FuzzLetterIndex: any bytes either fail or give what a full decode (with
// a Sealer that opens anything) gives.
func FuzzLetterIndex(f *testing.F) {
	sealing := Codec{Sealer: identity{}, Sensitive: func(f string) bool { return f == "ssn" }}
	for _, dl := range sampleLetters() {
		for _, c := range []Codec{{}, sealing} {
			b, err := c.EncodeDeadLetter(nil, dl)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("DLX"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sys, key, class, err := LetterIndex(b)
		if err != nil {
			return
		}
		full, derr := Codec{Sealer: identity{}}.DecodeDeadLetter(b)
		if derr != nil {
			// Only what opening a sealed value checks may differ.
			var se *SealError
			if !errors.As(derr, &se) {
				t.Fatalf("LetterIndex accepted what DecodeDeadLetter refuses: %v", derr)
			}
			return
		}
		if full.System != sys || full.Key != key || full.Class != class {
			t.Fatalf("LetterIndex = %q %q %q; decoded %q %q %q", sys, key, class, full.System, full.Key, full.Class)
		}
	})
}
