//go:build !race

package audit

import (
	"testing"

	"github.com/concordsync/concord"
)

// TestChainAppendAllocs: Append allocates per call, not per event (the
// entries, one buffer for their bytes), and the direct encoder and the
// hash allocate nothing once their scratch space has grown.
func TestChainAppendAllocs(t *testing.T) {
	if !directEncoding {
		t.Skip("the direct encoder is off with GOEXPERIMENT=jsonv2")
	}
	events := make([]Event, 100)
	for i := range events {
		events[i] = typicalEvent()
		events[i].To = map[string]concord.Value{"email": "x@example.com", "n": i, "tags": []any{"a", 1.5}}
	}
	c := NewChain(Head{})
	allocs := func(n int) float64 {
		return testing.AllocsPerRun(50, func() {
			if _, err := c.Append(events[:n]...); err != nil {
				t.Fatal(err)
			}
		})
	}
	if a1, a100 := allocs(1), allocs(100); a1 != a100 || a100 > 2 {
		t.Fatalf("Append allocates %v times for 1 event, %v for 100; want 2 for both", a1, a100)
	}
	if a := testing.AllocsPerRun(50, func() {
		if _, _, err := c.AppendEncoded(events...); err != nil {
			t.Fatal(err)
		}
	}); a > 3 {
		t.Fatalf("AppendEncoded allocates %v times for 100 events; want 3", a)
	}
	var enc eventEncoder
	var buf []byte
	ev := typicalEvent()
	if a := testing.AllocsPerRun(50, func() {
		var ok bool
		if buf, ok = enc.appendDirect(buf[:0], &ev); !ok {
			t.Fatal("typical event not encoded directly")
		}
	}); a != 0 {
		t.Fatalf("the direct encoder allocates %v times per event", a)
	}
}
