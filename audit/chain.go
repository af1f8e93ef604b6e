package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
)

// Head is the last entry of a chain: its Seq and Hash. The zero Head is
// the start of a chain, before entry 1; the first entry's Prev is then 32
// zero bytes.
type Head struct {
	Seq  uint64
	Hash [32]byte
}

// String gives the head as "seq:hexhash".
func (h Head) String() string {
	return strconv.FormatUint(h.Seq, 10) + ":" + hex.EncodeToString(h.Hash[:])
}

// Entry is one link of an audit chain: an event, its position and the
// hash of the entry before it. Build entries with [Chain.Append], store
// them with [EncodeEntry], read them back with [DecodeEntry] and check a
// sequence of them with [VerifyEntries] or, in a file, [VerifyJSONLines].
//
// EventJSON is authoritative: the hash covers its exact bytes, and Event
// is its decoding. Decoding does not give back the Go types that were
// encoded (numbers come back as json.Number, see [ReadJSONLines]), which
// is why the chain never hashes a re-encoded Event.
type Entry struct {
	// Seq is the entry's position in the log, from 1.
	Seq uint64
	// Prev is the Hash of entry Seq-1 (zero for entry 1, or the anchor's
	// hash for the first entry of a log that starts later).
	Prev [32]byte
	// Hash is [EntryHash] of Seq, Prev and EventJSON.
	Hash [32]byte
	// EventJSON is the event as [JSONLines] writes it, without the line
	// break and without "seq" (the entry carries it): one JSON object.
	EventJSON []byte
	// Event is EventJSON decoded, with Event.Seq set to Seq.
	Event Event
}

// Head returns the entry's Seq and Hash: the head of a chain that ends
// with it.
func (e *Entry) Head() Head { return Head{Seq: e.Seq, Hash: e.Hash} }

// entryDomain starts the bytes hashed for every entry, so that an entry
// hash cannot be mistaken for the hash of anything else.
const entryDomain = "concord.audit.entry.v1\x00"

