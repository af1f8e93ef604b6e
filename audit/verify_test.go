package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/concordsync/concord/audit"
)

const bigLog = 10_000

var (
	bigOnce  sync.Once
	bigLines [][]byte // each with its "\n"
	bigHeads []audit.Head
)

// testLog returns the lines of a 10,000-entry chained log written by a
// ChainedJSONLinesSink in batches, and the head after each entry
// (heads[i] is entry i+1). Callers copy before they change a line.
func testLog(t testing.TB) ([][]byte, []audit.Head) {
	t.Helper()
	bigOnce.Do(func() {
		var buf bytes.Buffer
		sink := audit.ChainedJSONLines(&buf, audit.Head{})
		for i := 0; i < bigLog; i += 100 {
			batch := make([]audit.Event, 100)
			for j := range batch {
				batch[j] = chainEvent(i + j)
			}
			if err := sink.Emit(context.Background(), batch); err != nil {
				panic(err)
			}
		}
		bigLines = bytes.SplitAfter(buf.Bytes(), []byte("\n"))
		bigLines = bigLines[:len(bigLines)-1] // after the last "\n"
		for _, l := range bigLines {
			e, err := audit.DecodeEntry(l[:len(l)-1])
			if err != nil {
				panic(err)
			}
			bigHeads = append(bigHeads, e.Head())
		}
	})
	if len(bigLines) != bigLog {
		t.Fatalf("test log has %d lines", len(bigLines))
	}
	return bigLines, bigHeads
}

func join(lines [][]byte) []byte { return bytes.Join(lines, nil) }

// edit returns a copy of lines with line n (1-based) replaced by f of it.
func edit(lines [][]byte, n int, f func([]byte) []byte) [][]byte {
	out := append([][]byte(nil), lines...)
	out[n-1] = f(bytes.Clone(lines[n-1]))
	return out
}

func cp(seq uint64, h audit.Head) audit.Checkpoint {
	return audit.Checkpoint{Log: "pipeline", Seq: seq, Hash: h.Hash, Time: t0}
}

func requireTamper(t *testing.T, err error, kind audit.TamperKind, seq uint64, line int) *audit.TamperError {
	t.Helper()
	require.ErrorIs(t, err, audit.ErrTampered)
	var te *audit.TamperError
	require.ErrorAs(t, err, &te)
	require.Equal(t, kind, te.Kind, "kind, in %v", err)
	require.Equal(t, seq, te.Seq, "seq, in %v", err)
	require.Equal(t, line, te.Line, "line, in %v", err)
	return te
}

func TestVerifyUntampered(t *testing.T) {
	lines, heads := testLog(t)
	file := join(lines)
	res, err := audit.VerifyJSONLines(bytes.NewReader(file), audit.WithCheckpoint(cp(5000, heads[4999]), cp(bigLog, heads[bigLog-1])))
	require.NoError(t, err)
	require.Equal(t, audit.Result{Entries: bigLog, First: 1, Head: heads[bigLog-1], Checkpoints: 2, Offset: int64(len(file))}, res)

	// Slow readers and one-byte reads change nothing.
	res2, err := audit.VerifyJSONLines(iotest.HalfReader(iotest.OneByteReader(bytes.NewReader(join(lines[:50])))))
	require.NoError(t, err)
	require.Equal(t, 50, res2.Entries)

	// An empty log verifies, to its anchor.
	res, err = audit.VerifyJSONLines(strings.NewReader(""))
	require.NoError(t, err)
	require.Equal(t, audit.Result{}, res)
}

