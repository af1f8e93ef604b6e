// Package csvfile makes a CSV file (a spreadsheet exported as CSV, such as
// a sales representative's own contact list) a system Concord can sync: a
// [connector.Connector], [connector.Getter] and [connector.Scanner] over
// one file.
//
// # Columns
//
// The first row is the header. [Config.Key] names the key column; every
// other column is a field, named after its header or as [Config.Columns]
// maps it. Every cell is text: a field's value is a string unless
// [Config.Types] gives its column another [Type] (Int, Float, Decimal,
// Bool, Time, Bytes). An empty cell is nil, whatever the type: a
// spreadsheet cannot tell an empty string from an empty cell, so writing
// "" empties the cell and reads back as nil. Columns the Config does not
// map are kept as they are, and left empty in new rows.
//
// # Changes
//
// A CSV file has no change feed, so the connector makes one: it keeps a
// snapshot of what it last saw (the hash of every row, by key) and, on
// every Changes call, compares the file with it. A row whose hash changed,
// or a new key, gets the next number of a change sequence; a key gone from
// the file becomes a deletion with the next number. The cursor is that
// number (with the snapshot's identity): reading from it returns the
// records changed after it, in sequence order, each with its current
// state. The snapshot lives in a file beside the CSV file (by default
// ".<name>.concord-snapshot" in the same directory; [Config.Snapshot]
// moves it), written atomically and carrying a CRC-32C. It must be a file
// rather than memory plus a cursor: a cursor can hold a hash of the whole
// file but not the keys it had, and after a restart the connector must
// still know which rows were there to tell a deleted row from one never
// seen. A cursor from another snapshot (it was deleted and rebuilt) reads
// from the beginning: every row is delivered again, which the engine
// recognises as repeats. A damaged snapshot is an error wrapping
// [ErrDamagedSnapshot], never silently rebuilt.
//
// # Malformed rows
//
// A row that cannot be read (a stray quote, the wrong number of cells, an
// empty, duplicated or non-UTF-8 key, a cell that is not of its column's
// type) is reported as a [*RowError] with its line number and text: once,
// to [Config.OnMalformed] (the host's dead-letter or alert path), and on
// every read by [Connector.Malformed]. It never stops the other rows, and
// its text is never lost: a rewrite keeps it byte for byte. A malformed
// row is not a deletion: while the file has one, no deletions are
// inferred at all (an unterminated quote can swallow the rows after it,
// and their keys must not be taken as deleted). Patches to a key whose
// row is malformed fail with a permanent error naming the line.
//
// # Writes
//
// Apply reads the file, applies each patch to its row independently (a
// failing patch leaves its row as it was), and, if anything changed,
// writes the whole file to a temporary file in the same directory, syncs
// it, renames it over the file and syncs the directory: a crash at any
// point leaves either the old file or the new one, never a mix. Rows not
// patched keep their exact text (quoting, line endings, a UTF-8 BOM,
// columns the Config does not map). A row's version tag is the hash of its
// cells: Patch.IfMatch fails with [connector.ErrConflict] when the row
// changed since it was read, and Create fails so when the key exists. If
// the file changes between Apply's read and its rename (someone saved it
// meanwhile), the whole call fails with a transient error and nothing is
// written, so that the next attempt starts from what they saved. (Between
// that last check and the rename there remains a window of microseconds:
// a program that rewrites the file in place then wins or loses as a whole
// file, never a mix.) Patch.IdempotencyKey is not kept: a write is a set
// of cell values, which repeated has no second effect unless the row was
// edited in between.
//
// A Connector is safe for concurrent use; two Connectors (or processes) on
// one file are not.
package csvfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Compile-time checks of the abilities a Connector offers.
var (
	_ connector.Connector   = (*Connector)(nil)
	_ connector.Getter      = (*Connector)(nil)
	_ connector.Scanner     = (*Connector)(nil)
	_ connector.ScanStarter = (*Connector)(nil)
)

// DefaultMaxFileSize is the largest file a Connector reads when
// [Config.MaxFileSize] is zero: 64 MiB.
const DefaultMaxFileSize = 64 << 20

