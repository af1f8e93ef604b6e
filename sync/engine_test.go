package sync_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/internal/state"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

func TestMain(m *testing.M) {
	// Every state the tests commit is checked for broken tables
	// (state.Strict); benchmarks measure the engine without the check.
	flag.Parse()
	state.Strict = flag.Lookup("test.bench").Value.String() == ""
	goleak.VerifyTestMain(m)
}

// clock is a deterministic clock shared by the fakes of a test, so that
// last-writer-wins has real, distinct timestamps.
type clock struct {
	mu gosync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// rig is a pipeline of fake systems with the canonical shape.
// tb is what the rig needs of a test: *testing.T or *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
}

type rig struct {
	t       tb
	sys     map[concord.SystemID]*fake.System
	engine  *recsync.Engine
	audit   *audittest.Recorder
	store   *store.Memory
	clock   *clock
	lastErr error
	cfg     recsync.Config
}

// newEngine builds a new engine from the rig's configuration: a restart.
func (r *rig) newEngine() *recsync.Engine {
	r.t.Helper()
	e, err := recsync.New(r.cfg)
	if err != nil {
		r.t.Fatalf("%v", err)
	}
	return e
}

// replaceSystem replaces system i of the rig with a fake on the rig's clock
// and opts (which may set another clock), and restarts the engine over it.
func (r *rig) replaceSystem(i int, opts ...fake.Option) *fake.System {
	r.t.Helper()
	id := r.cfg.Systems[i].ID
	f := fake.New(string(id), append([]fake.Option{fake.WithClock(r.clock.now)}, opts...)...)
	r.sys[id], r.cfg.Systems[i].Connector = f, f
	r.engine = r.newEngine()
	return f
}

// withClockAhead replaces system i of the rig with a fake whose clock runs
// years ahead of the rig's while *ahead is true (a clock that ran ahead
// once), and restarts the engine over it.
func (r *rig) withClockAhead(i, years int) (*fake.System, *bool) {
	r.t.Helper()
	ahead := new(bool)
	f := r.replaceSystem(i, fake.WithClock(func() time.Time {
		if *ahead {
			return r.clock.now().AddDate(years, 0, 0)
		}
		return r.clock.now()
	}))
	return f, ahead
}

type rigOption func(*recsync.Config)

func newRig(t tb, names []concord.SystemID, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, sys: map[concord.SystemID]*fake.System{}, audit: audittest.New(),
		store: store.NewMemory(), clock: &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	// One attempt per call: tests of failures see them in the cycle they
	// happen; retry tests set their own policy.
	cfg := recsync.Config{Audit: r.audit, Store: r.store, Now: r.clock.now, Retry: recsync.RetryPolicy{MaxAttempts: 1}}
	for _, n := range names {
		f := fake.New(string(n), fake.WithClock(r.clock.now))
		r.sys[n] = f
		// The rig's tests inject read failures into Changes: first syncs
		// read the feed (scan_test.go tests scans).
		cfg.Systems = append(cfg.Systems, recsync.System{ID: n, Connector: f, FirstSync: recsync.FirstSyncFeed})
	}
	for _, o := range opts {
		o(&cfg)
	}
	r.cfg = cfg
	r.engine = r.newEngine()
	return r
}

func withResolver(res resolve.Resolver) rigOption {
	return func(c *recsync.Config) { c.Resolver = res }
}

func withRetry(p recsync.RetryPolicy) rigOption {
	return func(c *recsync.Config) { c.Retry = p }
}

func withGroups(g map[string][]string) rigOption {
	return func(c *recsync.Config) { c.Groups = g }
}

// cycle runs one cycle and fails the test on an unexpected error.
func (r *rig) cycle() *recsync.Report {
	r.t.Helper()
	rep, err := r.engine.RunCycle(context.Background())
	r.lastErr = err
	if err != nil {
		var ce *recsync.CycleError
		if !errors.As(err, &ce) {
			r.t.Fatalf("cycle: %v", err)
		}
	}
	return rep
}

