package state

import (
	"strconv"

	"github.com/concordsync/concord"
)

// Revision hashes what a person deciding a hold sees: every candidate's
// system, version, deletion and values.
func (h *Hold) Revision() string {
	var b []byte
	for _, c := range h.Candidates {
		b = append(b, c.System...)
		b = append(b, 0)
		if c.Canonical {
			b = append(b, 1)
		}
		if c.Deleted {
			b = append(b, 2)
		}
		b, _ = c.Version.AppendBinary(b)
		for _, f := range sortedKeys(c.Values) {
			b = append(b, f...)
			b = append(b, 0)
			b, _ = concord.AppendCanonical(b, c.Values[f])
		}
		b = append(b, 0xff)
	}
	return strconv.FormatUint(concord.HashBytes(b), 36)
}
