package store_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/concordsync/concord/sync/store"
)

// FuzzCheckAudit checks CheckAudit against its definition: nil exactly
// when the Seqs run head+1, head+2, ...; otherwise an *AuditSeqError that
// matches ErrStale and points at the first entry out of sequence.
func FuzzCheckAudit(f *testing.F) {
	f.Add(uint64(0), []byte{1, 2, 3})
	f.Add(uint64(0), []byte{})
	f.Add(uint64(4), []byte{5, 7})
	f.Add(uint64(4), []byte{5, 5})
	f.Add(uint64(255), []byte{0})
	f.Add(^uint64(0)-1, []byte{0xff})
	f.Fuzz(func(t *testing.T, head uint64, deltas []byte) {
		// Entry i has Seq head + delta (wrapping), so the fuzzer reaches
		// both continuous runs and every kind of break.
		entries := make([]store.AuditEntry, len(deltas))
		for i, d := range deltas {
			entries[i] = store.AuditEntry{Seq: head + uint64(d)}
		}
		bad := -1
		for i, e := range entries {
			if head+uint64(i) == ^uint64(0) || e.Seq != head+uint64(i)+1 {
				bad = i
				break
			}
		}
		err := store.CheckAudit(head, entries)
		if bad < 0 {
			if err != nil {
				t.Fatalf("CheckAudit(%d, %v) = %v; want nil", head, deltas, err)
			}
			return
		}
		var se *store.AuditSeqError
		if !errors.Is(err, store.ErrStale) || !errors.As(err, &se) {
			t.Fatalf("CheckAudit(%d, %v) = %v; want an AuditSeqError matching ErrStale", head, deltas, err)
		}
		if se.Head != head || se.Index != bad || se.Seq != entries[bad].Seq || se.Want != head+uint64(bad)+1 {
			t.Fatalf("CheckAudit(%d, %v) = %+v; want entry %d", head, deltas, se, bad)
		}
		if !strings.Contains(err.Error(), "audit entry") {
			t.Fatalf("error %q does not say what it is about", err)
		}
	})
}

// FuzzCheckValueName checks CheckValueName against its definition.
func FuzzCheckValueName(f *testing.F) {
	for _, s := range []string{"", "scan/crm", "a\x00b", "\xff", "é", strings.Repeat("x", 200), strings.Repeat("x", 201)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ok := name != "" && len(name) <= store.MaxValueName && utf8.ValidString(name) && !strings.Contains(name, "\x00")
		err := store.CheckValueName(name)
		if ok != (err == nil) || (err != nil && !errors.Is(err, store.ErrInvalidName)) {
			t.Fatalf("CheckValueName(%q) = %v; want ok=%v", name, err, ok)
		}
		if err := store.CheckValueNames(map[string][]byte{"fine": nil, name: nil}); ok != (err == nil) {
			t.Fatalf("CheckValueNames with %q = %v; want ok=%v", name, err, ok)
		}
	})
}
