// Package pgtest finds the PostgreSQL database that tests may use: the one
// named by $CONCORD_TEST_POSTGRES_DSN (.ci/run starts a server and sets it).
package pgtest

import (
	"os"
	"testing"
)

// Var is the environment variable that names the test database.
const Var = "CONCORD_TEST_POSTGRES_DSN"

// DSN returns the test database's DSN. Without one it skips t, or fails it
// when CI=true: in CI the PostgreSQL tests must run.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(Var)
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set, and CI=true: the PostgreSQL tests must run in CI (.ci/run starts a server)", Var)
		}
		t.Skipf("%s is not set: skipping the PostgreSQL tests (set it to a database the tests may create schemas and tables in, e.g. postgres://postgres@127.0.0.1:54329/concord_test?sslmode=disable, or run .ci/run)", Var)
	}
	return dsn
}
