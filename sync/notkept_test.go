package sync_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit/alert"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
)

// ignoring is a system that answers a write of some fields as applied and
// does not keep them, as a JSON API that drops the properties it does not
// know does.
type ignoring struct {
	*fake.System
	drops string
}

func (s ignoring) Apply(ctx context.Context, ps []connector.Patch) ([]connector.Result, error) {
	for i := range ps {
		if _, ok := ps[i].Set[s.drops]; ok {
			set := make(map[string]concord.Value, len(ps[i].Set))
			for k, v := range ps[i].Set {
				if k != s.drops {
					set[k] = v
				}
			}
			ps[i].Set = set
		}
	}
	return s.System.Apply(ctx, ps)
}

// A system that answers a write as applied and does not keep a field of it
// gets the write once: the record's writes there are dead-lettered (class
// permanent, ErrNotKept's reason naming the system, the record and the
// field) and alerted. Before, the field, reported missing, was taken for
// lost and written again in every cycle, for ever, and nothing said so.
// Leaving the field out with the system's outbound transform and replaying
// the dead letter brings the record back in sync; a new engine (no memory
// of the last cycle's writes) writes once more before it sees the loss.
func TestAWriteTheSystemDoesNotKeepIsDeadLetteredOnce(t *testing.T) {
	ctx := context.Background()
	var alerts []alert.Alert
	r := newRig(t, []concord.SystemID{"portal", "api"}, func(c *recsync.Config) {
		c.Alerter = alert.AlerterFunc(func(_ context.Context, a alert.Alert) error { alerts = append(alerts, a); return nil })
	})
	api := ignoring{r.sys["api"], "nick"}
	r.cfg.Systems[1].Connector = api
	r.engine = r.newEngine()
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "nick": "N"})
	r.sys["portal"].Edit("c2", map[string]any{"name": "B"})
	writes, failed := 0, 0
	for range 6 {
		writes += r.cycle().Systems["api"].Writes
		if errors.Is(r.lastErr, recsync.ErrNotKept) {
			failed++
		}
	}
	if writes != 2 || failed != 1 {
		t.Fatalf("%d writes to api in 6 cycles, %d failing with ErrNotKept; want 2 (c1 and c2, once each) and 1", writes, failed)
	}
	dead, err := r.engine.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "c1" || dead[0].System != "api" || dead[0].Class != connector.ErrPermanent.String() ||
		!strings.Contains(dead[0].Reason, "nick") || !strings.Contains(dead[0].Reason, "did not keep") || dead[0].Record.Fields["nick"] != "N" {
		t.Fatalf("dead letters %+v; want one for c1 in api, permanent, naming nick, with its value", dead)
	}
	if len(alerts) != 1 || alerts[0].Severity != alert.Critical || !strings.Contains(alerts[0].Message, "nick") {
		t.Fatalf("alerts %+v; want one critical alert naming nick", alerts)
	}

	// A new engine has no memory of the last cycle's writes: after a
	// replay without a fix, it writes once more, then sees the loss.
	r.engine = r.newEngine()
	if err := r.engine.Replay(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	writes = 0
	for range 6 {
		writes += r.cycle().Systems["api"].Writes
	}
	if writes != 1 {
		t.Fatalf("%d writes to api after the replay; want 1", writes)
	}

	// The fix: api's records leave nick out. Replayed, c1 is in sync.
	r.cfg.Systems[1].Outbound = transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		delete(rec.Fields, "nick")
		return rec, nil
	})
	r.engine = r.newEngine()
	dead, err = r.engine.DeadLetters(ctx)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters %v, %v; want the one of c1 again", dead, err)
	}
	if err := r.engine.Replay(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Person: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.sys["portal"].Edit("c1", map[string]any{"name": "A2"})
	r.settle()
	if got := r.fields("api", "c1"); !concord.EqualValues(got, map[string]any{"name": "A2"}) {
		t.Fatalf("api c1 = %v; want name A2 (nick left out)", got)
	}
	if dead, _ := r.engine.DeadLetters(ctx); len(dead) != 0 {
		t.Fatalf("dead letters %+v after the fix; want none", dead)
	}
}
