package audit_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/concordsync/concord/audit"
)

// BenchmarkVerifyJSONLines verifies the 10,000-entry test log.
func BenchmarkVerifyJSONLines(b *testing.B) {
	lines, _ := testLog(b)
	file := join(lines)
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		if _, err := audit.VerifyJSONLines(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChainedJSONLines appends batches of 100 events.
func BenchmarkChainedJSONLines(b *testing.B) {
	batch := make([]audit.Event, 100)
	for i := range batch {
		batch[i] = chainEvent(i)
	}
	sink := audit.ChainedJSONLines(io.Discard, audit.Head{})
	for b.Loop() {
		if err := sink.Emit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
