package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/connector"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// story runs the example once and fails the test if it does not finish.
func story(t testing.TB) (*outcome, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := run(&out)
	if err != nil {
		t.Fatalf("run: %v\noutput so far:\n%s", err, out.String())
	}
	return res, out.String()
}

// Exactly these alerts, in this order: one when the outage starts (reads
// and writes failing are one group), one summary of the rest of it and the
// resolved notice when it ends; nothing for the absorbed rate limits; the
// poison record once, critical, and resolved once it syncs.
func TestAlerts(t *testing.T) {
	res, _ := story(t)
	type row struct {
		Time, Severity, Group string
		Count                 int
		Resolved              bool
		Keys                  string
	}
	var got []row
	for _, a := range res.alerts {
		got = append(got, row{a.Time.Format("15:04"), string(a.Severity), a.GroupKey, max(a.Count, 1), a.Resolved, strings.Join(a.Keys, ",")})
	}
	want := []row{
		{"09:10", "warning", "warehouse/transient", 1, false, ""},
		// The rest of the outage: two more failed reads and six failed
		// writes of three orders (the first write failed with the first
		// read, at 09:10).
		{"09:40", "warning", "warehouse/transient", 8, false, "ord-101,ord-102,ord-104"},
		{"09:40", "resolved", "warehouse/transient", 9, true, ""},
		{"10:31", "critical", "dead-letter/warehouse/permanent", 1, false, "ord-104"},
		{"11:15", "resolved", "dead-letter/warehouse/permanent", 1, true, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	if n := len(res.alerts); n > 0 && !strings.Contains(res.alerts[0].Message, "503 Service Unavailable") {
		t.Errorf("first alert says %q; want the warehouse's 503", res.alerts[0].Message)
	}
}

// Every edit, whichever side made it and whatever failed meanwhile, is in
// both systems at the end.
func TestFinalValuesAgree(t *testing.T) {
	res, _ := story(t)
	want := map[string]map[string]concord.Value{
		"ord-101": {"item": "kettle", "qty": 3, "ship_to": "EH1 1YZ", "status": "picking"},
		"ord-102": {"item": "teapot", "qty": 2, "ship_to": "G12 8QQ", "status": "picking"},
		"ord-103": {"item": "mugs", "qty": 8, "ship_to": "AB10 1XG", "status": "packed"},
		"ord-104": {"item": "toaster", "qty": 1, "ship_to": "ZE3 9JW", "status": "new"},
	}
	for _, id := range systems {
		// Numbers compare by value: the durable store gives back an int64
		// where the story wrote an int.
		got := res.final[id]
		same := len(got) == len(want)
		for k, rec := range want {
			same = same && concord.EqualValues(rec, got[k])
		}
		if !same {
			t.Errorf("%s at the end (-want +got):\n%s", id, cmp.Diff(want, got))
		}
	}
}

func TestPoisonRecordIsDeadLetteredThenReplayed(t *testing.T) {
	res, _ := story(t)
	if len(res.deadLetters) != 1 {
		t.Fatalf("dead letters after the poison cycle = %+v; want one", res.deadLetters)
	}
	d := res.deadLetters[0]
	got := fmt.Sprintf("%s %s inbound=%v class=%s attempts=%d ship_to=%v", d.System, d.Key, d.Inbound, d.Class, d.Attempts, d.Record.Fields["ship_to"])
	if want := "warehouse ord-104 inbound=false class=permanent attempts=1 ship_to=ZE3 9JW"; got != want {
		t.Errorf("dead letter: %s; want %s", got, want)
	}
	if !strings.Contains(d.Reason, "no shipping zone") {
		t.Errorf("dead letter reason %q does not say why", d.Reason)
	}
	if len(res.deadLettersAfter) != 0 {
		t.Errorf("dead letters after the replay: %+v", res.deadLettersAfter)
	}
	// The poison cycle synced the other order it carried.
	poison := res.cycles[11]
	if s := poison.Systems[warehouse]; s.Writes != 1 || s.DeadLettered != 1 || len(poison.Failures) != 1 || poison.Failures[0].Key != "ord-104" {
		t.Errorf("poison cycle: warehouse %+v, failures %v; want 1 write, 1 dead letter, only ord-104 failed", *s, poison.Failures)
	}

	rec := audittest.New()
	if err := rec.Emit(context.Background(), res.events); err != nil {
		t.Fatal(err)
	}
	rec.RequireCount(t, audittest.Match{Kind: audit.WriteDeadLettered, System: "warehouse", Key: "ord-104"}, 1)
	ev := rec.Require(t, audittest.Match{Kind: audit.WriteReplayed, System: "warehouse", Key: "ord-104"})
	if !strings.Contains(ev.Reason, "ops@shop.example") {
		t.Errorf("replay event reason %q does not name the person", ev.Reason)
	}
}

func TestRateLimitStormLosesNothing(t *testing.T) {
	res, _ := story(t)
	if res.storm.Retries != 3 || res.storm.Failed != 0 || res.storm.Writes != 1 || res.storm.Edits != 1 {
		t.Errorf("storm cycle, warehouse: %+v; want 3 retries, no failure, its edit read and the portal's written", res.storm)
	}
	if min := 3 * stormRetryAfter; res.stormWait < min {
		t.Errorf("the storm cycle took %v; Retry-After asked for at least %v", res.stormWait, min)
	}
}

func TestStats(t *testing.T) {
	res, _ := story(t)
	type figures struct {
		Writes, WriteFailures, ReadFailures, Retries, DeadLettered, Resolved int
		FailureRate                                                          string
		MeanTimeToResolution                                                 time.Duration
	}
	got := map[concord.SystemID]figures{}
	for _, id := range systems {
		s := res.stats.Systems[id]
		got[id] = figures{s.Writes, s.WriteFailures, s.ReadFailures, s.Retries, s.DeadLettered, s.Resolved,
			fmt.Sprintf("%.3f", s.FailureRate), s.MeanTimeToResolution}
	}
	want := map[concord.SystemID]figures{
		portal: {Writes: 3, FailureRate: "0.000"},
		warehouse: {
			Writes: 9, WriteFailures: 7, ReadFailures: 3, Retries: 27, DeadLettered: 1,
			FailureRate: "0.438", // 7 failed of 16 attempted
			// ord-101 failed from 09:10, ord-102 from 09:21 and ord-104
			// from 09:30; all synced at 09:40: (30+19+10)/3 minutes.
			Resolved: 4, MeanTimeToResolution: 25*time.Minute + 45*time.Second,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	if res.stats.Cycles != 14 {
		t.Errorf("Stats.Cycles = %d; want 14", res.stats.Cycles)
	}
}

// Each failure is reported by its cycle, classified: the outage's as
// transient, the poison record's as permanent.
func TestCyclesReportTheirFailures(t *testing.T) {
	res, _ := story(t)
	var got []string
	for _, r := range res.cycles {
		for _, f := range r.Failures {
			got = append(got, fmt.Sprintf("%d %s %s %s %s", r.Cycle, f.System, f.Op, f.Key, connector.Classify(f.Err).String()))
			if c := connector.Classify(f.Err); c != connector.ErrTransient && c != connector.ErrPermanent {
				t.Errorf("cycle %d: failure %v has class %v", r.Cycle, f, c)
			}
		}
	}
	want := []string{
		"5 warehouse read  transient", "5 warehouse write ord-101 transient",
		"6 warehouse read  transient", "6 warehouse write ord-101 transient", "6 warehouse write ord-102 transient",
		"7 warehouse read  transient", "7 warehouse write ord-101 transient", "7 warehouse write ord-102 transient", "7 warehouse write ord-104 transient",
		"12 warehouse write ord-104 permanent",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	_, first := story(t)
	for range 3 {
		if _, again := story(t); again != first {
			t.Fatalf("output changed between runs (-first +again):\n%s", cmp.Diff(first, again))
		}
	}
}
