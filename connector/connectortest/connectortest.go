// Package connectortest checks that a [connector.Connector] keeps the
// contract documented in package connector. It is to Connector what
// testing/fstest.TestFS is to fs.FS and testing/slogtest to slog.Handler.
//
// A connector author runs the whole suite in one call from a test, giving a
// [Harness] that creates a fresh, empty system for each check and edits it
// "as a person" would, outside the connector:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, connectortest.Harness{
//			New: func(t testing.TB) connectortest.System {
//				db := newScratchDatabase(t) // empty; dropped in t.Cleanup
//				return crmSystem{db: db, conn: crm.NewConnector(db)}
//			},
//			Conditional: true, // honours Patch.IfMatch
//			Idempotent:  true, // honours Patch.IdempotencyKey
//			Deletes:     true,
//			Schema: map[string]connectortest.Kind{ // the table's columns
//				"n":      connectortest.KindInt | connectortest.NotNull,
//				"name":   connectortest.KindString,
//				"active": connectortest.KindBool,
//				"price":  connectortest.KindDecimal,
//			},
//		})
//	}
//
// Run runs one subtest per check: the change feed (every edit seen, paging
// with small limits, edits made while paging, several records edited at one
// instant read with small pages, the cursor after an empty batch, batch
// bounds, repeats only when nothing changed), type fidelity (every value
// written comes back as the same value), Apply (field-level patches, Create,
// one Result per patch in order with failures isolated, conditional and
// idempotent writes, deletes, writes echoed in the feed), the optional
// [connector.Getter], [connector.Scanner] and [connector.ScanStarter]
// abilities when the connector has them (for ScanStarter: the feed cursor
// it returns misses no change made after it, and its estimate is 0 or
// about the number of records), prompt return on a cancelled context, and no goroutine left
// running after each check. Checks for features the Harness does not claim
// are skipped with a message.
//
// # Fields and types the suite writes
//
// The suite writes only the fields of [Harness.Schema], each only with
// values of its declared [Kind] (or nil, unless the kind is [NotNull]).
// With a nil Schema it uses [DefaultSchema]: the fields "n" and "a" (ints),
// "c" (a bool), and "name", "b", "d", "k" and "keep" (strings), all
// nullable. A system with fixed columns declares them instead; a system
// that stores any JSON value needs nothing.
//
// One field, the counter, tells edits apart: "n" if the schema has it and
// it is not a Bool, otherwise the first field by name of the first kind in
// the order Int, Decimal, String, Float, Time, Bytes. Most checks edit and
// patch only the counter; records the suite creates get the counter and
// every NotNull field; ChangesReturnsEveryEdit, ApplyTouchesOnlyNamedFields
// and Getter set every field. TypeFidelity writes every value listed on
// the kinds (true and false, 2⁵³+1, 29-digit decimals, times in other
// zones, bytes that are not UTF-8, nil) through [System.Edit] and through
// Apply, and reads them back through Changes, Get and Scan; a value that
// comes back different (a bool as int64(1), a decimal rounded to a float)
// fails, naming the record, the field, and the values written and read
// with their Go types.
//
// Values are compared with [concord.EqualValues], so a system that returns
// float64(2) or int64(2) for int(2), or a time in another zone, passes, and
// failure messages list only the fields that really differ, with their Go
// types. Systems may report fields the suite never set (an id column, a
// creation time): only the fields the suite wrote are compared. A field
// emptied with nil may come back as nil or be absent.
//
// # Edits at one instant
//
// A change feed that pages by modification time alone (updated_at >
// cursor) drops records that share the timestamp of a page boundary. Only
// edits made at one instant show this, so a [System] that can make them
// implements [BulkEditor]; the EditsAtOneInstant check is skipped for one
// that does not.
//
// The goroutine check (go.uber.org/goleak) looks at the whole process: do
// not run Run in parallel with tests that start goroutines of their own.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Harness describes the connector under test to [Run].
type Harness struct {
	// New returns a fresh, empty system for one check. It is called once
	// per subtest with that subtest's t; release resources with t.Cleanup.
	New func(t testing.TB) System

	// Conditional reports that the connector honours Patch.IfMatch: its
	// records carry a version tag that changes on every edit, and a
	// stale IfMatch fails with connector.ErrConflict. A connector that
	// implements connector.Conditional must answer the same.
	Conditional bool
	// Idempotent reports that the connector honours
	// Patch.IdempotencyKey: a write repeated with the same key has no
	// second effect.
	Idempotent bool
	// Deletes reports that the system can delete records: deletions
	// appear in the change feed and Patch.Delete deletes.
	Deletes bool

	// Schema declares the fields the system keeps and their kinds: the
	// suite writes only these fields, with values of these kinds (see
	// the package documentation). Nil means [DefaultSchema].
	Schema map[string]Kind
	// EmptyIsNull reports that the system cannot tell an empty string
	// (or empty bytes) from an empty field, as a spreadsheet cell cannot:
	// the suite then never writes "" or empty bytes.
	EmptyIsNull bool
}

