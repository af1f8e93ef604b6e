package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/concordsync/concord"
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

// typicalEvents are n EditObserved events as the engine stages them in
// an initial sync: one field each, a version of two named actors.
func typicalEvents(n int) []audit.Event {
	actors := map[concord.Actor]string{1: "crm", 2: "erp"}
	events := make([]audit.Event, n)
	for i := range events {
		events[i] = audit.Event{
			Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: audit.EditObserved, Cycle: 1, System: "crm",
			Key: fmt.Sprintf("cust-%05d", i), Unit: "email",
			From:    map[string]concord.Value{"email": nil},
			To:      map[string]concord.Value{"email": fmt.Sprintf("user%d@example.com", i)},
			Version: concord.MustVersion(concord.Dot{Actor: 1, Counter: uint64(i + 1)}, concord.Dot{Actor: 2, Counter: 3}),
			Actors:  actors,
		}
	}
	return events
}

// BenchmarkChainAppend links 1,000 typical events in one Append call.
func BenchmarkChainAppend(b *testing.B) {
	events := typicalEvents(1000)
	c := audit.NewChain(audit.Head{})
	for b.Loop() {
		if _, err := c.Append(events...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChainStage stages 1,000 typical events as the engine's outbox
// does, one Append call per event: then EncodeEntry of each entry
// (api=Append+EncodeEntry), or AppendEncoded (api=AppendEncoded).
func BenchmarkChainStage(b *testing.B) {
	events := typicalEvents(1000)
	b.Run("api=Append+EncodeEntry", func(b *testing.B) {
		c := audit.NewChain(audit.Head{})
		for b.Loop() {
			for _, ev := range events {
				entries, err := c.Append(ev)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := audit.EncodeEntry(entries[0]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("api=AppendEncoded", func(b *testing.B) {
		c := audit.NewChain(audit.Head{})
		for b.Loop() {
			for _, ev := range events {
				if _, _, err := c.AppendEncoded(ev); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