// Errors a Connector returns, wrapped with the file, line, record and
// field they are about.
var (
	// ErrMalformedRow is the cause of every [*RowError].
	ErrMalformedRow = errors.New("malformed row")
	// ErrDamagedSnapshot: the snapshot file is not one this package
	// wrote (its checksum or structure is wrong).
	ErrDamagedSnapshot = errors.New("damaged snapshot")
	// ErrBadFile: the file cannot be used at all (no header, no key
	// column, too large).
	ErrBadFile = errors.New("unusable CSV file")
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("invalid csvfile config")
	// ErrFileChanged: the file changed while Apply was writing it.
	ErrFileChanged = errors.New("the file changed while it was being rewritten")
)

// Config describes one CSV file.
type Config struct {
	// Path is the CSV file. It must exist and have a header row.
	Path string
	// Key is the header of the key column. Required.
	Key string
	// Columns maps headers to field names. Nil maps every column but
	// the key to a field named after its header; otherwise only the
	// columns listed are fields (the others are kept, unread).
	Columns map[string]string
	// Types gives the Type of a field's column, by field name; a field
	// not listed is a String.
	Types map[string]Type
	// Snapshot is where the snapshot is kept; empty means
	// ".<name>.concord-snapshot" beside Path.
	Snapshot string
	// Comma is the separator; zero means ','.
	Comma rune
	// AllowDeletes lets Patch.Delete remove rows; without it such a
	// patch fails with a permanent error.
	AllowDeletes bool
	// MaxFileSize bounds the file's size in bytes; zero means
	// DefaultMaxFileSize.
	MaxFileSize int64
	// OnMalformed, if not nil, is called once for each malformed row
	// (once per distinct text), from within Changes, without
	// the Connector's lock held. It must not call the Connector.
	OnMalformed func(*RowError)
}

// RowError reports a row that cannot be read: its line, its key when that
// could be read, its text as in the file, and why.
type RowError struct {
	Path string
	Line int    // the line the row starts on, 1-based
	Key  string // empty when the key cell could not be read
	Text string // the row's text, as in the file
	Err  error
}

// Error names the file, line, key and reason.
func (e *RowError) Error() string {
	s := fmt.Sprintf("%s: line %d", e.Path, e.Line)
	if e.Key != "" {
		s += fmt.Sprintf(" (key %q)", e.Key)
	}
	return s + fmt.Sprintf(": %v: %v", ErrMalformedRow, e.Err)
}

// Unwrap returns ErrMalformedRow and the cause.
func (e *RowError) Unwrap() []error { return []error{ErrMalformedRow, e.Err} }

// FieldError reports a value that cannot be written to a field's column.
type FieldError struct {
	Key   string
	Field string
	Value concord.Value
	Err   error
}

