package audit_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/audit"
)

var ctx = context.Background()

func TestChainedSinkDropsDuplicates(t *testing.T) {
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	evs := []audit.Event{chainEvent(0), chainEvent(1), chainEvent(2)}
	for i := range evs {
		evs[i].Seq = uint64(i + 1) // from the engine's log
	}
	require.NoError(t, sink.Emit(ctx, evs[:2]))
	require.NoError(t, sink.Emit(ctx, evs), "a redelivered batch: 1 and 2 dropped, 3 written")
	require.NoError(t, sink.Emit(ctx, evs[1:2]))
	res, err := audit.VerifyJSONLines(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 3, res.Entries)
	require.Equal(t, res.Head, sink.Head())

	// A gap: event 5 when the head is 3.
	late := chainEvent(5)
	late.Seq = 5
	err = sink.Emit(ctx, []audit.Event{late, chainEvent(6)})
	require.ErrorIs(t, err, audit.ErrNotNext)
	var ee *audit.EventError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 0, ee.Index)
	require.Equal(t, uint64(4), sink.Head().Seq, "the event without seq after it is written")

	// Events read back carry their Seq.
	events, err := audit.ReadJSONLines(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Len(t, events, 4)
	for i, ev := range events {
		require.Equal(t, uint64(i+1), ev.Seq)
	}
	require.Equal(t, "cust-1", events[1].Key)
}

func TestChainedSinkUnencodableEvent(t *testing.T) {
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	bad := chainEvent(1)
	bad.To = map[string]concord.Value{"x": math.Inf(1)}
	err := sink.Emit(ctx, []audit.Event{chainEvent(0), bad, chainEvent(2)})
	var ee *audit.EventError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Index)
	res, err := audit.VerifyJSONLines(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 2, res.Entries, "the other events are written")
}

func TestChainedSinkWriteEntries(t *testing.T) {
	c := audit.NewChain(audit.Head{})
	var events []audit.Event
	for i := range 6 {
		events = append(events, chainEvent(i))
	}
	entries, err := c.Append(events...)
	require.NoError(t, err)

	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	require.NoError(t, sink.WriteEntries(ctx, entries[:3]))
	require.NoError(t, sink.WriteEntries(ctx, entries[1:4]), "duplicates dropped")
	require.Equal(t, entries[3].Head(), sink.Head())

	// Byte for byte what EncodeEntry gives.
	var want bytes.Buffer
	for _, e := range entries[:4] {
		want.Write(mustEncode(t, e))
		want.WriteByte('\n')
	}
	require.Equal(t, want.String(), buf.String())

	// A gap is refused and nothing after it written.
	err = sink.WriteEntries(ctx, entries[5:])
	require.ErrorIs(t, err, audit.ErrNotNext)
	require.Equal(t, entries[3].Head(), sink.Head())

	// The same seq as the head with another hash: another chain.
	other := entries[3]
	other.Hash[0] ^= 1
	require.ErrorIs(t, sink.WriteEntries(ctx, []audit.Entry{other}), audit.ErrNotNext)

	// A next entry whose hash does not match its bytes.
	damaged := entries[4]
	damaged.EventJSON = bytes.Replace(damaged.EventJSON, []byte("cust"), []byte("CUST"), 1)
	require.ErrorIs(t, sink.WriteEntries(ctx, []audit.Entry{damaged}), audit.ErrMalformed)

	// The entries before a refused one are written.
	unlinked := entries[5]
	unlinked.Prev[0] ^= 1
	err = sink.WriteEntries(ctx, []audit.Entry{entries[4], entries[4], unlinked})
	require.ErrorIs(t, err, audit.ErrNotNext)
	require.Equal(t, entries[4].Head(), sink.Head())

	res, err := audit.VerifyJSONLines(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 5, res.Entries)
}

// TestChainedSinkConcurrent: batches from many goroutines make one valid
// chain (run with -race).
func TestChainedSinkConcurrent(t *testing.T) {
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				require.NoError(t, sink.Emit(ctx, []audit.Event{chainEvent(g*100 + i), chainEvent(g*100 + i + 1)}))
				_ = sink.Head()
			}
		})
	}
	wg.Wait()
	res, err := audit.VerifyJSONLines(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 8*50*2, res.Entries)
}

