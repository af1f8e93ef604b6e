package sync

import (
	"maps"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/resolve"
)

// own returns rec with a deep copy of its Fields (concord.CloneFields), for
// user code (see guardComponents).
func own(rec concord.Record) concord.Record {
	rec.Fields = concord.CloneFields(rec.Fields)
	return rec
}

// ownConflict returns c with copies of its field list, base and
// candidates' values: the engine's unit layout, a unit's history (Base is
// its Prev) and the values it merges or holds.
func ownConflict(c resolve.Conflict) resolve.Conflict {
	c.Fields = slices.Clone(c.Fields)
	c.Base = concord.CloneFields(c.Base)
	c.Candidates = slices.Clone(c.Candidates)
	for i := range c.Candidates {
		c.Candidates[i].Values = concord.CloneFields(c.Candidates[i].Values)
	}
	return c
}

// ownChange returns ch with copies of its field list and values.
func ownChange(ch resolve.Change) resolve.Change {
	ch.Fields = slices.Clone(ch.Fields)
	ch.From, ch.To = concord.CloneFields(ch.From), concord.CloneFields(ch.To)
	return ch
}

// ownEvents returns copies of events, each with copies of its lists and
// maps: an event's maps may be a unit's history (From becomes its Prev) or
// a hold's candidates, its Fields the engine's unit layout, its Actors the
// engine's table of names.
func ownEvents(events []audit.Event) []audit.Event {
	out := slices.Clone(events)
	for i := range out {
		ev := &out[i]
		ev.Units, ev.Fields = slices.Clone(ev.Units), slices.Clone(ev.Fields)
		ev.From, ev.To = concord.CloneFields(ev.From), concord.CloneFields(ev.To)
		ev.Actors = maps.Clone(ev.Actors)
		if ev.Candidates != nil {
			ev.Candidates = slices.Clone(ev.Candidates)
			for j := range ev.Candidates {
				ev.Candidates[j].Values = concord.CloneFields(ev.Candidates[j].Values)
			}
		}
	}
	return out
}
