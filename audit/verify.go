package audit

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
)

// ErrTampered is matched (errors.Is) by every [*TamperError]: the log is
// not what was written.
var ErrTampered = errors.New("audit: log tampered with")

// ErrUnverifiable reports a check that the log cannot answer: a
// checkpoint that lies before the log's anchor.
var ErrUnverifiable = errors.New("audit: cannot verify")

// TamperKind says how a log differs from what was written.
type TamperKind int

// The ways a log can be tampered with.
const (
	// TamperModified: an entry's bytes changed (its hash does not match
	// its contents, its line is not an entry, or the chain breaks after
	// it because it was rewritten and rehashed).
	TamperModified TamperKind = iota + 1
	// TamperDeleted: entries are missing (a gap in the sequence).
	TamperDeleted
	// TamperReordered: an entry is out of place (the sequence goes back,
	// or an entry turns up after a later one).
	TamperReordered
	// TamperTruncated: the log ends too early: before a checkpoint's
	// entry, or in the middle of a line.
	TamperTruncated
	// TamperForked: the log's entry at a checkpoint's Seq has another
	// hash: the log, from some entry up to there, is not the one that
	// was signed (a whole recomputed chain is caught this way).
	TamperForked
)

// String returns the kind's name in lower case ("modified", ...).
func (k TamperKind) String() string {
	switch k {
	case TamperModified:
		return "modified"
	case TamperDeleted:
		return "deleted"
	case TamperReordered:
		return "reordered"
	case TamperTruncated:
		return "truncated"
	case TamperForked:
		return "forked"
	}
	return "TamperKind(" + strconv.Itoa(int(k)) + ")"
}

// TamperError says where and how a log was tampered with: the first
// place where it goes wrong. It matches [ErrTampered] with errors.Is.
type TamperError struct {
	// Seq is the entry at fault: for TamperModified the entry whose
	// bytes changed, for TamperDeleted the first missing entry, for
	// TamperReordered the misplaced entry, for TamperTruncated the first
	// entry missing at the end, for TamperForked the checkpoint's entry.
	Seq uint64
	// Line is where it shows: the 1-based line of a file, or position in
	// the sequence given to [VerifyEntries]; 0 when it concerns the
	// anchor.
	Line int
	// Kind says what happened.
	Kind TamperKind
	// Detail explains, naming the entries and lines involved.
	Detail string

	where string // "line" (default), "position"
}

// Error gives the entry, where it is, the kind and the detail:
// "audit: entry 4711 (line 4711): modified: hash mismatch ...".
func (e *TamperError) Error() string {
	where := e.where
	if where == "" {
		where = "line"
	}
	loc := where + " " + strconv.Itoa(e.Line)
	if e.Line == 0 {
		loc = "anchor"
	}
	return fmt.Sprintf("audit: entry %d (%s): %s: %s", e.Seq, loc, e.Kind, e.Detail)
}

// Is reports whether target is ErrTampered.
func (e *TamperError) Is(target error) bool { return target == ErrTampered }

// Result is what a verification covered. When it fails, Result covers
// the entries verified before the fault.
type Result struct {
	// Entries is the number of entries verified.
	Entries int
	// First is the Seq of the first entry (0 when there is none).
	First uint64
	// Head is the last verified entry; the anchor when there is none.
	Head Head
	// Checkpoints is the number of checkpoints the log matched.
	Checkpoints int
	// Offset is, for [VerifyJSONLines], the number of bytes of the
	// verified lines: a host resuming a file cut short by a crash
	// truncates it there and continues with a sink from Head.
	Offset int64
}

// VerifyOption configures [VerifyJSONLines] and [VerifyEntries].
type VerifyOption func(*verifyOptions)

type verifyOptions struct {
	anchor      Head
	checkpoints []Checkpoint
}

// WithAnchor says where the log starts: its first entry must be
// anchor.Seq+1 with Prev anchor.Hash. Without it the anchor is the zero
// Head: the log must start at entry 1, and a log that starts later is
// reported as TamperDeleted. To verify a part of a log (after rotation),
// anchor it at the Head of the last entry before it, best taken from a
// signed checkpoint ([Checkpoint.Head]).
func WithAnchor(anchor Head) VerifyOption {
	return func(o *verifyOptions) { o.anchor = anchor }
}

// WithCheckpoint adds checkpoints the log must match: for each, the log
// must contain entry cp.Seq (or be anchored there) with hash cp.Hash. A log
// that ends before is TamperTruncated, another hash is TamperForked. Check
// each checkpoint's signature ([SignedCheckpoint.Verify]) before.
func WithCheckpoint(cps ...Checkpoint) VerifyOption {
	return func(o *verifyOptions) { o.checkpoints = append(o.checkpoints, cps...) }
}

