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
//		})
//	}
//
// Run runs one subtest per check: the change feed (every edit seen, paging
// with small limits, edits made while paging, batch bounds, repeats only
// when nothing changed), Apply (field-level patches, Create, one Result per
// patch in order with failures isolated, conditional and idempotent writes,
// deletes, writes echoed in the feed), the optional [connector.Getter] and
// [connector.Scanner] abilities when the connector has them, prompt return
// on a cancelled context, and no goroutine left running after each check.
// Checks for features the Harness does not claim are skipped with a message.
//
// Values are compared with [concord.EqualValues], so a system that returns
// float64(2) for int(2), or a time in another zone, passes. Systems may
// report fields the suite never set (an id column, a creation time): only
// the fields the suite wrote are compared. A field emptied with nil may come
// back as nil or be absent.
//
// The goroutine check (go.uber.org/goleak) looks at the whole process: do
// not run Run in parallel with tests that start goroutines of their own.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// stale IfMatch fails with connector.ErrConflict.
	Conditional bool
	// Idempotent reports that the connector honours
	// Patch.IdempotencyKey: a write repeated with the same key has no
	// second effect.
	Idempotent bool
	// Deletes reports that the system can delete records: deletions
	// appear in the change feed and Patch.Delete deletes.
	Deletes bool
}

// System is one system under test: its connector, and a way to edit it
// directly, as a person using the system would (not through the
// connector). Edits must show up in the connector's change feed.
type System interface {
	// Connector returns the connector under test. The suite checks
	// whether it also implements connector.Getter and connector.Scanner.
	Connector() connector.Connector
	// Edit merges fields into the record with key, creating the record
	// if it does not exist; a nil value empties a field.
	Edit(ctx context.Context, key string, fields map[string]concord.Value) error
	// Delete deletes the record with key. The suite calls it only when
	// Harness.Deletes is set.
	Delete(ctx context.Context, key string) error
}

// Run checks the connector that h describes, one subtest per check. It
// fails t's subtests with messages of the form "got …; want …" or a diff.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("connectortest: Harness.New is nil")
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
	{"BatchBounds", checkBatchBounds},
	{"ApplyTouchesOnlyNamedFields", checkNamedFields},
	{"ApplyCreate", checkCreate},
	{"ApplyResultsInOrder", checkResultsInOrder},
	{"ConditionalWrites", checkConditional},
	{"IdempotentWrites", checkIdempotent},
	{"Deletes", checkDeletes},
	{"ApplyEchoesInFeed", checkEchoes},
	{"Getter", checkGetter},
	{"Scanner", checkScanner},
	{"CancelledContext", checkCancelled},
}

