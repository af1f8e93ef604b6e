package sync

import "github.com/concordsync/concord/connector"

// Op names the step of a cycle in which a [Failure] happened.
type Op string

// The steps a Failure names.
const (
	// OpRead: reading a system's changes (or records by key) failed.
	OpRead Op = "read"
	// OpTransform: a record could not be transformed or validated, on
	// the way in or on the way out.
	OpTransform Op = "transform"
	// OpMerge: a record could not be merged (a resolver's bad decision,
	// a full version vector).
	OpMerge Op = "merge"
	// OpWrite: a patch could not be written to a system.
	OpWrite Op = "write"
	// OpCursor: a connector answered with a cursor that goes back
	// ([ErrCursorWentBack]).
	OpCursor Op = "cursor"
	// OpAudit: the audit sink failed.
	OpAudit Op = "audit"
)

// String returns the step's name.
func (o Op) String() string { return string(o) }

// Classes the engine gives failures that no connector returns, beside the
// five classes of package connector. Audit events, dead letters, alerts and
// metrics carry their names (Class.String).
const (
	// ClassInvalid: a record could not be transformed or validated.
	ClassInvalid connector.Class = "invalid"
	// ClassPanic: user code (a connector, transform, resolver, gate,
	// validator or sink) panicked; see [ErrPanic].
	ClassPanic connector.Class = "panic"
	// ClassCursor: a connector's cursor went back ([ErrCursorWentBack]).
	ClassCursor connector.Class = "cursor"
	// ClassMerge is the Class of an inbound dead letter that keeps a record
	// whose merge failed: the Resolver or a gate returned an error or panicked
	// for it. Nothing of that record was committed, and the system's cursor moved
	// on, so the record as each system reported it is kept here: every cycle
	// merges it again (a fresher read of the same record from the same system
	// supersedes it) until the merge succeeds, which settles the dead letter.
	// After RetryPolicy.MaxRecordAttempts failed merges it is no longer retried
	// until replayed ([Engine.Replay]); replaying one report of a record replays
	// every report of it that its merge needs.
	ClassMerge connector.Class = "merge"
	// ClassUnreadable is the Class [Engine.DeadLetters] gives a stored
	// dead letter that does not decode (damaged, sealed under a key the
	// ring no longer has): listed so that a person sees it and discards it
	// ([Engine.Discard]); it cannot be replayed.
	ClassUnreadable connector.Class = "unreadable"
)
