package audit_test

import (
	"context"
	"io"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// BenchmarkJSONLines: the cost of one merge event as a JSON line, with the
// actors' names (as the engine emits it) and without.
func BenchmarkJSONLines(b *testing.B) {
	ev := audit.Event{Kind: audit.MergeDecided, System: "crm", Key: "cust-42", Unit: "address", Fields: []string{"city", "street"},
		From: map[string]concord.Value{"city": "Leeds", "street": "1 Main St"}, To: map[string]concord.Value{"city": "York", "street": "2 High St"},
		Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: 3}, concord.Dot{Actor: 2, Counter: 2}), Rule: "fast-forward"}
	sink := audit.JSONLines(io.Discard)
	for _, tc := range []struct {
		name   string
		actors map[concord.Actor]string
	}{{"numbers", nil}, {"names", map[concord.Actor]string{1: "portal", 2: "crm", 3: "concord/engine@1f"}}} {
		b.Run(tc.name, func(b *testing.B) {
			ev.Actors = tc.actors
			events := []audit.Event{ev}
			b.ReportAllocs()
			for b.Loop() {
				if err := sink.Emit(context.Background(), events); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
