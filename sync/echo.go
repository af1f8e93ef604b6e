package sync

import (
	"slices"
	"strings"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
	"github.com/concordsync/concord/internal/state"
)

// Echo recognition without loading the state.
//
// After a cycle writes a record to a system, the next read of that system
// usually returns the record exactly as written: an echo. Merging it
// decodes the record's state to find that nothing changed (merge.go, the
// same-tag path of detect: the view's tag and notation are those reported).
// The engine remembers, for the writes of its last committed cycle only,
// what each target's view became (its tag and the hash of every field in
// the target's shape), and the next cycle recognises a report that matches
// it exactly without loading, merging or committing the record.
//
// A system with an inbound transform does not even transform such a
// report: prepare defers its canonical form (observation.deferred), and
// load makes it only for a record merged after all (cycle.canonicalOf).
//
// The memory is valid for one cycle, and only if nothing else committed
// events since: the audit log's head loaded at the cycle's start must be
// the head of this engine's own last commit (another instance's merge or
// write moves it). A report that differs in anything (tag, a field, a
// field's value, a delete) is merged as always, and so is every record that
// is pending, merged again from a dead letter, or read from a system more
// than once.

// echoKey names a record in a system.
type echoKey struct {
	key string
	sys concord.SystemID
}

// echoView is what a system's view of a record became when a write to it
// was committed. native is the view's own table, not a copy: a committed
// state is not changed again (the next cycle loads its own), so the two
// cannot drift apart.
type echoView struct {
	tag    string
	native state.Table[uint64]
	// set is what the write set (patch.Set, the system's names), when its
	// reply gave tag: the state at tag is then the one the write left,
	// which has every field the write gave a value (notKept).
	set map[string]concord.Value
}

// echoes is the engine's memory of its last committed cycle's writes.
type echoes struct {
	views map[echoKey]echoView
	head  audit.Head // the audit head after that commit
}

// remember replaces the memory with the successful writes of a committed
// cycle, committed with the audit head head.
func (m *echoes) remember(written []*write, head audit.Head) {
	m.views, m.head = nil, head
	for _, w := range written {
		v := w.st.Systems[w.sys.id]
		if v == nil || v.Tag == "" || v.Deleted || w.st.Deleted || w.st.Held() {
			continue // only tagged, live records are recognised
		}
		if m.views == nil {
			m.views = make(map[echoKey]echoView, len(written))
		}
		ev := echoView{tag: v.Tag, native: v.Native}
		if w.result.Tag != "" && w.result.Tag == v.Tag {
			ev.set = w.patch.Set
		}
		m.views[echoKey{w.st.Key, w.sys.id}] = ev
	}
}

// leftBy reports whether o is a whole report of the very state that the
// write v remembers left in o's system: the tag its reply gave.
func leftBy(v echoView, o *observation) bool {
	return v.set != nil && o.full && !o.rec.Deleted && o.rec.Tag == v.tag
}

// notKept returns the fields (the system's names, sorted) that the write v
// gave a value and that o, a report of the state that write left (leftBy),
// does not have: the system answered the write as applied and did not keep
// them (a field it does not have, or ignores). A null is not a value: a
// system may store it as no field (forgetMissing).
func notKept(v echoView, o *observation) []string {
	var out []string
	for f, val := range v.set {
		if val == nil {
			continue
		}
		if _, found := slices.BinarySearchFunc(o.native, f, func(h fieldHash, f string) int { return strings.Compare(h.field, f) }); !found {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// take returns the memory for the cycle that starts with the audit head
// head (nil if something else committed since), and forgets it if the
// cycle consumes it.
func (m *echoes) take(head audit.Head, consume bool) map[echoKey]echoView {
	views := m.views
	if consume {
		m.views = nil
	}
	if head != m.head {
		return nil
	}
	return views
}

// peek returns the memory, unconsumed, for the cycle that starts with the
// audit head head (nil if something else committed since).
func (m *echoes) peek(head audit.Head) map[echoKey]echoView {
	if head != m.head {
		return nil
	}
	return m.views
}

// isEcho reports whether every observation of key is a report of exactly
// what the engine's last write left in that system.
func isEcho(views map[echoKey]echoView, key string, obs []*observation) bool {
	if len(views) == 0 || len(obs) == 0 {
		return false
	}
	for _, o := range obs {
		v, ok := views[echoKey{key, o.sys.id}]
		if !ok || o.rec.Deleted || o.rec.Tag != v.tag || len(o.corrected) > 0 || !sameNative(o.native, v.native) {
			return false
		}
	}
	return true
}