// runCheck runs one check on a fresh system and fails t if the check left
// goroutines running (checked after t's other cleanups, so that a system
// the harness stops in t.Cleanup is not reported).
func runCheck(t testing.TB, h Harness, c check) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	sys := h.New(t)
	if sys == nil || sys.Connector() == nil {
		t.Fatal("Harness.New returned no system or a system without a connector")
	}
	c.run(&env{t: t, h: h, sys: sys, conn: sys.Connector(), ctx: t.Context()})
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
	if m != nil {
		cur := m[key]
		if cur == nil {
			cur = fields{}
			m[key] = cur
		}
		for k, v := range f {
			cur[k] = v
		}
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

// wantClass checks the class of result i.
func (e *env) wantClass(res []connector.Result, i int, want error) {
	e.t.Helper()
	if got := connector.Classify(res[i].Err); got != want {
		e.t.Errorf("Apply: result %d (key %q): got error %v, class %v; want class %v", i, res[i].Key, res[i].Err, got, want)
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

const deletedMark = "(deleted)"

func (e *env) expect(what string, got map[string]concord.Record, want model, required func(string) bool) {
	e.t.Helper()
	wantView, gotView := map[string]concord.Value{}, map[string]concord.Value{}
	for k, f := range want {
		if _, ok := got[k]; !ok && !required(k) {
			continue
		}
		if f == nil {
			wantView[k] = deletedMark
		} else {
			wantView[k] = f
		}
	}
	for k, r := range got {
		switch {
		case r.Deleted:
			gotView[k] = deletedMark
		case want[k] == nil:
			gotView[k] = r.Fields // not expected at all: show everything
		default:
			v := map[string]concord.Value{}
			for name, wv := range want[k] {
				if gv, ok := r.Fields[name]; ok {
					v[name] = gv
				} else if wv == nil {
					v[name] = nil // emptied and absent: accepted
				}
			}
			gotView[k] = v
		}
	}
	if !concord.EqualValues(wantView, gotView) {
		e.t.Errorf("%s: records differ (-want +got):\n%s", what, cmp.Diff(wantView, gotView))
	}
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

// ---- the checks ----

func checkEveryEdit(e *env) {
	if recs, _ := e.drain("", readLimit); len(recs) != 0 {
		e.t.Fatalf("Changes on a fresh system returned %d records; want 0 (Harness.New must return an empty system)", len(recs))
	}
	m := model{}
	for i := range 7 {
		e.edit(m, key(i), fields{"n": i, "name": "record " + key(i)})
	}
	for _, limit := range []int{1, 2, 3, readLimit} {
		recs, _ := e.drain("", limit)
		e.expectExactly(fmt.Sprintf("reading from the empty cursor with limit %d", limit), latest(recs), m)
	}
}

func checkEditsWhilePaging(e *env) {
	m := model{}
	for i := range 6 {
		e.edit(m, key(i), fields{"n": i})
	}
	seen := map[string]concord.Record{}
	var cursor connector.Cursor
	for page := 0; ; page++ {
		if page == maxPages {
			e.t.Fatalf("Changes with limit 2 still reported More after %d pages", maxPages)
		}
		b := e.changes(cursor, 2)
		for _, r := range b.Records {
			seen[r.Key] = r
		}
		cursor = b.Next
		if page < 4 {
			// Between pages: a new record, a record probably read
			// already, and one probably not read yet.
			e.edit(m, fmt.Sprintf("ct-new-%d", page), fields{"n": 100 + page})
			e.edit(m, key(page), fields{"n": 200 + page})
			e.edit(m, key(5), fields{"n": 300 + page})
		}
		if !b.More {
			break
		}
	}
	recs, _ := e.drain(cursor, 2)
	for _, r := range recs {
		seen[r.Key] = r
	}
	e.expectExactly("the latest state seen while paging with limit 2 and editing between pages", seen, m)
}

func checkBatchBounds(e *env) {
	m := model{}
	for i := range 5 {
		e.edit(m, key(i), fields{"n": i})
	}
	// changes (through drain) checks every page's limit and keys.
	for _, limit := range []int{1, 2, 4} {
		e.drain("", limit)
	}
	_, cursor := e.drain("", 2)
	for range 2 {
		recs, next := e.drain(cursor, readLimit)
		e.expectIncludes(fmt.Sprintf("reading again from the last cursor %q with nothing changed (want no records or repeats)", cursor), latest(recs), m)
		cursor = next
	}
}

func checkNamedFields(e *env) {
	m := model{}
	e.edit(m, "ct-a", fields{"a": 1, "b": "two", "c": true, "d": "keep"})
	e.edit(m, "ct-b", fields{"a": 10, "b": "other"})
	res := e.apply(connector.Patch{Key: "ct-a", Set: fields{"a": 2, "c": nil}})
	e.wantClass(res, 0, nil)
	m["ct-a"]["a"], m["ct-a"]["c"] = 2, nil
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after patching fields a and c of ct-a (want b and d kept, c emptied, ct-b untouched)", latest(recs), m)
}

func checkCreate(e *env) {
	m := model{}
	e.edit(m, "ct-old", fields{"n": 1, "keep": "yes"})
	res := e.apply(
		connector.Patch{Key: "ct-new", Set: fields{"n": 2}, Create: true},
		connector.Patch{Key: "ct-missing", Set: fields{"n": 3}},
		connector.Patch{Key: "ct-old", Set: fields{"n": 4}, Create: true},
	)
	e.wantClass(res, 0, nil)
	e.wantClass(res, 1, connector.ErrNotFound)
	m["ct-new"] = fields{"n": 2}
	if e.h.Conditional {
		// Create on an existing record is a conflict: it must not
		// overwrite a record created in the system meanwhile.
		e.wantClass(res, 2, connector.ErrConflict)
	} else if e.wantClass(res, 2, nil); true {
		m["ct-old"]["n"] = 4
	}
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after Apply with Create for ct-new and ct-old (existing) and without it for ct-missing", latest(recs), m)
}

func checkResultsInOrder(e *env) {
	m := model{}
	for _, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, fields{"n": 0})
	}
	res := e.apply(
		connector.Patch{Key: "ct-missing-1", Set: fields{"n": 1}},
		connector.Patch{Key: "ct-a", Set: fields{"n": 1}},
		connector.Patch{Key: "ct-missing-2", Set: fields{"n": 1}},
		connector.Patch{Key: "ct-b", Set: fields{"n": 2}},
		connector.Patch{Key: "ct-c", Set: fields{"n": 3}},
		connector.Patch{Key: "ct-missing-3", Set: fields{"n": 1}},
	)
	for i, want := range []error{connector.ErrNotFound, nil, connector.ErrNotFound, nil, nil, connector.ErrNotFound} {
		e.wantClass(res, i, want)
	}
	m["ct-a"]["n"], m["ct-b"]["n"], m["ct-c"]["n"] = 1, 2, 3
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after a batch mixing failing and succeeding patches", latest(recs), m)
}

func checkConditional(e *env) {
	if !e.h.Conditional {
		e.t.Skip("Harness.Conditional is false: conditional writes (Patch.IfMatch) not checked")
	}
	m := model{}
	e.edit(m, "ct-a", fields{"n": 1})
	stale := e.current("ct-a").Tag
	if stale == "" {
		e.t.Fatal(`record "ct-a" has Tag ""; want a version tag (Harness.Conditional is set)`)
	}
	e.edit(m, "ct-a", fields{"n": 2})
	fresh := e.current("ct-a").Tag
	if fresh == stale {
		e.t.Fatalf(`record "ct-a" has Tag %q after an edit; want a tag different from %q before it`, fresh, stale)
	}

	res := e.apply(connector.Patch{Key: "ct-a", Set: fields{"n": 3}, IfMatch: stale})
	e.wantClass(res, 0, connector.ErrConflict)
	recs, _ := e.drain("", readLimit)
	e.expectExactly(fmt.Sprintf("after Apply with the stale IfMatch %q (want no change)", stale), latest(recs), m)

	res = e.apply(connector.Patch{Key: "ct-a", Set: fields{"n": 4}, IfMatch: fresh})
	e.wantClass(res, 0, nil)
	m["ct-a"]["n"] = 4
	recs, _ = e.drain("", readLimit)
	got := latest(recs)
	e.expectExactly(fmt.Sprintf("after Apply with the current IfMatch %q", fresh), got, m)
	if tag := got["ct-a"].Tag; res[0].Tag == "" || res[0].Tag == fresh || tag != res[0].Tag {
		e.t.Errorf("after a conditional write: Result.Tag %q, feed Tag %q; want a new tag (not %q), the same in both", res[0].Tag, tag, fresh)
	}
}

func checkIdempotent(e *env) {
	if !e.h.Idempotent {
		e.t.Skip("Harness.Idempotent is false: idempotency keys not checked")
	}
	m := model{}
	e.edit(m, "ct-a", fields{"n": 0})
	p := connector.Patch{Key: "ct-a", Set: fields{"n": 1}, IdempotencyKey: "connectortest-write-1"}
	e.wantClass(e.apply(p), 0, nil)
	e.edit(m, "ct-a", fields{"n": 5})
	e.wantClass(e.apply(p), 0, nil)
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after a person's edit (n=5) and a repeated write (n=1) with the same IdempotencyKey (want no second effect)", latest(recs), m)

	p2 := connector.Patch{Key: "ct-a", Set: fields{"n": 7}, IdempotencyKey: "connectortest-write-2"}
	e.wantClass(e.apply(p2), 0, nil)
	m["ct-a"]["n"] = 7
	recs, _ = e.drain("", readLimit)
	e.expectExactly("after a write with a new IdempotencyKey", latest(recs), m)
}

func checkDeletes(e *env) {
	if !e.h.Deletes {
		e.t.Skip("Harness.Deletes is false: deletes not checked")
	}
	m := model{}
	for _, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, fields{"n": 1})
	}
	_, cursor := e.drain("", readLimit)
	e.delete(m, "ct-a")
	res := e.apply(
		connector.Patch{Key: "ct-b", Delete: true},
		connector.Patch{Key: "ct-missing", Delete: true},
		connector.Patch{Key: "ct-a", Delete: true},
	)
	for i := range res {
		e.wantClass(res, i, nil)
	}
	m["ct-b"] = nil
	recs, _ := e.drain(cursor, readLimit)
	e.expectIncludes("the change feed after a person deleted ct-a and Apply deleted ct-b (want both with Deleted set)", latest(recs), m, "ct-a", "ct-b")

	res = e.apply(connector.Patch{Key: "ct-a", Set: fields{"n": 2}})
	e.wantClass(res, 0, connector.ErrNotFound)
}

