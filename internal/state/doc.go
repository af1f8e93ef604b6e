// Package state is the engine's state of a record as it persists it: the
// canonical values with a version per unit (field or field group), what
// each system holds ([View], [Copy]), the units waiting for a person
// ([Hold]), and the codec that turns a [Record] or a [DeadLetter] into bytes
// for a store (sync/store's State.Data and DeadLetter.Data). Stores and
// hosts never see these types: to them the encoding is opaque. Only the
// engine (package sync) and its tests import this package; it imports
// neither sync nor any store.
//
// # Encoding, format version 3
//
// Every encoding starts with a 4-byte header: the magic "CSR" (record state)
// or "CSD" (dead letter), then the format version (3; 4 if the encoding
// holds a sealed value, see below). A decoder rejects an
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
// Migration path: a new format gets a new version number; Decode keeps
// reading every older version, and the engine re-encodes states in the newest
// version whenever it commits them, so no offline migration is needed.
package state
