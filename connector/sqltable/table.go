package sqltable

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// Table is a connector for one database table. It is safe for concurrent
// use; it holds no connection of its own (the *sql.DB pools them).
type Table struct {
	cfg      Config
	fp       string
	table    string // quoted table name
	trackCol string // the tracking column's configured name
	// sel is the select list; the columns come in this order: key
	// columns, UpdatedAt, Version, Deleted (each if configured), fields.
	sel      string
	keyList  string // quoted key columns, comma-separated
	orderBy  string // tracking column, key columns
	trackIdx int    // index of the tracking column in a selected row
	updIdx   int    // index of UpdatedAt, or -1
	verIdx   int    // index of Version, or -1
	delIdx   int    // index of Deleted, or -1
	fldIdx   int    // index of the first field
	ncols    int
	fields   map[string]Type

	mu    sync.Mutex
	stmts map[string]string // SQL of updates by the fields they set
}

var (
	_ connector.Connector   = (*Table)(nil)
	_ connector.Getter      = (*Table)(nil)
	_ connector.Scanner     = (*Table)(nil)
	_ connector.ScanStarter = (*Table)(nil)
)

// New checks cfg and returns a connector for the table. It does not touch
// the database: a missing table or column shows in the first call.
func New(cfg Config) (*Table, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg.Key = append([]Column(nil), cfg.Key...)
	cfg.Fields = append([]Column(nil), cfg.Fields...)
	t := &Table{cfg: cfg, fp: cfg.fingerprint(), table: quote(cfg.Table), updIdx: -1, verIdx: -1, delIdx: -1,
		fields: map[string]Type{}, stmts: map[string]string{}}
	var sel, keys []string
	for _, k := range cfg.Key {
		keys = append(keys, quote(k.Name))
	}
	sel = append(sel, keys...)
	if cfg.UpdatedAt != "" {
		t.updIdx = len(sel)
		sel = append(sel, t.timeExpr(cfg.UpdatedAt))
	}
	if cfg.Version != "" {
		t.verIdx = len(sel)
		sel = append(sel, quote(cfg.Version))
	}
	if cfg.Deleted != "" {
		t.delIdx = len(sel)
		sel = append(sel, quote(cfg.Deleted))
	}
	t.fldIdx = len(sel)
	for _, f := range cfg.Fields {
		sel = append(sel, quote(f.Name))
		t.fields[f.Name] = f.Type
	}
	t.ncols = len(sel)
	t.sel = strings.Join(sel, ", ")
	t.keyList = strings.Join(keys, ", ")
	if cfg.Track == TrackUpdatedAt {
		t.trackCol, t.trackIdx = cfg.UpdatedAt, t.updIdx
	} else {
		t.trackCol, t.trackIdx = cfg.Version, t.verIdx
	}
	t.orderBy = quote(t.trackCol) + ", " + t.keyList
	return t, nil
}

// timeExpr selects the UpdatedAt column: as stored text on SQLite, so
// that the cursor compares exactly what the table holds.
func (t *Table) timeExpr(col string) string {
	if t.cfg.Dialect == SQLite {
		return "CAST(" + quote(col) + " AS TEXT)"
	}
	return quote(col)
}

// args numbers placeholders for one statement.
type args struct {
	d    Dialect
	vals []any
}

func (a *args) add(v any) string {
	a.vals = append(a.vals, v)
	return a.d.placeholder(len(a.vals))
}

// tuple returns "(p1, p2, ...)" or "p1" for one value.
func (a *args) tuple(vals []any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = a.add(v)
	}
	if len(ph) == 1 {
		return ph[0]
	}
	return "(" + strings.Join(ph, ", ") + ")"
}

func (t *Table) keyTuple() string {
	if len(t.cfg.Key) == 1 {
		return t.keyList
	}
	return "(" + t.keyList + ")"
}

// row is one row read from the table.
type row struct {
	rec   concord.Record
	track string // tracking value, text form
	keys  []any  // key column values
}

