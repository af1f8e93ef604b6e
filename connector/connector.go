// Package connector defines how Concord talks to one system: the
// [Connector] interface a host implements per system, the optional abilities
// a connector may add ([Getter], [Scanner], [ScanStarter]), and the error classes the engine
// acts on ([ErrTransient], [ErrRateLimited], [ErrConflict], [ErrPermanent],
// [ErrNotFound]).
//
// A connector speaks the system's own field names and shapes; the engine
// maps them to the canonical shape with the system's Transformers. A
// connector never merges: it reports what the system holds and applies the
// field-level patches it is given.
//
// Package connectortest checks a Connector against this contract in one call;
// package fake is an in-memory system that passes it.
package connector

import (
	"context"
	"time"

	"github.com/concordsync/concord"
)

// Cursor is an opaque position in a system's change feed. The empty Cursor
// means "from the beginning". Cursors are produced by the connector and
// stored by the engine as they are; their content is the connector's
// business.
type Cursor string

// Batch is one page of changes.
type Batch struct {
	// Records changed after the cursor, oldest first. A record may appear
	// once per batch at most, with its current state (not a diff), or with
	// Deleted set.
	Records []concord.Record
	// Next is the cursor to ask for the changes after this batch. Reading
	// from Next never skips a change made after the first read from the
	// previous cursor; it may repeat some (the engine recognises repeats).
	Next Cursor
	// More reports that changes after Next were already known when the
	// batch was cut; the engine asks again in the same cycle.
	More bool
}

// Patch is a field-level write to one record. Fields not named in Set are
// left as they are: a patch is never a whole-record overwrite.
type Patch struct {
	// Key of the record to change.
	Key string
	// Set holds the new values by the system's field names. A nil value
	// empties the field.
	Set map[string]concord.Value
	// Create asks for a new record: the engine believes the system does
	// not have it (or has deleted it). A connector whose system supports
	// conditional writes fails the patch with ErrConflict if a live record
	// with this key already exists, so that a record created in the
	// system meanwhile is read and merged instead of overwritten. Without
	// Create, a patch to a missing record fails with ErrNotFound.
	Create bool
	// Delete deletes the record; Set is then ignored. Deleting a record
	// that does not exist succeeds.
	Delete bool
	// IfMatch, when not empty, is the version tag the record must still
	// have; a connector whose system supports conditional writes fails
	// the patch with ErrConflict if it does not. Connectors without
	// conditional writes ignore it.
	IfMatch string
	// IdempotencyKey identifies this exact write: the same key means the
	// same change. Connectors whose systems support idempotency keys pass
	// it on, so that a retried write whose reply was lost has no second
	// effect. It is derived from the record key and the field versions.
	IdempotencyKey string
}

// Result is the outcome of one Patch.
type Result struct {
	// Key of the patched record.
	Key string
	// Err is nil if the patch was applied. Otherwise it should carry one
	// of the error classes (see Classify); unclassified errors are treated
	// as transient.
	Err error
	// Tag is the record's version tag after the write, if the system has
	// tags.
	Tag string
	// Modified is the record's modification time after the write, if the
	// system reports one.
	Modified time.Time
}

// Connector reads changes from one system and writes field-level patches to
// it.
//
// The engine calls Changes and Apply from one goroutine per system at a
// time: a connector is never asked to read and write concurrently unless it
// is shared between pipelines (then it must be safe for that). Cancelling
// ctx abandons the call; the connector should return ctx.Err() promptly and
// the engine treats the call as failed, without assuming anything about
// whether the system applied a write. (The sync engine waits at most
// sync.AbandonAfter, 5 seconds, once ctx has ended, then gives up on the
// call and calls the connector no more until it has returned.)
type Connector interface {
	// Changes returns up to limit records changed after cursor, with the
	// cursor to continue from. It is called at the start of every cycle,
	// and again while the returned Batch says More. A failed call (any
	// error) leaves the engine's stored cursor unchanged. The records
	// returned, and the maps and slices in them, are the engine's: the
	// connector must not modify or reuse them afterwards.
	Changes(ctx context.Context, cursor Cursor, limit int) (Batch, error)

	// Apply writes patches and returns one Result per patch, in order.
	// It is called after merging, with at most the configured batch size
	// of patches, each for a distinct key. A non-nil error means the whole
	// call failed and no Result is known (the engine retries every patch
	// later); per-patch failures go in Result.Err with a nil error. Patches
	// must be applied independently: one failing patch must not stop the
	// others. The patches and their Set maps are the connector's own: it
	// may modify them (converting values to the system's types, say).
	Apply(ctx context.Context, patches []Patch) ([]Result, error)
}

