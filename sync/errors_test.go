package sync_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
)

// poisonInbound turns a record with poison set into one holding a value the
// engine cannot keep (a channel).
var poisonInbound = transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
	out := rec.Clone()
	if out.Fields["poison"] == true {
		out.Fields["n"] = make(chan int)
	}
	return out, nil
})

// TestReplayWrapsTheCause: a record that fails again on Replay returns its
// cause wrapped, as Ingest and RunCycle do: errors.Is sees
// concord.ErrUnsupportedValue after all three.
func TestReplayWrapsTheCause(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) { c.Systems[0].Inbound = poisonInbound })
	r.sys["portal"].Edit("p", map[string]any{"poison": true, "n": 1})
	r.cycle()
	if !errors.Is(r.lastErr, concord.ErrUnsupportedValue) {
		t.Fatalf("RunCycle = %v; want ErrUnsupportedValue", r.lastErr)
	}
	// A webhook of a record the portal holds (a replay reads it again:
	// one the portal did not have would be replayed as its delete).
	r.sys["portal"].Edit("q", map[string]any{"poison": true})
	if _, err := r.engine.Ingest(context.Background(), "portal", []concord.Record{{Key: "q", Fields: map[string]any{"poison": true}}}); !errors.Is(err, concord.ErrUnsupportedValue) {
		t.Fatalf("Ingest = %v; want ErrUnsupportedValue", err)
	}
	dl, err := r.engine.DeadLetters(context.Background())
	if err != nil || len(dl) != 2 {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
	for _, d := range dl {
		err := r.engine.Replay(context.Background(), recsync.DeadLetterAction{ID: d.ID, Person: "ops"})
		if !errors.Is(err, concord.ErrUnsupportedValue) {
			t.Errorf("Replay of %s = %v; want ErrUnsupportedValue", d.Key, err)
		}
		var ve *concord.ValueError
		if !errors.As(err, &ve) || !strings.Contains(err.Error(), fmt.Sprint(d.ID)) {
			t.Errorf("Replay of %s = %v; want a *concord.ValueError and the dead letter's ID", d.Key, err)
		}
	}
	if left, _ := r.engine.DeadLetters(context.Background()); len(left) != 2 {
		t.Errorf("%d dead letters after failed replays; want both kept", len(left))
	}
}

// TestRequestsNameWhatIsMissing: every incomplete request a person makes is
// refused with a sentinel, before anything is applied.
func TestRequestsNameWhatIsMissing(t *testing.T) {
	sor := resolve.SystemOfRecord(map[string]concord.SystemID{"credit_limit": "erp"})
	r := newRig(t, []concord.SystemID{"crm", "erp"}, withResolver(sor), func(c *recsync.Config) { c.Systems[1].Inbound = poisonInbound })
	r.sys["crm"].Edit("c1", map[string]any{"credit_limit": 100})
	r.sys["erp"].Edit("bad", map[string]any{"poison": true})
	r.settle()
	holds, err := r.engine.Holds(context.Background())
	if err != nil || len(holds) != 1 {
		t.Fatalf("holds = %+v, %v", holds, err)
	}
	h := holds[0]
	ok := recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision, Candidate: 0, Person: "ann"}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		s    recsync.Settlement
		want error
	}{
		{"no person", recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision}, recsync.ErrNoPerson},
		{"no revision", recsync.Settlement{Key: h.Key, Unit: h.Unit, Person: "ann"}, recsync.ErrNoRevision},
		{"stale revision", recsync.Settlement{Key: h.Key, Unit: h.Unit, Revision: h.Revision + "x", Person: "ann"}, recsync.ErrHoldChanged},
		{"negative candidate", with(ok, func(s *recsync.Settlement) { s.Candidate = -1 }), recsync.ErrNoCandidate},
		{"candidate past the end", with(ok, func(s *recsync.Settlement) { s.Candidate = len(h.Candidates) }), recsync.ErrNoCandidate},
		{"huge candidate", with(ok, func(s *recsync.Settlement) { s.Candidate = math.MaxInt }), recsync.ErrNoCandidate},
		{"min candidate", with(ok, func(s *recsync.Settlement) { s.Candidate = math.MinInt }), recsync.ErrNoCandidate},
		{"other unit", with(ok, func(s *recsync.Settlement) { s.Unit = "name" }), recsync.ErrNoHold},
		{"other key", with(ok, func(s *recsync.Settlement) { s.Key = "c1\x00" }), recsync.ErrNoHold},
	} {
		err := r.engine.Settle(ctx, tc.s)
		if !errors.Is(err, tc.want) {
			t.Errorf("Settle, %s: %v; want %v", tc.name, err, tc.want)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.s.Key)) {
			t.Errorf("Settle, %s: %v does not name the record", tc.name, err)
		}
	}
	if after, _ := r.engine.Holds(ctx); len(after) != 1 || after[0].Revision != h.Revision {
		t.Fatalf("a refused settlement changed the hold: %+v", after)
	}
	dl, err := r.engine.DeadLetters(ctx)
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters = %+v, %v", dl, err)
	}
	id := dl[0].ID
	for name, err := range map[string]error{
		"replay, no person":  r.engine.Replay(ctx, recsync.DeadLetterAction{ID: id}),
		"discard, no person": r.engine.Discard(ctx, recsync.DeadLetterAction{ID: id, Reason: "gone"}),
		"discard, no reason": r.engine.Discard(ctx, recsync.DeadLetterAction{ID: id, Person: "ann"}),
		"reset, no person":   r.engine.ResetCursor(ctx, "crm", "", "", "because"),
		"reset, no reason":   r.engine.ResetCursor(ctx, "crm", "", "ann", ""),
	} {
		want := recsync.ErrNoPerson
		if strings.HasSuffix(name, "no reason") {
			want = recsync.ErrNoReason
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; want %v", name, err, want)
		}
	}
	if err := r.engine.Discard(ctx, recsync.DeadLetterAction{ID: id + 1000, Person: "ann", Reason: "x"}); !errors.Is(err, recsync.ErrNoDeadLetter) {
		t.Errorf("Discard of an unknown ID: %v; want ErrNoDeadLetter", err)
	}
	if err := r.engine.ResetCursor(ctx, "nowhere", "", "ann", "x"); !errors.Is(err, recsync.ErrUnknownSystem) || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("ResetCursor of an unknown system: %v; want ErrUnknownSystem naming it", err)
	}
	for _, d := range []time.Duration{0, -1, math.MinInt64} {
		if err := r.engine.Run(ctx, d); !errors.Is(err, recsync.ErrInvalidInterval) {
			t.Errorf("Run(%v) = %v; want ErrInvalidInterval", d, err)
		}
	}
	if dl, _ := r.engine.DeadLetters(ctx); len(dl) != 1 {
		t.Errorf("an incomplete request removed a dead letter: %+v", dl)
	}
	// The complete settlement applies.
	if err := r.engine.Settle(ctx, with(ok, func(s *recsync.Settlement) { s.Candidate = len(h.Candidates) - 1 })); err != nil {
		t.Fatal(err)
	}
}

