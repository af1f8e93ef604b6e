package sqltable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/concordsync/concord/connector"
)

// maxStmts bounds the cache of generated statements.
const maxStmts = 1024

// ConditionalWrites reports true (connector.Conditional): IfMatch is
// compared with the Version column (or the UpdatedAt value), and a Create
// of a key with a live row fails with connector.ErrConflict.
func (t *Table) ConditionalWrites() bool { return true }

// Apply writes each patch in its own transaction and returns one Result
// per patch, in order. A patch that fails does not stop the others. A
// cancelled ctx fails the whole call (with ctx's error), whatever was
// already applied.
//
// A patch is refused with connector.ErrPermanent (and a *FieldError) if
// it names a field that is not a configured field column or a value that
// does not fit the column's declared type; with ErrPermanent and
// ErrNotPermitted if it creates or deletes where the configuration does not
// permit it. IfMatch is compared with the Version column (or the UpdatedAt
// value, without one): a mismatch fails with connector.ErrConflict, as does
// Create when a live row with the key exists. A patch (without Create) to a
// missing or soft-deleted row fails with connector.ErrNotFound.
func (t *Table) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	res := make([]connector.Result, len(patches))
	for i, p := range patches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res[i] = t.applyOne(ctx, p)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// write is one prepared row write.
type write struct {
	p     connector.Patch
	keys  []any
	names []string // fields set, sorted
	vals  []any    // their arguments
}

func (t *Table) applyOne(ctx context.Context, p connector.Patch) connector.Result {
	r := connector.Result{Key: p.Key}
	w, err := t.prepare(p)
	if err != nil {
		r.Err = err
		return r
	}
	tx, err := t.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		r.Err = t.recordErr(ctx, p.Key, err)
		return r
	}
	defer func() { _ = tx.Rollback() }()
	switch {
	case p.Delete:
		err = t.delete(ctx, tx, w, &r)
	case p.Create:
		err = t.create(ctx, tx, w, &r)
	default:
		err = t.update(ctx, tx, w, &r)
	}
	if err == nil {
		err = tx.Commit()
		if err != nil {
			err = t.recordErr(ctx, p.Key, err)
		}
	}
	if err != nil {
		return connector.Result{Key: p.Key, Err: err}
	}
	return r
}

// prepare checks a patch against the configuration and converts its values.
func (t *Table) prepare(p connector.Patch) (*write, error) {
	keys, err := t.keyArgs(p.Key)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("sqltable %s: record %q: %w", t.cfg.Table, p.Key, err))
	}
	w := &write{p: p, keys: keys}
	if p.Delete {
		if !t.cfg.AllowDelete {
			return nil, connector.Permanent(fmt.Errorf("sqltable %s: record %q: delete %w (Config.AllowDelete is false)", t.cfg.Table, p.Key, ErrNotPermitted))
		}
		return w, nil
	}
	if p.Create && !t.cfg.AllowCreate {
		return nil, connector.Permanent(fmt.Errorf("sqltable %s: record %q: create (INSERT) %w (Config.AllowCreate is false)", t.cfg.Table, p.Key, ErrNotPermitted))
	}
	w.names = make([]string, 0, len(p.Set))
	for name := range p.Set {
		w.names = append(w.names, name)
	}
	slices.Sort(w.names)
	w.vals = make([]any, len(w.names))
	for i, name := range w.names {
		typ, ok := t.fields[name]
		if !ok {
			return nil, connector.Permanent(&FieldError{Table: t.cfg.Table, Key: p.Key, Field: name, Reason: "the patch may set only " + t.fieldList(), Err: ErrUnknownField})
		}
		v, err := encode(t.cfg.Dialect, typ, p.Set[name])
		if err != nil {
			return nil, connector.Permanent(&FieldError{Table: t.cfg.Table, Key: p.Key, Field: name, Reason: fmt.Sprintf("declared %v: %v", typ, err), Err: ErrValue})
		}
		w.vals[i] = v
	}
	return w, nil
}