// Error names the record, field, value and reason.
func (e *FieldError) Error() string {
	return fmt.Sprintf("record %q, field %q: cannot write %#v: %v", e.Key, e.Field, e.Value, e.Err)
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// Connector is a CSV file as a system. Create it with [New].
type Connector struct {
	cfg      Config
	fields   map[string]string // header -> field
	headers  map[string]string // field -> header
	snapPath string
	maxSize  int64

	mu sync.Mutex

	// beforeRename, if set (by tests), runs after the temporary file is
	// written and synced, before the rename; an error aborts the write.
	beforeRename func(tmp string) error
}

// New checks cfg and returns a Connector. It does not touch the file.
func New(cfg Config) (*Connector, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if cfg.Path == "" {
		return nil, bad("Path is empty")
	}
	if cfg.Key == "" {
		return nil, bad("Key is empty")
	}
	if cfg.Comma == 0 {
		cfg.Comma = ','
	}
	if cfg.Comma == '"' || cfg.Comma == '\r' || cfg.Comma == '\n' || cfg.Comma == utf8.RuneError || !utf8.ValidRune(cfg.Comma) {
		return nil, bad("Comma %q cannot separate cells", cfg.Comma)
	}
	if cfg.MaxFileSize < 0 {
		return nil, bad("MaxFileSize %d is negative", cfg.MaxFileSize)
	}
	c := &Connector{cfg: cfg, fields: map[string]string{}, headers: map[string]string{}, maxSize: cfg.MaxFileSize}
	if c.maxSize == 0 {
		c.maxSize = DefaultMaxFileSize
	}
	for h, f := range cfg.Columns {
		switch {
		case h == cfg.Key:
			return nil, bad("Columns maps the key column %q to a field", h)
		case f == "":
			return nil, bad("Columns maps header %q to an empty field name", h)
		case c.headers[f] != "":
			return nil, bad("Columns maps both %q and %q to field %q", c.headers[f], h, f)
		}
		c.fields[h], c.headers[f] = f, h
	}
	for f, t := range cfg.Types {
		if !t.valid() {
			return nil, bad("field %q has unknown type %v", f, t)
		}
		if cfg.Columns != nil && c.headers[f] == "" {
			return nil, bad("Types names field %q, which Columns does not map", f)
		}
	}
	c.snapPath = cfg.Snapshot
	if c.snapPath == "" {
		dir, name := filepath.Split(cfg.Path)
		c.snapPath = filepath.Join(dir, "."+name+".concord-snapshot")
	}
	return c, nil
}

// view is one read of the file, mapped to records.
type view struct {
	f         *file
	keyIndex  int
	fieldOf   []string // by column index: the field name, "" for unmapped
	byKey     map[string]*row
	recs      map[string]concord.Record
	order     []string // keys of good rows, in file order
	malformed []*RowError
}

// read reads and maps the file.
func (c *Connector) read() (*view, []byte, error) {
	data, err := c.readBytes()
	if err != nil {
		return nil, nil, err
	}
	f, err := parseFile(data, c.cfg.Comma)
	if err != nil {
		return nil, nil, connector.Permanent(fmt.Errorf("%s: %w: %w", c.cfg.Path, ErrBadFile, err))
	}
	v := &view{f: f, keyIndex: -1, fieldOf: make([]string, len(f.header)),
		byKey: map[string]*row{}, recs: map[string]concord.Record{}}
	seen := map[string]bool{}
	for i, h := range f.header {
		if seen[h] {
			return nil, nil, connector.Permanent(fmt.Errorf("%s: %w: header %q appears twice", c.cfg.Path, ErrBadFile, h))
		}
		seen[h] = true
		switch {
		case h == c.cfg.Key:
			v.keyIndex = i
		case c.cfg.Columns == nil:
			v.fieldOf[i] = h
		default:
			v.fieldOf[i] = c.fields[h]
		}
	}
	if v.keyIndex < 0 {
		return nil, nil, connector.Permanent(fmt.Errorf("%s: %w: no key column %q in the header", c.cfg.Path, ErrBadFile, c.cfg.Key))
	}
	for h := range c.fields {
		if !seen[h] {
			return nil, nil, connector.Permanent(fmt.Errorf("%s: %w: no column %q in the header", c.cfg.Path, ErrBadFile, h))
		}
	}
	for _, r := range f.rows {
		if r.err == nil {
			r.err = c.mapRow(v, r)
		}
		if r.err != nil {
			key := r.malformedKey(v.keyIndex)
			if r.cells != nil {
				key = r.cells[v.keyIndex]
			}
			if !utf8.ValidString(key) {
				key = ""
			}
			v.malformed = append(v.malformed, &RowError{Path: c.cfg.Path, Line: r.line, Key: key, Text: strings.TrimPrefix(r.raw, r.lead), Err: r.err})
			if key != "" && v.byKey[key] == nil {
				v.byKey[key] = r // a patch to it must fail, not create a second row
			}
		}
	}
	return v, data, nil
}

// mapRow reads a good row's cells into a record, or says why it cannot.
func (c *Connector) mapRow(v *view, r *row) error {
	key := r.cells[v.keyIndex]
	switch {
	case key == "":
		return errors.New("the key cell is empty")
	case !utf8.ValidString(key):
		return errors.New("the key is not valid UTF-8")
	}
	if prev, dup := v.byKey[key]; dup {
		return fmt.Errorf("key %q is already on line %d", key, prev.line)
	}
	rec := concord.Record{Key: key, Fields: map[string]concord.Value{}, Tag: r.hash()}
	for i, cell := range r.cells {
		field := v.fieldOf[i]
		if field == "" {
			continue
		}
		val, err := c.cfg.Types[field].parse(cell)
		if err != nil {
			return fmt.Errorf("column %q (field %q, %v): %w", v.f.header[i], field, c.cfg.Types[field], err)
		}
		rec.Fields[field] = val
	}
	v.byKey[key] = r
	v.recs[key] = rec
	v.order = append(v.order, key)
	return nil
}

func (c *Connector) readBytes() ([]byte, error) {
	fh, err := os.Open(c.cfg.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, connector.Permanent(fmt.Errorf("%w: %w", ErrBadFile, err))
		}
		return nil, connector.Transient(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, connector.Transient(err)
	}
	if st.Size() > c.maxSize {
		return nil, connector.Permanent(fmt.Errorf("%s: %w: %d bytes; the limit is %d", c.cfg.Path, ErrBadFile, st.Size(), c.maxSize))
	}
	data, err := io.ReadAll(io.LimitReader(fh, c.maxSize+1))
	if err != nil {
		return nil, connector.Transient(err)
	}
	if int64(len(data)) > c.maxSize {
		return nil, connector.Permanent(fmt.Errorf("%s: %w: more than %d bytes", c.cfg.Path, ErrBadFile, c.maxSize))
	}
	return data, nil
}

// Malformed reads the file and returns its malformed rows, in file order.
func (c *Connector) Malformed(ctx context.Context) ([]*RowError, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, _, err := c.read()
	if err != nil {
		return nil, err
	}
	return v.malformed, nil
}

// cursor is a parsed Cursor: a snapshot epoch and a sequence number.
func parseCursor(cur connector.Cursor) (epoch string, seq uint64, err error) {
	if cur == "" {
		return "", 0, nil
	}
	epoch, n, ok := strings.Cut(string(cur), ":")
	if ok {
		seq, err = strconv.ParseUint(n, 10, 64)
	}
	if !ok || err != nil || epoch == "" {
		return "", 0, connector.Permanent(fmt.Errorf("csvfile: malformed cursor %q", cur))
	}
	return epoch, seq, nil
}

// Changes compares the file with the snapshot, records what changed, and
// returns up to limit records changed after cursor, in the order of their
// changes, each with its current state; rows gone from the file come with
// Deleted set. See the package documentation.
func (c *Connector) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	if limit < 1 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("csvfile: Changes: limit %d is below 1", limit))
	}
	epoch, after, err := parseCursor(cursor)
	if err != nil {
		return connector.Batch{}, err
	}
	c.mu.Lock()
	v, snap, fresh, err := c.refresh()
	c.mu.Unlock()
	if err != nil {
		return connector.Batch{}, err
	}
	c.report(fresh)
	if epoch != snap.Epoch {
		after = 0 // from another snapshot: from the beginning
	}
	type change struct {
		seq uint64
		rec concord.Record
	}
	var all []change
	for k, r := range snap.Rows {
		if r.Seq > after {
			if rec, ok := v.recs[k]; ok {
				all = append(all, change{r.Seq, rec})
			}
		}
	}
	for k, seq := range snap.Deleted {
		if seq > after {
			all = append(all, change{seq, concord.Record{Key: k, Deleted: true}})
		}
	}
	slices.SortFunc(all, func(a, b change) int { return cmpUint(a.seq, b.seq) })
	b := connector.Batch{Next: cursor}
	if epoch != snap.Epoch {
		b.Next = connector.Cursor(snap.Epoch + ":" + strconv.FormatUint(after, 10))
	}
	if len(all) > limit {
		all, b.More = all[:limit], true
	}
	for _, ch := range all {
		b.Records = append(b.Records, ch.rec)
		b.Next = connector.Cursor(snap.Epoch + ":" + strconv.FormatUint(ch.seq, 10))
	}
	return b, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// refresh reads the file and brings the snapshot up to date with it,
