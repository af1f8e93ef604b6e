package main

// The two systems of the story, on real parts: the customer portal is a
// SQLite database file (a table the portal's own code edits with SQL),
// synced through connector/sqltable; the warehouse is a REST API over TLS
// (connector/rest/resttest, a SaaS-like server the example starts), synced
// through connector/rest. People edit each system the way its users do:
// the portal with plain SQL, the warehouse through its HTTP API. The story
// reads them back the same way, never through Concord's connectors.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver for SQLite, in pure Go

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/rest"
	"github.com/concordsync/concord/connector/rest/resttest"
	"github.com/concordsync/concord/connector/sqltable"
)

// portalSchema is the portal's table. The portal's code sets updated_at
// (UTC, in the text form sqltable writes on SQLite) and bumps version on
// every write; that is all sqltable asks of the other writers of a table.
const portalSchema = `CREATE TABLE customers (
	id           TEXT PRIMARY KEY,
	email        TEXT,
	phone        TEXT,
	company      TEXT,
	ship_street  TEXT,
	ship_city    TEXT,
	ship_zip     TEXT,
	ship_country TEXT,
	credit_line  INTEGER,
	updated_at   TEXT NOT NULL,
	version      INTEGER NOT NULL
);
CREATE INDEX customers_changes ON customers (updated_at, id);`

// sqliteTime is how the portal writes updated_at: the form sqltable reads
// and writes on SQLite, so that the change feed's (updated_at, id) order
// is the text order.
const sqliteTime = "2006-01-02 15:04:05.000000000"

// warehousePaths says where the warehouse's API keeps each of its fields
// in a record's JSON: the address is nested under "ship_to".
var warehousePaths = map[string]string{
	"contact_phone": "contact.phone",
	"company_name":  "company_name",
	"addr_line":     "ship_to.line1",
	"town":          "ship_to.town",
	"postcode":      "ship_to.postcode",
	"country_code":  "ship_to.country",
	"credit_limit":  "credit.limit",
}

// warehouseToken is the bearer token of the warehouse's API. A host would
// fetch it from its secret store in rest.BearerToken's function.
const warehouseToken = "wh-token-example"

// realSystems holds the story's portal and warehouse, and the connectors
// Concord uses for them.
type realSystems struct {
	clock  *storyClock
	db     *sql.DB          // the portal's SQLite database
	api    *resttest.Server // the warehouse's API
	portal *sqltable.Table
	wh     *rest.Connector
}

// openSystems creates the portal's database in dir and starts the
// warehouse's API. Calling close stops both.
func openSystems(dir string, clock *storyClock) (*realSystems, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portal.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(wal)")
	if err != nil {
		return nil, err
	}
	if _, err := db.Exec(portalSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("portal schema: %w", err)
	}
	s := &realSystems{clock: clock, db: db,
		api: resttest.New(resttest.Options{Token: warehouseToken, Clock: clock.Now})}
	text := func(name string) sqltable.Column { return sqltable.Column{Name: name, Type: sqltable.Text} }
	s.portal, err = sqltable.New(sqltable.Config{
		DB:      db,
		Dialect: sqltable.SQLite,
		Table:   "customers",
		Key:     []sqltable.Column{text("id")},
		Fields: []sqltable.Column{text("email"), text("phone"), text("company"),
			text("ship_street"), text("ship_city"), text("ship_zip"), text("ship_country"),
			{Name: "credit_line", Type: sqltable.Int64}},
		UpdatedAt: "updated_at",
		Version:   "version",       // conditional writes: a patch applies only to the row it was made for
		Window:    5 * time.Minute, // re-read the last 5 minutes: longer than any portal transaction
		Now:       clock.Now,
	})
	if err == nil {
		s.wh, err = rest.New(rest.Config{
			BaseURL: s.api.URL(), // https://127.0.0.1:port/v1: TLS, as every rest connector requires
			Client:  s.api.Client(),
			Auth: rest.BearerToken(func(context.Context) (string, error) {
				return warehouseToken, nil
			}),
			Timeout:      10 * time.Second,
			Collection:   "/records",
			KeyPath:      "id",
			TagPath:      "version", // PATCH carries If-Match: a clerk's edit in between is a conflict, never overwritten
			ModifiedPath: "updated_at",
			DeletedPath:  "deleted",
			Fields:       warehousePaths,
			Changes: rest.Changes{Path: "/changes", ItemsPath: "data", CursorParam: "cursor",
				NextCursorPath: "next_cursor", HasMorePath: "has_more"},
			Create: rest.CreatePUT, // the warehouse learns of a new customer from the portal
			Verify: &rest.Verify{Checks: 3},
		})
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *realSystems) close() {
	s.api.Close()
	s.db.Close()
}

// connector returns the connector Concord uses for system id.
func (s *realSystems) connector(id concord.SystemID) connector.Connector {
	if id == portal {
		return s.portal
	}
	return s.wh
}

// edit makes a person's edit of the customer in system id, in the system's
// own field names, the way its users make it: SQL in the portal, a PATCH
// through the API in the warehouse. It returns what was done, for the
// story to print.
func (s *realSystems) edit(ctx context.Context, id concord.SystemID, f map[string]concord.Value) (string, error) {
	var names []string
	for _, fn := range fields { // in display order
		if n := fn.in(id); n != "" {
			if _, ok := f[n]; ok {
				names = append(names, n)
			}
		}
	}
	if len(names) != len(f) {
		return "", fmt.Errorf("edit of %s: %v has a field %s does not keep", id, f, id)
	}
	if id == portal {
		return s.sqlEdit(ctx, names, f)
	}
	return s.apiEdit(ctx, names, f)
}

// sqlEdit updates the customer's row with plain SQL, or inserts it if it
// does not exist yet (the customer signs up).
func (s *realSystems) sqlEdit(ctx context.Context, names []string, f map[string]concord.Value) (string, error) {
	at := s.clock.Now().UTC().Format(sqliteTime)
	var sets, shown []string
	var args []any
	for _, n := range names {
		sets = append(sets, n+" = ?")
		shown = append(shown, n+" = "+sqlQuote(f[n]))
		args = append(args, f[n])
	}
	var exists bool
	if err := s.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM customers WHERE id = ?)", customer).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		q := fmt.Sprintf("INSERT INTO customers (id, %s, updated_at, version) VALUES (?%s, ?, 1)",
			strings.Join(names, ", "), strings.Repeat(", ?", len(names)))
		if _, err := s.db.ExecContext(ctx, q, append(append([]any{customer}, args...), at)...); err != nil {
			return "", fmt.Errorf("portal: %w", err)
		}
		return fmt.Sprintf("INSERT INTO customers (id, %s, ...) VALUES ('%s', %s, ...)",
			strings.Join(names, ", "), customer, strings.Join(quoteAll(f, names), ", ")), nil
	}
	q := fmt.Sprintf("UPDATE customers SET %s, updated_at = ?, version = version + 1 WHERE id = ?", strings.Join(sets, ", "))
	if _, err := s.db.ExecContext(ctx, q, append(args, at, customer)...); err != nil {
		return "", fmt.Errorf("portal: %w", err)
	}
	return fmt.Sprintf("UPDATE customers SET %s, updated_at = '%s', version = version + 1 WHERE id = '%s'",
		strings.Join(shown, ", "), at, customer), nil
}

