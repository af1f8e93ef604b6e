package connectortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// ---- the checks ----

func checkEveryEdit(e *env) {
	if recs, _ := e.drain("", readLimit); len(recs) != 0 {
		e.t.Fatalf("Changes on a fresh system returned %d records; want 0 (Harness.New must return an empty system)", len(recs))
	}
	m := model{}
	for i := range 7 {
		e.edit(m, key(i), e.s.all(i))
	}
	for _, limit := range []int{1, 2, 3, readLimit} {
		recs, _ := e.drain("", limit)
		e.expectExactly(fmt.Sprintf("reading from the empty cursor with limit %d", limit), latest(recs), m)
	}
}

func checkEditsWhilePaging(e *env) {
	m := model{}
	for i := range 6 {
		e.edit(m, key(i), e.s.fresh(i))
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
			e.edit(m, fmt.Sprintf("ct-new-%d", page), e.s.fresh(100+page))
			e.edit(m, key(page), e.s.count(200+page))
			e.edit(m, key(5), e.s.count(300+page))
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

// sameInstantCause names the usual cause of records lost at one instant.
const sameInstantCause = "records edited at one instant share a modification time: " +
	"a change feed that pages by time alone (updated_at > cursor) drops those after a page boundary; " +
	"page by (time, key) or by a sequence"

func checkOneInstant(e *env) {
	b, ok := e.sys.(BulkEditor)
	if !ok {
		e.t.Skip("the System does not implement connectortest.BulkEditor: edits at one instant (records sharing a modification time at a page boundary) not checked")
	}
	m := model{}
	e.edit(m, "ct-before", e.s.fresh(0))
	_, cursor := e.drain("", readLimit)

	const n = 7
	edits := map[string]fields{}
	var keys []string
	for i := range n {
		edits[key(i)] = e.s.fresh(10 + i)
		keys = append(keys, key(i))
	}
	e.editAll(b, m, edits)
	for _, limit := range []int{1, 2, 3} {
		recs, _ := e.drain(cursor, limit)
		e.expectIncludes(fmt.Sprintf("reading %d records edited at one instant with limit %d from the cursor before them (%s)", n, limit, sameInstantCause),
			latest(recs), m, keys...)
	}
	recs, next := e.drain("", 2)
	e.expectExactly(fmt.Sprintf("reading %d records edited at one instant and one before them with limit 2 from the empty cursor (%s)", n, sameInstantCause),
		latest(recs), m)

	// Edit them again at one (later) instant: paging from the cursor
	// that sits on the first instant must deliver all of them again.
	for i := range n {
		edits[key(i)] = e.s.count(20 + i)
	}
	e.editAll(b, m, edits)
	recs, _ = e.drain(next, 2)
	e.expectIncludes(fmt.Sprintf("reading %d records edited again at one instant with limit 2 (%s)", n, sameInstantCause),
		latest(recs), m, keys...)
}

func checkCursorAfterEmpty(e *env) {
	m := model{}
	for i := range 5 {
		e.edit(m, key(i), e.s.fresh(i))
	}
	_, cursor := e.drain("", 2)
	prev := -1 // records in the previous batch; -1 before the first
	for range 4 {
		b := e.changes(cursor, readLimit)
		e.expectIncludes(fmt.Sprintf("reading again from cursor %q with nothing changed (want no records, or repeats of the current state)", cursor),
			latest(b.Records), m)
		switch {
		case prev == 0 && len(b.Records) > 0:
			e.t.Errorf("cursor going back: Changes returned an empty batch with Next %q, and reading from that Next with nothing changed returned %d records again (%s); "+
				"the Next of an empty batch must not move back (an empty Next means from the beginning): return the cursor you were given",
				cursor, len(b.Records), strings.Join(recordKeys(b.Records), ", "))
		case prev >= 0 && len(b.Records) > prev:
			e.t.Errorf("cursor going back: with nothing changed, reading from Next %q returned %d records (%s), more than the %d of the read before it; want a cursor that never moves back",
				cursor, len(b.Records), strings.Join(recordKeys(b.Records), ", "), prev)
		}
		if e.t.Failed() {
			return
		}
		prev = len(b.Records)
		cursor = b.Next
	}
	// The feed still moves on from there.
	e.edit(m, "ct-after", e.s.fresh(9))
	recs, _ := e.drain(cursor, readLimit)
	e.expectIncludes(fmt.Sprintf("reading from cursor %q after an edit that followed empty batches", cursor), latest(recs), m, "ct-after")
}

func recordKeys(recs []concord.Record) []string {
	keys := make([]string, len(recs))
	for i, r := range recs {
		keys[i] = r.Key
	}
	return keys
}

func checkBatchBounds(e *env) {
	m := model{}
	for i := range 5 {
		e.edit(m, key(i), e.s.fresh(i))
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
	e.edit(m, "ct-a", e.s.all(1))
	e.edit(m, "ct-b", e.s.all(10))
	// Patch the counter, and empty (or change) one other field; the rest
	// must stay as they are.
	set := e.s.count(2)
	for _, name := range e.s.names {
		if name == e.s.counter {
			continue
		}
		if k := e.s.kinds[name]; k.nullable() {
			set[name] = nil
		} else {
			set[name] = value(k, 2)
		}
		break
	}
	res := e.apply(connector.Patch{Key: "ct-a", Set: set})
	e.wantClass(res, 0, nil)
	m.merge("ct-a", set)
	recs, _ := e.drain("", readLimit)
	e.expectExactly(fmt.Sprintf("after patching fields %v of ct-a (want the others kept, ct-b untouched)", sortedNames(set)), latest(recs), m)
}

func checkCreate(e *env) {
	m := model{}
	e.edit(m, "ct-old", e.s.all(1))
	res := e.apply(
		connector.Patch{Key: "ct-new", Set: e.s.fresh(2), Create: true},
		connector.Patch{Key: "ct-missing", Set: e.s.fresh(3)},
		connector.Patch{Key: "ct-old", Set: e.s.fresh(4), Create: true},
	)
	e.wantClass(res, 0, nil)
	e.wantClass(res, 1, connector.ErrNotFound)
	m["ct-new"] = e.s.fresh(2)
	if e.h.Conditional {
		// Create on an existing record is a conflict: it must not
		// overwrite a record created in the system meanwhile.
		e.wantClass(res, 2, connector.ErrConflict)
	} else {
		e.wantClass(res, 2, nil)
		m.merge("ct-old", e.s.fresh(4))
	}
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after Apply with Create for ct-new and ct-old (existing) and without it for ct-missing", latest(recs), m)
}

func checkResultsInOrder(e *env) {
	m := model{}
	for _, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, e.s.fresh(0))
	}
	res := e.apply(
		connector.Patch{Key: "ct-missing-1", Set: e.s.count(1)},
		connector.Patch{Key: "ct-a", Set: e.s.count(1)},
		connector.Patch{Key: "ct-missing-2", Set: e.s.count(1)},
		connector.Patch{Key: "ct-b", Set: e.s.count(2)},
		connector.Patch{Key: "ct-c", Set: e.s.count(3)},
		connector.Patch{Key: "ct-missing-3", Set: e.s.count(1)},
	)
	for i, want := range []error{connector.ErrNotFound, nil, connector.ErrNotFound, nil, nil, connector.ErrNotFound} {
		e.wantClass(res, i, want)
	}
	m.merge("ct-a", e.s.count(1))
	m.merge("ct-b", e.s.count(2))
	m.merge("ct-c", e.s.count(3))
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after a batch mixing failing and succeeding patches", latest(recs), m)
}

func checkConditional(e *env) {
	// A connector that says whether it has conditional writes
	// (connector.Conditional, which the engine trusts for creates) must
	// say what the harness checks.
	if c, ok := e.conn.(connector.Conditional); ok && c.ConditionalWrites() != e.h.Conditional {
		e.t.Fatalf("ConditionalWrites() = %v, but Harness.Conditional = %v", c.ConditionalWrites(), e.h.Conditional)
	}
	if !e.h.Conditional {
		e.t.Skip("Harness.Conditional is false: conditional writes (Patch.IfMatch) not checked")
	}
	m := model{}
	e.edit(m, "ct-a", e.s.fresh(1))
	stale := e.current("ct-a").Tag
	if stale == "" {
		e.t.Fatal(`record "ct-a" has Tag ""; want a version tag (Harness.Conditional is set)`)
	}
	e.edit(m, "ct-a", e.s.count(2))
	fresh := e.current("ct-a").Tag
	if fresh == stale {
		e.t.Fatalf(`record "ct-a" has Tag %q after an edit; want a tag different from %q before it`, fresh, stale)
	}

	res := e.apply(connector.Patch{Key: "ct-a", Set: e.s.count(3), IfMatch: stale})
	e.wantClass(res, 0, connector.ErrConflict)
	recs, _ := e.drain("", readLimit)
	e.expectExactly(fmt.Sprintf("after Apply with the stale IfMatch %q (want no change)", stale), latest(recs), m)

	res = e.apply(connector.Patch{Key: "ct-a", Set: e.s.count(4), IfMatch: fresh})
	e.wantClass(res, 0, nil)
	m.merge("ct-a", e.s.count(4))
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
	e.edit(m, "ct-a", e.s.fresh(0))
	p := connector.Patch{Key: "ct-a", Set: e.s.count(1), IdempotencyKey: "connectortest-write-1"}
	e.wantClass(e.apply(p), 0, nil)
	e.edit(m, "ct-a", e.s.count(5))
	e.wantClass(e.apply(p), 0, nil)
	recs, _ := e.drain("", readLimit)
	e.expectExactly("after a person's edit (5) and a repeated write (1) with the same IdempotencyKey (want no second effect)", latest(recs), m)

	p2 := connector.Patch{Key: "ct-a", Set: e.s.count(7), IdempotencyKey: "connectortest-write-2"}
	e.wantClass(e.apply(p2), 0, nil)
	m.merge("ct-a", e.s.count(7))
	recs, _ = e.drain("", readLimit)
	e.expectExactly("after a write with a new IdempotencyKey", latest(recs), m)
}

func checkDeletes(e *env) {
	if !e.h.Deletes {
		e.t.Skip("Harness.Deletes is false: deletes not checked")
	}
	m := model{}
	for _, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, e.s.fresh(1))
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

	res = e.apply(connector.Patch{Key: "ct-a", Set: e.s.count(2)})
	e.wantClass(res, 0, connector.ErrNotFound)
}

