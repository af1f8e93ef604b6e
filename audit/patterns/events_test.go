package patterns_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/patterns"
)

var t0 = time.Date(2025, 2, 1, 3, 15, 0, 0, time.UTC)

func TestFromEventsKinds(t *testing.T) {
	w := func(kind audit.Kind) audit.Event {
		return audit.Event{Time: t0, Kind: kind, Cycle: 1, System: "erp", Key: "k", Fields: []string{"email"}, ErrorClass: "transient", Error: "boom"}
	}
	write := patterns.Observation{Time: t0, System: "erp", Direction: "write", Fields: []string{"email"}}
	failedWrite := write
	failedWrite.Failed, failedWrite.ErrorClass = true, "transient"
	failedRead := patterns.Observation{Time: t0, System: "erp", Direction: "read", Failed: true, ErrorClass: "transient"}
	for _, tc := range []struct {
		kind audit.Kind
		want []patterns.Observation
	}{
		{audit.WriteSucceeded, []patterns.Observation{write}},
		{audit.WriteFailed, []patterns.Observation{failedWrite}},
		{audit.WriteRefused, []patterns.Observation{failedWrite}},
		{audit.WriteDeadLettered, []patterns.Observation{failedWrite}},
		{audit.ReadFailed, []patterns.Observation{failedRead}},
		{audit.RecordQuarantined, []patterns.Observation{failedRead}},
		{audit.WriteAttempted, nil},
		{audit.EditObserved, nil},
		{audit.MergeDecided, nil},
		{audit.WriteReplayed, nil},
		{audit.DeadLetterDiscarded, nil},
		{audit.RetryAfterCapped, nil},
		{audit.CursorWentBack, nil},
		{audit.ConflictHeld, nil},
	} {
		got, err := patterns.FromEvents([]audit.Event{w(tc.kind)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.kind, diff)
		}
	}
}