// TestVerifyTampering: each way of tampering with a 10,000-entry log is
// detected and attributed to the right entry and line.
func TestVerifyTampering(t *testing.T) {
	lines, heads := testLog(t)
	last := cp(bigLog, heads[bigLog-1])
	flipInEvent := func(l []byte) []byte {
		i := bytes.Index(l, []byte(`"kind":"`)) + len(`"kind":"`)
		l[i] ^= 0x01 // "edit.observed" -> "ddit.observed": still valid JSON
		return l
	}
	tests := []struct {
		name  string
		log   [][]byte
		opts  []audit.VerifyOption
		kind  audit.TamperKind
		seq   uint64
		line  int
		extra string // in the message
		// forged: the log holds entries that link up but were not
		// written; the result may end with one.
		forged bool
	}{
		{name: "byte flipped in an event", log: edit(lines, 4711, flipInEvent),
			kind: audit.TamperModified, seq: 4711, line: 4711, extra: "hash mismatch"},
		{name: "byte flipped in the first event", log: edit(lines, 1, flipInEvent),
			kind: audit.TamperModified, seq: 1, line: 1},
		{name: "byte flipped in the last event", log: edit(lines, bigLog, flipInEvent),
			kind: audit.TamperModified, seq: bigLog, line: bigLog},
		{name: "value edited, JSON still valid", log: edit(lines, 2002, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"credit":1.5`), []byte(`"credit":9.5`), 1)
		}), kind: audit.TamperModified, seq: 2002, line: 2002},
		{name: "line deleted", log: del(lines, 4711),
			kind: audit.TamperDeleted, seq: 4711, line: 4711, extra: "entry 4711 is missing"},
		{name: "first line deleted", log: del(lines, 1),
			kind: audit.TamperDeleted, seq: 1, line: 1},
		{name: "many lines deleted", log: append(append([][]byte(nil), lines[:99]...), lines[300:]...),
			kind: audit.TamperDeleted, seq: 100, line: 100, extra: "entries 100 to 300 are missing"},
		{name: "adjacent lines swapped", log: swap(lines, 4711, 4712),
			kind: audit.TamperReordered, seq: 4712, line: 4711, extra: "entry 4711 is at line 4712"},
		{name: "distant lines swapped", log: swap(lines, 100, 9000),
			kind: audit.TamperReordered, seq: 9000, line: 100},
		{name: "line duplicated", log: insert(lines, 4712, lines[4710]),
			kind: audit.TamperReordered, seq: 4711, line: 4712, extra: "goes back"},
		{name: "line moved back", log: insert(del(lines, 10), 20, lines[9]),
			kind: audit.TamperReordered, seq: 11, line: 10, extra: "entry 10 is at line 20"},
		{name: "tail cut at a line break, with a checkpoint", log: lines[:9900], opts: []audit.VerifyOption{audit.WithCheckpoint(last)},
			kind: audit.TamperTruncated, seq: 9901, line: 9901, extra: "checkpoint \"pipeline\" is at entry 10000"},
		{name: "cut in the middle of a line", log: append(append([][]byte(nil), lines[:5000]...), lines[5000][:40]),
			kind: audit.TamperTruncated, seq: 5001, line: 5001, extra: "incomplete"},
		{name: "final line break cut", log: append(append([][]byte(nil), lines[:bigLog-1]...), bytes.TrimSuffix(lines[bigLog-1], []byte("\n"))),
			kind: audit.TamperTruncated, seq: bigLog, line: bigLog},
		{name: "prev field edited", log: edit(lines, 333, func(l []byte) []byte {
			i := bytes.Index(l, []byte(`"prev":"`)) + len(`"prev":"`)
			l[i] = otherHex(l[i])
			return l
		}), kind: audit.TamperModified, seq: 333, line: 333},
		{name: "hash field edited", log: edit(lines, 334, func(l []byte) []byte {
			i := bytes.Index(l, []byte(`"hash":"`)) + len(`"hash":"`) + 63
			l[i] = otherHex(l[i])
			return l
		}), kind: audit.TamperModified, seq: 334, line: 334},
		{name: "seq field edited", log: edit(lines, 335, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"seq":335`), []byte(`"seq":336`), 1)
		}), kind: audit.TamperModified, seq: 335, line: 335, extra: "says it is entry 336"},
		{name: "entry rewritten and rehashed", log: edit(lines, 777, func(l []byte) []byte { return rehashed(t, l, "forged") }),
			kind: audit.TamperModified, seq: 777, line: 777, extra: "rewritten and rehashed"},
		{name: "blank line inserted", log: insert(lines, 50, []byte("\n")),
			kind: audit.TamperModified, seq: 50, line: 50, extra: "not a chain entry"},
		{name: "CRLF line", log: edit(lines, 51, func(l []byte) []byte { return append(l[:len(l)-1], '\r', '\n') }),
			kind: audit.TamperModified, seq: 51, line: 51},
		{name: "line break flipped", log: edit(lines, 52, func(l []byte) []byte { l[len(l)-1] = ' '; return l }),
			kind: audit.TamperModified, seq: 52, line: 52},
		{name: "event pretty-printed", log: edit(lines, 53, func(l []byte) []byte {
			return bytes.Replace(l, []byte(`{"time"`), []byte(`{ "time"`), 1)
		}), kind: audit.TamperModified, seq: 53, line: 53},
		{name: "tail replaced by a recomputed chain, caught by the checkpoint", log: forgeTail(t, lines, heads, 8000),
			opts: []audit.VerifyOption{audit.WithCheckpoint(cp(5000, heads[4999]), last)},
			kind: audit.TamperForked, seq: bigLog, line: bigLog, forged: true, extra: "checkpoint \"pipeline\" signs hash"},
		{name: "tail replaced and shortened, caught by the checkpoint", log: forgeTail(t, lines, heads, 8000)[:9000],
			opts: []audit.VerifyOption{audit.WithCheckpoint(last)}, kind: audit.TamperTruncated, seq: 9001, line: 9001, forged: true},
		{name: "log started over", log: forgeTail(t, lines, heads, 0),
			opts: []audit.VerifyOption{audit.WithCheckpoint(cp(10, heads[9]))}, kind: audit.TamperForked, seq: 10, line: 10, forged: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := audit.VerifyJSONLines(bytes.NewReader(join(tt.log)), tt.opts...)
			te := requireTamper(t, err, tt.kind, tt.seq, tt.line)
			require.Contains(t, te.Error(), fmt.Sprintf("audit: entry %d (line %d): %s: ", tt.seq, tt.line, tt.kind))
			require.Contains(t, te.Error(), tt.extra)
			// The result covers what verified before the fault.
			require.Less(t, res.Head.Seq, max(tt.seq, uint64(tt.line)))
			if res.Entries > 0 && !tt.forged {
				require.Equal(t, heads[res.Head.Seq-1], res.Head)
			}
		})
	}
}

