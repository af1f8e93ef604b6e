// Package boltstore is a durable [store.Store] in one local file, on the
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
// # Damaged files
//
// Opening or reading a damaged file returns an error wrapping [ErrDamaged]
// that names the file and what is wrong (the page, or the record key, dead
// letter, actor, cursor, lease, value or audit entry); it never panics, never crashes the
// process and never returns changed data. Open checks an existing file
// twice before it writes to it, reading the whole file each time (so
// opening costs about two reads of the file):
//
//  1. With ordinary reads, before bbolt maps it: the meta pages, the file
//     size against the page count they give (a truncated file would make
//     bbolt read past the end of its mapping and die of SIGBUS), the
//     freelist, and every page of every bucket (page numbers in range,
//     page types, element offsets inside their page, keys in order, no
//     page reached twice, every page either in use or free).
//  2. Through bbolt: every value's checksum (CRC-32C over the bucket, the
//     key and the value, so a changed key is found too), and every
//     bucket's number of entries against the count in the meta bucket (so
//     a lost entry is found).
//
// Load, Cursor, DeadLetters and the other reads verify the checksum of
// every value they return, so damage that happens while the store is open
// is found when the value is read. Every call into bbolt runs with its
// panics recovered and with memory faults turned into panics
// (debug.SetPanicOnFault), each then reported as ErrDamaged.
//
// bbolt keeps two meta pages and uses the older one if the newer one is
// invalid, as after a write torn by a power failure. If that older
// transaction is behind the witness (below), the newer one had returned to
// its caller, so falling back would lose commits silently: Open refuses the
// file with ErrDamaged instead. A damaged file is never repaired: restore
// it from a backup (which the witness then detects as a restore).
//
// # File layout, format version 3
//
// Integers are big-endian. Every value except "kind" and "format" is
// sealed: followed by its CRC-32C (internal/checksum's Seal) over the
// bucket name, the key and the value. Buckets and keys (the sizes are
// those of the values before the checksum):
//
//	meta         "kind"       "concord/boltstore" (what marks the file as ours)
//	             "format"     uint64: the format version ([FormatVersion]), not sealed
//	             "epoch"      uint64: the current epoch ([store.Meta])
//	             "generation" uint64: incremented by every write transaction
//	             "actorseq"   uint64: the last actor number given
//	             "deadseq"    uint64: the last dead letter number given
//	             "count/<bucket>" uint64: the number of entries in each bucket below
//	actors       name -> uint32 actor number
//	cursors      system ID -> cursor
//	states       record key -> uint64 rev, then the state's Data (the engine's encoding)
//	pending      record key -> empty: the states committed with State.Pending set
//	held         record key -> empty: the states committed with State.Held set
//	deadletters  uint64 number -> the dead letter's Data (the engine's encoding)
//	leases       lease name -> uint64 token, one length byte and the expiry
//	             (time.Time.MarshalBinary), then the holder
//	values       value name -> the engine's value (possibly empty)
//	audit        uint64 Seq -> the audit entry's Data; Seqs run 1 .. count/audit
//
// The store never interprets Data: the revision before it lets Commit check
// revisions, and the pending and held buckets make [Store.Pending] and
// [Store.Held] index scans; [Store.Keys] and [Store.AuditEntries] are
// cursor seeks (the audit keys are big-endian, so key order is Seq order),
// whose cost does not grow with the number of states or entries. The engine's encoding carries its own version
// and (from its format 3) its own checksum; the engine re-encodes states in
// its newest format whenever it commits them. Only the migration from
// format 1 decodes states and dead letters, to check them.
//
// # Format versions and migration
//
// Open reads the format version before anything else. A file of an older
// version is migrated in the same transaction that opens it (all steps or
// none); a file of a newer version (written by a newer Concord) is refused
// with [ErrNewerFormat] and not written to. A file that is not a bbolt
// database, or is one without the meta bucket and not empty, is refused with
// [ErrNotAStore] and never opened for writing: Open inspects existing files
// read-only first.
//
// Format 3 added the values and audit buckets (and their counts); a format
// 2 file, checked whole as usual, is migrated by adding them empty (a
// format 1 file goes through both steps). Format 1 (Concord before
// checksums) had format 2's buckets with unsealed values, empty values in
// pending and held, no counts, and the actor and
// dead letter sequences in bbolt's bucket sequences. Migration to format 2
// checks every value as format 1 wrote it (states and dead letters
// decoded, sizes and sequences checked; a value that fails is ErrDamaged and
// the file is left unchanged), then seals it and writes the counts and
// sequences. A value changed on disk before the migration, in a way that
// still decodes, cannot be told apart: format 1 had nothing to check it
// against. To go back to a Concord that writes format 1, restore a backup
// of the file from before the migration (each format refuses files of the
// next with its ErrNewerFormat).
//
// # Restore detection
//
// The engine derives idempotency keys from the store's epoch and counters.
// If the file is replaced by an older copy (restored from a backup), the
// counters would be issued again; so the epoch must change. To notice, the
// store keeps a generation counter in the file, incremented by every write,
// and after every write it records that generation in a witness file,
// "<path>.witness" unless [WithWitness] names another (written to a
// temporary file and renamed; not fsynced, so after a power failure it may
// lag behind, which is harmless).
//
// What Open detects:
//
//   - The file is older than its witness (generation below the witness's):
//     the file was restored from a backup, or replaced by an older copy.
//     Open moves to a new epoch with [store.NextEpoch], sets the
//     generation past the witness's (so that generations never repeat),
//     logs a warning and reports it by [Store.Restored].
//   - The file is missing, empty (0 bytes) or an empty bbolt database, and
//     the witness records a generation above 0: the store's state was lost.
//     Open fails with [ErrMissing] unless the host passes [StartFresh],
//     which starts an empty store with a new epoch (Restored reports true).
//   - The file is damaged ([ErrDamaged], above), including a newest meta
//     page that is invalid while the witness shows its transaction had
//     returned.
//
// What Open does not detect:
//
//   - The file and its witness restored together (the whole folder from
//     one backup, a volume snapshot, a copied directory): both say the same
//     older generation, and nothing in the folder remembers more. Keep the
//     witness where such a restore does not reach, with [WithWitness] (on
//     another volume, outside the backed-up directory); then it is detected
//     like any other older file.
//   - A missing, unreadable or deleted witness: with no witness there is
//     nothing to compare, so the file is taken as it is (an unreadable
//     witness is logged).
//   - A restore of a copy taken after the last write that the witness
//     recorded: a witness lags behind the file by up to the writes since
//     its last successful update (after a power failure, or when writing
//     it failed, which is logged), and a copy from within that window looks
//     current. Such a copy lost nothing the witness knew of.
//   - A copy of another store (a different pipeline's file) put in place of
//     this one, if its generation is not below this store's witness: the
//     witness records only a generation, not which store wrote it.
//
// Copy or delete the witness together with the file when moving a store on
// purpose with its history; hosts that restore by other means call
// [Store.NewEpoch].
package boltstore