func TestFromEventsCountsADeadLetterOnce(t *testing.T) {
	ev := func(kind audit.Kind, cycle uint64, key string) audit.Event {
		return audit.Event{Time: t0, Kind: kind, Cycle: cycle, System: "erp", Key: key, ErrorClass: "permanent"}
	}
	obs, err := patterns.FromEvents([]audit.Event{
		ev(audit.WriteAttempted, 1, "a"), ev(audit.WriteFailed, 1, "a"), ev(audit.WriteDeadLettered, 1, "a"), // once
		ev(audit.WriteRefused, 2, "b"), ev(audit.WriteDeadLettered, 2, "b"), // once
		ev(audit.WriteDeadLettered, 3, "c"),                                // no failure before it in this log: once
		ev(audit.WriteFailed, 4, "d"), ev(audit.WriteDeadLettered, 5, "d"), // another cycle: twice
		ev(audit.WriteDeadLettered, 6, "e"), ev(audit.WriteFailed, 6, "e"), // order does not matter: once
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 6 {
		t.Errorf("%d observations, want 6: %+v", len(obs), obs)
	}
	for _, ob := range obs {
		if !ob.Failed || ob.Direction != patterns.Write || ob.ErrorClass != "permanent" {
			t.Errorf("observation %+v", ob)
		}
	}
}

func TestFromEventsAttrs(t *testing.T) {
	events := []audit.Event{
		{Time: t0, Kind: audit.WriteSucceeded, System: "erp", Key: "eu-1", Fields: []string{"a"}},
		{Time: t0, Kind: audit.EditObserved, System: "erp", Key: "eu-2"},
		{Time: t0, Kind: audit.WriteFailed, System: "erp", Key: "us-1", Fields: []string{"b"}},
	}
	var calls []string
	shared := map[string]string{}
	obs, err := patterns.FromEvents(events, func(ev audit.Event) map[string]string {
		calls = append(calls, ev.Key)
		shared["region"] = strings.ToUpper(ev.Key[:2])
		return shared // reused by the host: FromEvents must copy it
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"eu-1", "us-1"}, calls); diff != "" {
		t.Errorf("attrs called for (-want +got):\n%s", diff)
	}
	if obs[0].Attrs["region"] != "EU" || obs[1].Attrs["region"] != "US" {
		t.Errorf("attrs %v, %v", obs[0].Attrs, obs[1].Attrs)
	}
	events[0].Fields[0] = "changed"
	if obs[0].Fields[0] != "a" {
		t.Errorf("observation shares its event's fields")
	}
}

func TestFromEventsAttrsPanics(t *testing.T) {
	events := []audit.Event{
		{Time: t0, Kind: audit.WriteSucceeded, System: "erp", Key: "a"},
		{Time: t0, Kind: audit.WriteSucceeded, System: "erp", Key: "b"},
		{Time: t0, Kind: audit.ReadFailed, System: "crm"},
		{Time: t0, Kind: audit.WriteFailed, System: "erp", Key: "c"},
	}
	obs, err := patterns.FromEvents(events, func(ev audit.Event) map[string]string {
		if ev.Key == "c" {
			panic("no region for c")
		}
		return map[string]string{"region": "EU"}
	})
	var ee *patterns.EventError
	if !errors.Is(err, patterns.ErrAttrsPanicked) || !errors.As(err, &ee) || ee.Index != 3 || ee.Key != "c" || ee.Kind != audit.WriteFailed {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), "no region for c") || !strings.Contains(err.Error(), `event 3 (write.failed, system erp, key "c")`) {
		t.Errorf("message %q", err)
	}
	if len(obs) != 3 {
		t.Errorf("%d observations before the panic, want 3", len(obs))
	}
}

// toEvents writes generated observations as the engine would log them,
// with the region behind each record key, and returns the successful
// reads apart: the audit log has no event for those.
func toEvents(obs []patterns.Observation) (events []audit.Event, reads []patterns.Observation, region map[string]string) {
	region = map[string]string{}
	for i, ob := range obs {
		key := fmt.Sprintf("rec-%d", i)
		region[key] = ob.Attrs["region"]
		ev := audit.Event{Time: ob.Time, Cycle: uint64(i), System: ob.System, Key: key, ErrorClass: ob.ErrorClass}
		switch {
		case ob.Direction == patterns.Read && !ob.Failed:
			reads = append(reads, patterns.Observation{Time: ob.Time, System: ob.System, Direction: patterns.Read,
				Attrs: map[string]string{"region": ob.Attrs["region"]}})
			continue
		case ob.Direction == patterns.Read:
			ev.Kind = audit.ReadFailed
		case ob.Failed:
			ev.Kind, ev.Fields = audit.WriteFailed, ob.Fields
		default:
			ev.Kind, ev.Fields = audit.WriteSucceeded, ob.Fields
		}
		events = append(events, audit.Event{Time: ob.Time, Kind: audit.WriteAttempted, Cycle: ev.Cycle, System: ob.System, Key: key})
		events = append(events, ev)
		if ev.Kind == audit.WriteFailed && ob.ErrorClass == "permanent" {
			dl := ev
			dl.Kind = audit.WriteDeadLettered
			events = append(events, dl)
		}
	}
	return events, reads, region
}

func TestFromEventsFindsThePlantedCause(t *testing.T) {
	gen := generate(1, 50_000, 0.02, batchCause)
	for i := range gen {
		delete(gen[i].Attrs, "tier") // the host names the region only
	}
	events, reads, region := toEvents(gen)
	obs, err := patterns.FromEvents(events, func(ev audit.Event) map[string]string {
		return map[string]string{"region": region[ev.Key]}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Without its successful reads, every read is a failure: reads are
	// what stands out, which is why the host must supply them.
	ps := find(t, obs, patterns.Options{MaxItems: 5})
	if len(ps) == 0 || ps[0].Items[0] != (patterns.Item{Attr: "direction", Value: "read"}) {
		t.Errorf("without read successes: %v", texts(ps))
	}
	obs = append(obs, reads...)
	if len(obs) != len(gen) {
		t.Fatalf("%d observations from %d attempts", len(obs), len(gen))
	}
	ps = find(t, obs, patterns.Options{MaxItems: 5})
	if len(ps) == 0 {
		t.Fatal("no pattern")
	}
	if diff := cmp.Diff(batchCause.items, ps[0].Items); diff != "" {
		t.Errorf("first pattern (-planted +got):\n%s", diff)
	}
	want, _ := patterns.Find(context.Background(), gen, patterns.Options{MaxItems: 5})
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("patterns through the audit log differ from those of the attempts (-attempts +log):\n%s", diff)
	}
}
