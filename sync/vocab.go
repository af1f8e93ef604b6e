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
)
