package sync_test

// Regression tests for what adversarial testing found (issue 8): each is
// named after the behaviour it guards.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/sync/store/boltstore"
	"github.com/concordsync/concord/transform"
	"github.com/concordsync/concord/transform/dict"
)

// A write whose reply was lost may have been applied: when the system later
// reports the value, it is the engine's own write (an echo), not an edit
// that could beat a newer one.
func TestLostWriteReplyNeverLosesANewerEdit(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("c1", map[string]any{"city": "v0"})
	r.settle()

	a.Edit("c1", map[string]any{"city": "v1"})
	b.FailNext(fake.OpApply, 1, nil)
	r.cycle() // the write of v1 to b fails

	a.Edit("c1", map[string]any{"city": "v2"})
	a.FailNext(fake.OpChanges, 1, nil)
	b.LoseRepliesNext(1)
	r.cycle() // a unread; v1 is applied in b, but its reply is lost

	b.FailKey("c1", nil)
	r.cycle() // a's v2 is read; b reports v1; writes to b fail
	b.ClearFailKey("c1")
	r.settle()

	r.requireAll("c1", map[string]any{"city": "v2"})
	for _, ev := range r.audit.Events() {
		if ev.Kind == audit.EditObserved && ev.System == "b" {
			t.Errorf("the engine's own write was taken as b's edit: %+v", ev)
		}
	}
}

// Writes are audited whether or not their cycle commits, and the next cycle
// does not blame the target for the engine's own write.
func TestWritesOfAnUncommittedCycleAreAuditedAndNotBlamedOnTheTarget(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	fs := &failFinal{Store: r.store}
	e := r.rebuild(fs, []recsync.System{{ID: "portal", Connector: r.sys["portal"]}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
	r.sys["portal"].Edit("c1", map[string]any{"city": "Leeds"})
	fs.fail = true
	if _, err := e.RunCycle(context.Background()); err == nil {
		t.Fatal("the cycle whose commit failed reported no error")
	}
	r.audit.Require(t, audittest.Match{Kind: audit.WriteSucceeded, System: "warehouse", Key: "c1"})
	r.settle()
	r.requireAll("c1", map[string]any{"city": "Leeds"})
	for _, ev := range r.audit.Events() {
		if ev.Kind == audit.EditObserved && ev.System == "warehouse" {
			t.Errorf("the engine's own write was taken as the warehouse's edit: %+v", ev)
		}
	}
}

// failFinal fails a cycle's final commit (the one that moves cursors) while
// fail is set, once.
type failFinal struct {
	store.Store
	fail bool
}

func (f *failFinal) Commit(ctx context.Context, c *store.Commit) error {
	if f.fail && len(c.Cursors) > 0 {
		f.fail = false
		return errors.New("disk full")
	}
	return f.Store.Commit(ctx, c)
}

// priceGate holds a price that falls below a tenth of its value.
var priceGate = resolve.GateFunc(func(_ context.Context, c resolve.Change) (resolve.Verdict, error) {
	from, _ := c.From["price"].(int)
	to, _ := c.To["price"].(int)
	if from > 0 && to*10 < from {
		return resolve.Verdict{Outcome: resolve.HoldChange, Rule: "price-drop", Reason: "price falls by more than 90%"}, nil
	}
	return resolve.Verdict{}, nil
})

func withGates(g ...resolve.Gate) rigOption {
	return func(c *recsync.Config) { c.Gates = g }
}

// A person who rejects a held change (settles on the old value) has the old
// value written back to the system that made the change, as a refusal is.
func TestRejectedHoldIsWrittenBackToTheEditingSystem(t *testing.T) {
	r := newRig(t, []concord.SystemID{"erp", "portal", "warehouse"}, withGates(priceGate))
	r.sys["erp"].Edit("p1", map[string]any{"price": 100})
	r.settle()
	r.sys["portal"].Edit("p1", map[string]any{"price": 1})
	r.settle()
	holds, err := r.engine.Holds(context.Background())
	if err != nil || len(holds) != 1 {
		t.Fatalf("holds = %+v, %v; want one", holds, err)
	}
	old := -1
	for i, c := range holds[0].Candidates {
		if c.Canonical {
			old = i
		}
	}
	if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: holds[0].Key, Unit: holds[0].Unit, Revision: holds[0].Revision, Candidate: old, Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("p1", map[string]any{"price": 100})
}

// A settlement names what the person saw: if the hold changed since it was
// listed, Settle refuses and applies nothing.
func TestSettleFromAStaleListingIsRefused(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b", "c"})
	r.sys["a"].Edit("k", map[string]any{"x": "A"})
	r.sys["b"].Edit("k", map[string]any{"x": "B"})
	r.settle()
	holds, err := r.engine.Holds(context.Background())
	if err != nil || len(holds) != 1 {
		t.Fatalf("holds = %+v, %v", holds, err)
	}
	seen := holds[0]
	r.sys["c"].Edit("k", map[string]any{"x": "C"})
	r.cycle()
	after, _ := r.engine.Holds(context.Background())
	if len(after) != 1 || len(after[0].Candidates) <= len(seen.Candidates) {
		t.Fatalf("holds after c's edit = %+v; want more candidates", after)
	}
	for i, c := range seen.Candidates {
		if got := after[0].Candidates[i]; got.System != c.System || !concord.EqualValues(got.Values, c.Values) {
			t.Errorf("candidate %d moved: %v -> %v; candidate order must be stable", i, c, got)
		}
	}
	err = r.engine.Settle(context.Background(), recsync.Settlement{Key: seen.Key, Unit: seen.Unit, Revision: seen.Revision, Candidate: 0, Person: "ann@example.com"})
	if !errors.Is(err, recsync.ErrHoldChanged) {
		t.Fatalf("Settle from a stale listing = %v; want ErrHoldChanged", err)
	}
	if got, _ := r.engine.Holds(context.Background()); len(got) != 1 {
		t.Fatalf("the stale settlement applied something: holds = %+v", got)
	}
	if err := r.engine.Settle(context.Background(), recsync.Settlement{Key: after[0].Key, Unit: after[0].Unit, Revision: after[0].Revision, Candidate: 0, Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	want := after[0].Candidates[0].Values["x"]
	r.requireAll("k", map[string]any{"x": want})
}

// With no resolver, a delete concurrent with an edit holds the record's
// existence: it is created and deleted nowhere until a person decides.
func TestHeldDeleteConflictWritesNothing(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"})
	r.sys["a"].Edit("k", map[string]any{"x": "1", "y": "1"})
	r.settle()
	r.sys["a"].Delete("k")
	r.sys["b"].Edit("k", map[string]any{"x": "2"})
	r.cycle()
	r.cycle()
	if _, ok := r.sys["a"].Record("k"); ok {
		t.Fatal("the held record was re-created in the deleting system")
	}
	if _, ok := r.sys["b"].Record("k"); !ok {
		t.Fatal("the held record was deleted in the editing system")
	}
	holds, _ := r.engine.Holds(context.Background())
	if len(holds) != 1 || holds[0].Unit != resolve.RecordUnit {
		t.Fatalf("holds = %+v; want the record's existence held", holds)
	}
}

// upper is an outbound transform that writes a field in capitals (the
// warehouse's notation), with an identity inbound transform.
type upper struct{ field string }

func (u upper) Transform(_ context.Context, r concord.Record) (concord.Record, error) {
	out := r.Clone()
	if s, ok := out.Fields[u.field].(string); ok {
		out.Fields[u.field] = strings.ToUpper(s)
	}
	return out, nil
}

// shouting is a connector that stores one field in capitals whatever it is
// sent (the system's own notation, invisible to transforms).
type shouting struct {
	*fake.System
	field string
}

func (s shouting) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	for i, p := range ps {
		if v, ok := p.Set[s.field].(string); ok {
			p.Set = maps2(p.Set)
			p.Set[s.field] = strings.ToUpper(v)
			ps[i] = p
		}
	}
	return s.System.Apply(ctx, ps)
}

func maps2(m map[string]concord.Value) map[string]concord.Value {
	out := make(map[string]concord.Value, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// A system's own notation of a value it was sent ("LEEDS" for "Leeds")
// stays an echo when the system later changes another field, also after
// the engine wrote it another field: before, that write recorded the
// canonical values' hash as what the system held of the city, and the
// system's next change of a third field made LEEDS an edit that reached
// every system (the "connector" cases).
func TestSystemNotationIsNeverAPhantomEdit(t *testing.T) {
	cities, err := dict.New(dict.Field{Name: "city", Type: dict.String})
	if err != nil {
		t.Fatal(err)
	}
	shout := func(r *rig) recsync.System {
		return recsync.System{ID: "warehouse", Connector: shouting{r.sys["warehouse"], "city"}}
	}
	for _, tc := range []struct {
		name string
		sys  func(r *rig) recsync.System
		opts []rigOption
	}{
		{"outbound transform", func(r *rig) recsync.System {
			return recsync.System{ID: "warehouse", Connector: r.sys["warehouse"], Outbound: upper{"city"}}
		}, nil},
		{"connector", shout, nil},
		{"connector, with a dictionary", shout, []rigOption{withConfig(func(c *recsync.Config) { c.Dictionary = cities })}},
		{"connector, in another shape", func(r *rig) recsync.System {
			m := transform.MustMapping(transform.Rename("town", "city"), transform.Rename("mail", "email"))
			return recsync.System{ID: "warehouse", Connector: shouting{r.sys["warehouse"], "town"}, Inbound: m.Inbound(), Outbound: m.Outbound()}
		}, nil},
		{"connector, behind a Func (no lineage)", func(r *rig) recsync.System {
			m := transform.MustMapping(transform.Rename("town", "city"), transform.Rename("mail", "email"))
			return recsync.System{ID: "warehouse", Connector: shouting{r.sys["warehouse"], "town"},
				Inbound: transform.Func(m.Inbound().Transform), Outbound: transform.Func(m.Outbound().Transform)}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"portal", "warehouse"})
			r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: r.sys["portal"]}, tc.sys(r)}, tc.opts...)
			r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "city": "Leeds"})
			r.settle()
			r.cycle()
			r.sys["warehouse"].Edit("c1", map[string]any{"name": "Ada Lovelace"})
			r.settle()
			if got := r.fields("portal", "c1"); got["city"] != "Leeds" || got["name"] != "Ada Lovelace" {
				t.Fatalf("portal = %v; want city Leeds and the new name", got)
			}
			// The warehouse is written another field while it holds
			// the city in its notation (plan keeps its copy of the
			// city), then changes a third field: still no edit of the
			// city, and both systems keep their notations.
			r.sys["portal"].Edit("c1", map[string]any{"email": "ada@example.com"})
			r.settle()
			r.sys["warehouse"].Edit("c1", map[string]any{"phone": "1"})
			r.settle()
			if got := r.fields("portal", "c1"); got["city"] != "Leeds" || got["phone"] != "1" {
				t.Fatalf("portal = %v; want city Leeds and the warehouse's phone", got)
			}
			if got := r.fields("warehouse", "c1"); got["email"] != "ada@example.com" && got["mail"] != "ada@example.com" {
				t.Fatalf("warehouse = %v; want the portal's e-mail", got)
			}
			for _, ev := range r.audit.Events() {
				if ev.Kind == audit.EditObserved && ev.Unit == "city" {
					if ev.System == "warehouse" {
						t.Errorf("the warehouse's notation became an edit: %+v", ev)
					}
				}
			}
		})
	}
}

