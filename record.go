package concord

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"
)

// SystemID names one configured system ("portal", "warehouse"). Names are
// chosen by the host and must be stable: the engine's state is keyed by them.
type SystemID string

// Record is one entity as one system holds it.
//
// Fields absent from the map are not known to (or not reported by) the
// system: the engine leaves them alone. A field present with a nil value is
// known to be empty. A Record with Deleted set says the entity was deleted in
// the system; its Fields are ignored.
//
// Records are passed by value but share their Fields map: code that receives
// a Record must not modify its Fields; use [Record.Clone] to get a copy that
// may be modified.
type Record struct {
	// Key identifies the entity; the same key names the same entity in
	// every system (map system-specific identifiers in a Transformer).
	Key string
	// Fields holds the values, by field name.
	Fields map[string]Value
	// Deleted reports that the entity no longer exists in the system.
	Deleted bool
	// Modified is the system's own modification time of the record, zero
	// if the system does not report one. It breaks ties between
	// concurrent edits; it never decides causality.
	Modified time.Time
	// FieldModified optionally gives the system's own modification time
	// of individual fields, for systems that keep a field history.
	// Last-writer-wins compares a unit by the latest time of its fields
	// listed here, and falls back to Modified for a unit with none: a
	// record's time says nothing about when one of its fields changed.
	// Code that receives a Record must not modify the map.
	FieldModified map[string]time.Time
	// Tag is the system's opaque version tag (an ETag, a row version),
	// empty if the system has none. Writes use it as a precondition.
	Tag string
	// By names who made the record's latest change in the system (a user
	// name, an e-mail), when the system says; empty otherwise. A change
	// held for approval remembers it, and the engine refuses an approval
	// by that same person (four eyes).
	By string
}

// ErrNoKey is returned (wrapped in a [*RecordError]) for a record without a
// key.
var ErrNoKey = errors.New("record has no key")

// MaxKeyBytes is the longest record key, in bytes, that [Record.Validate]
// accepts. Every store indexes records by key, and none holds any length:
// PostgreSQL's B-tree entries stop at about 2.7 KB, bbolt's keys at 32 KB.
// A record whose key a store cannot hold would fail every commit of the
// pipeline; refused at the boundary, it is dead-lettered alone.
const MaxKeyBytes = 2048

// QuoteKey quotes a record key for a message, as [RecordError] shows it:
// whole, or, past 128 bytes, its start and its length (an overlong key
// refused by [Record.Validate] would otherwise fill a log line).
func QuoteKey(key string) string {
	const shown = 128
	if len(key) <= shown {
		return fmt.Sprintf("%q", key)
	}
	return fmt.Sprintf("%q… (%d bytes)", strings.ToValidUTF8(key[:shown], ""), len(key))
}

// RecordError reports a record that cannot be used, naming the record, the
// field when one field is at fault, and the reason.
type RecordError struct {
	System SystemID // empty when not known
	Key    string
	Field  string // empty when the record as a whole is at fault
	Err    error
}

// Error names the system, record and field and says why. A key longer than
// 128 bytes is shown by its start and its length (Key holds all of it).
func (e *RecordError) Error() string {
	s := "record " + QuoteKey(e.Key)
	if e.System != "" {
		s = string(e.System) + ": " + s
	}
	if e.Field != "" {
		s += " field " + fmt.Sprintf("%q", e.Field)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }

// Validate checks that r has a key, that the key is valid UTF-8 of at most
// [MaxKeyBytes] without a NUL byte (what every store can index), that
// every field name is valid UTF-8, and that every field holds a supported
// [Value] (see [CheckValue]). The error is a [*RecordError] naming the record and the
// first bad field (in field-name order), wrapping a [*ValueError] that says
// why; errors.Is(err, [ErrUnsupportedValue]) holds for every error but
// [ErrNoKey].
func (r Record) Validate() error {
	if r.Key == "" {
		return &RecordError{Err: ErrNoKey}
	}
	if !utf8.ValidString(r.Key) {
		return &RecordError{Key: r.Key, Err: badValue("", r.Key, "record key is invalid UTF-8")}
	}
	if len(r.Key) > MaxKeyBytes {
		return &RecordError{Key: r.Key, Err: badValue("", r.Key, fmt.Sprintf("record key is %d bytes, more than %d (MaxKeyBytes)", len(r.Key), MaxKeyBytes))}
	}
	if strings.IndexByte(r.Key, 0) >= 0 {
		return &RecordError{Key: r.Key, Err: badValue("", r.Key, "record key holds a NUL byte")}
	}
	// Most records are valid: check them in map order, without sorting
	// the names; only an invalid record pays for the sort that makes the
	// error name the first invalid field in name order, every time.
	for name, v := range r.Fields {
		if !utf8.ValidString(name) || CheckValue(v) != nil {
			return r.firstInvalid()
		}
	}
	return nil
}

// firstInvalid returns the error of r's first invalid field, in name order.
func (r Record) firstInvalid() error {
	for _, name := range sortedKeys(r.Fields) {
		if !utf8.ValidString(name) {
			return &RecordError{Key: r.Key, Field: name, Err: badValue("", name, "field name is invalid UTF-8")}
		}
		if err := CheckValue(r.Fields[name]); err != nil {
			return &RecordError{Key: r.Key, Field: name, Err: err}
		}
	}
	return nil
}

// Clone returns a copy of r whose Fields map, and every map and slice nested
// in it, may be modified without affecting r.
func (r Record) Clone() Record {
	r.Fields = CloneFields(r.Fields)
	r.FieldModified = maps.Clone(r.FieldModified)
	return r
}

// CloneFields returns a deep copy of fields (see [CloneValue]): the map, and
// every map and slice nested in its values, may be modified without
// affecting fields. A nil map stays nil, and an empty one stays empty and
// non-nil.
func CloneFields(fields map[string]Value) map[string]Value {
	if fields == nil {
		return nil
	}
	out := make(map[string]Value, len(fields))
	for k, v := range fields {
		out[k] = CloneValue(v)
	}
	return out
}

// CloneValue returns a deep copy of the maps and slices (including []byte)
// in v; other values are returned as they are.
func CloneValue(v Value) Value {
	switch x := v.(type) {
	case []byte:
		if x == nil {
			return x
		}
		return append([]byte{}, x...)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = CloneValue(e)
		}
		return out
	case []string:
		return append([]string(nil), x...)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = CloneValue(e)
		}
		return out
	case map[string]string:
		return maps.Clone(x)
	}
	return v
}