// TestVerifyForgedTailWithoutCheckpoint documents the limit of the chain
// alone: a tail recomputed from a genuine entry verifies, which is why
// checkpoints are signed.
func TestVerifyForgedTailWithoutCheckpoint(t *testing.T) {
	lines, heads := testLog(t)
	forged := forgeTail(t, lines, heads, 8000)
	res, err := audit.VerifyJSONLines(bytes.NewReader(join(forged)))
	require.NoError(t, err)
	require.NotEqual(t, heads[bigLog-1], res.Head)
	// A checkpoint before the forgery still matches.
	_, err = audit.VerifyJSONLines(bytes.NewReader(join(forged)), audit.WithCheckpoint(cp(8000, heads[7999])))
	require.NoError(t, err)
}

// TestVerifyEveryByte: changing any one byte of a log is detected, and
// attributed to the line that holds the byte.
func TestVerifyEveryByte(t *testing.T) {
	lines, heads := testLog(t)
	small := lines[:6]
	file := join(small)
	rng := rand.New(rand.NewPCG(1, 2))
	line := 1
	for i := range file {
		damaged := bytes.Clone(file)
		damaged[i] ^= byte(1 + rng.IntN(255))
		_, err := audit.VerifyJSONLines(bytes.NewReader(damaged), audit.WithCheckpoint(cp(6, heads[5])))
		var te *audit.TamperError
		if !errors.As(err, &te) {
			t.Fatalf("byte %d (%q) changed: %v", i, file[i], err)
		}
		if te.Line != line {
			t.Fatalf("byte %d of line %d changed: reported %v", i, line, err)
		}
		if file[i] == '\n' {
			line++
		}
	}
}

