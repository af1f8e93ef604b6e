package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store/boltstore"
)

// TestConcurrentUseConverges uses one engine as a service would: cycles
// run in one goroutine (Run), webhooks arrive in others (Ingest; half of
// them carry only the fields that changed), people
// settle holds and replay dead letters from a third, and a dashboard reads
// traces, plans and stats, all at once, while the systems' people edit and
// delete and the systems fail writes and lose replies. When the people
// stop, the engine must bring every system to the same records, each
// value one that someone typed, with an audit trail that verifies. Run
// with -race: the engine says its methods are safe for concurrent use.
func TestConcurrentUseConverges(t *testing.T) {
	for _, st := range []string{"memory", "bolt"} {
		for _, res := range []string{"held", "lww", "gated", "approved-existence"} {
			t.Run("store="+st+"/conflicts="+res, func(t *testing.T) {
				opts := []rigOption{withRetry(recsync.RetryPolicy{MaxAttempts: 2}),
					func(c *recsync.Config) { c.Logger = slog.New(slog.DiscardHandler) }}
				switch res {
				case "lww":
					opts = append(opts, withResolver(resolve.LastWriterWins()))
				case "approved-existence":
					// Every create and delete waits for a person.
					opts = append(opts, withResolver(resolve.LastWriterWins()), func(c *recsync.Config) {
						c.Gates = []resolve.Gate{resolve.RequireApproval(resolve.RecordUnit)}
					})
				case "gated":
					// Conflicts decided by time, every phone change
					// approved by a person, the phone sealed at rest.
					opts = append(opts, withResolver(resolve.LastWriterWins()), func(c *recsync.Config) {
						c.Gates = []resolve.Gate{resolve.RequireApproval("phone")}
						c.Sensitive = []string{"phone"}
						c.Keys = keyRing(t, "a", "a")
					})
				}
				if st == "bolt" {
					opts = append(opts, func(c *recsync.Config) {
						s, err := boltstore.Open(filepath.Join(t.TempDir(), "concord.db"))
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { s.Close() })
						c.Store = s
					})
				}
				concurrentUse(t, newRig(t, []concord.SystemID{"portal", "warehouse", "crm"}, opts...))
			})
		}
	}
}

