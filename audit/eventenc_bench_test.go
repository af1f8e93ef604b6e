package audit

import "testing"

// BenchmarkEncodeEvent encodes a typical EditObserved event (a one-field
// From and To, a version of two named actors) with encoding/json
// (impl=reflect) and with the direct encoder (impl=direct).
func BenchmarkEncodeEvent(b *testing.B) {
	ev := typicalEvent()
	b.Run("impl=reflect", func(b *testing.B) {
		for b.Loop() {
			if _, err := encodeEventReflect(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=direct", func(b *testing.B) {
		var enc eventEncoder
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = enc.appendEvent(buf[:0], &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