// settle runs cycles until one writes nothing, and fails after 5.
func (r *rig) settle() {
	r.t.Helper()
	for range 5 {
		rep := r.cycle()
		writes := 0
		for _, s := range rep.Systems {
			writes += s.Writes
		}
		if writes == 0 && r.lastErr == nil {
			return
		}
	}
	r.t.Fatalf("no quiescence after 5 cycles; last error: %v", r.lastErr)
}

func (r *rig) fields(s concord.SystemID, key string) map[string]any {
	r.t.Helper()
	rec, ok := r.sys[s].Record(key)
	if !ok {
		return nil
	}
	return rec.Fields
}

// requireAll checks that every system holds want for key.
func (r *rig) requireAll(key string, want map[string]any) {
	r.t.Helper()
	for n := range r.sys {
		if got := r.fields(n, key); !concord.EqualValues(want, got) {
			r.t.Errorf("%s %s (-want +got):\n%s", n, key, cmp.Diff(want, got))
		}
	}
}

func TestEditPropagatesAndEchoIsNotAnEdit(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "city": "London"})
	rep := r.cycle()
	if got := rep.Systems["warehouse"].Writes; got != 1 {
		t.Fatalf("writes to warehouse = %d; want 1", got)
	}
	r.requireAll("c1", map[string]any{"name": "Ada", "city": "London"})

	// The next cycle reads the write back from the warehouse's feed: an
	// echo, which must produce no edit and no write.
	rep = r.cycle()
	for n, s := range rep.Systems {
		if s.Edits != 0 || s.Writes != 0 {
			t.Errorf("%s after echo: %+v; want no edits and no writes", n, *s)
		}
	}
	if n := r.sys["warehouse"].Effects("c1"); n != 1 {
		t.Errorf("warehouse effects = %d; want 1", n)
	}
}

// TestEditOfANullFieldIsAnEdit: a field whose canonical value is null,
// then set in one system, is an edit like any other. Edit detection's
// fast path compares each reported value with the canonical one; it must
// compare the value the system reported, not a zero value standing in for
// it (null would then look unchanged).
func TestEditOfANullFieldIsAnEdit(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "note": nil})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "Ada", "note": nil})
	r.sys["warehouse"].Edit("c1", map[string]any{"note": "fragile"})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "Ada", "note": "fragile"})
	r.sys["portal"].Edit("c1", map[string]any{"note": nil})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "Ada", "note": nil})
}

func TestConcurrentEditsOfDifferentFieldsBothSurvive(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse", "crm"})
	r.sys["portal"].Edit("c1", map[string]any{"phone": "+441", "company": "Acme"})
	r.settle()
	// Between two cycles: a phone edit in one system, a company edit in another.
	r.sys["portal"].Edit("c1", map[string]any{"phone": "+442"})
	r.sys["crm"].Edit("c1", map[string]any{"company": "Acme Ltd"})
	r.settle()
	r.requireAll("c1", map[string]any{"phone": "+442", "company": "Acme Ltd"})
	r.audit.RequireNone(t, audittest.Match{Kind: audit.ConflictDetected})
}

func TestConcurrentEditsOfOneFieldAreAConflict(t *testing.T) {
	pick := resolve.Func(func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
		for i, x := range c.Candidates {
			if x.System == "warehouse" && !x.Canonical {
				return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "test-priority"}, nil
			}
		}
		return resolve.Decision{}, nil
	})
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(pick))
	r.sys["portal"].Edit("c1", map[string]any{"phone": "1"})
	r.settle()
	r.sys["portal"].Edit("c1", map[string]any{"phone": "2"})
	r.sys["warehouse"].Edit("c1", map[string]any{"phone": "3"})
	r.settle()
	r.requireAll("c1", map[string]any{"phone": "3"})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1", Unit: "phone"})
	if len(ev.Candidates) != 2 {
		t.Fatalf("conflict candidates = %+v; want portal and warehouse", ev.Candidates)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.MergeDecided, Key: "c1", Rule: "test-priority"})
	// Resolved once: the resolution supersedes both, never raised again.
	r.settle()
	r.audit.RequireCount(t, audittest.Match{Kind: audit.ConflictDetected}, 1)
}