func concurrentUse(t *testing.T, r *rig) {
	dur := 2 * time.Second
	if testing.Short() {
		dur = 500 * time.Millisecond
	}
	names := []concord.SystemID{"portal", "warehouse", "crm"}
	e := r.engine
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	fields := []string{"name", "city", "phone"}

	var typedMu gosync.Mutex
	typed := map[string]bool{} // every value a person typed
	ctx, stop := context.WithCancel(context.Background())
	var people, service gosync.WaitGroup
	var n atomic.Int64

	// The people of each system: edits and deletes, each followed or
	// not by its webhook, and now and then a webhook delivered again
	// late (an older state of the record).
	for i, s := range names {
		people.Add(1)
		go func() {
			defer people.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			f := r.sys[s]
			var old []concord.Record // states already delivered
			ingest := func(rec concord.Record) {
				if _, err := e.Ingest(ctx, s, []concord.Record{rec}); err != nil && ctx.Err() == nil {
					var ce *recsync.CycleError
					if !errors.As(err, &ce) {
						t.Errorf("Ingest: %v", err)
					}
				}
			}
			for ctx.Err() == nil {
				k := keys[rng.IntN(len(keys))]
				if rng.IntN(12) == 0 {
					f.Delete(k)
					continue
				}
				vals := map[string]concord.Value{}
				for _, fl := range fields {
					if rng.IntN(2) == 0 {
						v := fmt.Sprintf("%s/%s/%s/%d", s, k, fl, n.Add(1))
						typedMu.Lock()
						typed[v] = true
						typedMu.Unlock()
						vals[fl] = v
					}
				}
				if len(vals) == 0 {
					continue
				}
				rec := f.Edit(k, vals)
				switch rng.IntN(4) {
				case 0:
					if rng.IntN(2) == 0 {
						// A webhook of the fields that changed only.
						part := rec
						part.Fields = maps.Clone(vals)
						ingest(part)
					} else {
						ingest(rec)
					}
					old = append(old, rec)
				case 1:
					if len(old) > 0 {
						ingest(old[rng.IntN(len(old))])
					}
				}
				switch rng.IntN(40) {
				case 0:
					f.FailNext(fake.OpApply, 1, connector.Permanent(errors.New("refused")))
				case 1:
					f.LoseRepliesNext(1)
				case 2:
					f.FailNext(fake.OpApply, 1, connector.Transient(errors.New("busy")))
				}
				time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
			}
		}()
	}

	// The service: cycles, as Run would run them.
	service.Add(1)
	go func() {
		defer service.Done()
		if err := e.Run(ctx, time.Millisecond); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()

	// The operators: settle holds, replay dead letters.
	service.Add(1)
	go func() {
		defer service.Done()
		rng := rand.New(rand.NewPCG(11, 7))
		for ctx.Err() == nil {
			operate(ctx, t, e, rng, false, false)
			time.Sleep(time.Millisecond)
		}
	}()

	// A dashboard: reads while everything else runs.
	service.Add(1)
	go func() {
		defer service.Done()
		for i := 0; ctx.Err() == nil; i++ {
			k := keys[i%len(keys)]
			if _, err := e.Trace(ctx, k); err != nil && ctx.Err() == nil {
				t.Errorf("Trace(%s): %v", k, err)
			}
			if _, err := e.Plan(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("Plan: %v", err)
			}
			_ = e.Stats()
			time.Sleep(time.Millisecond)
		}
	}()

	time.Sleep(dur)
	stop()
	people.Wait()
	service.Wait()
	if t.Failed() {
		return
	}

	// Quiet: no more failures; cycles, settlements and replays until
	// nothing is left to do.
	bg := context.Background()
	for _, s := range names {
		r.sys[s].FailNext(fake.OpApply, 0, nil)
		r.sys[s].LoseRepliesNext(0)
	}
	quiesce(t, e, false)
	agree(t, r, names, keys, typed)

	mark := r.audit.Len()
	// Still alive: two systems edit different fields of every record at
	// once (creating it, where it is deleted everywhere); both edits
	// reach every system.
	for i, k := range keys {
		a, b := names[i%len(names)], names[(i+1)%len(names)]
		va, vb := fmt.Sprintf("%s/%s/after", a, k), fmt.Sprintf("%s/%s/after", b, k)
		typed[va], typed[vb] = true, true
		r.sys[a].Edit(k, map[string]concord.Value{"name": va})
		r.sys[b].Edit(k, map[string]concord.Value{"city": vb})
	}
	quiesce(t, e, true)
	agree(t, r, names, keys, typed)
	for i, k := range keys {
		a, b := names[i%len(names)], names[(i+1)%len(names)]
		want := map[string]concord.Value{"name": fmt.Sprintf("%s/%s/after", a, k), "city": fmt.Sprintf("%s/%s/after", b, k)}
		got := r.fields("crm", k)
		if got["name"] != want["name"] || got["city"] != want["city"] {
			t.Errorf("%s = %v after the last edits, want name and city %v", k, got, want)
			for _, ev := range r.audit.Events()[mark:] {
				if ev.Key == k {
					t.Logf("%s %s %s %v %v -> %v %s %s", ev.Kind, ev.System, ev.Unit, ev.Units, ev.From, ev.To, ev.Rule, ev.Error)
				}
			}
		}
	}
	if res, err := e.VerifyAudit(bg); err != nil || res.Entries == 0 {
		t.Errorf("audit: %+v, %v", res, err)
	}
}

// quiesce runs cycles, settling and replaying, until a cycle writes
// nothing and nothing is held or dead-lettered. If approve, every hold is
// settled with a change (a candidate that is not the canonical one), else
// with a drawn candidate.
func quiesce(t *testing.T, e *recsync.Engine, approve bool) {
	t.Helper()
	bg := context.Background()
	rng := rand.New(rand.NewPCG(13, 7))
	settled := false
	for range 30 {
		rep, err := e.RunCycle(bg)
		if err != nil {
			var ce *recsync.CycleError
			if !errors.As(err, &ce) {
				t.Fatalf("cycle: %v", err)
			}
		}
		writes := 0
		for _, s := range rep.Systems {
			writes += s.Writes
		}
		if writes == 0 && err == nil && !operate(bg, t, e, rng, approve, true) {
			settled = true
			break
		}
	}
	if !settled {
		holds, _ := e.Holds(bg)
		dls, _ := e.DeadLetters(bg)
		t.Fatalf("no quiescence after 30 cycles: %d holds, %d dead letters", len(holds), len(dls))
	}
}

// agree checks that every system holds the same records, each value one
// a person typed.
func agree(t *testing.T, r *rig, names []concord.SystemID, keys []string, typed map[string]bool) {
	t.Helper()
	for _, k := range keys {
		want, wantOK := r.sys[names[0]].Record(k)
		for _, s := range names[1:] {
			got, ok := r.sys[s].Record(k)
			// A field a record lacks and a null are one value, no
			// value: the engine writes no null to a system whose
			// record lacks the field (see heldNothing).
			if ok != wantOK || (ok && !concord.EqualValues(nonNull(want.Fields), nonNull(got.Fields))) {
				t.Errorf("%s: %s has %v (%v), %s has %v (%v):\n%s", k, names[0], want.Fields, wantOK, s, got.Fields, ok, cmp.Diff(want.Fields, got.Fields))
			}
		}
		for f, v := range want.Fields {
			// nil: a field the record, created again, came back
			// without (resolve's re-created rule).
			if s, _ := v.(string); v != nil && !typed[s] {
				t.Errorf("%s.%s = %v, which nobody typed", k, f, v)
			}
		}
	}
}

// nonNull returns fields without its nulls.
func nonNull(fields map[string]concord.Value) map[string]concord.Value {
	out := make(map[string]concord.Value, len(fields))
	for f, v := range fields {
		if v != nil {
			out[f] = v
		}
	}
	return out
}

// operate settles every hold (a candidate drawn from rng) and replays every dead
// letter, as a person at a console would; it reports whether there was
// anything to do. Refusals a concurrent cycle explains (the hold changed,
// the letter went) are expected unless quiet.
func operate(ctx context.Context, t *testing.T, e *recsync.Engine, rng *rand.Rand, approve, quiet bool) bool {
	t.Helper()
	did := false
	holds, err := e.Holds(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("Holds: %v", err)
		}
		return false
	}
	for _, h := range holds {
		did = true
		pick := rng.IntN(len(h.Candidates))
		if i := slices.IndexFunc(h.Candidates, func(c resolve.Candidate) bool { return !c.Canonical }); approve && i >= 0 {
			pick = i
		}
		err := e.Settle(ctx, recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: pick, Person: "op"})
		if err != nil && quiet {
			t.Errorf("Settle %s.%s: %v", h.Key, h.Unit, err)
		}
	}
	dls, err := e.DeadLetters(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.Errorf("DeadLetters: %v", err)
		}
		return did
	}
	for _, d := range dls {
		did = true
		err := e.Replay(ctx, recsync.DeadLetterAction{ID: d.ID, Person: "op"})
		if err != nil && quiet {
			t.Errorf("Replay %d (%s %s): %v", d.ID, d.System, d.Key, err)
		}
	}
	return did
}