func TestVerifyAnchored(t *testing.T) {
	lines, heads := testLog(t)
	segment := join(lines[5000:]) // entries 5001..10000, after rotation
	res, err := audit.VerifyJSONLines(bytes.NewReader(segment), audit.WithAnchor(heads[4999]),
		audit.WithCheckpoint(cp(5000, heads[4999]), cp(bigLog, heads[bigLog-1])))
	require.NoError(t, err)
	require.Equal(t, 5000, res.Entries)
	require.Equal(t, uint64(5001), res.First)
	require.Equal(t, 2, res.Checkpoints)

	// Without an anchor a log must start at entry 1.
	_, err = audit.VerifyJSONLines(bytes.NewReader(segment))
	requireTamper(t, err, audit.TamperDeleted, 1, 1)

	// An anchor of another chain.
	wrong := heads[4999]
	wrong.Hash[0] ^= 1
	_, err = audit.VerifyJSONLines(bytes.NewReader(segment), audit.WithAnchor(wrong))
	te := requireTamper(t, err, audit.TamperModified, 5001, 1)
	require.Contains(t, te.Error(), "anchor")

	// A checkpoint at the anchor with another hash.
	_, err = audit.VerifyJSONLines(bytes.NewReader(segment), audit.WithAnchor(heads[4999]), audit.WithCheckpoint(audit.Checkpoint{Log: "p", Seq: 5000, Hash: wrong.Hash}))
	te = requireTamper(t, err, audit.TamperForked, 5000, 0)
	require.Contains(t, te.Error(), "(anchor)")

	// A checkpoint before the anchor cannot be checked: not tampering.
	_, err = audit.VerifyJSONLines(bytes.NewReader(segment), audit.WithAnchor(heads[4999]), audit.WithCheckpoint(cp(10, heads[9])))
	require.ErrorIs(t, err, audit.ErrUnverifiable)
	require.NotErrorIs(t, err, audit.ErrTampered)
}

func TestVerifyReadError(t *testing.T) {
	lines, _ := testLog(t)
	boom := errors.New("disk on fire")
	r := iotest.TimeoutReader(bytes.NewReader(join(lines[:100])))
	_, err := audit.VerifyJSONLines(r)
	require.ErrorIs(t, err, iotest.ErrTimeout)
	require.NotErrorIs(t, err, audit.ErrTampered)

	_, err = audit.VerifyJSONLines(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, audit.ErrTampered)
}

func TestVerifyHugeLine(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"seq":1,"prev":"`), io.LimitReader(zeros{}, 70<<20))
	_, err := audit.VerifyJSONLines(r)
	require.ErrorIs(t, err, audit.ErrMalformed)
	require.NotErrorIs(t, err, audit.ErrTampered)
}

// entriesOf decodes lines as a store would hand them over: DecodeEntry's
// errors go through.
func entriesOf(lines [][]byte) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		for _, l := range lines {
			if !yield(audit.DecodeEntry(bytes.TrimSuffix(l, []byte("\n")))) {
				return
			}
		}
	}
}

func TestVerifyEntries(t *testing.T) {
	lines, heads := testLog(t)
	res, err := audit.VerifyEntries(entriesOf(lines), audit.WithCheckpoint(cp(bigLog, heads[bigLog-1])))
	require.NoError(t, err)
	require.Equal(t, audit.Result{Entries: bigLog, First: 1, Head: heads[bigLog-1], Checkpoints: 1}, res)

	_, err = audit.VerifyEntries(entriesOf(swap(lines, 10, 11)))
	te := requireTamper(t, err, audit.TamperReordered, 11, 10)
	require.Contains(t, te.Error(), "(position 10)")

	_, err = audit.VerifyEntries(entriesOf(del(lines, 10)))
	requireTamper(t, err, audit.TamperDeleted, 10, 10)

	_, err = audit.VerifyEntries(entriesOf(edit(lines, 20, func(l []byte) []byte { return l[:30] })))
	te = requireTamper(t, err, audit.TamperModified, 20, 20)
	require.Contains(t, te.Error(), "not a chain entry")

	_, err = audit.VerifyEntries(entriesOf(lines[:50]), audit.WithCheckpoint(cp(60, heads[59])))
	requireTamper(t, err, audit.TamperTruncated, 51, 51)

	// An entry whose decoded Event was changed but not its bytes still
	// verifies: the bytes are what count.
	entries := func(yield func(audit.Entry, error) bool) {
		for e, err := range entriesOf(lines[:3]) {
			e.Event.Key = "changed"
			if !yield(e, err) {
				return
			}
		}
	}
	_, err = audit.VerifyEntries(entries)
	require.NoError(t, err)

	// An entry whose bytes were changed does not.
	entries = func(yield func(audit.Entry, error) bool) {
		for e, err := range entriesOf(lines[:3]) {
			if e.Seq == 2 {
				e.EventJSON = bytes.Replace(e.EventJSON, []byte("merge"), []byte("MERGE"), 1)
			}
			if !yield(e, err) {
				return
			}
		}
	}
	_, err = audit.VerifyEntries(entries)
	requireTamper(t, err, audit.TamperModified, 2, 2)

	// A store error stops verification and is not tampering.
	boom := errors.New("store closed")
	_, err = audit.VerifyEntries(func(yield func(audit.Entry, error) bool) {
		for e, err := range entriesOf(lines[:3]) {
			if !yield(e, err) {
				return
			}
		}
		yield(audit.Entry{}, boom)
	})
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, audit.ErrTampered)
}

