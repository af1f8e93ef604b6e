package sync_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/time/rate"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// newTimedRig is a rig whose clock is the real (in a synctest bubble,
// virtual) time, so that retry waits and Retry-After are measured.
func newTimedRig(t *testing.T, p recsync.RetryPolicy, rate float64) *rig {
	r := &rig{t: t, sys: map[concord.SystemID]*fake.System{}, audit: audittest.New(), store: store.NewMemory()}
	cfg := recsync.Config{Audit: r.audit, Store: r.store, Retry: p}
	for _, n := range []concord.SystemID{"portal", "warehouse"} {
		r.sys[n] = fake.New(string(n))
		cfg.Systems = append(cfg.Systems, recsync.System{ID: n, Connector: r.sys[n], Rate: ratelimit(rate), Burst: 1, FirstSync: recsync.FirstSyncFeed})
	}
	e, err := recsync.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.engine = e
	return r
}

func TestRateLimitStormWithRetryAfter(t *testing.T) {
	for _, form := range []string{"seconds", "http-date"} {
		t.Run(form, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newTimedRig(t, recsync.RetryPolicy{MaxAttempts: 5, MaxElapsed: time.Minute}, 0)
				r.sys["portal"].Edit("c1", map[string]any{"n": 1})
				// The warehouse answers 429 three times, asking for 2s
				// (given by the connector parsed from either header form).
				header := "2"
				if form == "http-date" {
					header = time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
				}
				after, ok := connector.ParseRetryAfter(header, time.Now())
				if !ok || after != 2*time.Second {
					t.Fatalf("ParseRetryAfter(%q) = %v, %v; want 2s", header, after, ok)
				}
				r.sys["warehouse"].RateLimitNext(3, after)
				start := time.Now()
				rep, err := r.engine.RunCycle(context.Background())
				if err != nil {
					t.Fatalf("cycle: %v", err)
				}
				if waited := time.Since(start); waited < 6*time.Second {
					t.Errorf("waited %v; want at least 3 x 2s of Retry-After", waited)
				}
				if rep.Systems["warehouse"].Retries != 3 || rep.Systems["warehouse"].Writes != 1 {
					t.Errorf("report %+v; want 3 retries then 1 write", *rep.Systems["warehouse"])
				}
				if rec, _ := r.sys["warehouse"].Record("c1"); rec.Fields["n"] != 1 {
					t.Errorf("warehouse = %v", rec.Fields)
				}
			})
		})
	}
}

func TestRetryAfterIsCappedAndReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTimedRig(t, recsync.RetryPolicy{MaxAttempts: 3, MaxElapsed: 10 * time.Second, MaxRetryAfter: time.Minute}, 0)
		r.sys["portal"].Edit("c1", map[string]any{"n": 1})
		r.sys["warehouse"].RateLimitNext(1, 24*time.Hour) // "come back tomorrow"
		rep, err := r.engine.RunCycle(context.Background())
		if !errors.Is(err, connector.ErrRateLimited) {
			t.Fatalf("cycle = %v; want the rate limit reported", err)
		}
		if rep.Systems["warehouse"].RetryAfterCapped != 1 {
			t.Errorf("RetryAfterCapped = %d; want 1", rep.Systems["warehouse"].RetryAfterCapped)
		}
		r.audit.Require(t, audittest.Match{Kind: audit.RetryAfterCapped, System: "warehouse"})
		// Parked for the capped minute, not a day: a cycle after it syncs.
		time.Sleep(61 * time.Second)
		if _, err := r.engine.RunCycle(context.Background()); err != nil {
			t.Fatalf("cycle after the cap: %v", err)
		}
		if rec, _ := r.sys["warehouse"].Record("c1"); rec.Fields["n"] != 1 {
			t.Errorf("warehouse = %v after the capped wait", rec.Fields)
		}
	})
}

func TestTransientFailuresAreRetriedThenSynced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTimedRig(t, recsync.RetryPolicy{MaxAttempts: 4}, 0)
		r.sys["portal"].Edit("c1", map[string]any{"n": 1})
		r.sys["portal"].FailNext(fake.OpChanges, 2, connector.Transient(errors.New("502")))
		r.sys["warehouse"].FailNext(fake.OpApply, 2, connector.Transient(errors.New("503")))
		rep, err := r.engine.RunCycle(context.Background())
		if err != nil {
			t.Fatalf("cycle: %v", err)
		}
		if rep.Systems["portal"].Retries != 2 || rep.Systems["warehouse"].Retries != 2 {
			t.Errorf("retries portal %d warehouse %d; want 2 each", rep.Systems["portal"].Retries, rep.Systems["warehouse"].Retries)
		}
		if rec, _ := r.sys["warehouse"].Record("c1"); rec.Fields["n"] != 1 {
			t.Errorf("warehouse = %v", rec.Fields)
		}
	})
}