// saving it if anything changed. It returns the malformed rows not
// reported before. The caller holds c.mu.
func (c *Connector) refresh() (*view, *snapshot, []*RowError, error) {
	snap, err := loadSnapshot(c.snapPath)
	if err != nil {
		if errors.Is(err, ErrDamagedSnapshot) {
			return nil, nil, nil, connector.Permanent(err)
		}
		return nil, nil, nil, connector.Transient(err)
	}
	v, _, err := c.read()
	if err != nil {
		return nil, nil, nil, err
	}
	changed := false
	for _, k := range v.order {
		h := v.recs[k].Tag
		if r, ok := snap.Rows[k]; ok && r.Hash == h {
			continue
		}
		snap.Seq++
		snap.Rows[k] = snapRow{Hash: h, Seq: snap.Seq}
		delete(snap.Deleted, k)
		changed = true
	}
	if len(v.malformed) == 0 {
		for _, k := range sortedKeys(snap.Rows) {
			if _, ok := v.recs[k]; !ok {
				snap.Seq++
				delete(snap.Rows, k)
				snap.Deleted[k] = snap.Seq
				changed = true
			}
		}
	}
	var fresh []*RowError
	current := map[string]bool{}
	for _, m := range v.malformed {
		h := textHash(m)
		current[h] = true
		if !snap.Malformed[h] {
			fresh = append(fresh, m)
			changed = true
		}
	}
	if len(current) != len(snap.Malformed) {
		changed = true
	}
	snap.Malformed = current
	if changed {
		if err := snap.save(c.snapPath); err != nil {
			return nil, nil, nil, connector.Transient(fmt.Errorf("csvfile: saving snapshot %s: %w", c.snapPath, err))
		}
	}
	return v, snap, fresh, nil
}

