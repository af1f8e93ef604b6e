// Package enginetest holds engine scenarios that every store's tests run
// against their store: what the engine hands a store must be what every
// store can hold.
package enginetest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector/fake"
	"github.com/concordsync/concord/resolve"
	recsync "github.com/concordsync/concord/sync"
	"github.com/concordsync/concord/sync/store"
)

// HostileKeys runs an engine on st whose crm reports, beside a good record
// and one whose key is as long as a key may be, records whose keys no
// store can hold (a NUL byte: PostgreSQL text; longer than
// concord.MaxKeyBytes: PostgreSQL's and bbolt's indexes). Each of those is
// dead-lettered with its reason, whole key kept, and the others sync: one
// record never stops the pipeline. Before, such a key failed every commit
// (PostgreSQL: every load) of every cycle. The stores' conformance suite
// (storetest "LongKeys") checks that every store holds what passes.
func HostileKeys(t *testing.T, st store.Store) {
	ctx := context.Background()
	crm, shop := fake.New("crm"), fake.New("shop")
	e, err := recsync.New(recsync.Config{Systems: []recsync.System{{ID: "crm", Connector: crm}, {ID: "shop", Connector: shop}},
		Resolver: resolve.LastWriterWins(), Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	longest := strings.Repeat("é", concord.MaxKeyBytes/2)
	bad := map[string]string{
		"nul\x00key": "NUL",
		strings.Repeat("k", concord.MaxKeyBytes+1):       "MaxKeyBytes",
		strings.Repeat("y", 40_000):                      "MaxKeyBytes",
		strings.Repeat("z", concord.MaxKeyBytes-1) + "é": "MaxKeyBytes",
	}
	for k := range bad {
		crm.Edit(k, map[string]concord.Value{"a": "1"})
	}
	for _, k := range []string{"good", longest} {
		crm.Edit(k, map[string]concord.Value{"a": "1"})
	}
	_, err = e.RunCycle(ctx)
	var ce *recsync.CycleError
	if !errors.As(err, &ce) || len(ce.Failures) != len(bad) {
		t.Fatalf("first cycle: %.500v; want %d failures", err, len(bad))
	}
	for _, f := range ce.Failures {
		if len(f.Error()) > 1000 {
			t.Errorf("a failure's message is %d bytes long: a key is shown whole", len(f.Error()))
		}
	}
	for range 2 {
		if _, err := e.RunCycle(ctx); err != nil {
			t.Fatalf("later cycle: %.500v", err)
		}
	}
	for _, k := range []string{"good", longest} {
		if _, ok := shop.Record(k); !ok {
			t.Errorf("record %.20q… (%d bytes) did not reach shop", k, len(k))
		}
	}
	dead, err := e.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != len(bad) {
		t.Fatalf("%d dead letters; want %d", len(dead), len(bad))
	}
	for _, d := range dead {
		why, ok := bad[d.Record.Key]
		if !ok || d.Key != d.Record.Key {
			t.Errorf("dead letter %d is about key %.20q… (%d bytes), record key %.20q…; want one of the bad keys, whole", d.ID, d.Key, len(d.Key), d.Record.Key)
			continue
		}
		if !strings.Contains(d.Reason, why) {
			t.Errorf("dead letter of key %.20q… says %q; want it to name %s", d.Key, d.Reason, why)
		}
	}
}
