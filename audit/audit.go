// Package audit records what the engine did and why: every edit it saw,
// every merge decision with the versions and the rule that decided, every
// conflict, every write and its outcome, every record it quarantined.
//
// The engine hands [Event]s to one [Sink]. Sinks here: [JSONLines] (one JSON
// object per line to an io.Writer), [Slog] (to a *slog.Logger) and [Multi]
// (fan out). Package audittest has an in-memory recorder with filters and
// Require helpers for tests.
package audit

import (
	"context"
	"time"

	"github.com/concordsync/concord"
)

// Kind names what an Event records.
type Kind string

// The kinds of events the engine emits.
const (
	// EditObserved: a system's read showed a unit changed since the
	// engine last saw it. From is the canonical value, To the edit.
	EditObserved Kind = "edit.observed"
	// MergeDecided: a unit's canonical value or version changed. Rule
	// says why ("fast-forward", "system-of-record", ...); Version is the
	// new canonical version; System the winning system.
	MergeDecided Kind = "merge.decided"
	// ConflictDetected: concurrent edits of one unit. Candidates lists
	// each competing system and version.
	ConflictDetected Kind = "conflict.detected"
	// ConflictHeld: a conflict or change is held for a person; the unit
	// keeps its canonical value meanwhile. System is the system whose
	// change waits (for a conflict, the first competitor of the canonical
	// value); Candidates lists every system involved.
	ConflictHeld Kind = "conflict.held"
	// ChangeRefused: a gate refused an edit; it will be reverted in the
	// system that made it.
	ChangeRefused Kind = "change.refused"
	// WriteAttempted: a patch is about to be sent to System.
	WriteAttempted Kind = "write.attempted"
	// WriteSucceeded: System applied the patch.
	WriteSucceeded Kind = "write.succeeded"
	// WriteFailed: System did not apply the patch; Error and ErrorClass
	// say why. The record will be retried or dead-lettered.
	WriteFailed Kind = "write.failed"
	// WriteRefused: a write to System was refused before its connector
	// was called: outside the system's scope (least privilege). Error
	// says what and why; ErrorClass is "scope".
	WriteRefused Kind = "write.refused"
	// ReadFailed: reading changes from System failed; its cursor stays.
	ReadFailed Kind = "read.failed"
	// RecordQuarantined: a record read from System could not be used (no
	// key, bad value, transform error); it was kept as a dead letter.
	RecordQuarantined Kind = "record.quarantined"
	// WriteDeadLettered: a write to System failed permanently, or too
	// many times; it is kept as a dead letter and no longer retried
	// until replayed.
	WriteDeadLettered Kind = "write.dead_lettered"
	// WriteReplayed: a person asked for a dead-lettered write to be
	// retried.
	WriteReplayed Kind = "write.replayed"
	// DeadLetterDiscarded: a person gave up on a dead letter; Reason
	// says who and why.
	DeadLetterDiscarded Kind = "dead_letter.discarded"
	// RetryAfterCapped: System asked to be left alone for longer than the
	// retry policy allows; the wait was capped. Reason says how long.
	RetryAfterCapped Kind = "retry_after.capped"
	// ReadSuperseded: System reported the same record twice in one
	// cycle; the report with the later modification time was used and
	// this one (To, Reason) was not.
	ReadSuperseded Kind = "read.superseded"
	// CursorWentBack: System's connector answered with a cursor that
	// goes back (an empty cursor after a stored one); it was not
	// stored. Error says which.
	CursorWentBack Kind = "cursor.went_back"
	// CursorReset: a person set System's cursor (Reason says who and
	// why): its changes are read again from there.
	CursorReset Kind = "cursor.reset"
	// ScanStarted: the first sync of System by scan began (it had no
	// cursor: it was just added, or its cursor was reset to the start).
	// Reason says how many records it expects.
	ScanStarted Kind = "scan.started"
	// ScanFinished: the first sync of System by scan read its last page;
	// its change feed is followed from there. Reason says how many
	// records were read.
	ScanFinished Kind = "scan.finished"
)

// Candidate is one competing version in a ConflictDetected event.
type Candidate struct {
	System    concord.SystemID         `json:"system"`
	Canonical bool                     `json:"canonical,omitempty"`
	Version   concord.Version          `json:"version"`
	Values    map[string]concord.Value `json:"values,omitempty"`
	Deleted   bool                     `json:"deleted,omitempty"`
}

// Event is one audited step. Fields that do not apply to a Kind are zero.
//
// Sinks must not modify an Event or the maps and slices in it.
type Event struct {
	Time  time.Time `json:"time"`
	Kind  Kind      `json:"kind"`
	Cycle uint64    `json:"cycle,omitempty"`
	// System the event happened in or came from.
	System concord.SystemID `json:"system,omitempty"`
	// Key of the record.
	Key string `json:"key,omitempty"`
	// Unit is the field or group name, or "(record)" for a delete.
	Unit string `json:"unit,omitempty"`
	// Fields touched (canonical names; system names for writes).
	Fields []string `json:"fields,omitempty"`
	// From and To are the values before and after, where they apply.
	From map[string]concord.Value `json:"from,omitempty"`
	To   map[string]concord.Value `json:"to,omitempty"`
	// Deleted reports a record delete.
	Deleted bool `json:"deleted,omitempty"`
	// Version is the resulting version (of the edit, or the merge).
	Version concord.Version `json:"version"`
	// Candidates of a conflict.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Rule that decided, and the reason in words.
	Rule   concord.Rule `json:"rule,omitempty"`
	Reason string       `json:"reason,omitempty"`
	// Error message and class ("transient", "permanent", ...) of a
	// failure.
	Error      string `json:"error,omitempty"`
	ErrorClass string `json:"error_class,omitempty"`
	// Actors names the actors of the event's versions: the system (or
	// the engine's identity) each number stands for. The engine sets it
	// (one map shared by its events); sinks print versions with these
	// names ({portal:2,crm:1}, see [Event.FormatVersion]), and JSON
	// lines carry the names used, so that ReadJSONLines restores it.
	Actors map[concord.Actor]string `json:"-"`
}

// Sink receives audit events.
//
// The engine calls Emit just before it commits the state the events
// describe (a cycle commits once, or twice when it writes: before and after
// the writes), from one goroutine per pipeline, with the events in order.
// Delivery is at least once: a crash or a failed commit between Emit and
// the commit makes a later cycle emit the same decisions again. An error is
// reported in the cycle's result; the engine does not retry it, so sinks
// that can lose events (a network) should buffer and retry themselves.
type Sink interface {
	Emit(ctx context.Context, events []Event) error
}

// SinkFunc adapts a function to a [Sink].
type SinkFunc func(ctx context.Context, events []Event) error

// Emit calls f.
func (f SinkFunc) Emit(ctx context.Context, events []Event) error { return f(ctx, events) }

// Discard is a Sink that drops every event.
var Discard Sink = SinkFunc(func(context.Context, []Event) error { return nil })
