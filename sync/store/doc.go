// Package store is where a store author starts: the contract between the
// sync engine and the place its state lives, and nothing else. It imports
// only the root concord package and connector (for Cursor), so that a
// third-party store, like the ones in this module (boltstore, pgstore and
// [Memory]), builds on it without importing the engine.
//
// # What a store keeps
//
// A store keeps, for one pipeline:
//
//   - actor numbers and the epoch ([Meta]): the identities that versions are
//     made of;
//   - the cursor of each system ([Meta]);
//   - leases with fencing tokens ([Leases]), so that two engine instances
//     never run a cycle of one pipeline at once;
//   - one [State] per record key ([Records]): the engine's encoding of what
//     it knows about the record, opaque to the store, plus the few fields
//     the store needs to index it (Rev, Pending, Held);
//   - dead letters ([DeadLetters]), each an opaque payload under an ID the
//     store assigns;
//   - small named values of the engine's own ([Meta.Value]): a scan's
//     progress, per-field statistics, the audit delivery mark;
//   - the audit log ([AuditLog]): opaque entries numbered 1, 2, 3, ... by
//     the engine, committed with the state they describe (an outbox) and
//     delivered afterwards. A commit whose entries do not continue the log
//     is refused with [ErrStale] ([CheckAudit]), so two writers never both
//     append one Seq.
//
// Every change goes through one atomic [Commit] ([Committer]). Rules that
// every store applies alike are functions here: [NextLease], [NextEpoch],
// [CheckValueName] and [CheckAudit].
//
// # Opaque data
//
// [State.Data], [DeadLetter.Data], values and [AuditEntry.Data] are
// written by the engine and read back by it; a store never interprets them and returns them byte for
// byte. The engine's encoding is versioned and carries its own checksum,
// so damage is found whatever the store; a store may add its own checksum
// (boltstore and pgstore do, bound to the key, so that a value copied under
// another key is found too) and should report what it finds by wrapping
// [ErrDamaged].
//
// # Why the interface is split
//
// [Store] is the union of six small interfaces, each one concern a store
// author can implement and test on its own (as raft plans for its Storage):
// [Meta], [Leases], [Records], [DeadLetters], [AuditLog] and [Committer].
// The engine needs all six; wrappers (fault injection, metrics) can embed a Store and
// override one method. Hosts never call a store: they hand one to the
// engine (sync.Config.Store).
//
// # Conformance
//
// The package storetest checks a Store against everything the engine
// relies on:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t testing.TB) store.Store { return mystore.New() })
//	}
package store