// System is one system under test: its connector, and a way to edit it
// directly, as a person using the system would (not through the
// connector). Edits must show up in the connector's change feed.
type System interface {
	// Connector returns the connector under test. The suite checks
	// whether it also implements connector.Getter, connector.Scanner and
	// connector.ScanStarter.
	Connector() connector.Connector
	// Edit merges fields into the record with key, creating the record
	// if it does not exist; a nil value empties a field.
	Edit(ctx context.Context, key string, fields map[string]concord.Value) error
	// Delete deletes the record with key. The suite calls it only when
	// Harness.Deletes is set.
	Delete(ctx context.Context, key string) error
}

// BulkEditor is an optional ability of a [System]: several edits made at
// one instant, as one transaction or one bulk UPDATE makes them, so that
// every record edited gets the same modification time (at the precision
// the system keeps). Implement it by stopping the system's clock during
// the edits, or by making them in one transaction that stamps one time.
type BulkEditor interface {
	// EditAll merges each map of fields into the record with its key,
	// as Edit does, all at one instant.
	EditAll(ctx context.Context, edits map[string]map[string]concord.Value) error
}

// Run checks the connector that h describes, one subtest per check. It
// fails t's subtests with messages that say what was written, what was
// read and, for the bugs it knows, their likely cause.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("connectortest: Harness.New is nil")
	}
	if _, err := newSchema(h); err != nil {
		t.Fatal("connectortest: " + err.Error())
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { runCheck(t, h, c) })
	}
}

// check is one subtest of the suite. Checks take a testing.TB so that the
// suite's own tests can run them against a recording TB.
type check struct {
	name string
	run  func(e *env)
}

var checks = []check{
	{"ChangesReturnsEveryEdit", checkEveryEdit},
	{"EditsWhilePaging", checkEditsWhilePaging},
	{"EditsAtOneInstant", checkOneInstant},
	{"CursorAfterEmptyBatch", checkCursorAfterEmpty},
	{"BatchBounds", checkBatchBounds},
	{"TypeFidelity", checkTypeFidelity},
	{"ApplyTouchesOnlyNamedFields", checkNamedFields},
	{"ApplyCreate", checkCreate},
	{"ApplyResultsInOrder", checkResultsInOrder},
	{"ConditionalWrites", checkConditional},
	{"IdempotentWrites", checkIdempotent},
	{"Deletes", checkDeletes},
	{"ApplyEchoesInFeed", checkEchoes},
	{"Getter", checkGetter},
	{"Scanner", checkScanner},
	{"ScanStarter", checkScanStarter},
	{"CancelledContext", checkCancelled},
}

// runCheck runs one check on a fresh system and fails t if the check left
// goroutines running (checked after t's other cleanups, so that a system
// the harness stops in t.Cleanup is not reported).
func runCheck(t testing.TB, h Harness, c check) {
	t.Helper()
	s, err := newSchema(h)
	if err != nil {
		t.Fatal("connectortest: " + err.Error())
	}
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	sys := h.New(t)
	if sys == nil || sys.Connector() == nil {
		t.Fatal("Harness.New returned no system or a system without a connector")
	}
	c.run(&env{t: t, h: h, s: s, sys: sys, conn: sys.Connector(), ctx: t.Context()})
}

const (
	// maxPages bounds every paging loop, so that a connector whose More
	// never turns false fails instead of hanging.
	maxPages = 10_000
	// promptly is how long a call with a cancelled context may take.
	promptly = 5 * time.Second
	// readLimit is the page size used to read state back.
	readLimit = 100
)

