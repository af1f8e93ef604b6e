package sync

import (
	"fmt"
	"testing"

	"github.com/concordsync/concord/audit"
)

// logKeys returns the keys of l's events, in order.
func logKeys(l *eventLog) []string {
	var out []string
	l.each(func(ev *audit.Event) { out = append(out, ev.Key) })
	return out
}

// TestEventLogBuildsInPlace checks the log's open/add protocol against a
// plain slice: events built in open's space, events that outgrow it,
// records that add nothing, and events added by other means while a
// record's events are being built, which must never land over them.
func TestEventLogBuildsInPlace(t *testing.T) {
	var l eventLog
	var want []string
	n := 0
	next := func() audit.Event {
		n++
		return audit.Event{Key: fmt.Sprintf("e%d", n)}
	}
	for rec := range 300 {
		evs := l.open()
		// 0 to 4 events mostly, sometimes more than a chunk holds.
		k := rec % 5
		if rec%37 == 0 {
			k = eventChunk + 3
		}
		var mine []string
		for range k {
			ev := next()
			mine = append(mine, ev.Key)
			evs = append(evs, ev)
		}
		if rec%7 == 0 {
			// Another event reaches the log while this record's are
			// being built: it goes first, and must not overwrite them.
			ev := next()
			l.add(ev)
			want = append(want, ev.Key)
		}
		if rec%11 == 0 {
			l.close() // a record that fails before adding anything
			continue
		}
		l.add(evs...)
		want = append(want, mine...)
	}
	if l.len() != len(want) {
		t.Fatalf("len = %d, want %d", l.len(), len(want))
	}
	got := logKeys(&l)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s", i, got[i], want[i])
		}
	}
	// Parts from any point give the same events.
	for _, from := range []int{0, 1, eventChunk - 1, eventChunk, len(want) / 2, len(want)} {
		var keys []string
		for _, p := range l.parts(from) {
			for _, ev := range p {
				keys = append(keys, ev.Key)
			}
		}
		if len(keys) != len(want)-from {
			t.Fatalf("parts(%d) has %d events, want %d", from, len(keys), len(want)-from)
		}
		for i, k := range keys {
			if k != want[from+i] {
				t.Fatalf("parts(%d)[%d] = %s, want %s", from, i, k, want[from+i])
			}
		}
	}
}