// scanRows reads rows of the select list; each must be used before the
// next is read (fn is called per row).
func (t *Table) scanRows(ctx context.Context, query string, a []any, fn func(row) (bool, error)) error {
	rows, err := t.cfg.DB.QueryContext(ctx, query, a...)
	if err != nil {
		return t.dbErr(ctx, err)
	}
	defer rows.Close()
	vals := make([]any, t.ncols)
	ptrs := make([]any, t.ncols)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return t.dbErr(ctx, err)
		}
		r, err := t.decodeRow(vals)
		if err != nil {
			return err
		}
		more, err := fn(r)
		if err != nil || !more {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return t.dbErr(ctx, err)
	}
	return nil
}

// decodeRow converts a selected row to a record.
func (t *Table) decodeRow(vals []any) (row, error) {
	key, keys, err := t.keyString(vals[:len(t.cfg.Key)])
	if err != nil {
		return row{}, connector.Permanent(fmt.Errorf("sqltable %s: a row with an unreadable key: %w", t.cfg.Table, err))
	}
	fail := func(field, reason string) error {
		return connector.Permanent(&FieldError{Table: t.cfg.Table, Key: key, Field: field, Reason: reason, Err: ErrValue})
	}
	r := row{keys: keys, rec: concord.Record{Key: key}}
	if t.updIdx >= 0 {
		m, err := decodeTime(vals[t.updIdx])
		if err != nil {
			return row{}, fail(t.cfg.UpdatedAt, err.Error())
		}
		r.rec.Modified = m
	}
	if r.track, err = t.trackText(vals[t.trackIdx]); err != nil {
		return row{}, fail(t.trackCol, err.Error())
	}
	if t.verIdx >= 0 {
		v, err := decode(Int64, vals[t.verIdx])
		if err != nil {
			return row{}, fail(t.cfg.Version, err.Error())
		}
		if v != nil {
			r.rec.Tag = fmt.Sprint(v)
		}
	} else {
		r.rec.Tag = r.track
	}
	if t.delIdx >= 0 {
		d, err := decode(Bool, vals[t.delIdx])
		if err != nil {
			return row{}, fail(t.cfg.Deleted, err.Error())
		}
		if d == true {
			r.rec.Deleted = true
			return r, nil
		}
	}
	r.rec.Fields = make(map[string]concord.Value, len(t.cfg.Fields))
	for i, f := range t.cfg.Fields {
		v, err := decode(f.Type, vals[t.fldIdx+i])
		if err != nil {
			return row{}, fail(f.Name, err.Error())
		}
		r.rec.Fields[f.Name] = v
	}
	return r, nil
}

// live is the condition that a row is not soft-deleted.
func (t *Table) live() string {
	if t.cfg.Deleted == "" {
		return "TRUE"
	}
	d := quote(t.cfg.Deleted)
	return "(" + d + " IS NULL OR NOT " + d + ")"
}

