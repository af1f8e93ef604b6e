// Package sqltable makes a table of any database/sql database a Concord
// system: a [connector.Connector] with [connector.Getter] and
// [connector.Scanner], configured in Go.
//
// The package takes a *sql.DB and imports no driver: the host opens the
// database with its own (github.com/jackc/pgx/v5/stdlib for PostgreSQL,
// modernc.org/sqlite for SQLite) and names the [Dialect].
//
//	orders, err := sqltable.New(sqltable.Config{
//		DB:        db,
//		Dialect:   sqltable.PostgreSQL,
//		Table:     "shop.orders",
//		Key:       []sqltable.Column{{Name: "id", Type: sqltable.Text}},
//		Fields:    []sqltable.Column{{Name: "status", Type: sqltable.Text}, {Name: "total", Type: sqltable.Decimal}},
//		UpdatedAt: "updated_at",
//		Version:   "version",
//	})
//
// # Names
//
// Every configured name (table, optionally "schema.table"; columns;
// sequence) must be a plain identifier, [A-Za-z_][A-Za-z0-9_]* of at most 63
// bytes: [New] refuses anything else with a [*ConfigError] naming it, so no
// configured string can change the SQL. Names are double-quoted in the SQL,
// so on PostgreSQL they must match the case they were created with. Values
// are always passed as parameters.
//
// # Keys
//
// Key columns are Text or Int64. With one key column the record key is its
// value (an Int64 in canonical decimal: "7", never "07"). With several, the
// values are escaped ("\" as "\\", "/" as "\/") and joined with "/": the
// row ("a/b", 7) is the record `a\/b/7`. [EncodeKey] and [DecodeKey] do
// this; the mapping is one to one, and a key that does not decode names no
// row (Get omits it, Apply fails it with connector.ErrPermanent and
// [ErrKey]).
//
// # Types
//
// Each field column declares a [Type]; values are read and written by the
// declared type, whatever the database's own typing:
//
//	Type     Go value      PostgreSQL column    SQLite storage
//	Text     string        text, varchar        TEXT
//	Int64    int64         bigint, int, ...     INTEGER
//	Float64  float64       double precision     REAL
//	Bool     bool          boolean              INTEGER 0 or 1
//	Decimal  json.Number   numeric              TEXT (the digits as written)
//	Bytes    []byte        bytea                BLOB
//	Time     time.Time     timestamptz          TEXT "2006-01-02 15:04:05.000000000", UTC
//
// A NULL is nil. Reading is lenient where SQLite is loose, and exact
// otherwise: a Bool column's 0/1 (or "true"/"false") is a bool, never
// int64(1); a Time column's text in any of SQLite's date formats (with or
// without zone; without is UTC), integer Unix seconds or a real Julian day
// is a time.Time in UTC; an Int64 column's integral real is an int64; a
// Decimal comes back as json.Number with the digits the database holds
// ("12.50" stays "12.50"). A stored value that cannot be read as the
// declared type (a Bool column holding 7) fails the call with
// connector.ErrPermanent and a [*FieldError] naming the record and column:
// fix the data or the declaration.
//
// Writing is strict. A patch value must be of the declared type: a string
// for Text (valid UTF-8, no NUL byte); an integer, an integral float or a
// json.Number in the int64 range for Int64; a finite number for Float64
// (integers only up to 2⁵³, which float64 holds exactly); a bool for Bool;
// a json.Number, a decimal string, an integer or a finite float (its
// shortest form) for Decimal, at most 1000 characters; a []byte for Bytes;
// a time.Time in years 1 to 9999 for Time. Anything else fails that patch
// with connector.ErrPermanent and a [*FieldError] naming record, field and
// reason, as does a field that is not a configured field column.
//
// What is not kept: PostgreSQL keeps microseconds, so times are truncated to
// the microsecond before writing (the Result and the feed report the stored
// value); PostgreSQL writes numeric in plain notation ("1e-7" comes back as
// "0.0000001", the same number) and a numeric(p, s) column pads to its
// scale; on SQLite, declare Decimal columns with TEXT affinity (TEXT, not
// NUMERIC or DECIMAL, which turn "12.50" into the real 12.5 and lose
// digits).
//
// # The change feed
//
// Changes come in (tracking value, key) order, where the tracking value is
// the UpdatedAt timestamp ([TrackUpdatedAt]) or a table-wide sequence value
// in the Version column ([TrackVersion]). The tracking column must never be
// NULL (rows where it is are not in the feed), must be set by every writer
// on every write, and should be indexed together with the key columns.
//
// Pages are cut by a (tracking value, key) cursor, `WHERE (updated_at, id) >
// (?, ?)`, so that rows sharing a timestamp are never dropped at a page
// boundary, however many there are. A pass reads forward until no row is
// left (Batch.More false). The next pass starts again a window before the
// last tracking value read (Config.Window, default 5 minutes; or
// Config.VersionWindow sequence values): rows re-read there that the cursor
// already delivered with the same content are skipped (the cursor remembers
// the last 256 rows; beyond that they are repeated, which the
// engine tolerates). So a row committed late with an earlier timestamp by a
// slow transaction is still delivered.
//
// The guarantee: every committed write is delivered by a later call (a
// repeat is possible, a miss is not), provided that every write's tracking
// value is within the window of the newest tracking value committed before
// it commits. For timestamps that means the window exceeds the longest write
// transaction plus the clock difference between writers (PostgreSQL's now()
// is the transaction's start time; the connector writes Config.Now()). For
// sequences it means fewer than VersionWindow values are taken while any
// write transaction is open: PostgreSQL assigns sequence values when a row
// is written, not when its transaction commits, so they commit out of order
// just like timestamps. A transaction longer than the window can be missed:
// choose the window from the database's statement and idle-in-transaction
// timeouts.
//
// Deletions appear in the feed only with a soft-delete column
// (Config.Deleted): rows marked deleted are reported with Deleted set. Rows
// removed with DELETE cannot be seen by the feed (only by comparing Scans).
//
// Cursors are opaque, checksummed and bound to the table and tracking they
// were made for: a damaged or foreign cursor fails with
// connector.ErrPermanent and [ErrCursor], never silently restarts.
//
// # Writes
//
// Apply writes each patch in its own transaction, so one failing patch
// never stops the others. An update sets only the named columns, plus
// UpdatedAt (to Config.Now()) and Version (version+1, or the next sequence
// value under TrackVersion); with Patch.IfMatch it is conditional on the
// Version column (or, without one, on the UpdatedAt value), and a mismatch
// fails with connector.ErrConflict. The Result carries the new tag (the
// Version, or UpdatedAt's text) and UpdatedAt as Modified. Without a Version
// column two writes within one tick of the clock share a tag: configure one
// for exact conditional writes.
//
// Create inserts, only with Config.AllowCreate, and fails with ErrConflict
// if a live row with the key exists; a soft-deleted row is brought back as
// a new record (its other fields emptied). Delete, only with
// Config.AllowDelete, sets the Deleted column (or removes the row without
// one); deleting a missing row succeeds. Refused writes fail with
// connector.ErrPermanent and [ErrNotPermitted]. Database errors are
// classified: constraint, data and SQL errors (a missing column) are
// permanent, everything else (busy, serialization failures, lost
// connections) transient. Patch.IdempotencyKey is not used: a retried
// update writes the same values again, which is harmless for field-level
// patches, but a retried Create of a record that was created meanwhile is
// a conflict.
package sqltable