func TestReplyLostHasNoDuplicateEffect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newTimedRig(t, recsync.RetryPolicy{MaxAttempts: 3}, 0)
		r.sys["portal"].Edit("c1", map[string]any{"n": 1})
		r.sys["warehouse"].LoseRepliesNext(1) // applied, but the engine hears a failure
		if _, err := r.engine.RunCycle(context.Background()); err != nil {
			t.Fatalf("cycle: %v", err)
		}
		if n := r.sys["warehouse"].Effects("c1"); n != 1 {
			t.Fatalf("effects = %d; want 1 (the retry carried the same idempotency key)", n)
		}
	})
}

func TestPermanentFailureIsDeadLetteredAndReplayed(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["warehouse"].FailKey("c1", connector.Permanent(errors.New("422 invalid postcode")))
	r.sys["portal"].Edit("c1", map[string]any{"zip": "X"})
	rep := r.cycle()
	if rep.Systems["warehouse"].DeadLettered != 1 {
		t.Fatalf("report %+v; want the write dead-lettered at once", *rep.Systems["warehouse"])
	}
	r.audit.RequireCount(t, audittest.Match{Kind: audit.WriteDeadLettered, Key: "c1", System: "warehouse"}, 1)
	dl := storedDeadLetters(t, r.store)
	if len(dl) != 1 || dl[0].Inbound || dl[0].Class != "permanent" || dl[0].Record.Fields["zip"] != "X" {
		t.Fatalf("dead letters = %+v", dl)
	}
	// Parked: later cycles do not hammer the system with it.
	for range 3 {
		r.cycle()
	}
	r.audit.RequireCount(t, audittest.Match{Kind: audit.WriteFailed, Key: "c1"}, 1)
	r.sys["warehouse"].ClearFailKey("c1")
	if err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Person: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.requireAll("c1", map[string]any{"zip": "X"})
	if err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Person: "ops@example.com"}); !errors.Is(err, recsync.ErrNoDeadLetter) {
		t.Fatalf("second replay = %v; want ErrNoDeadLetter", err)
	}
	if left, _ := r.engine.DeadLetters(context.Background()); len(left) != 0 {
		t.Fatalf("dead letters after replay: %+v", left)
	}
	r.audit.Require(t, audittest.Match{Kind: audit.WriteReplayed, Key: "c1"})
}

func TestDiscardedDeadLetterIsAuditedAndLater(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	r.sys["warehouse"].FailKey("c1", connector.Permanent(errors.New("422")))
	r.sys["portal"].Edit("c1", map[string]any{"zip": "X", "n": 1})
	r.cycle()
	dl, _ := r.engine.DeadLetters(context.Background())
	if len(dl) != 1 {
		t.Fatalf("dead letters = %+v", dl)
	}
	if err := r.engine.Discard(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Reason: "", Person: "ops"}); !errors.Is(err, recsync.ErrNoReason) {
		t.Fatal("Discard without a reason succeeded")
	}
	if err := r.engine.Discard(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Reason: "the warehouse record was closed", Person: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	ev := r.audit.Require(t, audittest.Match{Kind: audit.DeadLetterDiscarded, Key: "c1", System: "warehouse"})
	if !strings.Contains(ev.Reason, "closed") || !strings.Contains(ev.Reason, "ops@example.com") {
		t.Errorf("discard event reason %q", ev.Reason)
	}
	// The discarded version is not written; a later change is.
	r.sys["warehouse"].ClearFailKey("c1")
	r.settle()
	if r.fields("warehouse", "c1") != nil {
		t.Fatalf("the discarded write was made: %v", r.fields("warehouse", "c1"))
	}
	r.sys["portal"].Edit("c1", map[string]any{"n": 2})
	r.settle()
	if got := r.fields("warehouse", "c1"); got["n"] != 2 {
		t.Fatalf("warehouse after a later change = %v", got)
	}
}

