package patterns_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/concordsync/concord/audit/patterns"
)

// BenchmarkFind mines 10^5 generated attempts with the two planted causes.
func BenchmarkFind(b *testing.B) {
	obs := generate(1, 100_000, 0.02, batchCause, emailCause)
	for _, mi := range []int{3, 5} {
		b.Run(fmt.Sprintf("n=1e5/items=%d", mi), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ps, err := patterns.Find(context.Background(), obs, patterns.Options{MaxItems: mi})
				if err != nil || len(ps) != 2 {
					b.Fatalf("%d patterns, %v", len(ps), err)
				}
			}
		})
	}
}

// BenchmarkFromEvents converts the audit log of 10^5 attempts.
func BenchmarkFromEvents(b *testing.B) {
	events, _, _ := toEvents(generate(1, 100_000, 0.02, batchCause))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := patterns.FromEvents(events, nil); err != nil {
			b.Fatal(err)
		}
	}
}