// maxLine bounds a line of a chained file; VerifyJSONLines refuses longer
// ones rather than hold them in memory.
const maxLine = 64 << 20

// VerifyJSONLines checks a file written by a [ChainedJSONLinesSink]: each
// line is an entry in the exact form of [EncodeEntry] followed by "\n";
// each entry's hash matches its bytes; the entries follow each other from
// the anchor (see [WithAnchor]) without gap or reordering, each Prev the
// hash of the one before; and every checkpoint (see [WithCheckpoint])
// matches. It reads r to the end when it finds a gap, to tell a deleted
// entry from a moved one.
//
// The first fault is returned as a [*TamperError] (errors.Is
// [ErrTampered]) that names the entry and the line. A read error is
// returned wrapped and is not ErrTampered.
//
// Without a checkpoint, entries cut off the end of the log along with
// their lines, or a tail rewritten and rehashed from some entry on, cannot
// be told from a shorter log: sign checkpoints of the head
// ([SignCheckpoint]) and verify against the latest one.
func VerifyJSONLines(r io.Reader, opts ...VerifyOption) (Result, error) {
	v, err := newVerifier(opts, "line")
	if err != nil {
		return Result{}, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var offset int64
	var buf []byte
	for line := 1; ; line++ {
		b, complete, err := readLine(br, buf[:0])
		buf = b
		if err != nil && err != io.EOF {
			return v.res, fmt.Errorf("audit: verifying JSON lines: line %d: %w", line, err)
		}
		if len(b) == 0 && err == io.EOF {
			return v.res, v.end(line)
		}
		offset += int64(len(b))
		if !complete {
			if v.gap != nil {
				return v.res, v.end(line)
			}
			return v.res, v.tamper(v.head.Seq+1, line, TamperTruncated,
				fmt.Sprintf("line %d is incomplete: %d bytes and no line break", line, len(b)))
		}
		e, perr := parseEntry(b[:len(b)-1])
		if terr := v.feed(line, &e, perr); terr != nil {
			return v.res, terr
		}
		if v.gap == nil {
			v.res.Offset = offset
		}
		if err == io.EOF {
			return v.res, v.end(line + 1)
		}
	}
}

// readLine reads one line into buf, with its "\n" if it has one
// (complete). It refuses lines longer than maxLine.
func readLine(br *bufio.Reader, buf []byte) (b []byte, complete bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLine {
			return buf, false, fmt.Errorf("%w: line longer than %d bytes", ErrMalformed, maxLine)
		}
		switch err {
		case nil:
			return buf, true, nil
		case bufio.ErrBufferFull:
			continue
		default:
			return buf, false, err
		}
	}
}

// VerifyEntries checks a sequence of entries (a store's audit outbox, in
// Seq order) as [VerifyJSONLines] checks a file; Line in a [*TamperError]
// is the 1-based position in the sequence. An error from the sequence
// that wraps [ErrMalformed] (from [DecodeEntry]) is reported as a
// TamperModified entry at that position; any other error stops the
// verification and is returned wrapped.
func VerifyEntries(entries iter.Seq2[Entry, error], opts ...VerifyOption) (Result, error) {
	v, err := newVerifier(opts, "position")
	if err != nil {
		return Result{}, err
	}
	pos := 0
	for e, err := range entries {
		pos++
		if err != nil && !errors.Is(err, ErrMalformed) {
			return v.res, fmt.Errorf("audit: verifying entries: position %d: %w", pos, err)
		}
		if terr := v.feed(pos, &e, err); terr != nil {
			return v.res, terr
		}
	}
	return v.res, v.end(pos + 1)
}

// verifier is the state of one verification, fed one entry at a time.
type verifier struct {
	where   string
	head    Head
	headPos int // line of head; 0 for the anchor
	anchor  Head
	cps     map[uint64][]Checkpoint
	res     Result
	before  Result // res before the head was accepted
	gap     *gap
}

// gap is a jump forward in Seq, held until the rest of the log says
// whether the missing entry was deleted or moved.
type gap struct {
	want, got uint64
	pos       int
}

func newVerifier(opts []VerifyOption, where string) (*verifier, error) {
	var o verifyOptions
	for _, opt := range opts {
		opt(&o)
	}
	v := &verifier{where: where, head: o.anchor, anchor: o.anchor, cps: map[uint64][]Checkpoint{}}
	v.res.Head = o.anchor
	for _, cp := range o.checkpoints {
		switch {
		case cp.Seq < o.anchor.Seq:
			return nil, fmt.Errorf("%w: checkpoint %q at entry %d lies before the log, which is anchored at entry %d",
				ErrUnverifiable, cp.Log, cp.Seq, o.anchor.Seq)
		case cp.Seq == o.anchor.Seq:
			if cp.Hash != o.anchor.Hash {
				return nil, v.tamper(cp.Seq, 0, TamperForked, fmt.Sprintf("checkpoint %q has hash %s, the anchor %s",
					cp.Log, short(cp.Hash), short(o.anchor.Hash)))
			}
			v.res.Checkpoints++
		default:
			v.cps[cp.Seq] = append(v.cps[cp.Seq], cp)
		}
	}
	return v, nil
}