func (t *Table) fieldList() string {
	names := make([]string, len(t.cfg.Fields))
	for i, f := range t.cfg.Fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// keyCond appends "k1 = ? AND k2 = ?".
func (t *Table) keyCond(a *args, keys []any) string {
	conds := make([]string, len(keys))
	for i, k := range keys {
		conds[i] = quote(t.cfg.Key[i].Name) + " = " + a.add(k)
	}
	return strings.Join(conds, " AND ")
}

// stamp appends the assignments every write makes: UpdatedAt to now and
// the next Version.
func (t *Table) stamp(a *args) []string {
	var set []string
	if t.cfg.UpdatedAt != "" {
		now, err := encodeTime(t.cfg.Dialect, t.cfg.Now())
		if err != nil {
			now, _ = encodeTime(t.cfg.Dialect, time.Now())
		}
		set = append(set, quote(t.cfg.UpdatedAt)+" = "+a.add(now))
	}
	if t.cfg.Version != "" {
		set = append(set, quote(t.cfg.Version)+" = "+t.nextVersion(false))
	}
	return set
}

// nextVersion is the SQL of the next Version value.
func (t *Table) nextVersion(insert bool) string {
	switch {
	case t.cfg.Track == TrackVersion && t.cfg.Dialect == PostgreSQL:
		return "nextval('" + quote(t.cfg.Sequence) + "')"
	case t.cfg.Track == TrackVersion:
		return "(SELECT COALESCE(MAX(" + quote(t.cfg.Version) + "), 0) + 1 FROM " + t.table + ")"
	case insert:
		return "1"
	}
	return "COALESCE(" + quote(t.cfg.Version) + ", 0) + 1"
}

// returning is the RETURNING clause: UpdatedAt, Version.
func (t *Table) returning() string {
	var cols []string
	if t.cfg.UpdatedAt != "" {
		cols = append(cols, t.timeExpr(t.cfg.UpdatedAt))
	}
	if t.cfg.Version != "" {
		cols = append(cols, quote(t.cfg.Version))
	}
	return " RETURNING " + strings.Join(cols, ", ")
}

// tagCond appends the IfMatch precondition; ok is false if the tag cannot
// be any row's tag.
func (t *Table) tagCond(a *args, tag string) (string, bool) {
	if t.cfg.Version != "" {
		n, err := strconv.ParseInt(tag, 10, 64)
		if err != nil {
			return "", false
		}
		return quote(t.cfg.Version) + " = " + a.add(n), true
	}
	if t.cfg.Dialect == PostgreSQL {
		at, err := time.Parse(time.RFC3339Nano, tag)
		if err != nil {
			return "", false
		}
		return quote(t.cfg.UpdatedAt) + " = " + a.add(at), true
	}
	return t.timeExpr(t.cfg.UpdatedAt) + " = " + a.add(tag), true
}

// written reads the RETURNING row into r; found is false if no row was
// written.
func (t *Table) written(ctx context.Context, tx *sql.Tx, r *connector.Result, q string, a []any) (bool, error) {
	var upd, ver any
	var dest []any
	if t.cfg.UpdatedAt != "" {
		dest = append(dest, &upd)
	}
	if t.cfg.Version != "" {
		dest = append(dest, &ver)
	}
	err := tx.QueryRowContext(ctx, q, a...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, t.recordErr(ctx, r.Key, err)
	}
	if upd != nil {
		if m, err := decodeTime(upd); err == nil {
			r.Modified = m
		}
	}
	switch {
	case ver != nil:
		if v, err := decode(Int64, ver); err == nil {
			r.Tag = fmt.Sprint(v)
		}
	case upd != nil:
		r.Tag, _ = t.trackText(upd)
	}
	return true, nil
}

// state reports whether a row with the keys exists and is live.
func (t *Table) state(ctx context.Context, tx *sql.Tx, key string, keys []any, lock bool) (exists, live bool, err error) {
	a := &args{d: t.cfg.Dialect}
	q := "SELECT " + t.live() + " FROM " + t.table + " WHERE " + t.keyCond(a, keys)
	if lock && t.cfg.Dialect == PostgreSQL {
		q += " FOR UPDATE"
	}
	var l any
	err = tx.QueryRowContext(ctx, q, a.vals...).Scan(&l)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, t.recordErr(ctx, key, err)
	}
	lv, err := decode(Bool, l)
	if err != nil {
		return false, false, connector.Permanent(&FieldError{Table: t.cfg.Table, Key: key, Field: t.cfg.Deleted, Reason: err.Error(), Err: ErrValue})
	}
	return true, lv == true, nil
}

func (t *Table) conflict(key, why string) error {
	return connector.Conflict(fmt.Errorf("sqltable %s: record %q: %s", t.cfg.Table, key, why))
}