// Changes returns up to limit rows changed after cursor, in (tracking
// value, key) order. See the package documentation for what the cursor
// guarantees. A limit below 1 is taken as 1.
func (t *Table) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	limit = max(limit, 1)
	st, err := t.decodeCursor(cursor, false)
	if err != nil {
		return connector.Batch{}, err
	}
	if st.At == nil && st.Hi != nil {
		st.Over = st.Hi // a new pass re-reads the window before Hi
	}
	seen := newSeenSet(st.Seen)
	var out []concord.Record
	var tracks []string // tracking values of out
	more := false
	visited := false
	for done := false; !done; {
		if err := ctx.Err(); err != nil {
			return connector.Batch{}, err
		}
		a := &args{d: t.cfg.Dialect}
		var where string
		switch {
		case st.At != nil:
			ta, _ := t.trackArg(st.At.T)
			where = "(" + t.orderBy + ") > (" + a.add(ta) + ", " + strings.Trim(a.tuple(st.At.K), "()") + ")"
		case st.Hi != nil:
			ws, err := t.windowStart(*st.Hi)
			if err != nil {
				return connector.Batch{}, badCursor("damaged tracking value: %v", err)
			}
			where = quote(t.trackCol) + " >= " + a.add(ws)
		default:
			where = "TRUE"
		}
		q := "SELECT " + t.sel + " FROM " + t.table + " WHERE " + where + " ORDER BY " + t.orderBy + " LIMIT " + fmt.Sprint(limit+1)
		n := 0
		err := t.scanRows(ctx, q, a.vals, func(r row) (bool, error) {
			n++
			if len(out) == limit {
				more, done = true, true
				return false, nil
			}
			visited = true
			st.At = &pos{T: r.track, K: r.keys}
			if st.Over != nil && t.compareTrack(r.track, *st.Over) <= 0 {
				kh, ch := recordHashes(r)
				if seen.has(kh, ch) {
					seen.put(kh, ch) // still in the window: keep remembering it
					return true, nil
				}
			}
			out = append(out, r.rec)
			tracks = append(tracks, r.track)
			return true, nil
		})
		if err != nil {
			return connector.Batch{}, err
		}
		if n < limit+1 {
			done = true
		}
	}
	// Remember what was delivered, for the next pass's overlap: only the
	// last maxSeen rows can stay in the list.
	for i := max(0, len(out)-maxSeen); i < len(out); i++ {
		seen.put(recordHashes(row{rec: out[i], track: tracks[i]}))
	}
	if !more {
		// The pass is complete: the next one starts a window before the
		// last row read.
		if visited || st.At != nil {
			hi := st.At.T
			st.Hi = &hi
		}
		st.At, st.Over = nil, nil
	}
	st.Seen = seen.bytes()
	return connector.Batch{Records: out, Next: t.encodeCursor(st), More: more}, nil
}

// recordHashes returns 64-bit hashes of a row's key and of its content
// (key, tracking value, tag, deletion and fields), from SHA-256.
func recordHashes(r row) (uint64, uint64) {
	kh := sha256.Sum256([]byte(r.rec.Key))
	b := []byte(r.rec.Key)
	b = append(b, 0)
	b = append(b, r.track...)
	b = append(b, 0)
	b = append(b, r.rec.Tag...)
	if r.rec.Deleted {
		b = append(b, 0, 'D')
	} else {
		b = append(b, 0, 'L')
		var err error
		if b, err = concord.AppendCanonical(b, r.rec.Fields); err != nil {
			return binary.BigEndian.Uint64(kh[:]), 0 // cannot happen: decoded values only
		}
	}
	ch := sha256.Sum256(b)
	return binary.BigEndian.Uint64(kh[:]), binary.BigEndian.Uint64(ch[:])
}

// seenSet remembers the content hash last delivered per key hash, for the
// most recent maxSeen keys.
type seenSet struct {
	order []uint64 // key hashes, oldest first
	by    map[uint64]uint64
}

func newSeenSet(b []byte) *seenSet {
	s := &seenSet{by: make(map[uint64]uint64, len(b)/16)}
	for i := 0; i+16 <= len(b); i += 16 {
		s.put(binary.BigEndian.Uint64(b[i:]), binary.BigEndian.Uint64(b[i+8:]))
	}
	return s
}

func (s *seenSet) has(kh, ch uint64) bool {
	got, ok := s.by[kh]
	return ok && got == ch
}

func (s *seenSet) put(kh, ch uint64) {
	if _, ok := s.by[kh]; ok {
		if i := indexOf(s.order, kh); i >= 0 {
			s.order = append(s.order[:i], s.order[i+1:]...)
		}
	}
	s.by[kh] = ch
	s.order = append(s.order, kh)
	if len(s.order) > maxSeen {
		delete(s.by, s.order[0])
		s.order = s.order[1:]
	}
}

func indexOf(xs []uint64, x uint64) int {
	for i := len(xs) - 1; i >= 0; i-- {
		if xs[i] == x {
			return i
		}
	}
	return -1
}

