// Package state is the engine's state of a record as it persists it: the
// canonical values with a version per unit (field or field group), what
// each system holds ([View], [Copy]), the units waiting for a person
// ([Hold]), and the codec that turns a [Record] or a [DeadLetter] into bytes
// for a store (sync/store's State.Data and DeadLetter.Data). Stores and
// hosts never see these types: to them the encoding is opaque. Only the
// engine (package sync) and its tests import this package; it imports
// neither sync nor any store.
//
// In memory, a record's units and each view's copies, native hashes and
// attempts are [Table]s: one slice each, sorted by name. Decoding one is
// one allocation, cloning one a copy, and code that needs two of them
// (which units a system lacks: [Record.Behind]; the encoder's name table)
// walks them side by side instead of looking names up. A view of every
// unit holds each at the index the record's Units does ([Table.At]).
// Code changes a Table only with its methods; [Record.CheckTables] checks
// the order, and with [Strict] (set by the engine's tests and the
// simulation) every record encoded is checked: a broken one panics with
// an error wrapping [ErrBrokenTable].
//
// # Encoding, format version 3
//
// Every encoding starts with a 4-byte header: the magic "CSR" (record state)
// or "CSD" (dead letter), then the format version (a state: 6, see "Version
// 6" below; a dead letter: 3, 4 if it holds a sealed value, see below). A decoder rejects an
// unknown magic (a foreign or corrupt file) and a newer version (written by
// a newer Concord) with errors that say which. Integers are varints
// (encoding/binary), strings and byte strings are length-prefixed, versions
// are concord.Version.AppendBinary, hashes are 8 bytes big-endian.
//
// A time is a zone byte (0: UTC, 1: a zone), the Unix seconds (varint) and
// nanoseconds (unsigned varint), then for a zone its offset in seconds
// (varint) and its name (string). It holds every time.Time, including zone
// offsets that are not whole minutes (which time.Time.MarshalBinary
// refuses); a decoded time is the same instant with a zone of the same name
// and offset (time.FixedZone; the Local zone is not restored as Local).
//
// Values keep their Go type, so that what was stored compares equal
// (concord.EqualValues) to what a system reports, hashes the same, and is
// still of the type it was: a one-byte tag, then
//
//	z nil   f false   t true   s string   b []byte
//	i int64   u uint64 (varints)
//	I int, int8, int16, int32: a width byte (0, 8, 16, 32), then a varint
//	U uint, uint8, uint16, uint32: a width byte, then an unsigned varint
//	d float64 (8 bytes)   g float32 (4 bytes)
//	n json.Number (its text)   T time.Time   l []any   L []string
//	m map[string]any (keys sorted)   M map[string]string (keys sorted)
//
// The encoder encodes every value that concord.CheckValue accepts, and more
// (invalid UTF-8, any time, any json.Number text), so that a dead letter
// keeps what a system sent; it refuses other Go types and nesting deeper
// than concord.MaxValueDepth, which the decoder would refuse.
//
// # Version 1
//
// Version 1 (still read) had no b, I, U and g tags (every signed integer
// was stored as int64, every unsigned one as uint64, a float32 as a
// float64) and stored times as time.Time.MarshalBinary, which cannot hold
// a zone offset of −0:01:15 (Europe/London before 1847).
//
// Version 2 also adds, after each system view's Parked flag, the writes attempted
// and not yet confirmed (View.Sent): a count of units, then per unit its
// name, a count, and that many (hash, version) pairs; and, at the end of a
// dead letter, the names of its fields kept as text (DeadLetter.Textual) and
// whether its record is whole (DeadLetter.Whole).
// Version 1 data decodes with neither.
//
// # Version 3
//
// Version 3 appends to every encoding the CRC-32C (Castagnoli, 4 bytes,
// big-endian) of everything before it, header included, so that damage is
// found whatever store kept the bytes; and, at the end of a dead letter
// (before the checksum), the record's per-field modification times
// (concord.Record.FieldModified): a count, then (field, time) pairs in
// field order. Versions 1 and 2 carry no checksum (the durable stores
// sealed them with their own) and decode as before.
//
// # Version 4: sealed values
//
// A [Codec] with a Sealer seals the value of every sensitive field wherever
// the encoding holds one: the canonical values, each unit's previous
// values, a hold's candidates and base, and a dead letter's record as the
// system sent it and as transformed. In the place of the value it writes
// the tag S, then (length-prefixed) the sealed bytes of the value's
// encoding as above (tag included; a map or list is sealed whole), sealed
// with the associated data seal.AAD(Codec.Context, record key, field name),
// the record key being a dead letter's Key. A sealed value moved to
// another record or field, or to another Context, does not open; one moved
// within its record and field (a previous value put back as the current
// one, an older encoding of the record restored) does: the associated data
// binds a value to where it belongs, not to when. The
// field names, the hashes of View and everything that is not the value of
// a field stay in the clear.
//
// An encoding that holds a sealed value is format version 4; one that holds
// none is still written as version 3, byte for byte as before. The version
// changes, rather than version 3 gaining a tag, so that a Concord from
// before sealing refuses sealed data as written by a newer Concord
// ([ErrNewerFormat]: nothing is wrong with it) rather than as damaged. A
// version 3 encoding holding the S tag is corrupt.
//
// # Version 6: compact states
//
// A state is written in format 6 (dead letters are not: they keep format 3
// or 4); [Codec.EncodeLegacyState] still writes formats 3 to 5, and every
// one of them still decodes to the same Record. Format 6 holds what
// format 5 holds, values encoded exactly as there (tag S for a sealed
// value included: sealed values and candidates' authors are simply part of
// format 6), the CRC-32C trailer as in format 3; it writes the rest
// compactly, so that a 20-field record of two systems takes about 18 bytes
// of metadata per field rather than about 140. After the header:
//
//   - a flags byte (1: Deleted), the key (a string), Rev (an unsigned
//     varint), Diverged (a time, see below);
//   - the name table: every unit and field name the record holds, sorted,
//     each once, as a count, then per name the length of the prefix it
//     shares with the name before (at most 63) and the rest (a string).
//     Everywhere else a name is its index in the table;
//   - Fields as a name set, then the value of each name in order. A name
//     set is an unsigned varint, count<<1|mode, then for mode 0 the gaps
//     between successive indices (the first index, then each less the one
//     before less one), for mode 1 a bitmap over the table (bit i of byte
//     i/8, least significant first), whichever is shorter;
//   - Units as a name set, then per unit a flags byte (1 Prev.Values
//     present, 2 Prev.Deleted, 4 held, 8 Version, 16 Winner, 32 Rule, 64
//     Prev.Version the same as the unit before's; for the first unit, "the
//     unit before" is the zero Unit), the Version, Winner and Rule unless
//     the same, Changed, Modified, the Prev values (a name set and values),
//     Prev.Version unless the same (a unit whose three are zero decodes
//     with a nil Prev), and for a held unit the hold: the count
//     of candidates, each as its System, a flags byte (1 Canonical, 2
//     Deleted, 4 Values present), its Values, Version, Modified and By;
//     then a flags byte (1 Base present, 2 BaseKnown), the Base, Rule,
//     Reason (a plain string) and Since;
//   - the views, as a count and per view in system order: its system, a
//     flags byte (1 Seen, 2 Deleted, 4 Parked, 8 failing: Attempts,
//     FirstFailed and LastError follow at the end, 16 Sent follows at the
//     end, 32 Partial), Tag (a plain string), Modified, Units as a name set and per
//     unit a copy, Native as a name set and per field a hash kind byte and
//     the hash, then the failing details and Sent (a name set, and per
//     unit the count of copies and the copies).
//
// System names, rules, winners, authors and zone names are strings of the
// record's string table: an unsigned varint r, 0 followed by the string
// (which joins the table), or r-1 the index of a string before. Versions
// likewise: 0 the zero Version, 1 followed by a version (which joins the
// version table: its number of dots, then per dot the actor, after the
// first as the gap from the actor before less one, and the counter), r
// the (r-2)-th version of the table. A decoded record shares one Version
// value among the places that hold it (Versions are immutable).
//
// The strings of a decoded record (key, tags, errors, reasons, string
// values, strings of the table longer than 64 bytes) are substrings of one
// copy of its encoding, if that is at most 16 KiB: a string kept from the
// record keeps that copy alive. Everything of it that can be changed (maps,
// Tables, Units, Views, Sent lists, []byte values) is its own.
//
// A time is an unsigned varint: the kind in the low 3 bits, for a delta
// kind the zigzag nanoseconds from the reference time above them. The
// reference is the previous time of the same slot (units' Changed, units'
// Modified, views' Modified, views' FirstFailed, hold times, Diverged),
// or for the first of a slot the previous time of any; a delta spans less
// than 2^29 seconds. Kinds: 0 the zero time.Time (UTC); 1 a delta, in the
// reference's zone; 2 UTC, the Unix seconds (varint) and nanoseconds
// (unsigned varint) follow; 3 a delta in another zone, 4 absolute in a
// zone (seconds and nanoseconds follow), the offset (varint) and the zone
// name (a string of the table) following either; 5 a delta, in UTC, from
// a time in a zone. A time keeps its instant, zone name and offset, as in
// format 3.
//
// A copy (a view's unit, or a write in Sent) is a flags byte, its hash
// kind in the low 3 bits and 8 if its version is the canonical unit's,
// then the hash as its kind says and the version unless it is the
// canonical one. Hash kinds: 0 eight bytes big-endian; 1 an unsigned
// varint of fewer than 8 bytes; 2 predicted; 3 the hash of the same unit
// (or native field) in the view before; 4 zero ([NoValue]); 5 (native
// hashes only) the view's hash of the unit of that name. A predicted hash
// is computed from the canonical value v of the field of that name
// (Fields): for a copy, concord.HashBytes of the name, a zero byte and
// concord.AppendCanonical(v), the engine's hash of a single-field unit;
// for a native hash, concord.HashValue(v). It is what a system that holds
// the canonical value reports, so that a synced record stores no hash at
// all; format 6 thus relies on those hashes being stable, as their
// documentation promises.
//
// Decoding does not trust the content past the checksum either: every
// count is bounded by the bytes left, every index and reference checked,
// names must be strictly increasing and systems too, flags carry no
// unknown bit, and what the encoder never writes (a time that should have
// been shorter: the zero time, or the reference's zone, written out; a
// hash kind with nothing to refer to; an empty Sent list)
// is refused as corrupt. A decoded record holds nothing of its input.
//
// Migration path: a new format gets a new version number; Decode keeps
// reading every older version, and the engine re-encodes states in the newest
// version whenever it commits them, so no offline migration is needed.
package state
