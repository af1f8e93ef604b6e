package connector_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
)

// table is a system the way a connector meets it: rows with a version tag
// and a change sequence number, as in a database table with an
// "updated_seq" column or an API with "changes since". Here it is a map
// behind a mutex; a real connector would make SQL or HTTP calls in the same
// places.
type table struct {
	mu   sync.Mutex
	seq  uint64
	rows map[string]*row
	done map[string]connector.Result // results by idempotency key
}

type row struct {
	fields  map[string]concord.Value
	seq     uint64 // the change that last touched the row; also its tag
	deleted bool
}

func newTable() *table {
	return &table{rows: map[string]*row{}, done: map[string]connector.Result{}}
}

// Edit is a person changing the row in the system itself.
func (tb *table) Edit(key string, fields map[string]concord.Value) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	r := tb.rows[key]
	if r == nil || r.deleted {
		r = &row{fields: map[string]concord.Value{}}
		tb.rows[key] = r
	}
	for k, v := range fields {
		r.fields[k] = concord.CloneValue(v)
	}
	tb.seq++
	r.seq = tb.seq
}

// tableConnector is the connector for table: a [connector.Connector] and a
// [connector.Getter]. Its cursor is the last change sequence number read,
// in decimal.
type tableConnector struct{ t *table }

var (
	_ connector.Connector = tableConnector{}
	_ connector.Getter    = tableConnector{}
)

func (c tableConnector) record(key string, r *row) concord.Record {
	return concord.Record{Key: key, Fields: concord.CloneFields(r.fields), Deleted: r.deleted,
		Tag: strconv.FormatUint(r.seq, 10)}
}

// Changes returns the rows changed after cursor, oldest change first. A
// row changed twice appears once, at its latest change; a row changed
// while the engine pages is found on a later page.
func (c tableConnector) Changes(ctx context.Context, cursor connector.Cursor, limit int) (connector.Batch, error) {
	if err := ctx.Err(); err != nil {
		return connector.Batch{}, err
	}
	var after uint64
	if cursor != "" {
		n, err := strconv.ParseUint(string(cursor), 10, 64)
		if err != nil { // damaged input is an error that says so, never a panic
			return connector.Batch{}, connector.Permanent(fmt.Errorf("table: cursor %q is not a change number", cursor))
		}
		after = n
	}
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	var keys []string
	for k, r := range c.t.rows {
		if r.seq > after {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(c.t.rows[a].seq, c.t.rows[b].seq) })
	b := connector.Batch{Next: cursor, More: len(keys) > limit}
	for _, k := range keys[:min(limit, len(keys))] {
		b.Records = append(b.Records, c.record(k, c.t.rows[k]))
		b.Next = connector.Cursor(strconv.FormatUint(c.t.rows[k].seq, 10))
	}
	return b, nil
}

// Apply writes each patch on its own: one failing patch fails only its
// Result. Errors carry the class the engine acts on.
func (c tableConnector) Apply(ctx context.Context, patches []connector.Patch) ([]connector.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	out := make([]connector.Result, len(patches))
	for i, p := range patches {
		if res, ok := c.t.done[p.IdempotencyKey]; ok && p.IdempotencyKey != "" {
			out[i] = res // the same write again: no second effect
			continue
		}
		out[i] = c.apply(p)
		if out[i].Err == nil && p.IdempotencyKey != "" {
			c.t.done[p.IdempotencyKey] = out[i]
		}
	}
	return out, nil
}

