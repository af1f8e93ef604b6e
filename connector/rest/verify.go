package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// ErrMismatch is the cause of a read-after-write verification failure: the
// record read back after a successful write does not hold what was written.
// It is wrapped in a [*MismatchError].
var ErrMismatch = errors.New("read-after-write mismatch")

// FieldMismatch is one written field that read back differently.
type FieldMismatch struct {
	Field string // the field name
	Path  string // its JSON path
	Sent  any    // the value written, as JSON reads it back (times as strings)
	Read  any    // the value read back; nil when absent
}

// MismatchError reports a write that the API accepted but that a read of
// the record does not show. It carries both values of every disagreeing
// field. Final reports that the reverify queue gave up on it: the error is
// then permanent (the engine dead-letters the patch); otherwise it is
// transient and the write awaits another check.
type MismatchError struct {
	Key    string
	Fields []FieldMismatch // sorted by field name
	Checks int             // reads that disagreed so far
	Of     int             // Verify.Checks
	Final  bool
	Reason string // why it is final early (a full queue), or empty
}

// Error names the record and every field with both values.
func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rest: record %q: %v after %d of %d checks", e.Key, ErrMismatch, e.Checks, e.Of)
	if e.Reason != "" {
		b.WriteString(" (" + e.Reason + ")")
	}
	for i, f := range e.Fields {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "field %q (path %s) written %s, read back %s", f.Field, f.Path, jsonText(f.Sent), jsonText(f.Read))
	}
	if !e.Final {
		b.WriteString("; awaiting another check")
	}
	return b.String()
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// pendingWrite is a write in the reverify queue.
type pendingWrite struct {
	patch    connector.Patch // a deep copy
	sent     map[string]any  // field name -> value as JSON reads it back
	checks   int
	tag      string    // the tag the write reported
	modified time.Time // the modification time the write reported
}

// pendingFor returns the queued write that p repeats, if any. A patch for
// the same key that is not the same write supersedes the queued one, which
// is dropped.
func (conn *Connector) pendingFor(p connector.Patch) *pendingWrite {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	pw := conn.pending[p.Key]
	if pw == nil {
		return nil
	}
	if pw.patch.Create == p.Create && pw.patch.IdempotencyKey == p.IdempotencyKey && concord.EqualValues(mapOf(pw.patch.Set), mapOf(p.Set)) {
		return pw
	}
	delete(conn.pending, p.Key)
	return nil
}

func mapOf(m map[string]concord.Value) map[string]any { return m }

func (conn *Connector) forget(key string) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	delete(conn.pending, key)
}

// Pending returns how many writes wait in the reverify queue.
func (conn *Connector) Pending() int {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return len(conn.pending)
}

// verifyWrite reads the record back after a successful write and compares
// every written field.
func (conn *Connector) verifyWrite(ctx context.Context, p connector.Patch, doc map[string]any, res connector.Result) connector.Result {
	pw := &pendingWrite{patch: clonePatch(p), sent: map[string]any{}, tag: res.Tag, modified: res.Modified}
	for name := range p.Set {
		f, _ := conn.c.field(name)
		v, _, _ := f.path.Lookup(doc)
		pw.sent[name] = roundTrip(v)
	}
	return conn.check(ctx, pw, res, true)
}

// recheck reads a queued write's record again.
func (conn *Connector) recheck(ctx context.Context, pw *pendingWrite) connector.Result {
	return conn.check(ctx, pw, connector.Result{Key: pw.patch.Key, Tag: pw.tag, Modified: pw.modified}, false)
}

// check reads pw's record and settles pw: confirmed (the result), queued
// (a transient MismatchError) or given up (a permanent one).
func (conn *Connector) check(ctx context.Context, pw *pendingWrite, res connector.Result, first bool) connector.Result {
	c := conn.c
	key := pw.patch.Key
	rec, ok, err := c.get(ctx, key)
	switch {
	case err != nil && ctx.Err() != nil:
		res.Err = ctx.Err()
		return res
	case err != nil:
		// The write was accepted; only the check failed. Queue it
		// (checks unchanged) so that the retry checks again.
		if first && !conn.enqueue(pw) {
			res.Err = connector.Transient(fmt.Errorf("rest: record %q: write accepted, the read to verify it failed and the reverify queue is full: %w", key, err))
			return res
		}
		res.Err = connector.Transient(fmt.Errorf("rest: record %q: write accepted, the read to verify it failed: %w", key, err))
		return res
	case !ok && !pw.patch.Create:
		// Deleted since: someone else's change, which the feed reports.
		conn.forget(key)
		return res
	case !pw.modified.IsZero() && rec.Modified.After(pw.modified):
		// Changed since the write, by its own modification time: the
		// read shows someone else's later change, not a lost write.
		// (A different tag alone proves nothing: a lagging replica
		// shows an older one.)
		conn.forget(key)
		return res
	}
	var bad []FieldMismatch
	for _, name := range slices.Sorted(maps.Keys(pw.sent)) {
		if got := rec.Fields[name]; !covers(pw.sent[name], got) {
			f, _ := c.field(name)
			bad = append(bad, FieldMismatch{Field: name, Path: f.path.String(), Sent: pw.sent[name], Read: got})
		}
	}
	if len(bad) == 0 {
		conn.forget(key)
		if rec.Tag != "" {
			res.Tag = rec.Tag
		}
		if !rec.Modified.IsZero() {
			res.Modified = rec.Modified
		}
		return res
	}
	conn.mu.Lock()
	pw.checks++
	checks := pw.checks
	conn.mu.Unlock()
	me := &MismatchError{Key: key, Fields: bad, Checks: checks, Of: c.verify.Checks}
	switch {
	case checks >= c.verify.Checks:
		me.Final = true
	case first && !conn.enqueue(pw):
		me.Final, me.Reason = true, fmt.Sprintf("the reverify queue is full (%d writes)", c.verify.MaxPending)
	}
	if me.Final {
		conn.forget(key)
		res.Err = connector.Permanent(me)
	} else {
		res.Err = connector.Transient(me)
	}
	return res
}

// enqueue adds pw to the reverify queue unless it is full.
func (conn *Connector) enqueue(pw *pendingWrite) bool {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if _, ok := conn.pending[pw.patch.Key]; !ok && len(conn.pending) >= conn.c.verify.MaxPending {
		return false
	}
	conn.pending[pw.patch.Key] = pw
	return true
}

// covers reports whether got shows what a JSON merge patch of sent leaves:
// for an object, every member sent (a null member removed, the others
// covered, members not sent ignored); otherwise canonical equality.
func covers(sent, got any) bool {
	m, ok := sent.(map[string]any)
	if !ok {
		return concord.EqualValues(sent, got)
	}
	g, ok := got.(map[string]any)
	if !ok {
		return false
	}
	for k, v := range m {
		gv, present := g[k]
		if v == nil {
			if present && gv != nil {
				return false
			}
			continue
		}
		if !present || !covers(v, gv) {
			return false
		}
	}
	return true
}

func clonePatch(p connector.Patch) connector.Patch {
	if p.Set != nil {
		p.Set = concord.Record{Fields: p.Set}.Clone().Fields
	}
	return p
}