// EntryHash is the hash of the entry at seq that follows prev and records
// eventJSON:
//
//	SHA-256( "concord.audit.entry.v1" 0x00
//	         || seq as 8 bytes big-endian
//	         || prev (32 bytes)
//	         || len(eventJSON) as 8 bytes big-endian
//	         || eventJSON )
//
// Every field has a fixed width or a length prefix, so that two different
// entries never hash the same bytes.
func EntryHash(seq uint64, prev [32]byte, eventJSON []byte) [32]byte {
	h := sha256.New()
	var b [len(entryDomain) + 8 + 32 + 8]byte
	n := copy(b[:], entryDomain)
	binary.BigEndian.PutUint64(b[n:], seq)
	n += 8
	n += copy(b[n:], prev[:])
	binary.BigEndian.PutUint64(b[n:], uint64(len(eventJSON)))
	h.Write(b[:])
	h.Write(eventJSON)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Chain builds the entries of an audit log, one after another from a
// head. A Chain is not safe for concurrent use.
type Chain struct {
	head Head
	b    chainBuilder
}

// NewChain returns a chain whose next entry follows head: Seq head.Seq+1
// and Prev head.Hash. Start a new log with the zero Head; continue one
// with the Head of its last entry.
func NewChain(head Head) *Chain { return &Chain{head: head} }

// Head returns the chain's last entry (the head it was created with when
// nothing has been appended).
func (c *Chain) Head() Head { return c.head }

// ErrSeqOverflow reports a chain whose head is at the largest Seq.
var ErrSeqOverflow = errors.New("audit: chain sequence number would overflow")

// Append encodes events and links them to the chain: Seq head.Seq+1, ...,
// each Prev the Hash of the entry before. Each entry's Event is the event
// with Seq set to the entry's Seq; the Seq an event had is not encoded.
//
// Append is all or nothing: if an event cannot be encoded (a value JSON
// cannot carry, such as NaN), it returns an [*EventError] that names it,
// and the chain is left as it was.
//
// The entries' EventJSON share one allocation (each capped at its own
// end); do not modify them.
func (c *Chain) Append(events ...Event) ([]Entry, error) {
	entries, _, head, err := c.builder().build(c.head, events, false, true)
	if err != nil {
		return nil, err
	}
	c.head = head
	return entries, nil
}

// AppendEncoded is [Chain.Append] that also gives each entry's stored
// form: stored[i] is the bytes [EncodeEntry] returns for entries[i]. It
// is the route for a caller that stores what it appends, such as the
// engine's audit outbox: the entries were built here, from bytes this
// package encoded, so the checks EncodeEntry makes of an entry from
// elsewhere (that EventJSON is valid JSON, that Hash is its hash) are
// not needed.
//
// Each entry's EventJSON is a part of its stored form, and all of them
// share one allocation (each capped at its own end); do not modify them.
func (c *Chain) AppendEncoded(events ...Event) (entries []Entry, stored [][]byte, err error) {
	entries, stored, head, err := c.builder().build(c.head, events, true, true)
	if err != nil {
		return nil, nil, err
	}
	c.head = head
	return entries, stored, nil
}

// AppendStored is [Chain.AppendEncoded] for a caller that needs only the
// stored forms, such as an outbox with no sink to deliver entries to: it
// builds no [Entry] values. stored[i] is the entry with Seq h+1+i, where
// h is the Seq of the chain's head before the call. Errors are those of
// [Chain.Append], and on error the chain is left as it was.
func (c *Chain) AppendStored(events ...Event) (stored [][]byte, err error) {
	_, stored, head, err := c.builder().build(c.head, events, true, false)
	if err != nil {
		return nil, err
	}
	c.head = head
	return stored, nil
}

// builder returns c's builder, with the scratch space of the calls before
// unless c is a copy of another Chain (a Chain is a value): a copy gets
// its own, so that copies used apart never share buffers or hash state.
func (c *Chain) builder() *chainBuilder {
	if c.b.owner != c {
		c.b = chainBuilder{owner: c}
	}
	return &c.b
}

// chainBuilder builds entries. It keeps its scratch space from one call
// to the next.
type chainBuilder struct {
	owner *Chain // the chain whose scratch this is
	enc   eventEncoder
	avg   int   // bytes per entry of the last call (bounded): the next call's estimate
	ends  []int // per entry: start of its line, of its event, end of its event
	hash  entryHasher
}

// maxAvg bounds the bytes per entry a chainBuilder expects from the
// last call: one huge event does not make every later call allocate big.
const maxAvg = 4096

// hashPart is the length of the end of an entry's stored form before its
// event, from the hash on: <64 hex digits>","event":
const hashPart = 64 + len(`","event":`)

// build encodes events and links them from head. With stored, the buffer
// holds each entry's stored form (EncodeEntry's bytes) around its event.
// Without want, no entries are returned (only the stored forms).
func (cb *chainBuilder) build(head Head, events []Event, stored, want bool) ([]Entry, [][]byte, Head, error) {
	if uint64(len(events)) > math.MaxUint64-head.Seq {
		return nil, nil, head, ErrSeqOverflow
	}
	// The bytes go to the caller as they are (no copy out of a scratch
	// buffer): a buffer per call, sized from the last call's entries.
	if cb.avg == 0 {
		cb.avg = 512
	}
	buf, ends := make([]byte, 0, len(events)*cb.avg+cb.avg/2), cb.ends[:0]
	defer func() {
		if len(events) > 0 && len(buf) > 0 {
			cb.avg = min(len(buf)/len(events)+16, maxAvg)
		}
		cb.ends = ends[:0]
	}()
	var entries []Entry
	if want {
		entries = make([]Entry, len(events))
	}
	for i := range events {
		var scratch Entry
		e := &scratch
		if want {
			e = &entries[i]
		}
		e.Seq, e.Prev = head.Seq+1, head.Hash
		line, start := len(buf), len(buf)
		var err error
		if stored {
			buf, start, head, err = cb.appendLine(buf, head, &events[i])
		} else {
			buf, err = cb.enc.appendEvent(buf, &events[i])
			if err == nil {
				head = Head{Seq: e.Seq, Hash: cb.hash.sum(e.Seq, &e.Prev, buf[start:])}
			}
		}
		if err != nil {
			return nil, nil, head, eventError(i, &events[i], err)
		}
		e.Hash = head.Hash
		ends = append(ends, line, start, len(buf))
		if want {
			e.Event = events[i]
			e.Event.Seq = e.Seq
		}
	}
	out := buf
	var lines [][]byte
	if stored {
		lines = make([][]byte, len(events))
	}
	for i := range events {
		line, start, end := ends[3*i], ends[3*i+1], ends[3*i+2]
		if stored {
			lines[i] = out[line:end:end]
			end-- // the closing brace of the line
		}
		if want {
			entries[i].EventJSON = out[start:end:end]
		}
	}
	return entries, lines, head, nil
}

// appendLine appends to dst the stored form of the entry that records ev
// after head ([EncodeEntry]'s bytes), and returns where the event starts
// in dst and the entry's head. On error dst is as it was.
func (cb *chainBuilder) appendLine(dst []byte, head Head, ev *Event) ([]byte, int, Head, error) {
	if head.Seq == math.MaxUint64 {
		return dst, 0, head, ErrSeqOverflow
	}
	seq, n := head.Seq+1, len(dst)
	dst = appendEntryStart(dst, seq, &head.Hash)
	dst = append(dst, `","event":`...)
	start := len(dst)
	dst, err := cb.enc.appendEvent(dst, ev)
	if err != nil {
		return dst[:n], 0, head, err
	}
	h := cb.hash.sum(seq, &head.Hash, dst[start:])
	hex.Encode(dst[start-hashPart:], h[:])
	return append(dst, '}'), start, Head{Seq: seq, Hash: h}, nil
}

// appendEntryStart appends the stored form of an entry up to its hash,
// and room for the hash's hex digits.
func appendEntryStart(b []byte, seq uint64, prev *[32]byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, prev[:])
	b = append(b, `","hash":"`...)
	return append(b, make([]byte, 64)...)
}