func TestUnresolvedConflictHoldsOnlyThatField(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}) // no resolver: hold
	r.sys["portal"].Edit("c1", map[string]any{"phone": "1", "city": "Paris"})
	r.sys["portal"].Edit("c2", map[string]any{"phone": "9"})
	r.settle()
	r.sys["portal"].Edit("c1", map[string]any{"phone": "2"})
	r.sys["warehouse"].Edit("c1", map[string]any{"phone": "3", "city": "Lyon"})
	r.sys["warehouse"].Edit("c2", map[string]any{"phone": "8"})
	r.settle()
	// city was edited in one system only: it syncs; phone waits.
	if got := r.fields("portal", "c1")["city"]; got != "Lyon" {
		t.Errorf("portal city = %v; want Lyon", got)
	}
	if p, w := r.fields("portal", "c1")["phone"], r.fields("warehouse", "c1")["phone"]; p != "2" || w != "3" {
		t.Errorf("held phone was written: portal %v, warehouse %v; want 2 and 3 kept", p, w)
	}
	r.requireAll("c2", map[string]any{"phone": "8"})
	holds, err := r.engine.Holds(context.Background())
	if err != nil {
		t.Fatalf("%v", err)
	}
	if len(holds) != 1 || holds[0].Key != "c1" || holds[0].Unit != "phone" {
		t.Fatalf("holds = %+v; want c1/phone", holds)
	}
	h := holds[0]
	var got []string
	for _, c := range h.Candidates {
		got = append(got, string(c.System)+"="+c.Values["phone"].(string))
	}
	if diff := cmp.Diff([]string{"portal=2", "warehouse=3"}, got); diff != "" {
		t.Errorf("held candidates (-want +got):\n%s", diff)
	}
	if !h.BaseKnown || h.Base["phone"] != "1" {
		t.Errorf("base = %v (known %v); want phone=1", h.Base, h.BaseKnown)
	}
	r.audit.RequireCount(t, audittest.Match{Kind: audit.ConflictHeld, Key: "c1"}, 1)
}

func TestFailedWriteIsRetriedNextCycle(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["warehouse"].FailKey("c1", connector.Transient(errors.New("503")))
	r.sys["portal"].Edit("c1", map[string]any{"city": "Oslo"})
	r.sys["portal"].Edit("c2", map[string]any{"city": "Rome"})
	r.cycle()
	if !errors.Is(r.lastErr, connector.ErrTransient) {
		t.Fatalf("cycle error = %v; want the transient write failure", r.lastErr)
	}
	if r.fields("warehouse", "c1") != nil {
		t.Fatal("failing write applied")
	}
	r.requireAll("c2", map[string]any{"city": "Rome"}) // its sibling went through
	r.audit.Require(t, audittest.Match{Kind: audit.WriteFailed, Key: "c1", System: "warehouse"})

	r.sys["warehouse"].ClearFailKey("c1")
	r.settle() // c1 is not in any change feed now: it is retried as pending
	r.requireAll("c1", map[string]any{"city": "Oslo"})
}

func TestCrashBeforeCommitLosesNothing(t *testing.T) {
	// A store whose commit fails once: the cycle's writes happened but the
	// state did not advance. The next cycle redoes the work idempotently;
	// having lost its record of the first write, it sees the warehouse's
	// later edit as concurrent, and the systems' timestamps settle it.
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"city": "Oslo", "n": 1})
	failing := &failOnce{Store: r.store}
	e, err := recsync.New(recsync.Config{Store: failing, Resolver: resolve.LastWriterWins(), Systems: []recsync.System{
		{ID: "portal", Connector: r.sys["portal"]}, {ID: "warehouse", Connector: r.sys["warehouse"]}}})
	if err != nil {
		t.Fatalf("%v", err)
	}
	if _, err := e.RunCycle(context.Background()); err == nil {
		t.Fatal("cycle with a failing commit succeeded")
	}
	r.engine = e
	r.sys["warehouse"].Edit("c1", map[string]any{"n": 2}) // a later edit must survive the redo
	r.settle()
	r.requireAll("c1", map[string]any{"city": "Oslo", "n": 2})
}

