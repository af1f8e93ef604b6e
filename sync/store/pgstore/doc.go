// Package pgstore is a [store.Store] in PostgreSQL, for hosts that run
// several instances of a pipeline (several processes, several machines)
// against the same systems.
//
// Open connects and creates or migrates the store's tables in a schema of
// their own ("concord" unless [WithSchema] says otherwise):
//
//	st, err := pgstore.Open(ctx, "postgres://concord@db/app")
//	...
//	defer st.Close()
//	engine, err := recsync.New(recsync.Config{Store: st, Instance: hostname, ...})
//
// # Concurrency
//
// Three mechanisms, all checked inside the one transaction of
// [Store.Commit]:
//
//   - Leases with fencing tokens serialise cycles: one instance per
//     pipeline runs a cycle at a time ([Store.AcquireLease] is a
//     compare-and-set on the lease's row, under SELECT ... FOR UPDATE). A
//     commit carrying a lease locks the lease's row and is refused with
//     [store.ErrStale] unless its token and holder are still current: an
//     instance that paused past its lease cannot overwrite the next
//     holder's work, and the row lock orders the check against a takeover.
//
//   - Optimistic revisions protect every record state: a state is written
//     only if its stored revision is still the one the engine loaded
//     (UPDATE ... WHERE rev = $loaded, or an INSERT that must not collide
//     for a new key), so no update is lost even when a lease expired
//     mid-cycle or a host commits without a lease. One stale state makes
//     the whole commit fail with [store.ErrStale] naming the key, and
//     nothing of it is applied.
//
//   - The audit log's Seqs are checked in the same transaction: a commit
//     with audit entries takes an advisory lock of the schema's log (after
//     the lease's row, before any other row), reads the head and refuses
//     entries that do not continue it with [store.ErrStale]. The primary
//     key on seq refuses a second entry with one Seq whatever happens (as
//     [store.ErrStale] too), which is what decides under a default
//     isolation above READ COMMITTED, where the head read may be older
//     than the lock.
//
// Leases are taken and expire by the database server's clock
// (clock_timestamp(), read in the statement that reads the lease row), so
// instances on hosts whose clocks disagree still agree on who holds a
// lease; [WithClock] replaces it (tests).
//
// # Schema
//
// The tables are created and migrated by the library from embedded SQL
// files (migrations/0001_init.sql, 0002_values_audit.sql, ...); the
// schema_version table records what was applied. Migrations run in one transaction under
// pg_advisory_xact_lock, so instances starting together do not race. A
// schema newer than this library knows is refused with [ErrNewerSchema]
// and left untouched. States and dead letters are stored as opaque bytes
// (the engine's encoding, never interpreted here) beside the columns that indexes need: key (in the
// "C" collation, so that key order is Go's byte order), rev, pending and
// held (with partial indexes), so that [Store.Pending] and [Store.Held]
// are index scans, and [Store.Keys] an index range scan in byte order.
// The engine's values (engine_values, by name) and the audit log
// (audit_log, by seq) are bytea beside their primary keys; AuditEntries and
// AuditHead are index range scans. Keys, names and cursors must therefore be valid UTF-8
// without NUL bytes (PostgreSQL text); others are refused with [ErrBadText].
//
// # Damaged rows
//
// Every state, dead letter, value and audit entry is stored with a CRC-32C
// of its Data (a state's bound to its key, a value's to its name, an
// entry's to its seq): a row changed behind the store's back, or damaged,
// makes the read that meets it (Load, DeadLetters, DeadLetter, Value,
// AuditHead, AuditEntries) fail with [ErrDamaged] naming it (an audit entry
// deleted from the middle of the log is a gap, reported the same way), never return changed data. Rows written before checksums existed load as
// they are and gain one when next committed; a change to such a row that
// still decodes cannot be detected.
//
// # CockroachDB
//
// CockroachDB speaks the same protocol, and the statements used here
// (ON CONFLICT, FOR UPDATE, partial indexes, = ANY, COLLATE "C") exist
// there, but this package is tested on PostgreSQL only. What would differ:
// pg_advisory_xact_lock is a no-op stub before CockroachDB v26 (concurrent
// first migrations then rely on schema_version's primary key: the loser
// fails and must be retried); transactions are SERIALIZABLE and may fail
// with retryable errors (SQLSTATE 40001) that callers would have to retry
// (the engine retries a failed commit in its next cycle); bigserial ids are
// unique but not sequential, so dead letters would only be roughly ordered.
package pgstore
