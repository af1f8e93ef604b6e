// Package sync is Concord's engine: it keeps several systems in agreement
// about the same records, field by field, in-process.
//
// The package name shadows the standard library's sync inside a host's
// file; import it under another name:
//
//	import recsync "github.com/concordsync/concord/sync"
//
// # The host's loop
//
// A host implements (or picks) one connector.Connector per system, maps
// each system's shape to the canonical one with transforms, chooses how
// conflicts are settled, and builds an [Engine]:
//
//	engine, err := recsync.New(recsync.Config{
//		Systems: []recsync.System{
//			{ID: "portal", Connector: portal, Inbound: portalMap.Inbound(), Outbound: portalMap.Outbound()},
//			{ID: "warehouse", Connector: warehouse},
//		},
//		Groups:   map[string][]string{"address": {"street", "city", "postal_code", "country"}},
//		Resolver: resolve.Chain(resolve.SystemOfRecord(owners), resolve.LastWriterWins()),
//		Audit:    audit.JSONLines(auditFile),
//		Store:    st, // required: store.NewMemory(), boltstore.Open(...), pgstore.Open(...)
//	})
//
// New validates everything and does nothing else: no I/O, no goroutine.
// The host then calls [Engine.RunCycle] when it wants (from a timer, a job
// queue, a test), or [Engine.Run] to cycle on an interval until its context
// is cancelled, and [Engine.Ingest] to feed changes a system pushes
// (webhooks). Each cycle:
//
//  1. Pull: reads every system's changes since its stored cursor (systems
//     in parallel), validates them and applies the inbound transforms. A
//     record that cannot be used becomes a dead letter with the reason; its
//     siblings go on.
//  2. Detect: compares what each system reports with what the engine knows
//     it held, per unit (a field, or a declared field group). A changed
//     unit is an edit, versioned as the version the system held
//     incremented at that system. A system reporting what it was last sent
//     (an echo) made no edit; nor does one reporting a write whose reply was
//     lost (every attempted write is remembered, with its version, until
//     the system confirms or supersedes it), nor one reporting its own
//     notation of a value it was sent ("LEEDS" for "Leeds", learnt from the
//     first read of the version the write produced, or from the outbound
//     transform) when another field changes later, also after the engine
//     wrote it another field: a write records as held anew only the units
//     it can change (see transform.Lineage; a transform.Func, whose
//     lineage is unknown, is asked, where the system holds a unit in a
//     notation of its own, what it makes of the record without the fields
//     written, and a unit that comes out the same does not depend on
//     them), and keeps the copy of a unit it can change whose canonical
//     values the round trip gives back unchanged (a city packed with a
//     new street into one system field). The same record twice in
//     one read keeps the later modification; the other is audited
//     (read.superseded). A report that is exactly what the cycle before
//     wrote (same tag, every field the same in the system's shape) is
//     recognised without loading the record's state, as long as nothing
//     else committed since (Report.Echoes; echo.go); and a record whose
//     state a cycle did not change is not encoded or committed again.
//  3. Merge: an edit that descends from the canonical version wins; edits
//     that are concurrent are a conflict, settled by the Resolver or held
//     for a person (only that unit is held). The result's version is the
//     join of the competitors. A record created again after a decided
//     delete is new: its values compete with none of the deleted
//     record's. See merge.go for the rules. Last-writer-wins
//     compares a unit by its fields' own times where the connector reports
//     them (concord.Record.FieldModified), else by the record's time; the
//     audit reason says which.
//  4. Gate: gates (and a Resolver that is also a gate, such as
//     resolve.SystemOfRecord) may refuse a change, which is then reverted
//     in the system that made it, or hold it.
//  5. Push: every system that does not hold the canonical values gets one
//     field-level patch per record with only the fields that differ in its
//     own shape, conditional on its version tag, with an idempotency key.
//     A held unit is written nowhere until it is settled: while a record's
//     existence is held (a delete against an edit), it is neither created
//     nor deleted anywhere. A system without conditional writes (no version
//     tag to check; see connector.Conditional) is written only in a cycle
//     that read its changes to the end: otherwise (its read failed or
//     stopped with more waiting; Engine.Ingest; Engine.Replay) the write
//     waits for the next cycle that does ([SystemReport].Deferred), so that
//     it never replaces an edit the engine has not read; and a record whose
//     report from that system is in an inbound dead letter waits until the
//     system reports it in a usable form.
//  6. Commit: when a cycle has writes, the merged states, with every write
//     about to be attempted, are committed before anything is sent (write
//     ahead); then cursors, record states and dead letters are stored in one
//     atomic commit; a record whose write failed stays pending and is
//     retried next cycle. Audit events reach the sink at least once: each
//     commit's events are emitted before it, so a crash or a failed commit
//     may repeat them in a later cycle but never loses them, and the writes
//     are audited even when the final commit fails.
//
// A crash anywhere re-runs work and never loses an edit: writes are
// idempotent and conditional, nothing advances before it is committed, and
// an instance that lost its lease fails its write-ahead commit and writes
// nothing; one that loses it while writing (a paused process, a long push
// it could not renew) sends no further batch ([ErrLeaseLost]). A value no
// store can encode is refused at the boundary, and a dead letter keeps such
// a payload as text ([DeadLetter].Textual), so one record never stops a
// commit.
//
// # Cursors
//
// A system without a cursor (just added, or reset to the start) is first
// read by scan when its connector is a [connector.Scanner] ([FirstSyncScan],
// the default): every record, page by page, with the scan position
// committed with the records it brought (a crash resumes it) and its
// progress in [SystemReport.Scan]; then its change feed is followed from
// where it ended when the scan began ([connector.ScanStarter]). A cycle that
// stops reading while a system has more waiting says so
// ([SystemReport.Backlog]), and [Engine.Run] starts the next one at once.
//
// A connector that answers a stored cursor with an empty one (a cursor
// going back) is reported ([ErrCursorWentBack], an audit event and an
// alert) and the stored cursor is kept. An operator moves a cursor, for
// instance past one the connector no longer accepts, with
// [Engine.ResetCursor], audited with the person and the reason. One that
// answers More with the cursor it was given is a read failure
// ([ErrFeedStuck]), not a backlog.
//
// A system added to a pipeline that already holds records is backfilled:
// once its first read is over, each cycle also loads the next stored
// records in key order, so that it is written every record it lacks, not
// only those that change from then on; the progress is committed with each
// cycle; a pass that could not read some record's state starts again, so
// that the system is not taken as having every record while one is
// missing. A system removed from the configuration is forgotten (records
// are not pending for it), and backfilled if it comes back.
//
// # Governance
//
// A [System.Scope] says what the pipeline may do to a system (create,
// delete, which fields); a write outside it is refused before the
// connector is called ([ScopeError]). Audit events are committed to the
// store's audit log, a hash chain, in the same commit as the state they
// describe, then delivered to the sink at least once with their Seq
// ([Engine.VerifyAudit], [Engine.AuditCheckpoint], [AuditError]).
// Config.Sensitive fields are sealed at rest under Config.Keys, recognised
// by keyed hashes and [Redacted] in every output ([Engine.RevealHolds],
// [Engine.Reseal]). Gates hold changes for a person (resolve.RequireApproval,
// Config.Anomalies); [Engine.Settle] refuses an approval by the person who
// made the change ([ErrFourEyes]) and one of a hold that changed since it
// was listed ([ErrHoldChanged]).
//
// # What a cycle reports
//
// RunCycle returns a [Report] (per system: records read, edits, conflicts,
// holds, refusals, writes, failures) and, when something failed, a
// [*CycleError] listing each failure with its system, record key, step
// ([Op]) and cause, inspectable with errors.Is and errors.As. What succeeded
// is committed all the same. Held conflicts are listed by [Engine.Holds] and
// settled by a named person with [Engine.Settle]; its [Settlement] names the
// hold as it was listed (its Revision):
// if a cycle changed it meanwhile, Settle fails with [ErrHoldChanged] and
// applies nothing. Candidates keep their order as new ones are added. The
// decision supersedes every candidate, so a rejected change is written back
// to the system that made it. Failure counts are consecutive: a record that
// comes into sync in any way starts again from zero.
//
// # User code that panics
//
// Every call into the host's code (connectors, transforms, the Resolver,
// gates, the Dictionary, Cleansing suggesters, the audit Sink, the
// Alerter) recovers a panic and
// turns it into that call's failure, a [*PanicError] (matching [ErrPanic])
// with the value and the stack; the engine's own goroutines never crash the
// host. A panicking read or write is not retried within the cycle (a bug,
// not a blip), is audited and alerted with class [ClassPanic], and a failed
// write counts toward RetryPolicy.MaxRecordAttempts like a transient one.
// A panicking inbound transform, validator or suggester dead-letters that
// record (the stack in the reason); a panicking outbound transform fails that write; a
// panicking resolver or gate fails that record's merge: nothing of it is
// committed, and it is merged again next cycle ([ClassMerge]). A panicking
// audit sink is the cycle's audit failure; a panicking alerter is logged.
// The Store is called on the caller's goroutine, where its panics reach
// the caller, except where the engine calls it from goroutines of its own
// (each system's cursor as the cycle reads, the lease's confirmation before
// a batch of writes): there a panic fails the cycle, or the write, as a
// [*PanicError].
// A connector, sink or alerter call that does not return within
// [AbandonAfter] of its context's end is abandoned ([ErrAbandoned]): the
// cycle goes on, and the component is not called again until the call
// returns.
// runtime.Goexit in a connector, sink or alerter is treated as a panic (they
// run in a goroutine of their own); in a transform, validator, resolver or
// gate it ends the goroutine that called RunCycle, as it would anywhere in
// it: nothing of that cycle is committed, and the engine stays usable.
// Goroutines that user code starts itself are beyond reach.
package sync