type failOnce struct {
	store.Store
	done bool
}

func (f *failOnce) Commit(ctx context.Context, c *store.Commit) error {
	if !f.done {
		f.done = true
		return errors.New("disk full")
	}
	return f.Store.Commit(ctx, c)
}

func TestGroupsNeverMix(t *testing.T) {
	byWarehouse := resolve.Func(func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
		for i, x := range c.Candidates {
			if x.System == "portal" && !x.Canonical {
				return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "portal-first"}, nil
			}
		}
		return resolve.Decision{}, nil
	})
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(byWarehouse),
		withGroups(map[string][]string{"address": {"street", "city", "postal_code"}}))
	r.sys["portal"].Edit("c1", map[string]any{"street": "1 Old Rd", "city": "Leeds", "postal_code": "LS1 1AA"})
	r.settle()
	// A whole new address in the portal, a postal-code fix of the old one
	// in the warehouse: the merge must not build "2 New St, York, LS1 1AB".
	r.sys["portal"].Edit("c1", map[string]any{"street": "2 New St", "city": "York", "postal_code": "YO1 7HH"})
	r.sys["warehouse"].Edit("c1", map[string]any{"postal_code": "LS1 1AB"})
	r.settle()
	r.requireAll("c1", map[string]any{"street": "2 New St", "city": "York", "postal_code": "YO1 7HH"})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Unit: "address"})
	for _, c := range ev.Candidates {
		if c.System == "warehouse" && !concord.EqualValues(c.Values, map[string]any{"street": "1 Old Rd", "city": "Leeds", "postal_code": "LS1 1AB"}) {
			t.Errorf("warehouse candidate = %v; want the old address with the fixed postal code", c.Values)
		}
	}
}

func TestDeletePropagatesAndConflictsWithConcurrentEdit(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.Func(
		func(_ context.Context, c resolve.Conflict) (resolve.Decision, error) {
			if c.Unit != resolve.RecordUnit {
				return resolve.Decision{}, nil
			}
			for i, x := range c.Candidates { // updates win over deletes
				if !x.Deleted {
					return resolve.Decision{Outcome: resolve.Pick, Winner: i, Rule: "update-wins"}, nil
				}
			}
			return resolve.Decision{}, nil
		})))
	r.sys["portal"].Edit("c1", map[string]any{"name": "A"})
	r.sys["portal"].Edit("c2", map[string]any{"name": "B"})
	r.settle()
	r.sys["warehouse"].Delete("c2")
	r.settle()
	if r.fields("portal", "c2") != nil {
		t.Fatalf("c2 not deleted in portal")
	}
	// A delete in one system while the other edits: a conflict on the
	// record, settled by the resolver (update wins: the record comes back).
	r.sys["warehouse"].Delete("c1")
	r.sys["portal"].Edit("c1", map[string]any{"name": "A2"})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "A2"})
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "c1", Unit: resolve.RecordUnit})
}