// Getter is an optional ability: reading current records by key. The engine
// uses it in two places: in the cycle after a write to the system failed
// with ErrConflict (or with ErrNotFound for a patch that was not a Create),
// it reads those records again by key after reading the change feed, in
// batches of the system's batch size, and treats a key Get leaves out as the
// system's delete; and Replay of a dead-lettered read reads the record as the system
// holds it now. Without a Getter the engine waits for the change feed to
// bring such a record again, and Replay uses the dead letter's payload.
type Getter interface {
	// Get returns the records with the given keys that exist, in any
	// order; missing keys are simply absent from the result.
	Get(ctx context.Context, keys []string) ([]concord.Record, error)
}

// Conditional is an optional ability: conditional writes. A connector
// whose ConditionalWrites reports true fails with ErrConflict a patch whose
// IfMatch is not the record's current tag, and a Create of a record that
// exists (see Patch). The engine writes to a system outside a cycle that
// read its changes to the end (in Engine.Ingest or Engine.Replay, or in a
// cycle whose read of it failed or stopped with more waiting) only what
// the system would refuse if a person changed the record there since the
// engine last read it: an update or a delete with a version tag to check,
// or a create where the system refuses to overwrite. A system that has
// reported a version tag has conditional writes; for one that has not yet,
// this says so, and without it the engine defers creates there to its
// next cycle that reads the system.
type Conditional interface {
	// ConditionalWrites reports whether the system refuses a stale
	// IfMatch and a Create of a record that exists.
	ConditionalWrites() bool
}

// Scanner is an optional ability: reading every record, in pages, in a
// stable order. The engine uses it for a system's first sync (when the
// system has no stored cursor: it was just added, or a person reset its
// cursor to the start; see sync.System.FirstSync): it reads every record
// by Scan instead of replaying the whole change feed, a page per call,
// resumable after a crash, then follows the change feed from where it
// ended when the scan began (see [ScanStarter]). Hosts and tools that need
// every record (a full comparison of two systems) use it too, and
// connectortest checks it when a connector has it.
type Scanner interface {
	// Scan returns up to limit records after cursor in the system's key
	// order, and the cursor to continue from; Batch.More is false on the
	// last page. Scan returns live records only (none with Deleted set).
	Scan(ctx context.Context, cursor Cursor, limit int) (Batch, error)
}

// ScanStarter is an optional ability of a [Scanner]: it says, before a
// scan begins, where the change feed ends and how many records the scan
// will read. The engine calls StartScan once per first sync, before the
// first Scan call, and stores its answer with the scan's progress.
//
// Without it the engine reads the change feed from the start once the scan
// is done (correct, as the engine recognises records it already has, but
// it reads every change again), and reports no estimate.
type ScanStarter interface {
	StartScan(ctx context.Context) (ScanStart, error)
}

// ScanStart is the answer of [ScanStarter.StartScan].
type ScanStart struct {
	// Feed is a change-feed cursor from which Changes returns every
	// change committed after StartScan was called (it may return some
	// earlier ones again). The empty Cursor means the start of the feed.
	Feed Cursor
	// Estimate is about how many records the scan will return, for
	// progress reports; 0 means unknown. It need not be exact.
	Estimate int64
}
