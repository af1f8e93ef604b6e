package patterns

import (
	"fmt"
	"maps"
	"slices"

	"github.com/concordsync/concord/audit"
)

// FromEvents turns audit events into observations, in their order:
//
//   - write.succeeded: a write that succeeded;
//   - write.failed and write.refused: a write that failed, with its error
//     class;
//   - write.dead_lettered: a write that failed, unless a write.failed or
//     write.refused of the same cycle, system and record is among events
//     (the engine emits one before dead-lettering: the failure is counted
//     once);
//   - read.failed (a read of changes) and record.quarantined (a record read
//     that could not be used): a read that failed;
//   - every other kind, write.attempted included (its outcome is the
//     observation), is no attempt and gives none.
//
// The audit log has no event for a successful read: append observations
// for those (Direction [Read], Failed false) before calling [Find], or
// leave reads out, or every read will look like a failure.
//
// attrs, if not nil, names the host attributes of each event that gives an
// observation (from its Key, say: the record's region); the map it returns
// is copied. If attrs panics, FromEvents returns the observations so far
// and an [*EventError] matching [ErrAttrsPanicked].
func FromEvents(events []audit.Event, attrs func(audit.Event) map[string]string) ([]Observation, error) {
	type write struct {
		cycle       uint64
		system, key string
	}
	explained := map[write]bool{}
	for _, ev := range events {
		if ev.Kind == audit.WriteFailed || ev.Kind == audit.WriteRefused {
			explained[write{ev.Cycle, string(ev.System), ev.Key}] = true
		}
	}
	var out []Observation
	for i, ev := range events {
		var ob Observation
		switch ev.Kind {
		case audit.WriteSucceeded:
			ob = Observation{Direction: Write}
		case audit.WriteFailed, audit.WriteRefused:
			ob = Observation{Direction: Write, Failed: true}
		case audit.WriteDeadLettered:
			if explained[write{ev.Cycle, string(ev.System), ev.Key}] {
				continue
			}
			ob = Observation{Direction: Write, Failed: true}
		case audit.ReadFailed, audit.RecordQuarantined:
			ob = Observation{Direction: Read, Failed: true}
		default:
			continue
		}
		ob.Time, ob.System = ev.Time, ev.System
		if ob.Failed {
			ob.ErrorClass = ev.ErrorClass
		}
		if ob.Direction == Write {
			ob.Fields = slices.Clone(ev.Fields)
		}
		if attrs != nil {
			a, err := callAttrs(attrs, ev)
			if err != nil {
				return out, &EventError{Index: i, Kind: ev.Kind, System: ev.System, Key: ev.Key, Err: err}
			}
			ob.Attrs = maps.Clone(a)
		}
		out = append(out, ob)
	}
	return out, nil
}

func callAttrs(attrs func(audit.Event) map[string]string, ev audit.Event) (a map[string]string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrAttrsPanicked, r)
		}
	}()
	return attrs(ev), nil
}
