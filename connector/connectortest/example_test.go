package connectortest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/concordsync/concord"
	"github.com/concordsync/concord/connector"
	"github.com/concordsync/concord/connector/connectortest"
	"github.com/concordsync/concord/connector/fake"
)

// crmSystem is what a connector author writes for the suite: the connector
// under test, and a way to change the system "as a person", outside the
// connector (for a database: plain SQL; for an API: its admin calls). Here
// the system is package fake's in-memory one.
type crmSystem struct{ s *fake.System }

func (c crmSystem) Connector() connector.Connector { return c.s }

func (c crmSystem) Edit(_ context.Context, key string, fields map[string]concord.Value) error {
	c.s.Edit(key, fields)
	return nil
}

func (c crmSystem) Delete(_ context.Context, key string) error {
	c.s.Delete(key)
	return nil
}

// harness describes the connector to the suite: how to get a fresh, empty
// system per check, and which optional behaviours it claims.
func harness() connectortest.Harness {
	return connectortest.Harness{
		// Called once per check with that check's t: a real system
		// would create a scratch table here and drop it in t.Cleanup.
		New:         func(testing.TB) connectortest.System { return crmSystem{fake.New("crm")} },
		Conditional: true, // honours Patch.IfMatch
		Idempotent:  true, // honours Patch.IdempotencyKey
		Deletes:     true,
	}
}

// A connector author runs the suite from one test in the connector's
// package:
//
//	func TestConformance(t *testing.T) {
//		connectortest.Run(t, harness())
//	}
//
// (TestExampleHarness in this file does exactly that.) Each check gets a
// fresh system from Harness.New, edits it as a person would, and watches
// the connector: here, the first steps of the check ChangesReturnsEveryEdit.
func ExampleRun() {
	sys := harness().New(nil) // the suite passes the check's t
	ctx := context.Background()
	if err := sys.Edit(ctx, "ct-01", map[string]concord.Value{"n": 1}); err != nil {
		panic(err)
	}
	b, err := sys.Connector().Changes(ctx, "", 10)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(b.Records), b.Records[0].Key, b.Records[0].Fields, "more:", b.More)
	_, isGetter := sys.Connector().(connector.Getter)
	_, isScanner := sys.Connector().(connector.Scanner)
	fmt.Println("Getter checks run:", isGetter, "Scanner checks run:", isScanner)
	// Output:
	// 1 ct-01 map[n:1] more: false
	// Getter checks run: true Scanner checks run: true
}

func TestExampleHarness(t *testing.T) {
	connectortest.Run(t, harness())
}