func TestInvalidRecordIsQuarantinedSiblingsProceed(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("ok", map[string]any{"n": 1})
	// A connector that returns a value the engine cannot use.
	bad := &badValue{Connector: r.sys["portal"]}
	e, err := recsync.New(recsync.Config{Store: r.store, Audit: r.audit, Systems: []recsync.System{
		{ID: "portal", Connector: bad}, {ID: "warehouse", Connector: r.sys["warehouse"]}}})
	if err != nil {
		t.Fatalf("%v", err)
	}
	_, err = e.RunCycle(context.Background())
	var re *concord.RecordError
	if !errors.As(err, &re) || re.Key != "poison" || re.Field != "n" || re.System != "portal" {
		t.Fatalf("cycle error = %v; want a RecordError naming portal, poison, n", err)
	}
	if got := r.fields("warehouse", "ok"); got == nil {
		t.Fatal("valid sibling did not sync")
	}
	dl := storedDeadLetters(t, r.store)
	if len(dl) != 1 || dl[0].Key != "poison" || dl[0].System != "portal" || !dl[0].Inbound {
		t.Fatalf("dead letters = %+v; want the poison record", dl)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.RecordQuarantined, Key: "poison"})
}

type badValue struct{ connector.Connector }

func (b *badValue) Changes(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
	batch, err := b.Connector.Changes(ctx, c, limit)
	batch.Records = append(batch.Records, concord.Record{Key: "poison", Fields: map[string]any{"n": struct{}{}}})
	return batch, err
}

func TestIngestAppliesPushedChanges(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "city": "Oslo"})
	r.settle()
	// A webhook with only the changed field: absent fields are left alone.
	rep, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{{Key: "c1", Fields: map[string]any{"city": "Bergen"}}})
	if err != nil {
		t.Fatalf("%v", err)
	}
	if rep.Systems["warehouse"].Writes != 1 {
		t.Fatalf("ingest writes = %d; want 1", rep.Systems["warehouse"].Writes)
	}
	if diff := cmp.Diff(map[string]any{"name": "A", "city": "Bergen"}, r.fields("warehouse", "c1")); diff != "" {
		t.Fatalf("warehouse (-want +got):\n%s", diff)
	}
	if _, err := r.engine.Ingest(context.Background(), "nowhere", nil); err == nil {
		t.Fatal("Ingest from an unknown system succeeded")
	}
}

func TestNewValidates(t *testing.T) {
	f := fake.New("a")
	for _, tc := range []struct {
		name string
		cfg  recsync.Config
		want string
	}{
		{"one system", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}}}, "at least two systems"},
		{"too many systems", recsync.Config{Systems: func() (ss []recsync.System) {
			for i := range recsync.MaxSystems + 1 {
				ss = append(ss, recsync.System{ID: concord.SystemID(fmt.Sprint("s", i)), Connector: f})
			}
			return ss
		}()}, "more than 32 (MaxSystems)"},
		{"nil connector", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b"}}}, `system "b" has a nil Connector`},
		{"no id", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {Connector: f}}}, "system 1 has no ID"},
		{"duplicate", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "a", Connector: f}}}, `system "a" is configured twice`},
		{"NUL in an id", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b\x00", Connector: f}}}, "not valid UTF-8 without NUL"},
		{"invalid UTF-8 id", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "\xff", Connector: f}}}, "not valid UTF-8 without NUL"},
		{"long id", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: concord.SystemID(strings.Repeat("b", 129)), Connector: f}}}, "more than 128"},
		{"NUL in the pipeline", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b", Connector: f}}, Pipeline: "p\x00", Store: store.NewMemory()}, "Pipeline"},
		{"long instance", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b", Connector: f}}, Instance: strings.Repeat("i", 200), Store: store.NewMemory()}, "Instance"},
		{"overlapping groups", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b", Connector: f}},
			Groups: map[string][]string{"g1": {"x", "y"}, "g2": {"y", "z"}}}, `field "y" is in groups`},
		{"tiny group", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b", Connector: f}},
			Groups: map[string][]string{"g": {"x"}}}, "at least two fields"},
		{"no store", recsync.Config{Systems: []recsync.System{{ID: "a", Connector: f}, {ID: "b", Connector: f}}}, "Store is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := recsync.New(tc.cfg)
			if !errors.Is(err, recsync.ErrConfig) {
				t.Fatalf("New = %v; want ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %q; want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNonOwnerEditIsRevertedInThatSystem(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"credit_limit": "erp"})
	r := newRig(t, []concord.SystemID{"crm", "erp"}, withResolver(resolve.Chain(sor, resolve.LastWriterWins())))
	r.sys["erp"].Edit("c1", map[string]any{"credit_limit": 1000, "name": "Acme"})
	r.settle()
	// The CRM (not the owner) changes the credit limit; nobody else does.
	r.sys["crm"].Edit("c1", map[string]any{"credit_limit": 50000})
	r.settle()
	r.requireAll("c1", map[string]any{"credit_limit": 1000, "name": "Acme"})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.ChangeRefused, Key: "c1", System: "crm", Rule: resolve.RuleSystemOfRecord})
	if ev.Reason == "" {
		t.Error("refusal without a reason")
	}
	r.audit.Require(t, audittest.Match{Kind: audit.WriteSucceeded, Key: "c1", System: "crm"})
	// The owner's own edits go through.
	r.sys["erp"].Edit("c1", map[string]any{"credit_limit": 2000})
	r.settle()
	r.requireAll("c1", map[string]any{"credit_limit": 2000, "name": "Acme"})
}

