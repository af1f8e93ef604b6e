package connector_test

import (
	"context"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
)

// tableSystem is the table of Example_connector as connectortest sees it.
type tableSystem struct{ t *table }

func (s tableSystem) Connector() connector.Connector { return tableConnector(s) }

func (s tableSystem) Edit(_ context.Context, key string, fields map[string]concord.Value) error {
	s.t.Edit(key, fields)
	return nil
}

func (s tableSystem) Delete(_ context.Context, key string) error {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if r := s.t.rows[key]; r != nil && !r.deleted {
		s.t.seq++
		r.deleted, r.seq = true, s.t.seq
	}
	return nil
}

// The connector of Example_connector keeps the whole contract: it is a real
// connector, not a sketch.
func TestExampleConnectorConformance(t *testing.T) {
	connectortest.Run(t, connectortest.Harness{
		New:         func(testing.TB) connectortest.System { return tableSystem{newTable()} },
		Conditional: true,
		Idempotent:  true,
		Deletes:     true,
	})
}