// feedOnly is a connector without connector.Getter: it cannot be read by
// key.
type feedOnly struct{ connector.Connector }

// A replayed dead letter whose record the system no longer has is that
// system's delete, as a cycle's refetch reads Get's omission: the letter's
// older payload is never merged. Before, it was: the record was created in
// every other system while its own system lacked it, and where the delete
// had been read before the replay (from a feed whose deletions carry no
// time) nothing ever told the engine again, so the systems stayed apart.
// A Get that answers with another record than the one asked for (against
// its contract) does not stand for it: only the letter's own key counts.
func TestAReplayOfARecordTheSystemDeletedIsItsDelete(t *testing.T) {
	for _, mode := range []string{"deletions timed", "deletions untimed", "Get answers another key"} {
		timed := mode != "deletions untimed"
		t.Run(mode, func(t *testing.T) {
			var poison atomic.Bool
			poison.Store(true)
			in := transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
				if poison.Load() && rec.Fields["x"] == "poison" {
					return concord.Record{}, errors.New("poisoned")
				}
				return rec, nil
			})
			r := newRig(t, []concord.SystemID{"portal", "warehouse"})
			var portal connector.Connector = r.sys["portal"]
			switch mode {
			case "deletions untimed":
				portal = untimedDeletes{r.sys["portal"]}
			case "Get answers another key":
				portal = otherGet{r.sys["portal"]}
			}
			r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: portal, Inbound: in}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
			r.sys["portal"].Edit("c1", map[string]any{"x": "poison", "name": "Ada"})
			r.cycle()
			dl, err := r.engine.DeadLetters(context.Background())
			if err != nil || len(dl) != 1 || !dl[0].Inbound {
				t.Fatalf("dead letters = %+v, %v; want the poisoned read", dl, err)
			}
			r.sys["portal"].Delete("c1")
			if !timed {
				r.settle() // the deletion is read, and says nothing of when
			}
			poison.Store(false) // the transform is fixed
			if err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Person: "ops"}); err != nil {
				t.Fatalf("Replay = %v", err)
			}
			if got := r.fields("warehouse", "c1"); got != nil {
				t.Fatalf("the replay created the portal's deleted record in the warehouse: %v", got)
			}
			r.settle()
			if got := r.fields("warehouse", "c1"); got != nil {
				t.Fatalf("warehouse c1 = %v; the portal deleted it", got)
			}
			if got := r.sys["warehouse"].Records(); len(got) != 0 {
				t.Fatalf("warehouse holds %v; want nothing", got)
			}
			if left, _ := r.engine.DeadLetters(context.Background()); len(left) != 0 {
				t.Fatalf("dead letters left: %+v", left)
			}
		})
	}
}

// otherGet is a system whose Get answers with another record than the
// ones asked for.
type otherGet struct{ *fake.System }

func (s otherGet) Get(context.Context, []string) ([]concord.Record, error) {
	return []concord.Record{{Key: "someone-else", Fields: map[string]concord.Value{"name": "Bob"}}}, nil
}

// untimedDeletes is a feed whose deletions carry no time (tombstones
// without a modification time).
type untimedDeletes struct{ *fake.System }

func (s untimedDeletes) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := s.System.Changes(ctx, cur, limit)
	for i := range b.Records {
		if b.Records[i].Deleted {
			b.Records[i].Modified = time.Time{}
		}
	}
	return b, err
}

// upperCity is a system that keeps street and city in one field, addr
// ("street|city"), and writes the city part in its own notation: upper
// case.
type upperCity struct{ *fake.System }

func (s upperCity) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	for i, p := range ps {
		if v, ok := p.Set["addr"].(string); ok {
			street, city, _ := strings.Cut(v, "|")
			p.Set = maps2(p.Set)
			p.Set["addr"] = street + "|" + strings.ToUpper(city)
			ps[i] = p
		}
	}
	return s.System.Apply(ctx, ps)
}