// fields is the state the suite expects of one record; nil means deleted.
type fields = map[string]concord.Value

// model is the state the suite expects, by record key.
type model map[string]fields

// env is what a check works with.
type env struct {
	t    testing.TB
	h    Harness
	s    *schema
	sys  System
	conn connector.Connector
	ctx  context.Context
}

// edit makes a person's edit and records it in m (if m is not nil).
func (e *env) edit(m model, key string, f fields) {
	e.t.Helper()
	if err := e.sys.Edit(e.ctx, key, f); err != nil {
		e.t.Fatalf("System.Edit(%q): %v", key, err)
	}
	m.merge(key, f)
}

// editAll makes edits at one instant and records them in m.
func (e *env) editAll(b BulkEditor, m model, edits map[string]fields) {
	e.t.Helper()
	if err := b.EditAll(e.ctx, edits); err != nil {
		e.t.Fatalf("BulkEditor.EditAll(%d records): %v", len(edits), err)
	}
	for k, f := range edits {
		m.merge(k, f)
	}
}

// merge records in m that f was merged into the record with key.
func (m model) merge(key string, f fields) {
	if m == nil {
		return
	}
	cur := m[key]
	if cur == nil {
		cur = fields{}
		m[key] = cur
	}
	for k, v := range f {
		cur[k] = v
	}
}

func (e *env) delete(m model, key string) {
	e.t.Helper()
	if err := e.sys.Delete(e.ctx, key); err != nil {
		e.t.Fatalf("System.Delete(%q): %v", key, err)
	}
	m[key] = nil
}

// changes reads one page and checks its bounds: at most limit records,
// each with a key, each key at most once.
func (e *env) changes(cursor connector.Cursor, limit int) connector.Batch {
	e.t.Helper()
	b, err := e.conn.Changes(e.ctx, cursor, limit)
	if err != nil {
		e.t.Fatalf("Changes(cursor %q, limit %d): %v", cursor, limit, err)
	}
	if len(b.Records) > limit {
		e.t.Errorf("Changes(cursor %q, limit %d) returned %d records; want at most %d", cursor, limit, len(b.Records), limit)
	}
	seen := map[string]bool{}
	for _, r := range b.Records {
		if r.Key == "" {
			e.t.Errorf("Changes(cursor %q, limit %d) returned a record without a key", cursor, limit)
		}
		if seen[r.Key] {
			e.t.Errorf("Changes(cursor %q, limit %d) returned record %q twice in one batch; want each key at most once", cursor, limit, r.Key)
		}
		seen[r.Key] = true
	}
	return b
}

// drain pages from cursor until More is false and returns every record read
// and the cursor after the last page.
func (e *env) drain(cursor connector.Cursor, limit int) ([]concord.Record, connector.Cursor) {
	e.t.Helper()
	var all []concord.Record
	for range maxPages {
		b := e.changes(cursor, limit)
		all = append(all, b.Records...)
		cursor = b.Next
		if !b.More {
			return all, cursor
		}
	}
	e.t.Fatalf("Changes with limit %d still reported More after %d pages", limit, maxPages)
	return nil, ""
}

// current reads the whole feed and returns the latest state of key.
func (e *env) current(key string) concord.Record {
	e.t.Helper()
	recs, _ := e.drain("", readLimit)
	r, ok := latest(recs)[key]
	if !ok || r.Deleted {
		e.t.Fatalf("record %q is not in the change feed; want it there after an edit", key)
	}
	return r
}

// apply calls Apply and checks that there is one Result per patch, in
// order, and that Apply did not modify its input.
func (e *env) apply(patches ...connector.Patch) []connector.Result {
	e.t.Helper()
	before := clonePatches(patches)
	res, err := e.conn.Apply(e.ctx, patches)
	if err != nil {
		e.t.Fatalf("Apply(%d patches) failed as a whole: %v", len(patches), err)
	}
	if diff := cmp.Diff(before, patches); diff != "" {
		e.t.Errorf("Apply modified its patches (-before +after):\n%s", diff)
	}
	if len(res) != len(patches) {
		e.t.Fatalf("Apply(%d patches) returned %d results; want one per patch", len(patches), len(res))
	}
	for i := range res {
		if res[i].Key != patches[i].Key {
			e.t.Errorf("Apply: result %d has key %q; want %q (results must be in patch order)", i, res[i].Key, patches[i].Key)
		}
	}
	return res
}

