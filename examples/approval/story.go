package main

// How the story is told: the audit sink that narrates it, the people's
// edits and decisions, and what it reports to its test. Nothing here is
// needed to use Concord.

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/seal"
)

// world is the running story. It keeps its first error (check), which run
// returns; no cycle runs after it.
type world struct {
	out    io.Writer
	clock  *storyClock
	engine *recsync.Engine
	keys   *seal.KeyRing
	fakes  map[concord.SystemID]*fake.System
	quiet  bool // the audit sink counts events instead of narrating them
	err    error
	result outcome
}

// outcome is what run reports besides its output, for its test.
type outcome struct {
	events      []audit.Event            // every event the sink received, in order
	quietEvents int                      // of which not narrated (the price history)
	holds       [][]recsync.HeldConflict // each listing by Engine.Holds or RevealHolds
	// states holds every record of each system, by snapshot.
	states                       map[string]map[concord.SystemID][]concord.Record
	fourEyes, wrongKeys          error // Ana approving her own change; RevealHolds with another ring
	verify, checkpoint, otherKey error // Engine.VerifyAudit; the checkpoint verified with its key, another
	checkpointsMatched           int   // by VerifyAudit with the checkpoint
	nameInStore, plainInStore    bool  // the supplier's name, an account number, are in the store's file as such
}

// check keeps err if it is the story's first error.
func (w *world) check(err error) {
	if w.err == nil && err != nil {
		w.err = err
	}
}

// errOr returns err, or ok if err is nil: what the story prints for a check.
func errOr(err error, ok string) any { return cmp.Or[any](err, ok) }

func (w *world) heading(title string) { fmt.Fprintf(w.out, "\n== %s ==\n", title) }

// narrate is the engine's audit sink: one short line per event.
func (w *world) narrate(_ context.Context, events []audit.Event) error {
	w.result.events = append(w.result.events, events...)
	if w.quiet {
		w.result.quietEvents += len(events)
		return nil
	}
	for _, ev := range events {
		what := strings.TrimSpace(ev.Unit + " " + ev.Reason + " " + ev.Error)
		switch ev.Kind {
		case audit.EditObserved, audit.MergeDecided:
			what = fmt.Sprintf("%s: %s -> %s", strings.Join(ev.UnitNames(), ", "), values(ev.From, ev.Fields), values(ev.To, ev.Fields))
			if ev.Unit == resolve.RecordUnit {
				what = ev.Unit + ": created"
				if ev.Deleted {
					what = ev.Unit + ": deleted"
				}
			}
			if ev.Kind == audit.MergeDecided {
				what += fmt.Sprintf(" (%s)", cmp.Or(ev.Reason, string(ev.Rule)))
			}
		case audit.ConflictHeld, audit.ChangeRefused:
			what = fmt.Sprintf("%s (%s): %s", ev.Unit, ev.Rule, ev.Reason)
		case audit.WriteAttempted, audit.WriteSucceeded:
			what = strings.Join(ev.Fields, ", ")
		}
		fmt.Fprintf(w.out, "       audit %-15s %-4s %-5s %s\n", ev.Kind, ev.System, ev.Key, what)
	}
	return nil
}

// values formats the given fields of vs; "-" for a field absent.
func values(vs map[string]concord.Value, fields []string) string {
	var parts []string
	for _, f := range fields {
		s := "-"
		if v, ok := vs[f]; ok {
			s = fmt.Sprint(v)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// edit is a person editing record key of system s at time at.
func (w *world) edit(at string, s concord.SystemID, who, key string, f map[string]concord.Value) {
	w.clock.Set(at)
	w.fakes[s].EditBy(who, key, f)
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, f[k]))
	}
	fmt.Fprintf(w.out, "%s  %-4s %s  %s: %s\n", at, s, key, who, strings.Join(parts, " "))
}

// cycle runs one engine cycle, then another that reads the writes of the
// first back from each system's change feed: that echo must be no edit and
// cause no write.
func (w *world) cycle(ctx context.Context) {
	if w.err != nil {
		return
	}
	at := w.clock.Now().Format("15:04")
	for echo := range 2 {
		rep, err := w.engine.RunCycle(ctx)
		if err != nil {
			w.check(fmt.Errorf("cycle at %s: %w", at, err))
			return
		}
		if echo == 0 {
			fmt.Fprintf(w.out, "%s  cycle %d ran\n", at, rep.Cycle)
			continue
		}
		for _, id := range systems {
			if s := rep.Systems[id]; s.Edits != 0 || s.Writes != 0 {
				w.check(fmt.Errorf("cycle %d at %s read the writes back: %s: %d edits, %d writes; want none", rep.Cycle, at, id, s.Edits, s.Writes))
			}
		}
	}
}

// decide is a person settling the hold of record key at time at: approving
// the change that waits, or rejecting it (choosing the canonical value).
func (w *world) decide(ctx context.Context, at, key, person string, reject bool, reason string) error {
	w.clock.Set(at)
	holds, err := w.engine.Holds(ctx)
	i := slices.IndexFunc(holds, func(h recsync.HeldConflict) bool { return h.Key == key })
	if err != nil || i < 0 {
		return fmt.Errorf("%s: no hold (%v)", key, err)
	}
	h, verb := holds[i], "approves"
	if reject {
		verb = "rejects"
	}
	fmt.Fprintf(w.out, "%s  %s %s the change of %s %s: %q\n", at, person, verb, key, h.Unit, reason)
	return w.engine.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Person: person, Reason: reason,
		Candidate: slices.IndexFunc(h.Candidates, func(c resolve.Candidate) bool { return c.Canonical == reject })})
}

// printHolds lists the holds as Engine.Holds shows them, or with keys as
// Engine.RevealHolds does, and keeps them.
func (w *world) printHolds(ctx context.Context, keys *seal.KeyRing) {
	holds, err := w.engine.Holds(ctx)
	if keys != nil {
		holds, err = w.engine.RevealHolds(ctx, keys)
	}
	w.check(err)
	w.result.holds = append(w.result.holds, holds)
	for _, h := range holds {
		fmt.Fprintf(w.out, "  %s %s, held since %s (%s): %s\n", h.Key, h.Unit, h.Since.Format("15:04"), h.Rule, h.Reason)
		for i, c := range h.Candidates {
			who := "the change, by " + c.By
			if c.Canonical {
				who = "the canonical value"
			}
			fmt.Fprintf(w.out, "    [%d] %-4s %-34s %s\n", i, c.System, who, values(c.Values, slices.Sorted(maps.Keys(c.Values))))
		}
	}
}

// snap keeps every record of both systems under label, for the test.
func (w *world) snap(label string) {
	s := map[concord.SystemID][]concord.Record{}
	for _, id := range systems {
		s[id] = w.fakes[id].Records()
	}
	w.result.states[label] = s
}

// show prints field of record key in each system.
func (w *world) show(key, field string) {
	var parts []string
	for _, id := range systems {
		r, _ := w.fakes[id].Record(key)
		parts = append(parts, fmt.Sprintf("%s %v", id, r.Fields[field]))
	}
	fmt.Fprintf(w.out, "Now %s %s: %s.\n", key, field, strings.Join(parts, ", "))
}
