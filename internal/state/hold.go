package state

import (
	"encoding/binary"
	"strconv"

	"github.com/concordsync/concord"
)

// Revision hashes what a person deciding a hold sees: every candidate's
// system, version, deletion and values. It is [Codec.Revision] of the zero
// Codec.
func (h *Hold) Revision() string { return Codec{}.Revision(h) }

// Revision hashes what a person deciding a hold sees: every candidate's
// system, version, deletion and values. With a Hasher, a value of a
// sensitive field counts by its keyed hash rather than its plaintext, so
// that the revision (which hosts see and may log) cannot be used to test
// guesses of the value; without one it counts as the zero Codec counts it.
// A Sensitive that panics counts the field as sensitive.
func (c Codec) Revision(h *Hold) string {
	var b []byte
	for _, cand := range h.Candidates {
		b = append(b, cand.System...)
		b = append(b, 0)
		if cand.Canonical {
			b = append(b, 1)
		}
		if cand.Deleted {
			b = append(b, 2)
		}
		b, _ = cand.Version.AppendBinary(b)
		for _, f := range sortedKeys(cand.Values) {
			b = append(b, f...)
			b = append(b, 0)
			if sensitive, _ := c.sensitive(f); sensitive && c.Hasher != nil {
				v, _ := concord.AppendCanonical(nil, cand.Values[f])
				b = append(b, 0xfe) // no canonical encoding starts with it
				b = binary.BigEndian.AppendUint64(b, c.Hasher.Hash(f, v))
				continue
			}
			b, _ = concord.AppendCanonical(b, cand.Values[f])
		}
		b = append(b, 0xff)
	}
	return strconv.FormatUint(concord.HashBytes(b), 36)
}
