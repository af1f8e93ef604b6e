// Package boltstore is a durable [recsync.Store] in one local file, on the
// embedded key/value database bbolt (go.etcd.io/bbolt). It suits a host that
// runs one engine instance per pipeline and wants its sync state to survive
// restarts without running a database server. Several engines in one
// process may share one Store; several processes may not share one file
// (use the PostgreSQL store for that).
//
// # Use
//
//	st, err := boltstore.Open("/var/lib/myhost/concord.db")
//	if err != nil {
//		return err
//	}
//	defer st.Close()
//	engine, err := recsync.New(recsync.Config{Systems: systems, Store: st})
//
// Open creates the file if it does not exist. While a Store is open the file
// is locked; a second Open of the same file (from this process or another)
// waits [WithTimeout] (one second by default) and then fails with
// [ErrLocked], instead of hanging.
//
// Every Commit is one bbolt read-write transaction, fsynced before Commit
// returns (bbolt's default): a commit that returned survives the death of
// the process and of the machine; one that did not return is absent as a
// whole.
//
// # File layout, format version 1
//
// Integers are big-endian. Buckets and keys:
//
//	meta         "kind"       "concord/boltstore" (what marks the file as ours)
//	             "format"     uint64: the format version ([FormatVersion])
//	             "epoch"      uint64: the current epoch ([recsync.Store.Epoch])
//	             "generation" uint64: incremented by every write transaction
//	actors       name -> uint32 actor number; the bucket's sequence is the last number given
//	cursors      system ID -> cursor
//	states       record key -> uint64 rev, then the state encoded by internal/statecodec
//	pending      record key -> empty: the states whose RecordState.Pending() is true
//	held         record key -> empty: the states whose RecordState.Held() is true
//	deadletters  uint64 sequence -> dead letter encoded by internal/statecodec
//	leases       lease name -> uint64 token, one length byte and the expiry
//	             (time.Time.MarshalBinary), then the holder
//
// The revision before the encoded state lets Commit check revisions without
// decoding, and the pending and held buckets make [Store.Pending] and
// [Store.Held] index scans. The statecodec encoding carries its own version;
// states are re-encoded in the newest one whenever they are committed.
//
// # Format versions and migration
//
// Open reads the format version before anything else. A file of an older
// version is migrated in the same transaction that opens it (all steps or
// none); a file of a newer version (written by a newer Concord) is refused
// with [ErrNewerFormat] and not written to. A file that is not a bbolt
// database, or is one without the meta bucket and not empty, is refused with
// [ErrNotAStore] and never opened for writing: Open inspects existing files
// read-only first. Version 1 is the first format: there is nothing to
// migrate from yet; the next format adds its step to the list in format.go.
//
// # Restore detection
//
// The engine derives idempotency keys from the store's epoch and counters.
// If the file is replaced by an older copy (restored from a backup), the
// counters would be issued again; so the epoch must change. To notice, the
// store keeps a generation counter in the file, incremented by every write,
// and after every write it records that generation in a sidecar file
// "<path>.witness" (written to a temporary file and renamed; not fsynced, so
// after a power failure it may lag behind, which is harmless). When Open
// finds a witness with a generation greater than the file's, the file is
// older than what this store already wrote: Open moves to a new epoch with
// [recsync.NextEpoch], sets the generation past the witness's (so that
// generations never repeat), logs a warning and reports it by
// [Store.Restored]. A missing or unreadable witness is no restore. Copy or
// delete the witness together with the file when moving a store on purpose
// with its history; hosts that restore by other means call
// [Store.NewEpoch].
package boltstore