func (t *Table) update(ctx context.Context, tx *sql.Tx, w *write, r *connector.Result) error {
	a := &args{d: t.cfg.Dialect}
	set := make([]string, 0, len(w.names)+2)
	for i, name := range w.names {
		set = append(set, quote(name)+" = "+a.add(w.vals[i]))
	}
	set = append(set, t.stamp(a)...)
	cond := t.keyCond(a, w.keys) + " AND " + t.live()
	if w.p.IfMatch != "" {
		c, ok := t.tagCond(a, w.p.IfMatch)
		if !ok {
			return t.missingOrConflict(ctx, tx, w)
		}
		cond += " AND " + c
	}
	q := t.cached("u", w, func() string {
		return "UPDATE " + t.table + " SET " + strings.Join(set, ", ") + " WHERE " + cond + t.returning()
	})
	found, err := t.written(ctx, tx, r, q, a.vals)
	if err != nil || found {
		return err
	}
	return t.missingOrConflict(ctx, tx, w)
}

// cached returns the statement for w's shape, building it once.
func (t *Table) cached(kind string, w *write, build func() string) string {
	k := kind + "|" + strings.Join(w.names, ",") + "|" + strconv.FormatBool(w.p.IfMatch != "")
	t.mu.Lock()
	q, ok := t.stmts[k]
	t.mu.Unlock()
	if ok {
		return q
	}
	q = build()
	t.mu.Lock()
	if len(t.stmts) < maxStmts {
		t.stmts[k] = q
	}
	t.mu.Unlock()
	return q
}

// missingOrConflict explains a write that matched no row.
func (t *Table) missingOrConflict(ctx context.Context, tx *sql.Tx, w *write) error {
	exists, live, err := t.state(ctx, tx, w.p.Key, w.keys, false)
	switch {
	case err != nil:
		return err
	case exists && live:
		return t.conflict(w.p.Key, fmt.Sprintf("IfMatch %q is not the current tag", w.p.IfMatch))
	}
	return connector.NotFound(w.p.Key)
}

func (t *Table) create(ctx context.Context, tx *sql.Tx, w *write, r *connector.Result) error {
	exists, live, err := t.state(ctx, tx, w.p.Key, w.keys, true)
	switch {
	case err != nil:
		return err
	case live:
		return t.conflict(w.p.Key, "Create, but a live row with this key exists")
	case exists:
		// A soft-deleted row comes back to life as a new record: fields
		// the patch does not set are emptied.
		a := &args{d: t.cfg.Dialect}
		var set []string
		for _, f := range t.cfg.Fields {
			var v any
			if i, ok := slices.BinarySearch(w.names, f.Name); ok {
				v = w.vals[i]
			}
			set = append(set, quote(f.Name)+" = "+a.add(v))
		}
		set = append(set, quote(t.cfg.Deleted)+" = FALSE")
		set = append(set, t.stamp(a)...)
		q := "UPDATE " + t.table + " SET " + strings.Join(set, ", ") + " WHERE " + t.keyCond(a, w.keys) + t.returning()
		found, err := t.written(ctx, tx, r, q, a.vals)
		if err == nil && !found {
			err = t.conflict(w.p.Key, "the deleted row changed while it was re-created")
		}
		return err
	}
	a := &args{d: t.cfg.Dialect}
	var cols, vals []string
	for i, k := range t.cfg.Key {
		cols, vals = append(cols, quote(k.Name)), append(vals, a.add(w.keys[i]))
	}
	for i, name := range w.names {
		cols, vals = append(cols, quote(name)), append(vals, a.add(w.vals[i]))
	}
	if t.cfg.UpdatedAt != "" {
		now, err := encodeTime(t.cfg.Dialect, t.cfg.Now())
		if err != nil {
			now, _ = encodeTime(t.cfg.Dialect, time.Now())
		}
		cols, vals = append(cols, quote(t.cfg.UpdatedAt)), append(vals, a.add(now))
	}
	if t.cfg.Version != "" {
		cols, vals = append(cols, quote(t.cfg.Version)), append(vals, t.nextVersion(true))
	}
	if t.cfg.Deleted != "" {
		cols, vals = append(cols, quote(t.cfg.Deleted)), append(vals, "FALSE")
	}
	q := "INSERT INTO " + t.table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")" + t.returning()
	found, err := t.written(ctx, tx, r, q, a.vals)
	if err == nil && !found {
		err = connector.Transient(fmt.Errorf("sqltable %s: record %q: INSERT returned no row", t.cfg.Table, w.p.Key))
	}
	if err != nil && isUniqueViolation(err) {
		return t.conflict(w.p.Key, "Create, but a row with this key was inserted meanwhile")
	}
	return err
}