func checkEchoes(e *env) {
	m := model{}
	e.edit(m, "ct-a", e.s.fresh(1))
	_, cursor := e.drain("", readLimit)
	res := e.apply(
		connector.Patch{Key: "ct-a", Set: e.s.count(2)},
		connector.Patch{Key: "ct-b", Set: e.s.fresh(3), Create: true},
	)
	e.wantClass(res, 0, nil)
	e.wantClass(res, 1, nil)
	m.merge("ct-a", e.s.count(2))
	m.merge("ct-b", e.s.fresh(3))
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
	for i, k := range []string{"ct-a", "ct-b", "ct-c"} {
		e.edit(m, k, e.s.all(i))
	}
	if e.h.Deletes {
		e.delete(m, "ct-b")
		delete(m, "ct-b") // Get omits deleted records
	}
	got := e.get(g, "ct-a", "ct-missing", "ct-b", "ct-c")
	e.expectExactly("Get(ct-a, ct-missing, ct-b, ct-c) (want live records only)", got, m)
}

// get calls Get and checks that no record comes back twice.
func (e *env) get(g connector.Getter, keys ...string) map[string]concord.Record {
	e.t.Helper()
	recs, err := g.Get(e.ctx, keys)
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
	return got
}

// scan reads every record through s with limit, checking the page bounds
// and that no record comes twice, and returns the keys in order.
func (e *env) scan(s connector.Scanner, limit int) ([]string, map[string]concord.Record) {
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

func checkScanner(e *env) {
	s, ok := e.conn.(connector.Scanner)
	if !ok {
		e.t.Skip("the connector does not implement connector.Scanner")
	}
	if order, _ := e.scan(s, readLimit); len(order) != 0 {
		e.t.Fatalf("Scan on a fresh system returned %d records; want 0", len(order))
	}
	m := model{}
	for i := range 7 {
		e.edit(m, key(i), e.s.fresh(i))
	}
	if e.h.Deletes {
		e.delete(m, key(3))
		delete(m, key(3)) // Scan returns live records only
	}
	first, _ := e.scan(s, readLimit)
	for _, limit := range []int{1, 2, 3, readLimit} {
		order, got := e.scan(s, limit)
		e.expectExactly(fmt.Sprintf("Scan with limit %d", limit), got, m)
		if diff := cmp.Diff(first, order); diff != "" {
			e.t.Errorf("Scan with limit %d: order differs from Scan with limit %d (-first +now); want a stable order:\n%s", limit, readLimit, diff)
		}
	}
}

// checkScanStarter checks that the feed cursor StartScan returns misses no
// change made after it, and that its estimate is plausible.
func checkScanStarter(e *env) {
	st, ok := e.conn.(connector.ScanStarter)
	if !ok {
		e.t.Skip("the connector does not implement connector.ScanStarter")
	}
	if _, ok := e.conn.(connector.Scanner); !ok {
		e.t.Fatal("the connector implements connector.ScanStarter but not connector.Scanner; want both")
	}
	if _, err := st.StartScan(e.ctx); err != nil {
		e.t.Fatalf("StartScan on a fresh system: %v", err)
	}
	m := model{}
	for i := range 6 {
		e.edit(m, key(i), e.s.fresh(i))
	}
	start, err := st.StartScan(e.ctx)
	if err != nil {
		e.t.Fatalf("StartScan: %v", err)
	}
	if start.Estimate < 0 || start.Estimate > 0 && (start.Estimate < 3 || start.Estimate > 12) {
		e.t.Errorf("StartScan with 6 records: Estimate %d; want 0 (unknown) or about 6", start.Estimate)
	}
	after := model{}
	e.edit(after, key(1), e.s.count(101))
	e.edit(after, key(4), e.s.count(104))
	e.edit(after, key(9), e.s.fresh(9))
	recs, _ := e.drain(start.Feed, readLimit)
	e.expectIncludes(fmt.Sprintf("Changes from the cursor StartScan returned (%q)", start.Feed),
		latest(recs), merged(m, after), key(1), key(4), key(9))
}

// merged returns base with the fields of over merged in.
func merged(base, over model) model {
	out := model{}
	for k, f := range base {
		out.merge(k, f)
	}
	for k, f := range over {
		out.merge(k, f)
	}
	return out
}

func checkCancelled(e *env) {
	e.edit(nil, "ct-a", e.s.fresh(1))
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	type namedCall struct {
		name string
		call func() error
	}
	calls := []namedCall{
		{"Changes", func() error { _, err := e.conn.Changes(ctx, "", readLimit); return err }},
		{"Apply", func() error {
			_, err := e.conn.Apply(ctx, []connector.Patch{{Key: "ct-a", Set: e.s.count(2)}})
			return err
		}},
	}
	if g, ok := e.conn.(connector.Getter); ok {
		calls = append(calls, namedCall{"Get", func() error { _, err := g.Get(ctx, []string{"ct-a"}); return err }})
	}
	if s, ok := e.conn.(connector.Scanner); ok {
		calls = append(calls, namedCall{"Scan", func() error { _, err := s.Scan(ctx, "", readLimit); return err }})
	}
	if s, ok := e.conn.(connector.ScanStarter); ok {
		calls = append(calls, namedCall{"StartScan", func() error { _, err := s.StartScan(ctx); return err }})
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

// ---- type fidelity ----

// fidelityRow returns row r of the TypeFidelity values: every field set to
// the sample of its kind numbered r (cycling through the samples).
func (e *env) fidelityRow(r int) fields {
	f := fields{}
	for _, name := range e.s.names {
		vs := e.s.samples(e.s.kinds[name])
		f[name] = vs[r%len(vs)]
	}
	return f
}

func checkTypeFidelity(e *env) {
	rows := 0
	for _, name := range e.s.names {
		rows = max(rows, len(e.s.samples(e.s.kinds[name])))
	}
	m := model{}
	var keys []string
	for r := range rows {
		k := fmt.Sprintf("ct-type-%d", r)
		keys = append(keys, k)
		e.edit(m, k, e.fidelityRow(r))
	}
	recs, _ := e.drain("", readLimit)
	e.fidelity("written by System.Edit, read through Changes", latest(recs), m)

	// Through the connector: every existing record to the next row (true
	// becomes false, a value becomes nil), and new records created.
	var patches []connector.Patch
	for r := range rows {
		patches = append(patches,
			connector.Patch{Key: fmt.Sprintf("ct-type-%d", r), Set: e.fidelityRow(r + 1)},
			connector.Patch{Key: fmt.Sprintf("ct-type-new-%d", r), Set: e.fidelityRow(r), Create: true})
	}
	res := e.apply(patches...)
	for i, p := range patches {
		e.wantClass(res, i, nil)
		m.merge(p.Key, p.Set)
		if !slices.Contains(keys, p.Key) {
			keys = append(keys, p.Key)
		}
	}
	recs, _ = e.drain("", readLimit)
	e.fidelity("written by Apply, read through Changes", latest(recs), m)
	if g, ok := e.conn.(connector.Getter); ok {
		e.fidelity("written by Apply, read through Get", e.get(g, keys...), m)
	}
	if s, ok := e.conn.(connector.Scanner); ok {
		_, got := e.scan(s, readLimit)
		e.fidelity("written by Apply, read through Scan", got, m)
	}
}

// fidelity compares every field written with the value read back and
// reports each difference with both values and their Go types.
func (e *env) fidelity(how string, got map[string]concord.Record, want model) {
	e.t.Helper()
	var diffs []string
	for _, k := range sortedNames(toFields(want)) {
		g, ok := got[k]
		if !ok || g.Deleted {
			diffs = append(diffs, fmt.Sprintf("record %q: not read back", k))
			continue
		}
		for _, name := range sortedNames(want[k]) {
			wv := want[k][name]
			gv, ok := g.Fields[name]
			switch {
			case !ok && wv != nil:
				diffs = append(diffs, fmt.Sprintf("record %q, field %q (%v): wrote %s, read back nothing (the field is absent)", k, name, e.s.kinds[name], show(wv)))
			case ok && !concord.EqualValues(wv, gv):
				diffs = append(diffs, fmt.Sprintf("record %q, field %q (%v): wrote %s, read back %s", k, name, e.s.kinds[name], show(wv), show(gv)))
			}
		}
	}
	if len(diffs) > 0 {
		e.t.Errorf("type fidelity, %s: values came back different (compared with concord.EqualValues):\n\t%s", how, strings.Join(diffs, "\n\t"))
	}
}

// toFields turns the keys of a model into a map sortedNames can sort.
func toFields(m model) fields {
	f := make(fields, len(m))
	for k := range m {
		f[k] = nil
	}
	return f
}