// report hands newly seen malformed rows to OnMalformed.
func (c *Connector) report(fresh []*RowError) {
	if c.cfg.OnMalformed == nil {
		return
	}
	for _, m := range fresh {
		c.cfg.OnMalformed(m)
	}
}

func textHash(m *RowError) string {
	r := row{cells: []string{strconv.Itoa(m.Line), m.Text}}
	return r.hash()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Get returns the records of the file with the given keys, in the order
// of keys; missing keys, malformed rows and repeated keys are skipped.
func (c *Connector) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	v, _, err := c.read()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []concord.Record
	seen := map[string]bool{}
	for _, k := range keys {
		if rec, ok := v.recs[k]; ok && !seen[k] {
			seen[k] = true
			out = append(out, rec)
		}
	}
	return out, nil
}

// StartScan compares the file with the snapshot, as Changes does, and
// returns the cursor of the snapshot's latest change (an edit of the file
// after that has a later one) and the number of well-formed rows.
func (c *Connector) StartScan(ctx context.Context) (connector.ScanStart, error) {
	if err := ctx.Err(); err != nil {
		return connector.ScanStart{}, err
	}
	c.mu.Lock()
	v, snap, fresh, err := c.refresh()
	c.mu.Unlock()
	if err != nil {
		return connector.ScanStart{}, err
	}
	c.report(fresh)
	return connector.ScanStart{
		Feed:     connector.Cursor(snap.Epoch + ":" + strconv.FormatUint(snap.Seq, 10)),
		Estimate: int64(len(v.recs)),
	}, nil
}

// Scan returns up to limit records in key order after the key that cursor
// names (the cursor is the last key returned). Malformed rows are skipped
// (see [Connector.Malformed]).
func (c *Connector) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	if limit < 1 {
		return connector.Batch{}, connector.Permanent(fmt.Errorf("csvfile: Scan: limit %d is below 1", limit))
	}
	c.mu.Lock()
	v, _, err := c.read()
	c.mu.Unlock()
	if err != nil {
		return connector.Batch{}, err
	}
	keys := sortedKeys(v.recs)
	i, found := slices.BinarySearch(keys, string(cursor))
	if found {
		i++
	}
	b := connector.Batch{Next: cursor}
	for ; i < len(keys) && len(b.Records) < limit; i++ {
		b.Records = append(b.Records, v.recs[keys[i]])
		b.Next = connector.Cursor(keys[i])
	}
	b.More = i < len(keys)
	return b, nil
}