func (v *verifier) tamper(seq uint64, pos int, kind TamperKind, detail string) *TamperError {
	return &TamperError{Seq: seq, Line: pos, Kind: kind, Detail: detail, where: v.where}
}

// feed checks the entry at pos; perr is why it could not be parsed.
func (v *verifier) feed(pos int, e *Entry, perr error) error {
	want := v.head.Seq + 1
	if g := v.gap; g != nil {
		if perr == nil && e.Seq == g.want {
			return v.tamper(g.got, g.pos, TamperReordered, fmt.Sprintf("entry %d is at %s %d, where entry %d belongs; entry %d is at %s %d",
				g.got, v.where, g.pos, g.want, g.want, v.where, pos))
		}
		return nil
	}
	if perr != nil {
		return v.tamper(want, pos, TamperModified, "not a chain entry: "+perr.Error())
	}
	if EntryHash(e.Seq, e.Prev, e.EventJSON) != e.Hash {
		d := "hash mismatch: the entry's bytes changed"
		if e.Seq != want {
			d += fmt.Sprintf(" (it says it is entry %d)", e.Seq)
		}
		return v.tamper(want, pos, TamperModified, d)
	}
	switch {
	case e.Seq < want:
		return v.tamper(e.Seq, pos, TamperReordered, fmt.Sprintf("the sequence goes back: entry %d comes after entry %d (%s)",
			e.Seq, v.head.Seq, v.at(v.headPos)))
	case e.Seq > want:
		v.gap = &gap{want: want, got: e.Seq, pos: pos}
		return nil
	}
	if e.Prev != v.head.Hash {
		if v.headPos == 0 {
			return v.tamper(e.Seq, pos, TamperModified, fmt.Sprintf("prev %s is not the anchor's hash %s (entry %d)",
				short(e.Prev), short(v.head.Hash), v.head.Seq))
		}
		v.res = v.before // the head is at fault
		return v.tamper(v.head.Seq, v.headPos, TamperModified, fmt.Sprintf(
			"its hash %s is not the prev %s of entry %d (%s %d): entry %d was rewritten and rehashed, or entry %d's prev",
			short(v.head.Hash), short(e.Prev), e.Seq, v.where, pos, v.head.Seq, e.Seq))
	}
	for _, cp := range v.cps[e.Seq] {
		if cp.Hash != e.Hash {
			return v.tamper(e.Seq, pos, TamperForked, fmt.Sprintf("checkpoint %q signs hash %s for entry %d, the log has %s",
				cp.Log, short(cp.Hash), e.Seq, short(e.Hash)))
		}
		v.res.Checkpoints++
	}
	v.before = v.res
	v.head, v.headPos = e.Head(), pos
	if v.res.Entries == 0 {
		v.res.First = e.Seq
	}
	v.res.Entries++
	v.res.Head = v.head
	return nil
}

// end checks the end of the log; pos is the line after the last.
func (v *verifier) end(pos int) error {
	if g := v.gap; g != nil {
		missing := fmt.Sprintf("entry %d is missing", g.want)
		if g.got-g.want > 1 {
			missing = fmt.Sprintf("entries %d to %d are missing", g.want, g.got-1)
		}
		return v.tamper(g.want, g.pos, TamperDeleted, fmt.Sprintf("%s: entry %d (%s) follows entry %d (%s)",
			missing, g.got, v.at(g.pos), g.want-1, v.at(v.headPos)))
	}
	var late []uint64
	for seq := range v.cps {
		if seq > v.head.Seq {
			late = append(late, seq)
		}
	}
	if len(late) > 0 {
		last := slices.Max(late)
		return v.tamper(v.head.Seq+1, pos, TamperTruncated, fmt.Sprintf("the log ends after entry %d (%s); checkpoint %q is at entry %d",
			v.head.Seq, v.at(v.headPos), v.cps[last][0].Log, last))
	}
	return nil
}

func (v *verifier) at(pos int) string {
	if pos == 0 {
		return "the anchor"
	}
	return v.where + " " + strconv.Itoa(pos)
}

// short abbreviates a hash for messages.
func short(h [32]byte) string { return hex.EncodeToString(h[:6]) }