// FuzzVerifyJSONLines: the verifier never panics, fails only with
// ErrTampered, ErrMalformed or a read error, and when it accepts a file
// every line is an entry that follows the one before, as checked here
// independently.
func FuzzVerifyJSONLines(f *testing.F) {
	lines := smallLog(f, 4)
	f.Add(join(lines[:3]))
	f.Add(join(swap(lines[:4], 2, 3)))
	f.Add(join(del(lines[:4], 2)))
	f.Add(join(lines[:2])[:300])
	f.Add([]byte("\n"))
	f.Add([]byte(`{"seq":1}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := audit.VerifyJSONLines(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, audit.ErrTampered) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var prev [32]byte
		n := 0
		for l := range bytes.Lines(b) {
			n++
			e, err := audit.DecodeEntry(bytes.TrimSuffix(l, []byte("\n")))
			if err != nil && !strings.Contains(err.Error(), "event:") {
				t.Fatalf("accepted line %d: %v", n, err)
			}
			if err == nil && (e.Seq != uint64(n) || e.Prev != prev || manualHash(e.Seq, e.Prev, e.EventJSON) != e.Hash) {
				t.Fatalf("accepted line %d: %+v", n, e)
			}
			if err == nil {
				prev = e.Hash
			}
		}
		if n != res.Entries || int64(len(b)) != res.Offset {
			t.Fatalf("accepted %d lines, result %+v", n, res)
		}
	})
}

// smallLog is a log of n entries, as lines.
func smallLog(t testing.TB, n int) [][]byte {
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, audit.Head{})
	for i := range n {
		require.NoError(t, sink.Emit(context.Background(), []audit.Event{chainEvent(i)}))
	}
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	return lines[:len(lines)-1]
}

func del(lines [][]byte, n int) [][]byte {
	return append(append([][]byte(nil), lines[:n-1]...), lines[n:]...)
}

func swap(lines [][]byte, a, b int) [][]byte {
	out := append([][]byte(nil), lines...)
	out[a-1], out[b-1] = out[b-1], out[a-1]
	return out
}

// insert puts l at line n.
func insert(lines [][]byte, n int, l []byte) [][]byte {
	out := append([][]byte(nil), lines[:n-1]...)
	out = append(out, l)
	return append(out, lines[n-1:]...)
}

func otherHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

// rehashed rewrites the event of a line (its key) and recomputes its hash,
// as a forger with the file would.
func rehashed(t testing.TB, line []byte, key string) []byte {
	e, err := audit.DecodeEntry(bytes.TrimSuffix(line, []byte("\n")))
	require.NoError(t, err)
	e.EventJSON = bytes.Replace(e.EventJSON, []byte(`"key":"`), []byte(`"key":"`+key), 1)
	e.Hash = audit.EntryHash(e.Seq, e.Prev, e.EventJSON)
	return append(mustEncode(t, e), '\n')
}

// forgeTail keeps the first n lines and replaces the rest with a chain
// of other events, recomputed from entry n: it links up perfectly.
func forgeTail(t testing.TB, lines [][]byte, heads []audit.Head, n int) [][]byte {
	start := audit.Head{}
	if n > 0 {
		start = heads[n-1]
	}
	var buf bytes.Buffer
	sink := audit.ChainedJSONLines(&buf, start)
	for i := n; i < len(lines); i++ {
		ev := chainEvent(i)
		ev.Reason = "nothing to see here"
		require.NoError(t, sink.Emit(context.Background(), []audit.Event{ev}))
	}
	out := append([][]byte(nil), lines[:n]...)
	forged := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	return append(out, forged[:len(forged)-1]...)
}

// zeros reads '0' bytes for ever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