func TestReplayingABatchChangesNothing(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"city": "Oslo"})
	old, _ := r.sys["portal"].Record("c1")
	r.settle()
	r.sys["portal"].Edit("c1", map[string]any{"city": "Bergen"})
	r.settle()
	cur, _ := r.sys["portal"].Record("c1")
	before := r.sys["warehouse"].Effects("c1")
	// The current state again (a webhook delivered twice), then an older
	// one delivered late: neither is an edit.
	for _, rec := range []concord.Record{cur, old} {
		rep, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{rec})
		if err != nil {
			t.Fatal(err)
		}
		for n, s := range rep.Systems {
			if s.Edits != 0 || s.Writes != 0 {
				t.Errorf("replaying %v: %s %+v; want no edits, no writes", rec.Fields, n, *s)
			}
		}
	}
	if after := r.sys["warehouse"].Effects("c1"); after != before {
		t.Errorf("warehouse effects %d -> %d after replays", before, after)
	}
	r.requireAll("c1", map[string]any{"city": "Bergen"})
}

func TestKeylessRecordIsQuarantined(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	rep, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{
		{Fields: map[string]any{"city": "Oslo"}},
		{Key: "c2", Fields: map[string]any{"city": "Rome"}},
	})
	if !errors.Is(err, concord.ErrNoKey) {
		t.Fatalf("Ingest error = %v; want ErrNoKey", err)
	}
	if !strings.Contains(err.Error(), "portal") {
		t.Errorf("error %q does not name the system", err)
	}
	if rep.Systems["portal"].Quarantined != 1 || rep.Systems["warehouse"].Writes != 1 {
		t.Fatalf("report %+v / %+v; want 1 quarantined, 1 write", *rep.Systems["portal"], *rep.Systems["warehouse"])
	}
	dl := storedDeadLetters(t, r.store)
	if len(dl) != 1 || dl[0].Record.Fields["city"] != "Oslo" {
		t.Fatalf("dead letters = %+v; want the keyless record with its payload", dl)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["portal"].Edit("c1", map[string]any{"city": "Oslo"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.engine.Run(ctx, time.Millisecond) }()
	deadline := time.After(10 * time.Second)
	for r.fields("warehouse", "c1") == nil {
		select {
		case <-deadline:
			t.Fatal("Run did not sync within 10s")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v; want context.Canceled", err)
	}
	if err := r.engine.Run(context.Background(), 0); err == nil {
		t.Fatal("Run with a zero interval succeeded")
	}
}

func TestRefusedFirstValueIsHeldNotErased(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"credit_limit": "erp"})
	r := newRig(t, []concord.SystemID{"crm", "erp"}, withResolver(sor))
	// The CRM sets an owned field the owner has never set: there is no
	// value to revert to, so the change waits for a person.
	r.sys["crm"].Edit("c1", map[string]any{"name": "Acme", "credit_limit": 100})
	r.settle()
	if got := r.fields("erp", "c1"); got["name"] != "Acme" || got["credit_limit"] != nil {
		t.Fatalf("erp = %v; want the name and no credit limit yet", got)
	}
	holds, err := r.engine.Holds(context.Background())
	if err != nil || len(holds) != 1 || holds[0].Unit != "credit_limit" {
		t.Fatalf("holds = %+v, %v; want credit_limit held", holds, err)
	}
	// A person accepts it; the next cycle writes it to the owner.
	if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: holds[0].Key, Unit: holds[0].Unit, Revision: holds[0].Revision, Candidate: len(holds[0].Candidates) - 1, Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("c1", map[string]any{"name": "Acme", "credit_limit": 100})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.MergeDecided, Key: "c1", Rule: recsync.RulePerson})
	if !strings.Contains(ev.Reason, "ann@example.com") {
		t.Errorf("settle reason %q does not name the person", ev.Reason)
	}
	if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: holds[0].Key, Unit: holds[0].Unit, Revision: holds[0].Revision, Candidate: 0, Person: "ann@example.com"}); !errors.Is(err, recsync.ErrNoHold) {
		t.Errorf("second Settle = %v; want ErrNoHold", err)
	}
}

