package csvfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"
	"strings"
)

// utf8BOM is what spreadsheet programs put before a UTF-8 CSV file.
const utf8BOM = "\xef\xbb\xbf"

// file is one parse of the CSV file: every byte of it, split into the
// header and rows, so that a rewrite can keep the text of every row it does
// not change, malformed ones included.
type file struct {
	bom    bool
	header []string
	// headerRaw is the header's text, with its line ending.
	headerRaw string
	crlf      bool
	rows      []*row
	// tail is text after the last row that is not a row (blank lines).
	tail string
}

// row is one CSV record of the file.
type row struct {
	raw   string   // its text as read, with leading blank lines and its line ending; "" once changed
	lead  string   // leading blank lines of raw, kept on rewrite
	cells []string // parsed cells; nil for a malformed row
	line  int      // line the row starts on (1-based), 0 for a new row
	err   error    // why the row is malformed; nil for a good row
	// partial holds the cells of a malformed row that were parsed;
	// complete says they are all there (only their count is wrong).
	partial  []string
	complete bool
}

// malformedKey returns the key cell of a malformed row when it was parsed
// whole, and "" when it was not.
func (r *row) malformedKey(keyIndex int) string {
	if keyIndex < len(r.partial) && (r.complete || keyIndex < len(r.partial)-1) {
		return r.partial[keyIndex]
	}
	return ""
}

// hash returns the row's tag: FNV-1a over its cells, each length-prefixed,
// so that ("a,b", "c") and ("a", "b,c") differ.
func (r *row) hash() string {
	h := fnv.New64a()
	var n [20]byte
	for _, c := range r.cells {
		h.Write(strconv.AppendInt(n[:0], int64(len(c)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(c))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// parseFile splits data into the header and rows. Only a missing or
// unusable header is an error; a bad row is kept as a malformed row with
// its line number and text.
func parseFile(data []byte, comma rune) (*file, error) {
	f := &file{}
	if bytes.HasPrefix(data, []byte(utf8BOM)) {
		f.bom, data = true, data[len(utf8BOM):]
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = comma
	r.FieldsPerRecord = 0 // the header's count
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty; want a header row")
		}
		return nil, fmt.Errorf("header row: %w", err)
	}
	f.header = header
	prev := r.InputOffset()
	f.headerRaw = string(data[:prev])
	f.crlf = strings.HasSuffix(f.headerRaw, "\r\n")
	for {
		cells, err := r.Read()
		off := r.InputOffset()
		raw := string(data[prev:off])
		prev = off
		if errors.Is(err, io.EOF) {
			f.tail = raw
			return f, nil
		}
		rw := &row{raw: raw, lead: leadingBlankLines(raw)}
		var pe *csv.ParseError
		switch {
		case err == nil:
			rw.cells = cells
			rw.line, _ = r.FieldPos(0)
		case errors.As(err, &pe):
			rw.line, rw.err = pe.StartLine, pe.Err
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				rw.err = fmt.Errorf("%d fields; the header has %d", len(cells), len(header))
				rw.complete = true
			}
		default:
			return nil, err // bytes.Reader fails in no other way
		}
		if rw.err != nil {
			rw.partial = cells
		}
		f.rows = append(f.rows, rw)
	}
}

// leadingBlankLines returns the blank lines csv skipped before a row.
func leadingBlankLines(raw string) string {
	i := 0
	for i < len(raw) {
		switch {
		case raw[i] == '\n':
			i++
		case strings.HasPrefix(raw[i:], "\r\n"):
			i += 2
		default:
			return raw[:i]
		}
	}
	return raw[:i]
}

// encode returns the file's text: the text of every row kept as read, and
// changed or new rows written with the file's separator and line ending.
func (f *file) encode(comma rune) ([]byte, error) {
	var b bytes.Buffer
	if f.bom {
		b.WriteString(utf8BOM)
	}
	b.WriteString(f.headerRaw)
	nl := "\n"
	if f.crlf {
		nl = "\r\n"
	}
	if len(f.rows) > 0 && !strings.HasSuffix(f.headerRaw, "\n") {
		b.WriteString(nl) // a header without a line ending, then rows
	}
	w := csv.NewWriter(&b)
	w.Comma, w.UseCRLF = comma, f.crlf
	for i, r := range f.rows {
		if r.raw != "" {
			b.WriteString(r.raw)
			if !strings.HasSuffix(r.raw, "\n") && i < len(f.rows)-1 {
				b.WriteString(nl) // the last row had no line ending
			}
			continue
		}
		b.WriteString(r.lead)
		if err := w.Write(r.cells); err != nil {
			return nil, err
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return nil, err
		}
	}
	b.WriteString(f.tail)
	return b.Bytes(), nil
}