// entryHasher computes [EntryHash] with one SHA-256 state reused from
// entry to entry, and no allocation per entry.
type entryHasher struct {
	h    hash.Hash
	head [len(entryDomain) + 8 + 32 + 8]byte
	out  [32]byte
}

func (eh *entryHasher) sum(seq uint64, prev *[32]byte, eventJSON []byte) [32]byte {
	if eh.h == nil {
		eh.h = sha256.New()
		copy(eh.head[:], entryDomain)
	}
	eh.h.Reset()
	n := len(entryDomain)
	binary.BigEndian.PutUint64(eh.head[n:], seq)
	n += 8
	n += copy(eh.head[n:], prev[:])
	binary.BigEndian.PutUint64(eh.head[n:], uint64(len(eventJSON)))
	eh.h.Write(eh.head[:])
	eh.h.Write(eventJSON)
	eh.h.Sum(eh.out[:0])
	return eh.out
}

// ErrMalformed reports bytes that are not an encoded [Entry] or
// [SignedCheckpoint], or an entry that cannot be encoded.
var ErrMalformed = errors.New("audit: malformed")

// EncodeEntry returns the stored form of e, which is also its line in a
// chained JSON Lines file (without the line break):
//
//	{"seq":N,"prev":"<64 hex>","hash":"<64 hex>","event":<EventJSON>}
//
// with N in decimal and the hashes in lower-case hex. It checks e first:
// Seq must be at least 1, EventJSON one JSON object on one line, and Hash
// its [EntryHash]; otherwise the error wraps [ErrMalformed].
func EncodeEntry(e Entry) ([]byte, error) {
	if e.Seq == 0 {
		return nil, fmt.Errorf("%w: entry has seq 0", ErrMalformed)
	}
	if err := checkEventJSON(e.EventJSON); err != nil {
		return nil, fmt.Errorf("%w: entry %d: event: %v", ErrMalformed, e.Seq, err)
	}
	if EntryHash(e.Seq, e.Prev, e.EventJSON) != e.Hash {
		return nil, fmt.Errorf("%w: entry %d: hash is not the hash of its seq, prev and event", ErrMalformed, e.Seq)
	}
	return appendEntry(nil, e.Seq, &e.Prev, &e.Hash, e.EventJSON), nil
}

