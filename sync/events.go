package sync

import (
	"slices"

	"github.com/concordsync/concord/audit"
)

// eventChunk is how many events one chunk of an [eventLog] holds.
const eventChunk = 512

// eventLog is a cycle's audit events, in order, kept in fixed-size chunks:
// adding never copies the events already there. A cycle can make hundreds
// of thousands of events (two per field of every record it syncs), and
// growing one slice of them by doubling copied hundreds of megabytes of
// event structs (issue 13: most of an initial sync's time).
type eventLog struct {
	chunks [][]audit.Event
	n      int
	opened bool // open's space may be in use: add does not copy into it
}

// minOpen is the least room [eventLog.open] offers: a record's events
// (two per field it changes) mostly fit, so they are built in place.
const minOpen = 64

// open returns the free space at the end of the log's last chunk, as an
// empty slice to append a record's events to: passed to add, they join the
// log without being copied (376-byte structs, hundreds of thousands per
// initial sync). Appending past its capacity moves them elsewhere, and add
// copies them then. Until add, they are not in the log; the next open
// offers the same space again.
func (l *eventLog) open() []audit.Event {
	k := len(l.chunks) - 1
	if k < 0 || cap(l.chunks[k])-len(l.chunks[k]) < minOpen {
		l.chunks = append(l.chunks, make([]audit.Event, 0, eventChunk))
		k++
	}
	ch := l.chunks[k]
	l.opened = true
	return ch[len(ch):len(ch):cap(ch)]
}

// close ends the use of open's space without adding anything.
func (l *eventLog) close() { l.opened = false }

// add appends events to the log.
func (l *eventLog) add(evs ...audit.Event) {
	if k := len(l.chunks) - 1; k >= 0 && len(evs) > 0 {
		ch := l.chunks[k]
		if free := ch[len(ch):cap(ch)]; len(free) >= len(evs) && &free[0] == &evs[0] {
			// Built in place by way of open: already there.
			l.chunks[k] = ch[:len(ch)+len(evs)]
			l.n += len(evs)
			l.opened = false
			return
		}
	}
	for len(evs) > 0 {
		k := len(l.chunks) - 1
		if k < 0 || len(l.chunks[k]) == cap(l.chunks[k]) || l.opened {
			// Events added while open's space is being built in go
			// to a chunk of their own, never over that space.
			l.opened = false
			l.chunks = append(l.chunks, make([]audit.Event, 0, eventChunk))
			k++
		}
		n := min(len(evs), cap(l.chunks[k])-len(l.chunks[k]))
		l.chunks[k] = append(l.chunks[k], evs[:n]...)
		evs = evs[n:]
		l.n += n
	}
}

// len returns the number of events in the log.
func (l *eventLog) len() int { return l.n }

// parts returns the events from the i-th on, as consecutive slices of the
// log's chunks (not copies: changes to them change the log).
func (l *eventLog) parts(i int) [][]audit.Event {
	var out [][]audit.Event
	for _, ch := range l.chunks {
		if i >= len(ch) {
			i -= len(ch)
			continue
		}
		out = append(out, ch[i:])
		i = 0
	}
	return out
}

// all returns a copy of the events from the i-th on, in one slice: for the
// consumers that take one (alerts, a sink outside the audit log).
func (l *eventLog) all(i int) []audit.Event {
	out := make([]audit.Event, 0, max(l.n-i, 0))
	for _, p := range l.parts(i) {
		out = append(out, p...)
	}
	return out
}

// each calls f with every event in order.
func (l *eventLog) each(f func(*audit.Event)) {
	for _, ch := range l.chunks {
		for i := range ch {
			f(&ch[i])
		}
	}
}

// of returns copies of the events of the given kinds, in order.
func (l *eventLog) of(kinds ...audit.Kind) []audit.Event {
	var out []audit.Event
	l.each(func(ev *audit.Event) {
		if slices.Contains(kinds, ev.Kind) {
			out = append(out, *ev)
		}
	})
	return out
}
