// Package concord is the shared vocabulary of Concord, an embeddable library
// that keeps several business systems in agreement about the same records.
//
// The package holds only plain types and imports only the standard library:
//
//   - [Record]: one entity as a system holds it: a key, fields, and the
//     system's own modification time and version tag when it has them.
//   - [Value]: a JSON-compatible field value with one canonical equality
//     ([EqualValues]) and one canonical hash ([HashValue]), so that whether a field
//     changed never depends on map order, 1 versus 1.0, json.Number or the
//     time zone a time was written in.
//   - [Version]: a version vector over actors (the configured systems), with
//     [Version.Compare] returning [Before], [After], [Equal] or [Concurrent].
//
// # Version vectors, by example
//
// Every field (or field group, see package sync) carries a Version. Each
// configured system is an [Actor]; the engine gives each actor a small
// number. When the engine sees system A edit a field, the field's new
// version is the version A last held, incremented at A:
//
//	canonical:          {}            value "Main St 1"
//	A edits:            {A:1}         value "Main St 2"   {A:1} is After {}: it wins
//	B edits, having     {A:1}         value "Main St 3"   {A:1,B:1} After {A:1}: it wins
//	seen A's edit:      -> {A:1,B:1}
//
// If instead B edited while still holding {} (before A's edit reached it),
// B's version is {B:1}. {A:1} and {B:1} are Concurrent: neither system saw
// the other's edit, so this is a real conflict, handed to a resolver. The
// resolved value gets the join of the competitors, {A:1,B:1}, which is
// After both, so the same conflict is never raised twice.
//
// Versions are small sorted slices of [Dot]s; comparing two of them
// allocates nothing. They are never pruned: a vector that would grow past
// [MaxDots] actors is an error ([ErrVersionFull]), because pruning silently
// turns concurrent edits into ordered ones.
package concord