func checkEchoes(e *env) {
	m := model{}
	e.edit(m, "ct-a", fields{"n": 1})
	_, cursor := e.drain("", readLimit)
	res := e.apply(
		connector.Patch{Key: "ct-a", Set: fields{"n": 2}},
		connector.Patch{Key: "ct-b", Set: fields{"n": 3}, Create: true},
	)
	e.wantClass(res, 0, nil)
	e.wantClass(res, 1, nil)
	m["ct-a"]["n"] = 2
	m["ct-b"] = fields{"n": 3}
	recs, _ := e.drain(cursor, readLimit)
	got := latest(recs)
	e.expectIncludes("the change feed after writes through Apply (want both writes echoed)", got, m, "ct-a", "ct-b")
	for _, r := range res {
		if g, ok := got[r.Key]; ok && r.Tag != "" && g.Tag != r.Tag {
			e.t.Errorf("record %q: change feed has Tag %q; want %q as Apply reported", r.Key, g.Tag, r.Tag)
		}
	}
}

func checkGetter(e *env) {
	g, ok := e.conn.(connector.Getter)
	if !ok {
		e.t.Skip("the connector does not implement connector.Getter")
	}
	m := model{}
	for _, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, fields{"n": 1, "k": k})
	}
	if e.h.Deletes {
		e.delete(m, "ct-b")
		delete(m, "ct-b") // Get omits deleted records
	}
	recs, err := g.Get(e.ctx, []string{"ct-a", "ct-missing", "ct-b", "ct-c"})
	if err != nil {
		e.t.Fatalf("Get: %v", err)
	}
	got := map[string]concord.Record{}
	for _, r := range recs {
		if _, dup := got[r.Key]; dup {
			e.t.Errorf("Get returned record %q twice; want it once", r.Key)
		}
		got[r.Key] = r
	}
	e.expectExactly("Get(ct-a, ct-missing, ct-b, ct-c) (want live records only)", got, m)
}

