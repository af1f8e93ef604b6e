package sync_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
	"github.com/concordsync/concord/transform"
)

// User code that modifies what the engine gives it breaks its contract
// (transforms, resolvers, gates, validators and sinks are told not to), but
// the Go idiom invites it: rec.Fields["city"] = strings.ToUpper(city). The
// engine hands every such call its own copy, so a violation changes only
// that copy: never the canonical values (which the engine would then write
// everywhere, unversioned and unaudited, leaving the systems disagreeing
// for good), a unit's history (the base of its next conflict), a hold a
// person will settle, or the audit trail of what was written.

// shout upper-cases every string field of rec in place.
func shout(rec concord.Record) {
	for f, v := range rec.Fields {
		if s, ok := v.(string); ok {
			rec.Fields[f] = strings.ToUpper(s)
		}
	}
}

// inPlace is a transform that modifies its input and returns it.
var inPlace = transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
	shout(rec)
	return rec, nil
})

// copyRig is crm, then the system under test "dock", then erp (the engine
// plans writes in this order, by name), with the config changes of opts.
type copyRig struct {
	crm, mid, erp *fake.System
	e             *recsync.Engine
	rec           *audittest.Recorder
}

func newCopyRig(t *testing.T, mid recsync.System, opts ...func(*recsync.Config)) *copyRig {
	t.Helper()
	r := &copyRig{crm: fake.New("crm"), mid: fake.New("dock"), erp: fake.New("erp"), rec: audittest.New()}
	if mid.Connector == nil {
		mid.Connector = r.mid
	}
	mid.ID = "dock"
	cfg := recsync.Config{
		Systems:  []recsync.System{{ID: "crm", Connector: r.crm}, mid, {ID: "erp", Connector: r.erp}},
		Resolver: resolve.LastWriterWins(), Store: store.NewMemory(), Audit: r.rec, Logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.e = e
	return r
}

func (r *copyRig) settle(t *testing.T) {
	t.Helper()
	for range 4 {
		if _, err := r.e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// requireCity fails t unless the named systems hold city.
func (r *copyRig) requireCity(t *testing.T, city string, systems ...*fake.System) {
	t.Helper()
	for _, s := range systems {
		if got, _ := s.Record("k"); got.Fields["city"] != city {
			t.Errorf("%s holds city %v; want %s", s.Name(), got.Fields["city"], city)
		}
	}
}

func TestUserCodeThatModifiesItsInputChangesNothingOfTheEngines(t *testing.T) {
	t.Run("outbound transform", func(t *testing.T) {
		r := newCopyRig(t, recsync.System{Outbound: inPlace})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
		r.settle(t)
		r.requireCity(t, "LYON", r.mid) // its notation, as its transform says
		r.requireCity(t, "Lyon", r.crm, r.erp)
	})
	t.Run("inbound transform", func(t *testing.T) {
		// Called on what the engine writes (the echo's hashes) as well
		// as on what the system reports.
		r := newCopyRig(t, recsync.System{Inbound: inPlace})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon", "note": "x"})
		r.settle(t)
		r.requireCity(t, "Lyon", r.crm, r.mid, r.erp)
	})
	t.Run("a Mapping's converter", func(t *testing.T) {
		// A Mapping is called on the engine's own records
		// (transform.ReadOnly): it hands its rules' functions copies.
		shoutList := func(v concord.Value) (concord.Value, error) {
			if l, ok := v.([]any); ok {
				for i, x := range l {
					if s, ok := x.(string); ok {
						l[i] = strings.ToUpper(s)
					}
				}
			}
			return v, nil
		}
		m := transform.MustMapping(transform.RenameWith("tags", "tags", transform.Converter{In: shoutList, Out: shoutList}))
		r := newCopyRig(t, recsync.System{Inbound: m.Inbound(), Outbound: m.Outbound()})
		r.crm.Edit("k", map[string]concord.Value{"tags": []any{"vip"}})
		r.settle(t)
		for _, s := range []*fake.System{r.crm, r.erp} {
			if got, _ := s.Record("k"); !slices.Equal(got.Fields["tags"].([]any), []any{"vip"}) {
				t.Errorf("%s holds tags %v; want [vip]", s.Name(), got.Fields["tags"])
			}
		}
	})
	t.Run("validator", func(t *testing.T) {
		r := newCopyRig(t, recsync.System{}, func(c *recsync.Config) {
			c.Dictionary = validatorFunc(func(rec concord.Record) error { shout(rec); return nil })
		})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
		r.settle(t)
		r.requireCity(t, "Lyon", r.crm, r.mid, r.erp)
	})
	t.Run("gate", func(t *testing.T) {
		r := newCopyRig(t, recsync.System{}, func(c *recsync.Config) {
			c.Gates = []resolve.Gate{resolve.GateFunc(func(_ context.Context, ch resolve.Change) (resolve.Verdict, error) {
				shout(concord.Record{Fields: ch.To})
				shout(concord.Record{Fields: ch.From})
				slices.Reverse(ch.Fields)
				return resolve.Verdict{}, nil
			})}
			c.Groups = map[string][]string{"address": {"city", "street"}}
		})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon", "street": "Rue A"})
		r.settle(t)
		r.crm.Edit("k", map[string]concord.Value{"city": "Nice", "street": "Rue B"})
		r.settle(t)
		r.requireCity(t, "Nice", r.crm, r.mid, r.erp)
		for _, s := range []*fake.System{r.crm, r.mid, r.erp} {
			if got, _ := s.Record("k"); got.Fields["street"] != "Rue B" {
				t.Errorf("%s holds street %v; want Rue B", s.Name(), got.Fields["street"])
			}
		}
	})
	t.Run("resolver", func(t *testing.T) {
		var bases []concord.Value
		r := newCopyRig(t, recsync.System{}, func(c *recsync.Config) {
			c.Resolver = resolve.Func(func(ctx context.Context, cf resolve.Conflict) (resolve.Decision, error) {
				bases = append(bases, cf.Base["city"])
				for _, cand := range cf.Candidates {
					shout(concord.Record{Fields: cand.Values})
				}
				shout(concord.Record{Fields: cf.Base})
				return resolve.Decision{Outcome: resolve.Pick, Winner: len(cf.Candidates) - 1, Rule: "last", Reason: "the last candidate"}, nil
			})
		})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
		r.settle(t)
		r.crm.Edit("k", map[string]concord.Value{"city": "Paris"})
		r.erp.Edit("k", map[string]concord.Value{"city": "Rome"})
		r.settle(t)
		r.requireCity(t, "Rome", r.crm, r.mid, r.erp)
		r.crm.Edit("k", map[string]concord.Value{"city": "Oslo"})
		r.mid.Edit("k", map[string]concord.Value{"city": "Bern"})
		r.settle(t)
		r.requireCity(t, "Bern", r.crm, r.mid, r.erp) // candidates by system name: dock's is the last
		if want := []concord.Value{"Lyon", "Rome"}; !slices.Equal(bases, want) {
			t.Errorf("the resolver saw bases %v; want %v (each conflict's base, the value before it)", bases, want)
		}
	})
	t.Run("audit sink", func(t *testing.T) {
		redact := audit.SinkFunc(func(_ context.Context, evs []audit.Event) error {
			for _, ev := range evs {
				for _, m := range []map[string]concord.Value{ev.From, ev.To} {
					for f := range m {
						m[f] = "REDACTED"
					}
				}
				for _, c := range ev.Candidates {
					for f := range c.Values {
						c.Values[f] = "REDACTED"
					}
				}
				slices.Reverse(ev.Fields)
				clear(ev.Actors)
			}
			return nil
		})
		// The sink is given the events of a cycle's write-ahead commit
		// before its final commit stores the states they describe: the
		// merge's From is the unit's history (its Prev), the base of a
		// later conflict with an edit made before the merge was seen.
		dock := fake.New("dock")
		editFirst := &editBeforeApply{System: dock}
		r := newCopyRig(t, recsync.System{Connector: editFirst}, func(c *recsync.Config) {
			c.Audit = redact
			c.Resolver = resolve.Hold("people decide")
		})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
		r.settle(t)
		// dock's person sets Rome just before the engine's write of
		// Paris reaches it: dock refuses the write (its tag changed),
		// and its edit, made without seeing Paris, conflicts with it.
		editFirst.edit = map[string]concord.Value{"city": "Rome"}
		r.crm.Edit("k", map[string]concord.Value{"city": "Paris"})
		if _, err := r.e.RunCycle(context.Background()); !errors.Is(err, connector.ErrConflict) {
			t.Fatalf("the cycle whose write dock refused: %v; want a conflict", err)
		}
		r.settle(t)
		holds, err := r.e.Holds(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(holds) != 1 {
			t.Fatalf("%d holds; want 1", len(holds))
		}
		h := holds[0]
		var got []concord.Value
		for _, c := range h.Candidates {
			got = append(got, c.Values["city"])
		}
		if !slices.Contains(got, "Paris") || !slices.Contains(got, "Rome") {
			t.Errorf("the hold's candidates hold %v; want Paris and Rome", got)
		}
		if !h.BaseKnown || h.Base["city"] != "Lyon" {
			t.Errorf("the hold's base is %v (known %v); want Lyon, the value both edits were made from", h.Base, h.BaseKnown)
		}
	})
	t.Run("connector", func(t *testing.T) {
		// Not forbidden by its contract: the engine must not depend on a
		// patch after handing it over. Its audit says what it sent.
		dock := fake.New("dock")
		r := newCopyRig(t, recsync.System{Connector: shoutingConn{dock}})
		r.crm.Edit("k", map[string]concord.Value{"city": "Lyon"})
		if _, err := r.e.RunCycle(context.Background()); err != nil {
			t.Fatal(err)
		}
		ev := r.rec.Require(t, audittest.Match{Kind: audit.WriteAttempted, System: "dock", Key: "k"})
		if ev.To["city"] != "Lyon" {
			t.Errorf("the audit says the engine sent dock city %v; it sent Lyon", ev.To["city"])
		}
	})
}

// shoutingConn upper-cases the values of the patches it is given, in
// place, before it applies them.
type shoutingConn struct{ *fake.System }

func (c shoutingConn) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	for _, p := range ps {
		shout(concord.Record{Fields: p.Set})
	}
	return c.System.Apply(ctx, ps)
}

// editBeforeApply is a connector whose next Apply (if edit is set) is
// preceded by its person's edit of every patched record: the engine's write
// arrives just after it.
type editBeforeApply struct {
	*fake.System
	edit map[string]concord.Value
}

func (c *editBeforeApply) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	if c.edit != nil {
		for _, p := range ps {
			c.System.Edit(p.Key, c.edit)
		}
		c.edit = nil
	}
	return c.System.Apply(ctx, ps)
}