func with(s recsync.Settlement, f func(*recsync.Settlement)) recsync.Settlement {
	f(&s)
	return s
}

// errMeter is the failure of a meter provider.
var errMeter = errors.New("meter broken")

type failingMeter struct{ noop.Meter }

func (failingMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return nil, errMeter
}

type failingProvider struct{ noop.MeterProvider }

func (failingProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

// TestConfigErrorsKeepTheirCause: New wraps ErrConfig and whatever error
// caused it.
func TestConfigErrorsKeepTheirCause(t *testing.T) {
	sys := []recsync.System{{ID: "a", Connector: fake.New("a")}, {ID: "b", Connector: fake.New("b")}}
	_, err := recsync.New(recsync.Config{Systems: sys, MeterProvider: failingProvider{}})
	if !errors.Is(err, recsync.ErrConfig) || !errors.Is(err, errMeter) {
		t.Errorf("New with a broken meter provider = %v; want ErrConfig and the provider's error", err)
	}
	_, err = recsync.New(recsync.Config{Systems: sys, Groups: map[string][]string{"addr": {"street"}}})
	if !errors.Is(err, recsync.ErrConfig) || !strings.Contains(err.Error(), `"addr"`) {
		t.Errorf("New with a bad group = %v", err)
	}
}

// TestCycleErrorListsEveryFailure: the message names every failure up to
// MaxListedFailures and counts the rest; Run logs it.
func TestCycleErrorListsEveryFailure(t *testing.T) {
	for _, n := range []int{1, 2, recsync.MaxListedFailures, recsync.MaxListedFailures + 1, 1000} {
		ce := &recsync.CycleError{}
		for i := range n {
			ce.Failures = append(ce.Failures, recsync.Failure{System: "crm", Key: fmt.Sprintf("k%d", i), Op: recsync.OpWrite, Err: fmt.Errorf("boom %d", i)})
		}
		msg := ce.Error()
		for i := range min(n, recsync.MaxListedFailures) {
			if !strings.Contains(msg, fmt.Sprintf(`crm write record "k%d": boom %d`, i, i)) {
				t.Errorf("n=%d: %q does not list failure %d", n, msg, i)
			}
		}
		if strings.Contains(msg, fmt.Sprintf(`"k%d"`, recsync.MaxListedFailures)) {
			t.Errorf("n=%d: %q lists more than %d failures", n, msg, recsync.MaxListedFailures)
		}
		more := fmt.Sprintf("and %d more", n-recsync.MaxListedFailures)
		if (n > recsync.MaxListedFailures) != strings.HasSuffix(msg, more) {
			t.Errorf("n=%d: %q; want %q at the end exactly when failures are left out", n, msg, more)
		}
		if n == 1000 && len(msg) > 1000 {
			t.Errorf("n=1000: message of %d bytes; want it bounded", len(msg))
		}
	}
	// Degenerate failures do not panic.
	_ = (&recsync.CycleError{}).Error()
	_ = (&recsync.CycleError{Failures: []recsync.Failure{{}, {Op: recsync.OpAudit, Err: errors.New("sink down")}}}).Error()

	// Run logs every failure of a cycle, not only the first.
	var log syncBuffer
	r := newRig(t, []concord.SystemID{"portal", "warehouse"}, func(c *recsync.Config) {
		c.Systems[0].Inbound = poisonInbound
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	for _, k := range []string{"p1", "p2", "p3"} {
		r.sys["portal"].Edit(k, map[string]any{"poison": true})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.engine.Run(ctx, time.Hour) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "p3") && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	for _, k := range []string{"p1", "p2", "p3", "failures=3"} {
		if !strings.Contains(log.String(), k) {
			t.Errorf("Run's log does not mention %s:\n%s", k, log.String())
		}
	}
}