func checkScanner(e *env) {
	s, ok := e.conn.(connector.Scanner)
	if !ok {
		e.t.Skip("the connector does not implement connector.Scanner")
	}
	scan := func(limit int) ([]string, map[string]concord.Record) {
		e.t.Helper()
		var order []string
		got := map[string]concord.Record{}
		var cursor connector.Cursor
		for range maxPages {
			b, err := s.Scan(e.ctx, cursor, limit)
			if err != nil {
				e.t.Fatalf("Scan(cursor %q, limit %d): %v", cursor, limit, err)
			}
			if len(b.Records) > limit {
				e.t.Errorf("Scan(cursor %q, limit %d) returned %d records; want at most %d", cursor, limit, len(b.Records), limit)
			}
			for _, r := range b.Records {
				if _, dup := got[r.Key]; dup {
					e.t.Errorf("Scan with limit %d returned record %q twice; want every record once", limit, r.Key)
				}
				got[r.Key] = r
				order = append(order, r.Key)
			}
			if !b.More {
				return order, got
			}
			cursor = b.Next
		}
		e.t.Fatalf("Scan with limit %d still reported More after %d pages", limit, maxPages)
		return nil, nil
	}
	if order, _ := scan(readLimit); len(order) != 0 {
		e.t.Fatalf("Scan on a fresh system returned %d records; want 0", len(order))
	}
	m := model{}
	for i := range 7 {
		e.edit(m, key(i), fields{"n": i})
	}
	if e.h.Deletes {
		e.delete(m, key(3))
		delete(m, key(3)) // Scan returns live records only
	}
	first, _ := scan(readLimit)
	for _, limit := range []int{1, 2, 3, readLimit} {
		order, got := scan(limit)
		e.expectExactly(fmt.Sprintf("Scan with limit %d", limit), got, m)
		if diff := cmp.Diff(first, order); diff != "" {
			e.t.Errorf("Scan with limit %d: order differs from Scan with limit %d (-first +now); want a stable order:\n%s", limit, readLimit, diff)
		}
	}
}

func checkCancelled(e *env) {
	e.edit(nil, "ct-a", fields{"n": 1})
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	type namedCall struct {
		name string
		call func() error
	}
	calls := []namedCall{
		{"Changes", func() error { _, err := e.conn.Changes(ctx, "", readLimit); return err }},
		{"Apply", func() error {
			_, err := e.conn.Apply(ctx, []connector.Patch{{Key: "ct-a", Set: fields{"n": 2}}})
			return err
		}},
	}
	if g, ok := e.conn.(connector.Getter); ok {
		calls = append(calls, namedCall{"Get", func() error { _, err := g.Get(ctx, []string{"ct-a"}); return err }})
	}
	if s, ok := e.conn.(connector.Scanner); ok {
		calls = append(calls, namedCall{"Scan", func() error { _, err := s.Scan(ctx, "", readLimit); return err }})
	}
	for _, c := range calls {
		done := make(chan error, 1)
		go func() { done <- c.call() }()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				e.t.Errorf("%s with a cancelled context: got error %v; want context.Canceled", c.name, err)
			}
		case <-time.After(promptly):
			e.t.Errorf("%s with a cancelled context did not return within %v", c.name, promptly)
		}
	}
}