func (c tableConnector) apply(p connector.Patch) connector.Result {
	r := c.t.rows[p.Key]
	live := r != nil && !r.deleted
	switch {
	case p.IfMatch != "" && (!live || strconv.FormatUint(r.seq, 10) != p.IfMatch):
		return connector.Result{Key: p.Key, Err: connector.Conflict(fmt.Errorf("table: %q changed since version %s", p.Key, p.IfMatch))}
	case p.Delete:
		if live {
			c.t.seq++
			r.deleted, r.seq = true, c.t.seq
		}
		return connector.Result{Key: p.Key}
	case p.Create && live:
		return connector.Result{Key: p.Key, Err: connector.Conflict(fmt.Errorf("table: %q already exists", p.Key))}
	case !p.Create && !live:
		return connector.Result{Key: p.Key, Err: connector.NotFound(p.Key)}
	}
	if v, ok := p.Set["credit_limit"]; ok && v != nil {
		if _, isNum := v.(int); !isNum { // the system's own validation
			return connector.Result{Key: p.Key, Err: connector.Permanent(fmt.Errorf("table: %q: credit_limit %v is not a whole number", p.Key, v))}
		}
	}
	if !live {
		r = &row{fields: map[string]concord.Value{}}
		c.t.rows[p.Key] = r
	}
	for k, v := range p.Set {
		if v == nil {
			delete(r.fields, k)
		} else {
			r.fields[k] = concord.CloneValue(v)
		}
	}
	c.t.seq++
	r.seq = c.t.seq
	return connector.Result{Key: p.Key, Tag: strconv.FormatUint(r.seq, 10)}
}

// Get returns the live rows among keys.
func (c tableConnector) Get(ctx context.Context, keys []string) ([]concord.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	var out []concord.Record
	for _, k := range keys {
		if r := c.t.rows[k]; r != nil && !r.deleted {
			out = append(out, c.record(k, r))
		}
	}
	return out, nil
}

// A connector over a small "table": the change feed with its cursor, a
// field-level patch, and the error classes the engine acts on. The test
// TestExampleConnectorConformance runs connectortest against it.
func Example_connector() {
	ctx := context.Background()
	tb := newTable()
	conn := tableConnector{tb}
	tb.Edit("c1", map[string]concord.Value{"name": "Ada", "city": "Leeds"})
	tb.Edit("c2", map[string]concord.Value{"name": "Grace"})
	tb.Edit("c1", map[string]concord.Value{"city": "York"})

	// The engine reads the feed in pages, keeping the cursor between
	// cycles.
	var cursor connector.Cursor
	for {
		b, err := conn.Changes(ctx, cursor, 1)
		if err != nil {
			panic(err)
		}
		for _, r := range b.Records {
			fmt.Printf("read %s %v tag %s\n", r.Key, r.Fields, r.Tag)
		}
		cursor = b.Next
		if !b.More {
			break
		}
	}
	fmt.Println("cursor:", cursor)

	res, err := conn.Apply(ctx, []connector.Patch{
		{Key: "c2", Set: map[string]concord.Value{"city": "Bath"}, IfMatch: "2"}, // only city changes
		{Key: "c1", Set: map[string]concord.Value{"city": "Hull"}, IfMatch: "2"}, // stale: c1 is at 3
		{Key: "c9", Set: map[string]concord.Value{"name": "Nobody"}},             // not there, not Create
		{Key: "c2", Set: map[string]concord.Value{"credit_limit": "lots"}},       // refused by the system
	})
	if err != nil {
		panic(err)
	}
	for _, r := range res {
		switch class := connector.Classify(r.Err); {
		case r.Err == nil:
			fmt.Println(r.Key, "written, tag", r.Tag)
		case errors.Is(r.Err, connector.ErrConflict):
			fmt.Println(r.Key, "conflict: the engine reads it again and merges")
		default:
			fmt.Printf("%s %v, retryable %v: %v\n", r.Key, class, connector.Retryable(r.Err), r.Err)
		}
	}
	b, _ := conn.Changes(ctx, cursor, 10)
	fmt.Println("feed after the writes:", b.Records[0].Key, b.Records[0].Fields)
	_, err = conn.Changes(ctx, "not-a-number", 10)
	fmt.Println(errors.Is(err, connector.ErrPermanent), err)
	// Output:
	// read c2 map[name:Grace] tag 2
	// read c1 map[city:York name:Ada] tag 3
	// cursor: 3
	// c2 written, tag 4
	// c1 conflict: the engine reads it again and merges
	// c9 not found, retryable false: record "c9": not found
	// c2 permanent failure, retryable false: permanent failure: table: "c2": credit_limit lots is not a whole number
	// feed after the writes: c2 map[city:Bath name:Grace]
	// true permanent failure: table: cursor "not-a-number" is not a change number
}
