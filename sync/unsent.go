package sync

import (
	"errors"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/internal/state"
)

// unsentWrite is a write the engine noted as attempted in a state it
// committed, or may have (a commit whose reply was lost is stored, though
// the engine was told it failed), and knows it never sent, or that the
// system answered it did not apply: the write-ahead commit before it
// failed, so the cycle sent nothing; its lease could not be confirmed; or
// the system refused it, and the cycle's final commit, which would have
// forgotten the attempt, failed. Stored, the attempt says the write's
// outcome is unknown: a record the system's person then created, or a
// value they set equal to the write's, would be taken for its echo, and
// the system credited with having seen the record's canonical values (a
// delete there then overrides edits it never saw). The engine process
// knows better; the next cycle forgets those attempts (unsent.apply).
type unsentWrite struct {
	key  string
	rev  uint64 // the revision the state has if the commit that noted the attempt was stored, and nothing since
	sys  concord.SystemID
	sent []state.Attempt
}

// noteUnsent remembers, after a commit that failed, the attempts of writes
// the cycle did not send or the systems refused. rev is what each state's
// revision would be had the commit been stored: Rev+1 for the write-ahead
// commit (which failed, so Rev did not move), Rev for the final one (the
// write-ahead commit stored the attempts at Rev; the final commit, had it
// been stored, would hold them forgotten already).
func (c *cycle) noteUnsent(writes [][]*write, writeAhead bool) {
	for i, ws := range writes {
		for _, w := range ws {
			if len(w.sent) == 0 {
				continue
			}
			notSent := writeAhead || errors.Is(w.err, ErrLeaseLost) || (w.err == nil && w.result.Err != nil)
			if !notSent {
				continue
			}
			rev := w.st.Rev
			if writeAhead {
				rev++
			}
			c.e.unsent = append(c.e.unsent, unsentWrite{key: w.st.Key, rev: rev, sys: c.e.systems[i].id, sent: w.sent})
		}
	}
}

// forgetUnsent forgets, in the states just loaded, the attempts of writes
// the engine knows it never sent (see unsentWrite), where the state is the
// one that noted them: at the revision the failed commit would have given
// it. A state at another revision was not stored by that commit (it does
// not hold them) or was changed since, by a cycle that may have sent an
// equal write: that entry is dropped. The others are kept until a commit
// of this cycle stores the states without them (unsentCommitted): a cycle
// that fails before then leaves them to the next.
func (c *cycle) forgetUnsent(states map[string]*state.Record) {
	kept := c.e.unsent[:0]
	for _, u := range c.e.unsent {
		st := states[u.key]
		if st == nil || st.Rev != u.rev {
			continue
		}
		if v := st.Systems[u.sys]; v != nil {
			v.Unsend(u.sent)
			st.Touched = true
		}
		kept = append(kept, u)
	}
	clear(c.e.unsent[len(kept):])
	c.e.unsent, c.forgot = kept, len(kept)
}

// unsentCommitted notes that a commit of the cycle stored the states given:
// the entries forgotten in those are done. The others stay (a record whose
// merge failed is not committed; a failed commit of the cycle may have
// appended new entries after the forgotten ones).
func (c *cycle) unsentCommitted(stored []*state.Record) {
	if c.forgot == 0 {
		return
	}
	keys := make(map[string]bool, len(stored))
	for _, st := range stored {
		keys[st.Key] = true
	}
	done := 0
	c.e.unsent = slices.DeleteFunc(c.e.unsent, func(u unsentWrite) bool {
		if done == c.forgot {
			return false // appended by this cycle
		}
		done++
		return keys[u.key]
	})
	c.forgot = 0
}
