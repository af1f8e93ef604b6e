package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// JSONLinesSink writes events to an io.Writer as JSON Lines: one JSON object
// per event, each on its own line. Create one with [JSONLines]; read a file
// back with [ReadJSONLines].
//
// The object has the fields of [Event] under their json tag names. Object
// keys come out in a fixed order (struct fields in declaration order, map
// keys sorted), so the same events always produce the same bytes. Versions
// are written as their text form ("{1:2,3:1}"), times in RFC 3339 with
// nanoseconds.
//
// A JSONLinesSink is safe for concurrent use. Each batch is written with a
// single Write call under a mutex, so the lines of concurrent batches never
// interleave when the writer honours the io.Writer contract. It does not
// buffer or flush: wrap the writer in a bufio.Writer and flush it yourself
// if you want buffering.
type JSONLinesSink struct {
	mu sync.Mutex
	w  io.Writer
}

// JSONLines returns a sink that writes to w. It panics if w is nil.
func JSONLines(w io.Writer) *JSONLinesSink {
	if w == nil {
		panic("audit: JSONLines: nil writer")
	}
	return &JSONLinesSink{w: w}
}

// Emit encodes the events and writes them in one call. ctx is not consulted:
// the write is not cancellable.
//
// An event that cannot be encoded (a Value that is not JSON, such as NaN or
// a channel) is left out and reported as an [*EventError]; the other events
// are still written. A write error is returned wrapped, and then no event of
// the batch may be assumed written. Several errors are joined with
// errors.Join.
func (s *JSONLinesSink) Emit(_ context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var errs []error
	for i := range events {
		// Encode writes nothing to buf when it fails.
		if err := enc.Encode(toWire(&events[i])); err != nil { // as Event.MarshalJSON, in one pass
			errs = append(errs, eventError(i, &events[i], err))
		}
	}
	if buf.Len() > 0 {
		s.mu.Lock()
		_, err := s.w.Write(buf.Bytes())
		s.mu.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("audit: writing %d bytes of JSON lines: %w", buf.Len(), err))
		}
	}
	return errors.Join(errs...)
}

// ReadJSONLines reads events written by a [JSONLinesSink], or by a
// [ChainedJSONLinesSink] (the events of its entries, each with its Seq; it
// does not verify the chain: see [VerifyJSONLines]). Blank lines are
// skipped; fields it does not know are ignored, so that newer files stay
// readable.
//
// Numbers in values are decoded as json.Number, so they come back equal
// under [concord.EqualValues] to the numbers that were written, whatever
// their Go type was. JSON has no time type: a time.Time inside From, To or
// a Candidate's Values comes back as its RFC 3339 string, and []string and
// map[string]string come back as []any and map[string]any (which
// EqualValues treats as the same values). Event.Time and the Versions are
// restored to their own types.
//
// On a malformed line ReadJSONLines returns the events before it together
// with an error that gives the line number and wraps the decoder's error (a
// file cut short by a crash still yields its complete lines).
func ReadJSONLines(r io.Reader) ([]Event, error) {
	br := bufio.NewReader(r)
	var events []Event
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			ev, derr := decodeLine(b)
			if derr != nil {
				return events, fmt.Errorf("audit: reading JSON lines: line %d: %w", line, derr)
			}
			events = append(events, ev)
		}
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, fmt.Errorf("audit: reading JSON lines: line %d: %w", line, err)
		}
	}
}

// errNoKind rejects a line that is JSON but not an event.
var errNoKind = errors.New("object has no kind")

// decodeLine decodes a line of a JSONLinesSink or, when it is one, of a
// ChainedJSONLinesSink.
func decodeLine(b []byte) (Event, error) {
	if e, err := parseEntry(bytes.TrimSpace(b)); err == nil {
		if err := e.decodeEvent(); err != nil {
			return Event{}, fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		return e.Event, nil
	}
	return decodeEvent(b)
}

// decodeEvent decodes one event object.
func decodeEvent(b []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var ev Event
	if err := dec.Decode(&ev); err != nil {
		return Event{}, err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		if len(rest) > 20 {
			rest = rest[:20]
		}
		return Event{}, fmt.Errorf("unexpected %q after the object", rest)
	}
	if ev.Kind == "" {
		return Event{}, errNoKind
	}
	return ev, nil
}
