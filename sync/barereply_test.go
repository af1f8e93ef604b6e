package sync_test

import (
	"context"
	"errors"
	"slices"
	gosync "sync"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
)

// bareReplies is a system with version tags whose write replies name no
// version (a REST API answering a PATCH with 204 No Content).
type bareReplies struct{ *fake.System }

func (b bareReplies) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	res, err := b.System.Apply(ctx, patches)
	for i := range res {
		res[i].Tag, res[i].Modified = "", concord.Record{}.Modified
	}
	return res, err
}

// After a write whose reply named no version, a late webhook of the state
// before the write (its tag the one the engine knew) is not that state the
// engine wrote: its old values are not the system's notation of the
// written ones. Before, they were learned as such, and a person's edit
// there back to the old value read as no change at all: that system kept
// it, the others the written value, for ever (found by the simulation,
// seed 66,906).
func TestAStateBeforeAWriteWithABareReplyIsNotTheWrittenOne(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, []concord.SystemID{"portal", "shop"}, withResolver(resolve.LastWriterWins()))
	shop := r.sys["shop"]
	r.cfg.Systems[1].Connector = bareReplies{shop}
	r.engine = r.newEngine()
	r.sys["portal"].Edit("c1", map[string]any{"name": "A", "flag": true})
	r.settle()
	before, ok := shop.Record("c1") // the state the engine knows, tag and all
	if !ok || before.Fields["flag"] != true {
		t.Fatalf("shop holds %v; want flag true", before.Fields)
	}
	r.sys["portal"].Edit("c1", map[string]any{"flag": false})
	if rep := r.cycle(); rep.Systems["shop"].Writes != 1 {
		t.Fatalf("the cycle wrote %d times to shop; want the edit written", rep.Systems["shop"].Writes)
	}
	// A webhook delivered late: the state before the write.
	if _, err := r.engine.Ingest(ctx, "shop", []concord.Record{before}); err != nil && !errors.As(err, new(*recsync.CycleError)) {
		t.Fatal(err)
	}
	shop.Edit("c1", map[string]any{"flag": true}) // a person sets it back there
	r.settle()
	r.requireAll("c1", map[string]any{"name": "A", "flag": true})
}

// hidesOwnWrites is a system whose change feed leaves out the changes its
// writes made (an API that does not echo its own client's changes), and
// whose write replies name no version.
type hidesOwnWrites struct {
	*fake.System
	mu      gosync.Mutex
	written map[string]bool // key and tag of every state a write made
}

func (h *hidesOwnWrites) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	res, err := h.System.Apply(ctx, patches)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range res {
		if res[i].Err == nil && res[i].Tag != "" {
			h.written[res[i].Key+"\x00"+res[i].Tag] = true
		}
		res[i].Tag, res[i].Modified = "", concord.Record{}.Modified
	}
	return res, err
}

func (h *hidesOwnWrites) Changes(ctx context.Context, c connector.Cursor, limit int) (connector.Batch, error) {
	b, err := h.System.Changes(ctx, c, limit)
	h.mu.Lock()
	defer h.mu.Unlock()
	b.Records = slices.DeleteFunc(b.Records, func(r concord.Record) bool { return h.written[r.Key+"\x00"+r.Tag] })
	return b, err
}

// A write to a system with tags whose tag of the record the engine does not
// know (the last write's reply named none, and the feed does not echo it)
// waits for the record to be read again by key: it carries the system's
// current tag as IfMatch, never none, which would replace whatever the
// system holds unread.
func TestAWriteAfterABareReplyCarriesTheCurrentTag(t *testing.T) {
	r := newRig(t, []concord.SystemID{"portal", "shop"}, withResolver(resolve.LastWriterWins()))
	shop := r.sys["shop"]
	r.cfg.Systems[1].Connector = &hidesOwnWrites{System: shop, written: map[string]bool{}}
	r.engine = r.newEngine()
	shop.Edit("c1", map[string]any{"name": "A"}) // read from shop: tag and all
	r.settle()
	for i, name := range []string{"B", "C", "D"} {
		r.sys["portal"].Edit("c1", map[string]any{"name": name})
		for range 3 { // a write deferred to the cycle that read the record again
			r.cycle()
		}
		r.requireAll("c1", map[string]any{"name": name})
		if n := len(shop.Applied()); n != i+1 {
			t.Fatalf("after edit %d shop was written %d times", i+1, n)
		}
	}
	for i, p := range shop.Applied() {
		if p.IfMatch == "" {
			t.Fatalf("write %d to shop (%v) had no IfMatch", i+1, p.Set)
		}
	}
}