// A unit packed into one system field with a unit being written (the city
// in addr, beside a new street) is written again, unchanged: the system
// keeps its own notation of it, and a change the system makes to another
// field before the engine reads the write back does not make that
// notation an edit. Before, the write recorded the round trip's city
// (Leeds) as what the system held, and that change made its LEEDS an edit
// that reached every system. With the transforms' lineage known (a
// Mapping), without it (the same Mapping behind Funcs), and with the city
// sensitive (its hashes keyed).
func TestAUnitPackedWithAWrittenOneKeepsItsNotation(t *testing.T) {
	join := func(v []concord.Value) ([]concord.Value, error) {
		return []concord.Value{fmt.Sprint(v[0]) + "|" + fmt.Sprint(v[1])}, nil
	}
	split := func(v []concord.Value) ([]concord.Value, error) {
		s, _ := v[0].(string)
		street, city, _ := strings.Cut(s, "|")
		return []concord.Value{street, city}, nil
	}
	m := transform.MustMapping(transform.Computed([]string{"addr"}, []string{"street", "city"}, split, join))
	sensitive := withConfig(func(c *recsync.Config) { c.Sensitive, c.Keys = []string{"city"}, keyRing(t, "a1", "a1") })
	for _, tc := range []struct {
		name    string
		in, out transform.Transformer
		opts    []rigOption
	}{
		{"Mapping", m.Inbound(), m.Outbound(), nil},
		{"Func", transform.Func(m.Inbound().Transform), transform.Func(m.Outbound().Transform), nil},
		{"Mapping, the city sensitive", m.Inbound(), m.Outbound(), []rigOption{sensitive}}, // keyed hashes
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"portal", "warehouse"})
			r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: r.sys["portal"]},
				{ID: "warehouse", Connector: upperCity{r.sys["warehouse"]}, Inbound: tc.in, Outbound: tc.out}}, tc.opts...)
			r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "street": "1 Main St", "city": "Leeds"})
			r.settle()
			if got := r.fields("warehouse", "c1")["addr"]; got != "1 Main St|LEEDS" {
				t.Fatalf("warehouse addr = %v, want 1 Main St|LEEDS", got)
			}
			r.sys["portal"].Edit("c1", map[string]any{"street": "2 High St"})
			r.cycle()
			if got := r.fields("warehouse", "c1")["addr"]; got != "2 High St|LEEDS" {
				t.Fatalf("warehouse addr = %v, want 2 High St|LEEDS", got)
			}
			r.sys["warehouse"].Edit("c1", map[string]any{"phone": "1"}) // before the engine reads the write back
			r.settle()
			if got := r.fields("portal", "c1"); got["city"] != "Leeds" || got["street"] != "2 High St" || got["phone"] != "1" {
				t.Fatalf("portal = %v; want Leeds, the new street and the warehouse's phone", got)
			}
			for _, ev := range r.audit.Events() {
				if ev.Kind == audit.EditObserved && ev.System == "warehouse" && ev.Covers("city") {
					t.Errorf("the warehouse's notation of the city became an edit: %+v", ev)
				}
			}
		})
	}
}

// A Func inbound transform that fails on a record without a field it
// needs (an error, or a panic) is also asked, by a write to a system that
// holds a unit in a notation of its own (the city, shouted) which the
// round trip does not give back as it is (the Func trims it), what it
// makes of the record without the fields written (plan): that failure
// only means the write records every unit as the round trip gives it. The
// write goes through, nothing is dead-lettered, and the systems agree.
func TestAWriteToAFuncThatFailsOnPartOfARecordGoesThrough(t *testing.T) {
	for _, how := range []string{"error", "panic"} {
		t.Run(how, func(t *testing.T) {
			var partial atomic.Int64 // calls without the name
			in := transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
				if _, ok := rec.Fields["name"]; !ok {
					partial.Add(1)
					if how == "panic" {
						_ = rec.Fields["name"].(string) // panics
					}
					return concord.Record{}, errors.New("no name")
				}
				if city, ok := rec.Fields["city"].(string); ok {
					rec.Fields["city"] = strings.TrimSpace(city)
				}
				return rec, nil
			})
			r := newRig(t, []concord.SystemID{"portal", "warehouse"})
			r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: r.sys["portal"]},
				{ID: "warehouse", Connector: shouting{r.sys["warehouse"], "city"}, Inbound: in}})
			r.sys["portal"].Edit("c1", map[string]any{"name": "Ada", "city": "Leeds "})
			r.settle()
			r.sys["portal"].Edit("c1", map[string]any{"name": "Ada Lovelace"})
			r.settle()
			if partial.Load() == 0 {
				t.Fatal("the write never asked the inbound transform about the record without the name")
			}
			if got := r.fields("portal", "c1"); got["name"] != "Ada Lovelace" || got["city"] != "Leeds " {
				t.Errorf("portal = %v; want the new name and Leeds", got)
			}
			if got := r.fields("warehouse", "c1"); got["name"] != "Ada Lovelace" || got["city"] != "LEEDS " {
				t.Errorf("warehouse = %v; want the new name and its LEEDS", got)
			}
			if dl, err := r.engine.DeadLetters(context.Background()); err != nil || len(dl) != 0 {
				t.Fatalf("dead letters %v, %v; want none", dl, err)
			}
			if r.lastErr != nil {
				t.Fatalf("last cycle: %v", r.lastErr)
			}
		})
	}
}

// fieldTimes is a connector whose records carry per-field modification
// times, like systems with a field history.
type fieldTimes struct {
	*fake.System
	times map[string]map[string]time.Time // key -> field -> time
}

func (f *fieldTimes) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := f.System.Changes(ctx, cur, limit)
	for i := range b.Records {
		b.Records[i].FieldModified = f.times[b.Records[i].Key]
	}
	return b, err
}

// Last-writer-wins decides a field by the field's own modification time
// when the system reports one, not by the record's.
func TestLastWriterWinsUsesFieldTimes(t *testing.T) {
	r := newRig(t, []concord.SystemID{"crm", "portal"})
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	portal := &fieldTimes{System: r.sys["portal"], times: map[string]map[string]time.Time{}}
	crm := &fieldTimes{System: r.sys["crm"], times: map[string]map[string]time.Time{}}
	r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: portal}, {ID: "crm", Connector: crm}}, withResolver(resolve.LastWriterWins()))
	r.sys["portal"].Edit("c1", map[string]any{"phone": "1", "email": "a@x"})
	r.settle()
	// 09:00:01 the portal changes the phone, 09:00:02 the CRM changes it,
	// 09:00:03 the portal fixes the e-mail (the portal's record is newer).
	portal.times["c1"] = map[string]time.Time{"phone": t0.Add(1 * time.Second), "email": t0.Add(3 * time.Second)}
	crm.times["c1"] = map[string]time.Time{"phone": t0.Add(2 * time.Second)}
	r.sys["crm"].Edit("c1", map[string]any{"phone": "crm"})
	r.sys["portal"].Edit("c1", map[string]any{"phone": "portal", "email": "b@x"})
	r.settle()
	r.requireAll("c1", map[string]any{"phone": "crm", "email": "b@x"})
	ev := r.audit.Require(t, audittest.Match{Kind: audit.MergeDecided, Key: "c1", Unit: "phone", Rule: resolve.RuleLastWriterWins})
	if !strings.Contains(ev.Reason, "(field time)") {
		t.Errorf("reason %q does not say the field's time decided", ev.Reason)
	}
}

// The same key twice in one batch: the later modification is kept, whatever
// the order, and the other is audited.
func TestSameKeyTwiceInOneBatchKeepsTheLaterModification(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	_, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{
		{Key: "c1", Fields: map[string]any{"city": "new"}, Modified: t0.Add(time.Second)},
		{Key: "c1", Fields: map[string]any{"city": "old"}, Modified: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.fields("warehouse", "c1"); got["city"] != "new" {
		t.Fatalf("warehouse = %v; want the later modification", got)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ReadSuperseded, System: "portal", Key: "c1"})
}

// rewind is a connector whose cursor goes back to the start after an empty
// batch.
type rewind struct{ *fake.System }

func (w rewind) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := w.System.Changes(ctx, cur, limit)
	if err == nil && len(b.Records) == 0 {
		b.Next = ""
	}
	return b, err
}

