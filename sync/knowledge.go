package sync

import (
	"context"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/resolve"
	"github.com/concordsync/concord/sync/reconcile"
)

// Known is what the engine knows about keys, for a reconciliation
// (reconcile.Config.Knowledge): each record's canonical values, the
// systems it is writing the record to now or next cycle (Pending), and the
// fields each system is known to lag on (Behind: a write failing,
// dead-lettered, or a unit held for a person). Keys without a state are
// left out. Canonical values are the plaintext, for the comparison: the
// caller is the host, in-process.
func (e *Engine) Known(ctx context.Context, keys []string) (map[string]reconcile.KeyState, error) {
	states, err := e.store.Load(ctx, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]reconcile.KeyState, len(states))
	for k, st := range states {
		ks := reconcile.KeyState{Pending: map[concord.SystemID]bool{}, Behind: map[concord.SystemID][]string{}}
		if ex := st.Existence(); ex != nil && !st.Deleted {
			ks.Canonical = st.Fields
		}
		held := false
		for _, ux := range st.Units {
			u := ux.Value
			held = held || u.Hold != nil
		}
		for id, v := range st.Systems {
			if !st.Behind(v) && !held {
				continue
			}
			if !v.Parked && v.Attempts == 0 && st.Behind(v) {
				ks.Pending[id] = true
				continue
			}
			if !v.Seen && !st.Deleted {
				ks.Behind[id] = append(ks.Behind[id], reconcile.RecordField)
			}
			for _, ux := range st.Units {
				name, u := ux.Name, ux.Value
				if name == resolve.RecordUnit {
					continue
				}
				if u.Hold != nil || !v.Holds(name, u.Version) {
					ks.Behind[id] = append(ks.Behind[id], e.layout.fieldsOf(name)...)
				}
			}
		}
		out[k] = ks
	}
	return out, nil
}

var _ reconcile.Knowledge = (*Engine)(nil)
var _ reconcile.Repairer = (*Engine)(nil)
