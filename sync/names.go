package sync

import (
	"context"
	"maps"
	"strconv"
	"sync/atomic"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

// actorNames is what the actor numbers in versions stand for: each
// system's ID, and "concord/engine@<epoch>" for each identity of the engine
// this Engine has had. A published map is never modified (a new one
// replaces it), so events share it.
type actorNames = map[concord.Actor]string

// nameActors publishes the names of the systems' actors and of the
// engine's current identity (keeping those of its earlier identities).
func (e *Engine) nameActors() {
	names := actorNames{}
	if old := e.names.Load(); old != nil {
		names = maps.Clone(*old)
	}
	for _, s := range e.systems {
		names[s.actor] = string(s.id)
	}
	names[e.engine] = engineActorName + strconv.FormatUint(e.epoch, 16)
	e.names.Store(&names)
}

// namingSink gives every event the engine emits the names of its actors
// (audit.Event.Actors), so that sinks print versions as {portal:2,crm:1}.
type namingSink struct {
	next  audit.Sink
	names *atomic.Pointer[actorNames]
}

func (s namingSink) Emit(ctx context.Context, events []audit.Event) error {
	if names := s.names.Load(); names != nil {
		for i := range events {
			if events[i].Actors == nil {
				events[i].Actors = *names
			}
		}
	}
	return s.next.Emit(ctx, events)
}