// A cursor that goes back is reported (and not stored); a garbage cursor
// can be reset by an operator, audited.
func TestCursorGoingBackIsReportedAndCursorsCanBeReset(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	e := r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: rewind{r.sys["portal"]}}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
	r.sys["portal"].Edit("c1", map[string]any{"city": "Oslo"})
	r.cycle()
	_, err := e.RunCycle(context.Background())
	if !errors.Is(err, recsync.ErrCursorWentBack) {
		t.Fatalf("cycle after a rewound cursor = %v; want ErrCursorWentBack", err)
	}
	if cur, _ := r.store.Cursor(context.Background(), "portal"); cur == "" {
		t.Fatal("the rewound cursor was stored")
	}
	// A garbage cursor: every read fails until an operator resets it.
	if err := e.ResetCursor(context.Background(), "warehouse", "garbage", "ops@example.com", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunCycle(context.Background()); err == nil {
		t.Fatal("a garbage cursor read without error")
	}
	if err := e.ResetCursor(context.Background(), "warehouse", "", "ops@example.com", "garbage cursor"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunCycle(context.Background()); err != nil && !errors.Is(err, recsync.ErrCursorWentBack) {
		t.Fatalf("after the reset: %v", err)
	}
	ev := r.audit.Require(t, audittest.Match{Kind: audit.CursorReset, System: "warehouse"})
	if !strings.Contains(ev.Reason, "ops@example.com") {
		t.Errorf("reset reason %q does not name the person", ev.Reason)
	}
	if err := e.ResetCursor(context.Background(), "nowhere", "", "ops@example.com", "x"); !errors.Is(err, recsync.ErrUnknownSystem) {
		t.Errorf("reset of an unknown system = %v; want ErrUnknownSystem", err)
	}
}

// Failure counts are "in a row": a record that comes into sync without a
// write (its system's own edit won) starts again from zero.
func TestFailureCountResetsWhenTheRecordComesIntoSyncWithoutAWrite(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()),
		withRetry(recsync.RetryPolicy{MaxAttempts: 1, MaxRecordAttempts: 2}))
	r.sys["a"].Edit("k", map[string]any{"x": "1"})
	r.settle()
	r.sys["a"].Edit("k", map[string]any{"x": "2"})
	r.sys["b"].FailKey("k", nil)
	r.cycle() // one failure
	r.sys["b"].ClearFailKey("k")
	r.sys["b"].Edit("k", map[string]any{"x": "3"}) // b's later edit wins: b is in sync
	r.settle()
	r.requireAll("k", map[string]any{"x": "3"})
	r.sys["a"].Edit("k", map[string]any{"x": "4"})
	r.sys["b"].FailKey("k", nil)
	r.cycle() // one failure, not the second in a row
	if dl, _ := r.engine.DeadLetters(context.Background()); len(dl) != 0 {
		t.Fatalf("dead letters = %+v; one failure after coming into sync must not dead-letter", dl)
	}
	r.sys["b"].ClearFailKey("k")
	r.settle()
	r.requireAll("k", map[string]any{"x": "4"})
}

// After a refused create is discarded, the next change creates the record.
func TestDiscardedCreateIsCreatedByTheNextChange(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"})
	r.sys["b"].FailKey("k", connector.Permanent(errors.New("refused")))
	r.sys["a"].Edit("k", map[string]any{"x": "1"})
	r.cycle()
	dl, _ := r.engine.DeadLetters(context.Background())
	if len(dl) != 1 {
		t.Fatalf("dead letters = %+v", dl)
	}
	if err := r.engine.Discard(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Reason: "b refused it", Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.sys["b"].ClearFailKey("k")
	r.sys["a"].Edit("k", map[string]any{"x": "2"})
	rep := r.cycle()
	if rep.Systems["b"].Writes != 1 || rep.Systems["b"].Failed != 0 {
		t.Fatalf("b: %+v; want one write (a create) and no failure", *rep.Systems["b"])
	}
	r.requireAll("k", map[string]any{"x": "2"})
}

// A non-owner's first value of an owned field is held for a person by
// default (there is nothing to revert to), or accepted when the policy says
// so; the owner's later edit wins either way.
func TestFirstValueFromANonOwnerIsHeldOrAcceptedByPolicy(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"address": "portal"})
	for _, tc := range []struct {
		name   string
		res    *resolve.SystemOfRecordResolver
		holds  int
		portal any
	}{
		{"hold", sor, 1, nil},
		{"accept", sor.AcceptFirstValues(), 0, "1 Main St"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withResolver(resolve.Chain(tc.res, resolve.LastWriterWins())))
			r.sys["warehouse"].Edit("c1", map[string]any{"name": "Ada", "address": "1 Main St"})
			r.settle()
			holds, _ := r.engine.Holds(context.Background())
			if len(holds) != tc.holds {
				t.Fatalf("holds = %+v; want %d", holds, tc.holds)
			}
			if got := r.fields("portal", "c1"); got["address"] != tc.portal {
				t.Fatalf("portal = %v; want address %v", got, tc.portal)
			}
			if tc.holds > 0 {
				return
			}
			// The owner's edit wins over the accepted first value.
			r.sys["portal"].Edit("c1", map[string]any{"address": "2 High St"})
			r.settle()
			r.requireAll("c1", map[string]any{"name": "Ada", "address": "2 High St"})
		})
	}
}

// A value no store can encode never stalls the pipeline: the record is
// dead-lettered with its payload kept as text, the other records sync, and
// every later cycle commits.
func TestUnencodablePayloadIsDeadLetteredAndNothingStalls(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "concord.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	// The portal cannot be read by key: a payload kept only as text is
	// then all a replay would have (with a connector.Getter, a replay
	// reads the record again).
	e := r.rebuild(store, []recsync.System{{ID: "portal", Connector: feedOnly{r.sys["portal"]}}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
	ch := make(chan int)
	_, err = e.Ingest(context.Background(), "portal", []concord.Record{
		{Key: "bad", Fields: map[string]any{"n": struct{ A int }{1}, "c": ch, "ok": "x"}},
		{Key: "good", Fields: map[string]any{"n": 1}},
	})
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || len(ce.Failures) != 1 || ce.Failures[0].Key != "bad" {
		t.Fatalf("Ingest = %v; want one failure, for the bad record", err)
	}
	if got := r.fields("warehouse", "good"); got["n"] != 1 {
		t.Fatalf("warehouse good = %v", got)
	}
	dl, err := e.DeadLetters(context.Background())
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
	if want := []string{"c", "n"}; !slices.Equal(dl[0].Textual, want) {
		t.Errorf("textual fields = %v; want %v", dl[0].Textual, want)
	}
	if s, _ := dl[0].Record.Fields["n"].(string); !strings.Contains(s, "A:1") || dl[0].Record.Fields["ok"] != "x" {
		t.Errorf("payload = %v; want the struct as Go syntax and the rest as it was", dl[0].Record.Fields)
	}
	if err := e.Replay(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Person: "ops"}); !errors.Is(err, recsync.ErrNotReplayable) {
		t.Errorf("Replay = %v; want ErrNotReplayable", err)
	}
	r.sys["portal"].Edit("later", map[string]any{"n": 2})
	if _, err := e.RunCycle(context.Background()); err != nil {
		t.Fatalf("the next cycle: %v", err)
	}
	if got := r.fields("warehouse", "later"); got["n"] != 2 {
		t.Fatalf("warehouse later = %v", got)
	}
}

// After a store is restored from a backup, a value the engine delivered
// after the backup looks like the target's edit; it must not beat the edit a
// person typed after the restore just because the target's record changed
// later in another field: field times decide.
func TestRestoreDoesNotLetAnOldDeliveryBeatANewerEdit(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	pt := &fieldTimes{System: r.sys["portal"], times: map[string]map[string]time.Time{"c1": {}}}
	wt := &fieldTimes{System: r.sys["warehouse"], times: map[string]map[string]time.Time{"c1": {}}}
	build := func(store store.Store) *recsync.Engine {
		e := r.rebuild(store, []recsync.System{{ID: "portal", Connector: pt}, {ID: "warehouse", Connector: wt}}, withResolver(resolve.LastWriterWins()))
		return e
	}
	r.engine = build(r.store)
	r.sys["portal"].Edit("c1", map[string]any{"city": "Old", "stock": 1})
	pt.times["c1"]["city"], pt.times["c1"]["stock"] = r.clock.now(), r.clock.now()
	r.settle()
	wt.times["c1"]["city"], wt.times["c1"]["stock"] = r.clock.now(), r.clock.now()
	backup := r.store.Snapshot()

	r.sys["portal"].Edit("c1", map[string]any{"city": "Delivered"})
	pt.times["c1"]["city"] = r.clock.now()
	r.settle()
	wt.times["c1"]["city"] = r.clock.now() // when the delivery changed it there

	// Disaster recovery: the store goes back to the backup.
	if _, err := backup.NewEpoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.engine, r.store = build(backup), backup
	r.sys["portal"].Edit("c1", map[string]any{"city": "Typed after the restore"})
	pt.times["c1"]["city"] = r.clock.now()
	r.sys["warehouse"].Edit("c1", map[string]any{"stock": 2}) // the warehouse's record is now the newest
	wt.times["c1"]["stock"] = r.clock.now()
	r.settle()
	r.requireAll("c1", map[string]any{"city": "Typed after the restore", "stock": 2})
}

// Values at the edges of what the stores encode go through a durable store
// untouched (a zone offset of −0:01:15, []byte, float32), and invalid UTF-8
// is refused at the boundary with a dead letter naming the field.
func TestEdgeValuesThroughADurableStore(t *testing.T) {
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "concord.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	e := r.rebuild(store, []recsync.System{{ID: "portal", Connector: r.sys["portal"]}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
	lmt := time.Date(1840, 3, 1, 12, 0, 0, 0, time.FixedZone("LMT", -75))
	fields := map[string]any{"founded": lmt, "blob": []byte{0, 1, 0xff}, "ratio": float32(0.1)}
	_, err = e.Ingest(context.Background(), "portal", []concord.Record{
		{Key: "ok", Fields: fields},
		{Key: "bad", Fields: map[string]any{"name": "caf\xe9"}},
	})
	var re *concord.RecordError
	if !errors.As(err, &re) || re.Key != "bad" || re.Field != "name" || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Ingest = %v; want the bad record refused, naming its field and UTF-8", err)
	}
	if got := r.fields("warehouse", "ok"); !concord.EqualValues(got, fields) {
		t.Fatalf("warehouse = %v; want %v", got, fields)
	}
	// Nothing stalls: the next cycles commit, and read nothing as an edit.
	for range 2 {
		rep, err := e.RunCycle(context.Background())
		if err != nil {
			t.Fatalf("cycle after edge values: %v", err)
		}
		for n, s := range rep.Systems {
			if s.Edits != 0 {
				t.Errorf("%s: %d edits after its own values were read back", n, s.Edits)
			}
		}
	}
	if dl, _ := e.DeadLetters(context.Background()); len(dl) != 1 || dl[0].Key != "bad" {
		t.Fatalf("dead letters = %+v; want the bad record", dl)
	}
}