// wantClass checks that result i succeeded (want nil) or failed with an
// error of class want.
func (e *env) wantClass(res []connector.Result, i int, want error) {
	e.t.Helper()
	err := res[i].Err
	switch {
	case want == nil && err != nil:
		e.t.Errorf("Apply: result %d (key %q): got error %v; want success", i, res[i].Key, err)
	case want != nil && !errors.Is(err, want):
		e.t.Errorf("Apply: result %d (key %q): got error %v; want class %v", i, res[i].Key, err, want)
	}
}

// latest returns the last state of each key in recs.
func latest(recs []concord.Record) map[string]concord.Record {
	m := make(map[string]concord.Record, len(recs))
	for _, r := range recs {
		m[r.Key] = r
	}
	return m
}

// expectExactly checks that got holds exactly the records of want (deleted
// ones with Deleted set) and that the fields want names match.
func (e *env) expectExactly(what string, got map[string]concord.Record, want model) {
	e.t.Helper()
	e.expect(what, got, want, func(string) bool { return true })
}

// expectIncludes checks that got holds the records keys of want and that
// every record in got (a repeat, possibly) matches want.
func (e *env) expectIncludes(what string, got map[string]concord.Record, want model, keys ...string) {
	e.t.Helper()
	e.expect(what, got, want, func(k string) bool { return slices.Contains(keys, k) })
}

// expect compares got with want canonically ([concord.EqualValues]) and
// reports only what really differs, one line per record or field, with Go
// types: int(0) and int64(0) are the same value and never reported.
func (e *env) expect(what string, got map[string]concord.Record, want model, required func(string) bool) {
	e.t.Helper()
	if diffs := diffRecords(got, want, required); len(diffs) > 0 {
		e.t.Errorf("%s: records differ:\n\t%s", what, strings.Join(diffs, "\n\t"))
	}
}

// diffRecords lists the differences between got and want, sorted by key.
func diffRecords(got map[string]concord.Record, want model, required func(string) bool) []string {
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var out []string
	for _, k := range keys {
		w, expected := want[k]
		g, read := got[k]
		switch {
		case !read:
			if !required(k) {
				continue
			}
			if w == nil {
				out = append(out, fmt.Sprintf("record %q: missing; want it deleted", k))
			} else {
				out = append(out, fmt.Sprintf("record %q: missing; want %s", k, showFields(w)))
			}
		case !expected && g.Deleted:
			out = append(out, fmt.Sprintf("record %q: got a deletion of a record never written", k))
		case !expected:
			out = append(out, fmt.Sprintf("record %q: got %s; want no such record", k, showFields(g.Fields)))
		case w == nil && !g.Deleted:
			out = append(out, fmt.Sprintf("record %q: got %s; want it deleted", k, showFields(g.Fields)))
		case w == nil:
		case g.Deleted:
			out = append(out, fmt.Sprintf("record %q: got it deleted; want %s", k, showFields(w)))
		default:
			for _, name := range sortedNames(w) {
				wv := w[name]
				gv, ok := g.Fields[name]
				switch {
				case !ok && wv != nil:
					out = append(out, fmt.Sprintf("record %q, field %q: absent; want %s", k, name, show(wv)))
				case ok && !concord.EqualValues(wv, gv):
					out = append(out, fmt.Sprintf("record %q, field %q: got %s; want %s", k, name, show(gv), show(wv)))
				}
			}
		}
	}
	return out
}

func sortedNames(f fields) []string {
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// showFields formats fields by name, each value with its Go type.
func showFields(f fields) string {
	parts := make([]string, 0, len(f))
	for _, name := range sortedNames(f) {
		parts = append(parts, fmt.Sprintf("%s: %s", name, show(f[name])))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func clonePatches(ps []connector.Patch) []connector.Patch {
	out := make([]connector.Patch, len(ps))
	for i, p := range ps {
		p.Set = concord.CloneFields(p.Set)
		out[i] = p
	}
	return out
}

func key(i int) string { return fmt.Sprintf("ct-%02d", i) }
