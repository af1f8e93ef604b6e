package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/concordsync/concord"
)

// Systems added to a pipeline that already holds records get every record
// the others hold: a backfill.
//
// The engine writes a record to a system when it merges the record (a
// change somewhere, a pending write). A system added to the configuration
// of a pipeline with stored records would get only the records that change
// from then on: the rest, possibly all of a business's customers, would
// never reach it, and nothing would say so. The store remembers which
// systems the pipeline's records know (knownSystemsValue). A configured
// system not among them is backfilled: once its first read is over (its
// first sync by scan done, its change feed caught up), each cycle loads the
// next stored states in key order (store.Records.Keys) beside its own, up
// to the same number as its pending records; merging a state gives it a
// view of every configured system, and the plan writes the system what it
// lacks, as for any pending record. The progress (the last key loaded) is
// committed with the cycle (backfillValueName), so a crash resumes it; when
// the last key is done the system is known. A state the pass could not
// read (damaged, sealed under a retired key, of a newer format) fails its
// record alone, as in any cycle, and the pass goes on; but a pass that
// missed a record does not make the system known: it starts again from
// the first key, until one pass reads every state (the progress value
// notes the miss after a NUL byte, which no key holds).
//
// A system removed from the configuration is forgotten (it leaves the
// known systems), and the pending flags of the records count the
// configured systems only, so that records it lacks are not loaded again
// every cycle; added back, it is backfilled like a new one, and gets what
// changed meanwhile.
//
// A store written by an engine before backfills existed holds no known
// systems: the configured ones are taken as known then, as they are for a
// store that holds no record yet.

// knownSystemsValue is the engine value listing the systems the records
// know: a JSON array of their IDs, sorted.
const knownSystemsValue = "systems"

// backfillValueName is the engine value holding the last key backfilled
// to system s.
func backfillValueName(s concord.SystemID) string { return "backfill/" + string(s) }

// backfill is what the store says of the known systems and the progress
// of each backfill, read by each cycle (another instance may have moved
// them since this one's last cycle).
type backfill struct {
	known map[concord.SystemID]bool
	after map[concord.SystemID]string // the last key done, by system being backfilled
	// missed: the current pass of the system's backfill could not read
	// some state (see backfillKeys).
	missed map[concord.SystemID]bool
	// write: the known systems changed at load (a system removed from
	// the configuration): the next commit stores them.
	write bool
}

// loadBackfill reads the known systems and the backfills' progress from
// the store: one value, and one per system being backfilled.
func (c *cycle) loadBackfill(ctx context.Context) error {
	e := c.e
	b, err := e.store.Value(ctx, knownSystemsValue)
	if err != nil {
		return fmt.Errorf("concord: loading the known systems: %w", err)
	}
	f := &backfill{known: map[concord.SystemID]bool{}, after: map[concord.SystemID]string{}, missed: map[concord.SystemID]bool{}}
	configured := map[concord.SystemID]bool{}
	for _, s := range e.systems {
		configured[s.id] = true
	}
	if b == nil {
		// A store from before backfills, or one without records: the
		// configured systems are the known ones.
		f.known, f.write = configured, true
	} else {
		var ids []concord.SystemID
		if err := json.Unmarshal(b, &ids); err != nil {
			// Damaged: not a reason to stop syncing. The configured
			// systems are taken as known, and stored again.
			e.log.Warn("concord: the known systems do not decode; taking the configured ones", "value", knownSystemsValue, "error", err)
			ids = nil
			for s := range configured {
				ids = append(ids, s)
			}
			f.write = true
		}
		for _, s := range ids {
			if configured[s] {
				f.known[s] = true
			} else {
				f.write = true // removed from the configuration: forgotten
			}
		}
	}
	for _, s := range e.systems {
		if f.known[s.id] {
			continue
		}
		v, err := e.store.Value(ctx, backfillValueName(s.id))
		if err != nil {
			return fmt.Errorf("concord: loading the backfill of %q: %w", s.id, err)
		}
		after, missed := decodeProgress(v)
		f.after[s.id], f.missed[s.id] = after, missed
	}
	c.filling = f
	return nil
}