// flakyWriter writes n bytes of the next call and fails.
type flakyWriter struct {
	buf  bytes.Buffer
	fail bool
	n    int
}

var errDiskFull = errors.New("disk full")

func (w *flakyWriter) Write(p []byte) (int, error) {
	if w.fail {
		w.fail = false
		n := min(w.n, len(p))
		w.buf.Write(p[:n])
		return n, errDiskFull
	}
	return w.buf.Write(p)
}

func TestChainedSinkWriteFailure(t *testing.T) {
	// Nothing written: the sink stays usable and the head does not move.
	w := &flakyWriter{}
	sink := audit.ChainedJSONLines(w, audit.Head{})
	require.NoError(t, sink.Emit(ctx, []audit.Event{chainEvent(0)}))
	w.fail = true
	require.ErrorIs(t, sink.Emit(ctx, []audit.Event{chainEvent(1)}), errDiskFull)
	require.Equal(t, uint64(1), sink.Head().Seq)
	require.NoError(t, sink.Emit(ctx, []audit.Event{chainEvent(1)}))
	_, err := audit.VerifyJSONLines(bytes.NewReader(w.buf.Bytes()))
	require.NoError(t, err)

	// Part of a line written: the sink stops, as appending would damage
	// the file; the file is resumed from its verified prefix.
	w.fail, w.n = true, 30
	require.ErrorIs(t, sink.Emit(ctx, []audit.Event{chainEvent(2)}), errDiskFull)
	err = sink.Emit(ctx, []audit.Event{chainEvent(2)})
	require.ErrorIs(t, err, audit.ErrSinkBroken)
	require.ErrorIs(t, err, errDiskFull)
	require.ErrorIs(t, sink.WriteEntries(ctx, nil), audit.ErrSinkBroken)

	res, err := audit.VerifyJSONLines(bytes.NewReader(w.buf.Bytes()))
	requireTamper(t, err, audit.TamperTruncated, 3, 3)
	resumed := bytes.NewBuffer(w.buf.Bytes()[:res.Offset])
	sink2 := audit.ChainedJSONLines(resumed, res.Head)
	require.NoError(t, sink2.Emit(ctx, []audit.Event{chainEvent(2), chainEvent(3)}))
	res, err = audit.VerifyJSONLines(bytes.NewReader(resumed.Bytes()))
	require.NoError(t, err)
	require.Equal(t, 4, res.Entries)
}

// TestChainedFileResume: a host appends to a file across restarts, with a
// crash in the middle of a line.
func TestChainedFileResume(t *testing.T) {
	name := filepath.Join(t.TempDir(), "audit.jsonl")
	open := func() (*os.File, *audit.ChainedJSONLinesSink) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		require.NoError(t, err)
		res, err := audit.VerifyJSONLines(f)
		var te *audit.TamperError
		if errors.As(err, &te) && te.Kind == audit.TamperTruncated {
			require.NoError(t, f.Truncate(res.Offset))
		} else {
			require.NoError(t, err)
		}
		_, err = f.Seek(res.Offset, 0)
		require.NoError(t, err)
		return f, audit.ChainedJSONLines(f, res.Head)
	}
	f, sink := open()
	require.NoError(t, sink.Emit(ctx, []audit.Event{chainEvent(0), chainEvent(1)}))
	require.NoError(t, f.Close())

	// A crash left half a line.
	line := append(mustEncode(t, mustAppend(t, sink.Head(), chainEvent(2))), '\n')
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(line[:len(line)/2])
	require.NoError(t, err)
	require.NoError(t, f.Close())

	f, sink = open()
	require.Equal(t, uint64(2), sink.Head().Seq)
	require.NoError(t, sink.Emit(ctx, []audit.Event{chainEvent(2), chainEvent(3)}))
	require.NoError(t, f.Close())
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	res, err := audit.VerifyJSONLines(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, 4, res.Entries)
}

func mustAppend(t testing.TB, head audit.Head, ev audit.Event) audit.Entry {
	entries, err := audit.NewChain(head).Append(ev)
	require.NoError(t, err)
	return entries[0]
}

func TestChainedJSONLinesNilWriter(t *testing.T) {
	require.Panics(t, func() { audit.ChainedJSONLines(nil, audit.Head{}) })
}
