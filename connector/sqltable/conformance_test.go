package sqltable

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
)

// suiteFields are the fields connectortest writes by default
// (connectortest.DefaultSchema), as table columns.
var suiteFields = []Column{
	{"n", Int64}, {"name", Text}, {"a", Int64}, {"b", Text}, {"c", Bool},
	{"d", Text}, {"k", Text}, {"keep", Text},
}

// suiteSystem is a table under connectortest.
type suiteSystem struct {
	s    *schema
	conn *Table
}

func (s suiteSystem) Connector() connector.Connector { return s.conn }

func (s suiteSystem) Edit(ctx context.Context, key string, fields map[string]concord.Value) error {
	return s.s.edit(ctx, s.s.db, []any{key}, time.Now(), fields)
}

func (s suiteSystem) Delete(ctx context.Context, key string) error {
	return s.s.remove(ctx, []any{key}, time.Now())
}

// EditAll makes the edits in one transaction that stamps one updated_at
// on every row, as a bulk UPDATE does, so that the suite's
// EditsAtOneInstant check runs.
func (s suiteSystem) EditAll(ctx context.Context, edits map[string]map[string]concord.Value) error {
	tx, err := s.s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	at := time.Now()
	for _, key := range slices.Sorted(maps.Keys(edits)) {
		if err := s.s.edit(ctx, tx, []any{key}, at, edits[key]); err != nil {
			return fmt.Errorf("edit %q: %w", key, err)
		}
	}
	return tx.Commit()
}

var _ connectortest.BulkEditor = suiteSystem{}

func TestConformance(t *testing.T) {
	configs := []struct {
		name    string
		cfg     Config
		deletes bool
	}{
		{"updated_at+version+soft-delete", Config{UpdatedAt: "updated_at", Version: "version", Deleted: "deleted"}, true},
		{"sequence+soft-delete", Config{Version: "seq", Track: TrackVersion, Deleted: "deleted"}, true},
		{"updated_at-only+hard-delete", Config{UpdatedAt: "updated_at", Window: time.Minute}, false},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, c := range configs {
				t.Run(c.name, func(t *testing.T) {
					connectortest.Run(t, connectortest.Harness{
						New: func(t testing.TB) connectortest.System {
							cfg := c.cfg
							cfg.Key = []Column{{"id", Text}}
							cfg.Fields = suiteFields
							cfg.AllowCreate, cfg.AllowDelete = true, true
							s := newSchema(t, be, cfg)
							return suiteSystem{s: s, conn: mustNew(t, s.cfg)}
						},
						Conditional: true,
						Deletes:     c.deletes,
					})
				})
			}
		})
	}
}