// A store restored from a backup must not make the engine reissue writes
// that a system already saw (Riak's "kv679"): a reissued version with the
// same value would be taken by the system as a repeat of the lost write and
// ignored. After the restore the host calls NewEpoch: the engine takes a new
// identity and every idempotency key changes.
func TestRestoredStoreTakesANewEpoch(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.LastWriterWins()))
	r.sys["portal"].Edit("c1", map[string]any{"a": "1"})
	r.settle()
	backup := r.store.Snapshot()
	r.sys["portal"].Edit("c1", map[string]any{"a": "2"})
	r.settle() // the warehouse got a=2 with some idempotency key K
	before := map[string]bool{}
	for _, p := range r.sys["warehouse"].Applied() {
		before[p.IdempotencyKey] = true
	}
	r.sys["warehouse"].Edit("c1", map[string]any{"a": "5"}) // not yet read by anyone

	// Disaster: the store is restored from the backup, then the portal
	// sets the same value the lost future had written.
	epoch, _ := backup.Epoch(context.Background())
	newEpoch, err := backup.NewEpoch(context.Background())
	if err != nil || newEpoch == epoch {
		t.Fatalf("NewEpoch = %d, %v", newEpoch, err)
	}
	cfg := recsync.Config{Store: backup, Audit: r.audit, Now: r.clock.now, Resolver: resolve.LastWriterWins()}
	for _, n := range []concord.SystemID{"portal", "warehouse"} {
		cfg.Systems = append(cfg.Systems, recsync.System{ID: n, Connector: r.sys[n]})
	}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.engine, r.store = e, backup
	r.sys["portal"].Edit("c1", map[string]any{"a": "2"})
	applied := len(r.sys["warehouse"].Applied())
	// The warehouse's read fails in the first cycle after the restore,
	// so the engine writes before it sees the warehouse's own edit.
	r.sys["warehouse"].FailNext(fake.OpChanges, 1, nil)
	r.cycle()
	r.settle()
	for _, p := range r.sys["warehouse"].Applied()[applied:] {
		if before[p.IdempotencyKey] {
			t.Errorf("a write after the restore reused the key %s of a write before it", p.IdempotencyKey)
		}
	}
	// The systems agree, on a value someone entered last.
	p, _ := r.sys["portal"].Record("c1")
	w, _ := r.sys["warehouse"].Record("c1")
	if !concord.EqualValues(p.Fields, w.Fields) {
		t.Fatalf("after the restore: portal %v, warehouse %v", p.Fields, w.Fields)
	}
	if p.Fields["a"] != "2" {
		t.Fatalf("a = %v; want the portal's latest edit 2", p.Fields["a"])
	}
}