// missedMark follows the last key in a backfill's progress when the pass
// missed a record: keys hold no NUL byte (concord.Record.Validate).
const missedMark = "\x00missed"

// decodeProgress reads a backfill's progress value: the last key done, and
// whether the pass missed a record.
func decodeProgress(v []byte) (after string, missed bool) {
	s := string(v)
	if k, ok := strings.CutSuffix(s, missedMark); ok {
		return k, true
	}
	return s, false
}

// encodeProgress is the value decodeProgress reads.
func encodeProgress(after string, missed bool) []byte {
	if missed {
		return []byte(after + missedMark)
	}
	return []byte(after)
}

// encodeKnown is the value of knownSystemsValue for known.
func encodeKnown(known map[concord.SystemID]bool) []byte {
	ids := make([]string, 0, len(known))
	for s := range known {
		ids = append(ids, string(s))
	}
	slices.Sort(ids)
	b, err := json.Marshal(ids)
	if err != nil {
		panic("concord: encoding the known systems: " + err.Error()) // strings of valid UTF-8: cannot fail
	}
	return b
}

// fillPass is what one cycle does of one system's backfill.
type fillPass struct {
	sys  concord.SystemID
	keys []string // the stored keys the cycle loads for it, in order
	last string   // the last key done once the cycle commits
	done bool     // the pass ends with this cycle
	// missed: the pass could not read some state, in this cycle or an
	// earlier one (known at commit: see backfillValues).
	missed bool
}

// backfillKeys returns the stored keys the cycle loads for the systems
// being backfilled whose first read is over (c.current), at most limit,
// and notes each pass's progress (c.fills).
func (c *cycle) backfillKeys(ctx context.Context, limit int) ([]string, error) {
	f := c.filling
	var out []string
	for _, s := range c.e.systems {
		after, filling := f.after[s.id]
		if !filling || !c.current[s.id] || c.scanning[s.id] || limit <= 0 {
			continue
		}
		keys, err := c.e.store.Keys(ctx, after, limit)
		if err != nil {
			return nil, fmt.Errorf("concord: listing the records to backfill to %q: %w", s.id, err)
		}
		p := &fillPass{sys: s.id, keys: keys, last: after, done: len(keys) < limit}
		if len(keys) > 0 {
			p.last = keys[len(keys)-1]
		}
		c.fills = append(c.fills, p)
		out = append(out, keys...)
		limit -= len(keys)
	}
	return out, nil
}

// backfillValues adds to the cycle's values what its commit stores of the
// backfills: each one's progress, and the known systems when they change.
// A pass that ends having missed a record starts again instead.
func (c *cycle) backfillValues() {
	f := c.filling
	if f == nil || (len(c.fills) == 0 && !f.write) {
		return
	}
	if c.values == nil {
		c.values = map[string][]byte{}
	}
	known := maps.Clone(f.known)
	for _, p := range c.fills {
		p.missed = f.missed[p.sys] || slices.ContainsFunc(p.keys, func(k string) bool { return c.unreadable[k] != nil })
		switch {
		case p.done && p.missed:
			// Not done: the pass starts again from the first key.
			p.done, p.last, p.missed = false, "", false
			c.e.log.Warn("concord: a backfill pass could not read some records; starting it again", "system", p.sys)
		case p.done:
			p.last = "" // a later backfill (removed, then added back) starts from the first key
			known[p.sys] = true
		}
		c.values[backfillValueName(p.sys)] = encodeProgress(p.last, p.missed)
	}
	if f.write || len(known) > len(f.known) {
		c.values[knownSystemsValue] = encodeKnown(known)
	}
}

// backfillCommitted updates the engine's memory once the cycle's commit
// stored the progress.
func (c *cycle) backfillCommitted() {
	f := c.filling
	if f == nil {
		return
	}
	if _, ok := c.values[knownSystemsValue]; ok {
		f.write = false
	}
	for _, p := range c.fills {
		if !p.done {
			f.after[p.sys], f.missed[p.sys] = p.last, p.missed
			continue
		}
		f.known[p.sys] = true
		delete(f.after, p.sys)
		delete(f.missed, p.sys)
		c.e.log.Info("concord: backfill done: the system has been given every stored record it lacked", "system", p.sys)
	}
}