// conflicting is a connector whose writes of one key fail on a version
// conflict while its feed never brings the record back.
type conflicting struct {
	*fake.System
	key   string
	times int
}

func (c *conflicting) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	res, err := c.System.Apply(ctx, ps)
	for i, p := range ps {
		if err == nil && p.Key == c.key && c.times > 0 {
			c.times--
			res[i] = connector.Result{Key: p.Key, Err: connector.Conflict(errors.New("tag changed"))}
		}
	}
	return res, err
}

// A write refused on a version conflict makes the engine read the record
// again by key: it never waits for a feed that will not bring it.
func TestConflictedWriteRereadsTheRecord(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"})
	b := &conflicting{System: r.sys["b"], key: "k"}
	r.rebuild(r.store, []recsync.System{{ID: "a", Connector: r.sys["a"]}, {ID: "b", Connector: b}})
	r.sys["a"].Edit("k", map[string]any{"x": "1"})
	r.settle()
	gets := r.sys["b"].Calls(fake.OpGet)
	b.times = 1
	r.sys["a"].Edit("k", map[string]any{"x": "2"})
	r.cycle() // the write to b conflicts
	r.settle()
	if r.sys["b"].Calls(fake.OpGet) == gets {
		t.Error("the conflicted record was not read again by key")
	}
	r.requireAll("k", map[string]any{"x": "2"})
}

// A write answered "not found" is the system's delete, merged like one: it
// is not undone by creating the record there again.
func TestNotFoundIsTheSystemsDeleteNotARecreation(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	r.sys["a"].Edit("k", map[string]any{"x": "1"})
	r.settle()
	// b deletes k, but its feed has not brought the delete when the
	// engine writes a's older edit to it.
	r.sys["b"].FailNext(fake.OpChanges, 1, nil)
	r.sys["b"].Delete("k")
	before := len(r.sys["b"].Applied())
	r.sys["a"].Edit("k", map[string]any{"x": "2"})
	r.cycle()
	r.settle()
	for _, p := range r.sys["b"].Applied()[before:] {
		if p.Key == "k" && p.Create {
			t.Fatalf("the record was created again in b: %+v", p)
		}
	}
}

// rebuild gives the rig a new engine on store over systems, with the rig's
// audit recorder and clock and one attempt per call; opts adjust it.
func (r *rig) rebuild(store store.Store, systems []recsync.System, opts ...rigOption) *recsync.Engine {
	r.t.Helper()
	cfg := recsync.Config{Audit: r.audit, Store: store, Now: r.clock.now, Retry: recsync.RetryPolicy{MaxAttempts: 1}, Systems: systems}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := recsync.New(cfg)
	if err != nil {
		r.t.Fatalf("%v", err)
	}
	r.engine = e
	return e
}

// A write whose reply was lost, applied, then undone in the target before
// the engine read it again: with the system's field times the engine knows
// the old value was set back after its write, and keeps it; without them
// the two cases look the same and the engine assumes the write was never
// applied (documented on detectUnit and in the README).
func TestRevertAfterALostReplyIsKeptWhenTheSystemHasFieldTimes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fieldTimes bool
		want       string
	}{
		{"field times", true, "v0"},
		{"record times only", false, "v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
			opts := []fake.Option{fake.WithClock(r.clock.now)}
			if tc.fieldTimes {
				opts = append(opts, fake.WithFieldTimes())
			}
			b := fake.New("b", opts...)
			r.sys["b"] = b
			r.rebuild(r.store, []recsync.System{{ID: "a", Connector: r.sys["a"]}, {ID: "b", Connector: b}}, withResolver(resolve.LastWriterWins()))
			r.sys["a"].Edit("c1", map[string]any{"city": "v0", "name": "n0"})
			r.settle()

			r.sys["a"].Edit("c1", map[string]any{"city": "v1"})
			b.LoseRepliesNext(1)
			r.cycle() // v1 is applied in b; the engine never hears of it
			b.Edit("c1", map[string]any{"city": "v0"})
			r.settle()
			r.requireAll("c1", map[string]any{"city": tc.want, "name": "n0"})
		})
	}
}

// A system that deleted a record and created it again without some of its
// fields holds no value of them, even though the version it last had of
// them is still the canonical one: when a person settles that the record
// exists, it is written those fields (found by the simulation, seed 4031:
// the engine wrote them to the other systems and marked this one in sync).
// The record comes back through Ingest (a pushed state, not a whole record
// from the feed). A webhook may carry part of the record, so nothing is
// written over the state it names while b's feed is down (b may hold
// edits of the fields it left out: TestAPartialWebhookLeavesTheRestToTheFeed);
// once b is read again, b is written the fields it lacks.
func TestRecreatedWithoutFieldsIsWrittenThemAfterASettlement(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.Hold("a person decides")))
	r.sys["a"].Edit("k", map[string]any{"x": "1", "y": "2"})
	r.settle()
	r.requireAll("k", map[string]any{"x": "1", "y": "2"})

	// b deletes the record while a edits it: whether it exists waits for
	// a person.
	r.sys["b"].Delete("k")
	r.sys["a"].Edit("k", map[string]any{"x": "1b"})
	r.cycle()
	// b creates it again with x only, pushed by a webhook; its feed is
	// down from now on.
	r.sys["b"].FailNext(fake.OpChanges, 1000, nil)
	rec := r.sys["b"].Edit("k", map[string]any{"x": "3"})
	if _, err := r.engine.Ingest(ctx, "b", []concord.Record{rec}); err != nil {
		var ce *recsync.CycleError
		if !errors.As(err, &ce) {
			t.Fatalf("Ingest: %v", err)
		}
	}
	// The person settles every hold: the record exists, and each field
	// takes its first competitor.
	for range 5 {
		holds, err := r.engine.Holds(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(holds) == 0 {
			break
		}
		for _, h := range holds {
			pick := 0
			for i, c := range h.Candidates {
				if !c.Deleted {
					pick = i
					break
				}
			}
			if err := r.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision,
				Candidate: pick, Person: "ann@example.com"}); err != nil {
				t.Fatalf("settling %s/%s: %v", h.Key, h.Unit, err)
			}
		}
		r.cycle()
	}
	for range 3 {
		r.cycle()
	}
	if b := r.fields("b", "k"); !concord.EqualValues(b, map[string]any{"x": "3"}) {
		t.Fatalf("b holds %v while its feed is down; want it unwritten: x = 3 only", b)
	}
	r.sys["b"].FailNext(fake.OpChanges, 0, nil)
	for range 3 {
		r.cycle()
	}
	a, b := r.fields("a", "k"), r.fields("b", "k")
	if a == nil || b == nil || !concord.EqualValues(a, b) {
		t.Fatalf("a holds %v, b holds %v: want the same record", a, b)
	}
	if b["y"] != "2" {
		t.Errorf("b holds y = %v; want 2 (the canonical value it lost when it deleted the record)", b["y"])
	}
}

