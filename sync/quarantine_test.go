package sync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/audit/audittest"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/transform"
)

// A webhook of a record whose report the engine quarantined is not the
// record delivered in a usable form: a webhook may carry some of the
// record's fields only, and those it leaves out may hold the very edits of
// the quarantined report, which the engine has then still not read. Before,
// such a webhook settled the dead letter; the next cycle read b's feed to
// the end (the quarantined change already behind its cursor), took the
// record for read there, and wrote a's x over b's own edit of x in a system
// without tags, unread and unaudited (found by the simulation, seed 85,242:
// a late webhook of the quarantined state, its owned field left out). The
// letter now waits for a whole report; replayed, b's edit meets a's,
// audited.
func TestAPartialWebhookDoesNotSettleAQuarantinedRecord(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"a", "b"}, withResolver(resolve.LastWriterWins()))
	refuse := false // b's inbound transform fails while set (a panic, a bug fixed later)
	r.cfg.Systems[1].Inbound = transform.Func(func(_ context.Context, rec concord.Record) (concord.Record, error) {
		if refuse {
			return rec, errors.New("inbound transform failed")
		}
		return rec, nil
	})
	r.withoutTags("b")
	a, b := r.sys["a"], r.sys["b"]
	a.Edit("k", map[string]any{"x": "1", "y": "1"})
	r.settle()

	refuse = true
	b.Edit("k", map[string]any{"x": "from b", "y": "2"}) // quarantined when read
	if rep := r.cycle(); rep.Systems["b"].Quarantined != 1 {
		t.Fatalf("b: %+v; want k quarantined", rep.Systems["b"])
	}
	refuse = false

	// A late webhook of that very state, of y alone.
	partial, _ := b.Record("k")
	partial = partial.Clone()
	delete(partial.Fields, "x")
	if _, err := r.engine.Ingest(ctx, "b", []concord.Record{partial}); err != nil && !errors.As(err, new(*recsync.CycleError)) {
		t.Fatal(err)
	}
	a.Edit("k", map[string]any{"x": "from a"})
	r.cycle()
	r.cycle()
	if got := r.fields("b", "k")["x"]; got != "from b" {
		t.Fatalf("b's x = %v: written over b's quarantined edit after a webhook that left x out", got)
	}
	dead, err := r.engine.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || !dead[0].Inbound || dead[0].System != "b" {
		t.Fatalf("dead letters = %+v; want b's quarantined report of k, unsettled", dead)
	}
	if err := r.engine.Replay(ctx, recsync.DeadLetterAction{ID: dead[0].ID, Person: "ops@example.com"}); err != nil {
		t.Fatal(err)
	}
	r.settle()
	r.audit.Require(t, audittest.Match{Kind: audit.ConflictDetected, Key: "k", Unit: "x"})
	// a's edit of x, made after b's, is the later writer (no field times).
	r.requireAll("k", map[string]any{"x": "from a", "y": "2"})
}