// apiEdit sends a clerk's change to the warehouse's API: a JSON merge
// patch of the nested fields, as the warehouse's own screens would.
func (s *realSystems) apiEdit(ctx context.Context, names []string, f map[string]concord.Value) (string, error) {
	patch := map[string]any{}
	for _, n := range names {
		m, parts := patch, strings.Split(warehousePaths[n], ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = f[n]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "Lee & Co", not "Lee \u0026 Co"
	if err := enc.Encode(patch); err != nil {
		return "", err
	}
	body := bytes.TrimSpace(buf.Bytes())
	path := "/records/" + url.PathEscape(customer)
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, s.api.URL()+path, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+warehouseToken)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := s.api.Client().Do(req)
	if err != nil {
		return "", fmt.Errorf("warehouse: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return "", fmt.Errorf("warehouse: PATCH %s: %s: %s", path, resp.Status, b)
	}
	return fmt.Sprintf("PATCH /v1%s %s", path, body), nil
}

// read returns the customer as system id holds it, in the system's own
// field names (empty fields left out), read directly: a SELECT in the
// portal, the API's document in the warehouse.
func (s *realSystems) read(ctx context.Context, id concord.SystemID) (concord.Record, bool, error) {
	rec := concord.Record{Key: customer, Fields: map[string]concord.Value{}}
	if id == portal {
		var names []string
		for _, f := range fields {
			if f.portal != "" {
				names = append(names, f.portal)
			}
		}
		vals := make([]any, len(names)+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		q := fmt.Sprintf("SELECT %s, updated_at FROM customers WHERE id = ?", strings.Join(names, ", "))
		switch err := s.db.QueryRowContext(ctx, q, customer).Scan(ptrs...); {
		case err == sql.ErrNoRows:
			return rec, false, nil
		case err != nil:
			return rec, false, fmt.Errorf("portal: %w", err)
		}
		for i, n := range names {
			if vals[i] != nil {
				rec.Fields[n] = vals[i]
			}
		}
		at, ok := vals[len(names)].(string)
		t, err := time.Parse(sqliteTime, at)
		if !ok || err != nil {
			return rec, false, fmt.Errorf("portal: updated_at %v is not in the form %q", vals[len(names)], sqliteTime)
		}
		rec.Modified = t
		return rec, true, nil
	}
	doc, ok := s.api.Doc(customer)
	if !ok {
		return rec, false, nil
	}
	for _, n := range slices.Sorted(maps.Keys(warehousePaths)) {
		if v, ok := lookup(doc, warehousePaths[n]); ok && v != nil {
			rec.Fields[n] = v
		}
	}
	at, _ := doc["updated_at"].(string)
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return rec, false, fmt.Errorf("warehouse: updated_at %q: %w", at, err)
	}
	rec.Modified = t
	return rec, true, nil
}

// lookup follows a dotted path into a JSON document.
func lookup(doc map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := doc[p].(map[string]any)
		if !ok {
			return nil, false
		}
		doc = sub
	}
	v, ok := doc[parts[len(parts)-1]]
	return v, ok
}

// sqlQuote formats a value as an SQL literal, for display only: the edits
// themselves pass values as parameters.
func sqlQuote(v concord.Value) string {
	if s, ok := v.(string); ok {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	return fmt.Sprint(v)
}

func quoteAll(f map[string]concord.Value, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = sqlQuote(f[n])
	}
	return out
}