// A system back at the value the engine last knew it held, while a write to
// it failed without a reply, was set back after that write only if the
// change came after the value the write brought: a change made before it
// (here: b changes the field and back before a's newer edit) is not an
// edit that supersedes the write, and a's edit is not lost (found by the
// simulation, seed 12595, where the change was the engine's own write,
// forgotten when its store was restored from an older copy).
func TestChangeBeforeTheWrittenValueIsNotARevertOfTheWrite(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	b := r.replaceSystem(1, fake.WithFieldTimes())
	r.sys["a"].Edit("k", map[string]any{"addr": "old"})
	r.settle()

	// b changes addr and back (its field time moves on), unread; then a
	// edits it, later.
	b.FailNext(fake.OpChanges, 1, nil)
	b.Edit("k", map[string]any{"addr": "X"})
	b.Edit("k", map[string]any{"addr": "old"})
	r.sys["a"].Edit("k", map[string]any{"addr": "new"})
	// The write of a's value to b fails, the call's outcome unknown.
	b.FailNext(fake.OpApply, 1, nil)
	for range 6 {
		r.cycle()
	}
	r.requireAll("k", map[string]any{"addr": "new"})
}

// The same holds of a change made after the value the write brought was
// made but before the engine had that value: a value made in a system the
// engine could not read for a while reaches it late, and a write of it
// cannot come before the engine decided it (the unit's Changed time). Here
// a edits the field while its feed is down; b then changes it and back,
// unread; the engine reads a's edit, decides it and writes it to b without
// learning the outcome, and then reads b back at the old value with a field
// time after a's edit but before the engine had it. Taken for a setting
// back made after the write, b's change fast-forwarded over a's edit and
// both systems ended at the old value (found by the simulation, seed
// 110,038, where b's change was the engine's own write of the old value,
// forgotten when its store was restored from an older copy, and a's value
// came from a system out of the configuration for a while).
func TestChangeBeforeTheEngineHadTheWrittenValueIsNotARevertOfTheWrite(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	b := r.replaceSystem(1, fake.WithFieldTimes())
	r.sys["a"].Edit("k", map[string]any{"addr": "old"})
	r.settle()

	// a edits addr, unread; then b changes it and back, later.
	r.sys["a"].Edit("k", map[string]any{"addr": "new"})
	r.sys["a"].FailNext(fake.OpChanges, 1, nil)
	r.cycle()
	b.Edit("k", map[string]any{"addr": "X"})
	b.Edit("k", map[string]any{"addr": "old"})
	// The engine reads a's edit (b's read failing) and writes it to b,
	// the call's outcome unknown.
	b.FailNext(fake.OpChanges, 1, nil)
	b.FailNext(fake.OpApply, 1, nil)
	r.cycle()
	for range 6 {
		r.cycle()
	}
	r.requireAll("k", map[string]any{"addr": "new"})
}

// The bound of the test above is the second the engine decided the value,
// not the instant: a system that keeps its times to the whole second
// stamps a setting back made in that very second with the second's start,
// before the engine's decision, and it is still a setting back after the
// write. Here the engine decides a's value at 30.5 s and writes it to b,
// the reply lost; b's person sets the field back at 30.7 s, which b stamps
// 30 s. Bounded by the instant, the setting back read as the write never
// applied, and the engine wrote a's value over it.
func TestASetBackInTheSecondOfTheDecisionIsKeptInASystemOfWholeSeconds(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	var now atomic.Int64 // nanoseconds since t0
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) { now.Store(int64(d)) }
	clk := func() time.Time { return t0.Add(time.Duration(now.Load())) }
	r.cfg.Now = clk
	a := r.replaceSystem(0, fake.WithClock(clk))
	b := r.replaceSystem(1, fake.WithFieldTimes(), fake.WithClock(func() time.Time { return clk().Truncate(time.Second) }))
	a.Edit("k", map[string]any{"addr": "old"})
	r.settle()

	at(20 * time.Second)
	a.Edit("k", map[string]any{"addr": "new"})
	at(30*time.Second + 500*time.Millisecond)
	b.LoseRepliesNext(1)
	r.cycle() // b applies addr = new; the engine never hears so
	at(30*time.Second + 700*time.Millisecond)
	b.Edit("k", map[string]any{"addr": "old"}) // stamped 30 s
	for i := range 4 {
		at(time.Duration(31+i) * time.Second)
		r.cycle()
	}
	r.requireAll("k", map[string]any{"addr": "old"})
}

// A system the engine wrote without learning the outcome (the reply lost;
// or, in the simulation, seed 49432, the engine crashed after committing
// the write ahead) and has not read since may hold the value written, not
// the one it last reported: when a newer edit brings the field back to the
// value it last reported, it is written that value all the same, and the
// write it may hold stays remembered. Taking its last report for what it
// holds marked it in sync without a write and forgot the attempt; its
// report of the written value was then taken for its own edit, and beat
// the newer one.
func TestUnconfirmedWriteIsNotTakenAsUndoneByALaterEditBackToTheOldValue(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"})
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("k", map[string]any{"x": "v0", "y": "y0"})
	r.settle()

	a.Edit("k", map[string]any{"x": "v1"})
	b.LoseRepliesNext(1)
	r.cycle() // v1 is applied in b; the engine never hears of it

	// a sets x back to v0 while b is unread: b last reported v0.
	a.Edit("k", map[string]any{"x": "v0"})
	b.FailNext(fake.OpChanges, 1, nil)
	r.cycle()

	r.settle()
	r.requireAll("k", map[string]any{"x": "v0", "y": "y0"})
	r.audit.RequireNone(t, audittest.Match{Kind: audit.EditObserved, System: "b"}) // the engine's own write taken for b's edit
}

// A write that a system refuses (its record changed: a stale IfMatch)
// proves only that this write was not applied. When it repeats an earlier
// write whose outcome the engine never learned (sent again because the
// system was not read since), the earlier one may be what changed the
// record, and stays remembered. Forgetting it with the refused one (found
// by the simulation, seed 46272) made the system's report of the engine's
// own value its edit, which beat a newer edit elsewhere by its time.
func TestRefusedRewriteKeepsTheEarlierUnconfirmedWrite(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"})
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("k", map[string]any{"x": "v0", "y": "y0"})
	r.settle()

	a.Edit("k", map[string]any{"x": "v1"})
	b.LoseRepliesNext(1)
	r.cycle() // v1 is applied in b; the engine never hears of it

	// b unread: v1 is written again with z (a different write, not a
	// retry its idempotency key would answer), on b's old tag: refused.
	a.Edit("k", map[string]any{"z": "z1"})
	b.FailNext(fake.OpChanges, 1, nil)
	r.cycle()
	if !slices.ContainsFunc(r.audit.Events(), func(ev audit.Event) bool {
		return ev.Kind == audit.WriteFailed && ev.System == "b" && ev.ErrorClass == connector.ErrConflict.String()
	}) {
		t.Fatal("setup: no write to b was refused")
	}

	a.Edit("k", map[string]any{"x": "v2"}) // a newer edit of x, made after v1
	b.Edit("k", map[string]any{"y": "y1"}) // b's record is newer still
	r.settle()
	r.requireAll("k", map[string]any{"x": "v2", "y": "y1", "z": "z1"})
	r.audit.RequireNone(t, audittest.Match{Kind: audit.EditObserved, System: "b", Unit: "x"}) // the engine's own write taken for b's edit
}

