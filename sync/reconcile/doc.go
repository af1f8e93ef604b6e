// Package reconcile compares the full record sets of two or more systems,
// in canonical form, and says what differs, why, and which side should win.
//
// Each [Side] is a system's [connector.Scanner] (read every live record,
// page by page, in the system's own key order) and its inbound
// [transform.Transformer] (system shape to canonical shape). [Run] reads
// every side, compares the canonical records key by key and field by field
// with [concord.EqualValues] semantics (through [concord.HashValue]), and
// returns a [Report]: how many records it checked on each side, every
// [Difference] with its [Class], counts by class and field, and a repair
// [Plan]. [ApplyRepairs] carries the plan out through a [Repairer] (the
// engine, as ordinary audited changes). [CountCheck] is the one-call special
// case that only counts the records a filter selects on two sides.
//
// # Algorithm: hash partitions, then a detail pass over differing keys
//
// Systems do not share a key order (a SQL collation is not byte order), so
// reconcile does not rely on one. It makes two passes over every side:
//
//  1. Index. Every record is transformed and reduced to 16 bytes: a 64-bit
//     hash of its canonical key and a 64-bit hash of its compared fields (a
//     sum over fields of a mix of the field name's hash and the value's
//     [concord.HashValue], so field order does not matter and an absent
//     field differs from an empty one). The pair goes into one of 256
//     buckets chosen by the key hash's top bits. When every side is read,
//     each bucket is sorted by key hash on every side and the sides are
//     merged; a key hash whose record hashes are not all equal, or that is
//     absent from some side, or that appears twice on one side, is marked.
//     A bucket is released as soon as it is merged.
//  2. Detail. Only if something was marked, every side is scanned again
//     and only the records whose key hash is marked are kept, in full
//     canonical form, and compared field by field. When a side's
//     Transformer kept every key as it was in pass 1, pass 2 tests the
//     system's own key before transforming, so it costs about one scan.
//
// A key marked in pass 1 whose records agree in pass 2 changed while the
// check ran: it is counted in [Report.Settled], not reported. Hash
// collisions cannot hide a missing record: two keys with the same hash are
// told apart by their strings in pass 2; two different records of the
// same key whose field hashes sum to the same 64 bits would be taken as
// equal (a chance of about 2⁻⁶⁴ per record for data that is not built to
// collide).
//
// # Memory bound
//
// Pass 1 holds 16 bytes per record per side (plus the slack of 256
// growing slices, under a quarter, and less when a [connector.ScanStarter]
// gives an estimate), and one page of records per side at a time. Pass 2
// holds one page per side, the set of marked key hashes, and the canonical
// records of the marked keys only. So for two sides of n records each with
// d differing keys the peak is about 32·n bytes plus d full records:
// 32 MB for 10⁶ records a side, whatever the records' size. The benchmark
// BenchmarkReconcile reports the measured peak per record.
//
// # Classes and repairs
//
// A difference is [Missing] (the record is on some sides only), [Conflicting]
// (values differ and the engine has no record of why), [Stale] (the engine
// knows a side is behind: a write to it failed or is held) or [InFlight]
// (the engine is writing it now, or will in this or the next cycle). The
// engine's knowledge comes through the [Knowledge] interface; without one,
// every difference is Missing or Conflicting.
//
// The plan picks a winner per difference: the system of record for the
// field ([Config.Owners]) if it holds the record, else the engine's
// canonical value when the engine knows it, else nobody: the difference
// needs a person. In-flight differences are left to the engine. A repair
// names the system to correct; deleting a record is never planned (a
// record missing from its owner needs a person).
//
// Run makes no writes and starts no goroutines; it reads sides one after
// the other. A check that read zero records on some side fails with
// [ErrNothingChecked]: a check of nothing is not a pass.
package reconcile
