package sqltable

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord/connector"
)

// cursorPrefix starts every cursor this package makes (format version 1).
const cursorPrefix = "sqlt1."

// maxCursorLen bounds the cursors this package reads.
const maxCursorLen = 64 << 10

// maxSeen is how many (key, content) pairs a feed cursor remembers to skip
// rows re-read in the overlap window that it already delivered unchanged.
const maxSeen = 256

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// pos is a position in (tracking value, key columns) order.
type pos struct {
	T string `json:"t"`
	K []any  `json:"k"`
}

// cursorState is the content of a cursor.
type cursorState struct {
	// F is the fingerprint of the table and tracking the cursor is for.
	F string `json:"f"`
	// S marks a Scan cursor (key order) rather than a feed cursor.
	S bool `json:"s,omitempty"`
	// Hi is the tracking value of the last row of the last complete
	// pass: the next pass starts a window before it.
	Hi *string `json:"h,omitempty"`
	// At is the last row visited in the current pass (nil: the next call
	// starts a pass). For a Scan cursor, At.K is the last key returned.
	At *pos `json:"a,omitempty"`
	// Over is the tracking value up to which the current pass re-reads
	// rows delivered by earlier passes (Hi when the pass started).
	Over *string `json:"o,omitempty"`
	// Seen holds pairs of 64-bit hashes (key, content) of rows recently
	// delivered, 16 bytes a pair.
	Seen []byte `json:"n,omitempty"`
}

func (t *Table) encodeCursor(st cursorState) connector.Cursor {
	st.F = t.fp
	js, err := json.Marshal(st)
	if err != nil {
		panic("sqltable: encoding a cursor: " + err.Error()) // only plain types: cannot fail
	}
	buf := binary.BigEndian.AppendUint32(nil, crc32.Checksum(js, crcTable))
	buf = append(buf, js...)
	return connector.Cursor(cursorPrefix + base64.RawURLEncoding.EncodeToString(buf))
}

func badCursor(format string, args ...any) error {
	return connector.Permanent(fmt.Errorf("%w: %s", ErrCursor, fmt.Sprintf(format, args...)))
}

// decodeCursor checks and decodes a cursor; scan says which kind is
// expected.
func (t *Table) decodeCursor(c connector.Cursor, scan bool) (cursorState, error) {
	var st cursorState
	if c == "" {
		return st, nil
	}
	s := string(c)
	if len(s) > maxCursorLen || !strings.HasPrefix(s, cursorPrefix) {
		return st, badCursor("not a cursor of this package (or too long)")
	}
	buf, err := base64.RawURLEncoding.DecodeString(s[len(cursorPrefix):])
	if err != nil || len(buf) < 4 {
		return st, badCursor("damaged encoding")
	}
	if binary.BigEndian.Uint32(buf) != crc32.Checksum(buf[4:], crcTable) {
		return st, badCursor("checksum mismatch: damaged")
	}
	dec := json.NewDecoder(bytes.NewReader(buf[4:]))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, badCursor("damaged content: %v", err)
	}
	if st.F != t.fp {
		return st, badCursor("made for another table or configuration")
	}
	if st.S != scan {
		return st, badCursor("a Scan cursor passed to Changes or the reverse")
	}
	if len(st.Seen)%16 != 0 || len(st.Seen) > 16*maxSeen {
		return st, badCursor("damaged content: seen list of %d bytes", len(st.Seen))
	}
	if scan && (st.Hi != nil || st.Over != nil || st.Seen != nil || st.At == nil) {
		return st, badCursor("damaged content: not a Scan cursor")
	}
	for _, v := range []*string{st.Hi, st.Over} {
		if v != nil {
			if _, err := t.trackArg(*v); err != nil {
				return st, badCursor("damaged tracking value: %v", err)
			}
		}
	}
	if st.At != nil {
		if !scan {
			if _, err := t.trackArg(st.At.T); err != nil {
				return st, badCursor("damaged tracking value: %v", err)
			}
		}
		if len(st.At.K) != len(t.cfg.Key) {
			return st, badCursor("damaged content: %d key values; want %d", len(st.At.K), len(t.cfg.Key))
		}
		for i, v := range st.At.K {
			switch t.cfg.Key[i].Type {
			case Int64:
				n, ok := v.(json.Number)
				if !ok {
					return st, badCursor("damaged content: key value %d is not an integer", i)
				}
				x, err := strconv.ParseInt(string(n), 10, 64)
				if err != nil {
					return st, badCursor("damaged content: key value %d is not an int64", i)
				}
				st.At.K[i] = x
			default:
				if _, ok := v.(string); !ok {
					return st, badCursor("damaged content: key value %d is not text", i)
				}
			}
		}
	}
	return st, nil
}

// trackText is the text form of a tracking value read from a row.
func (t *Table) trackText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("column %q is NULL; the change feed needs a value", t.trackCol)
	case int64:
		return strconv.FormatInt(x, 10), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case []byte:
		return string(x), nil
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	}
	return "", fmt.Errorf("column %q holds a %T", t.trackCol, v)
}

// trackArg turns the text form of a tracking value back into an argument.
func (t *Table) trackArg(s string) (any, error) {
	switch {
	case t.cfg.Track == TrackVersion:
		return strconv.ParseInt(s, 10, 64)
	case t.cfg.Dialect == PostgreSQL:
		return time.Parse(time.RFC3339Nano, s)
	}
	if _, err := decodeTime(s); err != nil {
		return nil, err
	}
	return s, nil // SQLite: compared as stored
}

// windowStart returns the argument of the lowest tracking value a pass
// starting after hi re-reads.
func (t *Table) windowStart(hi string) (any, error) {
	if t.cfg.Track == TrackVersion {
		n, err := strconv.ParseInt(hi, 10, 64)
		if err != nil {
			return nil, err
		}
		if n < math.MinInt64+t.cfg.VersionWindow {
			return int64(math.MinInt64), nil
		}
		return n - t.cfg.VersionWindow, nil
	}
	if t.cfg.Dialect == PostgreSQL {
		at, err := time.Parse(time.RFC3339Nano, hi)
		if err != nil {
			return nil, err
		}
		return at.Add(-t.cfg.Window), nil
	}
	// SQLite: in the form the value is stored in.
	s := strings.TrimSpace(hi)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		secs := int64(math.Ceil(t.cfg.Window.Seconds()))
		if n < math.MinInt64+secs {
			return int64(math.MinInt64), nil
		}
		return n - secs, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f - t.cfg.Window.Hours()/24 - 1e-6, nil
	}
	at, err := decodeTime(s)
	if err != nil {
		return nil, err
	}
	at = at.Add(-t.cfg.Window)
	if at.Year() < 1 {
		return "", nil // before every time: all text sorts after ""
	}
	return at.Format(sqliteTimeLayout), nil
}

// compareTrack orders two tracking texts as the database does, as far as
// it can tell; it only decides which rows are checked against the seen
// list, never which rows are read.
func (t *Table) compareTrack(a, b string) int {
	if t.cfg.Track == TrackVersion {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return cmpInt(x, y)
	}
	if t.cfg.Dialect == PostgreSQL {
		x, _ := time.Parse(time.RFC3339Nano, a)
		y, _ := time.Parse(time.RFC3339Nano, b)
		return x.Compare(y)
	}
	fa, ea := strconv.ParseFloat(a, 64)
	fb, eb := strconv.ParseFloat(b, 64)
	if ea == nil && eb == nil {
		return cmpInt(fa, fb)
	}
	return strings.Compare(a, b)
}

func cmpInt[T int64 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
