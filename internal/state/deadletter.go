package state

import (
	"time"

	"github.com/concordsync/concord"
)

// DeadLetter is the engine's dead letter as [EncodeDeadLetter] encodes it.
// Its fields are those of the host-facing sync.DeadLetter, in the same
// order and of the same types, so that the engine converts between the two
// with a type conversion (a field added to one and not the other fails to
// compile); see sync.DeadLetter for their meaning.
type DeadLetter struct {
	ID          uint64
	System      concord.SystemID
	Key         string
	Inbound     bool
	Record      concord.Record
	Transformed concord.Record
	Reason      string
	Class       string
	Attempts    int
	FirstFailed time.Time
	When        time.Time
	Textual     []string
	Whole       bool
}
