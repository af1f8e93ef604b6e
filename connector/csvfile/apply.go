package csvfile

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/concordsync/concord/connector"
)

// ConditionalWrites reports true (connector.Conditional): a row's tag is
// the hash of its cells, a stale IfMatch fails with connector.ErrConflict,
// and so does a Create of a key that has a row.
func (c *Connector) ConditionalWrites() bool { return true }

// Apply applies each patch to its row independently and rewrites the file
// atomically if any patch changed it. See the package documentation.
func (c *Connector) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, data, err := c.read()
	if err != nil {
		return nil, err
	}
	results := make([]connector.Result, len(patches))
	changed := false
	for i, p := range patches {
		res, did := c.applyOne(v, p)
		results[i] = res
		changed = changed || did
	}
	if !changed {
		return results, nil
	}
	out, err := v.f.encode(c.cfg.Comma)
	if err != nil {
		return nil, connector.Transient(fmt.Errorf("csvfile: encoding %s: %w", c.cfg.Path, err))
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(c.cfg.Path); err == nil {
		mode = st.Mode().Perm()
	}
	unchanged := func(tmp string) error {
		if c.beforeRename != nil {
			if err := c.beforeRename(tmp); err != nil {
				return err
			}
		}
		now, err := c.readBytes()
		if err != nil {
			return err
		}
		if !bytes.Equal(now, data) {
			return fmt.Errorf("%s: %w (someone saved it meanwhile); nothing was written", c.cfg.Path, ErrFileChanged)
		}
		return ctx.Err()
	}
	if err := writeAtomic(c.cfg.Path, out, mode, unchanged); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		return nil, connector.Transient(fmt.Errorf("csvfile: rewriting %s: %w", c.cfg.Path, err))
	}
	return results, nil
}

// applyOne applies p to the rows of v and reports whether it changed them.
// A failing patch changes nothing.
func (c *Connector) applyOne(v *view, p connector.Patch) (connector.Result, bool) {
	res := connector.Result{Key: p.Key}
	fail := func(err error) (connector.Result, bool) { res.Err = err; return res, false }
	if p.Key == "" {
		return fail(connector.Permanent(errors.New("csvfile: a patch without a key")))
	}
	if !p.Delete {
		if _, err := String.format(p.Key); err != nil {
			return fail(connector.Permanent(fmt.Errorf("csvfile: key %q: %w", p.Key, err)))
		}
	}
	r := v.byKey[p.Key]
	if r != nil && r.err != nil {
		return fail(connector.Permanent(fmt.Errorf("csvfile: record %q: its row at line %d is malformed (%v); fix the file first", p.Key, r.line, r.err)))
	}
	live := r != nil
	switch {
	case p.Delete && !c.cfg.AllowDeletes:
		return fail(connector.Permanent(fmt.Errorf("csvfile: record %q: deletes are not permitted (Config.AllowDeletes)", p.Key)))
	case p.Delete && !live:
		return res, false
	case !live && !p.Create:
		return fail(&connector.Error{Class: connector.ErrNotFound, Key: p.Key, Err: fmt.Errorf("csvfile: no row with key %q in %s", p.Key, c.cfg.Path)})
	case live && p.Create:
		return fail(&connector.Error{Class: connector.ErrConflict, Key: p.Key, Err: fmt.Errorf("csvfile: Create, but a row with key %q exists (line %d)", p.Key, r.line)})
	case p.IfMatch != "" && !live:
		return fail(&connector.Error{Class: connector.ErrConflict, Key: p.Key, Err: fmt.Errorf("csvfile: IfMatch %q, but there is no row", p.IfMatch)})
	case p.IfMatch != "" && r.hash() != p.IfMatch:
		return fail(&connector.Error{Class: connector.ErrConflict, Key: p.Key, Err: fmt.Errorf("csvfile: IfMatch %q, but the row's tag is %q", p.IfMatch, r.hash())})
	}
	if p.Delete {
		i := indexOf(v.f.rows, r)
		v.f.rows = append(v.f.rows[:i:i], v.f.rows[i+1:]...)
		delete(v.byKey, p.Key)
		delete(v.recs, p.Key)
		return res, true
	}
	cells := make([]string, len(v.f.header))
	if live {
		copy(cells, r.cells)
	}
	cells[v.keyIndex] = p.Key
	col := map[string]int{}
	for i, f := range v.fieldOf {
		if f != "" {
			col[f] = i
		}
	}
	for _, field := range sortedKeys(p.Set) {
		val := p.Set[field]
		i, ok := col[field]
		if !ok {
			return fail(connector.Permanent(&FieldError{Key: p.Key, Field: field, Value: val, Err: errors.New("no column holds this field")}))
		}
		cell, err := c.cfg.Types[field].format(val)
		if err != nil {
			return fail(connector.Permanent(&FieldError{Key: p.Key, Field: field, Value: val, Err: err}))
		}
		cells[i] = cell
	}
	nr := &row{cells: cells}
	if live {
		nr.lead, nr.line = r.lead, r.line
		if slicesEqual(r.cells, cells) {
			res.Tag = r.hash()
			return res, false // nothing to change: keep its text
		}
		v.f.rows[indexOf(v.f.rows, r)] = nr
	} else {
		v.f.rows = insertRow(v.f.rows, nr)
	}
	v.byKey[p.Key] = nr
	res.Tag = nr.hash()
	return res, true
}

// insertRow appends nr, but before a last row whose unterminated quote
// runs to the end of the file (a row after it would be read as part of it).
func insertRow(rows []*row, nr *row) []*row {
	n := len(rows)
	if n > 0 && rows[n-1].err != nil && errors.Is(rows[n-1].err, csv.ErrQuote) {
		return append(rows[:n-1:n-1], nr, rows[n-1])
	}
	return append(rows, nr)
}

func indexOf(rows []*row, r *row) int {
	for i, x := range rows {
		if x == r {
			return i
		}
	}
	return -1
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeAtomic writes data to a temporary file beside path, syncs it, calls
// check (if not nil; an error aborts), renames it over path and syncs the
// directory. The temporary file is removed on failure.
func writeAtomic(path string, data []byte, mode os.FileMode, check func(tmp string) error) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+".concord-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if check != nil {
		if err = check(tmp.Name()); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