// A system that deletes a record and creates it again with part of a group
// between two reads, the part it kept equal to the canonical value, no
// longer holds the rest of the group: it is written the whole group again
// (found by the simulation, seed 16376: the engine took the record for in
// sync and the field stayed missing there).
func TestRecreatedWithPartOfAGroupIsWrittenTheRest(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withGroups(map[string][]string{"addr": {"street", "zip"}}))
	r.sys["a"].Edit("k", map[string]any{"street": "1 Main St", "zip": "12345", "name": "Ada"})
	r.settle()
	r.sys["b"].Delete("k")
	r.sys["b"].Edit("k", map[string]any{"zip": "12345", "name": "Ada"})
	r.settle()
	r.requireAll("k", map[string]any{"street": "1 Main St", "zip": "12345", "name": "Ada"})
}

// A system's delete of a record the engine has no memory of seeing there is
// that system's delete all the same: here the store is restored from a
// backup taken before the engine first synced the record, so that b's
// delete, read after the restore, looks like the delete of a copy b made
// alone. It competes with a's record (b deleted it after a's last edit, so
// last-writer-wins deletes it) and is never dropped for the record to be
// created in b again (found by the simulation, seeds 16388 and 21311).
func TestDeleteTheRestoredStoreNeverSawIsNotUndone(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	backup := r.store.Snapshot() // before the engine knew k
	r.sys["a"].Edit("k", map[string]any{"x": "1"})
	r.settle()
	r.requireAll("k", map[string]any{"x": "1"})

	// a edits k, then b deletes it, both unread when the store goes
	// back to the backup.
	r.sys["a"].Edit("k", map[string]any{"x": "2"})
	r.sys["b"].Delete("k")
	if _, err := backup.NewEpoch(ctx); err != nil {
		t.Fatal(err)
	}
	r.store, r.cfg.Store = backup, backup
	r.engine = r.newEngine()
	r.settle()

	for _, s := range []concord.SystemID{"a", "b"} {
		if got, ok := r.sys[s].Record("k"); ok {
			t.Errorf("%s holds k = %v; want b's delete, the latest change, everywhere", s, got.Fields)
		}
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "k", Unit: resolve.RecordUnit})
}

// The same without a restore: the engine creates the record in b, b applies
// the create but the engine never learns it (the reply is lost, or the
// cycle's final commit fails and the engine restarts), and b deletes the
// record before the engine reads it again. The engine never saw the record
// in b, yet b's delete may be the delete of the engine's own create, or of
// a copy the create never reached: it is merged as a delete that saw no
// edit (a conflict, which last-writer-wins gives to the later delete),
// never undone by creating the record in b again (simulation seeds 23447
// and 24244: the engine crashed after the create). An engine that learned
// the create's outcome and lives on (its final commit failed) knows that
// b's delete saw the record: a delete made after the create, no conflict.
func TestDeleteAfterAnUnconfirmedCreateIsNotUndone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lose     func(r *rig) // makes the next cycle's create to b unconfirmed
		restart  bool         // a new engine after the cycle, as after a crash
		conflict bool         // b's delete is a conflict: the engine does not know it followed the create
	}{
		{"reply lost", func(r *rig) { r.sys["b"].LoseRepliesNext(1) }, false, true},
		{"cycle not committed, engine restarted", func(r *rig) {
			fs := &failFinal{Store: r.store, fail: true}
			r.rebuild(fs, r.cfg.Systems, withResolver(resolve.LastWriterWins()))
		}, true, true},
		{"cycle not committed, same engine", func(r *rig) {
			fs := &failFinal{Store: r.store, fail: true}
			r.rebuild(fs, r.cfg.Systems, withResolver(resolve.LastWriterWins()))
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
			r.sys["a"].Edit("k", map[string]any{"x": "1"})
			tc.lose(r)
			if _, err := r.engine.RunCycle(context.Background()); err == nil {
				t.Fatal("the cycle whose create to b went unconfirmed reported no error")
			}
			if _, ok := r.sys["b"].Record("k"); !ok {
				t.Fatal("the create was not applied in b")
			}
			if tc.restart {
				r.rebuild(r.store, r.cfg.Systems, withResolver(resolve.LastWriterWins()))
			}
			r.sys["b"].Delete("k")
			before := len(r.sys["b"].Applied())
			r.settle()
			for _, p := range r.sys["b"].Applied()[before:] {
				if p.Key == "k" && p.Create {
					t.Errorf("the record b deleted was created there again: %+v", p)
				}
			}
			for _, s := range []concord.SystemID{"a", "b"} {
				if got, ok := r.sys[s].Record("k"); ok {
					t.Errorf("%s holds k = %v; want b's delete, the latest change, everywhere", s, got.Fields)
				}
			}
			conflict := audittest.Match{Kind: audit.ConflictDetected, Key: "k", Unit: resolve.RecordUnit}
			if tc.conflict {
				r.audit.Require(t, conflict)
			} else {
				r.audit.RequireNone(t, conflict) // b's delete followed the create the engine knows b applied
			}
		})
	}
}

// A webhook may deliver a state older than anything the engine read or
// wrote: here b's state from before b deleted the record, pushed while the
// engine's create of the record in b awaits confirmation (the call failed,
// the create was never applied). That state says nothing of the create's
// outcome: taken as its echo, it made the engine believe b held a's edit,
// so that b's delete, made before a's edit and read next, won outright and
// a's edit was lost everywhere (found by the simulation, seed 51650). The
// engine leaves the pushed state to the change feed, and b's delete, made
// before a's edit, saw none of it.
func TestLateWebhookIsNotTheEchoOfAnUnconfirmedCreate(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	a, b := r.sys["a"], r.sys["b"]
	b.Edit("k", map[string]any{"y": "old"})
	b.Delete("k")
	old := b.History("k")[0] // b's state before its delete
	if old.Deleted {
		t.Fatal("the first state of k in b is its delete")
	}

	a.Edit("k", map[string]any{"x": "1"})
	b.FailNext(fake.OpChanges, 1, nil) // the engine never reads b's delete ...
	b.FailNext(fake.OpApply, 1, nil)   // ... and its create in b fails
	r.cycle()
	if _, ok := b.Record("k"); ok {
		t.Fatal("the create was applied in b")
	}
	if _, err := r.engine.Ingest(context.Background(), "b", []concord.Record{old}); err != nil {
		var ce *recsync.CycleError
		if !errors.As(err, &ce) {
			t.Fatalf("Ingest: %v", err)
		}
	}
	r.settle()
	r.requireAll("k", map[string]any{"x": "1"})
}

// withoutTags rebuilds the rig's engine with the systems ids as fakes
// without version tags (no conditional writes), before anything ran.
func (r *rig) withoutTags(ids ...concord.SystemID) {
	r.t.Helper()
	for i, s := range r.cfg.Systems {
		if slices.Contains(ids, s.ID) {
			f := fake.New(string(s.ID), fake.WithClock(r.clock.now), fake.WithoutTags())
			r.sys[s.ID] = f
			r.cfg.Systems[i].Connector = f
		}
	}
	r.engine = r.newEngine()
}

// A system without version tags cannot refuse a write made over an edit
// the engine has not read. When a cycle could not read b, writing
// a's new x there replaced b's own edit of x, which no later read could
// bring back: a conflict never detected, an edit silently lost (found by
// the simulation with tagless systems, seed 2 of 1-1,000). The write waits
// for a cycle that reads b; that cycle sees both edits and resolves the
// conflict, audited. The same holds when the cycle stops reading b with
// changes waiting (a backlog), and in steps that read no change feed
// (Ingest).
func TestNoBlindWriteOverAnUnreadEditInATaglessSystem(t *testing.T) {
	for _, via := range []string{"failed read", "backlog", "ingest"} {
		t.Run(via, func(t *testing.T) {
			r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
			if via == "backlog" {
				// A cycle reads one change of b: the rest waits.
				r.cfg.MaxBatches, r.cfg.Systems[1].BatchSize = 1, 1
			}
			r.withoutTags("b")
			a, b := r.sys["a"], r.sys["b"]
			a.Edit("k", map[string]any{"x": "1", "y": "1"})
			r.settle()

			if via == "backlog" {
				b.Edit("other", map[string]any{"x": "o"}) // read first
			}
			b.Edit("k", map[string]any{"x": "from b"}) // not read yet
			a.Edit("k", map[string]any{"x": "from a"})
			var rep *recsync.Report
			if via == "ingest" {
				rec, _ := a.Record("k")
				var err error
				if rep, err = r.engine.Ingest(context.Background(), "a", []concord.Record{rec}); err != nil {
					t.Fatalf("Ingest: %v", err)
				}
			} else {
				b.FailNext(fake.OpChanges, 1, nil) // the cycle cannot read b
				rep = r.cycle()
			}
			if got, _ := b.Record("k"); got.Fields["x"] != "from b" {
				t.Fatalf("b's x = %v: written over b's unread edit", got.Fields["x"])
			}
			if d := rep.Systems["b"].Deferred; d != 1 {
				t.Errorf("Report.Systems[b].Deferred = %d, want 1", d)
			}
			r.settle()
			r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "k", Unit: "x"})
			r.requireAll("k", map[string]any{"x": "from a", "y": "1"}) // last writer
		})
	}
}