func (t *Table) delete(ctx context.Context, tx *sql.Tx, w *write, r *connector.Result) error {
	a := &args{d: t.cfg.Dialect}
	cond := t.keyCond(a, w.keys)
	if w.p.IfMatch != "" {
		c, ok := t.tagCond(a, w.p.IfMatch)
		if !ok {
			return t.deleteMismatch(ctx, tx, w)
		}
		cond += " AND " + c
	}
	if t.cfg.Deleted == "" {
		res, err := tx.ExecContext(ctx, "DELETE FROM "+t.table+" WHERE "+cond, a.vals...)
		if err != nil {
			return t.recordErr(ctx, w.p.Key, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 && w.p.IfMatch != "" {
			return t.deleteMismatch(ctx, tx, w)
		}
		return nil
	}
	// The assignments come first in the statement: rebuild the argument
	// list in statement order.
	b := &args{d: t.cfg.Dialect}
	set := append([]string{quote(t.cfg.Deleted) + " = TRUE"}, t.stamp(b)...)
	cond = t.keyCond(b, w.keys) + " AND " + t.live()
	if w.p.IfMatch != "" {
		c, _ := t.tagCond(b, w.p.IfMatch)
		cond += " AND " + c
	}
	q := "UPDATE " + t.table + " SET " + strings.Join(set, ", ") + " WHERE " + cond + t.returning()
	found, err := t.written(ctx, tx, r, q, b.vals)
	if err != nil || found || w.p.IfMatch == "" {
		return err
	}
	return t.deleteMismatch(ctx, tx, w)
}

// deleteMismatch explains a conditional delete that matched no row:
// deleting a missing record succeeds, a live one with another tag is a
// conflict.
func (t *Table) deleteMismatch(ctx context.Context, tx *sql.Tx, w *write) error {
	_, live, err := t.state(ctx, tx, w.p.Key, w.keys, false)
	if err != nil {
		return err
	}
	if live {
		return t.conflict(w.p.Key, fmt.Sprintf("delete with IfMatch %q, which is not the current tag", w.p.IfMatch))
	}
	return nil
}

// recordErr classifies a database error about one record.
func (t *Table) recordErr(ctx context.Context, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sqltable %s: record %q: %w", t.cfg.Table, key, cerr)
	}
	return classify(fmt.Errorf("sqltable %s: record %q: %w", t.cfg.Table, key, err))
}

// dbErr classifies a database error about a whole call.
func (t *Table) dbErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("sqltable %s: %w", t.cfg.Table, cerr)
	}
	return classify(fmt.Errorf("sqltable %s: %w", t.cfg.Table, err))
}

// sqlStater is what PostgreSQL drivers' errors implement (pgconn.PgError).
type sqlStater interface{ SQLState() string }

// coder is what SQLite drivers' errors implement (modernc.org/sqlite.Error).
type coder interface{ Code() int }

// classify marks a database error with its class: constraint and data
// errors (and SQL the table does not accept, such as a missing column) are
// permanent; everything else (busy, locked, serialization failures, lost
// connections) is transient.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ss sqlStater
	if errors.As(err, &ss) {
		switch state := ss.SQLState(); {
		case len(state) < 2:
		case strings.HasPrefix(state, "22"), strings.HasPrefix(state, "23"), strings.HasPrefix(state, "42"), strings.HasPrefix(state, "2B"):
			return connector.Permanent(err)
		}
		return connector.Transient(err)
	}
	var c coder
	if errors.As(err, &c) {
		switch c.Code() & 0xff {
		case 1, 18, 19, 20, 25: // ERROR (no such column...), TOOBIG, CONSTRAINT, MISMATCH, RANGE
			return connector.Permanent(err)
		}
	}
	return connector.Transient(err)
}

// isUniqueViolation reports a unique or primary key violation.
func isUniqueViolation(err error) bool {
	var ss sqlStater
	if errors.As(err, &ss) {
		return ss.SQLState() == "23505"
	}
	var c coder
	if errors.As(err, &c) {
		return c.Code() == 2067 || c.Code() == 1555
	}
	return false
}