func TestInvalidRecordReplayedAfterFix(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	// The portal cannot be read by key, so a replay reads the letter's
	// payload (a Getter would read the record again; one the portal does
	// not have would be replayed as its delete).
	r.rebuild(r.store, []recsync.System{{ID: "portal", Connector: feedOnly{r.sys["portal"]}}, {ID: "warehouse", Connector: r.sys["warehouse"]}})
	_, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{{Key: "c9", Fields: map[string]any{"n": struct{}{}}}})
	if err == nil {
		t.Fatal("a bad value was accepted")
	}
	dl, _ := r.engine.DeadLetters(context.Background())
	if len(dl) != 1 || !dl[0].Inbound {
		t.Fatalf("dead letters = %+v", dl)
	}
	// Replaying it unchanged fails again and keeps it.
	if err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: dl[0].ID, Person: "ops"}); err == nil {
		t.Fatal("replaying a still-bad record succeeded")
	}
	if left, _ := r.engine.DeadLetters(context.Background()); len(left) != 1 {
		t.Fatalf("a failed replay lost the dead letter: %+v", left)
	}
}

func TestTransientFailuresDeadLetterAfterMaxAttempts(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, withRetry(recsync.RetryPolicy{MaxAttempts: 1, MaxRecordAttempts: 3}))
	r.sys["warehouse"].FailKey("c1", connector.Transient(errors.New("timeout")))
	r.sys["portal"].Edit("c1", map[string]any{"n": 1})
	for i := 1; i <= 4; i++ {
		rep := r.cycle()
		if want := map[bool]int{true: 1}[i == 3]; rep.Systems["warehouse"].DeadLettered != want {
			t.Fatalf("cycle %d: dead-lettered %d; want %d", i, rep.Systems["warehouse"].DeadLettered, want)
		}
	}
}

func TestPoisonRecordDoesNotHoldUpItsBatch(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"})
	for i := range 1000 {
		r.sys["portal"].Edit(fmt.Sprintf("c%04d", i), map[string]any{"n": i})
	}
	r.sys["warehouse"].FailKey("c0500", connector.Permanent(errors.New("poison")))
	rep := r.cycle()
	if got := rep.Systems["warehouse"].Writes; got != 999 {
		t.Fatalf("writes = %d; want 999 in the same cycle", got)
	}
	var ce *recsync.CycleError
	if !errors.As(r.lastErr, &ce) || len(ce.Failures) != 1 || ce.Failures[0].Key != "c0500" {
		t.Fatalf("cycle error = %v; want exactly the poison record", r.lastErr)
	}
	if r.sys["warehouse"].Len() != 999 {
		t.Fatalf("warehouse has %d records", r.sys["warehouse"].Len())
	}
}

func ratelimit(r float64) rate.Limit { return rate.Limit(r) }

func TestAlertsOncePerOutageAndResolved(t *testing.T) {
	var got []alert.Alert
	rec := alert.AlerterFunc(func(_ context.Context, a alert.Alert) error { got = append(got, a); return nil })
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	grouper, err := alert.NewGrouper(rec, alert.GrouperConfig{Window: time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) { c.Alerter = grouper })
	// The warehouse rejects one record for good, and is down for reads
	// for three cycles.
	r.sys["warehouse"].FailKey("c1", connector.Permanent(errors.New("422 bad postcode")))
	r.sys["portal"].Edit("c1", map[string]any{"zip": "X"})
	r.sys["portal"].Edit("c2", map[string]any{"zip": "Y"})
	r.sys["warehouse"].FailNext(fake.OpChanges, 3, connector.Transient(errors.New("503")))
	for range 4 {
		r.cycle()
	}
	var summary []string
	for _, a := range got {
		summary = append(summary, fmt.Sprintf("%s %s count=%d", a.Severity, a.GroupKey, max(a.Count, 1)))
	}
	// One alert when the outage starts, one summary of the rest of it
	// (two more failed reads) when it ends, then the resolved notice; the
	// dead letter once.
	want := []string{
		"warning warehouse/transient count=1",
		"critical dead-letter/warehouse/permanent count=1",
		"warning warehouse/transient count=2",
		"resolved warehouse/transient count=3",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Fatalf("alerts (-want +got):\n%s", diff)
	}
	if dl := got[1]; len(dl.Keys) != 1 || dl.Keys[0] != "c1" || dl.Message == "" {
		t.Errorf("dead-letter alert %+v; want the record key and the error", dl)
	}
}
