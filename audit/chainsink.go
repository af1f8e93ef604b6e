package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrNotNext reports an entry or event that a [ChainedJSONLinesSink] cannot
// write because it does not follow the last one written: a gap (entries
// lost on the way), another chain, or the same Seq with another hash.
var ErrNotNext = errors.New("audit: does not follow the chain's head")

// ErrSinkBroken reports a [ChainedJSONLinesSink] that stopped writing after
// a write that may have left part of a line in the file.
var ErrSinkBroken = errors.New("audit: chained sink stopped after a partial write")

// ChainedJSONLinesSink writes an audit chain as JSON Lines: one entry per
// line, in the form of [EncodeEntry]:
//
//	{"seq":1,"prev":"00…00","hash":"9f…","event":{"time":…,"kind":…}}
//
// where "event" is the event as [JSONLines] writes it (without "seq"). A
// file written this way is checked with [VerifyJSONLines]; [ReadJSONLines]
// reads its events. Create one with [ChainedJSONLines].
//
// Delivery is at least once, so the sink drops what it already has: an
// entry or an event whose Seq is at most the Seq of its head.
//
// Resuming a file after a restart: verify it ([VerifyJSONLines]); if it
// ends in an incomplete line (TamperTruncated after a crash in a write),
// truncate it to Result.Offset; then append with a sink created with
// Result.Head.
//
// A ChainedJSONLinesSink is safe for concurrent use. Each call writes with
// a single Write. If a Write fails after writing part of its bytes, the
// sink stops: every later call returns an error that wraps
// [ErrSinkBroken], as appending after a partial line would damage the
// file; resume it as above.
type ChainedJSONLinesSink struct {
	mu     sync.Mutex
	w      io.Writer
	chain  Chain
	broken error
}

// ChainedJSONLines returns a sink that writes to w the entries that follow
// head: the zero Head for a new file, the head of the file's last entry to
// append to one. It panics if w is nil.
func ChainedJSONLines(w io.Writer, head Head) *ChainedJSONLinesSink {
	if w == nil {
		panic("audit: ChainedJSONLines: nil writer")
	}
	return &ChainedJSONLinesSink{w: w, chain: Chain{head: head}}
}

// Head returns the last entry written (or the head the sink was created
// with).
func (s *ChainedJSONLinesSink) Head() Head {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chain.head
}

// Emit appends the events to the sink's chain and writes their entries.
// ctx is not consulted.
//
// An event with Seq 0 becomes the next entry. An event with a Seq (from
// the engine's log) is a duplicate when its Seq is at most the head's and
// is dropped; it must otherwise be the next entry (head.Seq+1), or it is
// refused with an error that wraps [ErrNotNext]. An event that cannot be
// encoded is left out and reported as an [*EventError]. The other events
// are still written; errors are joined with errors.Join.
//
// Re-encoding decoded events may not give back the bytes of the entries
// they came from (see [Entry]): to copy an existing chain, use
// [ChainedJSONLinesSink.WriteEntries].
func (s *ChainedJSONLinesSink) Emit(_ context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	var errs []error
	var buf []byte
	head := s.chain.head
	for i := range events {
		ev := &events[i]
		if ev.Seq != 0 && ev.Seq <= head.Seq {
			continue
		}
		if ev.Seq != 0 && ev.Seq != head.Seq+1 {
			errs = append(errs, eventError(i, ev, fmt.Errorf("%w: event has seq %d, the head is entry %d", ErrNotNext, ev.Seq, head.Seq)))
			continue
		}
		var next Head
		var err error
		buf, _, next, err = s.chain.builder().appendLine(buf, head, ev)
		if err != nil {
			if !errors.Is(err, ErrSeqOverflow) {
				err = eventError(i, ev, err)
			}
			errs = append(errs, err)
			continue
		}
		buf = append(buf, '\n')
		head = next
	}
	if err := s.write(buf, head); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WriteEntries writes entries built elsewhere (by the engine, from its
// store), byte for byte. ctx is not consulted.
//
// Entries whose Seq is at most the head's are duplicates and are dropped
// (the head's own Seq must come with the head's hash). Each other entry
// must follow the one before: Seq head.Seq+1, Prev the head's hash, and a
// Hash that matches its bytes. The first entry that does not is refused
// with an error that wraps [ErrNotNext] (or [ErrMalformed]); it and the
// entries after it are not written, the ones before it are.
func (s *ChainedJSONLinesSink) WriteEntries(_ context.Context, entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return s.broken
	}
	var buf []byte
	head := s.chain.head
	var refused error
	for i := range entries {
		e := &entries[i]
		if e.Seq <= head.Seq {
			if e.Seq == head.Seq && e.Hash != head.Hash {
				refused = fmt.Errorf("%w: entry %d has hash %s, the one written %s", ErrNotNext, e.Seq, short(e.Hash), short(head.Hash))
				break
			}
			continue
		}
		if e.Seq != head.Seq+1 || e.Prev != head.Hash {
			refused = fmt.Errorf("%w: entry %d (prev %s) does not follow entry %d (hash %s)", ErrNotNext, e.Seq, short(e.Prev), head.Seq, short(head.Hash))
			break
		}
		line, err := EncodeEntry(*e)
		if err != nil {
			refused = err
			break
		}
		buf = append(append(buf, line...), '\n')
		head = e.Head()
	}
	return errors.Join(refused, s.write(buf, head))
}

// write writes buf in one call and, when it is all written, moves the head.
func (s *ChainedJSONLinesSink) write(buf []byte, head Head) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := s.w.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("audit: writing entries %d to %d: wrote %d of %d bytes: %w", s.chain.head.Seq+1, head.Seq, n, len(buf), err)
		if n > 0 {
			s.broken = fmt.Errorf("%w (entry %d on): %w", ErrSinkBroken, s.chain.head.Seq+1, err)
		}
		return err
	}
	s.chain.head = head
	return nil
}