// A record of a system without version tags that the engine quarantined as
// it read it is a record the engine has not read there: writing a's new x
// over it replaced b's own edit of x (found by the simulation with tagless
// systems, seed 1440 of 1-10,000, where the quarantined record was a
// creation and the engine's create replaced it). The write waits until b
// reports the record in a usable form; then both edits meet, audited.
func TestNoBlindWriteOverAQuarantinedRecordInATaglessSystem(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	// b's inbound transform refuses a record with bad set.
	r.cfg.Systems[1].Inbound = transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		if rec.Fields["bad"] != nil {
			return rec, errors.New("bad is set")
		}
		return rec, nil
	})
	r.withoutTags("b")
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("k", map[string]any{"x": "1"})
	r.settle()

	b.Edit("k", map[string]any{"x": "from b", "bad": true}) // quarantined when read
	a.Edit("k", map[string]any{"x": "from a"})
	rep := r.cycle()
	if rep.Systems["b"].Quarantined != 1 {
		t.Fatalf("b: %+v; want k quarantined", rep.Systems["b"])
	}
	if got, _ := b.Record("k"); got.Fields["x"] != "from b" {
		t.Fatalf("b's x = %v: written over b's quarantined record", got.Fields["x"])
	}
	if d := rep.Systems["b"].Deferred; d != 1 {
		t.Errorf("Report.Systems[b].Deferred = %d, want 1", d)
	}
	r.cycle() // still quarantined: still not written
	if got, _ := b.Record("k"); got.Fields["x"] != "from b" {
		t.Fatalf("b's x = %v: written over b's quarantined record a cycle later", got.Fields["x"])
	}

	b.Edit("k", map[string]any{"bad": nil}) // someone fixes it in b
	r.settle()
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "k", Unit: "x"})
	// b's record, fixed last, is the later writer (no field times).
	r.requireAll("k", map[string]any{"x": "from b", "bad": nil})
}

// stuckFeed answers every Changes with More and the cursor it was given
// (after its first page): a connector bug.
type stuckFeed struct{ *fake.System }

func (c stuckFeed) Changes(ctx context.Context, cur connector.Cursor, limit int) (connector.Batch, error) {
	b, err := c.System.Changes(ctx, cur, limit)
	if err == nil && cur != "" {
		b.Next, b.More = cur, true
	}
	return b, err
}

// A change feed that answers More with the cursor it was given would be
// read MaxBatches times a cycle, and its backlog would make Run cycle again
// at once, for ever (a hot loop against the system). It is a read failure
// of that system (ErrFeedStuck) without a backlog; the others sync.
func TestAStuckFeedIsAReadFailureNotABacklog(t *testing.T) {
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop")
	e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: stuckFeed{shop}}},
		Resolver: resolve.LastWriterWins(), Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	shop.Edit("s1", map[string]any{"name": "first"})
	if _, err := e.RunCycle(ctx); err != nil { // the first page: a cursor
		t.Fatal(err)
	}
	crm.Edit("c1", map[string]any{"name": "Ada"})
	rep, err := e.RunCycle(ctx)
	if !errors.Is(err, recsync.ErrFeedStuck) {
		t.Fatalf("cycle: %v; want the shop's read failed with ErrFeedStuck", err)
	}
	if rep.Systems["shop"].Backlog || rep.Systems["shop"].ReadCalls != 1 {
		t.Errorf("shop: backlog %v after %d read calls; want no backlog, one call", rep.Systems["shop"].Backlog, rep.Systems["shop"].ReadCalls)
	}
	if r, _ := shop.Record("c1"); r.Fields["name"] != "Ada" {
		t.Errorf("shop holds c1 = %v; want the crm's record written", r.Fields)
	}
}

// A system can hold part of an edit: the engine's create of a's record in
// b fails with its outcome unknown, b's person creates the same key with
// other fields, and the engine takes b's record for the echo of its create
// (existence names no value that would tell them apart) while a's fields
// never reach b (their write then fails for good). b's view then holds the
// dot of a's create in its existence and not in the fields it made. A
// delete in b is made without a's fields: it must compete with them, not
// supersede them because the join of b's versions covers their dot
// (simulation seed 44943, where a's fields were deleted everywhere).
func TestADeleteInASystemThatNeverGotACreatesFieldsIsAConflict(t *testing.T) {
	r := newRig(t, []concord.SystemID{"a", "b"}) // conflicts held for a person
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("k", map[string]any{"x": "1", "y": "1"})
	b.FailNext(fake.OpApply, 1, nil) // the create in b: outcome unknown, not applied
	r.cycle()
	if _, ok := b.Record("k"); ok {
		t.Fatal("the create was applied in b")
	}

	b.Edit("k", map[string]any{"z": "b's own"})
	b.FailKey("k", connector.Permanent(errors.New("422"))) // a's fields never reach b
	r.cycle()
	b.Delete("k")
	r.cycle()
	b.ClearFailKey("k")

	if got, ok := a.Record("k"); !ok || got.Fields["x"] != "1" || got.Fields["y"] != "1" {
		t.Errorf("a holds k = %v (live %v); want a's x and y kept until the delete's conflict is decided", got.Fields, ok)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictHeld, Key: "k", Unit: resolve.RecordUnit})
}

// A system whose clock ran ahead once (a record modified "in 2106") does
// not have every later change of that record ignored: a read of the system
// is its current state whatever its time says, once the time the engine
// knows lies beyond any clock (more than an hour ahead of the engine's).
// Before, each later report was taken for an older state than the one
// known: the portal's edits never reached the warehouse, and the
// warehouse's edit could never be written to the portal (its IfMatch
// stale for ever), the cycle failing every time. A webhook's state older
// than the known time is still left to the feed.
func TestAClockThatRanAheadOnceDoesNotFreezeARecord(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	p, ahead := r.withClockAhead(0, 80)
	p.Edit("c1", map[string]any{"name": "A", "price": 1})
	r.settle()
	*ahead = true
	p.Edit("c1", map[string]any{"name": "B"})
	*ahead = false
	r.settle()
	p.Edit("c1", map[string]any{"price": 2})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "B", "price": 2})
	r.sys["warehouse"].Edit("c1", map[string]any{"price": 3})
	r.settle()
	r.requireAll("c1", map[string]any{"name": "B", "price": 3})
}

// A field that has a field group's name (not one of the group's fields,
// which the configuration forbids) is refused at the boundary: its record
// is quarantined with the reason, naming the field and the group. Before,
// it was merged as the group's unit: its value was lost without a word,
// and the group's fields were written empty to the other systems.
func TestAFieldNamedLikeAGroupIsQuarantined(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withGroups(map[string][]string{"addr": {"street", "zip"}}))
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "addr": "1 Main St"})
	r.sys["portal"].Edit("c2", map[string]any{"name": "B", "street": "2 Side St", "zip": "Z2"})
	rep := r.cycle()
	if q := rep.Systems["portal"].Quarantined; q != 1 {
		t.Fatalf("%d records quarantined; want c1", q)
	}
	if got := r.fields("warehouse", "c1"); got != nil {
		t.Fatalf("warehouse c1 = %v; want nothing written", got)
	}
	r.settle()
	r.requireAll("c2", map[string]any{"name": "B", "street": "2 Side St", "zip": "Z2"})
	dead, err := r.engine.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "c1" || !strings.Contains(dead[0].Reason, `field "addr"`) ||
		!strings.Contains(dead[0].Reason, "field group") || dead[0].Record.Fields["addr"] != "1 Main St" {
		t.Fatalf("dead letters %+v; want c1's, naming the field and the group, with its value", dead)
	}
}