func appendEntry(b []byte, seq uint64, prev, hash *[32]byte, event []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, prev[:])
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, hash[:])
	b = append(b, `","event":`...)
	b = append(b, event...)
	return append(b, '}')
}

// checkEventJSON accepts one JSON object with no line break.
func checkEventJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return fmt.Errorf("line break at byte %d", i)
	}
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	return nil
}

// DecodeEntry parses what [EncodeEntry] returns (a line of a chained JSON
// Lines file, without its line break) and decodes the event. The bytes
// must be exactly in that form, with nothing before or after: a form
// that differs in any byte (spacing, key order, upper-case hex, leading
// zeros) is refused with an error that wraps [ErrMalformed], as is an
// event that is not an audit event or that carries another seq.
//
// DecodeEntry does not check the hash: [VerifyEntries] does, and says
// which entry does not match.
func DecodeEntry(b []byte) (Entry, error) {
	e, err := parseEntry(b)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: entry: %v", ErrMalformed, err)
	}
	if err := e.decodeEvent(); err != nil {
		return Entry{}, fmt.Errorf("%w: entry %d: event: %v", ErrMalformed, e.Seq, err)
	}
	return e, nil
}

func (e *Entry) decodeEvent() error {
	ev, err := decodeEvent(e.EventJSON)
	if err != nil {
		return err
	}
	if ev.Seq != 0 && ev.Seq != e.Seq {
		return fmt.Errorf("event has seq %d", ev.Seq)
	}
	ev.Seq = e.Seq
	e.Event = ev
	return nil
}

// parseEntry parses the form EncodeEntry writes, strictly, without
// decoding the event. EventJSON aliases b.
func parseEntry(b []byte) (Entry, error) {
	var e Entry
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return e, errors.New(`does not start with {"seq":N`)
	}
	n := 0
	for n < len(rest) && n < 21 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 || rest[0] == '0' {
		return e, errors.New("seq is not a number from 1 without leading zeros")
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return e, errors.New("seq is out of range")
	}
	e.Seq = seq
	rest = rest[n:]
	if rest, err = cutHash(rest, `,"prev":"`, &e.Prev); err != nil {
		return e, fmt.Errorf("seq %d: prev: %v", seq, err)
	}
	if rest, err = cutHash(rest, `","hash":"`, &e.Hash); err != nil {
		return e, fmt.Errorf("seq %d: hash: %v", seq, err)
	}
	rest, ok = bytes.CutPrefix(rest, []byte(`","event":`))
	if !ok {
		return e, fmt.Errorf(`seq %d: no "event" after "hash"`, seq)
	}
	event, ok := bytes.CutSuffix(rest, []byte("}"))
	if !ok {
		return e, fmt.Errorf("seq %d: does not end with }", seq)
	}
	if err := checkEventJSON(event); err != nil {
		return e, fmt.Errorf("seq %d: event: %v", seq, err)
	}
	e.EventJSON = event
	return e, nil
}

// cutHash reads prefix and 64 lower-case hex digits into h.
func cutHash(b []byte, prefix string, h *[32]byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return b, fmt.Errorf("expected %s", prefix)
	}
	if len(rest) < 64 || !parseHash(rest[:64], h) {
		return b, errors.New("not 64 lower-case hex digits")
	}
	return rest[64:], nil
}

// parseHash reads exactly 64 lower-case hex digits into h.
func parseHash(b []byte, h *[32]byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	_, err := hex.Decode(h[:], b)
	return err == nil
}
