// Package audit records what the engine did and why: every edit it saw,
// every merge decision with the versions and the rule that decided, every
// conflict, every write and its outcome, every record it quarantined.
//
// The engine hands [Event]s to one [Sink]. Sinks here: [JSONLines] (one JSON
// object per line to an io.Writer), [Slog] (to a *slog.Logger) and [Multi]
// (fan out). Package audittest has an in-memory recorder with filters and
// Require helpers for tests.
//
// # Tamper-evident logs
//
// A [Chain] links events into [Entry]s, each with its Seq (1, 2, ...) and
// the hash of the entry before it, so that an entry edited, deleted, moved
// or cut off shows. [EncodeEntry] gives an entry's stored form (the
// engine's audit outbox holds these bytes); [ChainedJSONLines] writes
// entries to a file, one per line. [VerifyJSONLines] (a file) and
// [VerifyEntries] (a store) check a log and name the first entry at fault
// in a [*TamperError] that matches [ErrTampered]. The chain alone cannot
// tell a log cut off at a line break, or rewritten and rehashed from some
// entry to its end, from a shorter or another log: a [SignedCheckpoint] of
// the head (ed25519, with a key the host keeps), stored apart from the log,
// can. Sign one regularly ([SignCheckpoint]) and verify against the
// latest.
//
// # Verifying a log offline
//
// With nothing but the log file, a checkpoint file and the public key
// file, anyone can check a log, with the command concord-audit (in this
// module: "concord-audit verify -log audit.jsonl -checkpoint cp.txt -pub
// key.pub") or by hand, in any language:
//
//  1. Read the public key: the .pub file is the word
//     "concord-audit-ed25519-public", a space and the 32-byte key in
//     standard base64.
//  2. Read the checkpoint's seven lines (see [SignedCheckpoint]). Its last
//     line is "sig", the key id and the signature in base64. The key id must
//     be the first 8 bytes, in hex, of the SHA-256 of the public key.
//  3. Verify the ed25519 signature over the checkpoint's first five lines,
//     byte for byte, line breaks included. From now on trust the
//     checkpoint's seq and hash.
//  4. Read the log line by line. Each line is exactly
//     {"seq":N,"prev":"P","hash":"H","event":E} and a line break ("\n"),
//     with N in decimal, P and H 64 lower-case hex digits, and E a JSON
//     object (the event); nothing else, not even a space.
//  5. Check the sequence: N is 1 on the first line (or the anchor's seq
//     plus one, for a log that continues another) and one more than on the
//     line before on every other line. P is 64 zeros on the first line (or
//     the anchor's hash) and H of the line before on every other line.
//  6. Check each hash: H must be the SHA-256 of the 23 bytes
//     "concord.audit.entry.v1" and a zero byte, then N as 8 bytes
//     big-endian, the 32 bytes of P, the length of E in bytes as 8 bytes
//     big-endian, and the bytes of E exactly as they are in the line
//     ([EntryHash]). Do not re-encode E.
//  7. On the line whose N is the checkpoint's seq, H must be the
//     checkpoint's hash; a log without that line was truncated.
//
// Every entry up to the checkpoint is then the one that was written: each
// hash covers the entry and, through P, every entry before it.
package audit

import (
	"context"
	"slices"
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
	// ValueCorrected: a value System sent, which the dictionary refused,
	// was replaced by a cleansing suggestion its policy applies. From is
	// the original, To the correction; Reason gives the score and why.
	ValueCorrected Kind = "value.corrected"
	// RepairRequested: a person asked for System's copy of the record
	// to be written again (a reconciliation's repair); Reason says who
	// and why.
	RepairRequested Kind = "repair.requested"
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
// Sinks must not modify an Event or the maps and slices in it. (The sync
// engine gives each Emit its own copies, so that a sink that does, to
// redact a value say, changes nothing of the engine's.)
type Event struct {
	// Seq is the event's position in the pipeline's audit log (the Seq
	// of its chain [Entry]); 0 when the event does not come from a log.
	// Delivery to sinks is at least once: a sink may drop an event whose
	// Seq it already has.
	Seq   uint64    `json:"seq,omitempty"`
	Time  time.Time `json:"time"`
	Kind  Kind      `json:"kind"`
	Cycle uint64    `json:"cycle,omitempty"`
	// System the event happened in or came from.
	System concord.SystemID `json:"system,omitempty"`
	// Key of the record.
	Key string `json:"key,omitempty"`
	// Unit is the field or group name, or "(record)" for a delete.
	Unit string `json:"unit,omitempty"`
	// Units lists the units of an event that covers several alike: the
	// engine reports edits of one record by one system with one version
	// as one EditObserved event, and the decisions that follow alike
	// (same winner, version and rule, as on a record's first sync) as one
	// MergeDecided event. Unit is empty then; Fields, From and To cover
	// every unit listed. Use [Event.Covers] to ask about one unit.
	Units []string `json:"units,omitempty"`
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
	// Modified is the system's own time of the change an EditObserved
	// event reports (zero if the system gives none), and By who made
	// it, when the system says (concord.Record.By).
	Modified time.Time `json:"modified,omitzero"`
	By       string    `json:"by,omitempty"`
	// Actors names the actors of the event's versions: the system (or
	// the engine's identity) each number stands for. The engine sets it
	// (one map shared by its events); sinks print versions with these
	// names ({portal:2,crm:1}, see [Event.FormatVersion]), and JSON
	// lines carry the names used, so that ReadJSONLines restores it.
	Actors map[concord.Actor]string `json:"-"`
}

// Covers reports whether the event is about unit u: its Unit, or one of
// its Units.
func (ev *Event) Covers(u string) bool {
	return ev.Unit == u || slices.Contains(ev.Units, u)
}

// UnitNames returns the units the event is about: Units, or Unit alone (none
// for an event about no unit).
func (ev *Event) UnitNames() []string {
	if len(ev.Units) > 0 {
		return ev.Units
	}
	if ev.Unit == "" {
		return nil
	}
	return []string{ev.Unit}
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
