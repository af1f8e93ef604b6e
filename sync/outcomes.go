package sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"slices"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/internal/state"
)

// learnedWrite is the outcome of a write that the engine knows and its store
// may not: the commit that would have stored it failed.
//
// A write the engine noted as attempted in a state it committed (its
// write-ahead commit), or may have (a commit whose reply was lost is
// stored, though the engine was told it failed), reads from the store as a
// write of unknown outcome. The engine process may know better:
//
//   - It never sent the write, or the system answered it did not apply
//     it: the write-ahead commit failed, so the cycle sent nothing; its
//     lease could not be confirmed; or the system refused it, and the
//     cycle's final commit, which would have forgotten the attempt,
//     failed. As unknown, a record the system's person then created, or a
//     value they set equal to the write's, would be taken for its echo,
//     and the system credited with having seen the record's canonical
//     values (a delete there then overrides edits it never saw).
//   - The system applied it (applied), and the cycle's final commit, which
//     would have stored that, failed. As unknown, a value the system's
//     person then set back to the one before the write would be taken for
//     the write never having landed, and the next cycle would write it
//     again over the person's edit, in a system without tags or times that
//     tell the two apart.
//
// The next cycle applies what the engine knows to the states it loads
// (applyLearned) before it merges them.
type learnedWrite struct {
	key  string
	rev  uint64 // the revision the state has if the commit that noted the attempt was stored, and nothing since
	sys  concord.SystemID
	sent []state.Attempt
	// applied: the system applied the write; what the cycle learned from
	// its reply, as cycle.synced takes it. Otherwise the write was not
	// applied, and sent are its attempts to forget.
	applied bool
	rt      []unitHash
	native  []fieldHash
	result  connector.Result
	// commit is the token of the failed write-ahead commit that noted the
	// attempts (writeAheadValue), nil for the final commit: that commit
	// was stored if and only if the store holds its token, so a state at
	// rev was stored by it and not by another process's commit that made
	// the same revision (one that planned, stored and sent the same
	// writes: forgetting those would forget writes that were sent).
	commit []byte
}

// writeAheadValue is the engine value holding the token of the last
// write-ahead commit stored (see learnedWrite.commit).
const writeAheadValue = "cycle/write-ahead"

// newCommitToken returns a token no other commit of any process has.
func newCommitToken() []byte {
	return []byte(rand.Text()) // 26 characters of base32: 128 random bits
}

// noteOutcomes remembers, after a commit that failed, the outcomes of the
// cycle's writes the store would otherwise not know: writes the cycle did
// not send or the systems refused, and, after the final commit, writes
// the systems applied. rev is what each state's revision would be had the
// commit been stored: Rev+1 for the write-ahead commit (which failed, so
// Rev did not move), Rev for the final one (the write-ahead commit stored
// the attempts at Rev; the final commit, had it been stored, would hold
// the outcomes already).
//
// token is the failed write-ahead commit's (nil for the final commit).
func (c *cycle) noteOutcomes(writes [][]*write, token []byte) {
	writeAhead := token != nil
	for i, ws := range writes {
		for _, w := range ws {
			rev := w.st.Rev
			if writeAhead {
				rev++
			}
			if w.applied && !writeAhead {
				c.e.learned = append(c.e.learned, learnedWrite{key: w.st.Key, rev: rev, sys: c.e.systems[i].id,
					applied: true, rt: w.rt, native: w.native, result: w.result})
				continue
			}
			if len(w.sent) == 0 {
				continue
			}
			if !writeAhead && !notSent(w.err) && !w.refused() {
				continue // applied, or of unknown outcome: as stored
			}
			c.e.learned = append(c.e.learned, learnedWrite{key: w.st.Key, rev: rev, sys: c.e.systems[i].id, sent: w.sent, commit: token})
		}
	}
}

// applyLearned applies, to the states just loaded, the write outcomes the
// engine knows (see learnedWrite), where the state is the one that noted
// the attempts: at the revision the failed commit would have given it. A
// state at another revision was not stored by that commit (it does not
// hold them) or was changed since, by a cycle that may have sent an equal
// write, or that stored the outcome itself: that entry is dropped. The
// others are kept until a commit of this cycle stores the states with them
// applied (learnedCommitted): a cycle that fails before then leaves them
// to the next.
//
// An entry of a failed write-ahead commit also needs that commit's token in
// the store (read once, only then): without it the commit was not stored,
// and a state at that revision is another process's.
func (c *cycle) applyLearned(ctx context.Context, states map[string]*state.Record) {
	var stored []byte
	if slices.ContainsFunc(c.e.learned, func(u learnedWrite) bool { return u.commit != nil }) {
		var err error
		if stored, err = c.e.store.Value(ctx, writeAheadValue); err != nil {
			// Not known whether those commits were stored: their
			// attempts stay of unknown outcome, as the store says.
			c.e.log.Warn("concord: reading the last write-ahead commit's token", "error", err)
			stored = nil
		}
	}
	kept := c.e.learned[:0]
	for _, u := range c.e.learned {
		if c.unreadable[u.key] != nil {
			kept = append(kept, u) // for when it can be read again
			continue
		}
		st := states[u.key]
		if st == nil || st.Rev != u.rev || u.commit != nil && !bytes.Equal(u.commit, stored) {
			continue
		}
		if v := st.Systems[u.sys]; v != nil {
			if u.applied {
				if s := c.e.byID[u.sys]; s != nil {
					c.writeSucceeded(st, s)
					c.synced(st, s, u.rt, u.native, u.result)
				}
			} else {
				v.Unsend(u.sent)
			}
			st.Touched = true
		}
		kept = append(kept, u)
	}
	clear(c.e.learned[len(kept):])
	c.e.learned, c.applied = kept, len(kept)
}

// learnedCommitted notes that a commit of the cycle stored the states
// given: the entries applied to those are done. The others stay (a record
// whose merge failed is not committed; a failed commit of the cycle may
// have appended new entries after the applied ones).
func (c *cycle) learnedCommitted(stored []*state.Record) {
	if c.applied == 0 {
		return
	}
	keys := make(map[string]bool, len(stored))
	for _, st := range stored {
		keys[st.Key] = true
	}
	done := 0
	c.e.learned = slices.DeleteFunc(c.e.learned, func(u learnedWrite) bool {
		if done == c.applied {
			return false // appended by this cycle
		}
		done++
		return keys[u.key]
	})
	c.applied = 0
}