func (s *seenSet) bytes() []byte {
	if len(s.order) == 0 {
		return nil
	}
	b := make([]byte, 0, 16*len(s.order))
	for _, kh := range s.order {
		b = binary.BigEndian.AppendUint64(b, kh)
		b = binary.BigEndian.AppendUint64(b, s.by[kh])
	}
	return b
}

// getChunk bounds how many keys one Get query asks for.
const getChunk = 200

// Get returns the live records with the given keys; keys that name no row
// (or a soft-deleted one, or that are not well-formed keys of this table)
// are absent from the result.
func (t *Table) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	var out []concord.Record
	want := map[string]bool{}
	var tuples [][]any
	for _, k := range keys {
		if want[k] {
			continue
		}
		ka, err := t.keyArgs(k)
		if err != nil {
			continue
		}
		want[k] = true
		tuples = append(tuples, ka)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for len(tuples) > 0 {
		n := min(len(tuples), getChunk)
		a := &args{d: t.cfg.Dialect}
		in := make([]string, n)
		for i, ka := range tuples[:n] {
			in[i] = a.tuple(ka)
		}
		tuples = tuples[n:]
		q := "SELECT " + t.sel + " FROM " + t.table + " WHERE " + t.keyTuple() + " IN (" + strings.Join(in, ", ") + ") AND " + t.live()
		err := t.scanRows(ctx, q, a.vals, func(r row) (bool, error) {
			if want[r.rec.Key] && !r.rec.Deleted {
				out = append(out, r.rec)
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// StartScan returns a feed cursor at the greatest tracking value in the
// table now (a later pass of Changes starts the overlap window before it,
// so a row committed late with an earlier value is still read) and the
// number of live rows.
func (t *Table) StartScan(ctx context.Context) (connector.ScanStart, error) {
	var st connector.ScanStart
	q := "SELECT " + quote(t.trackCol) + " FROM " + t.table + " WHERE " + quote(t.trackCol) + " IS NOT NULL ORDER BY " + quote(t.trackCol) + " DESC LIMIT 1"
	var v any
	switch err := t.cfg.DB.QueryRowContext(ctx, q).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows): // an empty table: the feed from its start
	case err != nil:
		return connector.ScanStart{}, t.dbErr(ctx, err)
	default:
		hi, err := t.trackText(v)
		if err != nil {
			return connector.ScanStart{}, connector.Permanent(&FieldError{Table: t.cfg.Table, Field: t.trackCol, Reason: err.Error(), Err: ErrValue})
		}
		st.Feed = t.encodeCursor(cursorState{Hi: &hi})
	}
	if err := t.cfg.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.table+" WHERE "+t.live()).Scan(&st.Estimate); err != nil {
		return connector.ScanStart{}, t.dbErr(ctx, err)
	}
	return st, nil
}

// Scan returns up to limit live records after cursor in key order. A
// limit below 1 is taken as 1.
func (t *Table) Scan(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	limit = max(limit, 1)
	st, err := t.decodeCursor(cursor, true)
	if err != nil {
		return connector.Batch{}, err
	}
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	a := &args{d: t.cfg.Dialect}
	where := t.live()
	if st.At != nil {
		where += " AND " + t.keyTuple() + " > " + a.tuple(st.At.K)
	}
	q := "SELECT " + t.sel + " FROM " + t.table + " WHERE " + where + " ORDER BY " + t.keyList + " LIMIT " + fmt.Sprint(limit+1)
	var b connector.Batch
	var last []any
	err = t.scanRows(ctx, q, a.vals, func(r row) (bool, error) {
		if len(b.Records) == limit {
			b.More = true
			return false, nil
		}
		b.Records = append(b.Records, r.rec)
		last = r.keys
		return true, nil
	})
	if err != nil {
		return connector.Batch{}, err
	}
	if last != nil {
		b.Next = t.encodeCursor(cursorState{S: true, At: &pos{K: last}})
	} else {
		b.Next = cursor
	}
	return b, nil
}
